"""Operations that move elements around without changing them: reshape, permute,
expand, concatenate, stack, index, each public function beside its Function. Their
backward moves the gradient back."""

from __future__ import annotations

import builtins
import math

import numpy as np

from minicnn.autograd.function import Function
from minicnn.autograd.ops.conversion import to_copy
from minicnn.autograd.ops.promotion import result_type
from minicnn.autograd.ops.reduction import normalize_dims
from minicnn.autograd.tensor import Tensor
from minicnn.backend import array_module, backend_of


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape)


def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def reshape(input, *shape):
    """The same elements in a new shape; one dimension may be -1 (inferred)."""
    shape = _shape_arg(shape)
    known = math.prod(s for s in shape if s != -1)
    if builtins.min(shape, default=0) < -1 or shape.count(-1) > 1 or (
        -1 not in shape and known != input.numel()
    ) or (
        -1 in shape and (known == 0 or input.numel() % known)
    ):
        raise ValueError(f"reshape: shape {shape} is invalid for input of shape {input.shape}")
    return Reshape.apply(input, shape)


view = reshape


def flatten(input, start_dim=0, end_dim=-1):
    """Merge dimensions ``start_dim..end_dim`` into one.

    ``flatten(x, 1)``: ``(N, C, H, W) -> (N, C*H*W)``; a 0-d tensor becomes shape ``(1,)``.
    """
    if input.ndim == 0:
        return reshape(input, 1)
    s, e = normalize_dims(start_dim, input.ndim)[0], normalize_dims(end_dim, input.ndim)[0]
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = input.shape[:s] + (math.prod(input.shape[s : e + 1]),) + input.shape[e + 1 :]
    return Reshape.apply(input, shape)


def squeeze(input, dim=None):
    """Remove dimensions of size 1 (all of them, or only ``dim`` if it has size 1)."""
    if dim is None:
        shape = tuple(n for n in input.shape if n != 1)
    else:
        dims = normalize_dims(dim, input.ndim)
        shape = tuple(n for i, n in enumerate(input.shape) if not (i in dims and n == 1))
    return Reshape.apply(input, shape)


def unsqueeze(input, dim):
    """Insert a dimension of size 1 at ``dim`` (negative counts from the new end)."""
    if not -input.ndim - 1 <= dim <= input.ndim:
        raise IndexError(f"unsqueeze: dim {dim} out of range [{-input.ndim - 1}, {input.ndim}]")
    d = dim % (input.ndim + 1)
    return Reshape.apply(input, input.shape[:d] + (1,) + input.shape[d:])


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


def permute(input, *dims):
    """Reorder the dimensions: ``permute(x, 0, 2, 3, 1)`` takes NCHW to NHWC."""
    dims = _shape_arg(dims)
    n = input.ndim
    if any(not -n <= d < builtins.max(n, 1) for d in dims) or sorted(
        d % builtins.max(n, 1) for d in dims
    ) != list(range(n)):
        raise ValueError(
            f"permute: dims {dims} are not a permutation of the {n} dimensions of a tensor "
            f"of shape {input.shape}"
        )
    return Permute.apply(input, tuple(d % n for d in dims) if n else ())


def transpose(input, dim0, dim1):
    """Swap two dimensions."""
    dims = list(range(input.ndim))
    d0, d1 = normalize_dims(dim0, input.ndim)[0], normalize_dims(dim1, input.ndim)[0]
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Permute.apply(input, tuple(dims))


class Expand(Function):
    """Broadcast to a larger shape (a view); backward sums over the broadcast axes."""

    @staticmethod
    def forward(ctx, a, shape):
        return array_module(a).broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, grad):
        return grad  # the engine's unbroadcast sums it back to a's shape


