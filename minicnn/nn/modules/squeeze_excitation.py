"""Squeeze-and-Excitation (Hu et al. 2018), named as torchvision's ``ops.SqueezeExcitation``.

A feature map reweights its own channels::

    s = avgpool(x)                        (N, C, 1, 1)   squeeze: one number per channel
    s = scale_activation(fc2(activation(fc1(s))))        excitation: C -> C/r -> C, in (0, 1)
    y = s * x                             (N, C, H, W)   each channel scaled by its weight

``fc1`` and ``fc2`` are 1x1 convolutions with bias (a linear layer on the pooled vector),
so a torchvision state dict (``fc1.weight: (C/r, C, 1, 1)``, ...) loads directly.
SENet uses ReLU and sigmoid with ``squeeze_channels = C / 16``; MobileNetV3 and
EfficientNet pass other widths and activations (e.g. ``scale_activation=nn.Hardsigmoid``).
"""

from __future__ import annotations

from collections.abc import Callable

from minicnn.autograd.tensor import Tensor
from minicnn.nn.modules.activation import ReLU, Sigmoid
from minicnn.nn.modules.conv import Conv2d
from minicnn.nn.modules.module import Module
from minicnn.nn.modules.pooling import AdaptiveAvgPool2d

__all__ = ["SqueezeExcitation"]


class SqueezeExcitation(Module):
    """``x: (N, input_channels, H, W) -> (N, input_channels, H, W)``, each channel rescaled.

    ``activation`` and ``scale_activation`` are layer classes (called with no arguments),
    the ``delta`` and ``sigma`` of the paper's Eq. 3.
    """

    def __init__(self, input_channels: int, squeeze_channels: int,
                 activation: Callable[..., Module] = ReLU,
                 scale_activation: Callable[..., Module] = Sigmoid):
        super().__init__()
        for arg, value in (("input_channels", input_channels),
                           ("squeeze_channels", squeeze_channels)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"SqueezeExcitation: {arg} must be a positive int, got {value!r}")
        self.avgpool = AdaptiveAvgPool2d(1)
        self.fc1 = Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def _scale(self, input: Tensor) -> Tensor:
        """The channel weights ``(N, C, 1, 1)``, each in the range of ``scale_activation``."""
        scale = self.avgpool(input)
        scale = self.activation(self.fc1(scale))
        return self.scale_activation(self.fc2(scale))

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim != 4 or input.shape[1] != self.fc1.in_channels:
            raise ValueError(f"SqueezeExcitation expects input (N, {self.fc1.in_channels}, H, W), "
                             f"got shape {tuple(input.shape)}")
        return self._scale(input) * input
