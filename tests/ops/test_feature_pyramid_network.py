"""``FeaturePyramidNetwork`` and ``LastLevelMaxPool`` against torchvision.ops: the same
state_dict keys and shapes, and with torchvision's weights copied the same output maps
(and input gradients) on random inputs of odd sizes (so the top-down upsampling is not an
exact factor of 2)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torchvision import ops as tv_ops

import minicnn
from minicnn import nn
from minicnn.ops import FeaturePyramidNetwork, LastLevelMaxPool


def _pair(channels, sizes, extra, norm):
    torch.manual_seed(0)
    tv = tv_ops.FeaturePyramidNetwork(
        channels, 8, extra_blocks=tv_ops.feature_pyramid_network.LastLevelMaxPool() if extra
        else None, norm_layer=torch.nn.BatchNorm2d if norm else None).double().eval()
    ours = FeaturePyramidNetwork(channels, 8, extra_blocks=LastLevelMaxPool() if extra else None,
                                 norm_layer=nn.BatchNorm2d if norm else None)
    assert list(ours.state_dict()) == list(tv.state_dict())
    ours.load_state_dict({k: v.numpy() for k, v in tv.state_dict().items()})
    ours = ours.to(dtype=np.float64).eval()
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((2, c, h, w)) for c, (h, w) in zip(channels, sizes)]
    return ours, tv, arrays


@pytest.mark.parametrize("extra,norm", [(True, False), (False, True)])
def test_fpn_equals_torchvision(extra, norm):
    channels, sizes = [4, 6, 10], [(13, 11), (7, 6), (3, 3)]
    ours, tv, arrays = _pair(channels, sizes, extra, norm)
    xs = [minicnn.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = ours(OrderedDict((f"f{i}", x) for i, x in enumerate(xs)))
    out_t = tv(OrderedDict((f"f{i}", t) for i, t in enumerate(ts)))
    assert list(out) == list(out_t) == ["f0", "f1", "f2"] + (["pool"] if extra else [])
    for k in out:
        np.testing.assert_allclose(out[k].detach().numpy(), out_t[k].detach().numpy(), rtol=1e-10,
                                   atol=1e-10, err_msg=k)
    sum(((o * o).sum() for o in out.values()), minicnn.tensor(0.0)).backward()
    sum((o * o).sum() for o in out_t.values()).backward()
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-9)


def test_fpn_init_follows_torchvision():
    minicnn.manual_seed(0)
    fpn = FeaturePyramidNetwork([64, 128], 32)
    w = fpn.layer_blocks[0][0].weight.detach().numpy()
    bound = np.sqrt(6 / ((1 + 1) * 32 * 9))  # kaiming_uniform_(a=1): gain 1
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert (fpn.inner_blocks[1][0].bias.detach().numpy() == 0).all()


def test_fpn_bad_input():
    with pytest.raises(ValueError, match="in_channels_list"):
        FeaturePyramidNetwork([0, 4], 8)
    with pytest.raises(TypeError, match="extra_blocks"):
        FeaturePyramidNetwork([4], 8, extra_blocks=nn.ReLU())
    fpn = FeaturePyramidNetwork([4, 4], 8)
    with pytest.raises(ValueError, match="2 feature maps"):
        fpn({"0": minicnn.zeros(1, 4, 4, 4)})
