"""MNASNet (Tan et al. 2019, "MnasNet: Platform-Aware Neural Architecture Search for
Mobile"), the B1 variant, built exactly as torchvision builds it.

An architecture found by a search that rewards accuracy and penalizes measured phone
latency. It is a MobileNetV2-like stack of inverted residuals ("MBConv": expand 1x1,
depthwise k x k, linear 1x1 projection, + x when the shape allows), mixing 3x3 and 5x5
kernels and expansion factors 3 and 6, with no squeeze-and-excitation (B1).

Tan et al. 2019, Fig. 7(a) / torchvision's layer list (224x224 input; channels at
``alpha = 1``; each stack's first block has the stride, the rest stride 1)::

    conv 3x3 / 2, 32, BN, ReLU                         112x112
    SepConv: dw 3x3, 32, BN, ReLU; 1x1, 16, BN         112x112
    MBConv3 3x3  x3  24   stride 2                     56x56
    MBConv3 5x5  x3  40   stride 2                     28x28
    MBConv6 5x5  x3  80   stride 2                     14x14
    MBConv6 3x3  x2  96   stride 1                     14x14
    MBConv6 5x5  x4  192  stride 2                     7x7
    MBConv6 3x3  x1  320  stride 1                     7x7
    conv 1x1, 1280, BN, ReLU; global pool, dropout, fc

The depth multiplier ``alpha`` scales every width (not the final 1280) with
:func:`_round_to_multiple_of`: the nearest multiple of 8, rounded up unless that stays
within 10% (``mnasnet0_5``: 16, 8, 16, 24, 40, 48, 96, 160). BN momentum is 0.0003
(TensorFlow's 0.9997). Names (``layers.<i>``, ``classifier.1``) and initialization follow
torchvision's ``models/mnasnet.py``.
"""

from __future__ import annotations

from minicnn import nn
from minicnn.models.input_check import check_image_input
from minicnn.models.mobile_init import init_mobile_, linear_kaiming_uniform_sigmoid_

__all__ = ["MNASNET_STACKS", "MNASNET_DEPTHS", "MNASNet", "MBConv", "mnasnet0_5",
           "mnasnet0_75", "mnasnet1_0", "mnasnet1_3"]

# ---------------------------------------------------------------- the table, as data

# widths at alpha = 1: stem conv, separable conv, then the six MBConv stacks
MNASNET_DEPTHS = (32, 16, 24, 40, 80, 96, 192, 320)
# per stack: (kernel, stride, expansion factor, repeats); channels from MNASNET_DEPTHS[2:]
MNASNET_STACKS = [
    (3, 2, 3, 3),
    (5, 2, 3, 3),
    (5, 2, 6, 3),
    (3, 1, 6, 2),
    (5, 2, 6, 4),
    (3, 1, 6, 1),
]
LAST_CHANNELS = 1280
_BN_MOMENTUM = 1 - 0.9997  # the paper's TensorFlow momentum 0.9997, PyTorch's convention


