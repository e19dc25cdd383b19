"""Pooling and normalization kernels: every fast backend (Numba, CuPy) against the reference.

max/avg pooling forward and backward, batch-norm statistics, the batch-norm element-wise
passes and backward reduction, and LRN forward and backward; on geometries that exercise
the edges (ceil_mode windows hanging off the padding, dilation, strides that skip pixels),
float32 and float64, contiguous and strided (non-contiguous) inputs. Indices must be
identical; values agree to the suite's ``tol(dtype)`` (sums run in different orders).
"""

from __future__ import annotations

import numpy as np
import pytest

from minicnn.backend import get_backend, reference, to_device
from minicnn.nn.functional.pooling import pool_output_size
from tests.conftest import AVAILABLE_BACKENDS
from tests.helpers import assert_close as _assert_close

# every test twice: Numba's prange kernels serial and threaded (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("numba_builds")

FAST_BACKENDS = [b for b in AVAILABLE_BACKENDS if b != "numpy"]
DTYPES = [np.float32, np.float64]

# x shape, kernel, stride, padding, dilation, ceil_mode
GEOMETRIES = {
    "2x2": ((2, 3, 6, 8), (2, 2), (2, 2), (0, 0), (1, 1), False),
    "3x3-s2-p1-ceil": ((2, 2, 7, 8), (3, 3), (2, 2), (1, 1), (1, 1), True),
    "rect-skips-pixels": ((1, 3, 9, 8), (2, 3), (3, 2), (1, 0), (1, 1), True),
    "dilated": ((2, 2, 9, 7), (3, 2), (2, 1), (1, 1), (2, 3), True),
}


def _data(shape, dtype, seed=0, strided=False):
    rng = np.random.default_rng(seed)
    if strided:  # the same kind of values behind a non-contiguous view
        return rng.standard_normal(shape[::-1]).astype(dtype).transpose()
    return rng.standard_normal(shape).astype(dtype)


def assert_close(actual, expected, dtype, **kw):
    """The suite's comparison, for raw kernel outputs (NumPy or CuPy arrays)."""
    _assert_close(to_device(actual, "cpu"), expected, dtype, **kw)


def _kernel(backend_name, name):
    return getattr(get_backend(backend_name), name)


def _on(backend_name, a):
    return to_device(a, "cuda" if backend_name == "cupy" else "cpu")


def _geometry(name):
    shape, kernel, stride, padding, dilation, ceil_mode = GEOMETRIES[name]
    out_hw = tuple(pool_output_size(n, k, s, p, d, ceil_mode)
                   for n, k, s, p, d in zip(shape[2:], kernel, stride, padding, dilation,
                                            strict=True))
    return shape, kernel, stride, padding, dilation, out_hw


