"""Super-resolution data: PyTorch's bicubic, SRCNN's degradation, aligned patch pairs.

* :func:`bicubic_resize` equals ``torch.nn.functional.interpolate(mode="bicubic")`` (up and
  down, float32 and float64) and minicnn's own ``F.interpolate``, which shares its weights;
* with ``antialias=True`` it equals PyTorch's ``antialias=True`` (down and up);
* :func:`degrade` equals PyTorch's antialiased bicubic down by the scale and bicubic up
  again, each clipped;
* a training sample's blurry and sharp patches are the same window (found by content in
  the degraded image, through all 8 flips/rotations); with ``by_area`` every window of
  every image is equally likely (the images' shares of the patches counted);
* bad scales and sizes raise naming the argument.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import minicnn
import minicnn.nn.functional as F
from minicnn.data import rng as data_rng
from minicnn.data.color import rgb_to_y
from minicnn.data.photos import load_photos
from minicnn.data.restoration import dihedral
from minicnn.data.superres import (
    SuperResImages,
    SuperResPatches,
    bicubic_resize,
    degrade,
    modcrop,
    superres_photos,
)


def _torch_bicubic(x: np.ndarray, size, antialias: bool = False) -> np.ndarray:
    return TF.interpolate(torch.tensor(x)[None], size=size, mode="bicubic",
                          antialias=antialias)[0].numpy()


@pytest.mark.parametrize("dtype, tol", [(np.float32, 5e-6), (np.float64, 1e-13)])
@pytest.mark.parametrize("size", [(4, 5), (39, 51), (13, 30), (1, 1), (26, 8)])
def test_bicubic_resize_matches_torch(size, dtype, tol):
    x = np.random.default_rng(0).random((2, 13, 17)).astype(dtype)
    out = bicubic_resize(x, size)
    assert out.dtype == dtype and out.shape == (2, *size)
    np.testing.assert_allclose(out, _torch_bicubic(x, size), rtol=0, atol=tol)


@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-6), (np.float64, 1e-13)])
@pytest.mark.parametrize("size", [(4, 5), (1, 1), (13, 3), (6, 17), (26, 40)])
def test_antialiased_bicubic_resize_matches_torch(size, dtype, tol):
    x = np.random.default_rng(2).random((2, 13, 17)).astype(dtype)
    out = bicubic_resize(x, size, antialias=True)
    assert out.dtype == dtype and out.shape == (2, *size)
    np.testing.assert_allclose(out, _torch_bicubic(x, size, antialias=True), rtol=0, atol=tol)


def test_bicubic_resize_equals_minicnn_interpolate():
    x = np.random.default_rng(1).random((1, 3, 11, 9))
    ours = F.interpolate(minicnn.tensor(x), size=(20, 4), mode="bicubic").numpy()
    np.testing.assert_allclose(bicubic_resize(x, (20, 4)), ours, rtol=0, atol=1e-13)
    np.testing.assert_allclose(bicubic_resize(x[0, 0], (20, 4)), ours[0, 0], rtol=0, atol=1e-13)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_degrade_is_torch_antialiased_bicubic_down_then_bicubic_up(scale):
    hr = np.random.default_rng(scale).random((1, 26, 31)).astype(np.float32)
    blurry, sharp = degrade(hr, scale)
    h, w = 26 - 26 % scale, 31 - 31 % scale
    assert sharp.shape == blurry.shape == (1, h, w)
    np.testing.assert_array_equal(sharp, hr[:, :h, :w])
    small = np.clip(_torch_bicubic(sharp, (h // scale, w // scale), antialias=True), 0, 1)
    expected = np.clip(_torch_bicubic(small, (h, w)), 0, 1)
    np.testing.assert_allclose(blurry, expected, rtol=0, atol=5e-6)
    assert blurry.dtype == np.float32 and blurry.min() >= 0 and blurry.max() <= 1


def test_degrade_keeps_smooth_images_and_blurs_detail():
    yy, xx = np.mgrid[0:30, 0:30] / 29.0
    smooth = (0.2 + 0.5 * xx * yy)[None].astype(np.float32)
    blurry, sharp = degrade(smooth, 3)
    assert np.abs(blurry - sharp)[:, 3:-3, 3:-3].max() < 0.01  # a smooth surface survives
    checker = ((np.indices((30, 30)).sum(0) % 2) * 1.0)[None].astype(np.float32)
    blurry, sharp = degrade(checker, 3)
    assert np.abs(blurry - sharp).mean() > 0.3  # pixel-level detail is gone


def _find(patch: np.ndarray, image: np.ndarray) -> list[tuple[int, int, int]]:
    """Every (k, top, left) where ``dihedral(image window, k)`` equals ``patch``."""
    size = patch.shape[-1]
    hits = []
    for top in range(image.shape[1] - size + 1):
        for left in range(image.shape[2] - size + 1):
            window = image[:, top:top + size, left:left + size]
            hits += [(k, top, left) for k in range(8)
                     if np.array_equal(dihedral(window, k), patch)]
    return hits


@pytest.mark.parametrize("augment", [False, True])
def test_patches_are_aligned_pairs(augment):
    rng = np.random.default_rng(2)
    images = [rng.random((1, 18, 21)).astype(np.float32), rng.random((1, 15, 15))]
    data = SuperResPatches(images, 3, patch_size=6, num_patches=5, augment=augment)
    pairs = [degrade(im, 3) for im in images]
    with data_rng.using(np.random.default_rng(3)):
        samples = [data[i] for i in range(len(data))]
    for blurry, sharp in samples:
        assert blurry.shape == sharp.shape == (1, 6, 6) and blurry.dtype == np.float32
        hits = [(i, hit) for i, (_, s) in enumerate(pairs) for hit in _find(sharp, s)]
        assert hits, "the sharp patch is no window of a degraded image"
        assert any(np.array_equal(dihedral(pairs[i][0][:, t:t + 6, l:l + 6], k), blurry)
                   for i, (k, t, l) in hits), "the blurry patch is not the same window"
        if not augment:
            assert any(k == 0 for _, (k, _, _) in hits)


@pytest.mark.parametrize("by_area", [True, False])
def test_patches_sample_windows_uniformly(by_area):
    # two flat images (0 and 1), one with 100 times the windows of the other: by area a patch
    # comes from each in proportion to its windows, else from each half the time
    small, large = np.zeros((1, 15, 15), np.float32), np.ones((1, 60, 60), np.float32)
    data = SuperResPatches([small, large], 3, patch_size=6, num_patches=4000, by_area=by_area)
    with data_rng.using(np.random.default_rng(4)):
        from_large = np.mean([data[i][1].mean() > 0.5 for i in range(len(data))])
    windows_small, windows_large = (15 - 6 + 1) ** 2, (60 - 6 + 1) ** 2
    expected = windows_large / (windows_small + windows_large) if by_area else 0.5
    assert abs(from_large - expected) < 0.025, (from_large, expected)


def test_datasets_bad_arguments():
    image = np.zeros((1, 12, 12), np.float32)
    for scale, match in ((1, "got 1"), (2.0, "got 2.0"), (True, "got True")):
        with pytest.raises(ValueError, match=f"scale must be an integer >= 2.*{match}"):
            degrade(image, scale)
    with pytest.raises(ValueError, match="patch_size 20 is larger than image 0"):
        SuperResPatches([image], 3, patch_size=20)
    with pytest.raises(ValueError, match=r"must be \(C, H, W\) with H, W >= scale 4"):
        degrade(np.zeros((1, 3, 12), np.float32), 4)
    with pytest.raises(TypeError, match="must be a float array, got dtype uint8"):
        bicubic_resize(np.zeros((4, 4), np.uint8), (2, 2))
    with pytest.raises(ValueError, match="SuperResImages: scale must be"):
        SuperResImages([image], 0)
    assert modcrop(np.zeros((1, 10, 11)), 3).shape == (1, 9, 9)


@pytest.mark.slow
def test_superres_photos_are_the_photographs_y_channel():
    train, test = superres_photos(scale=3, num_patches=4, test_crop=60)
    assert len(train) == 4 and len(test) == len(load_photos("test", "rgb"))
    blurry, sharp = train[0]
    assert blurry.shape == sharp.shape == (1, 33, 33)
    crops = [rgb_to_y(im)[:, :60, :60] for im in load_photos("test", "rgb", crop=60)]
    for (blurry, sharp), crop in zip(test, crops, strict=True):
        np.testing.assert_array_equal(sharp, crop)
        assert blurry.shape == (1, 60, 60)
