"""A CPU emulation of CuPy, so the cupy backend's kernels run in every test run.

``install()`` puts stand-in ``cupy``, ``cupyx`` and ``cupyx.scipy.special`` modules into
``sys.modules``; ``minicnn.backend.cupy_gpu`` then imports them as it would CuPy. Arrays
are NumPy arrays of a ``cupy.ndarray`` subclass (see ``arrays.py``: CuPy's refusal to mix
host and device arrays is kept). ``RawKernel`` and ``RawModule`` compile their CUDA C
source with the system C++ compiler and run it on the CPU, one thread of the grid after
another (see ``kernels.py`` and ``runtime.h``), checking launch limits, argument types,
contiguity and out-of-bounds accesses on the way. tests/conftest.py installs it when no
real CuPy with a GPU is present (``MINICNN_CUPY_EMULATION=0`` turns it off, ``=1`` forces it).

What the emulation proves: each kernel's arithmetic and indexing -- every thread of the
launch grid computes its output from the right inputs, threads that exit early or guard
their range do so correctly, barriers are reached by the whole block, arrays are passed
with the C types the kernel declares, and no thread reads or writes outside its arrays.

What it cannot prove (only a GPU can):
* timing and occupancy: nothing here measures speed, memory coalescing, bank conflicts,
  register pressure or whether a launch configuration is efficient;
* races between threads: threads run one at a time, so two threads writing the same
  element without an atomic give the "last one wins" answer here and garbage on a GPU;
  atomics are plain updates, and a missing ``__syncthreads`` between a shared-memory write
  and another thread's read is not detected when threads happen to run in a good order;
* warp-level behaviour: lock-step execution, shuffles and votes (refused with an error),
  and divergence costs;
* floating-point details of the device: the CPU computes in IEEE float/double without
  fused multiply-adds, where NVRTC contracts ``a * b + c`` into an FMA, and CUDA's
  ``pow``/``exp`` may differ in the last bits -- the tests' tolerances cover both;
* the CUDA compiler itself: the source is compiled as C++17 by g++, so a construct NVRTC
  rejects (or CuPy's own headers provide) may behave differently; resource limits other
  than the launch dimensions (shared memory size, registers) are not checked;
* cuBLAS, cuDNN and CuPy's own kernels: ``cupy.matmul`` and friends are NumPy's here.
"""

from __future__ import annotations

import sys
import time
import types

import numpy as np

from tests.cupy_emulation import arrays, kernels
from tests.cupy_emulation.kernels import ElementwiseKernel, RawKernel, RawModule, ReductionKernel

__all__ = ["install", "installed", "EmulationError"]

EmulationError = kernels.EmulationError


class Device:
    """``cupy.cuda.Device``: device 0, whose work is always finished (launches are synchronous)."""

    def __init__(self, device=None):
        self.id = int(device or 0)
        if self.id != 0:
            raise RuntimeError(f"cudaErrorInvalidDevice: the emulation has device 0, got {device}")

    def synchronize(self) -> None:
        pass

    def use(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id} (CPU emulation)>"


