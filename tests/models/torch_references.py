"""PyTorch versions of the ResNet-family models torchvision does not have, written from the
papers independently of minicnn's code, with the same attribute names (so a state dict
moves across): the reference side of ``compare_with_torchvision(..., reference=...)``.

* CIFAR ResNets / plain nets (He et al. 2015, Sec. 4.2; option A shortcuts),
* pre-activation ResNets (He et al. 2016), ImageNet and CIFAR layouts,
* SE-ResNet (Hu et al. 2018): torchvision's ResNet with ``torchvision.ops.SqueezeExcitation``
  on the residual branch of each bottleneck.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet
from torchvision.ops import SqueezeExcitation


def _init(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model


# ------------------------------------------------------------------ CIFAR ResNet / plain


class PadShortcut(nn.Module):
    def __init__(self, extra: int, stride: int):
        super().__init__()
        self.extra, self.stride = extra, stride

    def forward(self, x):
        return F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, 0, self.extra))


class CifarBlock(nn.Module):
    def __init__(self, cin, cout, stride, shortcut: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = shortcut
        self.pad = PadShortcut(cout - cin, stride) if (stride != 1 or cin != cout) else None

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.shortcut:
            out = out + (x if self.pad is None else self.pad(x))
        return F.relu(out)


class CifarResNet(nn.Module):
    def __init__(self, n: int, num_classes=10, plain=False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        cin = 16
        for i, (cout, stride) in enumerate(((16, 1), (32, 2), (64, 2))):
            blocks = []
            for j in range(n):
                blocks.append(CifarBlock(cin, cout, stride if j == 0 else 1, not plain))
                cin = cout
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(64, num_classes)
        _init(self)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(x.mean((2, 3)))


# ------------------------------------------------------------------ pre-activation


class PreActUnit(nn.Module):
    """BN-ReLU-conv, repeated; a projection shortcut reads the pre-activated input."""

    def __init__(self, cin, planes, stride, bottleneck: bool, preact=True):
        super().__init__()
        cout = planes * (4 if bottleneck else 1)
        self.bn1 = nn.BatchNorm2d(cin) if preact else None
        if bottleneck:
            self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.downsample = (nn.Conv2d(cin, cout, 1, stride, bias=False)
                           if stride != 1 or cin != cout else None)
        self.bottleneck = bottleneck

    def forward(self, x):
        a = x if self.bn1 is None else F.relu(self.bn1(x))
        shortcut = x if self.downsample is None else self.downsample(a)
        out = self.conv2(F.relu(self.bn2(self.conv1(a))))
        if self.bottleneck:
            out = self.conv3(F.relu(self.bn3(out)))
        return out + shortcut


def _preact_stages(model, cin, widths, strides, blocks, bottleneck, first_preact):
    for i, (planes, stride, n) in enumerate(zip(widths, strides, blocks, strict=True)):
        units = []
        for j in range(n):
            units.append(PreActUnit(cin, planes, stride if j == 0 else 1, bottleneck,
                                    preact=first_preact or i > 0 or j > 0))
            cin = planes * (4 if bottleneck else 1)
        setattr(model, f"layer{i + 1}", nn.Sequential(*units))
    return cin


class PreActResNet(nn.Module):
    """ImageNet layout: conv7x7/2-BN-ReLU-maxpool stem, 4 stages, BN-ReLU, pool, fc."""

    def __init__(self, layers, bottleneck: bool, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = _preact_stages(self, 64, (64, 128, 256, 512), (1, 2, 2, 2), layers, bottleneck,
                             first_preact=False)
        self.bn = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, num_classes)
        _init(self)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(F.relu(self.bn(x)).mean((2, 3)))


class CifarPreActResNet(nn.Module):
    """CIFAR layout: conv3x3 (16), 3 stages of pre-activation units, BN-ReLU, pool, fc."""

    def __init__(self, n, bottleneck: bool, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        cin = _preact_stages(self, 16, (16, 32, 64), (1, 2, 2), (n, n, n), bottleneck,
                             first_preact=True)
        self.bn = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, num_classes)
        _init(self)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        return self.fc(F.relu(self.bn(x)).mean((2, 3)))


# ------------------------------------------------------------------ SE-ResNet


class SEBottleneck(Bottleneck):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        c = self.bn3.num_features
        self.se = SqueezeExcitation(c, c // 16)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.se(self.bn3(self.conv3(out)))
        return self.relu(out + identity)


def se_resnet(layers, num_classes=1000) -> ResNet:
    return ResNet(SEBottleneck, list(layers), num_classes=num_classes)

