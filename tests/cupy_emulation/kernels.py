"""``RawKernel``/``RawModule`` that run their CUDA C source on the CPU.

The source is compiled once (cached by its hash, in a temporary folder) with the system
C++ compiler after ``runtime.h``, which maps the CUDA built-ins to C++: ``threadIdx``,
``blockIdx``, ``blockDim``, ``gridDim`` are set by a loop over the launch grid; barriers
(``__syncthreads``) run the threads of a block as fibers; atomics are plain updates.

A launch checks what a GPU would not tell you clearly: the grid and block limits, each
argument's C type against the array or scalar passed (a ``float*`` given a float64
array, an ``int`` given a Python int, which CuPy passes as 64 bits), that arrays are
C-contiguous (a kernel indexes them as such), and out-of-bounds accesses: each array is
copied into a buffer between guard bands of NaN bytes (0xFF), so a read past either end
turns the result into NaN or -1 and a write past either end raises.
"""

from __future__ import annotations

import collections
import ctypes
import hashlib
import os
import re
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

RUNTIME = Path(__file__).with_name("runtime.h")
CXX = os.environ.get("CXX", "g++")
FLAGS = ["-std=c++17", "-O1", "-shared", "-fPIC", "-fno-fast-math", "-ffp-contract=off", "-w"]
GUARD = 16384  # bytes of 0xFF on each side of every array argument

# CUDA features the emulation cannot run faithfully: refused with a clear error.
# Keys are regular expressions matched as whole words (``\w*`` allows a family of names).
UNSUPPORTED = {
    r"__shfl\w*": "warp shuffles need lock-step warps",
    r"__(ballot|any|all|match|reduce_\w+)_sync": "warp votes need lock-step warps",
    r"__syncwarp": "warp-level synchronization",
    r"__activemask": "warp-level behaviour",
    r"warpSize": "warp-level behaviour",
    r"__threadfence\w*": "memory fences between concurrent threads",
    r"extern\s+__shared__": "dynamic shared memory (give __shared__ arrays a fixed size)",
    r"cooperative_groups": "cooperative groups",
    r"tex[123]D\w*|texture": "texture memory",
    r"clock(64)?": "timing",
    r"asm": "inline PTX",
}

_KERNEL = re.compile(r"__global__\s+void\s+(\w+)\s*\(")
_DEVICE = re.compile(
    r"__device__\s+(?:(?:inline|__forceinline__|static)\s+)*[\w\s\*&<>]*?(\w+)\s*\("
)
_lock = threading.Lock()
LAUNCHES: collections.Counter = collections.Counter()  # kernel name -> launches this session


class EmulationError(RuntimeError):
    """A kernel does something the CPU emulation of CuPy cannot run, or a launch is invalid."""


def kernel_names(source: str) -> list[str]:
    """The names of the ``__global__`` kernels defined in ``source``."""
    return list(_bodies(source, _KERNEL))


