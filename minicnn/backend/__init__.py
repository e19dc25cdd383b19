"""The array backend: one registry, three implementations of the same kernels.

* ``numpy`` -- :mod:`minicnn.backend.reference`: every kernel, readable and vectorized,
  written against the array module ``xp``. The oracle the other two are tested against.
* ``numba`` -- :mod:`minicnn.backend.numba_cpu`: compiled CPU kernels for the hot paths.
* ``cupy``  -- :mod:`minicnn.backend.cupy_gpu`: GPU kernels; arrays live on a CUDA device.

A backend that does not override a kernel falls back to the reference one. CPU arrays
use ``numba`` when it imports, else ``numpy``; ``MINICNN_BACKEND=numpy`` or
``with use_backend("numpy"):`` switches. CuPy arrays always use the ``cupy`` backend:
the device of the data chooses it (``tensor.to("cuda")``).

Usage::

    from minicnn.backend import backend_of
    cols = backend_of(x).im2col(x, ...)
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Iterator
from types import ModuleType

import numpy as np

from minicnn.backend import reference
from minicnn.backend.xp import array_module, is_array

__all__ = [
    "Backend", "array_module", "backend_of", "current_backend", "get_backend", "is_array",
    "normalize_device", "set_backend", "to_device", "use_backend", "CPU_BACKENDS",
    "GPU_INSTALL_HINT",
]

CPU_BACKENDS = ("numpy", "numba")
GPU_INSTALL_HINT = 'pip install "minicnn[gpu]" (CUDA 12) or "minicnn[gpu-cuda13]" (CUDA 13)'

# True when NumPy (so OpenBLAS) loaded before minicnn could set OPENBLAS_THREAD_TIMEOUT:
# OpenBLAS's threads then spin after each product. minicnn/__init__.py records it as it
# starts; numba_threads.py reads it.
OPENBLAS_SPINS = False


class Backend:
    """A name, an array module ``xp``, a device ("cpu"/"cuda") and a table of kernels.

    Kernels are looked up as attributes: ``backend.im2col(...)``. The table starts
    from the reference kernels and the backend's own module overrides some of them.
    """

    def __init__(self, name: str, xp: ModuleType, device: str, kernels: dict[str, Callable]):
        self.name = name
        self.xp = xp
        self.device = device
        self.kernels = kernels

    def __getattr__(self, kernel: str) -> Callable:
        kernels = self.__dict__.get("kernels", {})
        if kernel in kernels:
            return kernels[kernel]
        raise AttributeError(
            f"backend {self.__dict__.get('name')!r} has no kernel {kernel!r}; "
            f"known kernels: {sorted(kernels)}"
        )

    def has_own(self, kernel: str) -> bool:
        """True when this backend implements ``kernel`` itself (compiled), not by the reference.

        Algorithms that only pay with fast kernels (Winograd's transforms, direct grouped
        convolution) are chosen by this: on the numpy backend their readable reference
        versions are slower than the im2col they would replace.
        """
        return kernel in self.kernels and reference.KERNELS.get(kernel) is not self.kernels[kernel]

    def overrides(self) -> list[str]:
        """Names of the kernels this backend implements itself (not the reference's)."""
        return sorted(k for k, f in self.kernels.items() if reference.KERNELS.get(k) is not f)

    def __repr__(self) -> str:
        return f"Backend(name={self.name!r}, device={self.device!r})"


_registry: dict[str, Backend] = {}
_cpu_stack: list[str] = []


def _build(name: str) -> Backend:
    kernels = dict(reference.KERNELS)
    if name == "numpy":
        return Backend("numpy", np, "cpu", kernels)
    if name == "numba":
        try:
            module = importlib.import_module("minicnn.backend.numba_cpu")
        except ImportError as e:  # numba missing or broken
            raise RuntimeError(
                f"backend 'numba' is unavailable ({e}); install numba or use backend 'numpy'"
            ) from e
        kernels.update(module.KERNELS)
        return Backend("numba", np, "cpu", kernels)
    if name == "cupy":
        module = _import_cupy_backend()
        kernels.update(module.KERNELS)
        return Backend("cupy", module.cupy, "cuda", kernels)
    raise ValueError(f"backend must be one of 'numpy', 'numba', 'cupy', got {name!r}")


def _import_cupy_backend() -> ModuleType:
    try:
        module = importlib.import_module("minicnn.backend.cupy_gpu")
    except ImportError as e:
        raise RuntimeError(
            f"CUDA was asked for but CuPy is not installed ({e}); {GPU_INSTALL_HINT}"
        ) from e
    if not module.gpu_available():
        raise RuntimeError(f"CUDA was asked for but CuPy finds no usable GPU; {GPU_INSTALL_HINT}")
    return module


def get_backend(name: str) -> Backend:
    """The backend called ``name`` ("numpy", "numba" or "cupy"), built on first use."""
    if name not in _registry:
        _registry[name] = _build(name)
    return _registry[name]


def _default_cpu_backend() -> str:
    name = os.environ.get("MINICNN_BACKEND")
    if name:
        if name not in CPU_BACKENDS:
            raise ValueError(f"MINICNN_BACKEND must be one of {CPU_BACKENDS}, got {name!r}")
        return name
    try:
        get_backend("numba")
        return "numba"
    except RuntimeError:
        return "numpy"


def current_backend() -> Backend:
    """The backend that CPU arrays use now (innermost ``use_backend``, else the default)."""
    if not _cpu_stack:
        _cpu_stack.append(_default_cpu_backend())
    return get_backend(_cpu_stack[-1])


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[Backend]:
    """Run CPU kernels on backend ``name`` ("numpy" or "numba") inside the ``with`` block."""
    if name not in CPU_BACKENDS:
        raise ValueError(
            f"use_backend(name) takes one of {CPU_BACKENDS}, got {name!r}; the GPU backend is "
            f"chosen by the data's device: tensor.to('cuda')"
        )
    backend = get_backend(name)
    current_backend()  # make sure the default sits at the bottom of the stack
    _cpu_stack.append(name)
    try:
        yield backend
    finally:
        _cpu_stack.pop()


def set_backend(name: str) -> Backend:
    """Make ``name`` ("numpy" or "numba") the CPU backend from now on (outside any ``with``)."""
    if name not in CPU_BACKENDS:
        raise ValueError(f"set_backend(name) takes one of {CPU_BACKENDS}, got {name!r}")
    backend = get_backend(name)
    current_backend()
    _cpu_stack[0] = name
    return backend


def backend_of(*arrays) -> Backend:
    """The backend for these arrays: ``cupy`` for CuPy arrays, else the current CPU backend."""
    if array_module(*arrays) is not np:
        return get_backend("cupy")
    return current_backend()


def normalize_device(device) -> str:
    """"cpu", "cuda", "cuda:0", or an object with a ``type``/``device`` -> "cpu" or "cuda"."""
    if device is None:
        return "cpu"
    name = str(device)
    if name == "cpu":
        return "cpu"
    if name == "cuda" or name.startswith("cuda:"):
        return "cuda"
    raise ValueError(f"device must be 'cpu' or 'cuda' (optionally 'cuda:N'), got {device!r}")


def to_device(array, device):
    """Copy ``array`` to ``device`` ("cpu" or "cuda"); no copy when it is already there."""
    device = normalize_device(device)
    xp = array_module(array)
    if device == "cpu":
        return array if xp is np else xp.asnumpy(array)
    cupy_backend = get_backend("cupy")  # raises the install hint if CUDA is unavailable
    return cupy_backend.xp.asarray(array)
