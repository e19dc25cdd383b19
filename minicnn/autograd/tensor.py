"""``Tensor``: an array (NumPy on the CPU, CuPy on the GPU) plus what autograd needs.

    array          the raw array (NumPy or CuPy); what Functions compute on
    data           a detached Tensor sharing ``array`` (as ``torch.Tensor.data``)
    requires_grad  whether backward should compute a gradient for it
    grad           the accumulated gradient (a Tensor), for leaves that require grad
    grad_fn        the graph node that made it (None for leaves)

Arithmetic, reductions and shape methods call the Functions in ``minicnn.autograd.ops``.

Every tensor carries a version counter, bumped by each in-place change (``+=``,
``x[i] = v``, ``add_``, ``zero_`` ...). ``detach()`` and views made by ops (``reshape``,
basic indexing) share their base's counter; ``.data`` gets its own, so changes through it
go unseen, exactly as in PyTorch. ``ctx.save_for_backward`` records the versions of the
tensors it keeps and backward refuses to use one that has changed since.
"""

from __future__ import annotations

import weakref

import numpy as np

from minicnn import random as _random
from minicnn.autograd import engine, grad_mode
from minicnn.autograd.device import Device
from minicnn.backend import array_module, is_array, normalize_device, to_device

float32 = np.dtype("float32")
float64 = np.dtype("float64")
float16 = np.dtype("float16")
int8 = np.dtype("int8")
int16 = np.dtype("int16")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
uint8 = np.dtype("uint8")
bool_ = np.dtype("bool")


_NUMERIC_KINDS = "biufc"  # bool, signed and unsigned int, float, complex


def as_array(data, dtype=None):
    """Turn ``data`` (list, scalar, NumPy or CuPy array, Tensor) into an array.

    Like ``torch.tensor``: Python floats become float32, Python ints int64 and bools
    bool; arrays keep their dtype unless ``dtype`` is given. Strings, objects and other
    non-numeric data raise a TypeError.
    """
    if isinstance(data, Tensor):
        data = data.array
    if is_array(data):
        arr = data
    elif isinstance(data, np.generic):  # a NumPy scalar keeps its dtype, as in PyTorch
        arr = np.asarray(data)
    else:
        try:
            arr = np.asarray(data)
        except ValueError:  # ragged nested lists
            raise ValueError(
                f"tensor: nested lists must be rectangular (every row of a dimension the same "
                f"length), got {type(data).__name__} {_short(data)}"
            ) from None
        if dtype is None and arr.dtype == np.float64:
            arr = arr.astype(np.float32)  # Python floats default to float32, as in PyTorch
        elif dtype is None and arr.dtype.kind == "i":
            arr = arr.astype(np.int64)
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(
            f"tensor: data must be numbers (bool, int, float), nested lists of numbers or a "
            f"numeric array, got {type(data).__name__} {_short(data)} (dtype {arr.dtype})"
        )
    if dtype is not None:
        arr = arr.astype(np.dtype(dtype), copy=False)
    return arr


def _short(data) -> str:
    text = repr(data)
    return text if len(text) <= 40 else text[:37] + "..."


