"""Operations that move elements around without changing them: reshape, permute,
expand, concatenate, stack, index. Their backward moves the gradient back."""

from __future__ import annotations

from minicnn.autograd.function import Function
from minicnn.backend import array_module, backend_of


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape)


class Permute(Function):
    @staticmethod
    def forward(ctx, a, dims):
        ctx.dims = dims
        return a.transpose(dims)

    @staticmethod
    def backward(ctx, grad):
        inverse = [0] * len(ctx.dims)
        for i, d in enumerate(ctx.dims):
            inverse[d] = i
        return grad.transpose(inverse)


class Expand(Function):
    """Broadcast to a larger shape (a view); backward sums over the broadcast axes."""

    @staticmethod
    def forward(ctx, a, shape):
        return array_module(a).broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, grad):
        return grad  # the engine's unbroadcast sums it back to a's shape


class Cat(Function):
    @staticmethod
    def forward(ctx, *arrays, dim=0):
        ctx.sizes = [a.shape[dim] for a in arrays]
        ctx.dim = dim
        return array_module(*arrays).concatenate(arrays, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        xp = array_module(grad)
        bounds = list(xp.cumsum(xp.asarray(ctx.sizes))[:-1].tolist()) if len(ctx.sizes) > 1 else []
        return tuple(xp.split(grad, bounds, axis=ctx.dim))


class Stack(Function):
    @staticmethod
    def forward(ctx, *arrays, dim=0):
        ctx.dim, ctx.count = dim, len(arrays)
        return array_module(*arrays).stack(arrays, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        xp = array_module(grad)
        return tuple(xp.take(grad, i, axis=ctx.dim) for i in range(ctx.count))


def _has_advanced(key) -> bool:
    items = key if isinstance(key, tuple) else (key,)
    return any(not (isinstance(k, (int, slice)) or k is None or k is Ellipsis) for k in items)


def _bool_to_int(key, xp):
    """Replace boolean-mask entries of an index by their integer positions (for scatter-add)."""
    items = key if isinstance(key, tuple) else (key,)
    out = []
    for k in items:
        if hasattr(k, "dtype") and k.dtype == bool:
            out.extend(xp.nonzero(xp.asarray(k)))  # a NumPy mask on CuPy data: CuPy's nonzero
        else:
            out.append(k)
    return tuple(out)


class Index(Function):
    """``a[key]`` for basic (ints, slices, None, ...) and advanced (integer/boolean array) keys.

    Backward writes the gradient into zeros shaped like ``a``. With advanced keys an
    element can be picked twice (``a[[0, 0]]``), so the writes are a scatter-add.
    """

    @staticmethod
    def forward(ctx, a, key):
        ctx.shape, ctx.key = a.shape, key
        return a[key]

    @staticmethod
    def backward(ctx, grad):
        xp = array_module(grad)
        out = xp.zeros(ctx.shape, dtype=grad.dtype)
        if _has_advanced(ctx.key):
            key = _bool_to_int(ctx.key, xp)
            # a lone integer array (x[idx], the common case) goes to the kernel bare
            backend_of(out).index_add(out, key[0] if len(key) == 1 else key, grad)
        else:
            out[ctx.key] = grad
        return out
