"""Convolution kernels: every backend against the reference (the oracle) and PyTorch.

im2col, col2im, the three depthwise and the three grouped kernels, on geometries that
exercise every edge (asymmetric padding, strides and dilations that skip pixels, an
explicit ``out_size`` smaller or larger than the natural one, as transposed convolutions
use), float32 and float64, contiguous and strided inputs. The reference itself is checked
against PyTorch (``F.unfold`` is im2col) and against the adjoint identity
<im2col(x), c> = <x, col2im(c)>.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from minicnn.backend import get_backend, reference, to_device
from tests.conftest import AVAILABLE_BACKENDS
from tests.helpers import assert_close

# every test twice: Numba's prange kernels serial and threaded (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("numba_builds")

FAST_BACKENDS = [b for b in AVAILABLE_BACKENDS if b != "numpy"]

# (x shape, kernel, stride, ((top, bottom), (left, right)), dilation, out_size)
GEOMETRIES = {
    "3x3-pad1": ((2, 3, 6, 7), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), None),
    "rect-asym": ((2, 2, 7, 9), (2, 3), (2, 1), ((0, 1), (2, 0)), (1, 2), None),
    "stride-skips-pixels": ((1, 3, 9, 8), (2, 2), (3, 3), ((0, 0), (1, 0)), (1, 1), None),
    "dilated-big-pad": ((2, 2, 4, 5), (3, 2), (1, 2), ((3, 2), (2, 3)), (2, 3), None),
    "1x1": ((2, 4, 5, 5), (1, 1), (2, 2), ((0, 0), (0, 0)), (1, 1), None),
    "out-size-smaller": ((2, 2, 8, 8), (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), (3, 2)),
    "out-size-larger": ((1, 2, 5, 6), (3, 3), (1, 1), ((0, 0), (0, 0)), (2, 2), (2, 3)),
}


def _data(shape, dtype, seed=0, strided=False):
    rng = np.random.default_rng(seed)
    if strided:  # the same values behind a non-contiguous view
        a = rng.standard_normal(shape[:2] + shape[:1:-1]).astype(dtype)
        return a.transpose(0, 1, 3, 2)
    return rng.standard_normal(shape).astype(dtype)


def _kernel(backend_name, name):
    return getattr(get_backend(backend_name), name)


def _on(backend_name, a):
    return to_device(a, "cuda" if backend_name == "cupy" else "cpu")


def _cols_shape(x_shape, kernel, stride, pads, dilation, out_size):
    h_out, w_out = reference._conv_out_hw(x_shape, kernel, stride, pads, dilation, out_size)
    return (x_shape[1] * kernel[0] * kernel[1], x_shape[0] * h_out * w_out), (h_out, w_out)


# ---------------------------------------------------------------- the reference vs PyTorch


@pytest.mark.parametrize("geometry", ["3x3-pad1", "stride-skips-pixels", "dilated-big-pad",
                                      "1x1"])
def test_reference_im2col_is_torch_unfold(geometry):
    x_shape, kernel, stride, pads, dilation, _ = GEOMETRIES[geometry]
    x = _data(x_shape, np.float64)
    (pt, pb), (pl, pr) = pads
    xt = TF.pad(torch.tensor(x), (pl, pr, pt, pb))
    unfolded = TF.unfold(xt, kernel, dilation=dilation, stride=stride)  # (N, C*kh*kw, L)
    expected = unfolded.permute(1, 0, 2).reshape(unfolded.shape[1], -1)
    assert_close(reference.im2col(x, kernel, stride, pads, dilation), expected, np.float64)


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
def test_reference_col2im_is_the_adjoint_of_im2col(geometry):
    x_shape, kernel, stride, pads, dilation, out_size = GEOMETRIES[geometry]
    x = _data(x_shape, np.float64)
    cols_shape, _ = _cols_shape(x_shape, kernel, stride, pads, dilation, out_size)
    c = _data(cols_shape, np.float64, seed=1)
    lhs = np.sum(reference.im2col(x, kernel, stride, pads, dilation, out_size) * c)
    rhs = np.sum(x * reference.col2im(c, x_shape, kernel, stride, pads, dilation, out_size))
    assert lhs == pytest.approx(rhs, rel=1e-12)


def test_reference_depthwise_is_torch_grouped_conv():
    x = _data((2, 3, 7, 6), np.float64)
    w = _data((6, 1, 3, 2), np.float64, seed=1)
    pads, stride, dilation = ((2, 1), (1, 0)), (1, 2), (2, 1)
    xt = TF.pad(torch.tensor(x), (1, 0, 2, 1))
    expected = TF.conv2d(xt, torch.tensor(w), stride=stride, dilation=dilation, groups=3)
    assert_close(reference.depthwise_conv2d(x, w, stride, pads, dilation), expected, np.float64)


# ---------------------------------------------------------------- fast backends vs reference

needs_fast = pytest.mark.skipif(not FAST_BACKENDS, reason="only the numpy backend is available")


@needs_fast
@pytest.mark.parametrize("strided", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
@pytest.mark.parametrize("backend_name", FAST_BACKENDS)
def test_im2col_col2im_match_reference(backend_name, geometry, dtype, strided):
    x_shape, kernel, stride, pads, dilation, out_size = GEOMETRIES[geometry]
    x = _data(x_shape, dtype, strided=strided)
    args = (kernel, stride, pads, dilation)
    cols = _kernel(backend_name, "im2col")(_on(backend_name, x), *args, out_size=out_size)
    assert cols.dtype == dtype
    np.testing.assert_array_equal(to_device(cols, "cpu"),
                                  reference.im2col(x, *args, out_size=out_size))
    cols_shape, _ = _cols_shape(x_shape, kernel, stride, pads, dilation, out_size)
    c = _data(cols_shape, dtype, seed=1)
    if strided:  # a transposed view of a (cols^T) array
        c = np.ascontiguousarray(c.T).T
    dx = _kernel(backend_name, "col2im")(_on(backend_name, c), x_shape, *args, out_size=out_size)
    assert dx.shape == x_shape and dx.dtype == dtype
    assert_close(dx, reference.col2im(c, x_shape, *args, out_size=out_size), dtype)


DEPTHWISE = {
    # (x shape, weight shape, stride, pads, dilation)
    "3x3": ((2, 4, 6, 7), (4, 1, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)),
    "multiplier-3-unequal-strides": ((2, 2, 7, 8), (6, 1, 3, 2), (2, 3), ((1, 0), (2, 1)),
                                     (1, 2)),  # Numba falls back to the reference here
    "stride-2-dilated-asym": ((2, 3, 9, 8), (6, 1, 3, 3), (2, 2), ((1, 2), (0, 1)), (2, 1)),
    "stride-3-big-pad": ((1, 2, 5, 7), (2, 1, 2, 3), (3, 3), ((3, 1), (2, 3)), (1, 1)),
    "dilated-no-pad": ((1, 3, 9, 6), (3, 1, 2, 2), (1, 1), ((0, 0), (0, 0)), (3, 2)),
}


@needs_fast
@pytest.mark.parametrize("strided", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(DEPTHWISE))
@pytest.mark.parametrize("backend_name", FAST_BACKENDS)
def test_depthwise_kernels_match_reference(backend_name, case, dtype, strided):
    x_shape, w_shape, stride, pads, dilation = DEPTHWISE[case]
    x = _data(x_shape, dtype, strided=strided)
    w = _data(w_shape, dtype, seed=1)
    geo = (stride, pads, dilation)
    y = _kernel(backend_name, "depthwise_conv2d")(_on(backend_name, x), _on(backend_name, w),
                                                  *geo)
    expected = reference.depthwise_conv2d(x, w, *geo)
    assert y.dtype == dtype
    assert_close(y, expected, dtype)
    g = _data(expected.shape, dtype, seed=2, strided=strided)
    dx = _kernel(backend_name, "depthwise_conv2d_backward_input")(
        _on(backend_name, g), _on(backend_name, w), x_shape, *geo)
    assert_close(dx, reference.depthwise_conv2d_backward_input(g, w, x_shape, *geo), dtype)
    dw = _kernel(backend_name, "depthwise_conv2d_backward_weight")(
        _on(backend_name, g), _on(backend_name, x), w_shape[2:], *geo)
    assert dw.shape == w_shape
    assert_close(dw, reference.depthwise_conv2d_backward_weight(g, x, w_shape[2:], *geo), dtype)


@needs_fast
@pytest.mark.parametrize("backend_name", FAST_BACKENDS)
def test_depthwise_with_out_size(backend_name):
    """An explicit out_size crops the output, as conv_transpose2d's backward asks."""
    x = _data((1, 2, 7, 7), np.float64)
    w = _data((2, 1, 3, 3), np.float64, seed=1)
    geo = ((2, 2), ((1, 1), (1, 1)), (1, 1))
    y = _kernel(backend_name, "depthwise_conv2d")(_on(backend_name, x), _on(backend_name, w),
                                                  *geo, out_size=(3, 2))
    assert_close(y, reference.depthwise_conv2d(x, w, *geo)[:, :, :3, :2], np.float64)


