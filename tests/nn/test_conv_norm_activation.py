"""Conv2dNormActivation against torchvision.ops.Conv2dNormActivation: the same children,
state_dict keys and shapes, padding / bias rules, and outputs and gradients (float32,
tests/helpers.py tolerances) in training and eval mode."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch
import torchvision

import minicnn
from minicnn import nn
from tests.helpers import assert_close
from tests.models.harness import key_shapes

CASES = [  # (args, minicnn kwargs, torch kwargs)
    ((4, 6), {}, {}),
    ((4, 6, 3, 2), {"activation_layer": nn.Hardswish},
     {"activation_layer": torch.nn.Hardswish}),
    ((6, 6, 5), {"groups": 6, "norm_layer": partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)},
     {"groups": 6, "norm_layer": partial(torch.nn.BatchNorm2d, eps=1e-3, momentum=0.01)}),
    ((4, 8, 1), {"activation_layer": None}, {"activation_layer": None}),
    ((4, 8, 3), {"norm_layer": None, "activation_layer": nn.SiLU},
     {"norm_layer": None, "activation_layer": torch.nn.SiLU}),
    ((4, 4, 3), {"dilation": 2, "activation_layer": nn.ReLU6},
     {"dilation": 2, "activation_layer": torch.nn.ReLU6}),
]


@pytest.mark.parametrize("args, kw, tkw", CASES)
def test_matches_torchvision(args, kw, tkw):
    torch.manual_seed(0)
    tv = torchvision.ops.Conv2dNormActivation(*args, **tkw)
    m = nn.Conv2dNormActivation(*args, **kw)
    assert [type(c).__name__ for c in m] == [type(c).__name__ for c in tv]
    assert key_shapes(m.state_dict()) == key_shapes(tv.state_dict())
    assert m[0].padding == tv[0].padding and (m[0].bias is None) == (tv[0].bias is None)
    assert m.out_channels == tv.out_channels
    m.load_state_dict({k: v.numpy() for k, v in tv.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, args[0], 9, 9)).astype(np.float32)
    for training in (True, False):
        tv.train(training)
        m.train(training)
        xm = minicnn.tensor(x, requires_grad=True)
        xt = torch.tensor(x, requires_grad=True)
        ym, yt = m(xm), tv(xt)
        assert_close(ym.detach(), yt)
        ym.sum().backward()
        yt.sum().backward()
        assert_close(xm.grad, xt.grad, rtol=1e-4, atol=1e-4)  # BN backward sums 162 terms


def test_bad_kernel_size():
    with pytest.raises(ValueError, match="kernel_size must be a positive int, got 0"):
        nn.Conv2dNormActivation(3, 4, kernel_size=0)
