"""Inception v3: Szegedy et al. 2015, "Rethinking the Inception Architecture for Computer
Vision", built exactly as torchvision builds it (the descendant of GoogLeNet, whose
``BasicConv2d`` -- convolution, BatchNorm eps 0.001, ReLU -- it shares).

Their Table 1 (input 299x299x3), with torchvision's module names::

    Conv2d_1a_3x3   3x3/2, 32          149x149      Mixed_5b-5d  InceptionA x3   35x35x288
    Conv2d_2a_3x3   3x3, 32            147x147      Mixed_6a     InceptionB      17x17x768
    Conv2d_2b_3x3   3x3 pad 1, 64      147x147      Mixed_6b-6e  InceptionC x4   17x17x768
    maxpool1        3x3/2              73x73        (AuxLogits on 17x17x768, training only)
    Conv2d_3b_1x1   1x1, 80            73x73        Mixed_7a     InceptionD      8x8x1280
    Conv2d_4a_3x3   3x3, 192           71x71        Mixed_7b-7c  InceptionE x2   8x8x2048
    maxpool2        3x3/2              35x35        avgpool, dropout 0.5, fc     num_classes

The blocks (Figures 5-7 of the paper, "A" to "E" in torchvision):

* InceptionA: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | 3x3 avg pool -> 1x1.
* InceptionB (grid reduction 35 -> 17): 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | 3x3/2 max pool.
* InceptionC (factorized 7x7): 1x1 | 1x1 -> 1x7 -> 7x1 | 1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 |
  avg pool -> 1x1.
* InceptionD (grid reduction 17 -> 8): 1x1 -> 3x3/2 | 1x1 -> 1x7 -> 7x1 -> 3x3/2 | max pool.
* InceptionE (expanded filter bank): 1x1 | 1x1 -> [1x3, 3x1] | 1x1 -> 3x3 -> [1x3, 3x1] |
  avg pool -> 1x1.
* InceptionAux: 5x5/3 avg pool -> 1x1 (128) -> 5x5 (768) -> global pool -> fc.

Sizes: without the auxiliary classifier (or in eval mode) the network takes inputs of
75x75 and more (Mixed_6a then sees 7x7 and Mixed_7a 3x3). The auxiliary classifier's
5x5/3 pool followed by its unpadded 5x5 convolution needs a 17x17 Mixed_6e map, i.e. a
299x299 input: in training mode with ``aux_logits=True`` the minimum is 299.

Initialization as torchvision: truncated normal (cut at +-2) with std 0.1 for every
convolution and linear weight, except the auxiliary classifier's ``fc`` (std 0.001);
BatchNorm weight 1, bias 0. (torchvision also tags the auxiliary ``conv1`` block with std
0.01, but on the block, not on its convolution, so that convolution gets 0.1 too; this
is reproduced.)
"""

from __future__ import annotations

from collections import namedtuple

from minicnn import nn
from minicnn.autograd.ops import cat
from minicnn.models.googlenet import BasicConv2d, renormalize_imagenet_input
from minicnn.models.input_check import check_image_input
from minicnn.nn import functional as F

__all__ = [
    "Inception3", "InceptionA", "InceptionAux", "InceptionB", "InceptionC", "InceptionD",
    "InceptionE", "InceptionOutputs", "inception_v3",
]

InceptionOutputs = namedtuple("InceptionOutputs", ["logits", "aux_logits"])

MIN_INPUT_SIZE = 75  # Mixed_7a needs a 3x3 map
MIN_AUX_INPUT_SIZE = 299  # the auxiliary classifier needs a 17x17 Mixed_6e map

# ---------------------------------------------------------------- blocks


