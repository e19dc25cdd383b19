"""Numba's prange kernels, each compiled twice (threaded and serial): the builds, the choice.

numba_cpu.py compiles every prange kernel as a ``ParallelKernel`` and runs the threaded
build only on arrays of ``PARALLEL_MIN_BYTES`` or more. That both builds compute the same
thing is checked by running the kernel tests once per build (the ``numba_builds`` fixture,
used by tests/backend, tests/ops/test_roi.py and tests/nn/test_upsampling.py); here: that
no prange kernel escapes the scheme, that the two builds have their own cache files, that
the size decides which build runs, and erf (used by GELU, not in those modules) per build.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

from minicnn.backend import numba_cpu

KERNELS = {name: k for name, k in vars(numba_cpu).items()
           if isinstance(k, numba_cpu.ParallelKernel)}


def test_every_prange_kernel_is_compiled_both_ways():
    source = inspect.getsource(numba_cpu)
    # the one `parallel=True` is ParallelKernel's own threaded build
    assert source.count("parallel=True") == 1
    assert source.count("numba.prange") == len(KERNELS) > 20
    for name, kernel in KERNELS.items():
        assert kernel.threaded.targetoptions["parallel"] is True, name
        assert not kernel.serial.targetoptions.get("parallel", False), name
        # the same loop, under two names: Numba names its cache files after the function
        assert kernel.serial.py_func.__code__ is kernel.threaded.py_func.__code__
        assert kernel.serial.py_func.__qualname__ == name + "_serial"
        # options such as fastmath go to both builds
        options = {k: v for k, v in kernel.threaded.targetoptions.items() if k != "parallel"}
        assert {k: v for k, v in kernel.serial.targetoptions.items() if k != "parallel"} \
            == options, name


class _Spy:
    def __init__(self, build):
        self.build, self.calls = build, 0

    def __call__(self, *args):
        self.calls += 1
        return self.build(*args)


@pytest.mark.parametrize("size, threaded", [(1 << 16, False), (1 << 18, True)])
def test_the_arrays_size_picks_the_build(monkeypatch, size, threaded):
    kernel = numba_cpu._relu_kernel
    serial, parallel = _Spy(kernel.serial), _Spy(kernel.threaded)
    monkeypatch.setattr(kernel, "serial", serial)
    monkeypatch.setattr(kernel, "threaded", parallel)
    # relu's kernel reads x and writes out: 8 bytes per float32 element in all
    monkeypatch.setattr(numba_cpu, "PARALLEL_MIN_BYTES", 8 << 17)
    x = np.random.default_rng(0).standard_normal(size).astype(np.float32)
    np.testing.assert_array_equal(numba_cpu.relu(x), np.maximum(x, 0))
    assert (parallel.calls, serial.calls) == ((1, 0) if threaded else (0, 1))


@pytest.mark.parametrize("build", ["serial", "threaded"])
def test_erf_builds_match_libm(build):
    x = np.random.default_rng(1).standard_normal(5000) * 3
    out = np.empty_like(x)
    getattr(numba_cpu._erf_flat, build)(x, out)
    np.testing.assert_allclose(out, [math.erf(v) for v in x], rtol=1e-15, atol=1e-16)
