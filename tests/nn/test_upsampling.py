"""F.interpolate and the Upsample layers against PyTorch.

* fixed cases on every backend, float32 and float64: nearest, nearest-exact, bilinear and
  bicubic (align_corners True/False, scale factors, recompute_scale_factor, downsampling,
  an axis left unchanged, a scale factor that disagrees with the sizes), 3-d
  nearest/linear, outputs above PyTorch's 128-pixel dispatch threshold;
  forward and input gradient, plus non-contiguous inputs;
* a hypothesis sweep (float64) over sizes, scale factors, modes and align_corners: the
  output equals PyTorch's, the gradient is the adjoint of PyTorch's forward;
* ``minicnn.gradcheck`` in float64 for every mode;
* the Numba nearest kernels against the reference ones;
* the modules (repr equal to torch's, outputs), one test per bad input.

Tolerances: the suite's ``tol(dtype)``. Nearest modes copy values, so they agree exactly;
linear modes use a matrix product, whose summation order differs from PyTorch's by a few ulp.

One PyTorch inconsistency is not replicated: for outputs above the 128-pixel threshold
(and for 3-d input) PyTorch's nearest *forward* maps coordinates with the generic rule but
its *backward* with the per-index rule, so where the two rules disagree (a scale factor
that disagrees with the sizes, e.g. 3 -> 3 pixels with scale_factor=1.2) PyTorch's gradient
is not the gradient of its output. minicnn's backward is always the adjoint of its forward;
the sweep checks it against the adjoint of PyTorch's forward. Likewise PyTorch's bicubic
backward copies the gradient whenever the output has the input's size, while its forward
still resamples when a scale factor disagrees with the sizes (4 -> 4 pixels with
scale_factor=1.2); there minicnn's gradient is checked against the adjoint of PyTorch's
forward too.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn
import minicnn.nn as nn
import minicnn.nn.functional as F
from minicnn.backend import get_backend, reference
from minicnn.backend.geometry import cubic_coefficients, cubic_matrix
from tests.conftest import AVAILABLE_BACKENDS, device_of
from tests.helpers import assert_close

DTYPES = [np.float32, np.float64]

# (input shape, interpolate keyword arguments)
CASES = {
    "nearest-x2": ((2, 3, 4, 5), dict(scale_factor=2)),
    "nearest-size-up-down": ((2, 2, 6, 5), dict(size=(4, 11))),
    "nearest-scale-per-axis": ((1, 3, 5, 6), dict(scale_factor=(1.5, 0.5))),
    "nearest-disagreeing-scale": ((1, 2, 3, 4), dict(scale_factor=1.2)),  # 3 -> 3: a copy
    "nearest-recompute": ((2, 2, 5, 7), dict(scale_factor=1.7, recompute_scale_factor=True)),
    "nearest-exact": ((2, 2, 5, 7), dict(size=(3, 11), mode="nearest-exact")),
    "nearest-exact-scale": ((1, 3, 7, 4), dict(scale_factor=(0.6, 2.5), mode="nearest-exact")),
    "bilinear-x2": ((2, 3, 4, 5), dict(scale_factor=2, mode="bilinear")),
    "bilinear-align-size": ((2, 2, 4, 6), dict(size=(7, 5), mode="bilinear",
                                               align_corners=True)),
    "bilinear-down": ((1, 3, 9, 8), dict(scale_factor=0.6, mode="bilinear")),
    "bilinear-scale-1.7": ((2, 2, 5, 4), dict(scale_factor=1.7, mode="bilinear",
                                              align_corners=False)),
    "bilinear-recompute": ((2, 2, 5, 4), dict(scale_factor=1.7, mode="bilinear",
                                              recompute_scale_factor=True)),
    "bilinear-one-axis": ((2, 2, 5, 4), dict(size=(5, 9), mode="bilinear")),
    "bilinear-to-1x1": ((1, 2, 4, 3), dict(size=1, mode="bilinear", align_corners=True)),
    "bilinear-from-1": ((1, 2, 1, 3), dict(size=(4, 5), mode="bilinear")),
    "nearest-large": ((1, 2, 3, 70), dict(size=(4, 130))),  # above the 128-pixel threshold
    "nearest-exact-large": ((1, 2, 3, 70), dict(scale_factor=(1.0, 1.9), mode="nearest-exact")),
    "bilinear-large": ((1, 2, 3, 70), dict(size=(5, 131), mode="bilinear")),
    "bicubic-x2": ((2, 3, 4, 5), dict(scale_factor=2, mode="bicubic")),
    "bicubic-x3-align": ((2, 2, 4, 5), dict(scale_factor=3, mode="bicubic",
                                            align_corners=True)),
    "bicubic-down": ((1, 3, 12, 9), dict(scale_factor=1 / 3, mode="bicubic")),
    "bicubic-down-align": ((1, 2, 11, 8), dict(size=(4, 3), mode="bicubic",
                                               align_corners=True)),
    "bicubic-size-up-down": ((2, 2, 6, 5), dict(size=(4, 11), mode="bicubic")),
    "bicubic-scale-per-axis": ((1, 2, 5, 6), dict(scale_factor=(1.7, 0.6), mode="bicubic")),
    "bicubic-disagreeing-scale": ((1, 2, 3, 4), dict(scale_factor=1.2, mode="bicubic")),
    "bicubic-recompute": ((2, 2, 5, 4), dict(scale_factor=1.7, mode="bicubic",
                                             recompute_scale_factor=True)),
    "bicubic-one-axis": ((2, 2, 5, 4), dict(size=(5, 9), mode="bicubic")),
    "bicubic-from-1": ((1, 2, 1, 2), dict(size=(4, 5), mode="bicubic")),
    "bicubic-to-1x1": ((1, 2, 4, 3), dict(size=1, mode="bicubic", align_corners=True)),
    "bicubic-large": ((1, 2, 3, 70), dict(size=(5, 131), mode="bicubic")),
    "1d-nearest": ((2, 3, 7), dict(scale_factor=2.5)),
    "1d-nearest-exact": ((2, 3, 7), dict(size=4, mode="nearest-exact")),
    "1d-linear-align": ((2, 3, 5), dict(size=9, mode="linear", align_corners=True)),
    "1d-linear-down": ((2, 3, 9), dict(scale_factor=0.7, mode="linear")),
}


def _run_both(x, kwargs, device, transform=None, seed=0):
    """Forward and backward in minicnn and torch: (minicnn out, torch out, minicnn grad,
    torch grad)."""
    rng = np.random.default_rng(seed)
    m = minicnn.tensor(x, device=device, requires_grad=True)
    t = torch.tensor(x, requires_grad=True)
    mx, tx = (transform(m), transform(t)) if transform else (m, t)
    my, ty = F.interpolate(mx, **kwargs), TF.interpolate(tx, **kwargs)
    assert my.shape == tuple(ty.shape)
    assert my.dtype == x.dtype
    g = rng.standard_normal(my.shape).astype(x.dtype)
    my.backward(minicnn.tensor(g, device=device))
    ty.backward(torch.tensor(g))
    return my, ty, m.grad, t.grad


def _torch_adjoint(shape, kwargs, g):
    """The gradient of PyTorch's (linear) forward, ``A.T @ g``: the forward of every basis
    image gives a column of ``A``."""
    n_plane = int(np.prod(shape[2:]))
    basis = torch.eye(n_plane, dtype=torch.float64).reshape(n_plane, 1, *shape[2:])
    a = TF.interpolate(basis, **kwargs).reshape(n_plane, -1).numpy()  # (in, out) = A.T
    out = g.reshape(shape[0] * shape[1], -1).astype(np.float64) @ a.T
    return out.reshape(shape)


def _torch_backward_is_adjoint(shape, kwargs, out_shape) -> bool:
    """False where PyTorch's bicubic backward copies though its forward resamples."""
    return not (kwargs.get("mode") == "bicubic" and tuple(out_shape) == tuple(shape))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_interpolate_matches_torch(backend, case, dtype):
    shape, kwargs = CASES[case]
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    my, ty, mg, tg = _run_both(x, kwargs, device_of(backend))
    assert_close(my, ty, dtype, msg=f"{case}: output")
    if not _torch_backward_is_adjoint(shape, kwargs, my.shape):
        g = np.random.default_rng(0).standard_normal(my.shape).astype(dtype)  # as _run_both
        tg = _torch_adjoint(shape, kwargs, g)
    assert_close(mg, tg, dtype, msg=f"{case}: grad of input")


