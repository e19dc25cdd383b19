"""Resizing by interpolation: ``F.interpolate`` (nearest, nearest-exact, linear, bilinear,
bicubic).

An output position ``i`` along an axis reads the input at a *source coordinate*. This
file computes those coordinates exactly as PyTorch's CPU kernels do (the same index
choices, the same weights to the last bit); the backend kernels then only gather or
multiply. ``ratio`` is ``1 / scale_factor`` when a scale factor is given (and
``recompute_scale_factor`` is not True), else ``in / out``.

* ``nearest`` (PyTorch's legacy rule, OpenCV's INTER_NEAREST):
  ``src = min(floor(i * ratio), in - 1)``.
* ``nearest-exact`` (Pillow, scikit-image): ``src = min(floor((i + 0.5) * ratio), in - 1)``.
* ``linear`` / ``bilinear``: ``src = ratio * (i + 0.5) - 0.5`` clamped below at 0
  (``align_corners=False``: pixels are squares, their corners line up) or
  ``src = i * (in - 1) / (out - 1)`` (``align_corners=True``: the centres of the corner
  pixels line up, a scale factor is ignored). Output ``i`` mixes input ``floor(src)`` and
  the next one with weights ``1 - frac`` and ``frac``; ``out == in`` copies.
* ``bicubic``: the same source coordinate, not clamped at 0; output ``i`` mixes the four
  inputs ``floor(src) - 1 .. floor(src) + 2`` (indices clamped to the border) with Keys'
  cubic-convolution weights for ``A = -0.75`` (PyTorch's and OpenCV's choice; MATLAB's
  ``imresize`` uses ``A = -0.5`` and antialiases when shrinking, which PyTorch's
  ``antialias=False`` does not). The weights are computed once, in
  :mod:`minicnn.backend.geometry`, which the super-resolution data of ``minicnn.data`` uses
  too. Bicubic output can overshoot the input's range (the kernel has negative lobes).

PyTorch has two recipes for the nearest modes, which differ only at rounding ties and
for a scale factor that disagrees with the sizes: 4-d inputs with ``H_out + W_out <= 128``
use a float32 ``ratio`` and two shortcuts (``out == in`` copies, ``out == 2 * in`` takes
``i // 2``, whatever the scale factor says); everything else uses the input's precision
and no shortcuts. Both are reproduced. (PyTorch's nearest *backward* always uses the first
recipe, so where they disagree its gradient is not the gradient of its output; minicnn's
backward is always the exact adjoint of its forward.)

Linear and bicubic resizing are separable: along each axis a matrix ``A`` of shape
``(out, in)`` with two (four) weights per row, so ``y = A_h @ x @ A_w.T`` for every (n, c)
plane, and the gradient is the transpose, ``A_h.T @ g @ A_w``. Nearest resizing is a gather and its
gradient a scatter-add.

One caveat of the matrix form: an ``inf`` or ``nan`` in a row of the input spreads to the
whole row of the output (``0 * inf = nan``), where PyTorch only spreads it to neighbours.
"""

from __future__ import annotations

import functools
import math
from numbers import Real

import numpy as np

from minicnn.autograd.function import Function
from minicnn.autograd.tensor import Tensor
from minicnn.backend import array_module, backend_of
from minicnn.backend.geometry import cubic_matrix

__all__ = ["interpolate"]

_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic")
_LINEAR_MODES = ("linear", "bilinear", "bicubic")  # the matrix modes, which take align_corners


# ---------------------------------------------------------------- source coordinates (cached)


def _ratio(n_in: int, n_out: int, scale: float | None, ft) -> np.floating:
    """Input pixels per output pixel, in precision ``ft``: ``1 / scale`` if given, else
    ``in / out``."""
    return ft(1.0 / scale) if scale else ft(n_in) / ft(n_out)


def _fused(ratio, dst: np.ndarray, ft) -> np.ndarray:
    """``ratio * (dst + 0.5) - 0.5`` rounded once to ``ft``, as the fused multiply-add of
    PyTorch's compiled kernels computes it (evaluated in a wider type, then rounded)."""
    wide = np.float64 if ft == np.float32 else np.longdouble
    return (wide(ratio) * (dst.astype(wide) + wide(0.5)) - wide(0.5)).astype(ft)


