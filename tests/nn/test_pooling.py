"""Pooling against PyTorch: max, average, adaptive, global pooling and max-unpooling.

* fixed cases on every backend, float32 and float64: forward, indices (exactly equal) and
  the input gradient, including non-contiguous and unbatched (C, H, W) inputs;
* hypothesis sweeps over batch, channels, non-square kernels, stride, padding, dilation,
  ceil_mode, count_include_pad, divisor_override and input size (float64, zero mismatches);
* ``minicnn.gradcheck`` in float64 for every op (max pooling on a permutation of distinct
  values, so no window holds a tie);
* modules: same results as the functions and ``repr`` equal to PyTorch's;
* one test per bad input, checking the message.

Tolerances: the suite's ``tol(dtype)`` (float32 rtol 1e-4 atol 1e-5, float64 rtol 1e-10
atol 1e-12). Indices are compared exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import minicnn
import minicnn.nn as nn
import minicnn.nn.functional as F
from tests.conftest import device_of
from tests.helpers import assert_close, to_numpy

DTYPES = [np.float32, np.float64]
SWEEP = settings(max_examples=40, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


def _distinct(shape, seed=0) -> np.ndarray:
    """A random permutation of distinct values: no window of max pooling holds a tie."""
    rng = np.random.default_rng(seed)
    return rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float64) / 7.0 - 3.0


def _run_both(mop, top, x, device, dtype, transform=None, seed=1):
    """Run ``mop``/``top`` on the same data and backpropagate the same random gradient.

    Returns the outputs (a tuple when the op returns indices too) and the input gradients.
    """
    x = x.astype(dtype)
    mx = minicnn.tensor(x, device=device, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    mi, ti = (transform(mx), transform(tx)) if transform else (mx, tx)
    mout, tout = mop(mi), top(ti)
    my = mout[0] if isinstance(mout, tuple) else mout
    ty = tout[0] if isinstance(tout, tuple) else tout
    assert my.shape == tuple(ty.shape)
    assert my.dtype == dtype
    g = np.random.default_rng(seed).standard_normal(my.shape).astype(dtype)
    my.backward(minicnn.tensor(g, device=device))
    ty.backward(torch.tensor(g))
    return mout, tout, mx.grad, tx.grad


def _check(mop, top, x, device, dtype, transform=None, msg=""):
    mout, tout, mg, tg = _run_both(mop, top, x, device, dtype, transform)
    if isinstance(tout, tuple):
        assert_close(mout[0], tout[0], dtype, msg=f"{msg}: output")
        np.testing.assert_array_equal(to_numpy(mout[1]), to_numpy(tout[1]),
                                      err_msg=f"{msg}: indices")
        assert mout[1].dtype == np.int64
    else:
        assert_close(mout, tout, dtype, msg=f"{msg}: output")
    assert_close(mg, tg, dtype, msg=f"{msg}: input gradient")


# ---------------------------------------------------------------- fixed cases

MAX_CASES = {
    "2x2": dict(kernel_size=2),
    "3x3-s2-p1": dict(kernel_size=3, stride=2, padding=1),
    "rect-ceil": dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True),
    "dilated": dict(kernel_size=(2, 3), stride=1, padding=(1, 0), dilation=(2, 2)),
    "dilated-ceil": dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True),
    "overlap-s1": dict(kernel_size=3, stride=1),
}

AVG_CASES = {
    "2x2": dict(kernel_size=2),
    "3x3-s2-p1": dict(kernel_size=3, stride=2, padding=1),
    "exclude-pad": dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
    "ceil-include-pad": dict(kernel_size=(3, 2), stride=2, padding=1, ceil_mode=True),
    "ceil-exclude-pad": dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                             count_include_pad=False),
    "divisor-override": dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1),
                             divisor_override=5, ceil_mode=True),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(MAX_CASES))
def test_max_pool2d_matches_torch(backend, case, dtype):
    kw = MAX_CASES[case]
    _check(lambda x: F.max_pool2d(x, return_indices=True, **kw),
           lambda x: TF.max_pool2d(x, return_indices=True, **kw),
           _distinct((2, 3, 9, 8)), device_of(backend), dtype, msg=case)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(AVG_CASES))
def test_avg_pool2d_matches_torch(backend, case, dtype):
    kw = AVG_CASES[case]
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 8))
    _check(lambda x: F.avg_pool2d(x, **kw), lambda x: TF.avg_pool2d(x, **kw), x,
           device_of(backend), dtype, msg=case)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output_size", [1, (3, 2), (4, None), (7, 9), (5, 3)])
def test_adaptive_pool2d_matches_torch(backend, output_size, dtype):
    x = _distinct((2, 3, 5, 7))
    dev = device_of(backend)
    _check(lambda x: F.adaptive_avg_pool2d(x, output_size),
           lambda x: TF.adaptive_avg_pool2d(x, output_size), x, dev, dtype, msg="avg")
    _check(lambda x: F.adaptive_max_pool2d(x, output_size, return_indices=True),
           lambda x: TF.adaptive_max_pool2d(x, output_size, return_indices=True), x, dev,
           dtype, msg="max")


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_and_unbatched_inputs(backend, dtype):
    """A transposed view (non-contiguous data) and an unbatched (C, H, W) input."""
    dev = device_of(backend)
    x = _distinct((2, 3, 8, 7))
    swap = lambda t: t.permute(0, 1, 3, 2)  # noqa: E731
    for name, mop, top in [
        ("max", lambda t: F.max_pool2d(t, 3, 2, 1, return_indices=True),
         lambda t: TF.max_pool2d(t, 3, 2, 1, return_indices=True)),
        ("avg", lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True),
         lambda t: TF.avg_pool2d(t, 3, 2, 1, ceil_mode=True)),
        ("adaptive-avg", lambda t: F.adaptive_avg_pool2d(t, (3, 2)),
         lambda t: TF.adaptive_avg_pool2d(t, (3, 2))),
        ("adaptive-max", lambda t: F.adaptive_max_pool2d(t, (3, 2), True),
         lambda t: TF.adaptive_max_pool2d(t, (3, 2), True)),
    ]:
        _check(mop, top, x, dev, dtype, transform=swap, msg=f"{name} non-contiguous")
        _check(mop, top, x[0], dev, dtype, msg=f"{name} unbatched")


@pytest.mark.parametrize("dtype", DTYPES)
def test_pool1d_matches_torch(backend, dtype):
    dev = device_of(backend)
    x = _distinct((2, 3, 11))
    _check(lambda t: F.max_pool1d(t, 3, 2, 1, 2, ceil_mode=True, return_indices=True),
           lambda t: TF.max_pool1d(t, 3, 2, 1, 2, ceil_mode=True, return_indices=True),
           x, dev, dtype, msg="max_pool1d")
    _check(lambda t: F.avg_pool1d(t, 4, 3, 2, ceil_mode=True, count_include_pad=False),
           lambda t: TF.avg_pool1d(t, 4, 3, 2, ceil_mode=True, count_include_pad=False),
           x, dev, dtype, msg="avg_pool1d")
    _check(lambda t: F.max_pool1d(t, 2), lambda t: TF.max_pool1d(t, 2), x[0], dev, dtype,
           msg="max_pool1d unbatched")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw, output_size", [
    (dict(kernel_size=2), None),
    (dict(kernel_size=3, stride=2, padding=1), (9, 8)),  # overlapping windows share indices
    (dict(kernel_size=(2, 3), stride=(2, 2)), (2, 3, 9, 8)),
])
def test_max_unpool2d_matches_torch(backend, kw, output_size, dtype):
    """Pool, then unpool with the switches: forward and gradient equal PyTorch's."""
    dev = device_of(backend)
    x = _distinct((2, 3, 9, 8)).astype(dtype)
    _, idx = F.max_pool2d(minicnn.tensor(x, device=dev), return_indices=True, **kw)
    _, tidx = TF.max_pool2d(torch.tensor(x), return_indices=True, **kw)
    pooled = np.random.default_rng(2).standard_normal(idx.shape)
    unpool_kw = {k: v for k, v in kw.items() if k != "dilation"}
    _check(lambda t: F.max_unpool2d(t, idx, output_size=output_size, **unpool_kw),
           lambda t: TF.max_unpool2d(t, tidx, output_size=output_size, **unpool_kw),
           pooled, dev, dtype, msg="unpool")