@pytest.mark.parametrize("case", ["nearest-scale-per-axis", "nearest-large", "bilinear-x2",
                                  "bilinear-align-size", "bicubic-scale-per-axis"])
def test_interpolate_non_contiguous_input(backend, case):
    shape, kwargs = CASES[case]
    swapped = shape[:2] + shape[2:][::-1]
    x = np.random.default_rng(2).standard_normal(swapped)
    my, ty, mg, tg = _run_both(x, kwargs, device_of(backend), transform=lambda a: a.transpose(2, 3))
    assert_close(my, ty, np.float64)
    assert_close(mg, tg, np.float64)


@pytest.mark.parametrize("kwargs", [
    dict(scale_factor=2), dict(size=(5, 3), mode="nearest-exact"),
    dict(scale_factor=(1.6, 0.7), mode="bilinear"),
    dict(size=(3, 5), mode="bilinear", align_corners=True),
    dict(scale_factor=(2.5, 0.6), mode="bicubic"),
    dict(size=(2, 7), mode="bicubic", align_corners=True),
], ids=["nearest", "nearest-exact", "bilinear", "bilinear-align", "bicubic", "bicubic-align"])
def test_interpolate_gradcheck(kwargs):
    x = minicnn.tensor(np.random.default_rng(3).standard_normal((2, 2, 3, 4)),
                       requires_grad=True)
    assert minicnn.gradcheck(lambda a: F.interpolate(a, **kwargs), [x])


