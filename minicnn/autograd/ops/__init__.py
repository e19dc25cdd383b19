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
from minicnn.autograd.ops.promotion import DEFAULT_FLOAT, result_type
from minicnn.autograd.ops.reduction import MaxResult, normalize_dims
from minicnn.autograd.tensor import Tensor
from minicnn.backend import array_module


def _is_number(x) -> bool:
    return isinstance(x, (int, float, complex, np.generic)) and not isinstance(x, np.ndarray)


def _cast(x, dtype: np.dtype, like: Tensor):
    """One operand of an op whose result has ``dtype``.

    A Tensor is converted differentiably (``to_copy``) when its dtype differs. A Python
    number stays a number: NumPy 2 then keeps the array's dtype (``float32 * 2.0`` is
    float32), as PyTorch does. Anything else becomes an array on ``like``'s device.
    """
    if isinstance(x, Tensor):
        return x if x.dtype == dtype else to_copy(x, dtype=dtype)
    if _is_number(x):
        return x.item() if isinstance(x, np.generic) else x
    return array_module(like.array).asarray(x, dtype=dtype)


def _operands(*xs):
    """Tensors stay, numbers stay, anything else (lists, arrays) becomes a Tensor."""
    return [x if isinstance(x, Tensor) or _is_number(x) or x is None else Tensor(x) for x in xs]


def _same_dtype(xs) -> np.dtype | None:
    """The result dtype in the common case -- tensors of one dtype, with Python numbers that
    cannot change it -- without the general rules; None when those are needed."""
    dtype, float_number = None, False
    for x in xs:
        if isinstance(x, Tensor):
            if dtype is None:
                dtype = x.array.dtype
            elif x.array.dtype != dtype:
                return None
        elif type(x) is float:
            float_number = True
        elif type(x) is not int and x is not None:  # bools, arrays, NumPy scalars, lists
            return None
    if dtype is None or dtype.kind not in "iuf" or (float_number and dtype.kind != "f"):
        return None
    return dtype


def _promoted(*xs, true_divide: bool = False) -> list:
    """The operands cast to their common dtype (PyTorch's rules, see ``promotion.py``)."""
    dtype = _same_dtype(xs)
    if dtype is not None and (dtype.kind == "f" or not true_divide):
        return list(xs)  # nothing to convert
    xs = _operands(*xs)
    dtype = result_type(*xs)
    if true_divide and dtype.kind not in "fc":
        dtype = DEFAULT_FLOAT  # int / int is a float tensor, as in PyTorch
    like = next((x for x in xs if isinstance(x, Tensor)), None)
    if like is None:  # numbers only: the first one becomes a tensor of the result dtype
        xs[0] = Tensor(np.asarray(xs[0], dtype=dtype))
        like = xs[0]
    return [x if x is None else _cast(x, dtype, like) for x in xs]


def _check_broadcast(name: str, *xs) -> None:
    """Raise a ValueError naming the shapes if ``xs`` do not broadcast together."""
    shapes = [np.shape(x.array if isinstance(x, Tensor) else x) for x in xs if x is not None]
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(
            f"{name}: shapes {', '.join(str(tuple(s)) for s in shapes)} do not broadcast "
            "(each dimension must match or be 1, counted from the right)"
        ) from None


def _binary(fn, a, b, true_divide: bool = False):
    a, b = _promoted(a, b, true_divide=true_divide)
    try:
        return fn.apply(a, b)
    except ValueError:  # name the shapes if that was the problem, else re-raise as it is
        _check_broadcast(fn.__name__.lower(), a, b)
        raise


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
    """``input / other`` (true division: integer inputs give a float32 result)."""
    return _binary(E.Div, input, other, true_divide=True)


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
    """Clip every element to ``[min, max]`` (either bound may be None, not both).

    Number bounds: the gradient passes only strictly inside ``(min, max)``, as in PyTorch.
    Tensor bounds broadcast and get gradients too: ``minimum(maximum(input, min), max)``.
    """
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor) or not (
        (min is None or _is_number(min)) and (max is None or _is_number(max))
    ):
        out = input if min is None else maximum(input, min)
        return out if max is None else minimum(out, max)
    input, min, max = _promoted(input, min, max)
    return E.Clamp.apply(input, min, max)


clip = clamp


def maximum(input, other):
    return _binary(E.Maximum, input, other)


def minimum(input, other):
    return _binary(E.Minimum, input, other)


def where(condition, input, other):
    """``input`` where ``condition`` is true, else ``other`` (broadcast together)."""
    cond = condition.array if isinstance(condition, Tensor) else np.asarray(condition)
    if cond.dtype != bool:
        raise TypeError(f"where: condition must be a bool tensor, got dtype {cond.dtype}")
    input, other = _promoted(input, other)
    try:
        return E.Where.apply(cond, input, other)
    except ValueError:
        _check_broadcast("where", cond, input, other)
        raise


def sigmoid(input):
    return E.Sigmoid.apply(input)


def tanh(input):
    return E.Tanh.apply(input)


def relu(input):
    return E.ReLU.apply(input)


