"""Pooling: max, average, adaptive (and so global) pooling, and max-unpooling.

Geometry, as in PyTorch. Along one axis of size ``n`` with kernel ``k``, stride ``s``,
padding ``p`` and dilation ``d``, output ``i`` covers the input positions
``i*s - p + j*d`` for ``j < k``; positions outside ``0..n-1`` are padding. The output size
is ``floor((n + 2p - d*(k-1) - 1) / s) + 1``; with ``ceil_mode=True`` the division rounds
up, but a last window that would *start* in the right padding is dropped
(``(out - 1) * s >= n + p``). Padding may be at most half the kernel (``p <= k // 2``).

* Max pooling: padding is ``-inf`` (it never wins); ``indices`` are flat positions
  ``h * W + w`` in each (n, c) plane; among equal maxima the first in row-major window
  order wins, and a NaN wins over everything (PyTorch's CPU rule).
* Average pooling divides the window sum by the window clipped to the padded input
  (``count_include_pad=True``) or to the input itself (``False``), or by
  ``divisor_override``. A ceil_mode window hanging past the padding counts only what lies
  inside the padded input.
* Adaptive pooling splits an axis of size ``n`` into ``out`` bins, bin ``i`` covering
  ``floor(i*n/out) .. ceil((i+1)*n/out) - 1`` (bins may overlap by one). Global pooling is
  adaptive pooling with output size 1.
* Max-unpooling puts each value back at its index (the "switches" of Zeiler and Fergus's
  DeconvNet), zeros elsewhere.

Every op takes ``(N, C, H, W)`` or, like PyTorch, an unbatched ``(C, H, W)``.
"""

from __future__ import annotations

from numbers import Integral

from minicnn.autograd.function import Function
from minicnn.autograd.tensor import Tensor
from minicnn.backend import backend_of

__all__ = [
    "adaptive_avg_pool2d", "adaptive_max_pool2d", "avg_pool1d", "avg_pool2d", "max_pool1d",
    "max_pool2d", "max_unpool2d", "pool_output_size",
]


# ---------------------------------------------------------------- argument checks


def _is_int(v) -> bool:
    return isinstance(v, Integral) and not isinstance(v, bool)


def _pair(value, name: str, fn: str) -> tuple[int, int]:
    """An int or a sequence of one or two ints as ``(rows, cols)``."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(items) == 1:
        items = items * 2
    if len(items) != 2 or not all(_is_int(v) for v in items):
        raise TypeError(f"{fn}: {name} must be an int or a pair of ints, got {value!r}")
    return int(items[0]), int(items[1])


def _single(value, name: str, fn: str) -> int:
    """An int or a sequence of one int."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(items) != 1 or not _is_int(items[0]):
        raise TypeError(f"{fn}: {name} must be an int or a 1-tuple of ints, got {value!r}")
    return int(items[0])


