"""Pooling layers: thin wrappers over :mod:`minicnn.nn.functional.pooling` (no parameters).

``MaxPool2d``, ``AvgPool2d``, ``MaxPool1d``, ``AvgPool1d``, ``AdaptiveAvgPool2d``,
``AdaptiveMaxPool2d``, ``MaxUnpool2d``, and the global pools ``GlobalAvgPool2d`` /
``GlobalMaxPool2d`` (adaptive pooling to 1x1; not in PyTorch, which spells them
``AdaptiveAvgPool2d(1)``). Names, arguments, defaults and ``repr`` follow PyTorch.
"""

from __future__ import annotations

from minicnn.autograd.tensor import Tensor
from minicnn.nn import functional as F
from minicnn.nn.modules.module import Module

__all__ = [
    "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AvgPool1d", "AvgPool2d", "GlobalAvgPool2d",
    "GlobalMaxPool2d", "MaxPool1d", "MaxPool2d", "MaxUnpool2d",
]


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _single(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


class MaxPool2d(Module):
    """Max over each ``kernel_size`` window: ``(N, C, H, W) -> (N, C, H_out, W_out)``.

    ``stride`` defaults to ``kernel_size``; see :func:`minicnn.nn.functional.max_pool2d`.
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input: Tensor):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(MaxPool2d):
    """Max over each window along ``L``: ``(N, C, L) -> (N, C, L_out)``."""

    def forward(self, input: Tensor):
        return F.max_pool1d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)


class AvgPool2d(Module):
    """Mean over each ``kernel_size`` window: ``(N, C, H, W) -> (N, C, H_out, W_out)``.

    See :func:`minicnn.nn.functional.avg_pool2d` for the divisor rules.
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(Module):
    """Mean over each window along ``L``: ``(N, C, L) -> (N, C, L_out)``."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True):
        super().__init__()
        self.kernel_size = _single(kernel_size)
        self.stride = _single(stride if stride is not None else kernel_size)
        self.padding = _single(padding)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed ``output_size`` whatever the input size:
    ``(N, C, H, W) -> (N, C, *output_size)``; a None entry keeps that input size."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """Max pooling to a fixed ``output_size``: ``(N, C, H, W) -> (N, C, *output_size)``."""

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__()
        self.output_size = output_size
        self.return_indices = return_indices

    def forward(self, input: Tensor):
        return F.adaptive_max_pool2d(input, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class GlobalAvgPool2d(AdaptiveAvgPool2d):
    """Global average pooling, one value per channel: ``(N, C, H, W) -> (N, C, 1, 1)``
    (Network in Network; the head of GoogLeNet and ResNet). Same as ``AdaptiveAvgPool2d(1)``."""

    def __init__(self):
        super().__init__(1)

    def extra_repr(self) -> str:
        return ""


class GlobalMaxPool2d(AdaptiveMaxPool2d):
    """Global max pooling: ``(N, C, H, W) -> (N, C, 1, 1)``; same as ``AdaptiveMaxPool2d(1)``."""

    def __init__(self, return_indices: bool = False):
        super().__init__(1, return_indices)

    def extra_repr(self) -> str:
        return ""


class MaxUnpool2d(Module):
    """Partial inverse of ``MaxPool2d(return_indices=True)``: each value goes back to where
    its maximum was, zeros elsewhere (DeconvNet). ``forward(input, indices, output_size=None)``."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride if stride is not None else kernel_size)
        self.padding = _pair(padding)

    def forward(self, input: Tensor, indices, output_size=None) -> Tensor:
        return F.max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding,
                              output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
