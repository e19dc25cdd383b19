"""RAW simulation: the Bayer mosaic and its packing worked out by hand, the bilinear
demosaic against a hand-worked case and an independent implementation (scipy.ndimage's
convolution with the textbook kernels) inside the image, the sRGB curve against
scikit-image's, and the RAW patches."""

from __future__ import annotations

import numpy as np
import pytest

from minicnn.data.noise import PoissonGaussianNoise
from minicnn.data.raw import (
    BAYER_PATTERNS,
    RawImages,
    RawPatches,
    bayer_masks,
    bayer_mosaic,
    demosaic_bilinear,
    linear_to_srgb,
    pack_bayer,
    raw_photos,
    simulate_raw,
    srgb_to_linear,
    unpack_bayer,
)

RNG = np.random.default_rng(0)


def test_mosaic_and_packing_by_hand():
    rgb = np.stack([np.full((4, 4), v) for v in (1.0, 2.0, 3.0)])  # R = 1, G = 2, B = 3
    np.testing.assert_array_equal(bayer_mosaic(rgb)[0], [[1, 2, 1, 2], [2, 3, 2, 3]] * 2)
    np.testing.assert_array_equal(bayer_mosaic(rgb, "GBRG")[0], [[2, 3, 2, 3], [1, 2, 1, 2]] * 2)
    packed = pack_bayer(bayer_mosaic(rgb))
    assert packed.shape == (4, 2, 2)
    np.testing.assert_array_equal(packed[:, 0, 0], [1, 2, 2, 3])  # R, G, G, B
    mosaic = RNG.random((1, 6, 8))
    np.testing.assert_array_equal(unpack_bayer(pack_bayer(mosaic)), mosaic)
    for pattern in BAYER_PATTERNS:  # one colour per pixel, half the pixels green
        masks = bayer_masks((4, 6), pattern)
        assert (masks.sum(axis=0) == 1).all() and masks[1].sum() == 12


def test_demosaic_hand_worked_4x4():
    m = np.arange(16, dtype=np.float64).reshape(1, 4, 4)  # RGGB: R at (0,0), B at (1,1)
    out = demosaic_bilinear(m)
    # at the blue pixel (1, 1): red from the 4 diagonals, green from the 4 edge neighbours
    assert out[0, 1, 1] == (0 + 2 + 8 + 10) / 4
    assert out[1, 1, 1] == (1 + 4 + 6 + 9) / 4
    assert out[2, 1, 1] == 5
    # at the green pixel (0, 1) of a red row: red from left and right, blue from below
    # (the row above is outside the image: the neighbours that exist)
    assert out[0, 0, 1] == (0 + 2) / 2 and out[2, 0, 1] == 5 and out[1, 0, 1] == 1
    # at the corner red pixel (0, 0): green from (0, 1) and (1, 0), blue from (1, 1)
    assert out[1, 0, 0] == (1 + 4) / 2 and out[2, 0, 0] == 5 and out[0, 0, 0] == 0


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_demosaic_equals_textbook_kernels_inside(pattern):
    ndimage = pytest.importorskip("scipy.ndimage")
    mosaic = RNG.random((1, 12, 16))
    masks = bayer_masks((12, 16), pattern)
    green = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]]) / 4
    red_blue = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 4
    ref = np.stack([ndimage.convolve(mosaic[0] * masks[c], k, mode="constant")
                    for c, k in enumerate((red_blue, green, red_blue))])
    out = demosaic_bilinear(mosaic, pattern)
    np.testing.assert_allclose(out[:, 1:-1, 1:-1], ref[:, 1:-1, 1:-1], atol=1e-12)
    # recorded samples are kept, and a constant colour comes back everywhere
    np.testing.assert_array_equal(out[masks], np.broadcast_to(mosaic, out.shape)[masks])
    flat = np.stack([np.full((12, 16), v) for v in (0.2, 0.5, 0.7)])
    np.testing.assert_allclose(demosaic_bilinear(bayer_mosaic(flat, pattern), pattern), flat)


def test_srgb_curve_equals_scikit_image():
    color = pytest.importorskip("skimage.color")
    x = RNG.random((3, 5, 5))
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-12)
    # rgb2xyz undoes the sRGB curve, then mixes the channels: unmix them again
    xyz = color.rgb2xyz(x, channel_axis=0)
    linear = np.einsum("ij,jhw->ihw", color.colorconv.rgb_from_xyz, xyz)
    np.testing.assert_allclose(srgb_to_linear(x), linear, atol=1e-9)


