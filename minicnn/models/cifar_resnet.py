"""The CIFAR-10 ResNets and plain nets (He et al. 2015, Sec. 4.2) and pre-activation
ResNets for CIFAR (He et al. 2016, "Identity Mappings").

He et al. 2015, Sec. 4.2: a 3x3 convolution, then three stages of ``2n`` 3x3 layers on
maps of 32, 16 and 8 pixels, a global average pool and a 10-way fully connected layer:
``6n + 2`` weighted layers in all::

    output map size   32x32       16x16       8x8
    # layers          1 + 2n      2n          2n
    # filters         16          32          64

Each pair of 3x3 layers is a block. In the ResNets every block adds its input back
(``shortcut``); where the stage changes, the shortcut is "option A": the input subsampled
by 2 and its channels zero-padded from 16 to 32 (or 32 to 64), which adds no parameters.
The plain nets are the same layers without the shortcuts. Parameters (paper, Table 6):

    n    depth   name        parameters
    3    20      resnet20    0.27M
    5    32      resnet32    0.46M
    7    44      resnet44    0.66M
    9    56      resnet56    0.85M
    18   110     resnet110   1.7M

Pre-activation ResNets for CIFAR (He et al. 2016, Sec. 4 and Table 2/4): the same three
stages, with full pre-activation units (:class:`~minicnn.models.resnet.PreActBasicBlock`,
:class:`~minicnn.models.resnet.PreActBottleneck`) and 1x1 projection shortcuts where the
shape changes; a BN-ReLU closes the network:

    name                 unit         n     stage outputs    parameters
    preact_resnet110     basic        18    16, 32, 64       1.7M
    preact_resnet164     bottleneck   18    64, 128, 256     1.7M
    preact_resnet1001    bottleneck   111   64, 128, 256     10.2M
"""

from __future__ import annotations

from minicnn import nn
from minicnn.models.input_check import check_image_input
from minicnn.models.resnet import (
    BasicBlock,
    PreActBasicBlock,
    PreActBottleneck,
    init_resnet_,
    make_preact_stage,
)
from minicnn.nn import functional as F

__all__ = [
    "CIFAR_CONFIGS", "PREACT_CIFAR_CONFIGS", "CifarPreActResNet", "CifarResNet", "PlainBlock",
    "ShortcutA",
    "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
    "plain20", "plain32", "plain44", "plain56", "plain110",
    "preact_resnet110", "preact_resnet164", "preact_resnet1001",
]

# ---------------------------------------------------------------- the table, as data

CIFAR_STAGE_PLANES = (16, 32, 64)
CIFAR_STAGE_STRIDES = (1, 2, 2)

# depth 6n + 2: name -> n (blocks per stage)
CIFAR_CONFIGS: dict[str, int] = {
    "resnet20": 3, "resnet32": 5, "resnet44": 7, "resnet56": 9, "resnet110": 18,
    "plain20": 3, "plain32": 5, "plain44": 7, "plain56": 9, "plain110": 18,
}

# name -> (unit, n): depth 6n + 2 (basic) or 9n + 2 (bottleneck)
PREACT_CIFAR_CONFIGS: dict[str, tuple[str, int]] = {
    "preact_resnet110": ("basic", 18),
    "preact_resnet164": ("bottleneck", 18),
    "preact_resnet1001": ("bottleneck", 111),
}


# ---------------------------------------------------------------- blocks


