"""ShuffleNet V1 (Zhang et al. 2017) and V2 (Ma et al. 2018): cheap convolutions plus a
channel shuffle that lets information flow between channel groups.

**ShuffleNet V1** ("ShuffleNet: An Extremely Efficient Convolutional Neural Network for
Mobile Devices"). The 1x1 convolutions, which dominate the cost of a bottleneck, are made
*group* convolutions (``g`` groups: ``g`` times cheaper); a channel shuffle after the
first one mixes the groups so the next group convolution sees every group. Unit (Fig. 2)::

    1x1 group conv (g) to C/4, BN, ReLU     (stage 2's first unit: not grouped, its
    channel shuffle (g)                       input has only 24 channels)
    3x3 depthwise conv (stride), BN          (no ReLU after the depthwise conv)
    1x1 group conv (g), BN
    stride 1: relu(x + branch)               stride 2: relu(concat(avgpool3x3/2(x), branch))

(with stride 2 the branch makes ``C_out - C_in`` channels, so the concatenation has C_out).

Zhang et al. 2017, Table 1 (224x224 input, 1x)::

    layer      output   KSize  stride  repeat  output channels (g = 1 / 2 / 3 / 4 / 8)
    conv1      112x112  3x3    2       1       24
    maxpool    56x56    3x3    2
    stage2     28x28           2 / 1   1 / 3   144 / 200 / 240 / 272 / 384
    stage3     14x14           2 / 1   1 / 7   288 / 400 / 480 / 544 / 768
    stage4     7x7             2 / 1   1 / 3   576 / 800 / 960 / 1088 / 1536
    globalpool 1x1      7x7, fc to 1000
    complexity (MFLOPs)                        143 / 140 / 137 / 133 / 137

("FLOPs" in the paper are multiply-adds.) The paper states no parameter counts; the
authors' code (megvii-model/ShuffleNet-Series, ShuffleNetV1/README.md) lists 1.0x g = 3:
138M FLOPs, 1.9M parameters and g = 8: 138M FLOPs, 2.4M parameters. This construction
(``minicnn.summary``, 224x224): g = 3 1,865,728 parameters and 137.5M multiply-adds,
g = 8 2,434,768 and 138.4M. No torchvision equivalent.

**Width ("ShuffleNet s x", Table 2).** "ShuffleNet s x means scaling the number of filters
in ShuffleNet 1x by s times thus overall complexity will be roughly s^2 times of ShuffleNet
1x" (end of Section 3.3): every width is scaled, conv1's 24 included, then rounded so the group
convolutions divide (:func:`shufflenet_v1_widths`). The authors' code (ShuffleNetV1/
network.py) does the same at 0.5x: conv1 12 and stages 120/240/480 for g = 3, conv1 16 and
192/384/768 for g = 8 (its README: 38M FLOPs, 0.7M parameters; 40M, 1.0M). Table 2's
complexity against this construction (``ShuffleNetV1(g, width_mult=s)``, 224x224, MFLOPs =
millions of multiply-adds)::

    s      paper  g = 1    g = 2    g = 3    g = 4    g = 8
    1x     140    143.08   140.84   137.46   134.34   138.37   (paper: 143/140/137/133/137)
    0.5x   38     38.52    38.91    37.59    37.94    40.47
    0.25x  13     11.00    11.24    11.01    11.94    12.43

At 0.25x this construction is 5-15% under the table. The paper gives no 0.25x widths and
the authors' code has no 0.25x model; keeping the 0.5x stem of 12 channels (not scaling
conv1 below 12) would give 13.16 / 13.47 / 13.30 / 13.48 M for g = 1-4 (15.72 M for g = 8,
whose conv1 must be a multiple of 8), which suggests that is what the table measured, but
the paper does not say so. (Scaling the stages only, as minicnn did before, gave 41.2 M
for 0.5x g = 4 and 19.0 M for 0.25x g = 8: the 24-channel conv1 at 112x112 and the first
unit reading its output then cost as much as at 1x.)

**ShuffleNet V2** ("ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture
Design"), built exactly as torchvision builds it. Group convolutions and element-wise
additions cost memory traffic, so the unit splits the channels in two halves: one half
passes through untouched, the other goes through 1x1 conv-BN-ReLU, 3x3 depthwise conv-BN,
1x1 conv-BN-ReLU; the halves are concatenated and shuffled (2 groups). A stride-2 unit
feeds the whole input to both branches (the left one: depthwise 3x3/2-BN, 1x1-BN-ReLU).
Ma et al. 2018, Table 5: stages of 4 / 8 / 4 units; output channels per width
(``stages_out_channels``, conv1, stage2-4, conv5)::

    0.5x  24  48   96  192  1024       1.5x  24  176  352  704  1024
    1.0x  24  116 232  464  1024       2.0x  24  244  488  976  2048
"""