class InceptionA(nn.Module):
    """``(N, in, 35, 35) -> (N, 224 + pool_features, 35, 35)``."""

    def __init__(self, in_channels: int, pool_features: int, conv_block=None):
        super().__init__()
        conv_block = conv_block or BasicConv2d
        self.branch1x1 = conv_block(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = conv_block(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = conv_block(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = conv_block(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = conv_block(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = conv_block(96, 96, kernel_size=3, padding=1)
        self.branch_pool = conv_block(in_channels, pool_features, kernel_size=1)

    def forward(self, x):
        branch1x1 = self.branch1x1(x)
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return cat([branch1x1, branch5x5, branch3x3dbl, branch_pool], 1)


class InceptionB(nn.Module):
    """Grid reduction: ``(N, in, H, W) -> (N, 480 + in, (H - 3) / 2 + 1, ...)``."""

    def __init__(self, in_channels: int, conv_block=None):
        super().__init__()
        conv_block = conv_block or BasicConv2d
        self.branch3x3 = conv_block(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = conv_block(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = conv_block(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = conv_block(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
        branch3x3 = self.branch3x3(x)
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return cat([branch3x3, branch3x3dbl, branch_pool], 1)


class InceptionC(nn.Module):
    """7x7 convolutions factorized into 1x7 and 7x1: ``(N, in, 17, 17) -> (N, 768, 17, 17)``."""

    def __init__(self, in_channels: int, channels_7x7: int, conv_block=None):
        super().__init__()
        conv_block = conv_block or BasicConv2d
        c7 = channels_7x7
        self.branch1x1 = conv_block(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = conv_block(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = conv_block(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = conv_block(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = conv_block(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = conv_block(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = conv_block(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = conv_block(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = conv_block(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = conv_block(in_channels, 192, kernel_size=1)

    def forward(self, x):
        branch1x1 = self.branch1x1(x)
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = x
        for i in range(1, 6):
            branch7x7dbl = getattr(self, f"branch7x7dbl_{i}")(branch7x7dbl)
        branch_pool = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return cat([branch1x1, branch7x7, branch7x7dbl, branch_pool], 1)


class InceptionD(nn.Module):
    """Grid reduction: ``(N, in, H, W) -> (N, 512 + in, (H - 3) / 2 + 1, ...)``."""

    def __init__(self, in_channels: int, conv_block=None):
        super().__init__()
        conv_block = conv_block or BasicConv2d
        self.branch3x3_1 = conv_block(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = conv_block(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = conv_block(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = conv_block(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = conv_block(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = conv_block(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
        branch3x3 = self.branch3x3_2(self.branch3x3_1(x))
        branch7x7x3 = x
        for i in range(1, 5):
            branch7x7x3 = getattr(self, f"branch7x7x3_{i}")(branch7x7x3)
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return cat([branch3x3, branch7x7x3, branch_pool], 1)


class InceptionE(nn.Module):
    """Expanded filter bank: ``(N, in, 8, 8) -> (N, 2048, 8, 8)``."""

    def __init__(self, in_channels: int, conv_block=None):
        super().__init__()
        conv_block = conv_block or BasicConv2d
        self.branch1x1 = conv_block(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = conv_block(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = conv_block(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = conv_block(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = conv_block(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = conv_block(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = conv_block(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = conv_block(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = conv_block(in_channels, 192, kernel_size=1)

    def forward(self, x):
        branch1x1 = self.branch1x1(x)
        b = self.branch3x3_1(x)
        branch3x3 = cat([self.branch3x3_2a(b), self.branch3x3_2b(b)], 1)
        b = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = cat([self.branch3x3dbl_3a(b), self.branch3x3dbl_3b(b)], 1)
        branch_pool = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return cat([branch1x1, branch3x3, branch3x3dbl, branch_pool], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: ``(N, in, 17, 17) -> (N, num_classes)``."""

    def __init__(self, in_channels: int, num_classes: int, conv_block=None):
        super().__init__()
        conv_block = conv_block or BasicConv2d
        self.conv0 = conv_block(in_channels, 128, kernel_size=1)
        self.conv1 = conv_block(128, 768, kernel_size=5)
        self.conv1.stddev = 0.01  # on the block: not used by the initialization (see above)
        self.fc = nn.Linear(768, num_classes)
        self.fc.stddev = 0.001

    def forward(self, x):
        x = F.avg_pool2d(x, kernel_size=5, stride=3)  # N x 768 x 5 x 5
        x = self.conv1(self.conv0(x))  # N x 768 x 1 x 1
        x = F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)
        return self.fc(x)


# ---------------------------------------------------------------- the network

# the table, as data: (module name, block, extra arguments) in the order of Table 1
INCEPTION_V3_STAGES: list[tuple[str, type[nn.Module], dict]] = [
    ("Mixed_5b", InceptionA, {"in_channels": 192, "pool_features": 32}),
    ("Mixed_5c", InceptionA, {"in_channels": 256, "pool_features": 64}),
    ("Mixed_5d", InceptionA, {"in_channels": 288, "pool_features": 64}),
    ("Mixed_6a", InceptionB, {"in_channels": 288}),
    ("Mixed_6b", InceptionC, {"in_channels": 768, "channels_7x7": 128}),
    ("Mixed_6c", InceptionC, {"in_channels": 768, "channels_7x7": 160}),
    ("Mixed_6d", InceptionC, {"in_channels": 768, "channels_7x7": 160}),
    ("Mixed_6e", InceptionC, {"in_channels": 768, "channels_7x7": 192}),
    ("Mixed_7a", InceptionD, {"in_channels": 768}),
    ("Mixed_7b", InceptionE, {"in_channels": 1280}),
    ("Mixed_7c", InceptionE, {"in_channels": 2048}),
]


class Inception3(nn.Module):
    """``x: (N, in_channels, H, W) -> (N, num_classes)``, or ``InceptionOutputs(logits,
    aux_logits)`` in training mode with ``aux_logits``. Arguments as torchvision's."""

    def __init__(self, num_classes: int = 1000, aux_logits: bool = True,
                 transform_input: bool = False, init_weights: bool | None = None,
                 dropout: float = 0.5, in_channels: int = 3):
        super().__init__()
        if transform_input and in_channels != 3:
            raise ValueError(f"inception_v3: transform_input=True needs in_channels=3 (RGB), "
                             f"got in_channels={in_channels}")
        self.name, self.in_channels = "inception_v3", in_channels
        self.aux_logits, self.transform_input = aux_logits, transform_input
        self.Conv2d_1a_3x3 = BasicConv2d(in_channels, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        for name, block, kwargs in INCEPTION_V3_STAGES:
            setattr(self, name, block(**kwargs))
            if name == "Mixed_6e":  # registered here, as in torchvision (state_dict order)
                self.AuxLogits = InceptionAux(768, num_classes) if aux_logits else None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(2048, num_classes)
        if init_weights is None or init_weights:
            for m in self.modules():
                if isinstance(m, nn.Conv2d | nn.Linear):
                    stddev = float(getattr(m, "stddev", 0.1))
                    nn.init.trunc_normal_(m.weight, mean=0.0, std=stddev, a=-2, b=2)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)

    def _transform_input(self, x):
        return renormalize_imagenet_input(x) if self.transform_input else x

    def forward(self, x):
        with_aux = self.training and self.aux_logits
        check_image_input(x, self.name, self.in_channels,
                          MIN_AUX_INPUT_SIZE if with_aux else MIN_INPUT_SIZE)
        x = self._transform_input(x)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # N x 64 x 147 x 147
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(self.maxpool1(x)))       # N x 192 x 71 x 71
        x = self.maxpool2(x)                                               # N x 192 x 35 x 35
        aux = None
        for name, _, _ in INCEPTION_V3_STAGES:
            x = getattr(self, name)(x)
            if name == "Mixed_6e" and with_aux:                            # N x 768 x 17 x 17
                aux = self.AuxLogits(x)
        x = self.dropout(self.avgpool(x)).flatten(1)                       # N x 2048
        x = self.fc(x)
        return InceptionOutputs(x, aux) if with_aux else x


def inception_v3(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> Inception3:
    """torchvision's Inception v3: 27,161,264 parameters (23,834,568 without the auxiliary
    classifier), 5.713 G mult-adds at 299x299; inputs >= 75 (299 when training with
    ``aux_logits=True``, the default)."""
    return Inception3(num_classes, in_channels=in_channels, **kwargs)