def expand(input, *sizes):
    """Broadcast to ``sizes`` without copying; -1 keeps a dimension's size."""
    sizes = _shape_arg(sizes)
    lead = len(sizes) - input.ndim
    if lead < 0:
        raise ValueError(
            f"expand: {len(sizes)} sizes given for a {input.ndim}-d tensor of shape {input.shape}"
        )
    if any(s == -1 for s in sizes[:lead]) or any(s < -1 for s in sizes):
        raise ValueError(
            f"expand: sizes {sizes} are invalid for shape {input.shape}: -1 may only keep an "
            "existing dimension, and sizes must be non-negative"
        )
    shape = tuple(input.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
    for i, n in enumerate(input.shape):
        if n != 1 and n != shape[i + lead]:
            raise ValueError(f"expand: cannot expand shape {input.shape} to {sizes}")
    return Expand.apply(input, shape)


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


def _check_same(tensors, name):
    if not tensors:
        raise ValueError(f"{name}: expected a non-empty sequence of tensors")
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    dtype = result_type(*tensors)
    return [t if t.dtype == dtype else to_copy(t, dtype=dtype) for t in tensors]


def cat(tensors, dim=0):
    """Concatenate along an existing dimension; the other dimensions must match."""
    tensors = _check_same(tensors, "cat")
    ref = tensors[0]
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise ValueError(f"cat: tensor {i} is 0-d and cannot be concatenated; use stack")
    (d,) = normalize_dims(dim, ref.ndim)
    for i, t in enumerate(tensors):
        others, expected = t.shape[:d] + t.shape[d + 1 :], ref.shape[:d] + ref.shape[d + 1 :]
        if t.ndim != ref.ndim or others != expected:
            raise ValueError(
                f"cat: tensor {i} has shape {t.shape}, expected {ref.ndim} dims matching "
                f"{ref.shape} except in dim {d}"
            )
    return Cat.apply(*tensors, dim=d)


concatenate = concat = cat


class Stack(Function):
    @staticmethod
    def forward(ctx, *arrays, dim=0):
        ctx.dim, ctx.count = dim, len(arrays)
        return array_module(*arrays).stack(arrays, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        xp = array_module(grad)
        return tuple(xp.take(grad, i, axis=ctx.dim) for i in range(ctx.count))


def stack(tensors, dim=0):
    """Stack equal-shaped tensors along a new dimension ``dim``."""
    tensors = _check_same(tensors, "stack")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: tensor {i} has shape {t.shape}, expected {tensors[0].shape}")
    if not -tensors[0].ndim - 1 <= dim <= tensors[0].ndim:
        raise IndexError(f"stack: dim {dim} out of range for {tensors[0].ndim}-d tensors")
    return Stack.apply(*tensors, dim=dim % (tensors[0].ndim + 1))


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


def index(input, key):
    """``input[key]``: ints, slices, None, Ellipsis, integer arrays and boolean masks."""
    key = raw_index(key)
    try:
        return Index.apply(input, key)
    except IndexError as e:
        raise IndexError(
            f"index {key!r} is invalid for a tensor of shape {input.shape}: {e}"
        ) from None


def split(input, split_size_or_sections, dim=0):
    """Cut into pieces of ``split_size`` (the last may be smaller) or of the listed sizes."""
    (d,) = normalize_dims(dim, input.ndim)
    n = input.shape[d]
    if isinstance(split_size_or_sections, (int, np.integer)):
        step = int(split_size_or_sections)
        if step <= 0:
            raise ValueError(f"split: split_size must be positive, got {step}")
        sizes = [builtins.min(step, n - i) for i in range(0, n, step)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise ValueError(
                f"split: sections {sizes} sum to {builtins.sum(sizes)}, expected {n} "
                f"(size of dim {d})"
            )
    pieces, start = [], 0
    for size in sizes:
        key = (slice(None),) * d + (slice(start, start + size),)
        pieces.append(index(input, key))
        start += size
    return tuple(pieces)


def chunk(input, chunks, dim=0):
    """Cut into ``chunks`` pieces of size ``ceil(n / chunks)`` (fewer if they run out)."""
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    (d,) = normalize_dims(dim, input.ndim)
    return split(input, builtins.max(1, math.ceil(input.shape[d] / chunks)), d)


def raw_index(key):
    """An index with Tensors replaced by their arrays (lists become integer/bool arrays)."""
    items = key if isinstance(key, tuple) else (key,)
    out = []
    for k in items:
        if isinstance(k, Tensor):
            k = k.array
        elif isinstance(k, list):
            k = np.asarray(k)
        out.append(k)
    return tuple(out) if isinstance(key, tuple) else out[0]
