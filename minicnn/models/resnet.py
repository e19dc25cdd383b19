"""ResNet and its ImageNet descendants, built exactly as torchvision builds them.

He et al. 2015, "Deep Residual Learning for Image Recognition", Table 1 (224x224 input)::

    stage    output   18           34           50              101             152
    conv1    112x112  7x7, 64, stride 2
    maxpool  56x56    3x3 max pool, stride 2
    layer1   56x56    [3x3, 64]x2  [3x3, 64]x3  [1x1, 64 ]       ...x3           ...x3
                      [3x3, 64]    [3x3, 64]    [3x3, 64 ] x3
                                                [1x1, 256]
    layer2   28x28    [3x3,128]x2  x4           [128, 128, 512]  x4              x8
    layer3   14x14    [3x3,256]x2  x6           [256, 256, 1024] x6  -> x23      x36
    layer4   7x7      [3x3,512]x2  x3           [512, 512, 2048] x3              x3
    avgpool  1x1      global average pool, fully connected to num_classes

The first block of layers 2-4 halves the resolution (stride 2) and its shortcut is a
1x1 convolution with stride 2 followed by BN (``downsample``, "option B"); every other
shortcut is the identity. Descendants, same table with a different bottleneck:

* ResNeXt (Xie et al. 2017): the bottleneck's 3x3 convolution is split into ``groups``
  parallel paths of ``width_per_group`` channels each; ``resnext50_32x4d`` has 32 paths
  of 4 channels in layer1 (so its 3x3 conv is 128 wide, not 64).
* Wide ResNet (Zagoruyko & Komodakis 2016), torchvision's version: the bottleneck's
  inner width doubled (``width_per_group=128``); the block outputs stay the same.
* Pre-activation ResNet (He et al. 2016, "Identity Mappings in Deep Residual Networks",
  the full pre-activation unit of Fig. 4e): every unit computes
  ``x + conv(relu(bn(conv(relu(bn(x))))))``, so the shortcut path is a clean identity
  from the first layer to the last; one BN-ReLU after the last unit closes the network.

Everything follows torchvision's ``models/resnet.py``: attribute names (so ``state_dict``
keys and shapes are identical and a torchvision state dict loads, see
:mod:`minicnn.models.weights`), the stride on the bottleneck's 3x3 convolution
("ResNet v1.5", the paper puts it on the first 1x1), and the initialization (Kaiming
normal, fan_out, for convolutions; BN weight 1 and bias 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from minicnn import nn
from minicnn.models.input_check import check_image_input

__all__ = [
    "BasicBlock", "Bottleneck", "PreActBasicBlock", "PreActBottleneck", "PreActResNet", "ResNet",
    "RESNET_CONFIGS", "PREACT_CONFIGS",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
    "wide_resnet50_2", "wide_resnet101_2",
    "preact_resnet18", "preact_resnet34", "preact_resnet50", "preact_resnet101",
    "preact_resnet152", "preact_resnet200",
]

# ---------------------------------------------------------------- the table, as data

STAGE_PLANES = (64, 128, 256, 512)  # inner width of the blocks of layer1..layer4
STAGE_STRIDES = (1, 2, 2, 2)  # the first block of each stage downsamples by this

# name: (block, blocks per stage, extra ResNet arguments)
RESNET_CONFIGS: dict[str, tuple[str, tuple[int, int, int, int], dict]] = {
    "resnet18": ("basic", (2, 2, 2, 2), {}),
    "resnet34": ("basic", (3, 4, 6, 3), {}),
    "resnet50": ("bottleneck", (3, 4, 6, 3), {}),
    "resnet101": ("bottleneck", (3, 4, 23, 3), {}),
    "resnet152": ("bottleneck", (3, 8, 36, 3), {}),
    "resnext50_32x4d": ("bottleneck", (3, 4, 6, 3), {"groups": 32, "width_per_group": 4}),
    "resnext101_32x8d": ("bottleneck", (3, 4, 23, 3), {"groups": 32, "width_per_group": 8}),
    "resnext101_64x4d": ("bottleneck", (3, 4, 23, 3), {"groups": 64, "width_per_group": 4}),
    "wide_resnet50_2": ("bottleneck", (3, 4, 6, 3), {"width_per_group": 128}),
    "wide_resnet101_2": ("bottleneck", (3, 4, 23, 3), {"width_per_group": 128}),
}

# He et al. 2016 ("Identity Mappings"): the same stages with pre-activation units.
PREACT_CONFIGS: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "preact_resnet18": ("basic", (2, 2, 2, 2)),
    "preact_resnet34": ("basic", (3, 4, 6, 3)),
    "preact_resnet50": ("bottleneck", (3, 4, 6, 3)),
    "preact_resnet101": ("bottleneck", (3, 4, 23, 3)),
    "preact_resnet152": ("bottleneck", (3, 8, 36, 3)),
    "preact_resnet200": ("bottleneck", (3, 24, 36, 3)),
}


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1,
            dilation: int = 1) -> nn.Conv2d:
    """3x3 convolution, padded to keep the size (at stride 1), without bias (BN follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation,
                     groups=groups, bias=False, dilation=dilation)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution without bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


