"""ResU-Net: a U-Net built of residual units, after Zhang, Liu & Wang 2018, "Road Extraction
by Deep Residual U-Net" (IEEE Geoscience and Remote Sensing Letters 15(5)), Table I.

U-Net's long skips (the encoder's maps concatenated into the decoder) plus *short* residual
connections inside every unit: each unit is He et al.'s full pre-activation block
(BN-ReLU-conv 3x3, BN-ReLU-conv 3x3, plus the shortcut), so every level trains like a
ResNet and BatchNorm keeps the activations in range. Table I, for a 224x224 input::

    encoder   unit 1   conv 3x3, 64;  conv 3x3, 64            224 x 224
              unit 2   conv 3x3, 128 (down); conv 3x3, 128     112 x 112
              unit 3   conv 3x3, 256 (down); conv 3x3, 256      56 x  56
    bridge    unit 4   conv 3x3, 512 (down); conv 3x3, 512      28 x  28
    decoder   unit 5   up, concat unit 3; conv 3x3, 256 x2       56 x  56
              unit 6   up, concat unit 2; conv 3x3, 128 x2      112 x 112
              unit 7   up, concat unit 1; conv 3x3, 64 x2       224 x 224
    output             conv 1x1, 1 (sigmoid)                    224 x 224

Channels double on the way down and halve on the way up. The first unit has no BN-ReLU
before its first convolution (its input is the image). The 15 convolutions of the table
have 7,782,913 parameters (the paper's "7.8 million", counted in the tests).

Where this follows the course deck rather than the paper: down-sampling is a bilinear
interpolation to half the size before a unit (``downsample="interpolate"``, the default;
``"stride"`` gives the paper's stride-2 first convolution instead), up-sampling a bilinear
interpolation to the skip's exact size (so any input of at least ``2 ** depth`` pixels
keeps its size, odd sizes too). Where the table is silent: a shortcut that changes the
shape is a 1x1 convolution (with the unit's stride) and BatchNorm, as in the paper's
public implementations (these 431,680 parameters and the BatchNorms' are not in the
paper's 7.8M). The output is the logits (no sigmoid: use ``binary_cross_entropy_with_logits``
for one class, ``cross_entropy`` for several); ``num_classes``, ``base_width`` (64) and
``depth`` (3 down-samplings) are arguments.
"""

from __future__ import annotations

from minicnn import nn
from minicnn.autograd.ops import cat
from minicnn.models.input_check import check_image_input
from minicnn.nn import functional as F

__all__ = ["ResUNet", "ResidualUnit", "resunet"]

DOWNSAMPLE = ("interpolate", "stride")


class ResidualUnit(nn.Module):
    """Pre-activation residual unit: ``conv2(relu(bn2(conv1(relu(bn1(x)))))) + shortcut(x)``.

    ``x: (N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride)``. ``first``:
    no ``bn1``/ReLU before ``conv1`` (the network's first unit). ``shortcut``: the identity,
    or a 1x1 convolution (``stride``) + BN when the shape changes.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 first: bool = False):
        super().__init__()
        self.bn1 = None if first else nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.relu = nn.ReLU()
        self.shortcut = nn.Identity() if in_channels == out_channels and stride == 1 else \
            nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride),
                          nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = x if self.bn1 is None else self.relu(self.bn1(x))
        out = self.conv2(self.relu(self.bn2(self.conv1(out))))
        return out + self.shortcut(x)


class ResUNet(nn.Module):
    """``x: (N, in_channels, H, W) -> (N, num_classes, H, W)`` logits, ``H, W >= 2 ** depth``.

    Modules: ``encoder`` (``depth`` :class:`ResidualUnit`, ``base_width * 2 ** i``
    channels), ``bridge`` (``base_width * 2 ** depth``), ``decoder`` (``depth`` units on
    the concatenation of the up-sampled map and the skip, deepest first) and
    ``classifier`` (1x1 convolution).
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 1, base_width: int = 64,
                 depth: int = 3, downsample: str = "interpolate", name: str = "resunet"):
        super().__init__()
        if downsample not in DOWNSAMPLE:
            raise ValueError(f"{name}: downsample must be 'interpolate' or 'stride', got "
                             f"{downsample!r}")
        for arg, value in (("in_channels", in_channels), ("num_classes", num_classes),
                           ("base_width", base_width), ("depth", depth)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: {arg} must be a positive integer, got {value!r}")
        self.name, self.in_channels, self.num_classes = name, in_channels, num_classes
        self.downsample, self.min_input_size = downsample, 2 ** depth
        stride = 2 if downsample == "stride" else 1
        widths = [base_width * 2 ** i for i in range(depth + 1)]
        self.encoder = nn.ModuleList(
            [ResidualUnit(in_channels, widths[0], first=True)]
            + [ResidualUnit(widths[i - 1], widths[i], stride) for i in range(1, depth)])
        self.bridge = ResidualUnit(widths[-2], widths[-1], stride)
        self.decoder = nn.ModuleList(ResidualUnit(widths[i + 1] + widths[i], widths[i])
                                     for i in reversed(range(depth)))
        self.classifier = nn.Conv2d(widths[0], num_classes, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def _down(self, x):
        if self.downsample == "stride":  # the unit's first convolution strides
            return x
        size = (max(1, x.shape[2] // 2), max(1, x.shape[3] // 2))
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    def forward(self, x):
        check_image_input(x, self.name, self.in_channels, self.min_input_size)
        skips = []
        for i, unit in enumerate(self.encoder):
            x = unit(x if i == 0 else self._down(x))
            skips.append(x)
        x = self.bridge(self._down(x))
        for unit, skip in zip(self.decoder, reversed(skips), strict=True):
            x = F.interpolate(x, size=tuple(skip.shape[2:]), mode="bilinear",
                              align_corners=False)
            x = unit(cat([x, skip], 1))
        return self.classifier(x)


def resunet(in_channels: int = 3, num_classes: int = 1, base_width: int = 64, depth: int = 3,
            downsample: str = "interpolate") -> ResUNet:
    """ResU-Net (Zhang et al. 2018, Table I; the course deck's interpolations). The defaults
    are the paper's sizes: RGB in, one output channel, 64 -> 512 channels; 8,223,809
    parameters with the shortcut projections and BatchNorms (the table's convolutions:
    7,782,913)."""
    return ResUNet(in_channels, num_classes, base_width, depth, downsample)
