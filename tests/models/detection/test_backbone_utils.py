"""The FPN backbones against torchvision's ``backbone_utils``: the same state_dict keys and
shapes, the same frozen parameters for every ``trainable_layers``, and with the weights
copied the same feature maps; ``FrozenBatchNorm2d`` against torchvision.ops'."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.models.detection import backbone_utils as tv_bu
from torchvision.ops import misc as tv_misc

import minicnn
from minicnn import nn
from minicnn.models.detection.backbone_utils import mobilenet_backbone, resnet_fpn_backbone
from minicnn.ops import FrozenBatchNorm2d
from tests.models.harness import key_shapes


def _trainable(model) -> list[str]:
    return [k for k, p in model.named_parameters() if p.requires_grad]


def test_frozen_batchnorm_equals_torchvision():
    rng = np.random.default_rng(0)
    tv = tv_misc.FrozenBatchNorm2d(5)
    for name in ("weight", "bias", "running_mean"):
        getattr(tv, name).copy_(torch.tensor(rng.standard_normal(5)))
    tv.running_var.copy_(torch.tensor(rng.uniform(0.5, 2, 5)))
    ours = FrozenBatchNorm2d(5)
    assert list(ours.state_dict()) == list(tv.state_dict())
    assert not list(ours.parameters())
    ours.load_state_dict({k: v.numpy() for k, v in tv.state_dict().items()})
    x = rng.standard_normal((2, 5, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(ours(minicnn.tensor(x)).numpy(), tv(torch.tensor(x)).numpy(),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(N, 5, H, W\)"):
        ours(minicnn.zeros(1, 4, 2, 2))


@pytest.mark.parametrize("trainable", [0, 3, 5])
def test_resnet_fpn_backbone_keys_freezing_and_maps(trainable):
    torch.manual_seed(0)
    tv = tv_bu.resnet_fpn_backbone(backbone_name="resnet18", weights=None,
                                   norm_layer=torch.nn.BatchNorm2d, trainable_layers=trainable)
    ours = resnet_fpn_backbone(backbone_name="resnet18", norm_layer=nn.BatchNorm2d,
                               trainable_layers=trainable)
    assert key_shapes(ours.state_dict()) == key_shapes(tv.state_dict())
    assert _trainable(ours) == [k for k, p in tv.named_parameters() if p.requires_grad]
    assert ours.out_channels == tv.out_channels == 256
    if trainable != 3:  # the maps do not depend on the freezing: compare them once
        return
    ours.load_state_dict({k: v.numpy() for k, v in tv.state_dict().items()})
    ours.eval(), tv.eval()
    x = np.random.default_rng(1).standard_normal((1, 3, 64, 48)).astype(np.float32)
    out, out_t = ours(minicnn.tensor(x)), tv(torch.tensor(x))
    assert list(out) == list(out_t) == ["0", "1", "2", "3", "pool"]
    for k in out:
        np.testing.assert_allclose(out[k].detach().numpy(), out_t[k].detach().numpy(),
                                   rtol=1e-4, atol=1e-4, err_msg=k)


def test_resnet50_fpn_backbone_default_frozen_bn_keys():
    tv = tv_bu.resnet_fpn_backbone(backbone_name="resnet50", weights=None)
    ours = resnet_fpn_backbone(backbone_name="resnet50")
    assert key_shapes(ours.state_dict()) == key_shapes(tv.state_dict())
    assert _trainable(ours) == [k for k, p in tv.named_parameters() if p.requires_grad]


@pytest.mark.parametrize("fpn,trainable", [(True, 3), (True, 6), (False, 0)])
def test_mobilenet_backbone_keys_freezing_and_maps(fpn, trainable):
    torch.manual_seed(0)
    tv = tv_bu.mobilenet_backbone(backbone_name="mobilenet_v3_large", weights=None, fpn=fpn,
                                  norm_layer=torch.nn.BatchNorm2d, trainable_layers=trainable)
    ours = mobilenet_backbone(backbone_name="mobilenet_v3_large", fpn=fpn,
                              norm_layer=nn.BatchNorm2d, trainable_layers=trainable)
    assert key_shapes(ours.state_dict()) == key_shapes(tv.state_dict())
    assert _trainable(ours) == [k for k, p in tv.named_parameters() if p.requires_grad]
    if not fpn or trainable != 3:
        return
    ours.load_state_dict({k: v.numpy() for k, v in tv.state_dict().items()})
    ours.eval(), tv.eval()
    x = np.random.default_rng(1).standard_normal((1, 3, 64, 64)).astype(np.float32)
    out, out_t = ours(minicnn.tensor(x)), tv(torch.tensor(x))
    assert list(out) == list(out_t) == ["0", "1", "pool"]
    for k in out:
        np.testing.assert_allclose(out[k].detach().numpy(), out_t[k].detach().numpy(),
                                   rtol=1e-4, atol=1e-4, err_msg=k)


def test_backbone_bad_arguments():
    with pytest.raises(ValueError, match="backbone_name"):
        resnet_fpn_backbone(backbone_name="vgg16")
    with pytest.raises(ValueError, match="trainable_layers"):
        resnet_fpn_backbone(backbone_name="resnet18", trainable_layers=6)
    with pytest.raises(ValueError, match="returned_layers"):
        resnet_fpn_backbone(backbone_name="resnet18", returned_layers=[0, 1])


def test_overwrite_eps_sets_frozen_batchnorm_eps():
    from minicnn.models.detection._utils import overwrite_eps

    backbone = resnet_fpn_backbone(backbone_name="resnet18")  # FrozenBatchNorm2d by default
    overwrite_eps(backbone, 0.0)
    frozen = [m for m in backbone.modules() if isinstance(m, FrozenBatchNorm2d)]
    assert len(frozen) == 20 and all(m.eps == 0.0 for m in frozen)
    x = minicnn.tensor(np.ones((1, 3, 2, 2), np.float32))
    bn = FrozenBatchNorm2d(3, eps=0.0)
    np.testing.assert_allclose(bn(x).numpy(), 1.0)  # (1 - 0) / sqrt(1 + 0) * 1 + 0