@pytest.mark.parametrize("kwargs", [dict(scale_factor=1.5), dict(size=7, mode="linear")],
                         ids=["nearest", "linear"])
def test_interpolate_1d_gradcheck(kwargs):
    x = minicnn.tensor(np.random.default_rng(4).standard_normal((2, 2, 5)), requires_grad=True)
    assert minicnn.gradcheck(lambda a: F.interpolate(a, **kwargs), [x])


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("n_in, kwargs", [
    (13, dict(size=80)), (7, dict(scale_factor=1.43)), (50, dict(size=31)),
    (6, dict(size=17, align_corners=True)), (1, dict(size=5)), (9, dict(scale_factor=2.7)),
])
def test_linear_weights_bit_identical(n_in, kwargs, dtype):
    """Interpolating the rows of an identity matrix reads off the weights: they must be
    PyTorch's to the last bit (coordinates in the input's precision, fused multiply-add)."""
    eye = np.eye(n_in, dtype=dtype).reshape(n_in, 1, n_in)
    mine = F.interpolate(minicnn.tensor(eye), mode="linear", **kwargs).numpy()
    theirs = TF.interpolate(torch.tensor(eye), mode="linear", **kwargs).numpy()
    np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("n_in, n_out, scale, align_corners", [
    (13, 40, None, False), (7, 21, 3.0, False), (30, 10, 1 / 3, False), (6, 17, None, True),
    (1, 5, None, False), (9, 4, None, True), (4, 4, None, False),
])
def test_cubic_matrix_matches_torch(n_in, n_out, scale, align_corners, dtype):
    """Bicubic-resizing the rows of an identity matrix reads off PyTorch's weights: the
    shared :func:`cubic_matrix` (the one the super-resolution data uses) must equal them to
    a few ulp (PyTorch evaluates the cubic polynomials with fused multiply-adds), and each
    of its rows sums to 1."""
    eye = np.eye(n_in, dtype=dtype).reshape(n_in, 1, n_in, 1)
    kwargs = dict(size=(n_out, 1)) if scale is None else dict(scale_factor=(scale, 1.0))
    theirs = TF.interpolate(torch.tensor(eye), mode="bicubic", align_corners=align_corners,
                            **kwargs).numpy()[:, 0, :, 0].T
    mine = cubic_matrix(n_in, n_out, scale, align_corners, dtype)
    assert mine.dtype == dtype and mine.shape == theirs.shape == (n_out, n_in)
    np.testing.assert_allclose(mine, theirs, rtol=0, atol=8 * np.finfo(dtype).eps)
    np.testing.assert_allclose(mine.sum(axis=1), 1.0, rtol=0, atol=8 * np.finfo(dtype).eps)


def test_cubic_coefficients_are_keys_kernel():
    """The four weights are Keys' kernel ``k(x)`` at the distances ``1 + t, t, 1 - t, 2 - t``
    (written here from its definition, not PyTorch's Horner form)."""
    a = -0.75

    def keys(x):
        x = np.abs(x)
        return np.where(x <= 1, (a + 2) * x**3 - (a + 3) * x**2 + 1,
                        np.where(x < 2, a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a, 0.0))

    t = np.linspace(0, 1, 11)
    expected = np.stack([keys(1 + t), keys(t), keys(1 - t), keys(2 - t)], axis=-1)
    np.testing.assert_allclose(cubic_coefficients(t), expected, atol=1e-14)
    np.testing.assert_array_equal(cubic_coefficients(np.array([0.0]))[0], [0, 1, 0, 0])


# ---------------------------------------------------------------- hypothesis sweep


