"""CIFAR ResNets, plain nets and CIFAR pre-activation ResNets (cifar_resnet.py).

torchvision lacks them, so: parameter counts against the papers' published figures,
output shapes at the paper's 32x32, outputs and gradients against an independent PyTorch
version (tests/models/torch_references.py) through the safetensors path (tolerances as
in tests/models/harness.py), float64 gradchecks of the blocks, one training step.
"""

from __future__ import annotations

import numpy as np
import pytest

import minicnn
from minicnn import models
from minicnn.models import cifar_resnet
from minicnn.models.resnet import BasicBlock
from tests.models import torch_references as ref
from tests.models.harness import compare_with_torchvision, count_params, one_step_lowers_loss

slow = pytest.mark.slow

# He et al. 2015, "Deep Residual Learning for Image Recognition", Table 6 (CIFAR-10,
# "# params" column): ResNet-20 0.27M, 32 0.46M, 44 0.66M, 56 0.85M, 110 1.7M.
PAPER_PARAMS_2015 = {"resnet20": (0.27, 2), "resnet32": (0.46, 2), "resnet44": (0.66, 2),
                     "resnet56": (0.85, 2), "resnet110": (1.7, 1)}  # figure, decimals shown

# He et al. 2016, "Identity Mappings in Deep Residual Networks", Table 4 (CIFAR, "#params"
# column): ResNet-110 1.7M, ResNet-164 1.7M, ResNet-1001 10.2M. These figures count the
# convolution and fc weights: with BN's scale and shift (2 per channel) ResNet-1001 has
# 10,327,706 parameters (10.3M); without them 10,178,490 (10.2M). (110: 1,730,522 and
# 1,722,426; 164: 1,703,258 and 1,679,034 -- 1.7M either way.)
PAPER_PARAMS_2016 = {"preact_resnet110": (1.7, 1), "preact_resnet164": (1.7, 1),
                     "preact_resnet1001": (10.2, 1)}
TOTAL_PARAMS_2016 = {"preact_resnet110": 1_730_522, "preact_resnet164": 1_703_258,
                     "preact_resnet1001": 10_327_706}


def cifar_params(n: int, classes: int = 10) -> int:
    """Parameters of the 6n+2 CIFAR ResNet with option A shortcuts, from the paper's text:
    conv3x3 3->16; per stage with width w: 2n 3x3 convs (the first reads the previous
    width); a BN (2 params per channel) after every conv; fc 64 -> classes."""
    total = 3 * 16 * 9 + 2 * 16
    cin = 16
    for w in (16, 32, 64):
        total += (cin * w * 9 + w * w * 9 + 2 * 2 * w) + (n - 1) * (2 * w * w * 9 + 2 * 2 * w)
        cin = w
    return total + 64 * classes + classes


@pytest.mark.parametrize("name", [*cifar_resnet.CIFAR_CONFIGS])
def test_param_counts_match_paper(name):
    model = getattr(models, name)()
    n = cifar_resnet.CIFAR_CONFIGS[name]
    assert count_params(model) == cifar_params(n)
    figure, decimals = PAPER_PARAMS_2015[name.replace("plain", "resnet")]
    assert round(count_params(model) / 1e6, decimals) == figure


@pytest.mark.parametrize("name", [*cifar_resnet.PREACT_CIFAR_CONFIGS])
def test_preact_param_counts_match_paper(name):
    model = getattr(models, name)()
    bn = sum(count_params(m) for m in model.modules() if isinstance(m, minicnn.nn.BatchNorm2d))
    figure, decimals = PAPER_PARAMS_2016[name]
    assert round((count_params(model) - bn) / 1e6, decimals) == figure
    assert count_params(model) == TOTAL_PARAMS_2016[name]


def test_layer_counts_are_6n_plus_2():
    """Weighted layers: 6n + 2 (ResNets and plain nets alike; option A adds none)."""
    for name, n in cifar_resnet.CIFAR_CONFIGS.items():
        model = getattr(models, name)()
        weighted = [m for m in model.modules() if isinstance(m, (minicnn.nn.Conv2d,
                                                                 minicnn.nn.Linear))]
        assert len(weighted) == 6 * n + 2 == int(name.removeprefix("resnet")
                                                  .removeprefix("plain"))
        shortcuts = [m for m in model.modules() if isinstance(m, cifar_resnet.ShortcutA)]
        assert len(shortcuts) == (0 if name.startswith("plain") else 2)


@pytest.mark.parametrize("name", ["resnet20", "plain20", "preact_resnet110", "preact_resnet164",
                                  pytest.param("resnet110", marks=slow),
                                  pytest.param("preact_resnet1001", marks=slow)])
