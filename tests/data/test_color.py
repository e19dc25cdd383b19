"""RGB <-> YCbCr (BT.601 studio swing) against scikit-image's ``rgb2ycbcr`` (which works
on the 0-255 scale) and a hand-worked pixel; grey against Pillow's ``convert("L")``."""

from __future__ import annotations

import numpy as np
import pytest

from minicnn.data.color import rgb_to_grey, rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb

RNG = np.random.default_rng(0)


def test_hand_worked_pixels():
    # white: Y = 16 + 65.481 + 128.553 + 24.966 = 235; Cb = Cr = 128. black: (16, 128, 128)
    # pure red: Y = 16 + 65.481, Cb = 128 - 37.797, Cr = 128 + 112
    rgb = np.array([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])[:, None, :]  # (3,1,3)
    out = rgb_to_ycbcr(rgb) * 255
    np.testing.assert_allclose(out[:, 0, 0], [235, 128, 128], atol=1e-9)
    np.testing.assert_allclose(out[:, 0, 1], [16, 128, 128], atol=1e-9)
    np.testing.assert_allclose(out[:, 0, 2], [16 + 65.481, 128 - 37.797, 128 + 112], atol=1e-9)


def test_equal_to_scikit_image_and_round_trip():
    color = pytest.importorskip("skimage.color")
    image = RNG.random((2, 3, 9, 7)).astype(np.float32)  # (N, 3, H, W)
    ours = rgb_to_ycbcr(image)
    assert ours.dtype == np.float32 and ours.shape == image.shape
    ref = color.rgb2ycbcr(image, channel_axis=1) / 255
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    np.testing.assert_allclose(rgb_to_y(image), ref[:, :1], atol=1e-6)
    np.testing.assert_allclose(ycbcr_to_rgb(ours), image, atol=1e-5)
    # channels last
    np.testing.assert_allclose(rgb_to_ycbcr(image[0].transpose(1, 2, 0), channel_axis=-1),
                               ref[0].transpose(1, 2, 0), atol=1e-6)


def test_grey_is_pillows_luma():
    from PIL import Image

    image = RNG.integers(0, 256, (3, 8, 10)).astype(np.uint8)
    pil = np.asarray(Image.fromarray(image.transpose(1, 2, 0)).convert("L"), dtype=np.float64)
    ours = rgb_to_grey(image / 255.0)[0] * 255
    np.testing.assert_allclose(ours, pil, atol=0.51)  # Pillow rounds to integers


def test_bad_input():
    with pytest.raises(ValueError, match=r"3 channels on axis -3, got shape \(4, 5, 5\)"):
        rgb_to_ycbcr(np.zeros((4, 5, 5)))
    with pytest.raises(TypeError, match="dtype"):
        rgb_to_grey(np.array([["a"] * 3]), channel_axis=-1)
