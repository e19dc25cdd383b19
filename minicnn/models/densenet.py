"""DenseNet (Huang et al. 2017, "Densely Connected Convolutional Networks"), built exactly
as torchvision builds it, and the CIFAR DenseNet-BC of the paper's Table 2.

Inside a dense block every layer sees the concatenation of the block's input and the
outputs of all the layers before it, and adds ``k`` (the growth rate) new channels::

    x_l = H_l([x_0, x_1, ..., x_{l-1}])     H_l = BN-ReLU-conv1x1(4k)-BN-ReLU-conv3x3(k)

(the "B" of DenseNet-BC: a 1x1 bottleneck to ``bn_size * k = 4k`` channels first).
Between blocks a transition (BN-ReLU-conv1x1-avgpool 2x2) halves the resolution and,
with compression ``theta = 0.5`` (the "C"), halves the channels.

Huang et al. 2017, Table 1 (ImageNet, 224x224 input, k = 32; DenseNet-161: k = 48)::

    layers            output    121          169          201          161
    convolution       112x112   7x7 conv, stride 2 (2k channels)
    pooling           56x56     3x3 max pool, stride 2
    dense block 1     56x56     [1x1, 3x3] x 6   x 6          x 6          x 6
    transition 1      28x28     1x1 conv, 2x2 average pool, stride 2
    dense block 2     28x28     x 12         x 12         x 12         x 12
    transition 2      14x14     ...
    dense block 3     14x14     x 24         x 32         x 48         x 36
    transition 3      7x7       ...
    dense block 4     7x7       x 16         x 32         x 32         x 24
    classification    1x1       7x7 global average pool, fc to num_classes

DenseNet-BC for CIFAR (Sec. 3, "Implementation Details"; Table 2, ``L = 100, k = 12``):
a 3x3 convolution with ``2k = 24`` channels on the 32x32 image, three dense blocks of
``(L - 4) / 6 = 16`` bottleneck layers each at 32x32, 16x16 and 8x8, transitions with
compression 0.5, global average pool, fc. Table 2 gives it 0.8M parameters (4.51% error
on C10+); this construction has 769,162 (10 classes).

Attribute names follow torchvision's ``models/densenet.py`` (``features.denseblock1.
denselayer1.norm1``...), so state dict keys and shapes are identical, and so does the
initialization (Kaiming normal convolutions, BN weight 1 / bias 0, Linear bias 0).
"""

from __future__ import annotations

from collections import OrderedDict

from minicnn import nn
from minicnn.autograd.ops import cat
from minicnn.models.input_check import check_image_input
from minicnn.nn import functional as F

__all__ = [
    "DENSENET_CONFIGS", "DenseNet", "DenseLayer", "DenseBlock", "Transition",
    "densenet121", "densenet161", "densenet169", "densenet201", "densenet_bc_100_12",
]

# ---------------------------------------------------------------- the table, as data

# name: (growth rate k, layers per dense block, channels of the first convolution (2k),
#        CIFAR stem (3x3 conv, no pooling) instead of the ImageNet one)
DENSENET_CONFIGS: dict[str, tuple[int, tuple[int, ...], int, bool]] = {
    "densenet121": (32, (6, 12, 24, 16), 64, False),
    "densenet161": (48, (6, 12, 36, 24), 96, False),
    "densenet169": (32, (6, 12, 32, 32), 64, False),
    "densenet201": (32, (6, 12, 48, 32), 64, False),
    "densenet_bc_100_12": (12, (16, 16, 16), 24, True),  # L = 100: (100 - 4) / 6 = 16
}

# ---------------------------------------------------------------- blocks