# ---------------------------------------------------------------- hypothesis sweeps


@st.composite
def _pool_case(draw, dilated: bool):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilated else (1, 1)
    reach = [d * (k - 1) + 1 - 2 * p for k, d, p in zip(kernel, dilation, padding, strict=True)]
    low = [max(r, 1) for r in reach]
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)),
             draw(st.integers(low[0], low[0] + 7)), draw(st.integers(low[1], low[1] + 7)))
    return shape, kernel, stride, padding, dilation, draw(st.booleans())


def _pool_valid(fn: str, shape, **kw) -> bool:
    """Whether minicnn accepts the case: a dilated window lying wholly in the padding is
    refused (PyTorch returns -inf with an out-of-range index there, which corrupts memory
    in its backward, so it must not run)."""
    try:
        getattr(F, fn)(minicnn.zeros(*shape, dtype=np.float64), **kw)
    except ValueError as e:
        assert "only padding" in str(e) or "too small" in str(e), str(e)
        return False
    return True


@SWEEP
@given(case=_pool_case(dilated=True))
def test_max_pool2d_sweep(backend, case):
    shape, kernel, stride, padding, dilation, ceil_mode = case
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
              ceil_mode=ceil_mode)
    assume(_pool_valid("max_pool2d", shape, **kw))
    _check(lambda t: F.max_pool2d(t, return_indices=True, **kw),
           lambda t: TF.max_pool2d(t, return_indices=True, **kw),
           _distinct(shape), device_of(backend), np.float64, msg=str(case))