def _check_input(input, fn: str, layout: str = "N, C, H, W") -> None:
    """``input`` must be a float Tensor shaped ``layout`` or, unbatched, without the N."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{fn}: input must be a Tensor, got {type(input).__name__}")
    ndim = layout.count(",") + 1
    if input.ndim not in (ndim, ndim - 1):
        raise ValueError(f"{fn}: input must be {ndim}-D ({layout}) or unbatched {ndim - 1}-D "
                         f"({layout[3:]}), got shape {input.shape}")
    if 0 in input.shape[input.ndim - ndim + 1:]:
        raise ValueError(f"{fn}: input has an empty channel or spatial dimension: {input.shape}")
    if input.dtype.kind != "f":
        raise TypeError(f"{fn}: input must be floating point, got dtype {input.dtype}")


def pool_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1,
                     ceil_mode: bool = False) -> int:
    """Output length of pooling along one axis (PyTorch's ``pooling_output_shape``)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1  # // floors, even below 0
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # the last window would start in the right padding: drop it
    return out


def _geometry(fn: str, hw, kernel_size, stride, padding, dilation, ceil_mode):
    """Checked (kernel, stride, padding, dilation, out_hw) pairs for an input of size ``hw``."""
    kernel = _pair(kernel_size, "kernel_size", fn)
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        stride = kernel
    stride = _pair(stride, "stride", fn)
    padding, dilation = _pair(padding, "padding", fn), _pair(dilation, "dilation", fn)
    if min(kernel) <= 0:
        raise ValueError(f"{fn}: kernel_size must be positive, got {kernel_size!r}")
    if min(stride) <= 0:
        raise ValueError(f"{fn}: stride must be positive (the window must move), got {stride}")
    if min(dilation) <= 0:
        raise ValueError(f"{fn}: dilation must be positive, got {dilation}")
    if min(padding) < 0:
        raise ValueError(f"{fn}: padding must be >= 0, got {padding}")
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(
            f"{fn}: pad should be at most half of kernel size, got padding={padding} with "
            f"kernel_size={kernel} (each padding must be <= kernel_size // 2)"
        )
    out_hw = tuple(pool_output_size(n, k, s, p, d, ceil_mode)
                   for n, k, s, p, d in zip(hw, kernel, stride, padding, dilation, strict=True))
    if min(out_hw) < 1:
        raise ValueError(
            f"{fn}: input of spatial size {tuple(hw)} is too small for kernel_size={kernel} "
            f"with dilation={dilation} and padding={padding}: the output would be {out_hw}"
        )
    for axis in range(2):  # only a dilated window that starts in the padding can miss the input
        n, k, s, p, d = hw[axis], kernel[axis], stride[axis], padding[axis], dilation[axis]
        for o in range(out_hw[axis]):
            start = o * s - p
            if start >= 0:
                break
            first = start + (-start + d - 1) // d * d  # first position >= 0 the window reads
            if first > start + (k - 1) * d or first >= n:
                raise ValueError(
                    f"{fn}: with kernel_size={kernel}, dilation={dilation} and "
                    f"padding={padding}, window {o} along {('height', 'width')[axis]} reads "
                    f"only padding (the input has size {n} there); use less padding or "
                    f"dilation (PyTorch returns -inf there with an out-of-range index)"
                )
    return kernel, stride, padding, dilation, out_hw


def _batched(input: Tensor, ndim: int = 4) -> Tensor:
    """An unbatched input with a batch axis of 1 added (batched inputs pass through)."""
    return input.unsqueeze(0) if input.ndim == ndim - 1 else input


def _unbatched(out: Tensor, input: Tensor, ndim: int = 4) -> Tensor:
    return out.squeeze(0) if input.ndim == ndim - 1 else out


# ---------------------------------------------------------------- max pooling


class MaxPool2d(Function):
    """Max over each window; backward sends each output gradient to the input its index
    names. ``switches``, when given, is a list that receives the indices (return_indices)."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation, out_hw, switches=None):
        out, indices = backend_of(x).max_pool2d(x, kernel, stride, padding, dilation, out_hw)
        ctx.save_for_backward(indices)
        ctx.in_hw = x.shape[2:]
        if switches is not None:
            switches.append(indices)
        return out

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_tensors
        return backend_of(grad).max_pool2d_backward(grad, indices, ctx.in_hw)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    """2-D max pooling. ``input: (N, C, H, W) -> (N, C, H_out, W_out)`` (see the module
    docstring for the geometry). With ``return_indices`` also returns the int64 flat
    indices ``h * W + w`` of each maximum, the input that :func:`max_unpool2d` takes."""
    _check_input(input, "max_pool2d")
    x = _batched(input)
    kernel, stride, padding, dilation, out_hw = _geometry(
        "max_pool2d", x.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    switches: list = []
    out = MaxPool2d.apply(x, kernel, stride, padding, dilation, out_hw, switches=switches)
    out = _unbatched(out, input)
    if not return_indices:
        return out
    return out, _unbatched(Tensor._wrap(switches[0]), input)


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    """1-D max pooling: ``input: (N, C, L) -> (N, C, L_out)`` (or unbatched ``(C, L)``),
    :func:`max_pool2d` on a height-1 image; indices are positions along ``L``."""
    _check_input(input, "max_pool1d", "N, C, L")
    fn = "max_pool1d"
    stride = None if stride is None or stride in ([], ()) else (1, _single(stride, "stride", fn))
    result = max_pool2d(input.unsqueeze(-2), (1, _single(kernel_size, "kernel_size", fn)), stride,
                        (0, _single(padding, "padding", fn)),
                        (1, _single(dilation, "dilation", fn)), ceil_mode, return_indices)
    if return_indices:
        return result[0].squeeze(-2), result[1].squeeze(-2)
    return result.squeeze(-2)


# ---------------------------------------------------------------- average pooling


class AvgPool2d(Function):
    """Mean over each window; backward spreads each output gradient over its window."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, out_hw, count_include_pad, divisor_override):
        ctx.args = (x.shape[2:], kernel, stride, padding, count_include_pad, divisor_override)
        return backend_of(x).avg_pool2d(x, kernel, stride, padding, out_hw, count_include_pad,
                                        divisor_override)

    @staticmethod
    def backward(ctx, grad):
        return backend_of(grad).avg_pool2d_backward(grad, *ctx.args)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """2-D average pooling. ``input: (N, C, H, W) -> (N, C, H_out, W_out)``.

    The divisor is the window clipped to the padded input (``count_include_pad=True``),
    to the input alone (``False``), or ``divisor_override`` when given.
    """
    _check_input(input, "avg_pool2d")
    if divisor_override is not None and (not _is_int(divisor_override) or divisor_override <= 0):
        raise ValueError(f"avg_pool2d: divisor_override must be a positive int or None, got "
                         f"{divisor_override!r}")
    x = _batched(input)
    kernel, stride, padding, _, out_hw = _geometry(
        "avg_pool2d", x.shape[2:], kernel_size, stride, padding, 1, ceil_mode)
    out = AvgPool2d.apply(x, kernel, stride, padding, out_hw, bool(count_include_pad),
                          divisor_override)
    return _unbatched(out, input)


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """1-D average pooling: ``input: (N, C, L) -> (N, C, L_out)`` (or unbatched ``(C, L)``)."""
    _check_input(input, "avg_pool1d", "N, C, L")
    fn = "avg_pool1d"
    stride = None if stride is None or stride in ([], ()) else (1, _single(stride, "stride", fn))
    out = avg_pool2d(input.unsqueeze(-2), (1, _single(kernel_size, "kernel_size", fn)), stride,
                     (0, _single(padding, "padding", fn)), ceil_mode, count_include_pad)
    return out.squeeze(-2)


# ---------------------------------------------------------------- adaptive pooling


def _adaptive_size(output_size, hw, fn: str) -> tuple[int, int]:
    """``output_size`` (int, or pair whose None entries keep the input size) as two ints."""
    items = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    if len(items) != 2:
        raise ValueError(f"{fn}: output_size must be an int or a pair, got {output_size!r}")
    out = tuple(n if v is None else v for v, n in zip(items, hw, strict=True))
    if not all(_is_int(v) and v > 0 for v in out):
        raise ValueError(f"{fn}: output_size entries must be positive ints or None, got "
                         f"{output_size!r}")
    return int(out[0]), int(out[1])


class AdaptiveAvgPool2d(Function):
    """Mean over each adaptive bin; backward spreads each gradient evenly over its bin."""

    @staticmethod
    def forward(ctx, x, out_hw):
        ctx.in_hw = x.shape[2:]
        return backend_of(x).adaptive_avg_pool2d(x, out_hw)

    @staticmethod
    def backward(ctx, grad):
        return backend_of(grad).adaptive_avg_pool2d_backward(grad, ctx.in_hw)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling to a fixed ``output_size``: ``(N, C, H, W) -> (N, C, *output_size)``.

    ``output_size`` is an int or a pair; a None entry keeps that input size. Output 1 is
    global average pooling (Network in Network, GoogLeNet, ResNet).
    """
    _check_input(input, "adaptive_avg_pool2d")
    x = _batched(input)
    out_hw = _adaptive_size(output_size, x.shape[2:], "adaptive_avg_pool2d")
    return _unbatched(AdaptiveAvgPool2d.apply(x, out_hw), input)


class AdaptiveMaxPool2d(MaxPool2d):
    """Max over each adaptive bin; backward is :class:`MaxPool2d`'s, by the indices."""

    @staticmethod
    def forward(ctx, x, out_hw, switches=None):
        out, indices = backend_of(x).adaptive_max_pool2d(x, out_hw)
        ctx.save_for_backward(indices)
        ctx.in_hw = x.shape[2:]
        if switches is not None:
            switches.append(indices)
        return out


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """Max pooling to a fixed ``output_size``: ``(N, C, H, W) -> (N, C, *output_size)``,
    with the flat indices ``h * W + w`` of the maxima when ``return_indices``."""
    _check_input(input, "adaptive_max_pool2d")
    x = _batched(input)
    out_hw = _adaptive_size(output_size, x.shape[2:], "adaptive_max_pool2d")
    switches: list = []
    out = _unbatched(AdaptiveMaxPool2d.apply(x, out_hw, switches=switches), input)
    if not return_indices:
        return out
    return out, _unbatched(Tensor._wrap(switches[0]), input)


# ---------------------------------------------------------------- max-unpooling


class MaxUnpool2d(Function):
    """Scatter each value to the position its index names; backward gathers there."""

    @staticmethod
    def forward(ctx, x, indices, out_hw):
        ctx.save_for_backward(indices)
        return backend_of(x).max_unpool2d(x, indices, out_hw)

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_tensors
        return backend_of(grad).max_unpool2d_backward(grad, indices), None


def _unpool_size(hw, kernel, stride, padding, output_size) -> tuple[int, int]:
    """PyTorch's ``_unpool_output_size``: the default ``(n-1)*s - 2p + k``, or
    ``output_size`` (its last two entries) when it lies strictly within a stride of it."""
    default = tuple((n - 1) * s + k - 2 * p
                    for n, k, s, p in zip(hw, kernel, stride, padding, strict=True))
    if output_size is None:
        return default
    size = tuple(output_size)
    if len(size) == 4:
        size = size[2:]
    if len(size) != 2 or not all(_is_int(v) for v in size):
        raise ValueError(f"max_unpool2d: output_size must hold 2 or 4 ints, got {output_size!r}")
    for d in range(2):
        lo, hi = default[d] - stride[d], default[d] + stride[d]
        if not lo < size[d] < hi:
            raise ValueError(f"max_unpool2d: invalid output_size {tuple(output_size)} (dim {d} "
                             f"must be between {lo} and {hi}, exclusive)")
    return int(size[0]), int(size[1])


def max_unpool2d(input: Tensor, indices, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:
    """Partial inverse of :func:`max_pool2d`: ``input, indices: (N, C, H, W) ->
    (N, C, H_out, W_out)``, each value placed at its flat index ``h * W_out + w``, zeros
    elsewhere. ``H_out = (H - 1) * stride - 2 * padding + kernel_size`` unless
    ``output_size`` says otherwise (e.g. the size before pooling)."""
    _check_input(input, "max_unpool2d")
    idx = indices.array if isinstance(indices, Tensor) else indices
    if tuple(idx.shape) != input.shape or idx.dtype.kind not in "iu":
        raise ValueError(f"max_unpool2d: indices must be integers of the input's shape "
                         f"{input.shape}, got {idx.dtype} of shape {tuple(idx.shape)}")
    kernel = _pair(kernel_size, "kernel_size", "max_unpool2d")
    stride = kernel if stride is None else _pair(stride, "stride", "max_unpool2d")
    padding = _pair(padding, "padding", "max_unpool2d")
    if min(kernel) <= 0 or min(stride) <= 0 or min(padding) < 0:
        raise ValueError(f"max_unpool2d: kernel_size and stride must be positive and padding "
                         f">= 0, got {kernel}, {stride}, {padding}")
    x = _batched(input)
    idx = idx.reshape(x.shape)
    out_hw = _unpool_size(x.shape[2:], kernel, stride, padding, output_size)
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= out_hw[0] * out_hw[1]):
        raise ValueError(f"max_unpool2d: found an invalid index {int(idx.max())} (or "
                         f"{int(idx.min())}): the output planes have {out_hw[0]}x{out_hw[1]} cells")
    return _unbatched(MaxUnpool2d.apply(x, idx.astype("int64", copy=False), out_hw), input)
