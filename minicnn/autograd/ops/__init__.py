"""The public tensor operations, named and shaped as in PyTorch (``torch.sum`` etc.).

Each function checks its arguments, turns plain values into arrays and calls one
``Function`` from the files beside this one (``elementwise``, ``reduction``, ``shape``,
``linalg``, ``conversion``). ``minicnn.nn.functional`` re-exports the ones PyTorch
keeps there.
"""

from __future__ import annotations

import builtins
import math

import numpy as np

from minicnn.autograd.ops import elementwise as E
from minicnn.autograd.ops import reduction as R
from minicnn.autograd.ops import shape as S
from minicnn.autograd.ops.conversion import ToCopy
from minicnn.autograd.ops.linalg import MatMul
from minicnn.autograd.ops.reduction import MaxResult, normalize_dims
from minicnn.autograd.tensor import Tensor
from minicnn.backend import array_module


def _operand(x, like: Tensor | None = None):
    """A Tensor stays a Tensor; a Python number or array becomes an array for the op.

    Python scalars keep the tensor's dtype (``float32_tensor * 2.0`` stays float32), as
    NumPy 2 and PyTorch both do.
    """
    if isinstance(x, Tensor):
        return x
    if like is not None and isinstance(x, (int, float, bool)) and not isinstance(x, np.generic):
        return x
    if like is not None:
        return array_module(like.data).asarray(x)
    return np.asarray(x)


def _binary(fn, a, b):
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    if like is None:
        a = Tensor(a)
        like = a
    a, b = _operand(a, like), _operand(b, like)
    try:
        np.broadcast_shapes(np.shape(a.data if isinstance(a, Tensor) else a),
                            np.shape(b.data if isinstance(b, Tensor) else b))
    except ValueError:
        raise ValueError(
            f"{fn.__name__.lower()}: shapes {np.shape(getattr(a, 'data', a))} and "
            f"{np.shape(getattr(b, 'data', b))} do not broadcast (each dimension must match or be 1)"
        ) from None
    return fn.apply(a, b)


# ------------------------------------------------------------ element-wise
def add(input, other, *, alpha=1):
    """``input + alpha * other`` with broadcasting."""
    return _binary(E.Add, input, other if alpha == 1 else mul(other, alpha))


def sub(input, other, *, alpha=1):
    """``input - alpha * other`` with broadcasting."""
    return _binary(E.Sub, input, other if alpha == 1 else mul(other, alpha))


def mul(input, other):
    return _binary(E.Mul, input, other)


def div(input, other):
    return _binary(E.Div, input, other)


def neg(input):
    return E.Neg.apply(input)


def pow(input, exponent):
    """``input ** exponent``; either may be a tensor or a number."""
    return _binary(E.Pow, input, exponent)


def exp(input):
    return E.Exp.apply(input)


def log(input):
    return E.Log.apply(input)


def sqrt(input):
    return E.Sqrt.apply(input)


def abs(input):
    return E.Abs.apply(input)