@SWEEP
@given(case=_pool_case(dilated=False), count_include_pad=st.booleans(),
       divisor_override=st.sampled_from([None, None, 1, 3]))
def test_avg_pool2d_sweep(backend, case, count_include_pad, divisor_override):
    shape, kernel, stride, padding, _, ceil_mode = case
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
              count_include_pad=count_include_pad, divisor_override=divisor_override)
    assume(_pool_valid("avg_pool2d", shape, **kw))
    x = np.random.default_rng(0).standard_normal(shape)
    _check(lambda t: F.avg_pool2d(t, **kw), lambda t: TF.avg_pool2d(t, **kw), x,
           device_of(backend), np.float64, msg=str((case, count_include_pad, divisor_override)))


@SWEEP
@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 10),
                       st.integers(1, 10)),
       out=st.tuples(st.integers(1, 12), st.integers(1, 12)))
def test_adaptive_pool2d_sweep(backend, shape, out):
    x, dev = _distinct(shape), device_of(backend)
    _check(lambda t: F.adaptive_avg_pool2d(t, out), lambda t: TF.adaptive_avg_pool2d(t, out),
           x, dev, np.float64, msg=f"avg {shape} -> {out}")
    _check(lambda t: F.adaptive_max_pool2d(t, out, True),
           lambda t: TF.adaptive_max_pool2d(t, out, True), x, dev, np.float64,
           msg=f"max {shape} -> {out}")


def test_pool_errors_agree_with_torch():
    """Over a grid of geometries, minicnn refuses exactly the cases PyTorch refuses
    (besides the dilated windows wholly in the padding, which only minicnn refuses)."""
    x = np.zeros((1, 1, 4, 5))
    for k in range(1, 5):
        for p in range(0, 3):
            for d in range(1, 3):
                for ceil_mode in (False, True):
                    kw = dict(kernel_size=(k, 2), stride=(1, 2), padding=(p, 0),
                              dilation=(d, 1), ceil_mode=ceil_mode)
                    try:
                        F.max_pool2d(minicnn.tensor(x), **kw)
                        ours = None
                    except ValueError as e:
                        ours = str(e)
                    try:
                        TF.max_pool2d(torch.tensor(x), **kw)
                        theirs = None
                    except RuntimeError as e:
                        theirs = str(e)
                    if ours is not None and "only padding" in ours:
                        continue
                    assert (ours is None) == (theirs is None), (kw, ours, theirs)


