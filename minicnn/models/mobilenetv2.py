"""MobileNetV2 (Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear
Bottlenecks"), built exactly as torchvision builds it.

The inverted residual block widens, filters, then narrows -- the opposite of ResNet's
bottleneck -- and has no activation after the narrowing projection (a *linear*
bottleneck: ReLU would destroy information in the low-dimensional space)::

    1x1 conv, t * C_in channels, BN, ReLU6     expand   (left out when t = 1)
    3x3 depthwise conv, stride s, BN, ReLU6    filter
    1x1 conv, C_out channels, BN               project  (linear)
    + x  when s = 1 and C_in = C_out

Sandler et al. 2018, Table 2 (224x224 input; t expansion, c output channels, n repeats,
s stride of the first repeat)::

    input       operator        t    c     n   s
    224x224x3   conv2d 3x3      -    32    1   2
    112x112x32  bottleneck      1    16    1   1
    112x112x16  bottleneck      6    24    2   2
    56x56x24    bottleneck      6    32    3   2
    28x28x32    bottleneck      6    64    4   2
    14x14x64    bottleneck      6    96    3   1
    14x14x96    bottleneck      6    160   3   2
    7x7x160     bottleneck      6    320   1   1
    7x7x320     conv2d 1x1      -    1280  1   1
    7x7x1280    avgpool 7x7, dropout, fc to num_classes

3.5M parameters, 300M multiply-adds (torchvision: 3,504,872 and 0.301 GFLOPS).
Names (``features.<i>.conv.<j>``, ``classifier.1``) and initialization follow
torchvision's ``models/mobilenetv2.py``.
"""

from __future__ import annotations

from collections.abc import Callable

from minicnn import nn
from minicnn.models.channels import make_divisible
from minicnn.models.input_check import check_image_input
from minicnn.models.mobile_init import init_mobilenet_

__all__ = ["INVERTED_RESIDUAL_SETTING", "InvertedResidual", "MobileNetV2", "mobilenet_v2"]

# ---------------------------------------------------------------- the table, as data

# t (expansion), c (output channels), n (repeats), s (stride of the first repeat)
INVERTED_RESIDUAL_SETTING: list[list[int]] = [
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
]
STEM_CHANNELS = 32
LAST_CHANNELS = 1280

# ---------------------------------------------------------------- block


class InvertedResidual(nn.Module):
    """Expand (1x1, ReLU6), depthwise 3x3 (``stride``, ReLU6), project (1x1, linear), + x.

    ``x: (N, inp, H, W) -> (N, oup, H / stride, W / stride)``.
    """

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int,
                 norm_layer: Callable[..., nn.Module] | None = None):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual: stride should be 1 or 2, got {stride}")
        norm_layer = norm_layer or nn.BatchNorm2d
        self.stride = stride
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:  # pointwise expansion
            layers.append(nn.Conv2dNormActivation(inp, hidden_dim, kernel_size=1,
                                                  norm_layer=norm_layer,
                                                  activation_layer=nn.ReLU6))
        layers += [
            nn.Conv2dNormActivation(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim,
                                    norm_layer=norm_layer, activation_layer=nn.ReLU6),
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),  # linear projection
            norm_layer(oup),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


# ---------------------------------------------------------------- network


class MobileNetV2(nn.Module):
    """``x: (N, in_channels, H, W) -> (N, num_classes)`` (total stride 32).

    Arguments as torchvision's ``MobileNetV2``, plus ``in_channels`` and ``name``.
    """

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0,
                 inverted_residual_setting: list[list[int]] | None = None,
                 round_nearest: int = 8, block: Callable[..., nn.Module] | None = None,
                 norm_layer: Callable[..., nn.Module] | None = None, dropout: float = 0.2,
                 in_channels: int = 3, name: str = "mobilenet_v2"):
        super().__init__()
        block = block or InvertedResidual
        norm_layer = norm_layer or nn.BatchNorm2d
        setting = inverted_residual_setting or INVERTED_RESIDUAL_SETTING
        if len(setting) == 0 or any(len(row) != 4 for row in setting):
            raise ValueError(f"{name}: inverted_residual_setting should be a non-empty list of "
                             f"[t, c, n, s] rows, got {setting}")
        self.name, self.in_channels, self.min_input_size = name, in_channels, 32

        input_channel = make_divisible(STEM_CHANNELS * width_mult, round_nearest)
        self.last_channel = make_divisible(LAST_CHANNELS * max(1.0, width_mult), round_nearest)
        features: list[nn.Module] = [
            nn.Conv2dNormActivation(in_channels, input_channel, stride=2, norm_layer=norm_layer,
                                    activation_layer=nn.ReLU6)]
        for t, c, n, s in setting:
            output_channel = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                features.append(block(input_channel, output_channel, s if i == 0 else 1,
                                      expand_ratio=t, norm_layer=norm_layer))
                input_channel = output_channel
        features.append(nn.Conv2dNormActivation(input_channel, self.last_channel, kernel_size=1,
                                                norm_layer=norm_layer,
                                                activation_layer=nn.ReLU6))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout),
                                        nn.Linear(self.last_channel, num_classes))
        init_mobilenet_(self)

    def forward(self, x):
        check_image_input(x, self.name, self.in_channels, self.min_input_size)
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(x.flatten(1))


def mobilenet_v2(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> MobileNetV2:
    """MobileNetV2 1.0 (Sandler et al. 2018): 3.5M parameters, 0.30 GMACs at 224x224."""
    return MobileNetV2(num_classes=num_classes, in_channels=in_channels, **kwargs)
