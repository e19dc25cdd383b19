"""Landmark models: the heatmap U-Net keeps the image size with one channel per landmark;
the L2-regression baseline has exactly the U-Net's contracting path (same keys, shapes and
initial weights for the same seed) and equals a PyTorch transcription (forward and input
gradient, float64); bad input names the sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minicnn
from minicnn.models.segmentation import landmark_regressor, landmark_unet
from tests.models.test_segmentation import (
    _compare_forward_backward,
    _copy_to_torch,
    _TorchDoubleConv,
)


class _TorchRegressor(torch.nn.Module):
    """The U-Net's contracting path, flattened into two fully connected layers (DeepPose)."""

    def __init__(self, k, cin, width, depth, size, hidden):
        super().__init__()
        w = [width * 2 ** i for i in range(depth + 1)]
        self.encoder = torch.nn.ModuleList(
            _TorchDoubleConv(c, o, 1, True) for c, o in zip([cin, *w[:-2]], w[:-1]))
        self.bottleneck = _TorchDoubleConv(w[-2], w[-1], 1, True)
        side = size // 2 ** depth
        self.head = torch.nn.Sequential(torch.nn.Flatten(),
                                        torch.nn.Linear(w[-1] * side * side, hidden),
                                        torch.nn.ReLU(), torch.nn.Linear(hidden, 2 * k))
        self.k, self.size = k, size

    def forward(self, x):
        for block in self.encoder:
            x = torch.nn.functional.max_pool2d(block(x), 2)
        x = self.bottleneck(x)
        return (self.head(x).reshape(len(x), self.k, 2) + 0.5) * self.size


def test_heatmap_unet_keeps_the_size_with_one_channel_per_landmark():
    model = landmark_unet(4, base_width=4, depth=2)
    assert model.output == "heatmaps"
    assert model(minicnn.zeros(2, 3, 20, 12)).shape == (2, 4, 20, 12)


@pytest.mark.parametrize("train", [True, False])
def test_regressor_equals_a_pytorch_transcription(train):
    minicnn.manual_seed(0)
    model = landmark_regressor(3, base_width=4, depth=2, image_size=16, hidden=8)
    reference = _TorchRegressor(3, 3, 4, 2, 16, 8)
    _copy_to_torch(model, reference)
    model.train(train)
    reference.train(train)
    x = np.random.default_rng(0).standard_normal((3, 3, 16, 16))
    _compare_forward_backward(model, reference, x)
    assert model.output == "coordinates"


def test_regressor_has_the_unets_encoder():
    minicnn.manual_seed(3)
    heat = landmark_unet(5, base_width=4, depth=3).state_dict()
    minicnn.manual_seed(3)
    reg = landmark_regressor(5, base_width=4, depth=3, image_size=24).state_dict()
    encoder = [k for k in heat if k.startswith(("encoder.", "bottleneck."))]
    assert encoder and encoder == [k for k in reg if not k.startswith("head.")]
    for k in encoder:  # same shapes, and the same initial weights from the same seed
        np.testing.assert_array_equal(heat[k].numpy(), reg[k].numpy())


def test_landmark_models_bad_input():
    with pytest.raises(ValueError, match="image_size must be a positive multiple of 2 \\*\\* "
                                         "depth = 8, got 20"):
        landmark_regressor(image_size=20)
    model = landmark_regressor(base_width=2, image_size=16)
    with pytest.raises(ValueError, match=r"expects input \(N, 3, 16, 16\), got shape "
                                         r"\(1, 3, 32, 32\)"):
        model(minicnn.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"needs H, W >= 8: an input of 4x9"):
        landmark_unet(base_width=2)(minicnn.zeros(1, 3, 4, 9))
