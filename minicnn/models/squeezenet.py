"""SqueezeNet: Iandola et al. 2016, "SqueezeNet: AlexNet-level accuracy with 50x fewer
parameters and <0.5MB model size", built exactly as torchvision builds it.

The Fire module (their Figure 1): a 1x1 "squeeze" convolution to few channels, then
an "expand" layer of 1x1 and 3x3 convolutions side by side, concatenated::

    x -> squeeze 1x1 (s channels), ReLU -+-> expand 1x1 (e1), ReLU -+-> concat (e1 + e3)
                                         +-> expand 3x3 (e3), ReLU -+

The networks (their Table 1; v1.1 is the torchvision/"SqueezeNet 1.1" variant with a 3x3
first convolution and earlier pools, 2.4x less computation)::

    v1.0: conv 7x7/2, 96 | pool | fire2-4 | pool | fire5-8 | pool | fire9 | classifier
    v1.1: conv 3x3/2, 64 | pool | fire2-3 | pool | fire4-5 | pool | fire6-9 | classifier
    fire(s, e1, e3): 16,64,64  16,64,64  32,128,128  32,128,128  48,192,192  48,192,192
                     64,256,256  64,256,256
    classifier: dropout 0.5, conv 1x1 to num_classes, ReLU, global average pool

Pools are 3x3 with stride 2, rounding up (``ceil_mode=True``). No fully connected layer:
1.25M parameters (v1.0) against AlexNet's 61M. Initialization as torchvision: Kaiming
uniform for every convolution except the last, N(0, 0.01^2) for the last; biases 0.
"""

from __future__ import annotations

from minicnn import nn
from minicnn.autograd.ops import cat
from minicnn.models.input_check import check_image_input

__all__ = ["SQUEEZENET_CONFIGS", "Fire", "SqueezeNet", "squeezenet1_0", "squeezenet1_1"]

# ---------------------------------------------------------------- the table, as data

POOL = "M"
# version: (first conv (out, kernel, stride), layers: POOL or Fire(squeeze, expand1x1,
# expand3x3), min input size)
SQUEEZENET_CONFIGS: dict[str, tuple[tuple[int, int, int], list, int]] = {
    "1_0": ((96, 7, 2), [POOL, (16, 64, 64), (16, 64, 64), (32, 128, 128), POOL,
                         (32, 128, 128), (48, 192, 192), (48, 192, 192), (64, 256, 256), POOL,
                         (64, 256, 256)], 21),
    "1_1": ((64, 3, 2), [POOL, (16, 64, 64), (16, 64, 64), POOL, (32, 128, 128),
                         (32, 128, 128), POOL, (48, 192, 192), (48, 192, 192), (64, 256, 256),
                         (64, 256, 256)], 17),
}


# ---------------------------------------------------------------- the block


class Fire(nn.Module):
    """``x: (N, inplanes, H, W) -> (N, expand1x1_planes + expand3x3_planes, H, W)``."""

    def __init__(self, inplanes: int, squeeze_planes: int, expand1x1_planes: int,
                 expand3x3_planes: int):
        super().__init__()
        self.inplanes = inplanes
        self.squeeze = nn.Conv2d(inplanes, squeeze_planes, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.squeeze_activation(self.squeeze(x))
        return cat([self.expand1x1_activation(self.expand1x1(x)),
                    self.expand3x3_activation(self.expand3x3(x))], 1)


# ---------------------------------------------------------------- the network


class SqueezeNet(nn.Module):
    """``x: (N, in_channels, H, W) -> (N, num_classes)``; ``version`` "1_0" or "1_1"."""

    def __init__(self, version: str = "1_0", num_classes: int = 1000, dropout: float = 0.5,
                 in_channels: int = 3):
        super().__init__()
        if version not in SQUEEZENET_CONFIGS:
            raise ValueError(f"SqueezeNet: version must be '1_0' or '1_1', got {version!r}")
        (out, kernel, stride), cfg, self.min_input_size = SQUEEZENET_CONFIGS[version]
        self.name, self.in_channels = f"squeezenet{version}", in_channels
        self.num_classes = num_classes
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out, kernel_size=kernel, stride=stride),
                                   nn.ReLU(inplace=True)]
        channels = out
        for item in cfg:
            if item == POOL:
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True))
            else:
                layers.append(Fire(channels, *item))
                channels = item[1] + item[2]
        self.features = nn.Sequential(*layers)
        final_conv = nn.Conv2d(channels, num_classes, kernel_size=1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), final_conv, nn.ReLU(inplace=True),
                                        nn.AdaptiveAvgPool2d((1, 1)))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                if m is final_conv:
                    nn.init.normal_(m.weight, mean=0.0, std=0.01)
                else:
                    nn.init.kaiming_uniform_(m.weight)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        check_image_input(x, self.name, self.in_channels, self.min_input_size)
        return self.classifier(self.features(x)).flatten(1)


# ---------------------------------------------------------------- named variants


def squeezenet1_0(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> SqueezeNet:
    """SqueezeNet 1.0: 1,248,424 parameters, 0.819 G mult-adds at 224x224; inputs >= 21."""
    return SqueezeNet("1_0", num_classes, in_channels=in_channels, **kwargs)


def squeezenet1_1(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> SqueezeNet:
    """SqueezeNet 1.1: 1,235,496 parameters, 0.349 G mult-adds at 224x224; inputs >= 17."""
    return SqueezeNet("1_1", num_classes, in_channels=in_channels, **kwargs)
