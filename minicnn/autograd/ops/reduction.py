"""Reductions over dimensions (sum, mean, max, var, logsumexp) and softmax: each public
function beside the Function that computes its forward and backward.

``dim`` is None (all dimensions), an int or a tuple of ints, negative allowed;
``keepdim`` keeps the reduced dimensions with size 1, as in PyTorch.
"""

from __future__ import annotations

import builtins
import contextlib
import operator
from collections import namedtuple

import numpy as np

from minicnn.autograd.function import Function
from minicnn.autograd.ops.conversion import clone
from minicnn.autograd.ops.elementwise import maximum, minimum
from minicnn.autograd.tensor import Tensor
from minicnn.backend import array_module, backend_of


def normalize_dims(dim, ndim: int) -> tuple[int, ...]:
    """``dim`` (None, int or sequence) as a sorted tuple of non-negative axes, checked."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if not isinstance(dim, (tuple, list)) else tuple(dim)
    out = []
    for d in dims:
        lo = -builtins.max(ndim, 1)
        try:
            d = operator.index(d)  # ints, NumPy ints and 0-d integer tensors; not floats
        except TypeError:
            raise TypeError(f"dim must be an int or a tuple of ints, got {dim!r}") from None
        if isinstance(d, bool) or not lo <= d < builtins.max(ndim, 1):
            raise IndexError(
                f"dim {d!r} out of range for a tensor with {ndim} dimensions "
                f"(expected an int in [{lo}, {builtins.max(ndim, 1) - 1}])"
            )
        out.append(d % builtins.max(ndim, 1) if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"dim {dim!r} repeats a dimension")
    return tuple(sorted(out)) if ndim else ()


def _quiet(xp):
    """Silence NumPy's divide-by-zero warnings for values a ``where`` then discards."""
    if not hasattr(xp, "errstate"):  # CuPy does not warn
        return contextlib.nullcontext()
    return xp.errstate(divide="ignore", invalid="ignore", over="ignore")


def _restore(grad, shape, dims, keepdim):
    """Reshape a reduced gradient so it broadcasts against the input ``shape``."""
    if keepdim or not dims:
        return grad
    kept = list(grad.shape)
    for d in dims:
        kept.insert(d, 1)
    return grad.reshape(kept)