def _round_to_multiple_of(val: float, divisor: int, round_up_bias: float = 0.9) -> int:
    """Asymmetric rounding to make ``val`` divisible by ``divisor``: round to the nearest
    multiple, but up whenever rounding down would lose more than 10%:
    ``(83, 8) -> 80``, ``(84, 8) -> 88``."""
    if not 0.0 < round_up_bias < 1.0:
        raise ValueError(f"round_up_bias should be greater than 0.0 and smaller than 1.0, got "
                         f"{round_up_bias}")
    new_val = max(divisor, int(val + divisor / 2) // divisor * divisor)
    return new_val if new_val >= round_up_bias * val else new_val + divisor


def _get_depths(alpha: float) -> list[int]:
    """The widths of :data:`MNASNET_DEPTHS` scaled by ``alpha`` (multiples of 8)."""
    return [_round_to_multiple_of(depth * alpha, 8) for depth in MNASNET_DEPTHS]


# ---------------------------------------------------------------- block


class MBConv(nn.Module):
    """Inverted residual (torchvision's ``_InvertedResidual``): expand 1x1 (ReLU), depthwise
    k x k (``stride``, ReLU), project 1x1 (linear), + x when the shape is kept.

    ``x: (N, in_ch, H, W) -> (N, out_ch, H / stride, W / stride)``.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int,
                 expansion_factor: int, bn_momentum: float = 0.1):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"MBConv: stride should be 1 or 2, got {stride}")
        if kernel_size not in (3, 5):
            raise ValueError(f"MBConv: kernel_size should be 3 or 5, got {kernel_size}")
        mid_ch = in_ch * expansion_factor
        self.apply_residual = in_ch == out_ch and stride == 1
        self.layers = nn.Sequential(
            nn.Conv2d(in_ch, mid_ch, 1, bias=False),  # pointwise
            nn.BatchNorm2d(mid_ch, momentum=bn_momentum),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_ch, mid_ch, kernel_size, padding=kernel_size // 2, stride=stride,
                      groups=mid_ch, bias=False),  # depthwise
            nn.BatchNorm2d(mid_ch, momentum=bn_momentum),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_ch, out_ch, 1, bias=False),  # linear pointwise: no activation
            nn.BatchNorm2d(out_ch, momentum=bn_momentum),
        )

    def forward(self, x):
        return self.layers(x) + x if self.apply_residual else self.layers(x)


def _stack(in_ch: int, out_ch: int, kernel_size: int, stride: int, exp_factor: int,
           repeats: int, bn_momentum: float) -> nn.Sequential:
    """``repeats`` blocks; only the first changes the shape (and has no residual)."""
    if repeats < 1:
        raise ValueError(f"repeats should be >= 1, got {repeats}")
    blocks = [MBConv(in_ch, out_ch, kernel_size, stride, exp_factor, bn_momentum)]
    blocks += [MBConv(out_ch, out_ch, kernel_size, 1, exp_factor, bn_momentum)
               for _ in range(1, repeats)]
    return nn.Sequential(*blocks)


# ---------------------------------------------------------------- network


class MNASNet(nn.Module):
    """``x: (N, in_channels, H, W) -> (N, num_classes)`` (total stride 32).

    Arguments as torchvision's ``MNASNet`` (``alpha``: the depth multiplier), plus
    ``in_channels`` and ``name``.
    """

    def __init__(self, alpha: float, num_classes: int = 1000, dropout: float = 0.2,
                 in_channels: int = 3, name: str = "MNASNet"):
        super().__init__()
        if alpha <= 0.0:
            raise ValueError(f"{name}: alpha should be greater than 0.0, got {alpha}")
        self.alpha, self.num_classes = alpha, num_classes
        self.name, self.in_channels, self.min_input_size = name, in_channels, 32
        depths = _get_depths(alpha)
        layers: list[nn.Module] = [
            # first layer: regular conv
            nn.Conv2d(in_channels, depths[0], 3, padding=1, stride=2, bias=False),
            nn.BatchNorm2d(depths[0], momentum=_BN_MOMENTUM),
            nn.ReLU(inplace=True),
            # depthwise separable, no skip
            nn.Conv2d(depths[0], depths[0], 3, padding=1, stride=1, groups=depths[0],
                      bias=False),
            nn.BatchNorm2d(depths[0], momentum=_BN_MOMENTUM),
            nn.ReLU(inplace=True),
            nn.Conv2d(depths[0], depths[1], 1, padding=0, stride=1, bias=False),
            nn.BatchNorm2d(depths[1], momentum=_BN_MOMENTUM),
        ]
        for (kernel, stride, expansion, repeats), cin, cout in zip(
                MNASNET_STACKS, depths[1:-1], depths[2:], strict=True):
            layers.append(_stack(cin, cout, kernel, stride, expansion, repeats, _BN_MOMENTUM))
        layers += [
            nn.Conv2d(depths[7], LAST_CHANNELS, 1, padding=0, stride=1, bias=False),
            nn.BatchNorm2d(LAST_CHANNELS, momentum=_BN_MOMENTUM),
            nn.ReLU(inplace=True),
        ]
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True),
                                        nn.Linear(LAST_CHANNELS, num_classes))
        init_mobile_(self, linear_kaiming_uniform_sigmoid_)

    def forward(self, x):
        check_image_input(x, self.name, self.in_channels, self.min_input_size)
        x = self.layers(x).mean((2, 3))  # global average pool
        return self.classifier(x)


# ---------------------------------------------------------------- named variants


def _mnasnet(name: str, alpha: float, num_classes: int, in_channels: int,
             **kwargs) -> MNASNet:
    return MNASNet(alpha, num_classes=num_classes, in_channels=in_channels, name=name,
                   **kwargs)


def mnasnet0_5(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> MNASNet:
    """MNASNet-B1 with depth multiplier 0.5: 2.2M parameters, 0.104 GMACs at 224x224."""
    return _mnasnet("mnasnet0_5", 0.5, num_classes, in_channels, **kwargs)


def mnasnet0_75(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> MNASNet:
    """MNASNet-B1 with depth multiplier 0.75: 3.2M parameters, 0.215 GMACs at 224x224."""
    return _mnasnet("mnasnet0_75", 0.75, num_classes, in_channels, **kwargs)


def mnasnet1_0(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> MNASNet:
    """MNASNet-B1 with depth multiplier 1.0: 4.4M parameters, 0.314 GMACs at 224x224."""
    return _mnasnet("mnasnet1_0", 1.0, num_classes, in_channels, **kwargs)


def mnasnet1_3(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> MNASNet:
    """MNASNet-B1 with depth multiplier 1.3: 6.3M parameters, 0.526 GMACs at 224x224."""
    return _mnasnet("mnasnet1_3", 1.3, num_classes, in_channels, **kwargs)
