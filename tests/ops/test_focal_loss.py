"""minicnn.ops.sigmoid_focal_loss against torchvision.ops.sigmoid_focal_loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

import minicnn
from minicnn import ops
from tests.helpers import assert_close, pair


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("alpha,gamma", [(0.25, 2), (-1, 0), (0.5, 1.5)])
def test_forward_and_gradient_equal_torchvision(reduction, alpha, gamma):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6)) * 3
    y = (rng.uniform(size=(4, 6)) > 0.7).astype(np.float64)
    m, t = pair(x)
    ours = ops.sigmoid_focal_loss(m, minicnn.tensor(y, dtype=np.float64), alpha, gamma, reduction)
    theirs = torchvision.ops.sigmoid_focal_loss(t, torch.tensor(y), alpha, gamma, reduction)
    assert_close(ours, theirs)
    w = rng.standard_normal(tuple(theirs.shape))
    (ours * minicnn.tensor(w, dtype=np.float64)).sum().backward()
    (theirs * torch.tensor(w)).sum().backward()
    assert_close(m.grad, t.grad)


def test_bad_input_names_the_argument():
    x = minicnn.zeros(3, 2)
    with pytest.raises(ValueError, match="reduction must be one of"):
        ops.sigmoid_focal_loss(x, x, reduction="avg")
    with pytest.raises(ValueError, match="targets must have the shape of inputs"):
        ops.sigmoid_focal_loss(x, minicnn.zeros(3))