class Sum(Function):
    @staticmethod
    def forward(ctx, a, dims=(), keepdim=False):
        ctx.shape, ctx.dims, ctx.keepdim = a.shape, dims, keepdim
        return a.sum(axis=dims, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        grad = _restore(grad, ctx.shape, ctx.dims, ctx.keepdim)
        return array_module(grad).broadcast_to(grad, ctx.shape)


def _dims(dim, ndim: int) -> tuple[int, ...]:
    """``dim`` as sorted non-negative axes; None and an empty tuple mean all (as in PyTorch)."""
    if isinstance(dim, (tuple, list)) and len(dim) == 0:
        dim = None
    return normalize_dims(dim, ndim)


def sum(input, dim=None, keepdim=False):
    """Sum over ``dim`` (None: all)."""
    return Sum.apply(input, dims=_dims(dim, input.ndim), keepdim=keepdim)


class Mean(Function):
    @staticmethod
    def forward(ctx, a, dims=(), keepdim=False):
        ctx.shape, ctx.dims, ctx.keepdim = a.shape, dims, keepdim
        return a.mean(axis=dims, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        count = 1
        for d in ctx.dims:
            count *= ctx.shape[d]
        grad = _restore(grad, ctx.shape, ctx.dims, ctx.keepdim) / builtins.max(count, 1)
        return array_module(grad).broadcast_to(grad, ctx.shape)


def mean(input, dim=None, keepdim=False):
    """Mean over ``dim`` (None: all). Needs a floating-point tensor."""
    if input.dtype.kind not in "fc":
        raise TypeError(f"mean: input must be floating point, got dtype {input.dtype}")
    return Mean.apply(input, dims=_dims(dim, input.ndim), keepdim=keepdim)


class Amax(Function):
    """Max (or min, ``largest=False``) over ``dims``; tied maxima share the gradient evenly.

    That is ``torch.amax``'s rule, and ``torch.max(x)``'s over the whole tensor. With
    ``nan_ties`` a NaN result counts every NaN as a tie (``torch.max(x)``); without it
    the gradient is NaN there (``torch.amax``).
    """

    @staticmethod
    def forward(ctx, a, dims=(), keepdim=False, largest=True, nan_ties=False):
        xp = array_module(a)
        out = a.max(axis=dims, keepdims=True) if largest else a.min(axis=dims, keepdims=True)
        hits = a == out
        if nan_ties and a.dtype.kind in "fc":
            hits |= xp.isnan(a) & xp.isnan(out)
        ctx.save_for_backward(hits)
        ctx.shape, ctx.dims, ctx.keepdim = a.shape, dims, keepdim
        return out if keepdim else out.reshape([n for i, n in enumerate(a.shape) if i not in dims])

    @staticmethod
    def backward(ctx, grad):
        (hits,) = ctx.saved_tensors
        grad = _restore(grad, ctx.shape, ctx.dims, ctx.keepdim)
        count = hits.sum(axis=ctx.dims, keepdims=True).astype(grad.dtype)
        with _quiet(array_module(grad)):  # no tie at all (a NaN max): 0/0, NaN as in PyTorch
            return grad / count * hits


def _check_not_empty(input, dims, name):
    if any(input.shape[d] == 0 for d in dims) or (not dims and input.numel() == 0):
        raise ValueError(
            f"{name}: cannot reduce over a dimension of size 0 (input shape {input.shape})"
        )


def amax(input, dim=None, keepdim=False):
    """Max over ``dim``; tied maxima share the gradient evenly (as ``torch.amax``)."""
    dims = _dims(dim, input.ndim)
    _check_not_empty(input, dims, "amax")
    return Amax.apply(input, dims=dims, keepdim=keepdim)


def amin(input, dim=None, keepdim=False):
    """Min over ``dim``; tied minima share the gradient evenly (as ``torch.amin``)."""
    dims = _dims(dim, input.ndim)
    _check_not_empty(input, dims, "amin")
    return Amax.apply(input, dims=dims, keepdim=keepdim, largest=False)


def _max_min(input, dim, keepdim, largest, name):
    if isinstance(dim, Tensor):  # torch.max(a, b) is the element-wise maximum
        return maximum(input, dim) if largest else minimum(input, dim)
    if dim is None:  # the whole tensor: ties (and NaNs) share the gradient evenly
        _check_not_empty(input, (), name)
        return Amax.apply(input, dims=tuple(range(input.ndim)), keepdim=False,
                            largest=largest, nan_ties=True)
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{name}: dim must be an int or None, got {dim!r}")
    (d,) = normalize_dims(int(dim), input.ndim) or (0,)
    if input.ndim == 0:
        return MaxResult(clone(input), Tensor._wrap(array_module(input.array).zeros((), np.int64)))
    _check_not_empty(input, (d,), name)
    indices = argmax(input, d, keepdim=True) if largest else argmin(input, d, keepdim=True)
    values = MaxDim.apply(input, d, keepdim=keepdim, indices=indices.array)
    if not keepdim:
        indices = Tensor._wrap(indices.array.squeeze(d))
    return MaxResult(values, indices)


def max(input, dim=None, keepdim=False):
    """``max(x)``: the largest element. ``max(x, dim)``: ``(values, indices)`` along ``dim``.

    ``max(x, other_tensor)`` is ``maximum(x, other_tensor)``, as in PyTorch. Along ``dim``
    the gradient goes to the element ``indices`` names; over the whole tensor tied maxima
    share it evenly.
    """
    return _max_min(input, dim, keepdim, True, "max")


def min(input, dim=None, keepdim=False):
    """``min(x)``: the smallest element. ``min(x, dim)``: ``(values, indices)`` along ``dim``."""
    return _max_min(input, dim, keepdim, False, "min")


class MaxDim(Function):
    """Max along one dim, given the ``indices`` (keepdim-shaped) of the maxima.

    The gradient goes to the element the index names, also when several are tied.
    """

    @staticmethod
    def forward(ctx, a, dim, keepdim=False, indices=None):
        ctx.save_for_backward(indices)
        ctx.shape, ctx.dim, ctx.keepdim = a.shape, dim, keepdim
        out = array_module(a).take_along_axis(a, indices, axis=dim)
        return out if keepdim else out.squeeze(dim)

    @staticmethod
    def backward(ctx, grad):
        (idx,) = ctx.saved_tensors
        xp = array_module(grad)
        if not ctx.keepdim:
            grad = xp.expand_dims(grad, ctx.dim)
        out = xp.zeros(ctx.shape, dtype=grad.dtype)
        xp.put_along_axis(out, idx, grad, axis=ctx.dim)
        return out


class Var(Function):
    """Variance with ``correction`` (1: unbiased, divide by n-1; 0: divide by n)."""

    @staticmethod
    def forward(ctx, a, dims=(), keepdim=False, correction=1):
        mean = a.mean(axis=dims, keepdims=True)
        centered = a - mean
        count = 1
        for d in dims:
            count *= a.shape[d]
        denom = builtins.max(count - correction, 0)
        ctx.save_for_backward(centered)
        ctx.shape, ctx.dims, ctx.keepdim, ctx.denom = a.shape, dims, keepdim, denom
        return (centered * centered).sum(axis=dims, keepdims=keepdim) / denom

    @staticmethod
    def backward(ctx, grad):
        (centered,) = ctx.saved_tensors
        grad = _restore(grad, ctx.shape, ctx.dims, ctx.keepdim)
        return grad * 2 * centered / ctx.denom


def _correction(unbiased, correction):
    if correction is not None and unbiased is not None:
        raise ValueError("var/std: give either unbiased or correction, not both")
    if correction is not None:
        return correction
    return 1 if unbiased is None or unbiased else 0


def _var_args(input, dim, unbiased, name):
    if isinstance(dim, bool):  # var(x, False): the old ``unbiased`` positional form
        dim, unbiased = None, dim
    if input.dtype.kind not in "fc":
        raise TypeError(f"{name}: input must be floating point, got dtype {input.dtype}")
    return _dims(dim, input.ndim), unbiased


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance over ``dim``: ``sum((x - mean)^2) / (n - correction)``.

    ``correction=1`` (the default, ``unbiased=True``) divides by n-1; ``correction=0``
    (``unbiased=False``) by n.
    """
    dims, unbiased = _var_args(input, dim, unbiased, "var")
    correction = _correction(unbiased, correction)
    return Var.apply(input, dims=dims, keepdim=keepdim, correction=correction)


class Std(Function):
    """Standard deviation ``sqrt(var)``; where it is 0 the gradient is 0, as in PyTorch.

    d std / d a = (a - mean) / ((n - correction) std).
    """

    @staticmethod
    def forward(ctx, a, dims=(), keepdim=False, correction=1):
        xp = array_module(a)
        centered = a - a.mean(axis=dims, keepdims=True)
        count = 1
        for d in dims:
            count *= a.shape[d]
        denom = builtins.max(count - correction, 0)
        out = xp.sqrt((centered * centered).sum(axis=dims, keepdims=True) / denom)
        ctx.save_for_backward(centered, out)
        ctx.shape, ctx.dims, ctx.keepdim, ctx.denom = a.shape, dims, keepdim, denom
        return out if keepdim else out.reshape([n for i, n in enumerate(a.shape) if i not in dims])

    @staticmethod
    def backward(ctx, grad):
        centered, out = ctx.saved_tensors
        xp = array_module(grad)
        grad = _restore(grad, ctx.shape, ctx.dims, ctx.keepdim)
        with _quiet(xp):
            scale = xp.where(out == 0, out.dtype.type(0), grad / (out * ctx.denom))
        return scale * centered


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Standard deviation ``sqrt(var(...))``; where it is 0 the gradient is 0 (as in PyTorch)."""
    dims, unbiased = _var_args(input, dim, unbiased, "std")
    correction = _correction(unbiased, correction)
    return Std.apply(input, dims=dims, keepdim=keepdim, correction=correction)


class LogSumExp(Function):
    """log(sum(exp(a))) over ``dims``, stable; the gradient is softmax(a)."""

    @staticmethod
    def forward(ctx, a, dims=(), keepdim=False):
        xp = array_module(a)
        if a.size == 0:  # an empty sum: log(0) = -inf, as in PyTorch
            kept = [1 if i in dims else n for i, n in enumerate(a.shape)]
            m = xp.zeros(kept, dtype=a.dtype)
        else:
            m = a.max(axis=dims, keepdims=True)
            m = xp.where(xp.isfinite(m), m, 0)  # all -inf rows stay -inf without NaN
        with _quiet(xp):  # log(0) for an all -inf row is -inf, as it should be
            out = xp.log(xp.exp(a - m).sum(axis=dims, keepdims=True)) + m
        ctx.save_for_backward(a, out)
        ctx.shape, ctx.dims, ctx.keepdim = a.shape, dims, keepdim
        return out if keepdim else out.reshape([n for i, n in enumerate(a.shape) if i not in dims])

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved_tensors
        grad = _restore(grad, ctx.shape, ctx.dims, ctx.keepdim)
        xp = array_module(a)
        with _quiet(xp):  # an all -inf row: exp(-inf - -inf) is NaN, as in PyTorch
            return grad * xp.exp(a - out)


def logsumexp(input, dim, keepdim=False):
    """``log(sum(exp(input), dim))``, stable for large values; its gradient is the softmax."""
    return LogSumExp.apply(input, dims=_dims(dim, input.ndim), keepdim=keepdim)


class Softmax(Function):
    @staticmethod
    def forward(ctx, a, dim):
        out = backend_of(a).softmax(a, dim)
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return backend_of(grad).softmax_backward(grad, out, ctx.dim)


def _one_dim(dim, ndim, name):
    if dim is None:
        raise TypeError(f"{name}: dim is required (implicit dim is deprecated in PyTorch too)")
    (d,) = normalize_dims(dim, ndim) or (0,)
    return d


def softmax(input, dim, dtype=None):
    """``exp(x) / sum(exp(x))`` along ``dim``."""
    if dtype is not None:
        input = input.to(dtype)
    if input.ndim == 0:
        return input * 0 + 1
    return Softmax.apply(input, _one_dim(dim, input.ndim, "softmax"))


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, a, dim):
        out = backend_of(a).log_softmax(a, dim)
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return backend_of(grad).log_softmax_backward(grad, out, ctx.dim)


def log_softmax(input, dim, dtype=None):
    """``x - logsumexp(x, dim)`` along ``dim``."""
    if dtype is not None:
        input = input.to(dtype)
    if input.ndim == 0:
        return input * 0
    return LogSoftmax.apply(input, _one_dim(dim, input.ndim, "log_softmax"))


MaxResult = namedtuple("MaxResult", ["values", "indices"])


def _arg(input, dim, keepdim, fn):
    data = input.array
    if dim is None:
        out = getattr(data.reshape(-1), fn)()
        shape = (1,) * data.ndim if keepdim else ()
        return Tensor._wrap(array_module(data).asarray(out, dtype=np.int64).reshape(shape))
    (d,) = normalize_dims(dim, input.ndim) or (0,)
    if data.ndim == 0:
        return Tensor._wrap(array_module(data).zeros((), dtype=np.int64))
    out = getattr(data, fn)(axis=d)
    if keepdim:
        out = array_module(data).expand_dims(out, d)
    return Tensor._wrap(out.astype(np.int64))


def argmax(input, dim=None, keepdim=False):
    """Index of the largest element (over all, or along ``dim``). Not differentiable."""
    return _arg(input, dim, keepdim, "argmax")


def argmin(input, dim=None, keepdim=False):
    """Index of the smallest element (over all, or along ``dim``). Not differentiable."""
    return _arg(input, dim, keepdim, "argmin")