class DenseLayer(nn.Module):
    """``H_l``: BN-ReLU-conv1x1 (``bn_size * k``), BN-ReLU-conv3x3 (``k``).

    ``forward(features)`` takes the list of all earlier feature maps (or one tensor),
    ``[(N, C_0, H, W), (N, k, H, W), ...] -> (N, k, H, W)``.
    """

    def __init__(self, num_input_features: int, growth_rate: int, bn_size: int,
                 drop_rate: float, memory_efficient: bool = False):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, kernel_size=1,
                               stride=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, stride=1,
                               padding=1, bias=False)
        self.drop_rate = float(drop_rate)
        self.memory_efficient = memory_efficient  # accepted for torchvision compatibility

    def forward(self, features):
        concatenated = cat(features, 1) if isinstance(features, (list, tuple)) \
            else features
        out = self.conv1(self.relu1(self.norm1(concatenated)))
        out = self.conv2(self.relu2(self.norm2(out)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return out


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers ``denselayer1...``; the output concatenates the input
    and every layer's ``k`` new channels:
    ``(N, C, H, W) -> (N, C + num_layers * k, H, W)``."""

    def __init__(self, num_layers: int, num_input_features: int, bn_size: int,
                 growth_rate: int, drop_rate: float, memory_efficient: bool = False):
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}",
                            DenseLayer(num_input_features + i * growth_rate, growth_rate,
                                       bn_size, drop_rate, memory_efficient))

    def forward(self, init_features):
        features = [init_features]
        for layer in self.values():
            features.append(layer(features))
        return cat(features, 1)


class Transition(nn.Sequential):
    """BN-ReLU-conv1x1-avgpool 2x2: ``(N, C_in, H, W) -> (N, C_out, H / 2, W / 2)``
    (``C_out = theta * C_in``: compression)."""

    def __init__(self, num_input_features: int, num_output_features: int):
        super().__init__(OrderedDict([
            ("norm", nn.BatchNorm2d(num_input_features)),
            ("relu", nn.ReLU(inplace=True)),
            ("conv", nn.Conv2d(num_input_features, num_output_features, kernel_size=1,
                               stride=1, bias=False)),
            ("pool", nn.AvgPool2d(kernel_size=2, stride=2)),
        ]))


# ---------------------------------------------------------------- network


class DenseNet(nn.Module):
    """DenseNet-BC: ``x: (N, in_channels, H, W) -> (N, num_classes)``.

    Arguments as torchvision's ``DenseNet`` (``memory_efficient`` is accepted and ignored:
    minicnn has no gradient checkpointing), plus ``in_channels``, ``compression`` (theta,
    0.5), ``small_inputs`` (the CIFAR stem: 3x3 convolution at stride 1, no max pool) and
    ``name`` (for error messages).
    """

    def __init__(self, growth_rate: int = 32, block_config: tuple[int, ...] = (6, 12, 24, 16),
                 num_init_features: int = 64, bn_size: int = 4, drop_rate: float = 0,
                 num_classes: int = 1000, memory_efficient: bool = False, in_channels: int = 3,
                 compression: float = 0.5, small_inputs: bool = False,
                 name: str = "DenseNet"):
        super().__init__()
        if not 0 < compression <= 1:
            raise ValueError(f"{name}: compression must be in (0, 1], got {compression}")
        self.name, self.in_channels = name, in_channels
        if small_inputs:
            stem = [("conv0", nn.Conv2d(in_channels, num_init_features, kernel_size=3,
                                        stride=1, padding=1, bias=False))]
            stem_stride = 1
        else:
            stem = [("conv0", nn.Conv2d(in_channels, num_init_features, kernel_size=7,
                                        stride=2, padding=3, bias=False)),
                    ("norm0", nn.BatchNorm2d(num_init_features)),
                    ("relu0", nn.ReLU(inplace=True)),
                    ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))]
            stem_stride = 4
        self.features = nn.Sequential(OrderedDict(stem))

        num_features = num_init_features
        for i, num_layers in enumerate(block_config):
            self.features.add_module(
                f"denseblock{i + 1}",
                DenseBlock(num_layers, num_features, bn_size, growth_rate, drop_rate,
                           memory_efficient))
            num_features += num_layers * growth_rate
            if i != len(block_config) - 1:
                out_features = int(num_features * compression)
                self.features.add_module(f"transition{i + 1}",
                                         Transition(num_features, out_features))
                num_features = out_features
        self.features.add_module("norm5", nn.BatchNorm2d(num_features))
        self.classifier = nn.Linear(num_features, num_classes)
        # the total stride: the stem, then one 2x2 pool per transition
        self.min_input_size = stem_stride * 2 ** (len(block_config) - 1)

        for m in self.modules():  # torchvision's ("official init from torch repo")
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        check_image_input(x, self.name, self.in_channels, self.min_input_size)
        out = F.relu(self.features(x))
        out = F.adaptive_avg_pool2d(out, (1, 1))
        return self.classifier(out.flatten(1))


# ---------------------------------------------------------------- named variants


def _densenet(name: str, num_classes: int, in_channels: int, **kwargs) -> DenseNet:
    growth_rate, blocks, init_features, small_inputs = DENSENET_CONFIGS[name]
    return DenseNet(growth_rate, blocks, init_features, num_classes=num_classes,
                    in_channels=in_channels, small_inputs=small_inputs, name=name, **kwargs)


def densenet121(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> DenseNet:
    """DenseNet-121 (k = 32): 8.0M parameters, 2.83 GMACs at 224x224."""
    return _densenet("densenet121", num_classes, in_channels, **kwargs)


def densenet161(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> DenseNet:
    """DenseNet-161 (k = 48): 28.7M parameters, 7.73 GMACs at 224x224."""
    return _densenet("densenet161", num_classes, in_channels, **kwargs)


def densenet169(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> DenseNet:
    """DenseNet-169 (k = 32): 14.1M parameters, 3.36 GMACs at 224x224."""
    return _densenet("densenet169", num_classes, in_channels, **kwargs)


def densenet201(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> DenseNet:
    """DenseNet-201 (k = 32): 20.0M parameters, 4.29 GMACs at 224x224."""
    return _densenet("densenet201", num_classes, in_channels, **kwargs)


def densenet_bc_100_12(num_classes: int = 10, in_channels: int = 3, **kwargs) -> DenseNet:
    """DenseNet-BC for CIFAR (L = 100, k = 12, compression 0.5), 32x32 input: 0.8M
    parameters per Huang et al. 2017, Table 2 (769,162 here with 10 classes)."""
    return _densenet("densenet_bc_100_12", num_classes, in_channels, **kwargs)