# ---------------------------------------------------------------- blocks


class BasicBlock(nn.Module):
    """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``, two 3x3 convolutions.

    ``x: (N, inplanes, H, W) -> (N, planes, H / stride, W / stride)``; ``downsample``
    (or the identity when None) maps ``x`` onto the shape of the residual.
    """

    expansion: int = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, groups: int = 1, base_width: int = 64,
                 dilation: int = 1, norm_layer: Callable[..., nn.Module] | None = None):
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        if groups != 1 or base_width != 64:
            raise ValueError(f"BasicBlock only supports groups=1 and base_width=64, got "
                             f"groups={groups}, base_width={base_width}")
        if dilation > 1:
            raise NotImplementedError("BasicBlock: dilation > 1 is not supported")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 (reduce to ``width``), 3x3 (stride, groups), 1x1 (expand to ``4 * planes``), + shortcut.

    ``width = planes * base_width / 64 * groups``: 64-wide for ResNet-50's layer1, 128 for
    ResNeXt-50 32x4d and Wide ResNet-50-2. The stride sits on the 3x3 convolution (v1.5).
    ``x: (N, inplanes, H, W) -> (N, 4 * planes, H / stride, W / stride)``.
    """

    expansion: int = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, groups: int = 1, base_width: int = 64,
                 dilation: int = 1, norm_layer: Callable[..., nn.Module] | None = None):
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def residual(self, x):
        """The residual branch alone (SE-ResNet reweights it before the addition)."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.residual(x) + identity)


class PreActBasicBlock(nn.Module):
    """Full pre-activation unit: ``x + conv2(relu(bn2(conv1(relu(bn1(x))))))``.

    With ``preact=False`` the unit has no ``bn1`` (its input is already activated: the
    first unit after the stem's BN-ReLU). A projection shortcut (``downsample``, a bare
    1x1 convolution) reads the activated input, the identity reads ``x`` itself -- as in
    the authors' code. ``x: (N, inplanes, H, W) -> (N, planes, H / stride, W / stride)``.
    """

    expansion: int = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, preact: bool = True,
                 norm_layer: Callable[..., nn.Module] | None = None):
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        self.bn1 = norm_layer(inplanes) if preact else None
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn2 = norm_layer(planes)
        self.conv2 = conv3x3(planes, planes)
        self.downsample = downsample

    def forward(self, x):
        out = x if self.bn1 is None else self.relu(self.bn1(x))
        identity = x if self.downsample is None else self.downsample(out)
        out = self.conv1(out)
        out = self.conv2(self.relu(self.bn2(out)))
        return out + identity