# ------------------------------------------------------------ reductions
def _dims(dim, ndim: int) -> tuple[int, ...]:
    """``dim`` as sorted non-negative axes; None and an empty tuple mean all (as in PyTorch)."""
    if isinstance(dim, (tuple, list)) and len(dim) == 0:
        dim = None
    return normalize_dims(dim, ndim)


def sum(input, dim=None, keepdim=False):
    """Sum over ``dim`` (None: all)."""
    return R.Sum.apply(input, dims=_dims(dim, input.ndim), keepdim=keepdim)


def mean(input, dim=None, keepdim=False):
    """Mean over ``dim`` (None: all). Needs a floating-point tensor."""
    if input.dtype.kind not in "fc":
        raise TypeError(f"mean: input must be floating point, got dtype {input.dtype}")
    return R.Mean.apply(input, dims=_dims(dim, input.ndim), keepdim=keepdim)


def _check_not_empty(input, dims, name):
    if any(input.shape[d] == 0 for d in dims) or (not dims and input.numel() == 0):
        raise ValueError(
            f"{name}: cannot reduce over a dimension of size 0 (input shape {input.shape})"
        )


def amax(input, dim=None, keepdim=False):
    """Max over ``dim``; tied maxima share the gradient evenly (as ``torch.amax``)."""
    dims = _dims(dim, input.ndim)
    _check_not_empty(input, dims, "amax")
    return R.Amax.apply(input, dims=dims, keepdim=keepdim)


def amin(input, dim=None, keepdim=False):
    """Min over ``dim``; tied minima share the gradient evenly (as ``torch.amin``)."""
    dims = _dims(dim, input.ndim)
    _check_not_empty(input, dims, "amin")
    return R.Amax.apply(input, dims=dims, keepdim=keepdim, largest=False)


def _max_min(input, dim, keepdim, largest, name):
    if isinstance(dim, Tensor):  # torch.max(a, b) is the element-wise maximum
        return maximum(input, dim) if largest else minimum(input, dim)
    if dim is None:  # the whole tensor: ties (and NaNs) share the gradient evenly
        _check_not_empty(input, (), name)
        return R.Amax.apply(input, dims=tuple(range(input.ndim)), keepdim=False,
                            largest=largest, nan_ties=True)
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{name}: dim must be an int or None, got {dim!r}")
    (d,) = normalize_dims(int(dim), input.ndim) or (0,)
    if input.ndim == 0:
        return MaxResult(clone(input), Tensor._wrap(array_module(input.array).zeros((), np.int64)))
    _check_not_empty(input, (d,), name)
    indices = argmax(input, d, keepdim=True) if largest else argmin(input, d, keepdim=True)
    values = R.MaxDim.apply(input, d, keepdim=keepdim, indices=indices.array)
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
    return R.Var.apply(input, dims=dims, keepdim=keepdim, correction=correction)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Standard deviation ``sqrt(var(...))``; where it is 0 the gradient is 0 (as in PyTorch)."""
    dims, unbiased = _var_args(input, dim, unbiased, "std")
    correction = _correction(unbiased, correction)
    return R.Std.apply(input, dims=dims, keepdim=keepdim, correction=correction)


def logsumexp(input, dim, keepdim=False):
    """``log(sum(exp(input), dim))``, stable for large values; its gradient is the softmax."""
    return R.LogSumExp.apply(input, dims=_dims(dim, input.ndim), keepdim=keepdim)


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
    if builtins.min(shape, default=0) < -1 or shape.count(-1) > 1 or (
        -1 not in shape and known != input.numel()
    ) or (
        -1 in shape and (known == 0 or input.numel() % known)
    ):
        raise ValueError(f"reshape: shape {shape} is invalid for input of shape {input.shape}")
    return S.Reshape.apply(input, shape)


view = reshape


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
    return S.Permute.apply(input, tuple(d % n for d in dims) if n else ())


def transpose(input, dim0, dim1):
    """Swap two dimensions."""
    dims = list(range(input.ndim))
    d0, d1 = normalize_dims(dim0, input.ndim)[0], normalize_dims(dim1, input.ndim)[0]
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return S.Permute.apply(input, tuple(dims))


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
    return S.Expand.apply(input, shape)


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
    return S.Cat.apply(*tensors, dim=d)


concatenate = concat = cat


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


def index(input, key):
    """``input[key]``: ints, slices, None, Ellipsis, integer arrays and boolean masks."""
    key = raw_index(key)
    try:
        return S.Index.apply(input, key)
    except IndexError as e:
        raise IndexError(
            f"index {key!r} is invalid for a tensor of shape {input.shape}: {e}"
        ) from None


# ------------------------------------------------------------ linear algebra
def matmul(input, other):
    """Matrix product with broadcasting of batch dimensions: ``(..., n, k) @ (..., k, m)``."""
    a = input if isinstance(input, Tensor) else Tensor(input)
    b = other if isinstance(other, Tensor) else Tensor(other)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matmul: both inputs need at least 1 dimension, got shapes {a.shape} and {b.shape}"
        )
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        where = "the size" if b.ndim == 1 else "dimension -2"
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} cannot be multiplied: the last dimension of "
            f"input ({k_a}) must equal {where} of other ({k_b})"
        )
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(
            f"matmul: batch dimensions of {a.shape} and {b.shape} do not broadcast"
        ) from None
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