from __future__ import annotations

import math

from minicnn import nn
from minicnn.autograd.ops import cat
from minicnn.models.input_check import check_image_input
from minicnn.nn import functional as F

__all__ = [
    "SHUFFLENET_V1_CONFIGS", "SHUFFLENET_V2_CONFIGS", "ShuffleNetV1", "ShuffleNetV1Unit",
    "ShuffleNetV2", "InvertedResidual", "shufflenet_v1_g3", "shufflenet_v1_g8",
    "shufflenet_v1_widths",
    "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0",
]

# ---------------------------------------------------------------- the tables, as data

SHUFFLENET_V1_REPEATS = (4, 8, 4)  # units in stage2..4 (the first one has stride 2)
# groups g: output channels of conv1 and stage2..4 at 1x (Table 1)
SHUFFLENET_V1_CONFIGS: dict[int, tuple[int, int, int, int]] = {
    1: (24, 144, 288, 576),
    2: (24, 200, 400, 800),
    3: (24, 240, 480, 960),
    4: (24, 272, 544, 1088),
    8: (24, 384, 768, 1536),
}

SHUFFLENET_V2_REPEATS = (4, 8, 4)
# name: output channels of conv1, stage2..4 and conv5 (Table 5)
SHUFFLENET_V2_CONFIGS: dict[str, tuple[int, int, int, int, int]] = {
    "shufflenet_v2_x0_5": (24, 48, 96, 192, 1024),
    "shufflenet_v2_x1_0": (24, 116, 232, 464, 1024),
    "shufflenet_v2_x1_5": (24, 176, 352, 704, 1024),
    "shufflenet_v2_x2_0": (24, 244, 488, 976, 2048),
}

# ---------------------------------------------------------------- ShuffleNet V1


def shufflenet_v1_widths(groups: int, width_mult: float = 1.0) -> tuple[int, list[int]]:
    """``(conv1 channels, [stage2, stage3, stage4 channels])`` of ShuffleNet ``width_mult`` x
    with ``groups`` groups: every width of Table 1 times ``width_mult`` (the paper's "s x"
    scales "the number of filters", the stem's included), then rounded so the group
    convolutions fit: a stage to the nearest multiple of ``4 * groups`` (halves up; its
    bottleneck, a quarter of it, splits into the groups), conv1 up to a multiple of
    ``groups`` (stage 2's first unit makes ``stage2 - conv1`` channels with a grouped
    convolution). At 1x nothing changes; at 0.5x this gives the authors' code's widths
    (g = 3: 12, 120, 240, 480; g = 8: 16, 192, 384, 768)."""
    stem, *stages = SHUFFLENET_V1_CONFIGS[groups]
    quantum = 4 * groups
    stages = [max(1, math.floor(c * width_mult / quantum + 0.5)) * quantum for c in stages]
    return math.ceil(stem * width_mult / groups) * groups, stages


