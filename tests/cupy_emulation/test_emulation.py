"""The CPU emulation of CuPy can fail: a kernel with a bug fails its parity test.

Each check here would pass silently if the emulation only pretended to run the CUDA
source: an off-by-one window in a copy of the max-pool kernel must give wrong values, an
index past the array must be caught, a barrier skipped by part of a block must raise,
and arguments of the wrong C type must be refused.
"""

from __future__ import annotations

import numpy as np
import pytest

from minicnn.backend import get_backend, reference
from tests.conftest import EMULATED_GPU
from tests.cupy_emulation import EmulationError, arrays
from tests.cupy_emulation.kernels import RawKernel, RawModule

pytestmark = pytest.mark.skipif(not EMULATED_GPU, reason="the CuPy emulation is not installed "
                                "(a real GPU serves the cupy backend)")

GEOMETRY = dict(kernel=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1), out_hw=(4, 4))


def _device(a: np.ndarray):
    return arrays.asarray(a)


def _max_pool_with(monkeypatch, source: str):
    """The cupy backend's max_pool2d, running ``source`` in place of its kernel.

    The kernel cache is keyed by the source, so the real kernel is untouched afterwards.
    """
    from minicnn.backend import cupy_gpu

    monkeypatch.setattr(cupy_gpu, "_MAX_POOL_SRC", source)
    return get_backend("cupy").max_pool2d


def _parity(max_pool2d) -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 8)).astype(np.float32)
    out, idx = max_pool2d(_device(x), **GEOMETRY)
    ref_out, ref_idx = reference.max_pool2d(x, **GEOMETRY)
    np.testing.assert_array_equal(arrays.asnumpy(out), ref_out)
    np.testing.assert_array_equal(arrays.asnumpy(idx), ref_idx)


def test_the_real_max_pool_kernel_passes_parity(monkeypatch):
    from minicnn.backend import cupy_gpu

    _parity(_max_pool_with(monkeypatch, cupy_gpu._MAX_POOL_SRC))


@pytest.mark.parametrize("bug, wrong", [
    # the window stops one row short
    ("int h1 = min(h0 + (kh - 1) * dh + 1, h)", "int h1 = min(h0 + (kh - 1) * dh, h)"),
    # the column index of the window is off by one (reads the next pixel, or past the plane)
    ("T v = plane[ih * w + iw];", "T v = plane[ih * w + iw + 1];"),
    # the output position of a thread is computed with the wrong width
    ("int xo = t % w_out;", "int xo = t % (w_out - 1);"),
])
def test_an_indexing_bug_in_the_max_pool_kernel_fails_parity(monkeypatch, bug, wrong):
    from minicnn.backend import cupy_gpu

    assert bug in cupy_gpu._MAX_POOL_SRC
    max_pool2d = _max_pool_with(monkeypatch, cupy_gpu._MAX_POOL_SRC.replace(bug, wrong))
    with pytest.raises(AssertionError):
        _parity(max_pool2d)
    monkeypatch.undo()
    _parity(get_backend("cupy").max_pool2d)  # the real kernel again, not the cached mutant


COPY = r"""
extern "C" __global__ void copy(const float* x, float* y, long long n, int shift) {
  long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (t < n) y[t + shift] = x[t];
}
"""


def test_a_write_past_the_end_of_an_array_raises():
    x = _device(np.arange(10, dtype=np.float32))
    y = _device(np.zeros(10, dtype=np.float32))
    kernel = RawKernel(COPY, "copy")
    kernel((1,), (32,), (x, y, np.int64(10), np.int32(0)))
    np.testing.assert_array_equal(arrays.asnumpy(y), np.arange(10))
    for shift in (1, -1):
        with pytest.raises(EmulationError, match="wrote outside argument 1 of kernel 'copy'"):
            kernel((1,), (32,), (x, y, np.int64(10), np.int32(shift)))


def test_a_read_past_the_end_of_an_array_gives_nan():
    src = COPY.replace("y[t + shift] = x[t]", "y[t] = x[t + shift]")
    x = _device(np.arange(10, dtype=np.float32))
    y = _device(np.zeros(10, dtype=np.float32))
    RawKernel(src, "copy")((1,), (32,), (x, y, np.int64(10), np.int32(1)))
    got = arrays.asnumpy(y)
    np.testing.assert_array_equal(got[:9], np.arange(1, 10))
    assert np.isnan(got[9])