@functools.lru_cache(maxsize=256)
def _nearest_source(n_in: int, n_out: int, scale: float | None, exact: bool, per_index: bool,
                    dtype: str) -> np.ndarray:
    """For each of the ``n_out`` output positions, the input position it copies (int64).

    PyTorch's CPU kernels use two slightly different recipes (they agree except for
    rounding at exact ties and for scale factors that disagree with the sizes):
    ``per_index`` (4-d input with ``H_out + W_out <= 128``) and the generic one (the rest).
    """
    dst = np.arange(n_out, dtype=np.int64)
    if per_index:
        # PyTorch's nearest_idx / nearest_exact_idx: float32 ratio, two shortcuts
        ratio = _ratio(n_in, n_out, scale, np.float32)
        if not exact and n_out == n_in:
            pos = dst
        elif not exact and n_out == 2 * n_in:
            pos = dst >> 1
        elif exact:  # floorf((i + 0.5) * ratio): the product in double, then float
            pos = np.floor(((dst + 0.5) * np.float64(ratio)).astype(np.float32))
        else:  # floorf(i * ratio) in float32
            pos = np.floor(dst.astype(np.float32) * ratio)
    else:
        # the generic kernel: ratio in the input's precision, no shortcuts
        ft = np.float64 if np.dtype(dtype) == np.float64 else np.float32
        ratio = _ratio(n_in, n_out, scale, ft)
        if exact:  # floorf(max(ratio * (i + 0.5) - 0.5, 0) + 0.5)
            real = np.maximum(_fused(ratio, dst, ft), ft(0))
            pos = np.floor((real.astype(np.float64) + 0.5).astype(np.float32))
        else:  # floorf(ratio * i)
            pos = np.floor((ratio * dst.astype(ft)).astype(np.float32))
    src = np.minimum(pos.astype(np.int64), n_in - 1)
    src.flags.writeable = False
    return src


@functools.lru_cache(maxsize=256)
def _linear_matrix(n_in: int, n_out: int, scale: float | None, align_corners: bool,
                   dtype: str) -> np.ndarray | None:
    """The (n_out, n_in) linear-interpolation matrix of one axis; None when it is the identity.

    The coordinates are computed in the input's precision (float32 or float64), as PyTorch does.
    """
    if n_out == n_in:
        return None  # PyTorch copies when the size does not change
    ft = np.float64 if np.dtype(dtype) == np.float64 else np.float32
    dst = np.arange(n_out)
    if align_corners:
        ratio = ft(n_in - 1) / ft(n_out - 1) if n_out > 1 else ft(0)
        src = ratio * dst.astype(ft)
    else:
        src = np.maximum(_fused(_ratio(n_in, n_out, scale, ft), dst, ft), ft(0))  # clamp at 0
    i0 = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), n_in - 1)  # floorf
    frac = np.clip(src - i0.astype(ft), ft(0), ft(1))  # weight of the right neighbour
    i1 = np.where(i0 < n_in - 1, i0 + 1, i0)
    a = np.zeros((n_out, n_in), dtype=dtype)
    rows = np.arange(n_out)
    np.add.at(a, (rows, i0), ft(1) - frac)
    np.add.at(a, (rows, i1), frac)  # i1 == i0 at the right edge: the weights add up to 1
    a.flags.writeable = False
    return a


@functools.lru_cache(maxsize=256)
def _cubic_matrix(n_in: int, n_out: int, scale: float | None, align_corners: bool,
                  dtype: str) -> np.ndarray:
    """:func:`minicnn.backend.geometry.cubic_matrix`, cached and read-only."""
    a = cubic_matrix(n_in, n_out, scale, align_corners, np.dtype(dtype))
    a.flags.writeable = False
    return a


def _on_device(array: np.ndarray | None, like):
    """``array`` on the device of ``like`` (a NumPy array stays as it is)."""
    if array is None:
        return None
    xp = array_module(like)
    return array if xp is np else xp.asarray(array)


# ---------------------------------------------------------------- the Functions