class Stream:
    """``cupy.cuda.Stream``: every launch has finished when it returns, so nothing to wait for."""

    def synchronize(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


Stream.null = Stream()


class Event:
    """``cupy.cuda.Event``: records the host clock (launches are synchronous)."""

    def __init__(self, *args, **kwargs):
        self.time = None

    def record(self, stream=None) -> None:
        self.time = time.perf_counter()

    def synchronize(self) -> None:
        pass


def get_elapsed_time(start: Event, end: Event) -> float:
    """Milliseconds between two recorded events."""
    return (end.time - start.time) * 1000.0


class MemoryPool:
    """``cupy.get_default_memory_pool()``: NumPy owns the memory, so the pool is empty."""

    def free_all_blocks(self, stream=None) -> None:
        pass

    def used_bytes(self) -> int:
        return 0

    def total_bytes(self) -> int:
        return 0

    def set_limit(self, size=None, fraction=None) -> None:
        pass


_POOL, _PINNED_POOL = MemoryPool(), MemoryPool()


def _erf(x):
    """``cupyx.scipy.special.erf``: SciPy's erf, else ``math.erf`` element by element."""
    try:
        from scipy.special import erf
    except ImportError:  # scipy comes with scikit-learn in the test extra; keep a fallback
        import math

        erf = np.vectorize(math.erf, otypes=[np.float64])
    arrays._refuse_host(x, "cupyx.scipy.special.erf")
    host = arrays._host(x)
    return arrays._device(np.asarray(erf(host)).astype(np.result_type(host, np.float32)))


def _scatter_add(a, slices, value) -> None:
    """``cupyx.scatter_add``: ``a[slices] += value`` with repeated indices accumulated.

    As in CuPy, index arrays in ``slices`` may be lists or NumPy arrays (CuPy copies them
    to the device); ``value`` must be on the device.
    """
    if not isinstance(a, arrays.ndarray):
        raise TypeError(f"cupyx.scatter_add: a must be a cupy.ndarray, got {type(a).__name__}")
    arrays._refuse_host(value, "cupyx.scatter_add")
    np.add.at(a.view(np.ndarray), arrays._host(slices), arrays._host(value))


def _build() -> dict[str, types.ModuleType]:
    cupy = arrays.Forward("cupy", np)
    cupy.__file__ = __file__
    cupy.__version__ = "13.0.0+cpu-emulation"
    cupy.CPU_EMULATION = True
    for name in ("ndarray", "asarray", "array", "asnumpy", "get_array_module"):
        setattr(cupy, name, getattr(arrays, name))
    cupy.asanyarray = arrays.asarray
    cupy.RawKernel, cupy.RawModule = RawKernel, RawModule
    cupy.ElementwiseKernel, cupy.ReductionKernel = ElementwiseKernel, ReductionKernel
    cupy.get_default_memory_pool = lambda: _POOL
    cupy.get_default_pinned_memory_pool = lambda: _PINNED_POOL

    cuda = types.ModuleType("cupy.cuda")
    runtime = types.ModuleType("cupy.cuda.runtime")
    runtime.getDeviceCount = lambda: 1
    runtime.deviceSynchronize = lambda: None
    runtime.runtimeGetVersion = lambda: 12000
    runtime.CUDARuntimeError = RuntimeError
    cuda.runtime = runtime
    cuda.Device, cuda.Stream, cuda.Event = Device, Stream, Event
    cuda.get_elapsed_time = get_elapsed_time
    cuda.get_current_stream = lambda: Stream.null
    cuda.MemoryPool = MemoryPool
    cupy.cuda = cuda

    cupyx = types.ModuleType("cupyx")
    cupyx.scatter_add = _scatter_add
    scipy = types.ModuleType("cupyx.scipy")
    special = types.ModuleType("cupyx.scipy.special")
    special.erf = _erf
    scipy.special = special
    cupyx.scipy = scipy
    return {"cupy": cupy, "cupy.cuda": cuda, "cupy.cuda.runtime": runtime, "cupyx": cupyx,
            "cupyx.scipy": scipy, "cupyx.scipy.special": special}


def compiler_missing() -> str | None:
    """Why the emulation cannot run here (no C++ compiler), or None when it can."""
    import shutil

    if shutil.which(kernels.CXX) is None:
        return f"the CuPy emulation needs a C++ compiler ({kernels.CXX!r}, or set CXX)"
    return None


def installed() -> bool:
    """True when ``sys.modules['cupy']`` is this emulation."""
    return getattr(sys.modules.get("cupy"), "CPU_EMULATION", False)


def install() -> None:
    """Put the emulated ``cupy``/``cupyx`` into ``sys.modules`` (replacing a real, GPU-less one).

    Call it before ``minicnn.backend.cupy_gpu`` is first imported.
    """
    if installed():
        return
    if "minicnn.backend.cupy_gpu" in sys.modules:
        raise RuntimeError("install the CuPy emulation before minicnn.backend.cupy_gpu is imported")
    for name in [m for m in sys.modules if m.split(".")[0] in ("cupy", "cupyx", "cupy_backends")]:
        del sys.modules[name]
    sys.modules.update(_build())
