"""The photographs and the restoration datasets: the catalog against scikit-image and
scikit-learn, the grey and colour views, the split by whole image (checked by content:
no training patch is found in a test photograph, while the check finds a planted one),
seeded patches, fixed test noise, and bad input (a file that is not an image)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

pytest.importorskip("skimage")
from skimage import data as skdata  # noqa: E402

import minicnn  # noqa: E402
from minicnn.data import DataLoader  # noqa: E402
from minicnn.data.noise import GaussianNoise, MRINoise  # noqa: E402
from minicnn.data.photos import (  # noqa: E402
    PHOTOS,
    load_photo,
    load_photos,
    photo_names,
)
from minicnn.data.restoration import NoisyPatches, dihedral, noisy_photos  # noqa: E402
from minicnn.errors import DataFileError  # noqa: E402


def test_catalog_equals_the_libraries_photographs():
    np.testing.assert_allclose(load_photo("camera", "native")[0], skdata.camera() / 255.0,
                               atol=1e-7)
    np.testing.assert_allclose(load_photo("astronaut").transpose(1, 2, 0),
                               skdata.astronaut() / 255.0, atol=1e-7)
    from sklearn.datasets import load_sample_image

    np.testing.assert_allclose(load_photo("flower").transpose(1, 2, 0),
                               load_sample_image("flower.jpg") / 255.0, atol=1e-7)
    np.testing.assert_array_equal(load_photo("cat"), load_photo("chelsea"))  # one picture
    assert set(photo_names("train")) | set(photo_names("test")) == set(PHOTOS)
    assert photo_names("test") == ["camera", "coins", "astronaut", "coffee",
                                   "immunohistochemistry", "flower"]
    assert photo_names(kind="medical") == ["retina", "immunohistochemistry"]


def test_views():
    rgb, grey = load_photo("coffee", "rgb"), load_photo("coffee", "grey")
    assert rgb.shape == (3, 400, 600) and grey.shape == (1, 400, 600)
    assert rgb.dtype == grey.dtype == np.float32
    np.testing.assert_allclose(grey[0], rgb[0] * 0.299 + rgb[1] * 0.587 + rgb[2] * 0.114,
                               atol=1e-6)
    camera = load_photo("camera", "rgb")
    assert camera.shape == (3, 512, 512) and np.array_equal(camera[0], camera[2])
    for image in load_photos("all", "grey"):
        assert image.shape[0] == 1 and 0 <= image.min() and image.max() <= 1
    assert [im.shape for im in load_photos("test", "rgb", crop=100)][0] == (3, 100, 100)
    assert all(im.shape[0] == 3 for im in load_photos("train", "native", colour_only=True))
    load_photo("moon").fill(0)  # a copy: the cached photograph is unchanged
    assert load_photo("moon").max() > 0


def row_hashes(image: np.ndarray, k: int = 8) -> np.ndarray:
    """A hash of every run of ``k`` pixels along the rows of a float32 (H, W) image."""
    bits = np.ascontiguousarray(image, dtype=np.float32).view(np.uint32).astype(np.uint64)
    mult = np.uint64(1_000_003) ** np.arange(k, dtype=np.uint64)
    return (sliding_window_view(bits, k, axis=1) * mult).sum(axis=-1)


def found_in(patch: np.ndarray, image: np.ndarray, hashes: np.ndarray) -> bool:
    """Whether ``patch`` (p, p) occurs, pixel for pixel, somewhere in ``image`` (H, W)."""
    key = row_hashes(patch[:1])[0, 0]
    p = patch.shape[0]
    for y, x in zip(*np.nonzero(hashes == key)):
        if image[y:y + p, x:x + p].shape == patch.shape and \
                np.array_equal(image[y:y + p, x:x + p], patch):
            return True
    return False


def leaks(patches, images, turns: int = 8) -> tuple[int, int]:
    """``(found, checked)``: how many of the textured ``patches`` (C, p, p) are found in
    ``images`` (in any of their first ``turns`` flips and turns), and how many were
    checked (a flat run of pixels matches any flat area: it says nothing about content)."""
    textured = [p[0] for p in patches if np.ptp(p[0, 0, :8]) > 0]
    keys = np.array([row_hashes(p[:1])[0, 0] for p in textured])
    found = np.zeros(len(textured), dtype=bool)
    for image in images:
        for k in range(turns):
            turned = np.ascontiguousarray(dihedral(image, k)[0])
            hashes = row_hashes(turned)
            # the keys that occur among the image's hashes (a search in the few sorted keys)
            order = np.argsort(keys)
            at = np.minimum(np.searchsorted(keys[order], hashes), len(keys) - 1)
            present = np.zeros(len(keys), dtype=bool)
            present[order[at[keys[order][at] == hashes]]] = True
            for i in np.nonzero(present & ~found)[0]:
                found[i] = found_in(textured[i], turned, hashes)
    return int(found.sum()), len(textured)


@pytest.mark.slow
def test_no_test_photograph_reaches_a_training_patch():
    minicnn.manual_seed(0)
    train, _ = noisy_photos(GaussianNoise(25), "grey", patch_size=24, num_patches=300)
    patches = [train[i][1] for i in range(len(train))]  # clean patches, augmented
    test_images = load_photos("test", "grey")
    found, checked = leaks(patches, test_images)
    assert found == 0 and checked > 250
    # the check works: patches (unturned) of the training photographs are found there, and
    # a test photograph planted among the training ones is found
    train_images = load_photos("train", "grey")
    plain = NoisyPatches(train_images, GaussianNoise(25), patch_size=24, num_patches=40,
                         augment=False)
    found, checked = leaks([plain[i][1] for i in range(40)], train_images, turns=1)
    assert found == checked > 30
    planted = NoisyPatches([test_images[0]], GaussianNoise(25), patch_size=24, num_patches=20)
    found, checked = leaks([planted[i][1] for i in range(20)], test_images)
    assert found == checked > 15


def test_patches_are_seeded_and_the_test_noise_fixed():
    train, test = noisy_photos(GaussianNoise((0, 50)), "rgb", patch_size=16, num_patches=8,
                               test_crop=64, return_noise_map=True)
    minicnn.manual_seed(3)
    first = [train[i] for i in range(8)]
    minicnn.manual_seed(3)
    again = [train[i] for i in range(8)]
    for a, b in zip(first, again):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    noisy, clean, noise_map = first[0]
    assert noisy.shape == clean.shape == noise_map.shape == (3, 16, 16)
    assert not np.array_equal(first[0][1], first[1][1])
    a, b = test[2], test[2]
    np.testing.assert_array_equal(a[0], b[0])
    assert a[0].shape == (3, 64, 64) and len(test) == 6
    # a DataLoader batches them: (N, C, p, p) each
    batch = next(iter(DataLoader(train, batch_size=4)))
    assert [x.shape for x in batch] == [(4, 3, 16, 16)] * 3


def test_mri_patches_in_snr_units():
    train, _ = noisy_photos(MRINoise(10, g_max=2), "grey", patch_size=32, num_patches=2,
                            return_noise_map=True)
    noisy, clean, g = train[0]
    assert clean.max() <= 10 + 1e-5 and g.min() >= 1 and g.max() <= 2


def test_bad_input(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(OSError, match="notes.png"):
        load_photo(bad)
    with pytest.raises(DataFileError, match=r"notes\.png: not a valid image file"):
        load_photo(str(bad), "grey")
    with pytest.raises(ValueError, match="unknown photograph 'lena'"):
        load_photo("lena")
    with pytest.raises(ValueError, match="mode"):
        load_photo("camera", "cmyk")
    with pytest.raises(ValueError, match="patch_size 600 is larger"):
        NoisyPatches(load_photos("test", "grey"), GaussianNoise(25), patch_size=600)
    with pytest.raises(ValueError, match="split"):
        load_photos("val")


def test_missing_scikit_image_names_the_extra(monkeypatch):
    import sys

    from minicnn.data import photos

    monkeypatch.setitem(sys.modules, "skimage", None)  # an import of it now fails
    with pytest.raises(RuntimeError, match=r'scikit-image: pip install "minicnn\[data\]"'):
        photos._read.__wrapped__("camera")  # past the cache
