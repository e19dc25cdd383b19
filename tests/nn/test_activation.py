"""Activation functions against PyTorch: values, gradients, the kinks, gradcheck, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import minicnn
import minicnn.nn.functional as F
from minicnn.backend import get_backend, reference
from tests.conftest import AVAILABLE_BACKENDS, device_of
from tests.helpers import assert_close, to_numpy

# (id, minicnn function, torch function): the keyword arguments are part of the case
CASES = [
    ("leaky_relu", F.leaky_relu, TF.leaky_relu),
    ("leaky_relu_0.2", lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    ("relu6", F.relu6, TF.relu6),
    ("hardtanh", lambda x: F.hardtanh(x, -2.0, 1.5), lambda x: TF.hardtanh(x, -2.0, 1.5)),
    ("elu", F.elu, TF.elu),
    ("elu_alpha2", lambda x: F.elu(x, alpha=2.0), lambda x: TF.elu(x, alpha=2.0)),
    ("gelu", F.gelu, TF.gelu),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"),
     lambda x: TF.gelu(x, approximate="tanh")),
    ("silu", F.silu, TF.silu),
    ("hardswish", F.hardswish, TF.hardswish),
    ("hardsigmoid", F.hardsigmoid, TF.hardsigmoid),
    ("softplus", F.softplus, TF.softplus),
    ("softplus_beta", lambda x: F.softplus(x, beta=2.0, threshold=5.0),
     lambda x: TF.softplus(x, beta=2.0, threshold=5.0)),
    ("relu", F.relu, TF.relu),
    ("sigmoid", F.sigmoid, torch.sigmoid),
    ("tanh", F.tanh, torch.tanh),
]
IDS = [c[0] for c in CASES]

# Kinks (where the derivative jumps) of each case; gradcheck inputs stay 0.05 away from them.
KINKS = {
    "leaky_relu": [0.0], "leaky_relu_0.2": [0.0], "relu6": [0.0, 6.0], "hardtanh": [-2.0, 1.5],
    "hardswish": [-3.0, 3.0], "hardsigmoid": [-3.0, 3.0], "relu": [0.0],
    "softplus_beta": [2.5],  # the threshold: beta * x = 5 switches to the identity
}


def _compare(m_fn, t_fn, x: np.ndarray, device: str, name: str, **tol):
    m = minicnn.tensor(x, device=device, requires_grad=True)
    t = torch.tensor(x, requires_grad=True)
    out_m, out_t = m_fn(m), t_fn(t)
    assert out_m.dtype == x.dtype and out_m.shape == tuple(out_t.shape), name
    assert_close(out_m, out_t, x.dtype, msg=f"{name} forward", **tol)
    g = np.random.default_rng(1).standard_normal(x.shape).astype(x.dtype)
    out_m.backward(minicnn.tensor(g, device=device))
    out_t.backward(torch.tensor(g))
    assert m.grad.dtype == x.dtype
    assert_close(m.grad, t.grad, x.dtype, msg=f"{name} backward", **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(), (7,), (2, 3, 4, 5)])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_torch(case, shape, dtype, backend):
    name, m_fn, t_fn = case
    x = (np.random.default_rng(0).standard_normal(shape) * 4).astype(dtype)
    tol = {}
    if name == "hardsigmoid" and dtype == np.float64:
        # PyTorch's float64 hardsigmoid backward multiplies by float32(1/6) (relative error
        # 3e-8); minicnn uses the exact 1/6.
        tol = {"rtol": 1e-7}
    _compare(m_fn, t_fn, x, device_of(backend), name, **tol)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_kinks_and_extremes_match_torch(case):
    """The gradient AT the kinks follows PyTorch's convention; huge inputs stay finite."""
    name, m_fn, t_fn = case
    points = [-1000.0, -20.0, -3.0, -1.0, -0.0, 0.0, 1.0, 1.5, 2.5, 3.0, 6.0, 20.0, 20.5, 1000.0]
    x = np.array(points + [k for k in KINKS.get(name, [])], dtype=np.float64)
    tol = {"rtol": 1e-7} if name == "hardsigmoid" else {}  # float32(1/6): see above
    _compare(m_fn, t_fn, x, "cpu", name, **tol)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck(case):
    name, m_fn, _ = case
    x = np.random.default_rng(2).uniform(-7, 7, size=(3, 5))
    for k in KINKS.get(name, []):  # move points within 0.05 of a kink away from it
        near = np.abs(x - k) < 0.05
        x[near] = k + 0.1 * np.sign(x[near] - k + 1e-12)
    xt = minicnn.tensor(x, requires_grad=True)
    assert minicnn.gradcheck(m_fn, [xt], eps=1e-6, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("fn", [F.gelu, F.silu, F.softplus, F.elu],
                         ids=["gelu", "silu", "softplus", "elu"])
def test_no_overflow_warnings_on_huge_inputs(fn):
    x = minicnn.tensor(np.array([-1e30, -1e4, 1e4, 1e30]), requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = fn(x)
        y.sum().backward()
    assert np.isfinite(y.detach().numpy()).all() and np.isfinite(x.grad.numpy()).all()


def test_gelu_exact_differs_from_tanh_and_matches_erf_formula():
    x = np.linspace(-6, 6, 1001)
    expected = [v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x]
    assert_close(F.gelu(minicnn.tensor(x)), np.array(expected), np.float64, rtol=1e-14,
                 atol=1e-15)
    gap = np.abs(F.gelu(minicnn.tensor(x)).numpy() - F.gelu(minicnn.tensor(x), "tanh").numpy())
    assert gap.max() > 1e-4  # the two are different functions


# ---------------------------------------------------------------- the erf kernel


def _erf_points() -> np.ndarray:
    tiny = np.geomspace(1e-300, 1e-2, 400)
    return np.concatenate([
        np.linspace(-7, 7, 20000), tiny, -tiny, [0.0, 0.46875, 4.0, -4.0, 26.0, 27.5, 40.0, 1e300],
    ])


def test_reference_erf_is_accurate_to_float64():
    x = _erf_points()
    expected = np.array([math.erf(v) for v in x])
    got = reference.erf(x)
    rel = np.abs(got - expected) / np.maximum(np.abs(expected), 1e-300)
    assert rel.max() < 2e-15, f"max relative error {rel.max():.3g} at x = {x[rel.argmax()]}"


def test_reference_erf_float32_special_values_and_sign():
    x32 = np.linspace(-9, 9, 4001).astype(np.float32)
    got = reference.erf(x32)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [math.erf(v) for v in x32.astype(np.float64)], atol=3e-7)
    special = reference.erf(np.array([np.inf, -np.inf, np.nan, -0.0]))
    assert special[0] == 1 and special[1] == -1 and np.isnan(special[2])
    assert special[3] == 0 and np.signbit(special[3])


@pytest.mark.parametrize("name", [b for b in AVAILABLE_BACKENDS if b != "numpy"])
def test_backend_erf_matches_reference(name):
    b = get_backend(name)
    x = _erf_points().reshape(-1, 2)[:, ::-1]  # non-contiguous
    got = to_numpy(b.erf(b.xp.asarray(x) if name == "cupy" else x))
    np.testing.assert_allclose(got, reference.erf(x), rtol=1e-14, atol=1e-300)
    x32 = np.clip(x, -1e30, 1e30).astype(np.float32)
    got32 = to_numpy(b.erf(b.xp.asarray(x32) if name == "cupy" else x32))
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, reference.erf(x32), rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- bad input


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'.*'fast'"):
        F.gelu(minicnn.randn(3), approximate="fast")


@pytest.mark.parametrize("fn", [F.leaky_relu, F.relu6, F.elu, F.gelu, F.silu, F.hardswish,
                                F.hardsigmoid, F.softplus, F.hardtanh])
def test_integer_input_is_rejected(fn):
    with pytest.raises(TypeError, match="floating-point.*int64"):
        fn(minicnn.tensor([1, 2, 3]))


def test_non_tensor_input_is_rejected():
    with pytest.raises(TypeError, match="input must be a Tensor, got list"):
        F.elu([1.0, 2.0])


def test_hardtanh_rejects_min_above_max():
    with pytest.raises(ValueError, match=r"min_val \(2.0\) must not exceed max_val \(1.0\)"):
        F.hardtanh(minicnn.randn(3), 2.0, 1.0)


def test_softplus_rejects_zero_beta():
    with pytest.raises(ValueError, match="beta must be non-zero"):
        F.softplus(minicnn.randn(3), beta=0)