def _cache_dir() -> Path:
    root = os.environ.get("MINICNN_CUPY_EMULATION_CACHE") or os.path.join(
        tempfile.gettempdir(), f"minicnn-cupy-emulation-{os.getuid()}"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _bodies(source: str, pattern: re.Pattern) -> dict[str, str]:
    """Function name -> its body text, for every definition ``pattern`` finds in ``source``."""
    out = {}
    for m in pattern.finditer(source):
        start = source.find("{", m.end())
        semicolon = source.find(";", m.end())
        if start < 0 or 0 <= semicolon < start:  # a declaration, not a definition
            continue
        depth, i = 0, start
        while i < len(source):
            depth += {"{": 1, "}": -1}.get(source[i], 0)
            if depth == 0:
                break
            i += 1
        out[m.group(1)] = source[start : i + 1]
    return out


def _uses_barrier(source: str) -> dict[str, bool]:
    """Kernel name -> whether it reaches ``__syncthreads`` (itself or through a device function)."""
    devices = _bodies(source, _DEVICE)
    barrier = {name for name, body in devices.items() if "__syncthreads" in body}
    changed = True
    while changed:  # device functions calling device functions that wait
        changed = False
        for name, body in devices.items():
            if name not in barrier and any(re.search(rf"\b{b}\s*\(", body) for b in barrier):
                barrier.add(name)
                changed = True
    return {
        name: "__syncthreads" in body or any(re.search(rf"\b{b}\s*\(", body) for b in barrier)
        for name, body in _bodies(source, _KERNEL).items()
    }


def _check_supported(source: str) -> None:
    code = re.sub(r"//[^\n]*|/\*.*?\*/", "", source, flags=re.S)
    for pattern, why in UNSUPPORTED.items():
        found = re.search(rf"(?<!\w)(?:{pattern})(?!\w)", code)
        if found:
            raise EmulationError(
                f"the CPU emulation of CuPy cannot run kernels using {found.group()!r} ({why}); "
                f"write the kernel without it or test it on a GPU"
            )


class _Library:
    """One compiled source: its kernels by name, each with its argument kinds and sizes."""

    def __init__(self, source: str):
        _check_supported(source)
        self.barriers = _uses_barrier(source)
        if not self.barriers:
            raise EmulationError("no `__global__ void name(...)` kernel found in the source")
        exports = "\n".join(f"EMU_EXPORT({n}, {int(b)})" for n, b in self.barriers.items())
        text = f'#include "{RUNTIME}"\n#line 1 "kernel.cu"\n{source}\n{exports}\n'
        digest = hashlib.sha256((text + CXX + " ".join(FLAGS)).encode()).hexdigest()[:24]
        path = _cache_dir() / f"k{digest}.so"
        with _lock:
            if not path.exists():
                self._compile(text, path)
        self.lib = ctypes.PyDLL(str(path))  # PyDLL: launches hold the GIL, one at a time
        self.signatures = {}
        for name in self.barriers:
            kinds = ctypes.create_string_buffer(256)
            sizes = (ctypes.c_int * 256)()
            n = getattr(self.lib, f"__emu_describe_{name}")(kinds, sizes)
            self.signatures[name] = [(kinds.raw[i : i + 1].decode(), sizes[i]) for i in range(n)]

    @staticmethod
    def _compile(text: str, path: Path) -> None:
        src = path.with_suffix(f".{os.getpid()}.cpp")
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        src.write_text(text)
        try:
            done = subprocess.run([CXX, *FLAGS, str(src), "-o", str(tmp)], capture_output=True,
                                  text=True, env={**os.environ, "LC_ALL": "C"})
            if done.returncode:
                errors = [ln for ln in done.stderr.splitlines() if "error" in ln][:8]
                raise EmulationError(
                    "the CPU emulation of CuPy could not compile the kernel (a CUDA feature "
                    "it does not map, or a C++ error):\n" + "\n".join(errors or [done.stderr])
                )
            os.replace(tmp, path)  # atomic: a concurrent session sees all or nothing
        finally:
            src.unlink(missing_ok=True)
            tmp.unlink(missing_ok=True)


_libraries: dict[str, _Library] = {}


def _library(source: str) -> _Library:
    if source not in _libraries:
        _libraries[source] = _Library(source)
    return _libraries[source]


def _dims(value, what: str) -> tuple[int, int, int]:
    dims = (value,) if isinstance(value, int | np.integer) else tuple(value)
    if not 1 <= len(dims) <= 3 or not all(isinstance(d, int | np.integer) for d in dims):
        raise EmulationError(f"{what} must be an int or a tuple of 1-3 ints, got {value!r}")
    dims = tuple(int(d) for d in dims) + (1,) * (3 - len(dims))
    if min(dims) < 1:
        raise EmulationError(f"{what} {value!r} has a zero or negative size: CUDA refuses "
                             "the launch (cudaErrorInvalidConfiguration)")
    return dims


def _check_launch(grid, block) -> tuple[int, ...]:
    g, b = _dims(grid, "grid"), _dims(block, "block")
    if g[0] > 2**31 - 1 or g[1] > 65535 or g[2] > 65535:
        raise EmulationError(f"grid {grid!r} exceeds CUDA's limits (2**31-1, 65535, 65535)")
    if b[0] > 1024 or b[1] > 1024 or b[2] > 64 or b[0] * b[1] * b[2] > 1024:
        raise EmulationError(f"block {block!r} exceeds CUDA's limits (1024 threads; x, y <= "
                             "1024, z <= 64)")
    return g + b


_KIND_NAMES = {"i": "signed integer", "u": "unsigned integer", "f": "floating", "b": "bool"}


class _Arg:
    """One kernel argument as CUDA receives it: a pointer to the value (void** convention)."""

    def __init__(self, kernel: str, index: int, kind: str, size: int, value):
        from tests.cupy_emulation import arrays

        where = f"argument {index} of kernel {kernel!r}"
        self.array = None
        if kind.isupper():  # a pointer: the array's data between guard bands
            if not isinstance(value, arrays.ndarray):
                raise EmulationError(f"{where} is a pointer; it needs a cupy.ndarray, got "
                                     f"{type(value).__name__}")
            if size and (value.dtype.kind != kind.lower() or value.dtype.itemsize != size):
                raise EmulationError(
                    f"{where} points to a {size}-byte {_KIND_NAMES[kind.lower()]} type, got a "
                    f"{value.dtype} array"
                )
            if not value.flags.c_contiguous:
                raise EmulationError(f"{where} is not C-contiguous (strides {value.strides}); "
                                     "the kernel would index it as if it were")
            self.array = value
            n = value.nbytes
            self.buffer = np.full(n + 2 * GUARD, 0xFF, dtype=np.uint8)
            self.buffer[GUARD : GUARD + n] = value.view(np.ndarray).reshape(-1).view(np.uint8)
            self.pointer = ctypes.c_void_p(self.buffer.ctypes.data + GUARD)
            self.address = ctypes.addressof(self.pointer)  # args[i] points to the pointer
        else:
            if isinstance(value, bool):
                scalar = np.bool_(value)
            elif isinstance(value, int):  # CuPy passes a Python int as a 64-bit integer
                scalar = np.int64(value)
            elif isinstance(value, float):
                scalar = np.float64(value)
            elif isinstance(value, np.generic):
                scalar = value
            else:
                raise EmulationError(f"{where} is a scalar; got {type(value).__name__}")
            if scalar.dtype.kind != kind or scalar.dtype.itemsize != size:
                raise EmulationError(
                    f"{where} is a {size}-byte {_KIND_NAMES[kind]} type, got {scalar.dtype} "
                    f"({value!r}); pass a NumPy scalar of the kernel's type"
                )
            self.buffer = np.array(scalar)
            self.address = self.buffer.ctypes.data  # args[i] points to the value
        self.where = where

    def finish(self) -> None:
        """Check the guard bands and copy the data back into the array."""
        if self.array is None:
            return
        n = self.array.nbytes
        if (self.buffer[:GUARD] != 0xFF).any() or (self.buffer[GUARD + n :] != 0xFF).any():
            raise EmulationError(f"the kernel wrote outside {self.where} ({self.array.shape} "
                                 f"{self.array.dtype}): an out-of-bounds index")
        self.array.view(np.ndarray).reshape(-1).view(np.uint8)[...] = self.buffer[GUARD:GUARD + n]


class _Function:
    """A compiled kernel, called as CuPy's: ``kernel(grid, block, args)``."""

    def __init__(self, library: _Library, name: str):
        if name not in library.signatures:
            raise EmulationError(f"no kernel {name!r} in the source; it defines "
                                 f"{sorted(library.signatures)}")
        self.library, self.name = library, name
        self.signature = library.signatures[name]
        self.launch = getattr(library.lib, f"__emu_launch_{name}")

    def __call__(self, grid, block, args, *, shared_mem: int = 0, stream=None,
                 enable_cooperative_groups: bool = False) -> None:
        if shared_mem:
            raise EmulationError("dynamic shared memory (shared_mem > 0) is not emulated")
        dims = _check_launch(grid, block)
        args = tuple(args)
        if len(args) != len(self.signature):
            raise EmulationError(f"kernel {self.name!r} takes {len(self.signature)} arguments, "
                                 f"got {len(args)}")
        packed = [_Arg(self.name, i, kind, size, a)
                  for i, ((kind, size), a) in enumerate(zip(self.signature, args, strict=True))]
        arrays = [(p.array, i) for i, p in enumerate(packed) if p.array is not None]
        for j, (a, i) in enumerate(arrays):
            for b, k in arrays[j + 1 :]:
                if np.shares_memory(a, b):
                    raise EmulationError(f"arguments {i} and {k} of kernel {self.name!r} share "
                                         "memory; the emulation copies each array separately")
        pointers = (ctypes.c_void_p * max(len(packed), 1))(
            *[p.address for p in packed]
        )
        err = ctypes.create_string_buffer(512)
        LAUNCHES[self.name] += 1
        if self.launch((ctypes.c_uint * 6)(*dims), pointers, err):
            raise EmulationError(f"kernel {self.name!r}: {err.value.decode()}")
        for p in packed:
            p.finish()


class RawKernel:
    """``cupy.RawKernel(code, name)``: the ``__global__`` function ``name`` of ``code``."""

    def __init__(self, code: str, name: str, options=(), backend: str = "nvrtc",
                 translate_cucomplex: bool = False, enable_cooperative_groups: bool = False,
                 jitify: bool = False):
        self.code, self.name, self.options = code, name, tuple(options)
        self._function = None

    @property
    def kernel(self) -> _Function:
        if self._function is None:  # compiled on first use, as CuPy does
            self._function = _Function(_library(self.code), self.name)
        return self._function

    def compile(self) -> None:
        self.kernel  # noqa: B018 (compiling is the side effect)

    def __call__(self, grid, block, args, **kwargs) -> None:
        self.kernel(grid, block, args, **kwargs)


class RawModule:
    """``cupy.RawModule(code=...)``: ``get_function(name)`` gives each kernel of ``code``."""

    def __init__(self, code: str | None = None, *, path: str | None = None, options=(),
                 backend: str = "nvrtc", translate_cucomplex: bool = False,
                 enable_cooperative_groups: bool = False, name_expressions=None,
                 jitify: bool = False):
        if code is None:
            raise EmulationError("RawModule(path=...) (a cubin/ptx file) cannot be emulated; "
                                 "pass the CUDA source as code=")
        self.code, self.options = code, tuple(options)

    def get_function(self, name: str) -> _Function:
        return _Function(_library(self.code), name)

    def compile(self) -> None:
        _library(self.code)


class _NotEmulated:
    def __init__(self, *args, **kwargs):
        raise EmulationError(
            f"cupy.{type(self).__name__} is not emulated on the CPU; minicnn's kernels are "
            "RawKernel/RawModule (add it to tests/cupy_emulation if a kernel needs it)"
        )


class ElementwiseKernel(_NotEmulated):
    pass


class ReductionKernel(_NotEmulated):
    pass