@pytest.mark.gpu
def test_cupy_kernels_compile_once():
    """Each source is compiled on first use per dtype and its kernels reused afterwards."""
    from minicnn.backend import cupy_gpu

    x = _on("cupy", _data((1, 2, 5, 5), np.float32))
    geometry = ((3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))

    def both():
        cupy_gpu.col2im(cupy_gpu.im2col(x, *geometry), x.shape, *geometry)

    both()
    kernel, built = cupy_gpu._conv("im2col", np.float32), cupy_gpu._kernel.cache_info().misses
    both()
    assert cupy_gpu._kernel.cache_info().misses == built  # nothing compiled again
    assert cupy_gpu._conv("im2col", np.float32) is kernel
    assert cupy_gpu._conv("im2col", np.float64) is not kernel
    # one compiled module per dtype serves all the convolution kernels
    assert (cupy_gpu._module("float32", cupy_gpu._CONV_SOURCE)
            is cupy_gpu._module("float32", cupy_gpu._CONV_SOURCE))


# ---------------------------------------------------------------- grouped convolution

GROUPED = {
    # (x shape, weight shape, stride, pads, dilation); C/G = weight.shape[1], O/G = O // G
    "cg4-3x3": ((2, 8, 6, 7), (8, 4, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)),
    "cg1-multiplier-2-asym": ((2, 3, 6, 5), (6, 1, 3, 3), (2, 2), ((1, 0), (0, 1)), (1, 1)),
    "cg2-multiplier-rect": ((2, 6, 7, 9), (9, 2, 3, 2), (2, 2), ((1, 2), (0, 1)), (1, 2)),
    "cg8-dilated-og6": ((1, 16, 9, 8), (12, 8, 2, 3), (1, 1), ((0, 1), (2, 0)), (2, 1)),
    "cg2-stride-3-big-pad": ((1, 4, 7, 8), (10, 2, 2, 3), (3, 3), ((3, 1), (2, 3)), (1, 1)),
    "cg4-unequal-strides": ((2, 8, 7, 8), (4, 4, 3, 3), (1, 2), ((1, 1), (2, 1)), (1, 1)),
    # one group, stride 1: numba's register-blocked dense kernels (conv.py's DIRECT), with
    # output channels and terms that do and do not fill their blocks (8 x 4 forward, 4 x 4
    # for the weight gradient)
    "dense-16ch": ((2, 16, 9, 8), (16, 16, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)),
    # 11 images of 9x8: canvases of 6 and 5 stacked images (see _dense_stack)
    "dense-o7-t45-stacked": ((11, 5, 9, 8), (7, 5, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)),
    "dense-dilated-asym": ((2, 3, 10, 9), (4, 3, 2, 3), (1, 1), ((0, 1), (2, 0)), (2, 1)),
    # unequal padding: stacked images share 2 rows and 2 columns of it (see _stack_pitch)
    "dense-shared-pad": ((6, 4, 7, 9), (9, 4, 3, 3), (1, 1), ((1, 2), (2, 1)), (1, 1)),
    # padding beyond the dilated kernel: the input gradient takes the grouped loops
    "dense-big-pad": ((1, 2, 5, 6), (3, 2, 2, 3), (1, 1), ((3, 1), (0, 3)), (1, 1)),
}