def test_raw_patches():
    images = [RNG.random((3, 40, 50)).astype(np.float32)]
    ds = RawPatches(images, patch_size=16, num_patches=5, noise=None, seed=1)
    raw, rgb = ds[0]
    assert raw.shape == (4, 8, 8) and rgb.shape == (3, 16, 16) and raw.dtype == np.float32
    np.testing.assert_array_equal(unpack_bayer(raw), bayer_mosaic(rgb))
    np.testing.assert_array_equal(ds[0][0], raw)  # seeded: a fixed test set
    noisy, _ = RawPatches(images, 16, 5, seed=1)[0]  # default sensor noise
    assert 0.005 < np.std(noisy - raw) < 0.2
    lin, rgb2 = RawPatches(images, 16, 5, noise=None, linear=True, packed=False, seed=1)[0]
    np.testing.assert_allclose(lin, bayer_mosaic(srgb_to_linear(rgb2)))
    with pytest.raises(ValueError, match="even"):
        RawPatches(images, patch_size=15)
    with pytest.raises(ValueError, match="RGB"):
        RawPatches([np.zeros((1, 20, 20))], patch_size=8)
    with pytest.raises(ValueError, match="pattern"):
        demosaic_bilinear(np.zeros((1, 4, 4)), "RGBG")
    with pytest.raises(ValueError, match="even"):
        bayer_mosaic(np.zeros((3, 5, 4)))


def test_simulate_raw_is_the_mosaic_of_linear_light_plus_shot_and_read_noise():
    rgb = np.full((3, 64, 64), 0.5, np.float32)
    clean = simulate_raw(rgb, None, RNG, linear=True)
    np.testing.assert_allclose(clean, pack_bayer(bayer_mosaic(srgb_to_linear(rgb))))
    a, b = 1e-3, 1e-5
    noisy = simulate_raw(rgb, PoissonGaussianNoise(a, b), np.random.default_rng(1), linear=True)
    x = float(srgb_to_linear(np.float32(0.5)))  # 0.214: the linear light of sRGB 0.5
    assert noisy.mean() == pytest.approx(x, abs=2e-3)
    assert noisy.var() == pytest.approx(a * x + b, rel=0.1)  # Var = a x + b
    assert simulate_raw(rgb, None, RNG, packed=False).shape == (1, 64, 64)


def test_raw_images_whole_cropped_and_seeded():
    images = [RNG.random((3, 70, 45)).astype(np.float32),
              RNG.random((3, 64, 64)).astype(np.float32)]
    ds = RawImages(images, seed=3, multiple=32)
    assert len(ds) == 2
    raw, rgb = ds[0]
    assert rgb.shape == (3, 64, 32) and raw.shape == (4, 32, 16)
    np.testing.assert_array_equal(rgb, images[0][:, 3:67, 6:38])  # the central window
    np.testing.assert_array_equal(ds[0][0], raw)  # the noise is fixed by the seed
    assert not np.array_equal(RawImages(images, seed=4, multiple=32)[0][0], raw)
    assert 0.005 < np.std(raw - pack_bayer(bayer_mosaic(rgb))) < 0.2
    with pytest.raises(ValueError, match="multiple"):
        RawImages(images, multiple=3)
    with pytest.raises(ValueError, match="RGB"):
        RawImages([np.zeros((1, 8, 8))])


def test_raw_photos_train_and_test_are_different_colour_photographs():
    pytest.importorskip("skimage")
    pytest.importorskip("sklearn")
    from minicnn.data.photos import load_photos

    train, test = raw_photos(None, patch_size=32, num_patches=4, test_crop=64, multiple=32)
    assert len(test) == len(load_photos("test", colour_only=True)) == 4
    train_images = {im.tobytes() for im in train.images}
    for raw, rgb in test:
        assert rgb.shape == (3, 64, 64) and raw.shape == (4, 32, 32)
        np.testing.assert_array_equal(unpack_bayer(raw), bayer_mosaic(rgb))  # noise None
    colour_train = load_photos("train", colour_only=True)
    assert len(train.images) == len(colour_train) and train_images == {
        im.tobytes() for im in colour_train}
