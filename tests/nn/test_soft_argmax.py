"""``F.soft_argmax`` against a PyTorch transcription of its definition (forward and
gradient, float32 and float64, every backend), finite differences in float64 (gradcheck,
every backend), the keypoint of a Gaussian heatmap read back, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minicnn
import minicnn.nn.functional as F
from minicnn.data.landmarks import gaussian_heatmaps
from tests.conftest import device_of
from tests.helpers import assert_close


def torch_soft_argmax(s: torch.Tensor, beta: float) -> torch.Tensor:
    """``(*, H, W) -> (*, 2)``: the expected pixel centre under softmax(beta s)."""
    *lead, h, w = s.shape
    p = torch.softmax(beta * s.reshape(*lead, h * w), -1).reshape(*lead, h, w)
    xs = torch.arange(w, dtype=s.dtype) + 0.5
    ys = torch.arange(h, dtype=s.dtype) + 0.5
    return torch.stack([(p * xs).sum((-2, -1)), (p * ys[:, None]).sum((-2, -1))], -1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape", "beta"), [((2, 3, 7, 5), 1.0), ((4, 6), 3.5),
                                             ((2, 1, 1, 9), 0.5)])
def test_soft_argmax_matches_torch(backend, shape, beta, dtype):
    rng = np.random.default_rng(0)
    s = (3 * rng.standard_normal(shape)).astype(dtype)
    g = rng.standard_normal((*shape[:-2], 2)).astype(dtype)
    ours = minicnn.tensor(s, requires_grad=True, device=device_of(backend))
    theirs = torch.tensor(s, requires_grad=True)
    out, ref = F.soft_argmax(ours, beta), torch_soft_argmax(theirs, beta)
    assert out.shape == tuple(ref.shape)
    assert_close(out, ref, dtype, msg="forward")
    (out * minicnn.tensor(g, device=device_of(backend))).sum().backward()
    (ref * torch.tensor(g)).sum().backward()
    assert_close(ours.grad, theirs.grad, dtype, msg="gradient")


@pytest.mark.parametrize("beta", [0.7, 4.0])
def test_soft_argmax_gradcheck(backend, beta):
    rng = np.random.default_rng(1)
    s = minicnn.tensor(rng.standard_normal((2, 3, 4, 5)), requires_grad=True,
                       device=device_of(backend))
    assert minicnn.gradcheck(lambda a: F.soft_argmax(a, beta), [s])


def test_soft_argmax_of_a_log_gaussian_is_its_centre():
    """softmax(log heatmap) is the sampled Gaussian, normalized: its mean is the keypoint
    (up to the tails the image cuts off)."""
    rng = np.random.default_rng(2)
    kp = np.stack([rng.uniform(8, 24, 6), rng.uniform(8, 24, 6)], 1)
    log_hm = np.log(np.maximum(gaussian_heatmaps(kp, 32, sigma=1.5), 1e-30).astype(np.float64))
    np.testing.assert_allclose(F.soft_argmax(minicnn.tensor(log_hm)).numpy(), kp, atol=1e-4)
    # beta -> infinity: the argmax pixel's centre
    hm = gaussian_heatmaps(kp, 32, sigma=1.5)
    hard = F.soft_argmax(minicnn.tensor(hm.astype(np.float64)), beta=1e4).numpy()
    np.testing.assert_allclose(hard, np.floor(kp) + 0.5, atol=1e-6)


def test_soft_argmax_bad_input():
    with pytest.raises(ValueError, match=r"\(\*, H, W\) scores with H, W >= 1, got shape \(5,\)"):
        F.soft_argmax(minicnn.tensor(np.zeros(5)))
    with pytest.raises(ValueError, match="beta must be positive, got 0"):
        F.soft_argmax(minicnn.tensor(np.zeros((2, 2))), beta=0)
    with pytest.raises(TypeError, match="input must be a minicnn Tensor, got ndarray"):
        F.soft_argmax(np.zeros((2, 2)))
