"""ZFNet: Zeiler & Fergus 2013, "Visualizing and Understanding Convolutional Networks".

Their Figure 3 (input 224x224x3), AlexNet with a smaller, denser first layer::

    layer  filters                  then                                        output
    1      96 7x7, stride 2         ReLU, 3x3 max pool stride 2, contrast norm  110 -> 55
    2      256 5x5, stride 2        ReLU, 3x3 max pool stride 2, contrast norm  26 -> 13
    3      384 3x3, stride 1        ReLU                                        13
    4      384 3x3, stride 1        ReLU                                        13
    5      256 3x3, stride 1        ReLU, 3x3 max pool stride 2                 13 -> 6
    6      4096 fully connected     ReLU, dropout 0.5
    7      4096 fully connected     ReLU, dropout 0.5
    out    1000 (softmax)

Against AlexNet: 7x7 stride-2 filters instead of 11x11 stride 4 in layer 1, stride 2 in
layer 2, and dense connections in layers 3-5 (one GPU, no groups; Section 5). The paper
gives the sizes but not the padding: a padding of 1 in layer 1 (224 -> 110) and pools
that round up like cuda-convnet's and Caffe's (``ceil_mode=True``: 110 -> 55, 26 -> 13,
13 -> 6) reproduce every size of Figure 3; layers 3-5 are padded by 1.

The "contrast normalization across feature maps" (Section 2) is a local response
normalization; the paper does not give its constants, so AlexNet's are used
(``k=2, n=5, alpha=1e-4, beta=0.75`` in the paper's formula, i.e.
``nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2)``; see :mod:`minicnn.models.alexnet`).
Initialization as Section 3: weights ~ N(0, 0.01^2) ("initialized to 10^-2"), biases 0.
(Their renormalization of filters whose RMS exceeds 0.1 is a training rule, not part of
the model.) As in AlexNet, an adaptive 6x6 average pool -- the identity at 224x224 --
lets the network take smaller inputs (at least ``min_input_size``).

The paper does not state a parameter count; Figure 3's layers give 62,357,608
(``zfnet()``, 1000 classes) and 1.17 G multiply-adds at 224x224.
"""

from __future__ import annotations

from typing import NamedTuple

from minicnn import nn
from minicnn.models.input_check import check_image_input

__all__ = ["ZFNET_LAYERS", "ZFNet", "make_features", "zfnet"]


class Conv(NamedTuple):
    """A convolution followed by ReLU."""

    out_channels: int
    kernel: int
    stride: int
    padding: int


LRN = "LRN"  # contrast normalization across feature maps
POOL = "M"  # 3x3 max pool, stride 2, rounding up

# Figure 3, as data
ZFNET_LAYERS: list = [
    Conv(96, 7, 2, 1), POOL, LRN,
    Conv(256, 5, 2, 0), POOL, LRN,
    Conv(384, 3, 1, 1),
    Conv(384, 3, 1, 1),
    Conv(256, 3, 1, 1), POOL,
]
ZFNET_MIN_INPUT_SIZE = 47  # the smallest input for which every layer keeps >= 1 pixel


def make_features(cfg: list, in_channels: int = 3) -> nn.Sequential:
    """Layers 1-5: each ``Conv`` gives Conv2d + ReLU, ``POOL`` a 3x3 max pool with stride 2
    (rounding up), ``LRN`` the contrast normalization."""
    layers: list[nn.Module] = []
    for item in cfg:
        if item == POOL:
            layers.append(nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True))
        elif item == LRN:
            layers.append(nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0))
        else:
            layers += [nn.Conv2d(in_channels, item.out_channels, item.kernel, item.stride,
                                 item.padding), nn.ReLU(inplace=True)]
            in_channels = item.out_channels
    return nn.Sequential(*layers)


class ZFNet(nn.Module):
    """``x: (N, in_channels, H, W) -> (N, num_classes)``, ``H, W >= 47`` (224 in the paper).

    ``features`` (Figure 3's layers 1-5), ``avgpool`` (adaptive 6x6), ``classifier``
    (layers 6, 7 and the output layer).
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5):
        super().__init__()
        self.name, self.in_channels, self.min_input_size = "zfnet", in_channels, \
            ZFNET_MIN_INPUT_SIZE
        self.features = make_features(ZFNET_LAYERS, in_channels)
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Linear(ZFNET_LAYERS[-2].out_channels * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        check_image_input(x, self.name, self.in_channels, self.min_input_size)
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def zfnet(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> ZFNet:
    """ZFNet (Zeiler & Fergus 2013, Figure 3): 62,357,608 parameters, 1.17 G mult-adds."""
    return ZFNet(num_classes, in_channels, dropout)
