"""SE-ResNet (Hu et al. 2018, "Squeeze-and-Excitation Networks"): ResNet with a
Squeeze-and-Excitation block on every residual branch.

Hu et al. 2018, Table 1 (224x224 input), SE-ResNet-50::

    stage    output    layers
    conv1    112x112   7x7, 64, stride 2
    maxpool  56x56     3x3 max pool, stride 2
    layer1   56x56     [1x1, 64;  3x3, 64;  1x1, 256;  fc (16, 256)] x3
    layer2   28x28     [1x1, 128; 3x3, 128; 1x1, 512;  fc (32, 512)] x4
    layer3   14x14     [1x1, 256; 3x3, 256; 1x1, 1024; fc (64, 1024)] x6
    layer4   7x7       [1x1, 512; 3x3, 512; 1x1, 2048; fc (128, 2048)] x3
    avgpool  1x1       global average pool, fc to num_classes

``fc (16, 256)`` is the SE block: squeeze 256 channels to 256 / r = 16 (reduction
``r = 16``) and back. The SE block rescales the residual branch *before* the addition,
``relu(se(residual(x)) + shortcut(x))`` (the paper's Fig. 3), so the identity path is
untouched. It adds 2.5M parameters to ResNet-50's 25.6M: 28.1M in all (the paper's
Table 10, r = 16). The rest is :class:`~minicnn.models.resnet.ResNet` (with the stride
on the 3x3 convolution, as torchvision and timm build it), so the state dict keys are
ResNet-50's plus ``layerX.Y.se.fc1/fc2``.
"""

from __future__ import annotations

from collections.abc import Callable

from minicnn import nn
from minicnn.models.resnet import Bottleneck, ResNet

__all__ = ["SE_CONFIGS", "SEBottleneck", "se_resnet50", "se_resnet101", "se_resnet152"]

# name: blocks per stage (the SE reduction ratio is r = 16 in all of them)
SE_CONFIGS: dict[str, tuple[int, int, int, int]] = {
    "se_resnet50": (3, 4, 6, 3),
    "se_resnet101": (3, 4, 23, 3),
    "se_resnet152": (3, 8, 36, 3),
}


class SEBottleneck(Bottleneck):
    """A ResNet bottleneck whose residual branch is rescaled by a Squeeze-and-Excitation block.

    ``x: (N, inplanes, H, W) -> (N, 4 * planes, H / stride, W / stride)``.
    """

    reduction: int = 16  # squeeze to channels / 16

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, groups: int = 1, base_width: int = 64,
                 dilation: int = 1, norm_layer: Callable[..., nn.Module] | None = None):
        super().__init__(inplanes, planes, stride, downsample, groups, base_width, dilation,
                         norm_layer)
        channels = planes * self.expansion
        self.se = nn.SqueezeExcitation(channels, channels // self.reduction)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.se(self.residual(x)) + identity)


def _se_resnet(name: str, num_classes: int, in_channels: int, **kwargs) -> ResNet:
    return ResNet(SEBottleneck, list(SE_CONFIGS[name]), num_classes=num_classes,
                  in_channels=in_channels, name=name, **kwargs)


def se_resnet50(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """SE-ResNet-50 (Hu et al. 2018): 28.1M parameters, 4.09 GMACs at 224x224 (the paper's
    3.87 GFLOPs puts the stride on the first 1x1 convolution)."""
    return _se_resnet("se_resnet50", num_classes, in_channels, **kwargs)


def se_resnet101(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """SE-ResNet-101 (Hu et al. 2018): 49.3M parameters, 7.81 GMACs at 224x224."""
    return _se_resnet("se_resnet101", num_classes, in_channels, **kwargs)


def se_resnet152(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """SE-ResNet-152 (Hu et al. 2018): 66.8M parameters, 11.52 GMACs at 224x224."""
    return _se_resnet("se_resnet152", num_classes, in_channels, **kwargs)