class ShuffleNetV1Unit(nn.Module):
    """The ShuffleNet unit of Fig. 2 (b) (stride 1, residual add) or (c) (stride 2, concat).

    ``x: (N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride)``.
    ``first_group=False`` leaves the first 1x1 convolution ungrouped (stage 2's first unit).
    """

    def __init__(self, in_channels: int, out_channels: int, groups: int, stride: int,
                 first_group: bool = True):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"ShuffleNetV1Unit: stride should be 1 or 2, got {stride}")
        if stride == 1 and in_channels != out_channels:
            raise ValueError(f"ShuffleNetV1Unit: a stride-1 unit keeps the channels, got "
                             f"in_channels={in_channels}, out_channels={out_channels}")
        self.stride, self.groups = stride, groups
        mid = out_channels // 4  # the bottleneck: a quarter of the output channels
        branch_out = out_channels - in_channels if stride == 2 else out_channels
        self.conv1 = nn.Conv2d(in_channels, mid, 1, groups=groups if first_group else 1,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.shuffle = nn.ChannelShuffle(groups)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, branch_out, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(branch_out)
        self.shortcut = nn.AvgPool2d(3, stride=2, padding=1) if stride == 2 else None

    def forward(self, x):
        out = self.shuffle(F.relu(self.bn1(self.conv1(x))))
        out = self.bn2(self.conv2(out))
        out = self.bn3(self.conv3(out))
        if self.stride == 1:
            return F.relu(x + out)
        return F.relu(cat([self.shortcut(x), out], 1))


class ShuffleNetV1(nn.Module):
    """ShuffleNet V1 with ``groups`` groups at width ``width_mult`` (the paper's "s x"; widths
    from :func:`shufflenet_v1_widths`):
    ``x: (N, in_channels, H, W) -> (N, num_classes)`` (total stride 32)."""

    def __init__(self, groups: int = 3, width_mult: float = 1.0, num_classes: int = 1000,
                 in_channels: int = 3, name: str = "ShuffleNetV1"):
        super().__init__()
        if groups not in SHUFFLENET_V1_CONFIGS:
            raise ValueError(f"{name}: groups must be one of {sorted(SHUFFLENET_V1_CONFIGS)} "
                             f"(Table 1), got {groups}")
        self.name, self.in_channels, self.min_input_size = name, in_channels, 32
        if width_mult <= 0:
            raise ValueError(f"{name}: width_mult must be positive, got {width_mult}")
        stem, stages = shufflenet_v1_widths(groups, width_mult)
        self.conv1 = nn.Conv2d(in_channels, stem, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = stem
        for i, (out, repeats) in enumerate(zip(stages, SHUFFLENET_V1_REPEATS, strict=True)):
            units = [ShuffleNetV1Unit(channels, out, groups, 2, first_group=i > 0)]
            units += [ShuffleNetV1Unit(out, out, groups, 1) for _ in range(repeats - 1)]
            setattr(self, f"stage{i + 2}", nn.Sequential(*units))
            channels = out
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        check_image_input(x, self.name, self.in_channels, self.min_input_size)
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.stage4(self.stage3(self.stage2(x)))
        return self.fc(self.avgpool(x).flatten(1))


def shufflenet_v1_g3(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ShuffleNetV1:
    """ShuffleNet 1x (g = 3): 137M FLOPs (Table 1); 1.9M parameters (authors' code)."""
    return ShuffleNetV1(3, num_classes=num_classes, in_channels=in_channels,
                        name="shufflenet_v1_g3", **kwargs)


def shufflenet_v1_g8(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ShuffleNetV1:
    """ShuffleNet 1x (g = 8): 137M FLOPs (Table 1); 2.4M parameters (authors' code)."""
    return ShuffleNetV1(8, num_classes=num_classes, in_channels=in_channels,
                        name="shufflenet_v1_g8", **kwargs)


# ---------------------------------------------------------------- ShuffleNet V2


class InvertedResidual(nn.Module):
    """The ShuffleNet V2 unit (torchvision's name). Stride 1: split the channels, transform
    one half (``branch2``), concatenate, shuffle. Stride 2: both branches see all of ``x``.

    ``x: (N, inp, H, W) -> (N, oup, H / stride, W / stride)``.
    """

    def __init__(self, inp: int, oup: int, stride: int):
        super().__init__()
        if not 1 <= stride <= 3:
            raise ValueError(f"InvertedResidual: illegal stride value {stride}")
        self.stride = stride
        branch_features = oup // 2
        if stride == 1 and inp != branch_features << 1:
            raise ValueError(f"InvertedResidual: invalid combination of stride {stride}, inp "
                             f"{inp} and oup {oup}: with stride 1, inp must equal oup")
        if stride > 1:
            self.branch1 = nn.Sequential(
                self.depthwise_conv(inp, inp, kernel_size=3, stride=stride, padding=1),
                nn.BatchNorm2d(inp),
                nn.Conv2d(inp, branch_features, kernel_size=1, stride=1, padding=0, bias=False),
                nn.BatchNorm2d(branch_features),
                nn.ReLU(inplace=True),
            )
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else branch_features, branch_features, kernel_size=1,
                      stride=1, padding=0, bias=False),
            nn.BatchNorm2d(branch_features),
            nn.ReLU(inplace=True),
            self.depthwise_conv(branch_features, branch_features, kernel_size=3,
                                stride=stride, padding=1),
            nn.BatchNorm2d(branch_features),
            nn.Conv2d(branch_features, branch_features, kernel_size=1, stride=1, padding=0,
                      bias=False),
            nn.BatchNorm2d(branch_features),
            nn.ReLU(inplace=True),
        )

    @staticmethod
    def depthwise_conv(i: int, o: int, kernel_size: int, stride: int = 1, padding: int = 0,
                       bias: bool = False) -> nn.Conv2d:
        return nn.Conv2d(i, o, kernel_size, stride, padding, bias=bias, groups=i)

    def forward(self, x):
        if self.stride == 1:
            half = x.shape[1] // 2
            out = cat([x[:, :half], self.branch2(x[:, half:])], 1)
        else:
            out = cat([self.branch1(x), self.branch2(x)], 1)
        return F.channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """``x: (N, in_channels, H, W) -> (N, num_classes)`` (total stride 32).

    Arguments as torchvision's ``ShuffleNetV2``, plus ``in_channels`` and ``name``;
    initialization: PyTorch's layer defaults, as in torchvision.
    """

    def __init__(self, stages_repeats: list[int], stages_out_channels: list[int],
                 num_classes: int = 1000, inverted_residual=InvertedResidual,
                 in_channels: int = 3, name: str = "ShuffleNetV2"):
        super().__init__()
        if len(stages_repeats) != 3:
            raise ValueError(f"{name}: expected stages_repeats as list of 3 positive ints, "
                             f"got {stages_repeats}")
        if len(stages_out_channels) != 5:
            raise ValueError(f"{name}: expected stages_out_channels as list of 5 positive "
                             f"ints, got {stages_out_channels}")
        self.name, self.in_channels, self.min_input_size = name, in_channels, 32
        self._stage_out_channels = list(stages_out_channels)
        out = stages_out_channels[0]
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, out, 3, 2, 1, bias=False),
            nn.BatchNorm2d(out),
            nn.ReLU(inplace=True),
        )
        channels = out
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for i, (repeats, out) in enumerate(zip(stages_repeats, stages_out_channels[1:4],
                                               strict=True)):
            units = [inverted_residual(channels, out, 2)]
            units += [inverted_residual(out, out, 1) for _ in range(repeats - 1)]
            setattr(self, f"stage{i + 2}", nn.Sequential(*units))
            channels = out
        out = stages_out_channels[-1]
        self.conv5 = nn.Sequential(
            nn.Conv2d(channels, out, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out),
            nn.ReLU(inplace=True),
        )
        self.fc = nn.Linear(out, num_classes)

    def forward(self, x):
        check_image_input(x, self.name, self.in_channels, self.min_input_size)
        x = self.maxpool(self.conv1(x))
        x = self.stage4(self.stage3(self.stage2(x)))
        x = self.conv5(x).mean((2, 3))  # global average pool
        return self.fc(x)