class UpsampleNearest(Function):
    """``x: (N, C, H, W) -> (N, C, len(src_h), len(src_w))``: each output copies one pixel."""

    @staticmethod
    def forward(ctx, x, *, src_h, src_w):
        src_h, src_w = _on_device(src_h, x), _on_device(src_w, x)
        ctx.in_hw, ctx.src_h, ctx.src_w = x.shape[2:], src_h, src_w
        return backend_of(x).upsample_nearest(x, src_h, src_w)

    @staticmethod
    def backward(ctx, grad):
        return backend_of(grad).upsample_nearest_backward(grad, ctx.in_hw, ctx.src_h, ctx.src_w)


class UpsampleLinear(Function):
    """``x: (N, C, H, W) -> (N, C, H_out, W_out)`` as ``a_h @ x @ a_w.T`` (None: axis kept)."""

    @staticmethod
    def forward(ctx, x, *, a_h, a_w):
        a_h, a_w = _on_device(a_h, x), _on_device(a_w, x)
        ctx.a_h, ctx.a_w = a_h, a_w
        return backend_of(x).upsample_linear(x, a_h, a_w)

    @staticmethod
    def backward(ctx, grad):
        return backend_of(grad).upsample_linear_backward(grad, ctx.a_h, ctx.a_w)


# ---------------------------------------------------------------- argument checks


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _per_axis(value, name: str, dim: int, spatial: tuple[int, ...], check) -> list:
    """``value`` (one number or a sequence of ``dim``) as a list of ``dim`` checked numbers."""
    if isinstance(value, (tuple, list)):
        if len(value) != dim:
            raise ValueError(
                f"interpolate: {name} must have one entry per spatial dimension of the input "
                f"({dim}: input spatial size {list(spatial)}), got {name}={value!r}"
            )
        values = list(value)
    else:
        values = [value] * dim
    for v in values:
        check(v)
    return values


def _output_size(input: Tensor, size, scale_factor, recompute_scale_factor):
    """(output sizes, scales used for the coordinate mapping or None per axis)."""
    dim = input.ndim - 2
    spatial = tuple(input.shape[2:])
    if size is not None and scale_factor is not None:
        raise ValueError(
            f"interpolate: give only one of size and scale_factor, got size={size!r} and "
            f"scale_factor={scale_factor!r}"
        )
    if size is None and scale_factor is None:
        raise ValueError("interpolate: either size or scale_factor must be given, got neither")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(
                "interpolate: recompute_scale_factor=True is only meaningful with scale_factor, "
                f"not with an explicit size (size={size!r})"
            )

        def check_size(v):
            if not _is_int(v):
                raise TypeError(
                    f"interpolate: size must be an int or a tuple of ints, got {size!r} "
                    f"(an entry of type {type(v).__name__})"
                )

        out = [int(v) for v in _per_axis(size, "size", dim, spatial, check_size)]
        scales = [None] * dim
        given = f"size={size!r}"
    else:

        def check_scale(v):
            if not isinstance(v, Real) or isinstance(v, bool):
                raise TypeError(
                    f"interpolate: scale_factor must be a number or a tuple of numbers, got "
                    f"{scale_factor!r} (an entry of type {type(v).__name__})"
                )
            if not math.isfinite(float(v)):
                raise ValueError(f"interpolate: scale_factor must be finite, got {scale_factor!r}")

        factors = [float(v) for v in _per_axis(scale_factor, "scale_factor", dim, spatial,
                                               check_scale)]
        # floor(size * factor), as PyTorch
        out = [int(float(n) * s) for n, s in zip(spatial, factors, strict=True)]
        scales = [None] * dim if recompute_scale_factor else factors
        given = f"scale_factor={scale_factor!r}"
    if any(o <= 0 for o in out) or any(n <= 0 for n in spatial):
        raise ValueError(
            f"interpolate: input and output sizes must be greater than 0, got input spatial size "
            f"{list(spatial)} and output size {out} (from {given})"
        )
    return out, scales


# ---------------------------------------------------------------- the public function


