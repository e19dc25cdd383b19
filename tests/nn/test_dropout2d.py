"""Channel dropout: ``F.dropout2d`` (written in ``nn/functional/dropout.py``) and ``nn.Dropout2d``.

The mask is random, so most checks are statistical or structural rather than against
PyTorch's numbers (PyTorch draws from its own generator):

* whole (sample, channel) maps are zeroed, the others scaled by exactly 1 / (1 - p);
* the fraction dropped is p within 4.5 standard deviations, and the mean is kept;
* backward multiplies by the very mask of the forward; ``gradcheck`` with a fixed seed;
* the same seed gives the same mask, on every backend (drawn on the CPU, then moved);
* eval mode, p = 0 and p = 1 against PyTorch; the layer's repr and train/eval switch.

3-d input: minicnn treats it as unbatched ``(C, H, W)`` (as PyTorch's documentation
describes), one draw per channel. PyTorch 2.x itself still treats a 3-d input as
``(N, C, L)`` (one draw per row of each map) and warns that this will change.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minicnn
import minicnn.nn as nn
import minicnn.nn.functional as F
from tests.conftest import device_of
from tests.helpers import assert_close, to_numpy


def _maps_all_or_nothing(y: np.ndarray, x: np.ndarray, p: float) -> np.ndarray:
    """Check every (n, c) map of y is 0 or x / (1 - p); return the kept flags (N, C)."""
    planes_y = y.reshape(y.shape[0], y.shape[1], -1)
    planes_x = x.reshape(planes_y.shape)
    dropped = (planes_y == 0).all(axis=2)
    kept = np.isclose(planes_y, planes_x / (1 - p), rtol=1e-6, atol=0).all(axis=2)
    assert (dropped ^ kept).all(), "a channel is partly dropped or wrongly scaled"
    return kept


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_drops_whole_channels_with_probability_p(backend, p):
    device = device_of(backend)
    n, c = 16, 128  # 2048 independent draws
    x = np.random.default_rng(0).uniform(0.5, 1.5, (n, c, 3, 4)).astype(np.float32)
    y = F.dropout2d(minicnn.tensor(x, device=device), p)
    assert y.dtype == np.float32 and y.device == device
    kept = _maps_all_or_nothing(to_numpy(y), x, p)
    sigma = np.sqrt(p * (1 - p) / kept.size)
    assert abs((1 - kept.mean()) - p) < 4.5 * sigma
    # inverted dropout keeps the expected value: mean(y) ~ mean(x)
    ratio = to_numpy(y).mean() / x.mean()
    assert abs(ratio - 1) < 4.5 * np.sqrt(p / (1 - p) / kept.size) + 0.01


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_uses_the_forward_mask(backend, dtype):
    device = device_of(backend)
    rng = np.random.default_rng(1)
    x = rng.uniform(0.5, 1.5, (4, 16, 3, 3)).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    xt = minicnn.tensor(x, device=device, requires_grad=True)
    y = F.dropout2d(xt, 0.4)
    y.backward(minicnn.tensor(g, device=device))
    mask = to_numpy(y) / x  # 0 or 1 / 0.6 per channel
    assert_close(xt.grad, g * mask, dtype)
    assert xt.grad.dtype == dtype


def test_gradcheck_with_fixed_seed():
    x = minicnn.tensor(np.random.default_rng(2).standard_normal((2, 4, 3, 2)), requires_grad=True)

    def fn(a):
        minicnn.manual_seed(3)  # the same mask on every evaluation
        return F.dropout2d(a, 0.4)

    assert minicnn.gradcheck(fn, [x])


def test_same_seed_same_mask_on_every_backend(backend):
    x = np.random.default_rng(4).standard_normal((4, 32, 2, 2)).astype(np.float32)
    minicnn.manual_seed(7)
    with minicnn.use_backend("numpy"):
        expected = F.dropout2d(minicnn.tensor(x), 0.5).numpy()
    minicnn.manual_seed(7)
    first = to_numpy(F.dropout2d(minicnn.tensor(x, device=device_of(backend)), 0.5))
    np.testing.assert_array_equal(first, expected)
    second = to_numpy(F.dropout2d(minicnn.tensor(x, device=device_of(backend)), 0.5))
    assert not np.array_equal(first, second), "the next call must draw a new mask"


def test_non_contiguous_input(backend):
    base = np.random.default_rng(5).uniform(0.5, 1.5, (4, 16, 5, 3))
    x = minicnn.tensor(base, device=device_of(backend)).transpose(2, 3)  # (4, 16, 3, 5) view
    y = F.dropout2d(x, 0.5)
    _maps_all_or_nothing(to_numpy(y), base.transpose(0, 1, 3, 2), 0.5)


def test_unbatched_3d_input_is_c_h_w():
    x = np.random.default_rng(6).uniform(0.5, 1.5, (64, 4, 5))
    y = F.dropout2d(minicnn.tensor(x), 0.5).numpy()
    kept = _maps_all_or_nothing(y[None], x[None], 0.5)  # one draw per whole (H, W) map
    assert 0 < kept.sum() < kept.size


def test_eval_p0_p1_match_torch(backend):
    x = np.random.default_rng(8).standard_normal((2, 3, 4, 4))
    device = device_of(backend)
    for kwargs in (dict(p=0.5, training=False), dict(p=0.0), dict(p=1.0)):
        xm = minicnn.tensor(x, device=device, requires_grad=True)
        xt = torch.tensor(x, requires_grad=True)
        ym, yt = F.dropout2d(xm, **kwargs), torch.nn.functional.dropout2d(xt, **kwargs)
        assert_close(ym, yt, np.float64, msg=str(kwargs))
        (ym * 2.0).sum().backward()
        (yt * 2.0).sum().backward()
        assert_close(xm.grad, xt.grad, np.float64, msg=f"{kwargs}: grad")


def test_dropout2d_module():
    layer = nn.Dropout2d(0.3)
    assert repr(layer) == repr(torch.nn.Dropout2d(0.3))
    assert repr(nn.Dropout2d()) == repr(torch.nn.Dropout2d())
    assert repr(nn.Dropout2d(inplace=True)) == repr(torch.nn.Dropout2d(inplace=True))
    assert list(layer.parameters()) == []
    x = np.random.default_rng(9).uniform(0.5, 1.5, (8, 32, 2, 3)).astype(np.float32)
    kept = _maps_all_or_nothing(layer(minicnn.tensor(x)).numpy(), x, 0.3)
    assert 0 < kept.sum() < kept.size
    model = nn.Sequential(nn.Dropout2d(0.9))
    model.eval()
    np.testing.assert_array_equal(model(minicnn.tensor(x)).numpy(), x)
    model.train()
    assert (model(minicnn.tensor(x)).numpy() == 0).any()


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5"])
def test_dropout2d_module_bad_p(p):
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got"):
        nn.Dropout2d(p)


def test_dropout2d_bad_input():
    with pytest.raises(ValueError, match=r"dropout2d: dropout probability p must be in \[0, 1\]"):
        F.dropout2d(minicnn.ones(1, 2, 2, 2), 1.2)
    with pytest.raises(ValueError, match=r"dropout2d: input must be \(N, C, H, W\) or unbatched"):
        F.dropout2d(minicnn.ones(2, 3, 4, 5, 6))
