"""PyTorch versions of the efficient models torchvision lacks, written from the papers with
minicnn's attribute names (so a state dict moves across): the ``reference=`` side of
``compare_with_torchvision`` for

* MobileNetV1 (Howard et al. 2017, Table 1),
* ShuffleNet V1 (Zhang et al. 2017, Fig. 2 and Table 1),
* DenseNet-BC for CIFAR (Huang et al. 2017): torchvision's own ``DenseNet`` blocks with the
  CIFAR stem (a 3x3 convolution at stride 1, no BN / pooling before the first block).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.densenet import DenseNet
from torchvision.ops import Conv2dNormActivation

# ------------------------------------------------------------------ MobileNetV1

_V1 = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5,
       (1024, 2), (1024, 1)]


class DWSeparable(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.depthwise = Conv2dNormActivation(cin, cin, 3, stride, groups=cin)
        self.pointwise = Conv2dNormActivation(cin, cout, 1)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class MobileNetV1(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        layers, cin = [Conv2dNormActivation(3, 32, 3, 2)], 32
        for cout, stride in _V1:
            layers.append(DWSeparable(cin, cout, stride))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(1024, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


# ------------------------------------------------------------------ ShuffleNet V1

_V1_CHANNELS = {3: (240, 480, 960), 8: (384, 768, 1536)}


class ShuffleUnit(nn.Module):
    def __init__(self, cin, cout, g, stride, group_first):
        super().__init__()
        mid = cout // 4
        branch = cout - cin if stride == 2 else cout
        self.g, self.stride = g, stride
        self.conv1 = nn.Conv2d(cin, mid, 1, groups=g if group_first else 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, branch, 1, groups=g, bias=False)
        self.bn3 = nn.BatchNorm2d(branch)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        n, c, h, w = out.shape  # channel shuffle: (g, c/g) -> (c/g, g)
        out = out.view(n, self.g, c // self.g, h, w).transpose(1, 2).reshape(n, c, h, w)
        out = self.bn3(self.conv3(self.bn2(self.conv2(out))))
        if self.stride == 1:
            return F.relu(x + out)
        return F.relu(torch.cat([F.avg_pool2d(x, 3, 2, 1), out], 1))


class ShuffleNetV1(nn.Module):
    def __init__(self, groups=3, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 24, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        cin = 24
        for i, (cout, n) in enumerate(zip(_V1_CHANNELS[groups], (4, 8, 4), strict=True)):
            units = [ShuffleUnit(cin if j == 0 else cout, cout, groups, 2 if j == 0 else 1,
                                 i > 0 or j > 0) for j in range(n)]
            setattr(self, f"stage{i + 2}", nn.Sequential(*units))
            cin = cout
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x = self.stage4(self.stage3(self.stage2(x)))
        return self.fc(x.mean((2, 3)))


# ------------------------------------------------------------------ DenseNet-BC (CIFAR)


def densenet_bc_100_12(num_classes=10) -> DenseNet:
    model = DenseNet(growth_rate=12, block_config=(16, 16, 16), num_init_features=24,
                     num_classes=num_classes)
    stem = nn.Conv2d(3, 24, 3, 1, 1, bias=False)
    nn.init.kaiming_normal_(stem.weight)
    features = nn.Sequential()
    features.add_module("conv0", stem)
    for name, module in model.features.named_children():
        if name not in ("conv0", "norm0", "relu0", "pool0"):
            features.add_module(name, module)
    model.features = features
    return model