def _grouped_case(case, dtype, strided):
    x_shape, w_shape, stride, pads, dilation = GROUPED[case]
    x = _data(x_shape, dtype, strided=strided)
    w = _data(w_shape, dtype, seed=1, strided=strided)
    groups = x_shape[1] // w_shape[1]
    return x, w, groups, (stride, pads, dilation)


def _torch_grouped(x, w, g, groups, stride, pads, dilation):
    """PyTorch's output, input gradient and weight gradient (float64, autograd)."""
    xt = torch.tensor(np.ascontiguousarray(x), dtype=torch.float64, requires_grad=True)
    wt = torch.tensor(np.ascontiguousarray(w), dtype=torch.float64, requires_grad=True)
    (pt, pb), (pl, pr) = pads
    y = TF.conv2d(TF.pad(xt, (pl, pr, pt, pb)), wt, stride=stride, dilation=dilation,
                  groups=groups)
    y.backward(torch.tensor(np.ascontiguousarray(g), dtype=torch.float64))
    return y, xt.grad, wt.grad


@pytest.mark.parametrize("strided", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(GROUPED))
@pytest.mark.parametrize("backend_name", AVAILABLE_BACKENDS)
def test_grouped_kernels_match_torch(backend_name, case, dtype, strided):
    x, w, groups, geo = _grouped_case(case, dtype, strided)
    kh, kw = w.shape[2:]
    y = _kernel(backend_name, "grouped_conv2d")(_on(backend_name, x), _on(backend_name, w), *geo)
    g = _data(y.shape, dtype, seed=2, strided=strided)
    y_t, dx_t, dw_t = _torch_grouped(x, w, g, groups, *geo)
    assert y.dtype == dtype and y.shape == tuple(y_t.shape)
    assert_close(y, y_t, dtype)
    dx = _kernel(backend_name, "grouped_conv2d_backward_input")(
        _on(backend_name, g), _on(backend_name, w), x.shape, *geo)
    assert dx.dtype == dtype and dx.shape == x.shape
    assert_close(dx, dx_t, dtype)
    dw = _kernel(backend_name, "grouped_conv2d_backward_weight")(
        _on(backend_name, g), _on(backend_name, x), (kh, kw), *geo, groups)
    assert dw.dtype == dtype and dw.shape == w.shape
    assert_close(dw, dw_t, dtype)