class ShortcutA(nn.Module):
    """Option A shortcut: ``x[:, :, ::stride, ::stride]`` with zero channels appended.

    ``x: (N, in_channels, H, W) -> (N, out_channels, ceil(H / stride), ceil(W / stride))``;
    no parameters. (Subsampling by slicing gives the same size as the 3x3/stride-2
    convolution of the residual branch, for odd sizes too.)
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"ShortcutA: out_channels ({out_channels}) must be at least "
                             f"in_channels ({in_channels})")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.out_channels - self.in_channels))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


class PlainBlock(nn.Module):
    """A residual block without its shortcut: ``relu(bn2(conv2(relu(bn1(conv1(x))))))``."""

    expansion: int = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)))


# ---------------------------------------------------------------- networks


class CifarResNet(nn.Module):
    """He et al. 2015's CIFAR network: ``x: (N, in_channels, H, W) -> (N, num_classes)``.

    ``n`` blocks per stage; ``plain=True`` drops the shortcuts. Inputs are meant to be
    32x32; anything from 4x4 up (the total stride) runs.
    """

    def __init__(self, n: int, num_classes: int = 10, in_channels: int = 3, plain: bool = False,
                 name: str = "CifarResNet"):
        super().__init__()
        self.name, self.in_channels, self.min_input_size = name, in_channels, 4
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        inplanes = 16
        for i, (planes, stride) in enumerate(zip(CIFAR_STAGE_PLANES, CIFAR_STAGE_STRIDES,
                                                 strict=True)):
            blocks = []
            for j in range(n):
                s = stride if j == 0 else 1
                if plain:
                    blocks.append(PlainBlock(inplanes, planes, s))
                else:
                    shortcut = None
                    if s != 1 or inplanes != planes:
                        shortcut = ShortcutA(inplanes, planes, s)
                    blocks.append(BasicBlock(inplanes, planes, s, downsample=shortcut))
                inplanes = planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(inplanes, num_classes)
        init_resnet_(self)

    def forward(self, x):
        check_image_input(x, self.name, self.in_channels, self.min_input_size)
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x).flatten(1))


class CifarPreActResNet(nn.Module):
    """He et al. 2016's CIFAR network: conv 3x3 (16), three stages of pre-activation units,
    BN-ReLU, global average pool, fc. ``x: (N, in_channels, H, W) -> (N, num_classes)``."""

    def __init__(self, block: type[PreActBasicBlock | PreActBottleneck], n: int,
                 num_classes: int = 10, in_channels: int = 3, name: str = "CifarPreActResNet"):
        super().__init__()
        self.name, self.in_channels, self.min_input_size = name, in_channels, 4
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        inplanes = 16
        for i, (planes, stride) in enumerate(zip(CIFAR_STAGE_PLANES, CIFAR_STAGE_STRIDES,
                                                 strict=True)):
            setattr(self, f"layer{i + 1}", make_preact_stage(block, inplanes, planes, n, stride))
            inplanes = planes * block.expansion
        self.bn = nn.BatchNorm2d(inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(inplanes, num_classes)
        init_resnet_(self)

    def forward(self, x):
        check_image_input(x, self.name, self.in_channels, self.min_input_size)
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        x = self.avgpool(self.relu(self.bn(x)))
        return self.fc(x.flatten(1))


# ---------------------------------------------------------------- named variants


def _cifar(name: str, num_classes: int, in_channels: int) -> CifarResNet:
    return CifarResNet(CIFAR_CONFIGS[name], num_classes, in_channels,
                       plain=name.startswith("plain"), name=name)


def resnet20(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """CIFAR ResNet-20 (n=3, 0.27M parameters)."""
    return _cifar("resnet20", num_classes, in_channels)


def resnet32(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """CIFAR ResNet-32 (n=5, 0.46M parameters)."""
    return _cifar("resnet32", num_classes, in_channels)


def resnet44(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """CIFAR ResNet-44 (n=7, 0.66M parameters)."""
    return _cifar("resnet44", num_classes, in_channels)


def resnet56(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """CIFAR ResNet-56 (n=9, 0.85M parameters)."""
    return _cifar("resnet56", num_classes, in_channels)


def resnet110(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """CIFAR ResNet-110 (n=18, 1.7M parameters)."""
    return _cifar("resnet110", num_classes, in_channels)


def plain20(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """The 20-layer plain net of He et al. 2015, Fig. 6 (resnet20 without shortcuts)."""
    return _cifar("plain20", num_classes, in_channels)


def plain32(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """The 32-layer plain net (resnet32 without shortcuts)."""
    return _cifar("plain32", num_classes, in_channels)


def plain44(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """The 44-layer plain net (resnet44 without shortcuts)."""
    return _cifar("plain44", num_classes, in_channels)


def plain56(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """The 56-layer plain net (resnet56 without shortcuts)."""
    return _cifar("plain56", num_classes, in_channels)


def plain110(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """The 110-layer plain net (resnet110 without shortcuts)."""
    return _cifar("plain110", num_classes, in_channels)


def _preact_cifar(name: str, num_classes: int, in_channels: int) -> CifarPreActResNet:
    unit, n = PREACT_CIFAR_CONFIGS[name]
    block = PreActBasicBlock if unit == "basic" else PreActBottleneck
    return CifarPreActResNet(block, n, num_classes, in_channels, name=name)


def preact_resnet110(num_classes: int = 10, in_channels: int = 3) -> CifarPreActResNet:
    """Pre-activation ResNet-110 for CIFAR (He et al. 2016; 1.7M parameters)."""
    return _preact_cifar("preact_resnet110", num_classes, in_channels)


def preact_resnet164(num_classes: int = 10, in_channels: int = 3) -> CifarPreActResNet:
    """Pre-activation ResNet-164 for CIFAR, bottleneck units (He et al. 2016; 1.7M parameters)."""
    return _preact_cifar("preact_resnet164", num_classes, in_channels)


def preact_resnet1001(num_classes: int = 10, in_channels: int = 3) -> CifarPreActResNet:
    """Pre-activation ResNet-1001 for CIFAR (He et al. 2016; 10.2M parameters)."""
    return _preact_cifar("preact_resnet1001", num_classes, in_channels)
