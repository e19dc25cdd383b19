"""A small residual CNN for 32×32 images: the default model of ``minicnn train``.

Three stages of one basic residual block each (He et al. 2016, the CIFAR layout with
fewer blocks), widths ``w, 2w, 4w``, a global average pool and a linear classifier:

    stage    output        layers
    stem     w×32×32       conv3×3, BN, ReLU
    stage1   w×32×32       [conv3×3, BN, ReLU, conv3×3, BN] + identity
    stage2   2w×16×16      [conv3×3/2, BN, ReLU, conv3×3, BN] + conv1×1/2, BN
    stage3   4w×8×8        [conv3×3/2, BN, ReLU, conv3×3, BN] + conv1×1/2, BN
    head     classes       global average pool, linear

With ``w = 16`` it has about 78 thousand parameters.
"""

from __future__ import annotations

from minicnn import nn
from minicnn.nn import functional as F


class ResidualBlock(nn.Module):
    """``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``; a projection when shapes change."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    """See the module docstring. ``x: (N, in_channels, H, W) -> logits (N, num_classes)``."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 16):
        super().__init__()
        w = width
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()
        )
        self.stage1 = ResidualBlock(w, w, 1)
        self.stage2 = ResidualBlock(w, 2 * w, 2)
        self.stage3 = ResidualBlock(2 * w, 4 * w, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * w, num_classes)

    def forward(self, x):
        x = self.stage3(self.stage2(self.stage1(self.stem(x))))
        return self.fc(self.pool(x).flatten(1))


def small_resnet(num_classes: int = 10, in_channels: int = 1, width: int = 16) -> SmallResNet:
    """The default model of ``minicnn train`` (see :class:`SmallResNet`)."""
    return SmallResNet(num_classes, in_channels, width)
