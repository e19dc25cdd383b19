"""StochasticDepth (torchvision.ops naming): identity in eval mode and for p = 0; in training
each row (or the whole batch) is dropped with probability p and otherwise scaled by
1 / (1 - p); draws come from minicnn's seeded generator; the backward uses the same mask."""

from __future__ import annotations

import numpy as np
import pytest
import torchvision

import minicnn
from minicnn import nn
from tests.conftest import device_of


def _input(backend, shape, dtype=np.float32, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype) + 3.0  # no zeros
    return minicnn.tensor(x, device=device_of(backend), requires_grad=True)


def _numpy(t):
    return minicnn.backend.to_device(t.detach().array, "cpu")


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_identity_in_eval_mode_and_for_p0(backend, mode):
    x = _input(backend, (4, 3, 2, 2))
    assert nn.StochasticDepth(0.5, mode).eval()(x) is x
    assert nn.StochasticDepth(0.0, mode).train()(x) is x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.2, 0.5])
def test_row_mode_drops_whole_samples_and_rescales(backend, p, dtype):
    """Each sample is either all zero or ``x / (1 - p)``; the gradient is the same mask."""
    minicnn.manual_seed(0)
    x = _input(backend, (64, 3, 2, 2), dtype)
    y = nn.StochasticDepth(p, "row")(x)
    assert y.dtype == dtype and y.shape == x.shape
    scale = _numpy(y) / _numpy(x)  # per element: 0 or 1 / (1 - p)
    per_row = scale.reshape(64, -1)
    np.testing.assert_allclose(per_row, per_row[:, :1] + 0 * per_row, rtol=1e-6)  # per sample
    kept = np.isclose(per_row[:, 0], 1 / (1 - p), rtol=1e-6)
    assert np.all(kept | (per_row[:, 0] == 0)) and 0 < kept.sum() < 64
    g = np.random.default_rng(1).standard_normal(x.shape).astype(dtype)
    (y * minicnn.tensor(g, device=x.device)).sum().backward()
    np.testing.assert_allclose(_numpy(x.grad), g * scale, rtol=1e-6)


def test_batch_mode_drops_the_whole_batch_or_nothing(backend):
    minicnn.manual_seed(0)
    layer = nn.StochasticDepth(0.5, "batch")
    x = _input(backend, (8, 2, 3))
    outcomes = set()
    for _ in range(20):
        scale = np.unique(np.round(_numpy(layer(x)) / _numpy(x), 5))
        assert len(scale) == 1
        outcomes.add(float(scale[0]))
    assert outcomes == {0.0, 2.0}


def test_drop_rate_and_seed():
    """About ``p`` of 20000 rows are dropped (binomial: 5 standard deviations), and the same
    seed gives the same mask."""
    p, n = 0.3, 20000
    x = minicnn.ones((n, 1))
    minicnn.manual_seed(3)
    y1 = nn.StochasticDepth(p, "row")(x).numpy()
    minicnn.manual_seed(3)
    y2 = nn.StochasticDepth(p, "row")(x).numpy()
    np.testing.assert_array_equal(y1, y2)
    dropped = (y1 == 0).mean()
    assert abs(dropped - p) < 5 * np.sqrt(p * (1 - p) / n)
    assert np.isclose(y1.mean(), 1.0, atol=5 * np.sqrt(p / (1 - p) / n))  # unbiased


def test_p1_drops_everything():
    y = nn.StochasticDepth(1.0, "row")(minicnn.ones((3, 2)))
    assert np.all(y.numpy() == 0)


def test_repr_and_defaults_match_torchvision():
    assert repr(nn.StochasticDepth(0.2, "row")) == repr(torchvision.ops.StochasticDepth(0.2, "row"))


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5", True])
def test_bad_p(p):
    with pytest.raises(ValueError, match="StochasticDepth: drop probability p has to be"):
        nn.StochasticDepth(p, "row")


def test_bad_mode():
    with pytest.raises(ValueError, match="StochasticDepth: mode has to be either 'batch' or "
                                         "'row', but got 'rows'"):
        nn.StochasticDepth(0.1, "rows")