def test_arguments_of_the_wrong_c_type_are_refused():
    kernel = RawKernel(COPY, "copy")
    x32 = _device(np.zeros(10, dtype=np.float32))
    x64 = _device(np.zeros(10, dtype=np.float64))
    with pytest.raises(EmulationError, match="argument 0 .* 4-byte floating type, got a float64"):
        kernel((1,), (32,), (x64, x32, np.int64(10), np.int32(0)))
    with pytest.raises(EmulationError, match="argument 3 .* 4-byte signed integer type, got int64"):
        kernel((1,), (32,), (x32, _device(np.zeros(10, np.float32)), np.int64(10), 0))
    with pytest.raises(EmulationError, match="argument 0 .* needs a cupy.ndarray, got ndarray"):
        kernel((1,), (32,), (np.zeros(10, np.float32), x32, np.int64(10), np.int32(0)))
    strided = _device(np.zeros(20, dtype=np.float32))[::2]
    with pytest.raises(EmulationError, match="argument 0 .* not C-contiguous"):
        kernel((1,), (32,), (strided, x32, np.int64(10), np.int32(0)))
    with pytest.raises(EmulationError, match="takes 4 arguments, got 3"):
        kernel((1,), (32,), (x32, x32, np.int64(10)))


@pytest.mark.parametrize("grid, block, message", [
    ((0,), (32,), "zero or negative size"),
    ((1,), (2048,), "exceeds CUDA's limits"),
    ((1, 70000), (32,), "exceeds CUDA's limits"),
])
def test_invalid_launches_are_refused(grid, block, message):
    x = _device(np.zeros(4, dtype=np.float32))
    y = _device(np.zeros(4, dtype=np.float32))
    with pytest.raises(EmulationError, match=message):
        RawKernel(COPY, "copy")(grid, block, (x, y, np.int64(4), np.int32(0)))


BLOCK_SUM = r"""
extern "C" __global__ void block_sum(const double* x, double* out, int n) {
  // one block: each thread sums a strided slice, then a shared-memory tree reduction
  __shared__ double part[128];
  double acc = 0.0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) acc += x[i];
  part[threadIdx.x] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = part[0];
}
"""


def test_shared_memory_and_barriers_run_as_on_a_gpu():
    values = np.random.default_rng(1).standard_normal(1000)
    out = _device(np.zeros(3))
    RawModule(code=BLOCK_SUM).get_function("block_sum")(
        (3,), (128,), (_device(values), out, np.int32(1000)))
    np.testing.assert_allclose(arrays.asnumpy(out), [values.sum()] * 3, rtol=1e-12)


def test_a_barrier_skipped_by_part_of_the_block_raises():
    src = BLOCK_SUM.replace("double acc = 0.0;",
                            "if (threadIdx.x == 5) return;\n  double acc = 0.0;")
    out = _device(np.zeros(1))
    with pytest.raises(EmulationError, match="thread 5 exited while thread 0 waits at the "
                                             r"__syncthreads\(\) on line"):
        RawKernel(src, "block_sum")((1,), (128,), (_device(np.ones(10)), out, np.int32(10)))


def test_unsupported_cuda_features_are_named():
    shuffle = COPY.replace("y[t + shift] = x[t]", "y[t] = __shfl_down_sync(0xffffffff, x[t], 1)")
    x = _device(np.zeros(4, dtype=np.float32))
    with pytest.raises(EmulationError, match="'__shfl_down_sync' .*lock-step warps"):
        RawKernel(shuffle, "copy")((1,), (4,), (x, x, np.int64(4), np.int32(0)))
    unknown = COPY.replace("x[t]", "__fancy_intrinsic(x[t])")
    with pytest.raises(EmulationError, match="(?s)could not compile .*__fancy_intrinsic"):
        RawKernel(unknown, "copy")((1,), (4,), (x, _device(x.get()), np.int64(4), np.int32(0)))


def test_host_and_device_arrays_do_not_mix():
    d = _device(np.ones(3))
    with pytest.raises(TypeError, match="numpy.add: unsupported type numpy.ndarray"):
        d + np.ones(3)
    with pytest.raises(TypeError, match="numpy.concatenate: unsupported type"):
        np.concatenate([d, np.ones(3)])
    assert type(d + 1.0) is arrays.ndarray and type(d.sum()) is arrays.ndarray
    assert type(arrays.asnumpy(d)) is np.ndarray
