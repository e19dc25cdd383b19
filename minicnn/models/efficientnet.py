"""EfficientNet-B0 ... B7 (Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for
Convolutional Neural Networks"), built exactly as torchvision builds them.

**The B0 base network** (Table 1; 224x224 input). Each stage repeats an MBConv block --
MobileNetV2's inverted residual with a squeeze-and-excitation block and the SiLU (swish)
activation -- ``layers`` times; the first repeat has the stride and changes the width::

    stage  operator                 resolution  channels  layers   (expand, kernel, stride)
    1      conv 3x3                 224x224     32        1
    2      MBConv1, k3x3            112x112     16        1        (1, 3, 1)
    3      MBConv6, k3x3            112x112     24        2        (6, 3, 2)
    4      MBConv6, k5x5            56x56       40        2        (6, 5, 2)
    5      MBConv6, k3x3            28x28       80        3        (6, 3, 2)
    6      MBConv6, k5x5            14x14       112       3        (6, 5, 1)
    7      MBConv6, k5x5            14x14       192       4        (6, 5, 2)
    8      MBConv6, k3x3            7x7         320       1        (6, 3, 1)
    9      conv 1x1, pool, fc       7x7         1280      1

MBConv: expand 1x1 (SiLU), depthwise k x k (stride, SiLU), SE (squeeze to a quarter of
the block's *input* channels, SiLU, sigmoid), project 1x1 (linear), and -- when the shape
is kept -- stochastic depth on the branch, then ``+ x``. The stochastic-depth
probability grows linearly with the block index, from 0 to ``0.2 * (B - 1) / B`` over the
``B`` blocks.

**Compound scaling** (Sec. 3.3): with one coefficient phi, depth ``d = 1.2^phi``, width
``w = 1.1^phi`` and resolution ``r = 1.15^phi`` grow together (about 2^phi FLOPs).
B1-B7 use these multipliers (width, depth, resolution; dropout before the classifier)::

    B0 (1.0, 1.0, 224; 0.2)   B1 (1.0, 1.1, 240; 0.2)   B2 (1.1, 1.2, 260; 0.3)
    B3 (1.2, 1.4, 300; 0.3)   B4 (1.4, 1.8, 380; 0.4)   B5 (1.6, 2.2, 456; 0.4)
    B6 (1.8, 2.6, 528; 0.5)   B7 (2.0, 3.1, 600; 0.5)

Every width is multiplied by ``w`` and rounded to a multiple of 8
(:func:`~minicnn.models.channels.make_divisible`), every stage's ``layers`` by ``d`` and
rounded up; the last conv has ``4 x`` the last stage's channels. The resolution is the
image size the network is meant for (:data:`EFFICIENTNET_RESOLUTION`; the model itself
takes any size of at least 32).

As torchvision: names (``features.<stage>.<block>.block.<j>``, ``classifier.1``), the
initialization, and the BatchNorm of the ported TensorFlow weights (eps 1e-3, momentum
0.01) for B5-B7 only -- torchvision trained B0-B4 itself with PyTorch's default BN
(eps 1e-5).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from functools import partial

from minicnn import nn
from minicnn.models.channels import make_divisible
from minicnn.models.input_check import check_image_input
from minicnn.models.mobile_init import init_mobile_, linear_uniform_fan_out_

__all__ = [
    "EFFICIENTNET_B0", "EFFICIENTNET_SCALING", "EFFICIENTNET_RESOLUTION", "EfficientNet",
    "MBConv", "MBConvConfig", "efficientnet_config",
    "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
    "efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7",
]

# ---------------------------------------------------------------- the tables, as data

# the B0 stages: (expand ratio, kernel, stride, input channels, output channels, layers)
EFFICIENTNET_B0: list[tuple[int, int, int, int, int, int]] = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
]

# name: (width multiplier, depth multiplier, resolution, dropout)
EFFICIENTNET_SCALING: dict[str, tuple[float, float, int, float]] = {
    "efficientnet_b0": (1.0, 1.0, 224, 0.2),
    "efficientnet_b1": (1.0, 1.1, 240, 0.2),
    "efficientnet_b2": (1.1, 1.2, 260, 0.3),
    "efficientnet_b3": (1.2, 1.4, 300, 0.3),
    "efficientnet_b4": (1.4, 1.8, 380, 0.4),
    "efficientnet_b5": (1.6, 2.2, 456, 0.4),
    "efficientnet_b6": (1.8, 2.6, 528, 0.5),
    "efficientnet_b7": (2.0, 3.1, 600, 0.5),
}
# the input resolution of each variant (the paper's), for plotting how the three grow
EFFICIENTNET_RESOLUTION: dict[str, int] = {k: v[2] for k, v in EFFICIENTNET_SCALING.items()}
# B5-B7 carry the TensorFlow BatchNorm of their ported weights (torchvision)
_TF_BATCHNORM = ("efficientnet_b5", "efficientnet_b6", "efficientnet_b7")


class MBConvConfig:
    """One stage of the table, widths scaled by ``width_mult`` (multiples of 8) and the
    number of layers by ``depth_mult`` (rounded up)."""

    def __init__(self, expand_ratio: float, kernel: int, stride: int, input_channels: int,
                 out_channels: int, num_layers: int, width_mult: float = 1.0,
                 depth_mult: float = 1.0):
        self.expand_ratio = expand_ratio
        self.kernel = kernel
        self.stride = stride
        self.input_channels = self.adjust_channels(input_channels, width_mult)
        self.out_channels = self.adjust_channels(out_channels, width_mult)
        self.num_layers = self.adjust_depth(num_layers, depth_mult)

    @staticmethod
    def adjust_channels(channels: float, width_mult: float, min_value: int | None = None) -> int:
        return make_divisible(channels * width_mult, 8, min_value)

    @staticmethod
    def adjust_depth(num_layers: int, depth_mult: float) -> int:
        return int(math.ceil(num_layers * depth_mult))

    def __repr__(self) -> str:
        return (f"MBConvConfig(expand_ratio={self.expand_ratio}, kernel={self.kernel}, "
                f"stride={self.stride}, input_channels={self.input_channels}, "
                f"out_channels={self.out_channels}, num_layers={self.num_layers})")


# ---------------------------------------------------------------- block


class MBConv(nn.Module):
    """Expand 1x1, depthwise k x k (stride), SE, project 1x1, [stochastic depth, + x].

    ``x: (N, cnf.input_channels, H, W) -> (N, cnf.out_channels, H / stride, W / stride)``.
    """

    def __init__(self, cnf: MBConvConfig, stochastic_depth_prob: float,
                 norm_layer: Callable[..., nn.Module],
                 se_layer: Callable[..., nn.Module] | None = None):
        super().__init__()
        se_layer = se_layer or nn.SqueezeExcitation
        if not 1 <= cnf.stride <= 2:
            raise ValueError(f"MBConv: illegal stride value {cnf.stride}")
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        expanded = cnf.adjust_channels(cnf.input_channels, cnf.expand_ratio)
        layers: list[nn.Module] = []
        if expanded != cnf.input_channels:  # expand
            layers.append(nn.Conv2dNormActivation(cnf.input_channels, expanded, kernel_size=1,
                                                  norm_layer=norm_layer,
                                                  activation_layer=nn.SiLU))
        layers += [
            nn.Conv2dNormActivation(expanded, expanded, kernel_size=cnf.kernel,  # depthwise
                                    stride=cnf.stride, groups=expanded, norm_layer=norm_layer,
                                    activation_layer=nn.SiLU),
            se_layer(expanded, max(1, cnf.input_channels // 4),
                     activation=partial(nn.SiLU, inplace=True)),
            nn.Conv2dNormActivation(expanded, cnf.out_channels, kernel_size=1,  # project
                                    norm_layer=norm_layer, activation_layer=None),
        ]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = nn.StochasticDepth(stochastic_depth_prob, "row")
        self.out_channels = cnf.out_channels

    def forward(self, x):
        result = self.block(x)
        if self.use_res_connect:
            result = self.stochastic_depth(result) + x
        return result


# ---------------------------------------------------------------- network


class EfficientNet(nn.Module):
    """``x: (N, in_channels, H, W) -> (N, num_classes)`` (total stride 32).

    Arguments as torchvision's ``EfficientNet`` (B0-B7: MBConv stages only), plus
    ``in_channels`` and ``name``.
    """

    def __init__(self, inverted_residual_setting: Sequence[MBConvConfig], dropout: float,
                 stochastic_depth_prob: float = 0.2, num_classes: int = 1000,
                 norm_layer: Callable[..., nn.Module] | None = None,
                 last_channel: int | None = None, in_channels: int = 3,
                 name: str = "EfficientNet"):
        super().__init__()
        if not inverted_residual_setting:
            raise ValueError(f"{name}: the inverted_residual_setting should not be empty")
        if not all(isinstance(s, MBConvConfig) for s in inverted_residual_setting):
            raise TypeError(f"{name}: the inverted_residual_setting should be a list of "
                            f"MBConvConfig")
        norm_layer = norm_layer or nn.BatchNorm2d
        self.name, self.in_channels, self.min_input_size = name, in_channels, 32

        first = inverted_residual_setting[0].input_channels
        layers: list[nn.Module] = [nn.Conv2dNormActivation(
            in_channels, first, kernel_size=3, stride=2, norm_layer=norm_layer,
            activation_layer=nn.SiLU)]
        total_blocks = sum(cnf.num_layers for cnf in inverted_residual_setting)
        block_id = 0
        for cnf in inverted_residual_setting:
            stage: list[nn.Module] = []
            for _ in range(cnf.num_layers):
                block_cnf = copy.copy(cnf)
                if stage:  # only the first block of a stage changes the shape
                    block_cnf.input_channels, block_cnf.stride = block_cnf.out_channels, 1
                # the drop probability grows linearly with depth
                sd_prob = stochastic_depth_prob * float(block_id) / total_blocks
                stage.append(MBConv(block_cnf, sd_prob, norm_layer))
                block_id += 1
            layers.append(nn.Sequential(*stage))
        last_in = inverted_residual_setting[-1].out_channels
        last_out = last_channel if last_channel is not None else 4 * last_in
        layers.append(nn.Conv2dNormActivation(last_in, last_out, kernel_size=1,
                                              norm_layer=norm_layer, activation_layer=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True),
                                        nn.Linear(last_out, num_classes))

        init_mobile_(self, linear_uniform_fan_out_)

    def forward(self, x):
        check_image_input(x, self.name, self.in_channels, self.min_input_size)
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


# ---------------------------------------------------------------- named variants


def efficientnet_config(width_mult: float, depth_mult: float) -> list[MBConvConfig]:
    """The B0 table scaled by ``width_mult`` and ``depth_mult`` (compound scaling)."""
    return [MBConvConfig(*row, width_mult=width_mult, depth_mult=depth_mult)
            for row in EFFICIENTNET_B0]


def _efficientnet(name: str, num_classes: int, in_channels: int, **kwargs) -> EfficientNet:
    width, depth, _, dropout = EFFICIENTNET_SCALING[name]
    if name in _TF_BATCHNORM:
        kwargs.setdefault("norm_layer", partial(nn.BatchNorm2d, eps=0.001, momentum=0.01))
    return EfficientNet(efficientnet_config(width, depth), kwargs.pop("dropout", dropout),
                        num_classes=num_classes, in_channels=in_channels, name=name, **kwargs)


def efficientnet_b0(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> EfficientNet:
    """EfficientNet-B0 (224x224): 5.3M parameters, 0.39 GMACs."""
    return _efficientnet("efficientnet_b0", num_classes, in_channels, **kwargs)


def efficientnet_b1(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> EfficientNet:
    """EfficientNet-B1 (240x240): 7.8M parameters, 0.69 GMACs."""
    return _efficientnet("efficientnet_b1", num_classes, in_channels, **kwargs)


def efficientnet_b2(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> EfficientNet:
    """EfficientNet-B2 (260x260): 9.1M parameters, 1.09 GMACs at torchvision's 288x288."""
    return _efficientnet("efficientnet_b2", num_classes, in_channels, **kwargs)


def efficientnet_b3(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> EfficientNet:
    """EfficientNet-B3 (300x300): 12.2M parameters, 1.83 GMACs."""
    return _efficientnet("efficientnet_b3", num_classes, in_channels, **kwargs)


def efficientnet_b4(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> EfficientNet:
    """EfficientNet-B4 (380x380): 19.3M parameters, 4.39 GMACs."""
    return _efficientnet("efficientnet_b4", num_classes, in_channels, **kwargs)


def efficientnet_b5(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> EfficientNet:
    """EfficientNet-B5 (456x456): 30.4M parameters, 10.3 GMACs."""
    return _efficientnet("efficientnet_b5", num_classes, in_channels, **kwargs)


def efficientnet_b6(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> EfficientNet:
    """EfficientNet-B6 (528x528): 43.0M parameters, 19.1 GMACs."""
    return _efficientnet("efficientnet_b6", num_classes, in_channels, **kwargs)


def efficientnet_b7(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> EfficientNet:
    """EfficientNet-B7 (600x600): 66.3M parameters, 37.7 GMACs."""
    return _efficientnet("efficientnet_b7", num_classes, in_channels, **kwargs)