def test_output_shape_at_32(name):
    model = getattr(models, name)(num_classes=10).eval()
    with minicnn.no_grad():
        assert model(minicnn.zeros((2, 3, 32, 32))).shape == (2, 10)


REFERENCES = {
    "resnet20": lambda num_classes=10: ref.CifarResNet(3, num_classes),
    "plain20": lambda num_classes=10: ref.CifarResNet(3, num_classes, plain=True),
    "resnet56": lambda num_classes=10: ref.CifarResNet(9, num_classes),
    "preact_resnet110": lambda num_classes=10: ref.CifarPreActResNet(18, False, num_classes),
    "preact_resnet164": lambda num_classes=10: ref.CifarPreActResNet(18, True, num_classes),
}


@pytest.mark.parametrize("name", ["resnet20", "plain20",
                                  *[pytest.param(n, marks=slow) for n in
                                    ("resnet56", "preact_resnet110", "preact_resnet164")]])
def test_matches_pytorch_reference(name, tmp_path):
    compare_with_torchvision(name, (3, 32, 32), reference=REFERENCES[name], tmp_path=tmp_path,
                             num_classes=10)


def test_small_preact_matches_pytorch_reference(tmp_path):
    """Pre-activation CIFAR nets at a small depth (n = 2), basic and bottleneck units."""
    for bottleneck in (False, True):
        block = cifar_resnet.PreActBottleneck if bottleneck else cifar_resnet.PreActBasicBlock
        compare_with_torchvision(
            f"preact_cifar_{bottleneck}", (3, 16, 16), tmp_path=tmp_path,
            build=lambda num_classes=10, b=block: cifar_resnet.CifarPreActResNet(b, 2,
                                                                                 num_classes),
            reference=lambda num_classes=10, b=bottleneck: ref.CifarPreActResNet(2, b,
                                                                                 num_classes))


@pytest.mark.parametrize("stride, cin, cout", [(2, 4, 8), (1, 4, 4), (2, 3, 5)])
def test_block_with_option_a_gradcheck(stride, cin, cout):
    """float64 directional gradcheck of a BasicBlock with the zero-padding shortcut
    (odd sizes too: 7x7 -> 4x4 through both the conv and the slicing)."""
    shortcut = cifar_resnet.ShortcutA(cin, cout, stride) if (stride, cin) != (1, cout) else None
    block = BasicBlock(cin, cout, stride, downsample=shortcut).double().train()
    x = minicnn.randn((2, cin, 7, 7), dtype=np.float64, requires_grad=True)
    assert minicnn.gradcheck(lambda x, *p: block(x), [x, *block.parameters()],
                             mode="directional", atol=1e-6, rtol=1e-5)


def test_shortcut_a_pads_zeros():
    x = minicnn.randn((2, 3, 5, 5), requires_grad=True)
    y = cifar_resnet.ShortcutA(3, 5, 2)(x)
    assert y.shape == (2, 5, 3, 3)
    np.testing.assert_array_equal(y.detach().numpy()[:, :3], x.detach().numpy()[:, :, ::2, ::2])
    assert not y.detach().numpy()[:, 3:].any()
    y.sum().backward()
    expected = np.zeros((2, 3, 5, 5), np.float32)
    expected[:, :, ::2, ::2] = 1
    np.testing.assert_array_equal(x.grad.numpy(), expected)
    with pytest.raises(ValueError, match="out_channels"):
        cifar_resnet.ShortcutA(8, 4, 2)


def test_plain_block_gradcheck():
    block = cifar_resnet.PlainBlock(3, 4, 2).double().train()
    x = minicnn.randn((2, 3, 6, 6), dtype=np.float64, requires_grad=True)
    assert minicnn.gradcheck(lambda x, *p: block(x), [x, *block.parameters()],
                             mode="directional", atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", [
    "resnet20", "plain20",
    *[pytest.param(n, marks=slow) for n in (
        "resnet32", "resnet44", "resnet56", "resnet110", "plain32", "plain44", "plain56",
        "plain110", "preact_resnet110", "preact_resnet164", "preact_resnet1001")],
])
def test_one_training_step_lowers_loss(name):
    one_step_lowers_loss(getattr(models, name)(), (3, 32, 32), 10)


@pytest.mark.parametrize("name", ["resnet20", "plain20", "preact_resnet164"])
def test_bad_input_errors(name):
    model = getattr(models, name)()
    with pytest.raises(ValueError, match=rf"{name} expects input \(N, 3, H, W\) with H, W >= 4, "
                                         r"got \(1, 3, 2, 2\)"):
        model(minicnn.zeros((1, 3, 2, 2)))
    with pytest.raises(ValueError, match=rf"{name} expects .*got 1 channels"):
        model(minicnn.zeros((1, 1, 32, 32)))
