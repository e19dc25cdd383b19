"""MobileNetV3 (Howard et al. 2019, "Searching for MobileNetV3"), Large and Small, built
exactly as torchvision builds them.

The block is MobileNetV2's inverted residual (expand 1x1, depthwise k x k, linear 1x1
projection, + x) with two additions found by architecture search:

* a Squeeze-and-Excitation block after the depthwise convolution in some blocks
  (squeeze to ``expanded / 4`` channels, rounded to a multiple of 8; ReLU, then
  hard-sigmoid as the gate);
* the hard-swish activation ``x * relu6(x + 3) / 6`` ("HS") in the deeper blocks, ReLU
  ("RE") in the shallow ones.

Howard et al. 2019, Table 1 (Large) and Table 2 (Small), as torchvision's
``InvertedResidualConfig`` rows (input channels, kernel, expanded channels, output
channels, SE, activation, stride, dilation); the stem is a 3x3 stride-2 conv to 16
channels with hard-swish, the tail a 1x1 conv to ``6 * last`` channels (960 / 576),
global pool, Linear to 1280 / 1024, hard-swish, dropout, Linear to num_classes.

5.5M / 2.5M parameters and 0.217 / 0.057 GMACs at 224x224 (torchvision: 5,483,032 and
2,542,856). Names (``features.<i>.block.<j>``, ``classifier.<j>``), the BN
(eps 1e-3, momentum 0.01) and initialization follow torchvision's ``models/mobilenetv3.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from minicnn import nn
from minicnn.models.channels import make_divisible
from minicnn.models.input_check import check_image_input
from minicnn.models.mobile_init import init_mobilenet_

__all__ = ["MOBILENET_V3_CONFIGS", "InvertedResidualConfig", "InvertedResidual", "MobileNetV3",
           "mobilenet_v3_large", "mobilenet_v3_small"]

# ---------------------------------------------------------------- the tables, as data

# (input channels, kernel, expanded channels, output channels, SE, activation, stride,
#  dilation) per block, and the width of the penultimate Linear layer
MOBILENET_V3_CONFIGS: dict[str, tuple[list[tuple], int]] = {
    "mobilenet_v3_large": ([
        (16, 3, 16, 16, False, "RE", 1, 1),
        (16, 3, 64, 24, False, "RE", 2, 1),  # C1
        (24, 3, 72, 24, False, "RE", 1, 1),
        (24, 5, 72, 40, True, "RE", 2, 1),  # C2
        (40, 5, 120, 40, True, "RE", 1, 1),
        (40, 5, 120, 40, True, "RE", 1, 1),
        (40, 3, 240, 80, False, "HS", 2, 1),  # C3
        (80, 3, 200, 80, False, "HS", 1, 1),
        (80, 3, 184, 80, False, "HS", 1, 1),
        (80, 3, 184, 80, False, "HS", 1, 1),
        (80, 3, 480, 112, True, "HS", 1, 1),
        (112, 3, 672, 112, True, "HS", 1, 1),
        (112, 5, 672, 160, True, "HS", 2, 1),  # C4
        (160, 5, 960, 160, True, "HS", 1, 1),
        (160, 5, 960, 160, True, "HS", 1, 1),
    ], 1280),  # C5
    "mobilenet_v3_small": ([
        (16, 3, 16, 16, True, "RE", 2, 1),  # C1
        (16, 3, 72, 24, False, "RE", 2, 1),  # C2
        (24, 3, 88, 24, False, "RE", 1, 1),
        (24, 5, 96, 40, True, "HS", 2, 1),  # C3
        (40, 5, 240, 40, True, "HS", 1, 1),
        (40, 5, 240, 40, True, "HS", 1, 1),
        (40, 5, 120, 48, True, "HS", 1, 1),
        (48, 5, 144, 48, True, "HS", 1, 1),
        (48, 5, 288, 96, True, "HS", 2, 1),  # C4
        (96, 5, 576, 96, True, "HS", 1, 1),
        (96, 5, 576, 96, True, "HS", 1, 1),
    ], 1024),  # C5
}


class InvertedResidualConfig:
    """One row of the table, its channel counts scaled by ``width_mult`` (multiples of 8)."""

    def __init__(self, input_channels: int, kernel: int, expanded_channels: int,
                 out_channels: int, use_se: bool, activation: str, stride: int, dilation: int,
                 width_mult: float = 1.0):
        if activation not in ("RE", "HS"):
            raise ValueError(f"InvertedResidualConfig: activation must be 'RE' (ReLU) or 'HS' "
                             f"(hard-swish), got {activation!r}")
        self.input_channels = self.adjust_channels(input_channels, width_mult)
        self.kernel = kernel
        self.expanded_channels = self.adjust_channels(expanded_channels, width_mult)
        self.out_channels = self.adjust_channels(out_channels, width_mult)
        self.use_se = use_se
        self.use_hs = activation == "HS"
        self.stride = stride
        self.dilation = dilation

    @staticmethod
    def adjust_channels(channels: int, width_mult: float) -> int:
        return make_divisible(channels * width_mult, 8)


# ---------------------------------------------------------------- block


class InvertedResidual(nn.Module):
    """Expand (1x1), depthwise (k x k, stride), [SE], project (1x1, linear), + x.

    ``x: (N, cnf.input_channels, H, W) -> (N, cnf.out_channels, H / stride, W / stride)``.
    """

    def __init__(self, cnf: InvertedResidualConfig, norm_layer: Callable[..., nn.Module],
                 se_layer: Callable[..., nn.Module] | None = None):
        super().__init__()
        # SE gate: hard-sigmoid instead of the sigmoid
        se_layer = se_layer or partial(nn.SqueezeExcitation, scale_activation=nn.Hardsigmoid)
        if not 1 <= cnf.stride <= 2:
            raise ValueError(f"InvertedResidual: illegal stride value {cnf.stride}")
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        activation_layer = nn.Hardswish if cnf.use_hs else nn.ReLU
        layers: list[nn.Module] = []
        if cnf.expanded_channels != cnf.input_channels:  # expand
            layers.append(nn.Conv2dNormActivation(
                cnf.input_channels, cnf.expanded_channels, kernel_size=1,
                norm_layer=norm_layer, activation_layer=activation_layer))
        stride = 1 if cnf.dilation > 1 else cnf.stride
        layers.append(nn.Conv2dNormActivation(  # depthwise
            cnf.expanded_channels, cnf.expanded_channels, kernel_size=cnf.kernel, stride=stride,
            dilation=cnf.dilation, groups=cnf.expanded_channels, norm_layer=norm_layer,
            activation_layer=activation_layer))
        if cnf.use_se:
            layers.append(se_layer(cnf.expanded_channels,
                                   make_divisible(cnf.expanded_channels // 4, 8)))
        layers.append(nn.Conv2dNormActivation(  # project (linear)
            cnf.expanded_channels, cnf.out_channels, kernel_size=1, norm_layer=norm_layer,
            activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.out_channels = cnf.out_channels
        self._is_cn = cnf.stride > 1  # starts a stage C1..C4 (SSDLite cuts the backbone here)

    def forward(self, x):
        result = self.block(x)
        return result + x if self.use_res_connect else result


# ---------------------------------------------------------------- network


class MobileNetV3(nn.Module):
    """``x: (N, in_channels, H, W) -> (N, num_classes)`` (total stride 32).

    Arguments as torchvision's ``MobileNetV3``, plus ``in_channels`` and ``name``.
    """

    def __init__(self, inverted_residual_setting: list[InvertedResidualConfig],
                 last_channel: int, num_classes: int = 1000,
                 block: Callable[..., nn.Module] | None = None,
                 norm_layer: Callable[..., nn.Module] | None = None, dropout: float = 0.2,
                 in_channels: int = 3, name: str = "MobileNetV3"):
        super().__init__()
        if not inverted_residual_setting:
            raise ValueError(f"{name}: the inverted_residual_setting should not be empty")
        if not all(isinstance(s, InvertedResidualConfig) for s in inverted_residual_setting):
            raise TypeError(f"{name}: the inverted_residual_setting should be a list of "
                            f"InvertedResidualConfig")
        block = block or InvertedResidual
        norm_layer = norm_layer or partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        self.name, self.in_channels, self.min_input_size = name, in_channels, 32

        first = inverted_residual_setting[0].input_channels
        layers: list[nn.Module] = [nn.Conv2dNormActivation(
            in_channels, first, kernel_size=3, stride=2, norm_layer=norm_layer,
            activation_layer=nn.Hardswish)]
        layers += [block(cnf, norm_layer) for cnf in inverted_residual_setting]
        last_in = inverted_residual_setting[-1].out_channels
        last_out = 6 * last_in
        layers.append(nn.Conv2dNormActivation(last_in, last_out, kernel_size=1,
                                              norm_layer=norm_layer,
                                              activation_layer=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(last_out, last_channel),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=dropout, inplace=True),
            nn.Linear(last_channel, num_classes),
        )
        init_mobilenet_(self)

    def forward(self, x):
        check_image_input(x, self.name, self.in_channels, self.min_input_size)
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


# ---------------------------------------------------------------- named variants


def mobilenet_v3_config(arch: str, width_mult: float = 1.0, reduced_tail: bool = False,
                        dilated: bool = False) -> tuple[list[InvertedResidualConfig], int]:
    """The rows of ``arch`` as configs, scaled by ``width_mult``. ``reduced_tail`` halves the
    channels of the last stage (C4, C5), ``dilated`` replaces its stride with dilation 2
    (the segmentation backbones)."""
    if arch not in MOBILENET_V3_CONFIGS:
        raise ValueError(f"unknown MobileNetV3 architecture {arch!r}; expected one of "
                         f"{sorted(MOBILENET_V3_CONFIGS)}")
    rows, last_channel = MOBILENET_V3_CONFIGS[arch]
    divider = 2 if reduced_tail else 1
    last_stage = max(i for i, row in enumerate(rows) if row[6] == 2)  # C4 starts here
    configs = []
    for i, (inp, k, exp, out, se, act, stride, dil) in enumerate(rows):
        if i >= last_stage:
            if i > last_stage:
                inp = inp // divider
            exp, out = (exp, out // divider) if i == last_stage else (exp // divider,
                                                                       out // divider)
            dil = 2 if dilated else dil
        configs.append(InvertedResidualConfig(inp, k, exp, out, se, act, stride, dil,
                                              width_mult))
    last = InvertedResidualConfig.adjust_channels(last_channel // divider, width_mult)
    return configs, last


def _mobilenet_v3(arch: str, num_classes: int, in_channels: int, width_mult: float = 1.0,
                  reduced_tail: bool = False, dilated: bool = False, **kwargs) -> MobileNetV3:
    configs, last_channel = mobilenet_v3_config(arch, width_mult, reduced_tail, dilated)
    return MobileNetV3(configs, last_channel, num_classes=num_classes, in_channels=in_channels,
                       name=arch, **kwargs)


def mobilenet_v3_large(num_classes: int = 1000, in_channels: int = 3,
                       **kwargs) -> MobileNetV3:
    """MobileNetV3-Large 1.0: 5.5M parameters, 0.217 GMACs at 224x224."""
    return _mobilenet_v3("mobilenet_v3_large", num_classes, in_channels, **kwargs)


def mobilenet_v3_small(num_classes: int = 1000, in_channels: int = 3,
                       **kwargs) -> MobileNetV3:
    """MobileNetV3-Small 1.0: 2.5M parameters, 0.057 GMACs at 224x224."""
    return _mobilenet_v3("mobilenet_v3_small", num_classes, in_channels, **kwargs)