class PreActBottleneck(nn.Module):
    """Full pre-activation bottleneck: BN-ReLU-1x1, BN-ReLU-3x3 (stride), BN-ReLU-1x1, + shortcut.

    ``x: (N, inplanes, H, W) -> (N, 4 * planes, H / stride, W / stride)``; see
    :class:`PreActBasicBlock` for ``preact`` and the shortcut.
    """

    expansion: int = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, preact: bool = True,
                 norm_layer: Callable[..., nn.Module] | None = None):
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        self.bn1 = norm_layer(inplanes) if preact else None
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = conv1x1(inplanes, planes)
        self.bn2 = norm_layer(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn3 = norm_layer(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.downsample = downsample

    def forward(self, x):
        out = x if self.bn1 is None else self.relu(self.bn1(x))
        identity = x if self.downsample is None else self.downsample(out)
        out = self.conv1(out)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        return out + identity


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}
PREACT_BLOCKS = {"basic": PreActBasicBlock, "bottleneck": PreActBottleneck}


def init_resnet_(model: nn.Module) -> None:
    """torchvision's initialization: Kaiming normal (fan_out, ReLU) for every convolution,
    weight 1 and bias 0 for every BatchNorm/GroupNorm; Linear layers keep their default."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.weight is not None:
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)


# ---------------------------------------------------------------- networks


class ResNet(nn.Module):
    """The ImageNet ResNet of the table above. ``x: (N, in_channels, H, W) -> (N, num_classes)``.

    Arguments as torchvision's ``ResNet``, plus ``in_channels`` (3) and ``name`` (used in
    error messages). ``replace_stride_with_dilation=[False, True, True]`` keeps layer3/4 at
    1/8 resolution with dilated convolutions (the segmentation backbones), and
    ``zero_init_residual`` zeroes the last BN of each residual branch so every block
    starts as the identity (Goyal et al. 2017).
    """

    def __init__(self, block: type[BasicBlock | Bottleneck], layers: list[int],
                 num_classes: int = 1000, zero_init_residual: bool = False, groups: int = 1,
                 width_per_group: int = 64,
                 replace_stride_with_dilation: list[bool] | None = None,
                 norm_layer: Callable[..., nn.Module] | None = None, in_channels: int = 3,
                 name: str = "ResNet"):
        super().__init__()
        self._norm_layer = norm_layer = norm_layer or nn.BatchNorm2d
        if replace_stride_with_dilation is None:
            replace_stride_with_dilation = [False, False, False]
        if len(replace_stride_with_dilation) != 3:
            raise ValueError("replace_stride_with_dilation should be None or a 3-element list, "
                             f"got {replace_stride_with_dilation}")
        if len(layers) != 4:
            raise ValueError(f"layers should give the number of blocks of 4 stages, got {layers}")
        self.name, self.in_channels = name, in_channels
        self.inplanes, self.dilation = 64, 1
        self.groups, self.base_width = groups, width_per_group

        self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=7, stride=2, padding=3,
                               bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        dilate = [False, *replace_stride_with_dilation]
        for i, (planes, stride, blocks) in enumerate(zip(STAGE_PLANES, STAGE_STRIDES, layers,
                                                         strict=True)):
            setattr(self, f"layer{i + 1}",
                    self._make_layer(block, planes, blocks, stride, dilate=dilate[i]))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        # the total stride: below it the last stage would see only zero padding
        self.min_input_size = 4 * math.prod(
            s for s, d in zip(STAGE_STRIDES, dilate, strict=True) if not d)

        init_resnet_(self)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck) and m.bn3.weight is not None:
                    nn.init.constant_(m.bn3.weight, 0)
                elif isinstance(m, BasicBlock) and m.bn2.weight is not None:
                    nn.init.constant_(m.bn2.weight, 0)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1,
                    dilate: bool = False) -> nn.Sequential:
        """One stage: ``blocks`` blocks, the first with ``stride`` and a projection if needed."""
        norm_layer = self._norm_layer
        downsample = None
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                norm_layer(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width,
                        previous_dilation, norm_layer)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups,
                                base_width=self.base_width, dilation=self.dilation,
                                norm_layer=norm_layer))
        return nn.Sequential(*layers)

    def forward_features(self, x):
        """``x -> `` the layer4 feature map ``(N, 512 * expansion, H / 32, W / 32)``."""
        check_image_input(x, self.name, self.in_channels, self.min_input_size)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def forward(self, x):
        x = self.avgpool(self.forward_features(x))
        return self.fc(x.flatten(1))


class PreActResNet(nn.Module):
    """ImageNet pre-activation ResNet (He et al. 2016): ``(N, in_channels, H, W) -> (N, classes)``.

    The stem is torchvision's (conv 7x7/2, BN, ReLU, max pool 3x3/2): its BN-ReLU is the
    pre-activation of the first unit ("we adopt the first activation right after conv1",
    Sec. 4.1), so ``layer1[0]`` has no ``bn1``. Shortcuts that change shape are a bare
    1x1 convolution. After layer4: ``bn`` and ReLU (the "extra activation" after the last
    addition), global average pool and ``fc``. As in the ResNet above, the bottleneck's
    stride sits on its 3x3 convolution (as in fb.resnet.torch, where the paper's ImageNet
    models were trained).
    """

    def __init__(self, block: type[PreActBasicBlock | PreActBottleneck], layers: list[int],
                 num_classes: int = 1000, in_channels: int = 3,
                 norm_layer: Callable[..., nn.Module] | None = None, name: str = "PreActResNet"):
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        if len(layers) != 4:
            raise ValueError(f"layers should give the number of blocks of 4 stages, got {layers}")
        self.name, self.in_channels, self.min_input_size = name, in_channels, 32
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = 64
        for i, (planes, stride, blocks) in enumerate(zip(STAGE_PLANES, STAGE_STRIDES, layers,
                                                         strict=True)):
            stage = make_preact_stage(block, inplanes, planes, blocks, stride, norm_layer,
                                      first_preact=i > 0)
            setattr(self, f"layer{i + 1}", stage)
            inplanes = planes * block.expansion
        self.bn = norm_layer(inplanes)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(inplanes, num_classes)
        init_resnet_(self)

    def forward(self, x):
        check_image_input(x, self.name, self.in_channels, self.min_input_size)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.avgpool(self.relu(self.bn(x)))
        return self.fc(x.flatten(1))


def make_preact_stage(block, inplanes: int, planes: int, blocks: int, stride: int,
                      norm_layer: Callable[..., nn.Module] | None = None,
                      first_preact: bool = True) -> nn.Sequential:
    """``blocks`` pre-activation units; the first has ``stride`` and a 1x1 projection shortcut
    when the shape changes (and no ``bn1`` when ``first_preact`` is False)."""
    out = planes * block.expansion
    downsample = conv1x1(inplanes, out, stride) if stride != 1 or inplanes != out else None
    units = [block(inplanes, planes, stride, downsample, preact=first_preact,
                   norm_layer=norm_layer)]
    units += [block(out, planes, norm_layer=norm_layer) for _ in range(1, blocks)]
    return nn.Sequential(*units)


# ---------------------------------------------------------------- named variants


def _resnet(name: str, num_classes: int, in_channels: int, **kwargs) -> ResNet:
    block, layers, extra = RESNET_CONFIGS[name]
    return ResNet(BLOCKS[block], list(layers), num_classes=num_classes, in_channels=in_channels,
                  name=name, **{**extra, **kwargs})


def resnet18(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-18 (He et al. 2015): 11.7M parameters, 1.8 GMACs at 224x224."""
    return _resnet("resnet18", num_classes, in_channels, **kwargs)


