"""The dtype of a binary operation's result, by PyTorch's promotion rules.

NumPy and PyTorch agree on most pairs but not all: in PyTorch ``int64 + float32`` is
float32 (NumPy: float64), ``int_tensor + 2.5`` is float32, and a 0-d tensor or a Python
number never widens a tensor of the same kind (``float32 (3,) + float64 0-d`` stays
float32). The rule, from ``torch.result_type``:

1. Operands fall into three priority groups: tensors with dimensions, 0-d tensors,
   Python numbers.
2. Within a group the highest *category* (bool < integer < floating) wins, and dtypes
   of that category promote as in NumPy (``int8 + uint8 -> int16``, ``float16 + float32
   -> float32``).
3. A lower group changes the result only when its category is higher: a 0-d tensor
   then brings its own dtype, a Python number the default dtype of its category
   (float32 for floats, int64 for ints).

``promoted(*operands)`` casts the operands of one op to that dtype (differentiably).
"""

from __future__ import annotations

import numpy as np

from minicnn.autograd.ops.conversion import to_copy
from minicnn.autograd.tensor import Tensor
from minicnn.backend import array_module, is_array

DEFAULT_FLOAT = np.dtype("float32")
DEFAULT_INT = np.dtype("int64")
BOOL = np.dtype("bool")


def category(dtype: np.dtype) -> int:
    """0 for bool, 1 for integers, 2 for floating point, 3 for complex."""
    return {"b": 0, "i": 1, "u": 1, "f": 2, "c": 3}.get(np.dtype(dtype).kind, 2)


def _promote(dtypes: list[np.dtype]) -> np.dtype:
    """The dtype of one group: the highest category, its dtypes promoted together."""
    top = max(category(d) for d in dtypes)
    return np.result_type(*[d for d in dtypes if category(d) == top])


def _python_number_dtype(x) -> np.dtype:
    if isinstance(x, (bool, np.bool_)):
        return BOOL
    if isinstance(x, (int, np.integer)):
        return DEFAULT_INT
    if isinstance(x, (complex, np.complexfloating)):
        return np.dtype("complex64")
    return DEFAULT_FLOAT


def result_type(*operands) -> np.dtype:
    """The dtype PyTorch gives ``op(*operands)``: Tensors, arrays and Python numbers.

    NumPy scalars (``np.float64(2)``) count as Python numbers, as they do in PyTorch.
    """
    groups: tuple[list, list, list] = ([], [], [])
    for x in operands:
        data = x if is_array(x) else getattr(x, "array", None)  # an array, or a Tensor's array
        if is_array(data):
            groups[0 if data.ndim else 1].append(data.dtype)
        elif x is not None:
            groups[2].append(_python_number_dtype(x))
    result = None
    for rank, dtypes in enumerate(groups):
        if not dtypes:
            continue
        candidate = _promote(dtypes)
        if rank == 2:  # Python numbers bring the default dtype of their category
            candidate = {0: BOOL, 1: DEFAULT_INT, 2: DEFAULT_FLOAT}.get(
                category(candidate), candidate
            )
        if result is None or category(candidate) > category(result):
            result = candidate
    if result is None:
        raise TypeError("result_type needs at least one operand")
    return np.dtype(result)


def is_number(x) -> bool:
    """A Python or NumPy scalar (not an array, not a Tensor)."""
    return isinstance(x, (int, float, complex, np.generic)) and not isinstance(x, np.ndarray)


def _cast(x, dtype: np.dtype, like: Tensor):
    """One operand of an op whose result has ``dtype``.

    A Tensor is converted differentiably (``to_copy``) when its dtype differs. A Python
    number stays a number: NumPy 2 then keeps the array's dtype (``float32 * 2.0`` is
    float32), as PyTorch does. Anything else becomes an array on ``like``'s device.
    """
    if isinstance(x, Tensor):
        return x if x.dtype == dtype else to_copy(x, dtype=dtype)
    if is_number(x):
        return x.item() if isinstance(x, np.generic) else x
    return array_module(like.array).asarray(x, dtype=dtype)


def _operands(*xs):
    """Tensors stay, numbers stay, anything else (lists, arrays) becomes a Tensor."""
    return [x if isinstance(x, Tensor) or is_number(x) or x is None else Tensor(x) for x in xs]


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


def promoted(*xs, true_divide: bool = False) -> list:
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


def check_broadcast(name: str, *xs) -> None:
    """Raise a ValueError naming the shapes if ``xs`` do not broadcast together."""
    shapes = [np.shape(x.array if isinstance(x, Tensor) else x) for x in xs if x is not None]
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(
            f"{name}: shapes {', '.join(str(tuple(s)) for s in shapes)} do not broadcast "
            "(each dimension must match or be 1, counted from the right)"
        ) from None
