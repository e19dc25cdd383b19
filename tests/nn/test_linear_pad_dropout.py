"""F.linear, F.pad and F.dropout: against PyTorch, gradcheck, statistics and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import minicnn
import minicnn.nn.functional as F
from tests.conftest import device_of
from tests.helpers import assert_close

DTYPES = [np.float32, np.float64]


def _compare(m_fn, t_fn, arrays, device="cpu", **tol):
    """Same arrays into both; compare the output and the gradient of every array."""
    m_in = [minicnn.tensor(a, device=device, requires_grad=True) for a in arrays]
    t_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    out_m, out_t = m_fn(*m_in), t_fn(*t_in)
    assert out_m.shape == tuple(out_t.shape) and out_m.dtype == arrays[0].dtype
    dtype = arrays[0].dtype
    assert_close(out_m, out_t, dtype, msg="forward", **tol)
    g = np.random.default_rng(9).standard_normal(out_m.shape).astype(dtype)
    out_m.backward(minicnn.tensor(g, device=device))
    out_t.backward(torch.tensor(g))
    for i, (m, t) in enumerate(zip(m_in, t_in, strict=True)):
        assert m.grad.dtype == dtype
        assert_close(m.grad, t.grad, dtype, msg=f"gradient of argument {i}", **tol)


# ---------------------------------------------------------------- linear


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("shape", [(5,), (3, 5), (2, 3, 5), (2, 1, 4, 5)])
def test_linear_matches_torch(shape, bias, dtype, backend):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(shape).astype(dtype), rng.standard_normal((4, 5)).astype(dtype)]
    if bias:
        arrays.append(rng.standard_normal(4).astype(dtype))
    _compare(F.linear, TF.linear, arrays, device_of(backend))


def test_linear_non_contiguous_input():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 3))
    w, b = rng.standard_normal((4, 5)), rng.standard_normal(4)
    _compare(lambda a, ww, bb: F.linear(a.transpose(0, 1), ww, bb),
             lambda a, ww, bb: TF.linear(a.transpose(0, 1), ww, bb), [x, w, b])


def test_linear_empty_batch():
    x = minicnn.zeros(0, 5, requires_grad=True)
    w = minicnn.randn(4, 5, requires_grad=True)
    y = F.linear(x, w)
    assert y.shape == (0, 4)
    y.sum().backward()
    assert np.all(w.grad.numpy() == 0) and x.grad.shape == (0, 5)


def test_linear_gradcheck():
    rng = np.random.default_rng(2)
    x = minicnn.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    w = minicnn.tensor(rng.standard_normal((2, 4)), requires_grad=True)
    b = minicnn.tensor(rng.standard_normal(2), requires_grad=True)
    assert minicnn.gradcheck(F.linear, [x, w, b])
    assert minicnn.gradcheck(F.linear, [x, w])


def test_linear_in_features_mismatch_names_shapes():
    with pytest.raises(ValueError, match=r"input of shape \(2, 3\) has 3 features.*weight of "
                                         r"shape \(4, 5\) expects in_features = 5"):
        F.linear(minicnn.randn(2, 3), minicnn.randn(4, 5))


def test_linear_bad_weight_bias_and_dtype():
    with pytest.raises(ValueError, match=r"weight must be 2-D.*got shape \(5,\)"):
        F.linear(minicnn.randn(2, 5), minicnn.randn(5))
    with pytest.raises(ValueError, match=r"bias must have shape \(out_features,\) = \(4,\), "
                                         r"got \(3,\)"):
        F.linear(minicnn.randn(2, 5), minicnn.randn(4, 5), minicnn.randn(3))
    with pytest.raises(TypeError, match="input float64, weight float32"):
        F.linear(minicnn.randn(2, 5, dtype=np.float64), minicnn.randn(4, 5))


# ---------------------------------------------------------------- pad

PAD_CASES = [  # (input shape, pad, mode) -- PyTorch needs 2/3-D, 3/4-D, 4/5-D input per pad size
    ((2, 3, 6), (1, 2), "constant"),
    ((2, 3, 5, 6), (1, 2, 0, 3), "constant"),
    ((2, 3, 4, 5), (2, 1, 1, 2, 1, 0), "constant"),
    ((3, 4), (-1, 2, 1, -2), "constant"),
    ((2, 3, 5, 6), (-2, -1, 3, -1), "constant"),
    ((2, 3, 6), (2, 3), "reflect"),
    ((2, 3, 5, 6), (1, 2, 3, 4), "reflect"),
    ((1, 2, 3, 4, 5), (1, 2, 2, 1, 2, 1), "reflect"),
    ((3, 6), (-1, 2), "reflect"),
    ((2, 3, 4), (-2, 2), "reflect"),  # negative padding: PyTorch mirrors the WHOLE input ...
    ((2, 3, 4), (-1, 3), "reflect"),
    ((2, 3, 5, 6), (2, -1, -1, 2), "reflect"),
    ((2, 3, 5, 6), (-3, 2, 1, -4), "replicate"),
    ((2, 3, 4), (-5, 2), "replicate"),
    ((2, 3, 4), (3, -1), "circular"),  # ... but wraps around the CROPPED one
    ((2, 3, 6), (2, 3), "replicate"),
    ((2, 3, 5, 6), (1, 4, 3, 2), "replicate"),
    ((1, 2, 3, 4, 5), (1, 2, 3, 1, 0, 2), "replicate"),
    ((2, 3, 6), (2, 3), "circular"),
    ((2, 3, 5, 6), (1, 6, 5, 2), "circular"),
    ((1, 2, 3, 4, 5), (1, 2, 3, 1, 0, 2), "circular"),
    ((2, 3, 5, 6), (-1, 2, 1, -2), "circular"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", PAD_CASES, ids=[f"{c[2]}-{c[1]}" for c in PAD_CASES])
def test_pad_matches_torch(case, dtype, backend):
    shape, pad, mode = case
    x = np.random.default_rng(3).standard_normal(shape).astype(dtype)
    _compare(lambda a: F.pad(a, pad, mode=mode), lambda a: TF.pad(a, pad, mode=mode), [x],
             device_of(backend))


def test_pad_constant_value():
    x = np.random.default_rng(4).standard_normal((2, 3, 4))
    _compare(lambda a: F.pad(a, (1, 2, 2, 0), value=-3.5),
             lambda a: TF.pad(a, (1, 2, 2, 0), value=-3.5), [x])


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_gradcheck(mode):
    x = minicnn.tensor(np.random.default_rng(5).standard_normal((1, 2, 3, 4)), requires_grad=True)
    assert minicnn.gradcheck(lambda a: F.pad(a, (2, 1, -1, 2), mode=mode), [x])


def test_pad_odd_length():
    with pytest.raises(ValueError, match="even length.*got 3 values"):
        F.pad(minicnn.randn(2, 3), (1, 2, 3))


def test_pad_more_dimensions_than_the_input():
    with pytest.raises(ValueError, match="pads 3 dimensions but the input has only 2"):
        F.pad(minicnn.randn(2, 3), (1, 1, 1, 1, 1, 1))


def test_pad_reflect_too_large_names_the_dimension():
    with pytest.raises(ValueError, match=r"reflect padding must be less than.*padding \(4, 0\) "
                                         r"for dimension 2 of size 4"):
        F.pad(minicnn.randn(1, 3, 4), (4, 0), mode="reflect")
    with pytest.raises(ValueError, match="dimension 2 of size 3"):
        F.pad(minicnn.randn(1, 1, 3, 8), (1, 1, 1, 3), mode="reflect")


def test_pad_circular_wrapping_more_than_once():
    with pytest.raises(ValueError, match=r"wrap around at most once.*\(5, 0\).*size 4 \(after "
                                         r"cropping\) of dimension 2"):
        F.pad(minicnn.randn(1, 3, 4), (5, 0), mode="circular")


def test_pad_bad_mode_value_and_types():
    with pytest.raises(ValueError, match="mode must be one of.*'wrap'"):
        F.pad(minicnn.randn(1, 3, 4), (1, 1), mode="wrap")
    with pytest.raises(ValueError, match="mode 'reflect' takes no value"):
        F.pad(minicnn.randn(1, 3, 4), (1, 1), mode="reflect", value=1.0)
    with pytest.raises(TypeError, match="pad must be a tuple of ints"):
        F.pad(minicnn.randn(1, 3, 4), (1.5, 1))


def test_pad_crop_below_zero():
    with pytest.raises(ValueError, match=r"padding \(-3, -2\) of dimension 1 \(size 4\) crops "
                                         "more than the dimension holds"):
        F.pad(minicnn.randn(3, 4), (-3, -2))
    with pytest.raises(ValueError, match=r"padding \(-5, 2\) of dimension 1 \(size 4\) crops"):
        F.pad(minicnn.randn(3, 4), (-5, 2))  # constant mode crops first, as PyTorch


# ---------------------------------------------------------------- dropout


def test_dropout_statistics_and_mask_reuse_in_backward():
    p = 0.3
    x = minicnn.ones(1000, 1000, requires_grad=True)
    y = F.dropout(x, p)
    out = y.detach().numpy()
    dropped = np.mean(out == 0)
    # 1e6 Bernoulli draws: the standard deviation of the fraction is 4.6e-4
    assert abs(dropped - p) < 3e-3, dropped
    assert abs(out.mean() - 1.0) < 5e-3  # inverted dropout keeps the mean
    kept = out[out != 0]
    np.testing.assert_allclose(kept, 1 / (1 - p), rtol=1e-6)
    g = np.random.default_rng(6).standard_normal((1000, 1000)).astype(np.float32)
    y.backward(minicnn.tensor(g))
    np.testing.assert_array_equal(x.grad.numpy(), g * out)  # the same mask, the same scale


def test_dropout_eval_and_p0_return_the_input():
    x = minicnn.randn(4, 5, requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x


def test_dropout_p1_zeroes_everything_and_the_gradient():
    x = minicnn.randn(4, 5, dtype=np.float64, requires_grad=True)
    y = F.dropout(x, 1.0)
    assert np.all(y.detach().numpy() == 0) and y.dtype == np.float64
    y.sum().backward()
    assert np.all(x.grad.numpy() == 0)


def test_dropout_same_seed_same_mask(backend):
    device = device_of(backend)
    x = minicnn.ones(50, 40, device=device)
    minicnn.manual_seed(123)
    a = F.dropout(x, 0.5).numpy()
    b = F.dropout(x, 0.5).numpy()
    minicnn.manual_seed(123)
    c = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_keeps_dtype_and_device(dtype, backend):
    x = minicnn.randn(3, 4, dtype=dtype, device=device_of(backend), requires_grad=True)
    y = F.dropout(x, 0.25)
    assert y.dtype == dtype and y.device == x.device
    y.sum().backward()
    assert x.grad.dtype == dtype


def test_dropout_gradcheck():
    x = minicnn.tensor(np.random.default_rng(7).standard_normal((3, 4)), requires_grad=True)

    def fn(a):
        minicnn.manual_seed(0)  # the same mask on every evaluation
        return F.dropout(a, 0.4)

    assert minicnn.gradcheck(fn, [x])


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_p_out_of_range(p):
    with pytest.raises(ValueError, match=rf"probability p must be in \[0, 1\], got {p}"):
        F.dropout(minicnn.randn(3), p)


def test_dropout2d_drops_whole_channels():
    x = minicnn.ones(8, 16, 5, 5, requires_grad=True)
    y = F.dropout2d(x, 0.5).detach().numpy()
    per_channel = y.reshape(8, 16, -1)
    assert np.all(per_channel.min(axis=2) == per_channel.max(axis=2))  # constant per map
    assert set(np.unique(y)) <= {0.0, 2.0} and 0 < np.mean(y == 0) < 1
    unbatched = F.dropout2d(minicnn.ones(16, 5, 5), 0.5).numpy().reshape(16, -1)
    assert np.all(unbatched.min(axis=1) == unbatched.max(axis=1))


def test_dropout1d_and_3d_shapes():
    y = F.dropout1d(minicnn.ones(4, 6, 7), 0.5).numpy()
    assert np.all(y.min(axis=2) == y.max(axis=2))
    z = F.dropout3d(minicnn.ones(2, 6, 3, 3, 3), 0.5).numpy().reshape(2, 6, -1)
    assert np.all(z.min(axis=2) == z.max(axis=2))


def test_dropout2d_bad_rank():
    with pytest.raises(ValueError, match=r"dropout2d: input must be \(N, C, H, W\) or unbatched "
                                         r"\(C, H, W\), got shape \(3, 4\)"):
        F.dropout2d(minicnn.randn(3, 4))


def test_dropout_integer_input():
    with pytest.raises(TypeError, match="floating-point tensor, got dtype int64"):
        F.dropout(minicnn.tensor([1, 2, 3]))
