"""SqueezeExcitation (against torchvision.ops.SqueezeExcitation) and SE-ResNet (senet.py).

Tolerances: float32 rtol 1e-4 / atol 1e-5 (tests/helpers.py) for the block, float64
gradcheck; the networks as in tests/models/harness.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

import minicnn
from minicnn import models, nn
from minicnn.models import senet
from tests.helpers import assert_close
from tests.models import torch_references as ref
from tests.models.harness import (
    compare_with_torchvision,
    count_params,
    key_shapes,
    mult_adds,
    one_step_lowers_loss,
    published,
)

slow = pytest.mark.slow

# Hu et al. 2018, "Squeeze-and-Excitation Networks" (TPAMI / arXiv:1709.01507v4), Table 10
# (reduction ratio ablation): SE-ResNet-50 with r = 16 has 28.1M parameters; Sec. 4 puts
# the addition at ~2.5M over ResNet-50's ~25M. (ResNet-50 itself: 25,557,032.)
SE_RESNET50_PAPER_PARAMS = 28.1e6


def _copy_to_minicnn(tv_module, module):
    module.load_state_dict({k: v.detach().numpy() for k, v in tv_module.state_dict().items()})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels, squeeze, shape", [(8, 2, (2, 8, 5, 5)), (16, 4, (1, 16, 3, 7))])
def test_squeeze_excitation_matches_torchvision(dtype, channels, squeeze, shape):
    torch.manual_seed(0)
    tv = torchvision.ops.SqueezeExcitation(channels, squeeze)
    tv = tv.to(getattr(torch, np.dtype(dtype).name))
    se = nn.SqueezeExcitation(channels, squeeze).to(dtype)
    assert key_shapes(se.state_dict()) == key_shapes(tv.state_dict())
    _copy_to_minicnn(tv, se)
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    xm, xt = minicnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ym, yt = se(xm), tv(xt)
    assert_close(ym, yt, dtype)
    g = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    (ym * minicnn.tensor(g)).sum().backward()
    (yt * torch.tensor(g)).sum().backward()
    assert_close(xm.grad, xt.grad, dtype)
    params = dict(se.named_parameters())
    for name, p in tv.named_parameters():
        assert_close(params[name].grad, p.grad, dtype, msg=name)


def test_squeeze_excitation_other_activations_and_gradcheck():
    se = nn.SqueezeExcitation(6, 3, activation=nn.SiLU, scale_activation=nn.Hardsigmoid).double()
    assert isinstance(se.activation, nn.SiLU) and isinstance(se.scale_activation, nn.Hardsigmoid)
    x = minicnn.randn((2, 6, 4, 4), dtype=np.float64, requires_grad=True)
    assert minicnn.gradcheck(lambda x, *p: se(x), [x, *se.parameters()])


def test_squeeze_excitation_errors():
    se = nn.SqueezeExcitation(8, 2)
    with pytest.raises(ValueError, match=r"SqueezeExcitation expects input \(N, 8, H, W\), "
                                         r"got shape \(2, 4, 3, 3\)"):
        se(minicnn.zeros((2, 4, 3, 3)))
    with pytest.raises(ValueError, match="squeeze_channels must be a positive int, got 0"):
        nn.SqueezeExcitation(8, 0)


def test_se_resnet50_params_match_paper():
    model = models.se_resnet50()
    n = count_params(model)
    se = sum(count_params(m) for m in model.modules() if isinstance(m, nn.SqueezeExcitation))
    assert n - se == published("resnet50")["num_params"]  # the rest is exactly ResNet-50
    assert n == 28_088_024 and round(n / 1e6, 1) == SE_RESNET50_PAPER_PARAMS / 1e6
    with torch.device("meta"):
        tv = ref.se_resnet((3, 4, 6, 3))
    assert key_shapes(model.state_dict()) == key_shapes(tv.state_dict())


def test_se_resnet50_matches_pytorch_reference(tmp_path):
    """torchvision's ResNet + torchvision.ops.SqueezeExcitation as the reference."""
    compare_with_torchvision("se_resnet50", (3, 32, 32), tmp_path=tmp_path, num_classes=10,
                             batch_size=4,
                             reference=lambda num_classes: ref.se_resnet((3, 4, 6, 3),
                                                                         num_classes))


@slow
def test_se_resnet50_output_and_mult_adds_at_224():
    """(1, 1000) at the paper's 224x224; the SE blocks add 0.1% to ResNet-50's multiply-adds
    (paper, Table 2: 3.86 -> 3.87 GFLOPs with the stride on the first 1x1; here, with the
    stride on the 3x3 as torchvision, 4.089 -> 4.09)."""
    measured = mult_adds(models.se_resnet50()) / 1e9
    base = published("resnet50")["_ops"]
    assert base < measured < base * 1.005


def test_se_bottleneck_gradcheck():
    downsample = nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), nn.BatchNorm2d(16))
    block = senet.SEBottleneck(8, 4, 2, downsample).double().train()
    assert block.se.fc1.out_channels == 1  # 16 / 16
    x = minicnn.randn((2, 8, 5, 5), dtype=np.float64, requires_grad=True)
    assert minicnn.gradcheck(lambda x, *p: block(x), [x, *block.parameters()],
                             mode="directional", atol=1e-6, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["se_resnet50", "se_resnet101", "se_resnet152"])
def test_one_training_step_lowers_loss(name):
    """As tests/models/test_resnet.py: 64x64 images, batch 4, lr 0.005, numba backend."""
    one_step_lowers_loss(getattr(models, name)(num_classes=10), (3, 64, 64), 10, lr=0.005)


def test_bad_input_errors():
    model = models.se_resnet50(num_classes=10)
    with pytest.raises(ValueError, match=r"se_resnet50 expects input \(N, 3, H, W\) with "
                                         r"H, W >= 32, got \(1, 3, 31, 64\)"):
        model(minicnn.zeros((1, 3, 31, 64)))