@pytest.mark.parametrize("strided", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
@pytest.mark.parametrize("backend_name", FAST_BACKENDS)
def test_max_pool2d_kernels(backend_name, geometry, dtype, strided):
    shape, kernel, stride, padding, dilation, out_hw = _geometry(geometry)
    x = _data(shape, dtype, strided=strided)
    out, idx = _kernel(backend_name, "max_pool2d")(_on(backend_name, x), kernel, stride, padding,
                                                   dilation, out_hw)
    ref_out, ref_idx = reference.max_pool2d(x, kernel, stride, padding, dilation, out_hw)
    assert out.dtype == dtype and idx.dtype == np.int64
    assert_close(out, ref_out, dtype)
    np.testing.assert_array_equal(to_device(idx, "cpu"), ref_idx)
    g = _data(ref_out.shape, dtype, seed=1, strided=strided)
    dx = _kernel(backend_name, "max_pool2d_backward")(_on(backend_name, g), idx, shape[2:])
    assert_close(dx, reference.max_pool2d_backward(g, ref_idx, shape[2:]), dtype)


@pytest.mark.parametrize("strided", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
@pytest.mark.parametrize("backend_name", FAST_BACKENDS)
def test_avg_pool2d_kernels(backend_name, geometry, dtype, strided):
    shape, kernel, stride, padding, _, _ = _geometry(geometry)
    out_hw = tuple(pool_output_size(n, k, s, p, 1, True)
                   for n, k, s, p in zip(shape[2:], kernel, stride, padding, strict=True))
    x = _data(shape, dtype, strided=strided)
    g = _data(shape[:2] + out_hw, dtype, seed=1, strided=strided)
    for include_pad, divisor in [(True, None), (False, None), (True, 5)]:
        args = (kernel, stride, padding)
        out = _kernel(backend_name, "avg_pool2d")(_on(backend_name, x), *args, out_hw,
                                                  include_pad, divisor)
        assert_close(out, reference.avg_pool2d(x, *args, out_hw, include_pad, divisor), dtype,
                     msg=f"forward {include_pad} {divisor}")
        dx = _kernel(backend_name, "avg_pool2d_backward")(_on(backend_name, g), shape[2:], *args,
                                                          include_pad, divisor)
        assert_close(dx, reference.avg_pool2d_backward(g, shape[2:], *args, include_pad, divisor),
                     dtype, msg=f"backward {include_pad} {divisor}")


@pytest.mark.parametrize("strided", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 3, 10), (1, 5, 7), (3, 2, 1), (1, 12, 2)])
@pytest.mark.parametrize("backend_name", FAST_BACKENDS)
def test_batch_norm_kernels(backend_name, shape, dtype, strided):
    """Statistics (one pass, shifted) and the backward reduction, on data far from 0."""
    x = _data(shape, dtype, strided=strided) * 3 + 50
    g = _data(shape, dtype, seed=1, strided=strided)
    on = lambda a: _on(backend_name, a)  # noqa: E731
    mean, var = _kernel(backend_name, "batch_norm_stats")(on(x))
    ref_mean, ref_var = reference.batch_norm_stats(x.astype(np.float64))
    assert mean.dtype == var.dtype == dtype
    rtol = 1e-5 if dtype == np.float32 else 1e-10  # float32 rounding of the sum of ~50s
    assert_close(mean, ref_mean, dtype, rtol=rtol)
    assert_close(var, ref_var, dtype, rtol=rtol, atol=1e-10)
    ref_mean, ref_var = ref_mean.astype(dtype), ref_var.astype(dtype)
    invstd = (1 / np.sqrt(ref_var + 1e-5)).astype(dtype)
    w, b = _data(shape[1:2], dtype, seed=2), _data(shape[1:2], dtype, seed=3)
    args = (ref_mean, invstd)
    assert_close(_kernel(backend_name, "batch_norm_elemt")(on(x), *map(on, args), on(w), on(b)),
                 reference.batch_norm_elemt(x, *args, w, b), dtype, atol=1e-4)
    sums = _kernel(backend_name, "batch_norm_backward_reduce")(on(g), on(x), *map(on, args))
    ref_sums = reference.batch_norm_backward_reduce(g, x, *args)
    for mine, ref in zip(sums, ref_sums, strict=True):
        assert_close(mine, ref, dtype, atol=1e-4 if dtype == np.float32 else 1e-10)
    if shape[0] * shape[2] > 1:
        dx = _kernel(backend_name, "batch_norm_backward_elemt")(
            on(g), on(x), *map(on, args), on(w), *map(on, ref_sums))
        assert_close(dx, reference.batch_norm_backward_elemt(g, x, *args, w, *ref_sums), dtype,
                     atol=1e-4 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("strided", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [1, 2, 5, 8])
@pytest.mark.parametrize("backend_name", FAST_BACKENDS)
def test_local_response_norm_kernels(backend_name, size, dtype, strided):
    for shape in [(2, 6, 3, 4), (2, 5, 7)]:
        x = _data(shape, dtype, strided=strided) * 3
        g = _data(shape, dtype, seed=1, strided=strided)
        params = (size, 0.1, 0.75, 2.0)
        out, scale = _kernel(backend_name, "local_response_norm")(_on(backend_name, x), *params)
        ref_out, ref_scale = reference.local_response_norm(x, *params)
        assert_close(out, ref_out, dtype)
        assert_close(scale, ref_scale, dtype)
        dx = _kernel(backend_name, "local_response_norm_backward")(
            *(_on(backend_name, a) for a in (g, x, ref_out, ref_scale)), *params[:3])
        assert_close(dx, reference.local_response_norm_backward(g, x, ref_out, ref_scale,
                                                                *params[:3]), dtype)


@pytest.mark.parametrize("backend_name", FAST_BACKENDS)
def test_kernels_are_registered(backend_name):
    """The fast backends override the hot pooling and normalization kernels."""
    overrides = set(get_backend(backend_name).overrides())
    hot = {"max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
           "batch_norm_stats", "batch_norm_backward_reduce", "local_response_norm",
           "local_response_norm_backward"}
    assert hot <= overrides, hot - overrides