# ---------------------------------------------------------------- gradcheck


def _leaf(x, device="cpu") -> minicnn.Tensor:
    return minicnn.tensor(x, dtype=np.float64, device=device, requires_grad=True)


@pytest.mark.parametrize("name, fn", [
    ("max_pool2d", lambda t: F.max_pool2d(t, 3, 2, 1, dilation=(1, 2), ceil_mode=True)),
    ("avg_pool2d", lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False)),
    ("adaptive_avg_pool2d", lambda t: F.adaptive_avg_pool2d(t, (3, 4))),
    ("adaptive_max_pool2d", lambda t: F.adaptive_max_pool2d(t, (3, 4))),
    ("max_pool1d", lambda t: F.max_pool1d(t.reshape(2, 2, -1), 3, 2)),
    ("avg_pool1d", lambda t: F.avg_pool1d(t.reshape(2, 2, -1), 3, 2, 1)),
])
def test_gradcheck(backend, name, fn):
    x = _leaf(_distinct((2, 2, 5, 6)), device_of(backend))
    assert minicnn.gradcheck(fn, [x])


def test_gradcheck_max_unpool2d(backend):
    x, dev = _distinct((1, 2, 6, 6)), device_of(backend)
    _, idx = F.max_pool2d(minicnn.tensor(x, device=dev), 2, return_indices=True)
    assert minicnn.gradcheck(lambda t: F.max_unpool2d(t, idx, 2), [_leaf(x[:, :, :3, :3], dev)])


# ---------------------------------------------------------------- behaviour


def test_max_pool_ties_take_the_first_and_padding_never_wins():
    x = np.full((1, 1, 4, 4), -5.0)
    x[0, 0, 3, 2] = x[0, 0, 3, 3] = 2.0  # a tie inside the bottom-right window
    for backend in ("numpy", "numba"):
        with minicnn.use_backend(backend):
            out, idx = F.max_pool2d(minicnn.tensor(x), 3, 2, 1, return_indices=True)
            tout, tidx = TF.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)
            np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
            assert idx.numpy()[0, 0, 1, 1] == 3 * 4 + 2  # the first of the tie
            assert out.numpy()[0, 0, 0, 0] == -5.0  # the -inf padding never wins, 0 would have
            assert_close(out, tout)


def test_global_pooling_is_adaptive_with_output_one():
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 4)).astype(np.float32)
    avg = nn.GlobalAvgPool2d()(minicnn.tensor(x))
    mx = nn.GlobalMaxPool2d()(minicnn.tensor(x))
    assert avg.shape == mx.shape == (2, 3, 1, 1)
    assert_close(avg, x.mean(axis=(2, 3), keepdims=True))
    assert_close(mx, x.max(axis=(2, 3), keepdims=True))


def test_modules_match_functions_and_torch_repr():
    x = _distinct((2, 3, 8, 8))
    mx, tx = minicnn.tensor(x), torch.tensor(x)
    pairs = [
        (nn.MaxPool2d(3, 2, 1), torch.nn.MaxPool2d(3, 2, 1)),
        (nn.MaxPool2d((2, 3), ceil_mode=True), torch.nn.MaxPool2d((2, 3), ceil_mode=True)),
        (nn.AvgPool2d(3, 2, 1, count_include_pad=False),
         torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False)),
        (nn.AdaptiveAvgPool2d((None, 3)), torch.nn.AdaptiveAvgPool2d((None, 3))),
        (nn.AdaptiveMaxPool2d(2), torch.nn.AdaptiveMaxPool2d(2)),
    ]
    for mine, theirs in pairs:
        assert repr(mine) == repr(theirs)
        assert_close(mine(mx), theirs(tx), msg=repr(mine))
        assert mine.state_dict() == {}
    x1 = x.reshape(2, 3, 64)
    for mine, theirs in [(nn.MaxPool1d(3, 2), torch.nn.MaxPool1d(3, 2)),
                         (nn.AvgPool1d(3, 2, 1), torch.nn.AvgPool1d(3, 2, 1))]:
        assert repr(mine) == repr(theirs)
        assert_close(mine(minicnn.tensor(x1)), theirs(torch.tensor(x1)))
    assert repr(nn.MaxUnpool2d(2)) == repr(torch.nn.MaxUnpool2d(2))


