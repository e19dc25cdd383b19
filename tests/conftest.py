"""Shared fixtures: the backends to run on, slow/GPU markers, PyTorch comparison helpers.

* ``backend`` fixture: every backend ("numpy", "numba", "cupy"). A test that takes it runs
  once per backend, inside ``use_backend`` for CPU ones; for "cupy" it gets the device
  "cuda" through ``device_of(backend)``. Without CuPy and a GPU, "cupy" runs on the CPU
  emulation of CuPy (tests/cupy_emulation: the CUDA kernels compiled for the CPU).
  ``MINICNN_CUPY_EMULATION=0`` leaves the emulation out, ``=1`` uses it even beside a GPU.
* ``@pytest.mark.slow``: skipped unless ``--runslow`` (CI runs a sample: ``--slow-sample``).
* ``@pytest.mark.gpu``: tests of tensors on "cuda" (``pytest -m gpu`` on a GPU machine:
  benchmarks/gpu_check.sh). They run on the emulation too; skipped only without either.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import sys

import numpy as np
import pytest

import minicnn
from minicnn.backend import get_backend
from tests import cupy_emulation

os.environ.setdefault("MPLBACKEND", "Agg")


def _real_gpu() -> bool:
    """True when a real CuPy sees a CUDA device."""
    try:
        import cupy
    except ImportError:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # CuPy without a driver or a device
        return False


def _available_backends() -> tuple[list[str], bool]:
    """The backends the ``backend`` fixture runs, and whether a real GPU serves "cupy"."""
    names = ["numpy"]
    with contextlib.suppress(RuntimeError):
        get_backend("numba")
        names.append("numba")
    choice = os.environ.get("MINICNN_CUPY_EMULATION", "")
    real = choice != "1" and _real_gpu()
    if not real and choice != "0":
        missing = cupy_emulation.compiler_missing()
        if missing:
            print(f"conftest: the cupy backend is not tested: {missing}", file=sys.stderr)
        else:
            cupy_emulation.install()
    with contextlib.suppress(RuntimeError):
        get_backend("cupy")
        names.append("cupy")
    return names, real


AVAILABLE_BACKENDS, GPU = _available_backends()
# "cupy" runs on the CPU emulation of CuPy (GPU is False then).
EMULATED_GPU = cupy_emulation.installed()


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="run every test marked slow")
    parser.addoption(
        "--slow-sample",
        type=int,
        default=4,
        help="run this many tests marked slow, picked by a fixed seed (default 4: the CI sample)",
    )


def pytest_collection_modifyitems(config, items):
    if "cupy" not in AVAILABLE_BACKENDS:
        skip_gpu = pytest.mark.skip(reason='needs CuPy and a CUDA GPU (pip install "minicnn[gpu]")')
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip_gpu)
    if config.getoption("--runslow"):
        return
    slow = [item for item in items if "slow" in item.keywords]
    keep = set()
    n = config.getoption("--slow-sample")
    if n:
        keep = {item.nodeid for item in random.Random(0).sample(slow, min(n, len(slow)))}
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in slow:
        if item.nodeid not in keep:
            item.add_marker(skip_slow)


def pytest_terminal_summary(terminalreporter):
    """Which of numba_cpu.py's prange kernels ran in each build (threaded, serial), and
    under the CuPy emulation which of cupy_gpu.py's CUDA kernels ran, and how often."""
    numba_module = sys.modules.get("minicnn.backend.numba_cpu")
    if numba_module is not None and not terminalreporter.config.option.collectonly:
        kernels = {name: k for name, k in vars(numba_module).items()
                   if isinstance(k, numba_module.ParallelKernel)}
        idle = sorted(name for name, k in kernels.items() if not k.threaded.signatures)
        serial = sum(bool(k.serial.signatures) for k in kernels.values())
        if len(idle) < len(kernels):  # some ran threaded: the kernel tests were in the run
            terminalreporter.write_line(
                f"Numba: {len(kernels) - len(idle)} of the {len(kernels)} prange kernels of "
                f"numba_cpu.py ran threaded, {serial} serially"
                + (f"; never threaded: {', '.join(idle)}" if idle else ""))
    backend_module = sys.modules.get("minicnn.backend.cupy_gpu")
    if not EMULATED_GPU or backend_module is None or terminalreporter.config.option.collectonly:
        return
    from tests.cupy_emulation import kernels

    defined = sorted({name for value in vars(backend_module).values()
                      if isinstance(value, str) and "__global__" in value
                      for name in kernels.kernel_names(value)})
    idle = [name for name in defined if not kernels.LAUNCHES[name]]
    terminalreporter.write_line(
        f"CuPy emulation: {len(defined) - len(idle)} of the {len(defined)} CUDA kernels of "
        f"cupy_gpu.py ran on the CPU ({sum(kernels.LAUNCHES.values())} launches)"
        + (f"; never launched: {', '.join(idle)}" if idle else "")
    )


@pytest.fixture(params=AVAILABLE_BACKENDS)
def backend(request):
    """The name of a backend; CPU backends are active inside the test."""
    name = request.param
    if name == "cupy":
        yield name
        return
    with minicnn.use_backend(name):
        yield name


@pytest.fixture(params=["serial", "threaded"])
def numba_builds(request, monkeypatch):
    """The test runs twice, once per build of Numba's prange kernels: "serial" (what arrays
    under ``numba_cpu.PARALLEL_MIN_BYTES`` run, so most of the suite) and "threaded" (what
    big arrays run). Modules of kernel tests use it (``pytest.mark.usefixtures``)."""
    from minicnn.backend import numba_cpu

    threaded = request.param == "threaded"
    monkeypatch.setattr(numba_cpu, "PARALLEL_MIN_BYTES", 0 if threaded else 1 << 62)
    return request.param


@pytest.fixture
def run2(base_run, tmp_path):
    """A copy of the module's ``base_run`` (a run folder its tests share, trained once per
    module) that a test may change: resume, predict into it, break its files."""
    shutil.copytree(base_run, tmp_path / "run2")
    return tmp_path / "run2"


@pytest.fixture
def without_cupy(monkeypatch):
    """Inside the test, CuPy (real or emulated) is as if not installed."""
    from minicnn import backend

    monkeypatch.setitem(sys.modules, "cupy", None)  # None: `import cupy` raises ImportError
    for name in ("cupyx", "minicnn.backend.cupy_gpu"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.delitem(backend._registry, "cupy", raising=False)


def device_of(backend_name: str) -> str:
    """The device tensors must live on to use ``backend_name``."""
    return "cuda" if backend_name == "cupy" else "cpu"


@pytest.fixture(autouse=True)
def _seed():
    minicnn.manual_seed(0)
    np.random.seed(0)
    yield
