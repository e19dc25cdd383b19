"""Transforms against hand-computed results (and F.interpolate-style bilinear resizing)."""

import numpy as np
import pytest
import torch

from minicnn.data import rng as data_rng
from minicnn.data import transforms as T


def test_to_float_layouts():
    hw = np.array([[0, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(T.ToFloat()(hw), [[[0.0, 1.0]]])
    hwc = np.zeros((4, 5, 3), dtype=np.uint8)
    assert T.ToFloat()(hwc).shape == (3, 4, 5)
    np.testing.assert_allclose(T.ToFloat(scale=16)(np.full((2, 2), 8.0)), np.full((1, 2, 2), 0.5))


def test_normalize_by_hand():
    img = np.stack([np.full((2, 2), 1.0), np.full((2, 2), 3.0)]).astype(np.float32)
    out = T.Normalize([0.5, 1.0], [0.5, 2.0])(img)
    np.testing.assert_allclose(out[0], 1.0)
    np.testing.assert_allclose(out[1], 1.0)
    with pytest.raises(ValueError, match="std must be positive"):
        T.Normalize([0.0], [0.0])
    with pytest.raises(ValueError, match="3 channel means for an image with 2 channels"):
        T.Normalize([0, 0, 0], [1, 1, 1])(img)


def test_random_crop_is_a_window_of_the_padded_image():
    img = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    padded = np.pad(img, ((0, 0), (1, 1), (1, 1)))
    with data_rng.using(np.random.default_rng(0)):
        out = T.RandomCrop(4, padding=1)(img)
    windows = [padded[:, i : i + 4, j : j + 4] for i in range(3) for j in range(3)]
    assert any(np.array_equal(out, w) for w in windows)
    with pytest.raises(ValueError, match="larger than the padded image"):
        T.RandomCrop(7, padding=1)(img)


def test_horizontal_flip_p1_and_p0():
    img = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(img), img[:, :, ::-1])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(0.0)(img), img)


@pytest.mark.parametrize("size", [(8, 8), (3, 5), (12, 7)])
def test_resize_matches_torch_bilinear(size):
    img = np.random.default_rng(0).random((2, 6, 6)).astype(np.float32)
    expected = torch.nn.functional.interpolate(
        torch.tensor(img)[None], size=size, mode="bilinear", align_corners=False
    )[0].numpy()
    np.testing.assert_allclose(T.Resize(size)(img), expected, rtol=1e-5, atol=1e-6)


def test_random_resized_crop_shape_and_reproducibility():
    img = np.random.default_rng(0).random((3, 20, 30)).astype(np.float32)
    t = T.RandomResizedCrop(16)
    with data_rng.using(np.random.default_rng(5)):
        a = t(img)
    with data_rng.using(np.random.default_rng(5)):
        b = t(img)
    assert a.shape == (3, 16, 16)
    np.testing.assert_array_equal(a, b)


def test_compose_applies_in_order():
    t = T.Compose([lambda x: x + 1, lambda x: x * 2])
    assert t(np.float32(1)) == 4
