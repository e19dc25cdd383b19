"""Which array module (NumPy or CuPy) an array belongs to, without importing CuPy needlessly."""

from __future__ import annotations

import sys
from types import ModuleType

import numpy as np


def array_module(*arrays) -> ModuleType:
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy``.

    CuPy is only consulted when it has already been imported: if it has not,
    no CuPy array can exist, so a CPU-only run never pays CuPy's import time.
    """
    cupy = sys.modules.get("cupy")
    if cupy is not None:
        for a in arrays:
            if isinstance(a, cupy.ndarray):
                return cupy
    return np


def is_array(x) -> bool:
    """True for a NumPy array or a CuPy array."""
    if isinstance(x, np.ndarray):
        return True
    cupy = sys.modules.get("cupy")
    return cupy is not None and isinstance(x, cupy.ndarray)