def _shufflenet_v2(name: str, num_classes: int, in_channels: int, **kwargs) -> ShuffleNetV2:
    return ShuffleNetV2(list(SHUFFLENET_V2_REPEATS), list(SHUFFLENET_V2_CONFIGS[name]),
                        num_classes=num_classes, in_channels=in_channels, name=name, **kwargs)


def shufflenet_v2_x0_5(num_classes: int = 1000, in_channels: int = 3,
                       **kwargs) -> ShuffleNetV2:
    """ShuffleNet V2 0.5x: 1.4M parameters, 0.04 GMACs at 224x224."""
    return _shufflenet_v2("shufflenet_v2_x0_5", num_classes, in_channels, **kwargs)


def shufflenet_v2_x1_0(num_classes: int = 1000, in_channels: int = 3,
                       **kwargs) -> ShuffleNetV2:
    """ShuffleNet V2 1.0x: 2.3M parameters, 0.145 GMACs at 224x224."""
    return _shufflenet_v2("shufflenet_v2_x1_0", num_classes, in_channels, **kwargs)


def shufflenet_v2_x1_5(num_classes: int = 1000, in_channels: int = 3,
                       **kwargs) -> ShuffleNetV2:
    """ShuffleNet V2 1.5x: 3.5M parameters, 0.296 GMACs at 224x224."""
    return _shufflenet_v2("shufflenet_v2_x1_5", num_classes, in_channels, **kwargs)


def shufflenet_v2_x2_0(num_classes: int = 1000, in_channels: int = 3,
                       **kwargs) -> ShuffleNetV2:
    """ShuffleNet V2 2.0x: 7.4M parameters, 0.583 GMACs at 224x224."""
    return _shufflenet_v2("shufflenet_v2_x2_0", num_classes, in_channels, **kwargs)
