"""Reductions over dimensions (sum, mean, max, var, logsumexp) and softmax.

``dim`` is None (all dimensions), an int or a tuple of ints, negative allowed;
``keepdim`` keeps the reduced dimensions with size 1, as in PyTorch.
"""

from __future__ import annotations

from collections import namedtuple

from minicnn.autograd.function import Function
from minicnn.backend import array_module, backend_of


def normalize_dims(dim, ndim: int) -> tuple[int, ...]:
    """``dim`` (None, int or sequence) as a sorted tuple of non-negative axes, checked."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    out = []
    for d in dims:
        lo = -max(ndim, 1)
        if not isinstance(d, int) or not lo <= d < max(ndim, 1):
            raise IndexError(
                f"dim {d!r} out of range for a tensor with {ndim} dimensions "
                f"(expected an int in [{lo}, {max(ndim, 1) - 1}])"
            )
        out.append(d % max(ndim, 1) if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"dim {dim!r} repeats a dimension")
    return tuple(sorted(out)) if ndim else ()


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
    """Max over ``dims``; the gradient is shared evenly among tied maxima (as torch.amax)."""

    @staticmethod
    def forward(ctx, a, dims=(), keepdim=False, largest=True):
        out = a.max(axis=dims, keepdims=True) if largest else a.min(axis=dims, keepdims=True)
        ctx.save_for_backward(a == out)
        ctx.shape, ctx.dims, ctx.keepdim = a.shape, dims, keepdim
        return out if keepdim else out.reshape([n for i, n in enumerate(a.shape) if i not in dims])

    @staticmethod
    def backward(ctx, grad):
        (hits,) = ctx.saved_tensors
        grad = _restore(grad, ctx.shape, ctx.dims, ctx.keepdim)
        return grad * hits / hits.sum(axis=ctx.dims, keepdims=True)


class MaxDim(Function):
    """Max along one dim with indices: the gradient goes to the element the index names."""

    @staticmethod
    def forward(ctx, a, dim, keepdim=False, largest=True):
        xp = array_module(a)
        idx = xp.expand_dims(a.argmax(axis=dim) if largest else a.argmin(axis=dim), dim)
        ctx.save_for_backward(idx)
        ctx.shape, ctx.dim, ctx.keepdim = a.shape, dim, keepdim
        out = xp.take_along_axis(a, idx, axis=dim)
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


class LogSumExp(Function):
    """log(sum(exp(a))) over ``dims``, stable; the gradient is softmax(a)."""

    @staticmethod
    def forward(ctx, a, dims=(), keepdim=False):
        xp = array_module(a)
        m = a.max(axis=dims, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)  # all -inf rows stay -inf without NaN
        out = xp.log(xp.exp(a - m).sum(axis=dims, keepdims=True)) + m
        ctx.save_for_backward(a, out)
        ctx.shape, ctx.dims, ctx.keepdim = a.shape, dims, keepdim
        return out if keepdim else out.reshape([n for i, n in enumerate(a.shape) if i not in dims])

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved_tensors
        grad = _restore(grad, ctx.shape, ctx.dims, ctx.keepdim)
        return grad * array_module(a).exp(a - out)


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
