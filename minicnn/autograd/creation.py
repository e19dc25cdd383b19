"""Functions that make new tensors: ``tensor``, ``zeros``, ``randn`` ... (as in PyTorch).

Random ones draw from minicnn's one generator (``minicnn.manual_seed``) on the CPU and
then move to the device, so a seed gives the same numbers everywhere.
"""

from __future__ import annotations

import numpy as np

from minicnn import random as _random
from minicnn.autograd.tensor import Tensor, as_array
from minicnn.backend import normalize_device, to_device


def _shape(size) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for s in size:
        if not isinstance(s, (int, np.integer)) or s < 0:
            raise ValueError(f"size must be non-negative ints, got {size}")
    return tuple(int(s) for s in size)


def _make(array, dtype, device, requires_grad) -> Tensor:
    if dtype is not None:
        array = array.astype(np.dtype(dtype), copy=False)
    array = to_device(array, normalize_device(device))
    t = Tensor._wrap(array)
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (floats default to float32, ints to int64)."""
    arr = as_array(data, dtype)
    arr = arr.copy() if arr is data or (isinstance(data, Tensor) and arr is data.array) else arr
    return _make(arr, None, device, requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array (its dtype is kept)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return Tensor._wrap(array)


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _make(np.zeros(_shape(size), dtype=dtype or np.float32), None, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _make(np.ones(_shape(size), dtype=dtype or np.float32), None, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _make(np.empty(_shape(size), dtype=dtype or np.float32), None, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    arr = np.full(_shape((size,)), fill_value, dtype=dtype)
    if dtype is None and arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    return _make(arr, None, device, requires_grad)


def _like(input, name: str) -> Tensor:
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a minicnn Tensor, got {type(input).__name__}")
    return input


def zeros_like(input: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Zeros with ``input``'s shape, dtype and device (unless given)."""
    _like(input, "zeros_like")
    return zeros(input.shape, dtype=dtype or input.dtype, device=device or input.device,
                 requires_grad=requires_grad)


def ones_like(input: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Ones with ``input``'s shape, dtype and device (unless given)."""
    _like(input, "ones_like")
    return ones(input.shape, dtype=dtype or input.dtype, device=device or input.device,
                requires_grad=requires_grad)


def full_like(input: Tensor, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``fill_value`` everywhere, with ``input``'s shape, dtype and device (unless given)."""
    _like(input, "full_like")
    return full(input.shape, fill_value, dtype=dtype or input.dtype,
                device=device or input.device, requires_grad=requires_grad)


def _float_like(input: Tensor, dtype, name: str) -> np.dtype:
    dtype = np.dtype(dtype or _like(input, name).dtype)
    if dtype.kind != "f":
        raise TypeError(f"{name}: needs a floating-point dtype, got {dtype} (pass dtype=)")
    return dtype


def randn_like(input: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal samples with ``input``'s shape, dtype and device (unless given)."""
    dtype = _float_like(input, dtype, "randn_like")
    return randn(input.shape, dtype=dtype, device=device or input.device,
                 requires_grad=requires_grad)


def rand_like(input: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform samples in [0, 1) with ``input``'s shape, dtype and device (unless given)."""
    dtype = _float_like(input, dtype, "rand_like")
    return rand(input.shape, dtype=dtype, device=device or input.device,
                requires_grad=requires_grad)


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive (float32 by default).

    Computed in float64 and then cast, so the values match ``torch.linspace`` to rounding.
    """
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"linspace: steps must be a non-negative int, got {steps!r}")
    arr = np.linspace(float(start), float(end), int(steps), dtype=np.float64)
    return _make(arr.astype(dtype or np.float32), None, device, requires_grad)


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """The ``(n, m)`` identity matrix (``m = n`` by default): ones on the diagonal."""
    for name, v in (("n", n), ("m", m)):
        if v is not None and (not isinstance(v, (int, np.integer)) or isinstance(v, bool)
                              or v < 0):
            raise ValueError(f"eye: {name} must be a non-negative int, got {v!r}")
    arr = np.eye(int(n), None if m is None else int(m), dtype=dtype or np.float32)
    return _make(arr, None, device, requires_grad)


def is_tensor(obj) -> bool:
    """True when ``obj`` is a minicnn Tensor (as ``torch.is_tensor``)."""
    return isinstance(obj, Tensor)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    if end is None:
        start, end = 0, start
    arr = np.arange(start, end, step)
    if dtype is None:
        arr = arr.astype(np.float32 if arr.dtype.kind == "f" else np.int64)
    return _make(arr, dtype, device, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal samples of shape ``size``."""
    arr = _random.generator().standard_normal(_shape(size), dtype=np.float64)
    return _make(arr.astype(dtype or np.float32), None, device, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform samples in [0, 1) of shape ``size``."""
    arr = _random.generator().random(_shape(size), dtype=np.float64)
    return _make(arr.astype(dtype or np.float32), None, device, requires_grad)


def randint(low, high=None, size=(), dtype=None, device=None) -> Tensor:
    """Integers in [low, high) (or [0, low) when high is None) of shape ``size``."""
    if high is None:
        low, high = 0, low
    arr = _random.generator().integers(low, high, size=_shape((size,)) if size != () else ())
    return _make(arr.astype(dtype or np.int64), None, device, False)


manual_seed = _random.manual_seed