def interpolate(
    input: Tensor,
    size: int | tuple[int, ...] | None = None,
    scale_factor: float | tuple[float, ...] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Tensor:
    """Resize the spatial dimensions of ``input`` to ``size`` or by ``scale_factor``.

    ``x: (N, C, H, W) -> (N, C, H_out, W_out)`` (modes "nearest", "nearest-exact",
    "bilinear", "bicubic") or ``x: (N, C, L) -> (N, C, L_out)`` (modes "nearest", "nearest-exact",
    "linear"). With ``scale_factor``, ``H_out = floor(H * scale_factor)``.

    Args:
        input: the tensor to resize.
        size: output spatial size: one int for every spatial axis, or one per axis.
        scale_factor: multiplier of the spatial size: a number, or one per axis.
        mode: "nearest" (PyTorch's legacy rule), "nearest-exact", "linear" (3-d input)
            "bilinear" or "bicubic" (4-d input). See the module docstring for the exact
            mappings.
        align_corners: linear and bicubic modes only: True aligns the centres of the corner pixels,
            False (what None means) the outer corners. Must be None for nearest modes.
        recompute_scale_factor: True: compute the output size from ``scale_factor``, then
            map coordinates with ``in / out`` instead of ``1 / scale_factor``.
        antialias: accepted for PyTorch's signature; only False is supported.

    Returns:
        the resized tensor; gradients flow back to ``input``.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"interpolate: input must be a minicnn Tensor, got {type(input).__name__}")
    if mode not in _MODES:
        raise ValueError(
            f"interpolate: mode must be one of {', '.join(map(repr, _MODES))}, got {mode!r}"
        )
    if mode in _LINEAR_MODES:
        align_corners = bool(align_corners)
    elif align_corners is not None:
        raise ValueError(
            f"interpolate: align_corners can only be set with the modes 'linear', "
            f"'bilinear' and 'bicubic', got align_corners={align_corners!r} with mode={mode!r}"
        )
    if antialias:
        raise ValueError("interpolate: antialias=True is not supported by minicnn, got True")
    if input.ndim not in (3, 4):
        raise ValueError(
            f"interpolate: input must be 3-d (N, C, L) or 4-d (N, C, H, W), got a "
            f"{input.ndim}-d tensor of shape {tuple(input.shape)}"
        )
    if mode in ("bilinear", "bicubic") and input.ndim != 4:
        raise ValueError(
            f"interpolate: mode={mode!r} needs a 4-d input (N, C, H, W), got shape "
            f"{tuple(input.shape)}; use mode='linear' for 3-d input"
        )
    if mode == "linear" and input.ndim != 3:
        raise ValueError(
            f"interpolate: mode='linear' needs a 3-d input (N, C, L), got shape "
            f"{tuple(input.shape)}; use mode='bilinear' for 4-d input"
        )
    if mode in _LINEAR_MODES and input.dtype.kind != "f":
        raise TypeError(
            f"interpolate: mode={mode!r} needs a floating-point input, got dtype {input.dtype}"
        )

    out, scales = _output_size(input, size, scale_factor, recompute_scale_factor)
    one_d = input.ndim == 3
    x = input.unsqueeze(2) if one_d else input  # (N, C, L) -> (N, C, 1, L)
    in_hw = tuple(x.shape[2:])
    out_hw = (1, out[0]) if one_d else tuple(out)
    scale_hw = (None, scales[0]) if one_d else tuple(scales)

    if mode in _LINEAR_MODES:
        matrix = _cubic_matrix if mode == "bicubic" else _linear_matrix
        a_h, a_w = (
            matrix(n_in, n_out, s, align_corners, x.dtype.str)
            for n_in, n_out, s in zip(in_hw, out_hw, scale_hw, strict=True)
        )
        y = UpsampleLinear.apply(x, a_h=a_h, a_w=a_w)
    else:
        exact = mode == "nearest-exact"
        per_index = not one_d and sum(out_hw) <= 128  # PyTorch's CPU dispatch rule
        src_h, src_w = (
            _nearest_source(n_in, n_out, s, exact, per_index, x.dtype.str)
            for n_in, n_out, s in zip(in_hw, out_hw, scale_hw, strict=True)
        )
        y = UpsampleNearest.apply(x, src_h=src_h, src_w=src_w)
    return y.squeeze(2) if one_d else y