def test_deconvnet_switches_round_trip():
    """MaxPool2d(return_indices=True) then MaxUnpool2d: maxima back in place, zeros elsewhere."""
    x = _distinct((1, 2, 6, 6))
    pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
    out, idx = pool(minicnn.tensor(x))
    back = unpool(out, idx).numpy()
    tout, tidx = torch.nn.MaxPool2d(2, return_indices=True)(torch.tensor(x))
    assert_close(back, torch.nn.MaxUnpool2d(2)(tout, tidx))
    assert (back != 0).sum() == out.numel()
    np.testing.assert_array_equal(np.sort(back[back != 0]), np.sort(out.numpy().ravel()))


# ---------------------------------------------------------------- bad input


def _x(*shape):
    return minicnn.zeros(*shape)


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.max_pool2d(_x(1, 1, 5, 5), 3, padding=2), ValueError,
     r"pad should be at most half of kernel size.*padding=\(2, 2\)"),
    (lambda: F.avg_pool2d(_x(1, 1, 5, 5), (3, 1), padding=(1, 1)), ValueError,
     "pad should be at most half"),
    (lambda: F.max_pool2d(_x(1, 1, 5, 5), 6), ValueError,
     r"too small for kernel_size=\(6, 6\)"),
    (lambda: F.max_pool2d(_x(1, 1, 5, 5), 2, stride=0), ValueError, "stride must be positive"),
    (lambda: F.avg_pool2d(_x(1, 1, 5, 5), 0), ValueError, "kernel_size must be positive"),
    (lambda: F.max_pool2d(_x(1, 1, 5, 5), 2, dilation=0), ValueError,
     "dilation must be positive"),
    (lambda: F.max_pool2d(_x(5, 5), 2), ValueError,
     r"input must be 4-D \(N, C, H, W\) or unbatched 3-D.*got shape \(5, 5\)"),
    (lambda: F.avg_pool2d(_x(1, 1, 1, 5, 5), 2), ValueError, "input must be 4-D"),
    (lambda: F.max_pool1d(_x(1, 1, 1, 5), 2), ValueError, r"input must be 3-D \(N, C, L\)"),
    (lambda: F.max_pool2d(_x(1, 1, 1, 8), 2, 2, 1, 2), ValueError, "reads only padding"),
    (lambda: F.max_pool2d(minicnn.zeros(1, 1, 4, 4, dtype=np.int64), 2), TypeError,
     "input must be floating point"),
    (lambda: F.max_pool2d(_x(1, 1, 4, 4), 2.5), TypeError, "kernel_size must be an int"),
    (lambda: F.max_pool2d(np.zeros((1, 1, 4, 4)), 2), TypeError, "input must be a Tensor"),
    (lambda: F.avg_pool2d(_x(1, 1, 4, 4), 2, divisor_override=0), ValueError,
     "divisor_override must be a positive int"),
    (lambda: F.adaptive_avg_pool2d(_x(1, 1, 4, 4), (2, 0)), ValueError,
     "output_size entries must be positive"),
    (lambda: F.adaptive_max_pool2d(_x(1, 1, 4, 4), (1, 2, 3)), ValueError,
     "output_size must be an int or a pair"),
    (lambda: F.max_unpool2d(_x(1, 1, 2, 2), minicnn.zeros(1, 1, 2, 3, dtype=np.int64), 2),
     ValueError, "indices must be integers of the input's shape"),
    (lambda: F.max_unpool2d(_x(1, 1, 2, 2), minicnn.full((1, 1, 2, 2), 16, dtype=np.int64), 2),
     ValueError, "invalid index 16"),
    (lambda: F.max_unpool2d(_x(1, 1, 2, 2), minicnn.zeros(1, 1, 2, 2, dtype=np.int64), 2,
                            output_size=(7, 4)), ValueError, "invalid output_size"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