def resnet34(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-34 (He et al. 2015): 21.8M parameters, 3.7 GMACs at 224x224."""
    return _resnet("resnet34", num_classes, in_channels, **kwargs)


def resnet50(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-50 v1.5 (He et al. 2015; stride on the 3x3): 25.6M parameters, 4.1 GMACs."""
    return _resnet("resnet50", num_classes, in_channels, **kwargs)


def resnet101(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-101 v1.5: 44.5M parameters, 7.8 GMACs at 224x224."""
    return _resnet("resnet101", num_classes, in_channels, **kwargs)


def resnet152(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-152 v1.5: 60.2M parameters, 11.5 GMACs at 224x224."""
    return _resnet("resnet152", num_classes, in_channels, **kwargs)


def resnext50_32x4d(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNeXt-50 32x4d (Xie et al. 2017): 25.0M parameters, 4.2 GMACs at 224x224."""
    return _resnet("resnext50_32x4d", num_classes, in_channels, **kwargs)


def resnext101_32x8d(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNeXt-101 32x8d (Xie et al. 2017): 88.8M parameters, 16.4 GMACs at 224x224."""
    return _resnet("resnext101_32x8d", num_classes, in_channels, **kwargs)


def resnext101_64x4d(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNeXt-101 64x4d (Xie et al. 2017): 83.5M parameters, 15.5 GMACs at 224x224."""
    return _resnet("resnext101_64x4d", num_classes, in_channels, **kwargs)


def wide_resnet50_2(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """Wide ResNet-50-2 (torchvision's): 68.9M parameters, 11.4 GMACs at 224x224."""
    return _resnet("wide_resnet50_2", num_classes, in_channels, **kwargs)


def wide_resnet101_2(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """Wide ResNet-101-2 (torchvision's): 126.9M parameters, 22.8 GMACs at 224x224."""
    return _resnet("wide_resnet101_2", num_classes, in_channels, **kwargs)


def _preact(name: str, num_classes: int, in_channels: int, **kwargs) -> PreActResNet:
    block, layers = PREACT_CONFIGS[name]
    return PreActResNet(PREACT_BLOCKS[block], list(layers), num_classes=num_classes,
                        in_channels=in_channels, name=name, **kwargs)


def preact_resnet18(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> PreActResNet:
    """Pre-activation ResNet-18 (He et al. 2016) for ImageNet."""
    return _preact("preact_resnet18", num_classes, in_channels, **kwargs)


def preact_resnet34(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> PreActResNet:
    """Pre-activation ResNet-34 (He et al. 2016) for ImageNet."""
    return _preact("preact_resnet34", num_classes, in_channels, **kwargs)


def preact_resnet50(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> PreActResNet:
    """Pre-activation ResNet-50 (He et al. 2016) for ImageNet."""
    return _preact("preact_resnet50", num_classes, in_channels, **kwargs)


def preact_resnet101(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> PreActResNet:
    """Pre-activation ResNet-101 (He et al. 2016) for ImageNet."""
    return _preact("preact_resnet101", num_classes, in_channels, **kwargs)


def preact_resnet152(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> PreActResNet:
    """Pre-activation ResNet-152 (He et al. 2016, Table 5) for ImageNet."""
    return _preact("preact_resnet152", num_classes, in_channels, **kwargs)


def preact_resnet200(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> PreActResNet:
    """Pre-activation ResNet-200 (He et al. 2016, Table 5) for ImageNet."""
    return _preact("preact_resnet200", num_classes, in_channels, **kwargs)