@st.composite
def _interpolate_args(draw):
    ndim = draw(st.sampled_from([3, 4]))
    linear = ["linear"] if ndim == 3 else ["bilinear", "bicubic"]
    mode = draw(st.sampled_from(["nearest", "nearest-exact", *linear]))
    spatial = draw(st.lists(st.integers(1, 9), min_size=ndim - 2, max_size=ndim - 2))
    kwargs = {"mode": mode}
    if draw(st.booleans()):
        kwargs["size"] = tuple(draw(st.integers(1, 20)) for _ in spatial)
    else:
        factors = tuple(draw(st.floats(1.0 / n, 4.0).filter(lambda s, n=n: int(n * s) >= 1))
                        for n in spatial)
        kwargs["scale_factor"] = factors
        kwargs["recompute_scale_factor"] = draw(st.sampled_from([None, False, True]))
    if mode in linear:
        kwargs["align_corners"] = draw(st.sampled_from([None, False, True]))
    return (2, 2, *spatial), kwargs


def _torch_nearest_adjoint(shape, kwargs, g):
    """The gradient of PyTorch's nearest forward: find where each output pixel copies from
    (an input holding its own flat positions), then scatter-add ``g`` there."""
    n_plane = int(np.prod(shape[2:]))
    coded = torch.arange(n_plane, dtype=torch.float64).reshape(1, 1, *shape[2:])
    source = TF.interpolate(coded, **kwargs).numpy().astype(np.int64).reshape(-1)
    out = np.zeros(shape[:2] + (n_plane,))
    np.add.at(out, (slice(None), slice(None), source), g.reshape(shape[:2] + (-1,)))
    return out.reshape(shape)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(args=_interpolate_args())
def test_interpolate_sweep(args):
    shape, kwargs = args
    x = np.random.default_rng(5).standard_normal(shape)
    my, ty, mg, tg = _run_both(x, kwargs, "cpu")
    assert_close(my, ty, np.float64, msg=f"{shape} {kwargs}: output")
    if kwargs["mode"].startswith("nearest"):
        g = np.random.default_rng(0).standard_normal(my.shape)
        assert_close(mg, _torch_nearest_adjoint(shape, kwargs, g), np.float64,
                     msg=f"{shape} {kwargs}: grad of input")
    else:
        if not _torch_backward_is_adjoint(shape, kwargs, my.shape):
            tg = _torch_adjoint(shape, kwargs, np.random.default_rng(0).standard_normal(my.shape))
        assert_close(mg, tg, np.float64, msg=f"{shape} {kwargs}: grad of input")


# ---------------------------------------------------------------- kernels


@pytest.mark.skipif("numba" not in AVAILABLE_BACKENDS, reason="needs numba")
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_numba_nearest_kernels_match_reference(dtype):
    numba_backend = get_backend("numba")
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((2, 3, 7, 5)) * 10).astype(dtype).transpose(0, 1, 3, 2)
    src_h = np.array([0, 0, 1, 3, 3, 3, 4], dtype=np.int64)
    src_w = np.array([1, 2, 2, 5, 6], dtype=np.int64)
    out = numba_backend.upsample_nearest(x, src_h, src_w)
    np.testing.assert_array_equal(out, reference.upsample_nearest(x, src_h, src_w))
    g = (rng.standard_normal(out.shape) * 10).astype(dtype).copy(order="F")
    np.testing.assert_allclose(numba_backend.upsample_nearest_backward(g, (5, 7), src_h, src_w),
                               reference.upsample_nearest_backward(g, (5, 7), src_h, src_w),
                               rtol=1e-6)


# ---------------------------------------------------------------- modules