@needs_fast
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(GROUPED))
@pytest.mark.parametrize("backend_name", FAST_BACKENDS)
def test_grouped_kernels_match_reference(backend_name, case, dtype):
    x, w, groups, geo = _grouped_case(case, dtype, strided=False)
    y = _kernel(backend_name, "grouped_conv2d")(_on(backend_name, x), _on(backend_name, w), *geo)
    expected = reference.grouped_conv2d(x, w, *geo)
    assert_close(y, expected, dtype)
    g = _data(expected.shape, dtype, seed=2)
    dx = _kernel(backend_name, "grouped_conv2d_backward_input")(
        _on(backend_name, g), _on(backend_name, w), x.shape, *geo)
    assert_close(dx, reference.grouped_conv2d_backward_input(g, w, x.shape, *geo), dtype)
    dw = _kernel(backend_name, "grouped_conv2d_backward_weight")(
        _on(backend_name, g), _on(backend_name, x), w.shape[2:], *geo, groups)
    assert_close(dw, reference.grouped_conv2d_backward_weight(g, x, w.shape[2:], *geo, groups),
                 dtype)


@pytest.mark.parametrize("backend_name", AVAILABLE_BACKENDS)
def test_grouped_with_out_size(backend_name):
    """An explicit out_size crops the output, as conv_transpose2d's backward asks."""
    x = _data((1, 4, 7, 7), np.float64)
    w = _data((6, 2, 3, 3), np.float64, seed=1)
    geo = ((2, 2), ((1, 1), (1, 1)), (1, 1))
    y = _kernel(backend_name, "grouped_conv2d")(_on(backend_name, x), _on(backend_name, w),
                                                *geo, out_size=(3, 2))
    assert_close(y, reference.grouped_conv2d(x, w, *geo)[:, :, :3, :2], np.float64)


