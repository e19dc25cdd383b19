"""``Conv2dNormActivation``: convolution, then normalization, then activation -- the unit
the mobile architectures (MobileNetV2/V3, EfficientNet, MobileNetV1) are built from.

Named and laid out as torchvision's ``ops.Conv2dNormActivation``: a ``Sequential`` whose
children are ``0`` (the convolution), ``1`` (the norm) and ``2`` (the activation), so a
torchvision state dict (``features.0.0.weight``, ``features.0.1.running_mean``...) loads.
"""

from __future__ import annotations

from collections.abc import Callable

from minicnn.nn.modules.activation import ReLU
from minicnn.nn.modules.batchnorm import BatchNorm2d
from minicnn.nn.modules.container import Sequential
from minicnn.nn.modules.conv import Conv2d
from minicnn.nn.modules.module import Module

__all__ = ["Conv2dNormActivation"]


class Conv2dNormActivation(Sequential):
    """``x: (N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride)``.

    ``padding=None`` keeps the size at stride 1 (``(kernel_size - 1) // 2 * dilation``).
    ``norm_layer`` / ``activation_layer`` are layer classes (or factories such as
    ``functools.partial(nn.BatchNorm2d, eps=1e-3)``); ``None`` leaves the step out.
    ``bias=None`` gives the convolution a bias only when there is no norm layer.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, padding: int | None = None, groups: int = 1,
                 norm_layer: Callable[..., Module] | None = BatchNorm2d,
                 activation_layer: Callable[..., Module] | None = ReLU, dilation: int = 1,
                 inplace: bool | None = True, bias: bool | None = None):
        if not isinstance(kernel_size, int) or isinstance(kernel_size, bool) or kernel_size < 1:
            raise ValueError(f"Conv2dNormActivation: kernel_size must be a positive int, got "
                             f"{kernel_size!r}")
        if padding is None:
            padding = (kernel_size - 1) // 2 * dilation
        if bias is None:
            bias = norm_layer is None
        layers: list[Module] = [Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                                       dilation=dilation, groups=groups, bias=bias)]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            layers.append(activation_layer(**({} if inplace is None else {"inplace": inplace})))
        super().__init__(*layers)
        self.out_channels = out_channels
