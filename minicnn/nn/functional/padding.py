"""Padding with PyTorch's ``pad`` convention: the LAST dimension first.

``pad=(left, right)`` pads the last dimension; ``(left, right, top, bottom)`` the last two
(W then H of an ``(N, C, H, W)`` image); ``(left, right, top, bottom, front, back)`` the
last three. Negative amounts crop (see :class:`Pad` for the order). Modes:

* "constant": fill with ``value`` (0 by default);
* "reflect": mirror without repeating the edge: ``[1 2 3]`` padded by 2 -> ``3 2 [1 2 3] 2 1``;
* "replicate": repeat the edge: ``1 1 [1 2 3] 3 3``;
* "circular": wrap around: ``2 3 [1 2 3] 1 2``.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

from minicnn.autograd.function import Function
from minicnn.autograd.tensor import Tensor
from minicnn.backend import array_module, backend_of

_MODES = ("constant", "reflect", "replicate", "circular")


def _crop(a, crop):
    """``a`` without ``crop[axis] = (before, after)`` elements at the ends of each axis."""
    if not any(b or e for b, e in crop):
        return a
    return a[tuple(slice(b, n - e) for (b, e), n in zip(crop, a.shape, strict=True))]


def _uncrop(grad, crop):
    """The gradient of :func:`_crop`: zeros where the crop removed elements."""
    if not any(b or e for b, e in crop):
        return grad
    return array_module(grad).pad(grad, crop)


class Pad(Function):
    """Pad by ``grow`` and crop by ``crop`` (both ``(before, after)`` per axis, >= 0).

    Negative padding crops. PyTorch crops FIRST for "constant" and "circular" (what wraps
    around is the cropped tensor) and LAST for "reflect" and "replicate" (they mirror or
    repeat the edges of the whole input). The backward runs the same steps in reverse: the
    backend's ``pad_backward`` sums the gradient of every copy back onto the element it
    copied (or just crops, for "constant"), and zeros go where the crop removed elements.
    """

    @staticmethod
    def forward(ctx, x, crop, grow, mode, value):
        ctx.crop, ctx.grow, ctx.mode = crop, grow, mode
        ctx.crop_first = mode in ("constant", "circular")
        if ctx.crop_first:
            x = _crop(x, crop)
            ctx.pad_input_shape = x.shape
            return backend_of(x).pad(x, grow, mode, value)
        ctx.pad_input_shape = x.shape
        return _crop(backend_of(x).pad(x, grow, mode, value), crop)

    @staticmethod
    def backward(ctx, grad):
        backend = backend_of(grad)
        if ctx.crop_first:
            g = backend.pad_backward(grad, ctx.pad_input_shape, ctx.grow, ctx.mode)
            return _uncrop(g, ctx.crop)
        return backend.pad_backward(_uncrop(grad, ctx.crop), ctx.pad_input_shape, ctx.grow,
                                    ctx.mode)


def _pad_widths(pad: Sequence[int], ndim: int) -> list[tuple[int, int]]:
    """PyTorch's flat ``pad`` (last dimension first) as ``(before, after)`` per axis."""
    if not isinstance(pad, (tuple, list)) or not all(isinstance(p, Integral) for p in pad):
        raise TypeError(f"pad: pad must be a tuple of ints, got {pad!r}")
    if len(pad) % 2:
        raise ValueError(f"pad: pad must have an even length (before, after per dimension), "
                         f"got {len(pad)} values: {tuple(pad)}")
    if len(pad) // 2 > ndim:
        raise ValueError(f"pad: pad {tuple(pad)} pads {len(pad) // 2} dimensions but the input "
                         f"has only {ndim}")
    widths = [(0, 0)] * ndim
    for i in range(len(pad) // 2):
        widths[ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    return widths


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant",
        value: float | None = None) -> Tensor:
    """Pad (or, with negative amounts, crop) the last ``len(pad) // 2`` dimensions.

    ``pad``: ``(left, right)``, ``(left, right, top, bottom)``, ... -- last dimension first.
    ``mode``: "constant" (with ``value``, default 0), "reflect", "replicate" or "circular".
    ``x: (N, C, H, W)`` with ``pad=(l, r, t, b)`` ``-> (N, C, H + t + b, W + l + r)``.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"pad: input must be a Tensor, got {type(input).__name__}")
    if mode not in _MODES:
        raise ValueError(f"pad: mode must be one of {_MODES}, got {mode!r}")
    if mode != "constant" and value is not None:
        raise ValueError(f"pad: mode {mode!r} takes no value (only 'constant' does), got {value}")
    widths = _pad_widths(pad, input.ndim)
    crop = [(max(-b, 0), max(-a, 0)) for b, a in widths]
    grow = [(max(b, 0), max(a, 0)) for b, a in widths]
    crop_first = mode in ("constant", "circular")
    for dim, ((b, a), n) in enumerate(zip(widths, input.shape, strict=True)):
        before, after = grow[dim]
        kept = n - crop[dim][0] - crop[dim][1]  # what is left to pad when cropping first
        if n + b + a < 0 or (crop_first and kept < 0):
            raise ValueError(f"pad: padding ({b}, {a}) of dimension {dim} (size {n}) crops more "
                             f"than the dimension holds")
        if not (before or after):
            continue
        if mode == "reflect" and (before >= n or after >= n):
            raise ValueError(
                f"pad: reflect padding must be less than the size of the dimension it pads, "
                f"got padding ({b}, {a}) for dimension {dim} of size {n} (input shape "
                f"{input.shape})"
            )
        if mode == "replicate" and n == 0:
            raise ValueError(f"pad: replicate padding needs a non-empty dimension {dim}, got "
                             f"size 0 (input shape {input.shape})")
        if mode == "circular" and (before > kept or after > kept):
            raise ValueError(
                f"pad: circular padding may wrap around at most once: padding ({b}, {a}) "
                f"exceeds the size {kept} (after cropping) of dimension {dim} (input shape "
                f"{input.shape})"
            )
    fill = 0.0 if value is None else float(value)
    return Pad.apply(input, tuple(crop), tuple(grow), mode, fill)
