"""VGG: Simonyan & Zisserman 2014, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", built exactly as torchvision builds it.

Their Table 1 (ConvNet configurations), one column per network; every convolution is
3x3 with padding 1 (the size is kept) followed by ReLU, every "M" a 2x2 max pool with
stride 2 (the size halves)::

    A (vgg11)        B (vgg13)        D (vgg16)          E (vgg19)
    64               64 64            64 64              64 64                 M
    128              128 128          128 128            128 128               M
    256 256          256 256          256 256 256        256 256 256 256       M
    512 512          512 512          512 512 512        512 512 512 512       M
    512 512          512 512          512 512 512        512 512 512 512       M
    FC-4096, FC-4096, FC-1000 (ReLU and dropout 0.5 after the first two)

(Configuration C, with three 1x1 convolutions, is not in torchvision and not here.) The
``_bn`` variants put a BatchNorm after every convolution (not in the paper). An adaptive
7x7 average pool -- the identity at 224x224 -- sits between the convolutions and the
classifier, so any input of at least 32x32 works. Initialization as torchvision: Kaiming
normal (fan_out, ReLU) for convolutions, N(0, 0.01^2) for linear layers, biases 0.
"""

from __future__ import annotations

from minicnn import nn
from minicnn.models.input_check import check_image_input

__all__ = [
    "VGG", "VGG_CONFIGS", "init_vgg_", "make_layers",
    "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
]

# ---------------------------------------------------------------- the table, as data

VGG_CONFIGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
          512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}
VGG_MIN_INPUT_SIZE = 32  # five 2x2 pools: 32 -> 1


def make_layers(cfg: list[int | str], batch_norm: bool = False,
                in_channels: int = 3) -> nn.Sequential:
    """``features``: Conv2d 3x3 (+ BatchNorm2d) + ReLU for each number, a 2x2 max pool for
    each "M". ``x: (N, in_channels, H, W) -> (N, 512, H / 32, W / 32)``."""
    layers: list[nn.Module] = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(inplace=True))
            in_channels = v
    return nn.Sequential(*layers)


# ---------------------------------------------------------------- the network


class VGG(nn.Module):
    """``x: (N, in_channels, H, W) -> (N, num_classes)``, ``H, W >= 32`` (224 in the paper).

    ``features`` (from :func:`make_layers`), ``avgpool`` (adaptive, to 7x7), ``classifier``.
    """

    def __init__(self, features: nn.Sequential, num_classes: int = 1000,
                 init_weights: bool = True, dropout: float = 0.5, in_channels: int = 3,
                 name: str = "VGG"):
        super().__init__()
        self.name, self.in_channels, self.min_input_size = name, in_channels, VGG_MIN_INPUT_SIZE
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        if init_weights:
            init_vgg_(self)

    def forward(self, x):
        check_image_input(x, self.name, self.in_channels, self.min_input_size)
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def init_vgg_(model: nn.Module) -> None:
    """torchvision's initialization: Kaiming normal (fan_out, ReLU) for convolutions,
    N(0, 0.01^2) for linear layers, biases 0; BatchNorm weight 1, bias 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.constant_(m.bias, 0)


# ---------------------------------------------------------------- named variants


def _vgg(name: str, cfg: str, batch_norm: bool, num_classes: int, in_channels: int,
         **kwargs) -> VGG:
    return VGG(make_layers(VGG_CONFIGS[cfg], batch_norm, in_channels), num_classes,
               in_channels=in_channels, name=name, **kwargs)


def vgg11(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-11 (configuration A): 132.9M parameters, 7.6 G mult-adds at 224x224."""
    return _vgg("vgg11", "A", False, num_classes, in_channels, **kwargs)


def vgg11_bn(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-11 with BatchNorm: 132.9M parameters, 7.6 G mult-adds at 224x224."""
    return _vgg("vgg11_bn", "A", True, num_classes, in_channels, **kwargs)


def vgg13(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-13 (configuration B): 133.0M parameters, 11.3 G mult-adds at 224x224."""
    return _vgg("vgg13", "B", False, num_classes, in_channels, **kwargs)


def vgg13_bn(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-13 with BatchNorm: 133.1M parameters, 11.3 G mult-adds at 224x224."""
    return _vgg("vgg13_bn", "B", True, num_classes, in_channels, **kwargs)


def vgg16(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-16 (configuration D): 138.4M parameters, 15.5 G mult-adds at 224x224."""
    return _vgg("vgg16", "D", False, num_classes, in_channels, **kwargs)


def vgg16_bn(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-16 with BatchNorm: 138.4M parameters, 15.5 G mult-adds at 224x224."""
    return _vgg("vgg16_bn", "D", True, num_classes, in_channels, **kwargs)


def vgg19(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-19 (configuration E): 143.7M parameters, 19.6 G mult-adds at 224x224."""
    return _vgg("vgg19", "E", False, num_classes, in_channels, **kwargs)


def vgg19_bn(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-19 with BatchNorm: 143.7M parameters, 19.6 G mult-adds at 224x224."""
    return _vgg("vgg19_bn", "E", True, num_classes, in_channels, **kwargs)
