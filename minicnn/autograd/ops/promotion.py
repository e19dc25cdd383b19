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
"""

from __future__ import annotations

import numpy as np

from minicnn.backend import is_array

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
