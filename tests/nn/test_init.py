"""nn.init: gains and fans equal torch's exactly; random fills follow the stated formulas.

Statistics are taken over 2**18 samples; the sample std of so many draws is within
~0.3% of the true one, so the tolerance of 2% (relative) never flakes with a fixed seed,
yet catches a wrong formula (a missing sqrt(3), gain or factor 2 is >= 15% off).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import minicnn
from minicnn.nn import init

N = 2**18
REL = 0.02  # relative tolerance on std and bounds (see the module docstring)

NONLINEARITIES = [
    ("linear", None), ("conv1d", None), ("conv2d", None), ("conv3d", None),
    ("conv_transpose1d", None), ("conv_transpose2d", None), ("conv_transpose3d", None),
    ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None),
    ("leaky_relu", 0.2), ("leaky_relu", 0), ("leaky_relu", math.sqrt(5)), ("selu", None),
]


@pytest.mark.parametrize("nonlinearity,param", NONLINEARITIES)
def test_calculate_gain_matches_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity, param), rel=1e-15)


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match=r"unsupported nonlinearity 'swish'.*'relu'.*'leaky_relu'"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="negative_slope True is not a valid number"):
        init.calculate_gain("leaky_relu", True)


@pytest.mark.parametrize("shape", [(10, 5), (1, 1), (64, 3, 3, 3), (32, 1, 3, 3), (16, 8, 5),
                                   (8, 4, 2, 3, 3), (7, 6, 1, 1)])
def test_fan_in_fan_out_matches_torch(shape):
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert init._calculate_fan_in_and_fan_out(minicnn.zeros(*shape)) == expected


def test_fan_needs_two_dims():
    with pytest.raises(ValueError, match=r"fewer than 2 dimensions, got shape \(5,\)"):
        init._calculate_fan_in_and_fan_out(minicnn.zeros(5))


def _bound(gain, fan):
    return math.sqrt(3.0) * gain / math.sqrt(fan)


@pytest.mark.parametrize("a,mode,nonlinearity", [
    (0, "fan_in", "leaky_relu"), (math.sqrt(5), "fan_in", "leaky_relu"),
    (0, "fan_out", "relu"), (0, "FAN_IN", "tanh"), (0.1, "fan_out", "leaky_relu"),
])
def test_kaiming_uniform_bounds_and_std(a, mode, nonlinearity):
    w = minicnn.zeros(512, 128, 2, 2)  # fan_in 512, fan_out 2048; N = 2**18 elements
    assert init.kaiming_uniform_(w, a=a, mode=mode, nonlinearity=nonlinearity) is w
    fan = 512 if mode.lower() == "fan_in" else 2048
    bound = _bound(torch.nn.init.calculate_gain(nonlinearity, a), fan)
    data = w.numpy()
    assert np.abs(data).max() <= bound
    assert np.abs(data).max() > bound * (1 - REL)  # the whole interval is used
    assert data.std() == pytest.approx(bound / math.sqrt(3), rel=REL)
    assert abs(data.mean()) < 0.01 * bound


@pytest.mark.parametrize("mode,nonlinearity", [("fan_in", "relu"), ("fan_out", "relu"),
                                               ("fan_in", "leaky_relu")])
def test_kaiming_normal_std(mode, nonlinearity):
    w = minicnn.zeros(256, 1024, dtype=np.float64)
    init.kaiming_normal_(w, mode=mode, nonlinearity=nonlinearity)
    fan = 1024 if mode == "fan_in" else 256
    std = torch.nn.init.calculate_gain(nonlinearity, 0) / math.sqrt(fan)
    assert w.dtype == np.float64
    assert w.numpy().std() == pytest.approx(std, rel=REL)
    assert abs(w.numpy().mean()) < 0.01 * std


@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_xavier_uniform_and_normal(gain):
    w = minicnn.zeros(256, 256, 2, 2)  # fan_in = fan_out = 1024
    std = gain * math.sqrt(2.0 / (1024 + 1024))
    init.xavier_uniform_(w, gain=gain)
    assert np.abs(w.numpy()).max() <= math.sqrt(3) * std
    assert w.numpy().std() == pytest.approx(std, rel=REL)
    init.xavier_normal_(w, gain=gain)
    assert w.numpy().std() == pytest.approx(std, rel=REL)


def test_uniform_normal_constant():
    t = minicnn.zeros(N)
    init.uniform_(t, -2.0, 3.0)
    d = t.numpy()
    assert d.min() >= -2.0 and d.max() < 3.0
    assert d.mean() == pytest.approx(0.5, abs=0.02)
    assert d.std() == pytest.approx(5 / math.sqrt(12), rel=REL)
    init.normal_(t, mean=1.5, std=0.5)
    assert t.numpy().mean() == pytest.approx(1.5, abs=0.01)
    assert t.numpy().std() == pytest.approx(0.5, rel=REL)
    assert (init.constant_(t, 0.25).numpy() == 0.25).all()
    assert (init.ones_(t).numpy() == 1).all()
    assert (init.zeros_(t).numpy() == 0).all()


def _truncnorm_moments(mean, std, a, b):
    """Mean and std of N(mean, std**2) conditioned on [a, b] (closed form)."""
    alpha, beta = (a - mean) / std, (b - mean) / std

    def pdf(x):
        return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)

    def cdf(x):
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))

    z = cdf(beta) - cdf(alpha)
    m = (pdf(alpha) - pdf(beta)) / z
    var = 1 + (alpha * pdf(alpha) - beta * pdf(beta)) / z - m * m
    return mean + std * m, std * math.sqrt(var)


@pytest.mark.parametrize("mean,std,a,b", [(0.0, 1.0, -2.0, 2.0), (0.0, 0.02, -0.04, 0.04),
                                          (1.0, 2.0, 0.0, 5.0), (0.0, 1.0, -0.5, 3.0)])
def test_trunc_normal_bounds_and_moments(mean, std, a, b):
    t = minicnn.zeros(N, dtype=np.float64)
    init.trunc_normal_(t, mean=mean, std=std, a=a, b=b)
    d = t.numpy()
    assert d.min() >= a and d.max() <= b
    exp_mean, exp_std = _truncnorm_moments(mean, std, a, b)
    assert d.mean() == pytest.approx(exp_mean, abs=0.01 * std)
    assert d.std() == pytest.approx(exp_std, rel=REL)


def test_trunc_normal_errors():
    t = minicnn.zeros(10)
    with pytest.raises(ValueError, match="expected a < b, got a=1, b=-1"):
        init.trunc_normal_(t, a=1, b=-1)
    with pytest.raises(ValueError, match="std must be positive"):
        init.trunc_normal_(t, std=0.0)
    with pytest.raises(ValueError, match="expected bounds near the mean"):
        init.trunc_normal_(t, a=10.0, b=11.0)


def test_eye_dirac_orthogonal():
    e = minicnn.zeros(3, 5)
    expected = torch.nn.init.eye_(torch.empty(3, 5)).numpy()
    np.testing.assert_array_equal(init.eye_(e).numpy(), expected)
    cases = [((4, 4, 3, 3), 1), ((6, 3, 3, 3), 2), ((3, 5, 3), 1), ((4, 2, 3, 3, 3), 2)]
    for shape, groups in cases:
        d = init.dirac_(minicnn.ones(*shape), groups=groups)
        expected = torch.nn.init.dirac_(torch.ones(shape), groups=groups)
        np.testing.assert_array_equal(d.numpy(), expected.numpy())
    for shape in [(8, 20), (20, 8), (6, 2, 3, 3)]:
        q = init.orthogonal_(minicnn.zeros(*shape, dtype=np.float64), gain=2.0).numpy()
        q = q.reshape(shape[0], -1)
        small = min(q.shape)
        gram = q @ q.T if q.shape[0] == small else q.T @ q
        np.testing.assert_allclose(gram, 4.0 * np.eye(small), atol=1e-12)
    with pytest.raises(ValueError, match="2-D"):
        init.eye_(minicnn.zeros(2, 2, 2))
    with pytest.raises(ValueError, match="3, 4 or 5-D"):
        init.dirac_(minicnn.zeros(2, 2))


def test_bad_mode_and_nonlinearity_list_choices():
    w = minicnn.zeros(4, 4)
    with pytest.raises(ValueError, match=r"mode 'fan_middle' not supported.*'fan_in', 'fan_out'"):
        init.kaiming_uniform_(w, mode="fan_middle")
    with pytest.raises(ValueError, match=r"unsupported nonlinearity 'swish'.*'relu'"):
        init.kaiming_normal_(w, nonlinearity="swish")
    with pytest.raises(TypeError, match="expects a minicnn Tensor, got ndarray"):
        init.uniform_(np.zeros(3))


def test_fills_in_place_without_graph_and_reproducibly():
    from minicnn.nn import Parameter

    p = Parameter(minicnn.zeros(8, 4))
    data = p.array
    minicnn.manual_seed(3)
    init.kaiming_uniform_(p, a=math.sqrt(5))
    assert p.array is data and p.is_leaf and p.requires_grad and p.grad is None
    first = p.detach().numpy().copy()
    minicnn.manual_seed(3)
    init.kaiming_uniform_(p, a=math.sqrt(5))
    np.testing.assert_array_equal(p.detach().numpy(), first)
    gen = np.random.default_rng(1)
    init.normal_(p, generator=gen)
    again = minicnn.zeros(8, 4)
    init.normal_(again, generator=np.random.default_rng(1))
    np.testing.assert_array_equal(p.detach().numpy(), again.numpy())


def test_zero_element_tensor_is_a_no_op_with_warning():
    w = minicnn.zeros(0, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert init.kaiming_uniform_(w) is w
    assert any("zero-element" in str(c.message) for c in caught)


@pytest.mark.parametrize("fill,draw", [
    (init.uniform_, lambda g, n: g.uniform(-0.3, 0.7, size=n)),
    (init.normal_, lambda g, n: g.normal(-0.3, 0.7, size=n)),
])
def test_big_fills_draw_in_pieces_the_same_values(monkeypatch, fill, draw):
    """A big tensor is filled a piece at a time, with the values of one single draw."""
    from minicnn.nn.modules import init as init_module

    monkeypatch.setattr(init_module, "_DRAW_CHUNK", 64)  # 1000 = 15 pieces of 64 and one of 40
    t = minicnn.zeros(40, 25)
    fill(t, -0.3, 0.7, generator=np.random.default_rng(5))
    expected = draw(np.random.default_rng(5), 1000).astype(np.float32).reshape(40, 25)
    np.testing.assert_array_equal(t.numpy(), expected)
    strided = minicnn.zeros(25, 40).permute(1, 0)  # not contiguous: one draw, then a copy
    fill(strided, -0.3, 0.7, generator=np.random.default_rng(5))
    np.testing.assert_array_equal(strided.numpy(), expected)
