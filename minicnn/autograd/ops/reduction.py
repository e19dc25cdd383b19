"""Reductions over dimensions (sum, mean, max, var, logsumexp) and softmax.

``dim`` is None (all dimensions), an int or a tuple of ints, negative allowed;
``keepdim`` keeps the reduced dimensions with size 1, as in PyTorch.
"""

from __future__ import annotations

import contextlib
import operator
from collections import namedtuple

from minicnn.autograd.function import Function
from minicnn.backend import array_module, backend_of


def normalize_dims(dim, ndim: int) -> tuple[int, ...]:
    """``dim`` (None, int or sequence) as a sorted tuple of non-negative axes, checked."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if not isinstance(dim, (tuple, list)) else tuple(dim)
    out = []
    for d in dims:
        lo = -max(ndim, 1)
        try:
            d = operator.index(d)  # ints, NumPy ints and 0-d integer tensors; not floats
        except TypeError:
            raise TypeError(f"dim must be an int or a tuple of ints, got {dim!r}") from None
        if isinstance(d, bool) or not lo <= d < max(ndim, 1):
            raise IndexError(
                f"dim {d!r} out of range for a tensor with {ndim} dimensions "
                f"(expected an int in [{lo}, {max(ndim, 1) - 1}])"
            )
        out.append(d % max(ndim, 1) if ndim else 0)
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
        grad = _restore(grad, ctx.shape, ctx.dims, ctx.keepdim) / max(count, 1)
        return array_module(grad).broadcast_to(grad, ctx.shape)


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
        denom = max(count - correction, 0)
        ctx.save_for_backward(centered)
        ctx.shape, ctx.dims, ctx.keepdim, ctx.denom = a.shape, dims, keepdim, denom
        return (centered * centered).sum(axis=dims, keepdims=keepdim) / denom

    @staticmethod
    def backward(ctx, grad):
        (centered,) = ctx.saved_tensors
        grad = _restore(grad, ctx.shape, ctx.dims, ctx.keepdim)
        return grad * 2 * centered / ctx.denom


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
        denom = max(count - correction, 0)
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


MaxResult = namedtuple("MaxResult", ["values", "indices"])
