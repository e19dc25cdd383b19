"""Numba's prange kernels, each compiled twice (threaded and serial): the builds, the choice.

numba_cpu.py compiles every prange kernel as a ``ParallelKernel`` and runs the threaded
build only on arrays of ``PARALLEL_MIN_BYTES`` or more. That both builds compute the same
thing is checked by running the kernel tests of tests/backend once per build (the
``numba_builds`` fixture); here: that no prange kernel escapes the scheme, that the two
builds have their own cache files, that the size (and a single thread) decides which build
runs, and the kernels whose own tests live elsewhere (erf for GELU, RoI align and pool,
nearest upsampling), each build against the reference backend.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

from minicnn.backend import numba_cpu, reference

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


@pytest.fixture
def relu_builds(monkeypatch):
    """ReLU's kernel with both builds spied on: ``(kernel, serial, threaded)``."""
    kernel = numba_cpu._relu_kernel
    serial, parallel = _Spy(kernel.serial), _Spy(kernel.threaded)
    monkeypatch.setattr(kernel, "serial", serial)
    monkeypatch.setattr(kernel, "threaded", parallel)
    return kernel, serial, parallel


@pytest.mark.parametrize("size, threaded", [(1 << 16, False), (1 << 18, True)])
def test_the_arrays_size_picks_the_build(monkeypatch, relu_builds, size, threaded):
    _, serial, parallel = relu_builds
    # relu's kernel reads x and writes out: 8 bytes per float32 element in all
    monkeypatch.setattr(numba_cpu, "PARALLEL_MIN_BYTES", 8 << 17)
    x = np.random.default_rng(0).standard_normal(size).astype(np.float32)
    np.testing.assert_array_equal(numba_cpu.relu(x), np.maximum(x, 0))
    assert (parallel.calls, serial.calls) == ((1, 0) if threaded else (0, 1))


@pytest.mark.parametrize("work_per_byte, threaded", [(1, False), (3.9, False), (4, True)])
def test_work_per_byte_scales_the_size(monkeypatch, relu_builds, work_per_byte, threaded):
    """A call that does more work per byte (the dense convolution kernels: C*kh*kw/18) runs
    threaded from PARALLEL_MIN_BYTES / work_per_byte."""
    kernel, serial, parallel = relu_builds
    x = np.random.default_rng(0).standard_normal(1 << 16).astype(np.float32)
    out = np.empty_like(x)
    monkeypatch.setattr(numba_cpu, "PARALLEL_MIN_BYTES", 4 * (x.nbytes + out.nbytes))
    kernel(x, out, work_per_byte=work_per_byte)
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    assert (parallel.calls, serial.calls) == ((1, 0) if threaded else (0, 1))


def test_one_thread_runs_the_serial_build(monkeypatch, relu_builds):
    """With one thread the threaded build would only add the workers' start-up (and, on the
    workqueue layer, run on one pinned core: numba_threads.py): the serial build runs,
    whatever the size."""
    _, serial, parallel = relu_builds
    monkeypatch.setattr(numba_cpu, "PARALLEL_MIN_BYTES", 0)
    x = np.random.default_rng(0).standard_normal(1 << 12).astype(np.float32)
    threads = numba_cpu.numba.get_num_threads()
    numba_cpu.numba.set_num_threads(1)
    try:
        np.testing.assert_array_equal(numba_cpu.relu(x), np.maximum(x, 0))
    finally:
        numba_cpu.numba.set_num_threads(threads)
    assert (parallel.calls, serial.calls) == (0, 1)
    np.testing.assert_array_equal(numba_cpu.relu(x), np.maximum(x, 0))
    assert (parallel.calls, serial.calls) == ((1, 1) if threads > 1 else (0, 2))


@pytest.mark.parametrize("build", ["serial", "threaded"])
def test_erf_builds_match_libm(build):
    x = np.random.default_rng(1).standard_normal(5000) * 3
    out = np.empty_like(x)
    getattr(numba_cpu._erf_flat, build)(x, out)
    np.testing.assert_allclose(out, [math.erf(v) for v in x], rtol=1e-15, atol=1e-16)


def _rois(dtype):
    # (batch index, x1, y1, x2, y2) in input pixels, some hanging off the border
    return np.array([[0, 1.0, 2.0, 9.5, 7.0], [1, -2.0, 0.5, 4.0, 11.0],
                     [1, 3.3, 3.3, 3.9, 4.1]], dtype=dtype)


def _others(dtype):
    """(name, numba call, reference call) for the kernels without a module under
    tests/backend: forward and backward of roi_align, roi_pool and nearest upsampling."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 12, 10)).astype(dtype)
    g_roi = rng.standard_normal((3, 3, 2, 3)).astype(dtype)
    src_h, src_w = np.array([0, 0, 1, 3, 3, 5]), np.array([0, 2, 2, 4, 7, 9, 9])
    g_up = rng.standard_normal((2, 3, 6, 7)).astype(dtype)
    align = (x, _rois(dtype), (2, 3), 0.5, 2, True)
    align_b = (g_roi, _rois(dtype), x.shape, 0.5, 2, True)
    _, argmax = reference.roi_pool(x, _rois(dtype), (2, 3), 1.0)
    return [
        ("roi_align", lambda m: m.roi_align(*align)),
        ("roi_align_backward", lambda m: m.roi_align_backward(*align_b)),
        ("roi_pool", lambda m: m.roi_pool(x, _rois(dtype), (2, 3), 1.0)),
        ("roi_pool_backward", lambda m: m.roi_pool_backward(g_roi, argmax, _rois(dtype),
                                                            x.shape)),
        ("upsample_nearest", lambda m: m.upsample_nearest(x, src_h, src_w[:6])),
        ("upsample_nearest_backward",
         lambda m: m.upsample_nearest_backward(g_up, (12, 10), src_h, src_w)),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("build", ["serial", "threaded"])
@pytest.mark.parametrize("case", range(6))
def test_roi_and_upsampling_builds_match_the_reference(monkeypatch, case, build, dtype):
    name, call = _others(dtype)[case]
    monkeypatch.setattr(numba_cpu, "PARALLEL_MIN_BYTES", 0 if build == "threaded" else 1 << 62)
    ours, theirs = call(numba_cpu), call(reference)
    for a, b in zip(*(r if isinstance(r, tuple) else (r,) for r in (ours, theirs)),
                    strict=True):
        rtol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol, err_msg=name)