class VersionCounter:
    """How many in-place changes a tensor's storage has seen (shared by views of it)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class Tensor:
    """A multi-dimensional array that records operations for automatic differentiation."""

    __array_priority__ = 1000  # numpy_array + tensor calls Tensor.__radd__, not NumPy's add

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.array = as_array(data, dtype)
        self._version_counter = VersionCounter()
        self.grad: Tensor | None = None
        self.grad_fn = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, array, requires_grad: bool = False, grad_fn=None) -> Tensor:
        """Wrap an array that an operation produced (no copy, no dtype change)."""
        t = cls.__new__(cls)
        t.array = array if is_array(array) else np.asarray(array)
        t._version_counter = VersionCounter()
        t.grad = None
        t.grad_fn = grad_fn
        t.requires_grad = requires_grad
        return t

    # ------------------------------------------------------------ properties
    @property
    def data(self) -> Tensor:
        """The same storage as a new Tensor outside the graph (``torch.Tensor.data``).

        Changes made through it are not seen by autograd (it has its own version counter,
        as in PyTorch); prefer ``detach()``. ``t.data = other`` makes ``t`` use ``other``'s
        storage. The raw NumPy/CuPy array is ``t.array``; ``t.numpy()`` gives a NumPy one.
        """
        return Tensor._wrap(self.array)

    @data.setter
    def data(self, value) -> None:
        if isinstance(value, Tensor):
            value = value.array
        if not is_array(value):
            raise TypeError(
                f"Tensor.data: expected a Tensor (or an array), got {type(value).__name__}"
            )
        self.array = value

    @property
    def _version(self) -> int:
        """The number of in-place changes to this tensor's storage (``torch.Tensor._version``)."""
        return self._version_counter.value

    def _bump_version(self) -> None:
        self._version_counter.value += 1

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def ndim(self) -> int:
        return self.array.ndim

    @property
    def device(self) -> str:
        return "cpu" if array_module(self.array) is np else "cuda"

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def T(self) -> Tensor:
        """The tensor with its dimensions reversed (``permute(n-1, ..., 0)``)."""
        return self.permute(*reversed(range(self.ndim)))

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return int(self.array.size)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        """Iterate over the first dimension (each item is ``self[i]``, in the graph)."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    # ------------------------------------------------------------ autograd
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.dtype.kind not in "fc":
            raise TypeError(
                f"only floating-point tensors can require gradients, got dtype {self.dtype}"
            )
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError(
                "requires_grad can only be switched off on leaf tensors; use detach()"
            )
        self.requires_grad = requires_grad
        return self

    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Compute gradients of this tensor with respect to every leaf that requires grad.

        ``gradient`` is d(something)/d(self), shaped like ``self``; it may be left out for
        a one-element tensor (it is 1 then), as in PyTorch.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require grad and has no grad_fn: "
                "create the inputs with requires_grad=True"
            )
        if gradient is None:
            if self.array.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a scalar (one-element) tensor, got "
                    f"shape {self.shape}; pass gradient= with that shape or reduce first "
                    "(e.g. .sum())"
                )
            grad = array_module(self.array).ones_like(self.array)
        else:
            grad = to_device(as_array(gradient, dtype=self.dtype), self.device)
            if grad.shape != self.shape:
                raise ValueError(
                    f"backward(gradient): gradient has shape {grad.shape}, expected {self.shape}"
                )
        engine.backward(self, grad, retain_graph=retain_graph)

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward (leaves always keep it)."""
        if self.grad_fn is not None:
            self.grad_fn.retained_output = weakref.ref(self)

    def detach(self) -> Tensor:
        """The same data, cut off from the graph (no copy; shares the version counter)."""
        t = Tensor._wrap(self.array)
        t._version_counter = self._version_counter
        return t

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self.requires_grad = False
        return self

    # ------------------------------------------------------------ in-place changes
    def _check_inplace(self, what: str) -> None:
        """In-place changes are refused where they would make a recorded graph wrong.

        Under ``no_grad()`` a leaf that requires grad may be changed (that is how
        optimizers update parameters, as in PyTorch); with grad mode on it may not,
        and a tensor made by a recorded operation never may.
        """
        if not self.requires_grad:
            return
        if self.grad_fn is not None:
            raise RuntimeError(
                f"{what}: in-place change of a tensor that an operation produced and that "
                "requires grad is not supported; write a = a + b (a new tensor) instead"
            )
        if grad_mode.is_grad_enabled():
            raise RuntimeError(
                f"{what}: a leaf tensor that requires grad is being used in an in-place "
                "operation; do it under minicnn.no_grad(), or write a = a + b"
            )

    def _write(self, what: str, array) -> Tensor:
        """Copy ``array`` into this tensor's storage (broadcast, cast) and bump the version."""
        self._check_inplace(what)
        self.array[...] = _raw(array)
        self._bump_version()
        return self

    def zero_(self) -> Tensor:
        """Fill with zeros in place (no graph is recorded)."""
        return self._write("zero_", 0)

    def fill_(self, value) -> Tensor:
        """Fill with ``value`` in place."""
        return self._write("fill_", value)

    def copy_(self, src) -> Tensor:
        """Copy ``src`` (a Tensor, array or number broadcastable to this shape) in place."""
        src = _raw(src)
        if is_array(src):
            src = to_device(src, self.device)
        return self._write("copy_", src)

    def add_(self, other, *, alpha=1) -> Tensor:
        return self._inplace(ops.add, other if alpha == 1 else ops.mul(other, alpha), "add_")

    def sub_(self, other, *, alpha=1) -> Tensor:
        return self._inplace(ops.sub, other if alpha == 1 else ops.mul(other, alpha), "sub_")

    def mul_(self, other) -> Tensor:
        return self._inplace(ops.mul, other, "mul_")

    def div_(self, other) -> Tensor:
        return self._inplace(ops.div, other, "div_")

    def clamp_(self, min=None, max=None) -> Tensor:
        self._check_inplace("clamp_")
        with grad_mode.no_grad():
            return self._write("clamp_", ops.clamp(self, min, max))

    clip_ = clamp_

    def uniform_(self, a: float = 0.0, b: float = 1.0) -> Tensor:
        """Fill with samples from U(a, b), drawn from minicnn's generator."""
        values = _random.generator().uniform(a, b, self.shape)
        return self.copy_(values.astype(self.dtype))

    def normal_(self, mean: float = 0.0, std: float = 1.0) -> Tensor:
        """Fill with samples from N(mean, std^2), drawn from minicnn's generator."""
        values = _random.generator().normal(mean, std, self.shape)
        return self.copy_(values.astype(self.dtype))

    # ------------------------------------------------------------ conversions
    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.array.size != 1:
            raise ValueError(f"item() needs a one-element tensor, got shape {self.shape}")
        return self.array.reshape(()).item()

    def tolist(self):
        """The values as (nested) Python lists; works with requires_grad, as in PyTorch."""
        return to_device(self.array, "cpu").tolist()

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (shares memory on the CPU; copies from the GPU)."""
        if self.requires_grad:
            raise RuntimeError("numpy() on a tensor that requires grad; call detach().numpy()")
        return to_device(self.array, "cpu")

    def __array__(self, dtype=None, copy=None):
        arr = to_device(self.array, "cpu")
        return arr if dtype is None else arr.astype(dtype)

    def to(self, *args, dtype=None, device=None) -> Tensor:
        """``to("cuda")``, ``to("cpu")``, ``to(float64)`` or ``to(device, dtype)``.

        A differentiable copy (the gradient comes back converted); ``self`` when nothing changes.
        """
        for a in args:
            if isinstance(a, (str, Device)) or a is None:
                device = a
            else:
                dtype = a
        from minicnn.autograd.ops import to_copy

        device = None if device is None else normalize_device(device)
        return to_copy(self, dtype=dtype, device=device)

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self) -> Tensor:
        return self.to("cuda")

    def float(self) -> Tensor:
        return self.to(float32)

    def double(self) -> Tensor:
        return self.to(float64)

    def long(self) -> Tensor:
        return self.to(int64)

    def int(self) -> Tensor:
        return self.to(int32)

    def bool(self) -> Tensor:
        return self.to(bool_)

    def type(self, dtype) -> Tensor:
        return self.to(dtype)

    def clone(self) -> Tensor:
        return ops.clone(self)

    def contiguous(self) -> Tensor:
        return self

    def __repr__(self) -> str:
        body = np.array2string(
            to_device(self.array, "cpu"), separator=", ", precision=4, prefix="tensor("
        )
        extras = []
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.dtype not in (float32, int64, bool_):
            extras.append(f"dtype={self.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn={self.grad_fn!r}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    def __bool__(self) -> bool:
        if self.array.size != 1:
            raise RuntimeError(
                f"truth value of a tensor with {self.array.size} elements is ambiguous"
            )
        return bool(self.array.reshape(()).item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.kind not in "iu" or self.array.size != 1:
            raise TypeError("only one-element integer tensors can be used as an index")
        return int(self.item())

    __hash__ = object.__hash__

    # ------------------------------------------------------------ arithmetic
    def __add__(self, other):
        return ops.add(self, other)

    def __radd__(self, other):
        return ops.add(other, self)

    def __sub__(self, other):
        return ops.sub(self, other)

    def __rsub__(self, other):
        return ops.sub(other, self)

    def __mul__(self, other):
        return ops.mul(self, other)

    def __rmul__(self, other):
        return ops.mul(other, self)

    def __truediv__(self, other):
        return ops.div(self, other)

    def __rtruediv__(self, other):
        return ops.div(other, self)

    def __pow__(self, other):
        return ops.pow(self, other)

    def __rpow__(self, other):
        return ops.pow(other, self)

    def __neg__(self):
        return ops.neg(self)

    def __abs__(self):
        return ops.abs(self)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(other, self)

    def __iadd__(self, other):
        return self._inplace(ops.add, other, "+=")

    def __isub__(self, other):
        return self._inplace(ops.sub, other, "-=")

    def __imul__(self, other):
        return self._inplace(ops.mul, other, "*=")

    def __itruediv__(self, other):
        return self._inplace(ops.div, other, "/=")

    def _inplace(self, op, other, what: str) -> Tensor:
        """``a += b``: compute ``op(a, b)`` outside the graph and write it into ``a``."""
        self._check_inplace(what)
        with grad_mode.no_grad():
            result = op(self, other)
        if result.dtype.kind in "fc" and self.dtype.kind in "biu":  # PyTorch refuses too
            raise TypeError(
                f"{what}: result dtype {result.dtype} can't be cast to the tensor's dtype "
                f"{self.dtype} in place"
            )
        return self._write(what, result)

    # comparisons: no gradient, boolean result
    def __eq__(self, other):  # type: ignore[override]
        return Tensor._wrap(self.array == _raw(other))

    def __ne__(self, other):  # type: ignore[override]
        return Tensor._wrap(self.array != _raw(other))

    def __lt__(self, other):
        return Tensor._wrap(self.array < _raw(other))

    def __le__(self, other):
        return Tensor._wrap(self.array <= _raw(other))

    def __gt__(self, other):
        return Tensor._wrap(self.array > _raw(other))

    def __ge__(self, other):
        return Tensor._wrap(self.array >= _raw(other))

    def __invert__(self):
        return Tensor._wrap(~self.array)

    def __and__(self, other):
        return Tensor._wrap(self.array & _raw(other))

    def __or__(self, other):
        return Tensor._wrap(self.array | _raw(other))

    # ------------------------------------------------------------ indexing
    def __getitem__(self, key):
        return ops.index(self, key)

    def __setitem__(self, key, value):
        self._check_inplace("item assignment")
        value = _raw(value)
        if is_array(value):
            value = to_device(value, self.device)
        self.array[ops.raw_index(key)] = value
        self._bump_version()

    # ------------------------------------------------------------ methods (see ops)
    def add(self, other, *, alpha=1):
        return ops.add(self, other, alpha=alpha)

    def sub(self, other, *, alpha=1):
        return ops.sub(self, other, alpha=alpha)

    def mul(self, other):
        return ops.mul(self, other)

    def div(self, other):
        return ops.div(self, other)

    def neg(self):
        return ops.neg(self)

    def where(self, condition, other):
        """``where(condition, self, other)``."""
        return ops.where(condition, self, other)

    def exp(self):
        return ops.exp(self)

    def log(self):
        return ops.log(self)

    def sqrt(self):
        return ops.sqrt(self)

    def abs(self):
        return ops.abs(self)

    def pow(self, exponent):
        return ops.pow(self, exponent)

    def clamp(self, min=None, max=None):
        return ops.clamp(self, min, max)

    clip = clamp

    def maximum(self, other):
        return ops.maximum(self, other)

    def minimum(self, other):
        return ops.minimum(self, other)

    def sigmoid(self):
        return ops.sigmoid(self)

    def tanh(self):
        return ops.tanh(self)

    def relu(self):
        return ops.relu(self)

    def softmax(self, dim):
        return ops.softmax(self, dim)

    def log_softmax(self, dim):
        return ops.log_softmax(self, dim)

    def sum(self, dim=None, keepdim=False):
        return ops.sum(self, dim, keepdim)

    def mean(self, dim=None, keepdim=False):
        return ops.mean(self, dim, keepdim)

    def max(self, dim=None, keepdim=False):
        return ops.max(self, dim, keepdim)

    def min(self, dim=None, keepdim=False):
        return ops.min(self, dim, keepdim)

    def amax(self, dim=None, keepdim=False):
        return ops.amax(self, dim, keepdim)

    def amin(self, dim=None, keepdim=False):
        return ops.amin(self, dim, keepdim)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return ops.var(self, dim, unbiased, keepdim, correction=correction)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return ops.std(self, dim, unbiased, keepdim, correction=correction)

    def logsumexp(self, dim, keepdim=False):
        return ops.logsumexp(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False):
        return ops.argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        return ops.argmin(self, dim, keepdim)

    def reshape(self, *shape):
        return ops.reshape(self, *shape)

    def view(self, *shape):
        return ops.reshape(self, *shape)

    def view_as(self, other):
        return ops.reshape(self, other.shape)

    def permute(self, *dims):
        return ops.permute(self, *dims)

    def transpose(self, dim0, dim1):
        return ops.transpose(self, dim0, dim1)

    def t(self):
        if self.ndim > 2:
            raise ValueError(f"t() expects a tensor with <= 2 dimensions, got {self.ndim}")
        return self.T

    def flatten(self, start_dim=0, end_dim=-1):
        return ops.flatten(self, start_dim, end_dim)

    def squeeze(self, dim=None):
        return ops.squeeze(self, dim)

    def unsqueeze(self, dim):
        return ops.unsqueeze(self, dim)

    def expand(self, *sizes):
        return ops.expand(self, *sizes)

    def expand_as(self, other):
        return ops.expand(self, *other.shape)

    def split(self, split_size_or_sections, dim=0):
        return ops.split(self, split_size_or_sections, dim)

    def chunk(self, chunks, dim=0):
        return ops.chunk(self, chunks, dim)

    def matmul(self, other):
        return ops.matmul(self, other)


def _raw(x):
    return x.array if isinstance(x, Tensor) else x


from minicnn.autograd import ops  # noqa: E402  (ops needs Tensor defined first)