def test_upsample_modules_match_torch():
    x = np.random.default_rng(7).standard_normal((2, 3, 4, 5)).astype(np.float32)
    pairs = [
        (nn.Upsample(scale_factor=2), torch.nn.Upsample(scale_factor=2)),
        (nn.Upsample(size=(3, 7), mode="bilinear"),
         torch.nn.Upsample(size=(3, 7), mode="bilinear")),
        (nn.Upsample(scale_factor=(1.5, 2.0), mode="bilinear", align_corners=True),
         torch.nn.Upsample(scale_factor=(1.5, 2.0), mode="bilinear", align_corners=True)),
        (nn.Upsample(scale_factor=1.7, recompute_scale_factor=True),
         torch.nn.Upsample(scale_factor=1.7, recompute_scale_factor=True)),
        (nn.UpsamplingNearest2d(scale_factor=3), torch.nn.UpsamplingNearest2d(scale_factor=3)),
        (nn.UpsamplingNearest2d(size=(2, 9)), torch.nn.UpsamplingNearest2d(size=(2, 9))),
        (nn.UpsamplingBilinear2d(scale_factor=2), torch.nn.UpsamplingBilinear2d(scale_factor=2)),
        (nn.UpsamplingBilinear2d(size=6), torch.nn.UpsamplingBilinear2d(size=6)),
        (nn.Upsample(scale_factor=3, mode="bicubic"),
         torch.nn.Upsample(scale_factor=3, mode="bicubic")),
        (nn.Upsample(size=(2, 3), mode="bicubic", align_corners=True),
         torch.nn.Upsample(size=(2, 3), mode="bicubic", align_corners=True)),
    ]
    for mine, theirs in pairs:
        assert repr(mine) == repr(theirs)
        assert_close(mine(minicnn.tensor(x)), theirs(torch.tensor(x)), np.float32, msg=repr(mine))
    assert nn.UpsamplingBilinear2d(size=3).align_corners is True
    assert nn.Upsample(scale_factor=2).scale_factor == 2.0
    assert list(nn.Upsample(scale_factor=2).parameters()) == []


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(size=4, scale_factor=2), ValueError, "only one of size and scale_factor"),
    (dict(), ValueError, "either size or scale_factor must be given"),
    (dict(size=4, align_corners=True), ValueError, "align_corners can only be set"),
    (dict(size=4, mode="nearest-exact", align_corners=False), ValueError,
     "align_corners can only be set"),
    (dict(size=4, mode="area"), ValueError, "mode must be one of"),
    (dict(size=4, mode="trilinear"), ValueError, "mode must be one of"),
    (dict(size=4, mode="linear"), ValueError, "mode='linear' needs a 3-d input"),
    (dict(size=(4, 4, 4)), ValueError,
     r"size must have one entry per spatial dimension of the input \(2: input spatial size"),
    (dict(scale_factor=(2.0,)), ValueError, "scale_factor must have one entry per spatial"),
    (dict(size=(4, 2.5)), TypeError, "size must be an int or a tuple of ints"),
    (dict(scale_factor="2"), TypeError, "scale_factor must be a number"),
    (dict(scale_factor=float("inf")), ValueError, "scale_factor must be finite"),
    (dict(scale_factor=-2.0), ValueError, r"output size \[-6, -8\]"),
    (dict(scale_factor=0.2), ValueError, "sizes must be greater than 0"),
    (dict(size=(0, 3)), ValueError, "sizes must be greater than 0"),
    (dict(size=4, recompute_scale_factor=True), ValueError,
     "recompute_scale_factor=True is only meaningful with scale_factor"),
    (dict(size=4, mode="bilinear", antialias=True), ValueError, "antialias=True is not supported"),
])
def test_interpolate_bad_arguments(kwargs, error, match):
    x = minicnn.zeros(1, 2, 3, 4)
    with pytest.raises(error, match=match):
        F.interpolate(x, **kwargs)


def test_interpolate_bad_inputs():
    with pytest.raises(ValueError, match=r"input must be 3-d \(N, C, L\) or 4-d .* got a 2-d"):
        F.interpolate(minicnn.zeros(3, 4), size=2)
    with pytest.raises(ValueError, match="input must be 3-d .* got a 5-d"):
        F.interpolate(minicnn.zeros(1, 1, 2, 2, 2), size=2)
    with pytest.raises(ValueError, match="mode='bilinear' needs a 4-d input"):
        F.interpolate(minicnn.zeros(1, 2, 3), size=2, mode="bilinear")
    with pytest.raises(ValueError, match="mode='bicubic' needs a 4-d input"):
        F.interpolate(minicnn.zeros(1, 2, 3), size=2, mode="bicubic")
    with pytest.raises(TypeError, match="needs a floating-point input, got dtype int64"):
        F.interpolate(minicnn.zeros(1, 1, 2, 2, dtype=np.int64), size=3, mode="bilinear")
    with pytest.raises(TypeError, match="mode='bicubic' needs a floating-point input"):
        F.interpolate(minicnn.zeros(1, 1, 2, 2, dtype=np.int64), size=3, mode="bicubic")
    with pytest.raises(TypeError, match="input must be a minicnn Tensor, got ndarray"):
        F.interpolate(np.zeros((1, 1, 2, 2)), size=3)


def test_nearest_keeps_integer_dtype():
    x = minicnn.tensor(np.arange(6).reshape(1, 1, 2, 3))
    y = F.interpolate(x, scale_factor=2)
    assert y.dtype == np.int64
    expected = TF.interpolate(torch.arange(6.0).reshape(1, 1, 2, 3), scale_factor=2)
    np.testing.assert_array_equal(y.numpy(), expected.numpy().astype(np.int64))
