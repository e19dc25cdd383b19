"""MobileNetV1 (Howard et al. 2017, "MobileNets: Efficient Convolutional Neural Networks for
Mobile Vision Applications"): a stack of depthwise separable convolutions.

A standard 3x3 convolution from M to N channels costs ``9 M N`` multiply-adds per pixel.
A depthwise separable convolution splits it in two: a 3x3 *depthwise* convolution (one
filter per channel, ``groups = M``: ``9 M``) that filters, then a 1x1 *pointwise*
convolution (``M N``) that mixes channels -- ``1/N + 1/9`` of the cost, 8-9 times less.
Each is followed by BN and ReLU.

Howard et al. 2017, Table 1 (224x224 input; "dw" = depthwise 3x3, "pw" = pointwise 1x1)::

    type / stride     filter shape        input size
    conv / s2         3x3x3x32            224x224x3
    dw / s1, pw / s1  3x3x32, 1x1x32x64   112x112x32
    dw / s2, pw / s1  3x3x64, 1x1x64x128  112x112x64
    dw / s1, pw / s1  128 -> 128          56x56x128
    dw / s2, pw / s1  128 -> 256          56x56x128
    dw / s1, pw / s1  256 -> 256          28x28x256
    dw / s2, pw / s1  256 -> 512          28x28x256
    5 x (dw / s1, pw / s1)  512 -> 512    14x14x512
    dw / s2, pw / s1  512 -> 1024         14x14x512
    dw / s1, pw / s1  1024 -> 1024        7x7x1024   (the table prints s2; the size stays 7x7)
    avg pool 7x7, fc 1024 -> 1000, softmax

Table 8 (1.0 MobileNet-224): 569 million multiply-adds and 4.2 million parameters.
This construction: 4,231,976 parameters (4,210,088 in the convolutions and the
classifier, 21,888 in BN) and 568.7M multiply-adds (``minicnn.summary``, 224x224).

``width_mult`` is the paper's width multiplier alpha: every layer gets ``alpha * N``
channels (Table 6: 0.75, 0.5, 0.25); the resolution multiplier is just the input size.
No torchvision equivalent: names follow the torchvision mobile networks
(``features.<i>``, ``classifier``), init too (Kaiming normal fan_out convolutions, BN 1/0,
Linear N(0, 0.01)).
"""

from __future__ import annotations

from minicnn import nn
from minicnn.models.input_check import check_image_input
from minicnn.models.mobile_init import init_mobilenet_

__all__ = ["MOBILENET_V1_BLOCKS", "DepthwiseSeparableConv", "MobileNetV1", "mobilenet_v1"]

# ---------------------------------------------------------------- the table, as data

MOBILENET_V1_STEM = 32  # channels of the first (full) 3x3 convolution, stride 2
# one (pointwise output channels, depthwise stride) per depthwise separable block
MOBILENET_V1_BLOCKS: list[tuple[int, int]] = [
    (64, 1),
    (128, 2), (128, 1),
    (256, 2), (256, 1),
    (512, 2), *[(512, 1)] * 5,
    (1024, 2), (1024, 1),
]

# ---------------------------------------------------------------- block


class DepthwiseSeparableConv(nn.Module):
    """3x3 depthwise conv-BN-ReLU (``stride``), then 1x1 pointwise conv-BN-ReLU.

    ``x: (N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.depthwise = nn.Conv2dNormActivation(in_channels, in_channels, kernel_size=3,
                                                 stride=stride, groups=in_channels)
        self.pointwise = nn.Conv2dNormActivation(in_channels, out_channels, kernel_size=1)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


# ---------------------------------------------------------------- network


class MobileNetV1(nn.Module):
    """``x: (N, in_channels, H, W) -> (N, num_classes)`` (total stride 32)."""

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, in_channels: int = 3,
                 name: str = "mobilenet_v1"):
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"{name}: width_mult must be positive, got {width_mult}")
        self.name, self.in_channels, self.min_input_size = name, in_channels, 32
        channels = int(MOBILENET_V1_STEM * width_mult)
        layers: list[nn.Module] = [nn.Conv2dNormActivation(in_channels, channels, stride=2)]
        for out, stride in MOBILENET_V1_BLOCKS:
            layers.append(DepthwiseSeparableConv(channels, int(out * width_mult), stride))
            channels = int(out * width_mult)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

        init_mobilenet_(self)

    def forward(self, x):
        check_image_input(x, self.name, self.in_channels, self.min_input_size)
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def mobilenet_v1(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> MobileNetV1:
    """1.0 MobileNet-224 (Howard et al. 2017): 4.2M parameters, 569M multiply-adds (Table 8)."""
    return MobileNetV1(num_classes=num_classes, in_channels=in_channels, **kwargs)