def test_dense_stacks():
    """Small planes share a canvas (the stacked case above has several images per canvas,
    and stacks of unequal size), in stacks the threads share evenly; a 32x32 plane fills a
    pass by itself."""
    numba_cpu = pytest.importorskip("minicnn.backend.numba_cpu")
    threads = numba_cpu.numba.get_num_threads()
    if threads == 2:  # 2 cores, as on CI: 32 images of 8x8 (9x9 with the shared padding)
        assert numba_cpu._dense_stack(11, 10, 9) == 6  # stacks of 6 and 5
        assert numba_cpu._dense_stack(32, 9, 9) == 8  # 4 stacks of 8, not 5 of 7, ..., 4
        assert numba_cpu._dense_stack(32, 17, 17) == 2
        assert numba_cpu._dense_stack(32, 9, 9, positions=2048) == 16
    assert numba_cpu._dense_stack(32, 33, 33) == 1


def test_stack_pitch():
    """Stacked images and the rows of the wide grid share their padding: a 3x3 kernel with
    padding 1 on 16x16 planes takes 17x17 positions per image, not 18x18; the pitch still
    holds every window (the "dense" cases above check the results), and padding wider than
    the kernel widens it back."""
    numba_cpu = pytest.importorskip("minicnn.backend.numba_cpu")

    def pitch(x_shape, kernel, pads):
        ints = numba_cpu._conv_ints(kernel, (1, 1), pads, (1, 1), x_shape, None)
        pt, pl, h_out, w_out, hp, wp = ints[4], ints[5], *ints[8:]
        return numba_cpu._stack_pitch(x_shape, pt, pl, hp, wp, h_out, w_out)

    assert pitch((1, 1, 16, 16), (3, 3), ((1, 1), (1, 1))) == (17, 17)
    assert pitch((1, 1, 7, 9), (3, 3), ((1, 2), (2, 1))) == (9, 11)  # "dense-shared-pad"
    assert pitch((1, 1, 8, 8), (1, 1), ((3, 3), (0, 0))) == (14, 8)  # the outputs' rows


@pytest.mark.parametrize("backend_name", AVAILABLE_BACKENDS)
def test_dense_with_out_size(backend_name):
    """The same with one group and stride 1 (numba's dense kernels): conv_transpose2d's
    backward asks for an output cropped to its input."""
    x = _data((2, 3, 8, 7), np.float64)
    w = _data((5, 3, 3, 3), np.float64, seed=1)
    geo = ((1, 1), ((1, 1), (1, 1)), (1, 1))
    y = _kernel(backend_name, "grouped_conv2d")(_on(backend_name, x), _on(backend_name, w),
                                                *geo, out_size=(6, 5))
    assert_close(y, reference.grouped_conv2d(x, w, *geo)[:, :, :6, :5], np.float64)
