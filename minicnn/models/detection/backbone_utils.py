"""Classification networks as detection backbones with a feature pyramid
(torchvision's ``models/detection/backbone_utils.py``).

:class:`BackboneWithFPN` runs the network up to its deepest returned stage
(:class:`~minicnn.models._utils.IntermediateLayerGetter`: the state dict keeps the
network's own keys under ``body.``) and a :class:`~minicnn.ops.FeaturePyramidNetwork`
(``fpn.``) on the returned maps. For a ResNet the maps are the outputs of layer1..layer4
(C2..C5, strides 4..32) plus ``"pool"`` (P6, stride 64); for a MobileNetV3 the last two
stages (strides 16 and 32) plus ``"pool"``. The first stages can be frozen
(``trainable_layers``): their features are generic, and with pretrained weights and small
detection batches training them mostly adds noise.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from minicnn import nn
from minicnn.autograd import Tensor
from minicnn.models import mobilenetv3, resnet
from minicnn.models._utils import IntermediateLayerGetter
from minicnn.models.detection._utils import freeze_backbone_stages
from minicnn.ops import ExtraFPNBlock, FeaturePyramidNetwork, FrozenBatchNorm2d, LastLevelMaxPool

__all__ = ["BackboneWithFPN", "mobilenet_backbone", "mobilenet_extractor", "resnet_fpn_backbone",
           "resnet_fpn_extractor"]

RESNET_NAMES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
MOBILENET_NAMES = ("mobilenet_v3_large", "mobilenet_v3_small")


class BackboneWithFPN(nn.Module):
    """A network's intermediate maps, then an FPN on them.

    Args:
        backbone: a network whose children run in order (ResNet, ``MobileNetV3.features``).
        return_layers: ``{child name: output name}`` of the maps to take.
        in_channels_list: their channels, in order.
        out_channels: the FPN's channels (``self.out_channels``).
        extra_blocks: default :class:`~minicnn.ops.LastLevelMaxPool`.
        norm_layer: the FPN's norm (default none).

    ``x: (N, 3, H, W) ->`` an ordered dict of ``(N, out_channels, H_i, W_i)`` maps.
    """

    def __init__(self, backbone: nn.Module, return_layers: dict[str, str],
                 in_channels_list: list[int], out_channels: int,
                 extra_blocks: ExtraFPNBlock | None = None,
                 norm_layer: Callable[..., nn.Module] | None = None) -> None:
        super().__init__()
        if extra_blocks is None:
            extra_blocks = LastLevelMaxPool()
        self.body = IntermediateLayerGetter(backbone, return_layers=return_layers)
        self.fpn = FeaturePyramidNetwork(in_channels_list, out_channels,
                                         extra_blocks=extra_blocks, norm_layer=norm_layer)
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        return self.fpn(self.body(x))


def resnet_fpn_backbone(*, backbone_name: str, weights=None,
                        norm_layer: Callable[..., nn.Module] = FrozenBatchNorm2d,
                        trainable_layers: int = 3, returned_layers: list[int] | None = None,
                        extra_blocks: ExtraFPNBlock | None = None) -> BackboneWithFPN:
    """A ResNet (``backbone_name``, e.g. "resnet50") with an FPN of 256 channels.

    ``weights``: None (random initialisation; files are loaded by the detectors'
    constructors). ``trainable_layers``: 0..5 stages left trainable from the last
    (layer4, layer3, layer2, layer1, conv1 + bn1). ``returned_layers``: which of layer1..4
    feed the FPN (default all four).
    """
    if backbone_name not in RESNET_NAMES:
        raise ValueError(f"resnet_fpn_backbone: backbone_name must be one of {RESNET_NAMES}, "
                         f"got {backbone_name!r}")
    if weights is not None:
        raise ValueError("resnet_fpn_backbone: weights must be None (load a weight file into "
                         "the detector with its weights= argument)")
    backbone = getattr(resnet, backbone_name)(norm_layer=norm_layer)
    return resnet_fpn_extractor(backbone, trainable_layers, returned_layers, extra_blocks)


def resnet_fpn_extractor(backbone: resnet.ResNet, trainable_layers: int,
                          returned_layers: list[int] | None = None,
                          extra_blocks: ExtraFPNBlock | None = None,
                          norm_layer: Callable[..., nn.Module] | None = None) -> BackboneWithFPN:
    """Freeze all but the last ``trainable_layers`` (0..5) stages of a built ResNet and put a
    256-channel FPN (``norm_layer``: its norm) on the ``returned_layers`` (of 1..4)."""
    if not 0 <= trainable_layers <= 5:
        raise ValueError(f"trainable_layers must be in [0, 5], got {trainable_layers}")
    layers_to_train = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
    if trainable_layers == 5:
        layers_to_train.append("bn1")
    for name, parameter in backbone.named_parameters():
        if not any(name.startswith(layer) for layer in layers_to_train):
            parameter.requires_grad_(False)
    returned_layers = [1, 2, 3, 4] if returned_layers is None else list(returned_layers)
    if not returned_layers or min(returned_layers) < 1 or max(returned_layers) > 4:
        raise ValueError(f"returned_layers must be in [1, 4], got {returned_layers}")
    return_layers = {f"layer{k}": str(v) for v, k in enumerate(returned_layers)}
    in_channels_stage2 = backbone.inplanes // 8
    in_channels_list = [in_channels_stage2 * 2 ** (i - 1) for i in returned_layers]
    return BackboneWithFPN(backbone, return_layers, in_channels_list, 256,
                           extra_blocks=extra_blocks, norm_layer=norm_layer)


def mobilenet_backbone(*, backbone_name: str, weights=None, fpn: bool,
                       norm_layer: Callable[..., nn.Module] = FrozenBatchNorm2d,
                       trainable_layers: int = 2, returned_layers: list[int] | None = None,
                       extra_blocks: ExtraFPNBlock | None = None) -> nn.Module:
    """A MobileNetV3's ``features`` as a backbone: with ``fpn`` a :class:`BackboneWithFPN` on
    its last two stages (256 channels), else the features and a 1x1 convolution to 256.
    ``trainable_layers``: stages (the stem, each strided block onwards, the last layer)
    left trainable from the last."""
    if backbone_name not in MOBILENET_NAMES:
        raise ValueError(f"mobilenet_backbone: backbone_name must be one of {MOBILENET_NAMES}, "
                         f"got {backbone_name!r}")
    if weights is not None:
        raise ValueError("mobilenet_backbone: weights must be None (load a weight file into "
                         "the detector with its weights= argument)")
    backbone = getattr(mobilenetv3, backbone_name)(norm_layer=norm_layer)
    return mobilenet_extractor(backbone, fpn, trainable_layers, returned_layers, extra_blocks)


def mobilenet_extractor(backbone: mobilenetv3.MobileNetV3, fpn: bool, trainable_layers: int,
                         returned_layers: list[int] | None = None,
                         extra_blocks: ExtraFPNBlock | None = None,
                         norm_layer: Callable[..., nn.Module] | None = None) -> nn.Module:
    """Freeze all but the last ``trainable_layers`` stages of a built MobileNetV3's
    ``features``; with ``fpn`` a :class:`BackboneWithFPN` on ``returned_layers`` (default
    the last two stages), else the features and a 1x1 convolution to 256 channels."""
    features = backbone.features
    stage_indices = ([0] + [i for i, b in enumerate(features) if getattr(b, "_is_cn", False)]
                     + [len(features) - 1])
    num_stages = len(stage_indices)
    freeze_backbone_stages(features, stage_indices, trainable_layers)
    out_channels = 256
    if not fpn:
        m = nn.Sequential(features, nn.Conv2d(features[-1].out_channels, out_channels, 1))
        m.out_channels = out_channels
        return m
    if returned_layers is None:
        returned_layers = [num_stages - 2, num_stages - 1]
    if min(returned_layers) < 0 or max(returned_layers) >= num_stages:
        raise ValueError(f"returned_layers must be in [0, {num_stages - 1}], got "
                         f"{returned_layers}")
    return_layers = {f"{stage_indices[k]}": str(v) for v, k in enumerate(returned_layers)}
    in_channels_list = [features[stage_indices[i]].out_channels for i in returned_layers]
    return BackboneWithFPN(features, return_layers, in_channels_list, out_channels,
                           extra_blocks=extra_blocks, norm_layer=norm_layer)