def clamp(input, min=None, max=None):
    """Clip every element to ``[min, max]`` (either bound may be None, not both)."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    return E.Clamp.apply(input, min, max)


clip = clamp


def maximum(input, other):
    return _binary(E.Maximum, input, other)


def minimum(input, other):
    return _binary(E.Minimum, input, other)


def where(condition, input, other):
    """``input`` where ``condition`` is true, else ``other`` (broadcast together)."""
    cond = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    if cond.dtype != bool:
        raise TypeError(f"where: condition must be a bool tensor, got dtype {cond.dtype}")
    like = input if isinstance(input, Tensor) else other if isinstance(other, Tensor) else None
    if like is None:
        input, like = Tensor(input), Tensor(input)
    return E.Where.apply(cond, _operand(input, like), _operand(other, like))


def sigmoid(input):
    return E.Sigmoid.apply(input)


def tanh(input):
    return E.Tanh.apply(input)


def relu(input):
    return E.ReLU.apply(input)


# ------------------------------------------------------------ reductions
def sum(input, dim=None, keepdim=False):
    """Sum over ``dim`` (None: all)."""
    return R.Sum.apply(input, dims=normalize_dims(dim, input.ndim), keepdim=keepdim)


def mean(input, dim=None, keepdim=False):
    """Mean over ``dim`` (None: all). Needs a floating-point tensor."""
    if input.dtype.kind not in "fc":
        raise TypeError(f"mean: input must be floating point, got dtype {input.dtype}")
    return R.Mean.apply(input, dims=normalize_dims(dim, input.ndim), keepdim=keepdim)


def amax(input, dim=None, keepdim=False):
    """Max over ``dim``; ties share the gradient evenly."""
    return R.Amax.apply(input, dims=normalize_dims(dim, input.ndim), keepdim=keepdim)


def amin(input, dim=None, keepdim=False):
    """Min over ``dim``; ties share the gradient evenly."""
    return R.Amax.apply(input, dims=normalize_dims(dim, input.ndim), keepdim=keepdim, largest=False)


def _max_min(input, dim, keepdim, largest):
    if dim is None:
        return amax(input) if largest else amin(input)
    if not isinstance(dim, int):
        raise TypeError(f"max/min: dim must be an int or None, got {dim!r}")
    (d,) = normalize_dims(dim, input.ndim) or (0,)
    if input.ndim == 0:
        return MaxResult(input, Tensor(np.zeros((), dtype=np.int64)))
    values = R.MaxDim.apply(input, d, keepdim=keepdim, largest=largest)
    return MaxResult(values, argmax(input, dim, keepdim) if largest else argmin(input, dim, keepdim))


def max(input, dim=None, keepdim=False):
    """``max(x)``: the largest element. ``max(x, dim)``: ``(values, indices)`` along ``dim``."""
    return _max_min(input, dim, keepdim, True)


def min(input, dim=None, keepdim=False):
    """``min(x)``: the smallest element. ``min(x, dim)``: ``(values, indices)`` along ``dim``."""
    return _max_min(input, dim, keepdim, False)


def _arg(input, dim, keepdim, fn):
    data = input.data
    if dim is None:
        out = getattr(data.reshape(-1), fn)()
        return Tensor._wrap(array_module(data).asarray(out, dtype=np.int64).reshape((1,) * data.ndim if keepdim else ()))
    (d,) = normalize_dims(dim, input.ndim)
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


def _correction(unbiased, correction):
    if correction is not None and unbiased is not None:
        raise ValueError("var/std: give either unbiased or correction, not both")
    if correction is not None:
        return correction
    return 1 if unbiased is None or unbiased else 0


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance over ``dim``; ``correction=1`` (default, = ``unbiased=True``) divides by n-1."""
    dims = normalize_dims(dim, input.ndim)
    return R.Var.apply(input, dims=dims, keepdim=keepdim, correction=_correction(unbiased, correction))


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Standard deviation: ``sqrt(var(...))``."""
    return sqrt(var(input, dim, unbiased, keepdim, correction=correction))


def logsumexp(input, dim, keepdim=False):
    """``log(sum(exp(input), dim))``, stable for large values."""
    return R.LogSumExp.apply(input, dims=normalize_dims(dim, input.ndim), keepdim=keepdim)


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
    return R.Softmax.apply(input, _one_dim(dim, input.ndim, "softmax"))


def log_softmax(input, dim, dtype=None):
    """``x - logsumexp(x, dim)`` along ``dim``."""
    if dtype is not None:
        input = input.to(dtype)
    if input.ndim == 0:
        return input * 0
    return R.LogSoftmax.apply(input, _one_dim(dim, input.ndim, "log_softmax"))


# ------------------------------------------------------------ shapes
def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def reshape(input, *shape):
    """The same elements in a new shape; one dimension may be -1 (inferred)."""
    shape = _shape_arg(shape)
    known = math.prod(s for s in shape if s != -1)
    if shape.count(-1) > 1 or (-1 not in shape and known != input.numel()) or (
        -1 in shape and (known == 0 or input.numel() % known)
    ):
        raise ValueError(f"reshape: shape {shape} is invalid for input of shape {input.shape}")
    return S.Reshape.apply(input, shape)


view = reshape


def permute(input, *dims):
    """Reorder the dimensions: ``permute(x, 0, 2, 3, 1)`` takes NCHW to NHWC."""
    dims = _shape_arg(dims)
    if sorted(d % builtins.max(input.ndim, 1) for d in dims) != list(range(input.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of {input.ndim} dimensions")
    return S.Permute.apply(input, tuple(d % input.ndim for d in dims))


def transpose(input, dim0, dim1):
    """Swap two dimensions."""
    dims = list(range(input.ndim))
    d0, d1 = normalize_dims(dim0, input.ndim)[0], normalize_dims(dim1, input.ndim)[0]
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return S.Permute.apply(input, tuple(dims))


def flatten(input, start_dim=0, end_dim=-1):
    """Merge dimensions ``start_dim..end_dim`` into one: ``(N, C, H, W) -> (N, C*H*W)`` with start 1."""
    if input.ndim == 0:
        return reshape(input, 1)
    s, e = normalize_dims(start_dim, input.ndim)[0], normalize_dims(end_dim, input.ndim)[0]
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = input.shape[:s] + (math.prod(input.shape[s : e + 1]),) + input.shape[e + 1 :]
    return S.Reshape.apply(input, shape)


def squeeze(input, dim=None):
    """Remove dimensions of size 1 (all of them, or only ``dim`` if it has size 1)."""
    if dim is None:
        shape = tuple(n for n in input.shape if n != 1)
    else:
        dims = normalize_dims(dim, input.ndim)
        shape = tuple(n for i, n in enumerate(input.shape) if not (i in dims and n == 1))
    return S.Reshape.apply(input, shape)


def unsqueeze(input, dim):
    """Insert a dimension of size 1 at ``dim`` (negative counts from the new end)."""
    if not -input.ndim - 1 <= dim <= input.ndim:
        raise IndexError(f"unsqueeze: dim {dim} out of range [{-input.ndim - 1}, {input.ndim}]")
    d = dim % (input.ndim + 1)
    return S.Reshape.apply(input, input.shape[:d] + (1,) + input.shape[d:])


def expand(input, *sizes):
    """Broadcast to ``sizes`` without copying; -1 keeps a dimension's size."""
    sizes = _shape_arg(sizes)
    lead = len(sizes) - input.ndim
    if lead < 0:
        raise ValueError(f"expand: {len(sizes)} sizes given for a {input.ndim}-d tensor of shape {input.shape}")
    shape = tuple(input.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
    for i, n in enumerate(input.shape):
        if n != 1 and n != shape[i + lead]:
            raise ValueError(f"expand: cannot expand shape {input.shape} to {sizes}")
    return S.Expand.apply(input, shape)


def _check_same(tensors, name):
    if not tensors:
        raise ValueError(f"{name}: expected a non-empty sequence of tensors")
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    return tensors


def cat(tensors, dim=0):
    """Concatenate along an existing dimension; the other dimensions must match."""
    tensors = _check_same(tensors, "cat")
    ref = tensors[0]
    (d,) = normalize_dims(dim, ref.ndim)
    for i, t in enumerate(tensors):
        if t.ndim != ref.ndim or t.shape[:d] + t.shape[d + 1 :] != ref.shape[:d] + ref.shape[d + 1 :]:
            raise ValueError(
                f"cat: tensor {i} has shape {t.shape}, expected {ref.ndim} dims matching "
                f"{ref.shape} except in dim {d}"
            )
    return S.Cat.apply(*tensors, dim=d)


concatenate = cat


def stack(tensors, dim=0):
    """Stack equal-shaped tensors along a new dimension ``dim``."""
    tensors = _check_same(tensors, "stack")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: tensor {i} has shape {t.shape}, expected {tensors[0].shape}")
    if not -tensors[0].ndim - 1 <= dim <= tensors[0].ndim:
        raise IndexError(f"stack: dim {dim} out of range for {tensors[0].ndim}-d tensors")
    return S.Stack.apply(*tensors, dim=dim % (tensors[0].ndim + 1))


def split(input, split_size_or_sections, dim=0):
    """Cut into pieces of ``split_size`` (the last may be smaller) or of the listed sizes."""
    (d,) = normalize_dims(dim, input.ndim)
    n = input.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise ValueError(f"split: split_size must be positive, got {step}")
        sizes = [builtins.min(step, n - i) for i in range(0, n, step)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise ValueError(f"split: sections {sizes} sum to {builtins.sum(sizes)}, expected {n} (size of dim {d})")
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
            k = k.data
        elif isinstance(k, list):
            k = np.asarray(k)
        out.append(k)
    return tuple(out) if isinstance(key, tuple) else out[0]


def index(input, key):
    """``input[key]``: ints, slices, None, Ellipsis, integer arrays and boolean masks."""
    key = raw_index(key)
    try:
        input.data[key] if input.ndim else None
    except IndexError as e:
        raise IndexError(f"index {key!r} is invalid for a tensor of shape {input.shape}: {e}") from None
    return S.Index.apply(input, key)


# ------------------------------------------------------------ linear algebra
def matmul(input, other):
    """Matrix product with broadcasting of batch dimensions: ``(..., n, k) @ (..., k, m)``."""
    a = input if isinstance(input, Tensor) else Tensor(input)
    b = other if isinstance(other, Tensor) else Tensor(other)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both inputs need at least 1 dimension, got shapes {a.shape} and {b.shape}")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} cannot be multiplied: the last dimension of "
            f"input ({k_a}) must equal {'the size' if b.ndim == 1 else 'dimension -2'} of other ({k_b})"
        )
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dimensions of {a.shape} and {b.shape} do not broadcast") from None
    return MatMul.apply(a, b)


mm = matmul


# ------------------------------------------------------------ copies
def to_copy(input, dtype=None, device=None):
    """``input`` converted to ``dtype`` and/or moved to ``device`` (self when nothing changes)."""
    dtype = None if dtype is None else np.dtype(dtype)
    if (dtype is None or dtype == input.dtype) and (device is None or device == input.device):
        return input
    if dtype is not None and dtype.kind not in "fc":  # integer results carry no gradient
        input = input.detach()
    return ToCopy.apply(input, dtype=dtype, device=device)


def clone(input):
    """A copy of ``input`` that stays in the graph (the gradient passes through)."""
    return ToCopy.apply(input, dtype=None, device=None)
