"""``Conv2d`` and ``ConvTranspose2d``: thin layers over ``F.conv2d`` / ``F.conv_transpose2d``.

Parameter names, shapes, defaults, initialization and ``repr`` follow PyTorch, so a
PyTorch ``state_dict`` loads as is and ``print(model)`` reads the same:

* ``Conv2d.weight: (out_channels, in_channels // groups, kh, kw)``
* ``ConvTranspose2d.weight: (in_channels, out_channels // groups, kh, kw)``
* ``bias: (out_channels,)``; both initialised as PyTorch does: ``kaiming_uniform_(a=sqrt(5))``
  for the weight (U(-1/sqrt(fan_in), 1/sqrt(fan_in))) and the bias uniform on the same bound.
"""

from __future__ import annotations

import numbers

from minicnn.autograd.tensor import Tensor
from minicnn.nn import functional as F
from minicnn.nn.functional.conv import int_pair
from minicnn.nn.modules import init
from minicnn.nn.modules.module import Module
from minicnn.nn.modules.parameter import empty_parameter

__all__ = ["Conv2d", "ConvTranspose2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """What Conv2d and ConvTranspose2d share: checks, parameters, init and ``extra_repr``."""

    def __init__(self, layer: str, in_channels: int, out_channels: int, kernel_size, stride,
                 padding, dilation, transposed: bool, output_padding, groups: int, bias: bool,
                 padding_mode: str, device, dtype):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("groups", groups)):
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")
        if in_channels % groups:
            raise ValueError(f"{layer}: in_channels={in_channels} must be divisible by "
                             f"groups={groups}")
        if out_channels % groups:
            raise ValueError(f"{layer}: out_channels={out_channels} must be divisible by "
                             f"groups={groups}")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = int_pair(kernel_size, "kernel_size", layer, minimum=1)
        self.stride = int_pair(stride, "stride", layer, minimum=1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{layer}: padding must be 'same', 'valid', an int or a pair "
                                 f"of ints, got {padding!r}")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError(f"{layer}: padding='same' is not supported for strided "
                                 f"convolutions (got stride={self.stride})")
            self.padding = padding
        else:
            self.padding = int_pair(padding, "padding", layer, minimum=0)
        self.dilation = int_pair(dilation, "dilation", layer, minimum=1)
        self.transposed = transposed
        self.output_padding = int_pair(output_padding, "output_padding", layer, minimum=0)
        self.groups = int(groups)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{layer}: padding_mode must be one of {_PADDING_MODES}, got "
                             f"{padding_mode!r}")
        self.padding_mode = padding_mode
        # F.pad's amounts for the non-zero padding modes: (left, right, top, bottom)
        if self.padding == "same":
            totals = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size, strict=True)]
            (th, tw) = totals
            self._reversed_padding_repeated_twice = (tw // 2, tw - tw // 2, th // 2, th - th // 2)
        elif self.padding == "valid":
            self._reversed_padding_repeated_twice = (0, 0, 0, 0)
        else:
            ph, pw = self.padding
            self._reversed_padding_repeated_twice = (pw, pw, ph, ph)
        if transposed:
            shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        else:
            shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        self.weight = empty_parameter(shape, device, dtype)
        if bias:
            self.bias = empty_parameter((self.out_channels,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default initialisation (see the module docstring)."""
        init.default_init_(self.weight, self.bias)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
            f"stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv2d(_ConvNd):
    """2-d convolution layer: ``x: (N, C_in, H, W) -> (N, C_out, H_out, W_out)``.

    ``padding``: int, pair, 'valid' or 'same'; ``padding_mode``: 'zeros' (the padding is
    part of the convolution) or 'reflect' / 'replicate' / 'circular' (the input is padded
    by ``F.pad`` first, then convolved without padding). See ``F.conv2d`` for the rest.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None):
        super().__init__("Conv2d", in_channels, out_channels, kernel_size, stride, padding,
                         dilation, False, 0, groups, bias, padding_mode, device, dtype)

    def forward(self, input: Tensor) -> Tensor:
        if self.padding_mode != "zeros":
            padded = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return F.conv2d(padded, self.weight, self.bias, self.stride, 0, self.dilation,
                            self.groups)
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


class ConvTranspose2d(_ConvNd):
    """2-d transposed convolution layer ("deconvolution"): upsamples by ``stride``.

    ``x: (N, C_in, H, W) -> (N, C_out, H_out, W_out)`` with
    ``H_out = (H - 1)*stride - 2*padding + dilation*(kh - 1) + output_padding + 1``.
    ``forward(input, output_size=None)``: ``output_size`` picks the output_padding that
    gives that size (as in PyTorch). Only ``padding_mode='zeros'`` exists.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f"ConvTranspose2d: only padding_mode='zeros' is supported, got "
                             f"{padding_mode!r}")
        if isinstance(padding, str):
            raise ValueError(f"ConvTranspose2d: padding must be an int or a pair of ints, got "
                             f"{padding!r}")
        super().__init__("ConvTranspose2d", in_channels, out_channels, kernel_size, stride,
                         padding, dilation, True, output_padding, groups, bias, padding_mode,
                         device, dtype)

    def _output_padding(self, input: Tensor, output_size) -> tuple[int, int]:
        """The output_padding that makes the output ``output_size`` (H, W) (or (N, C, H, W))."""
        if output_size is None:
            return self.output_padding
        size = tuple(int(s) for s in output_size)
        if len(size) == input.ndim:
            size = size[2:]
        if len(size) != 2:
            raise ValueError(f"ConvTranspose2d: output_size must have 2 or {input.ndim} "
                             f"elements, got {tuple(output_size)}")
        result = []
        for d in range(2):
            smallest = ((input.shape[d + 2] - 1) * self.stride[d] - 2 * self.padding[d]
                        + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            largest = smallest + self.stride[d] - 1
            if not smallest <= size[d] <= largest:
                raise ValueError(
                    f"ConvTranspose2d: requested output size {size} is not reachable from "
                    f"input of shape {input.shape}: dimension {d} must lie in "
                    f"[{smallest}, {largest}]"
                )
            result.append(size[d] - smallest)
        return result[0], result[1]

    def forward(self, input: Tensor, output_size=None) -> Tensor:
        output_padding = self._output_padding(input, output_size)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  output_padding, self.groups, self.dilation)
