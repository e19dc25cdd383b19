"""FCN with a ResNet-50 backbone, built exactly as torchvision's ``fcn_resnet50``.

Long, Shelhamer & Darrell 2015, "Fully Convolutional Networks for Semantic Segmentation":
a classification network becomes a per-pixel classifier when its fully connected layers
become convolutions and its coarse score map is upsampled back to the input size.
torchvision's version (and this one) uses a dilated ResNet-50 as the network:

* ``backbone``: ResNet-50 with ``replace_stride_with_dilation=[False, True, True]`` -- layer3
  and layer4 keep 1/8 of the input resolution (2048 channels) and use dilation 2 and 4
  instead of striding, so the receptive field still grows -- wrapped in an
  :class:`~minicnn.models._utils.IntermediateLayerGetter` that returns layer4 as ``"out"``
  (and layer3, 1024 channels, as ``"aux"``);
* ``classifier``: :class:`FCNHead` (3x3 conv to ``in / 4`` channels, BN, ReLU, dropout 0.1,
  1x1 conv to ``num_classes``) on ``"out"``; ``aux_classifier`` the same on ``"aux"``
  (an auxiliary loss during training; ``aux_loss=True``);
* both score maps are resized to the input's size by bilinear interpolation
  (``align_corners=False``).

``model(x)`` returns an ordered dict ``{"out": (N, num_classes, H, W), "aux": ...}``; the
``state_dict`` keys (``backbone.layer4.2.conv3.weight``, ``classifier.4.bias``,
``aux_classifier.0.weight``...) and the parameter count (35,322,218 with the auxiliary head
and 21 classes: torchvision's published figure) are torchvision's, so a torchvision
``fcn_resnet50`` state dict (``minicnn export-torchvision fcn_resnet50 ...``) loads as it is.
"""

from __future__ import annotations

import os
from collections import OrderedDict

from minicnn import nn
from minicnn.models._utils import IntermediateLayerGetter
from minicnn.models.input_check import check_image_input
from minicnn.models.resnet import resnet50
from minicnn.models.weights import load_weights
from minicnn.nn import functional as F

__all__ = ["FCN", "FCNHead", "fcn_resnet50"]


class FCNHead(nn.Sequential):
    """``(N, in_channels, h, w) -> (N, channels, h, w)``: conv 3x3 (to ``in_channels // 4``,
    no bias), BatchNorm, ReLU, Dropout(0.1), conv 1x1 (with bias)."""

    def __init__(self, in_channels: int, channels: int):
        inter_channels = in_channels // 4
        super().__init__(
            nn.Conv2d(in_channels, inter_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(inter_channels),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Conv2d(inter_channels, channels, 1),
        )


class FCN(nn.Module):
    """``x: (N, 3, H, W) -> {"out": (N, num_classes, H, W)[, "aux": (N, num_classes, H, W)]}``.

    ``backbone`` returns a dict with ``"out"`` (and ``"aux"`` when ``aux_classifier`` is
    given); each head's scores are resized to ``H x W`` bilinearly (as torchvision's
    ``_SimpleSegmentationModel``).
    """

    def __init__(self, backbone: nn.Module, classifier: nn.Module,
                 aux_classifier: nn.Module | None = None, in_channels: int = 3,
                 min_input_size: int = 1, name: str = "FCN"):
        super().__init__()
        self.backbone = backbone
        self.classifier = classifier
        self.aux_classifier = aux_classifier
        self.name, self.in_channels, self.min_input_size = name, in_channels, min_input_size

    def forward(self, x) -> OrderedDict:
        check_image_input(x, self.name, self.in_channels, self.min_input_size)
        size = tuple(x.shape[-2:])
        features = self.backbone(x)
        result = OrderedDict()
        result["out"] = F.interpolate(self.classifier(features["out"]), size=size,
                                      mode="bilinear", align_corners=False)
        if self.aux_classifier is not None:
            result["aux"] = F.interpolate(self.aux_classifier(features["aux"]), size=size,
                                          mode="bilinear", align_corners=False)
        return result


def fcn_resnet50(*, weights: str | os.PathLike | None = None, progress: bool = True,
                 num_classes: int | None = None, aux_loss: bool | None = None,
                 weights_backbone: str | os.PathLike | None = None, **kwargs) -> FCN:
    """FCN-ResNet50, torchvision's constructor: ``num_classes`` (21: PASCAL VOC's 20 classes
    and the background) and ``aux_loss`` (None: no auxiliary head, unless ``weights`` is
    given, whose files have one).

    Nothing is downloaded: ``weights`` is a ``.safetensors``/``.npz`` file of the whole
    model (e.g. ``minicnn export-torchvision fcn_resnet50 fcn.safetensors --weights
    fcn_resnet50_coco-1167a1af.pth``), ``weights_backbone`` one of ResNet-50 (``resnet50``'s
    keys, e.g. ``minicnn export-torchvision resnet50 ...``); the default is a random
    initialisation (torchvision's default backbone weights would need a download).
    ``progress`` is accepted for torchvision's signature.
    """
    del progress
    if kwargs:
        raise TypeError(f"fcn_resnet50: unexpected arguments {sorted(kwargs)}")
    if weights is not None:
        weights_backbone = None
        aux_loss = True if aux_loss is None else aux_loss
    num_classes = 21 if num_classes is None else num_classes
    backbone = resnet50(replace_stride_with_dilation=[False, True, True])
    if weights_backbone is not None:
        load_weights(backbone, weights_backbone)
    min_input_size = backbone.min_input_size
    return_layers = {"layer4": "out"}
    if aux_loss:
        return_layers["layer3"] = "aux"
    model = FCN(IntermediateLayerGetter(backbone, return_layers), FCNHead(2048, num_classes),
                FCNHead(1024, num_classes) if aux_loss else None, min_input_size=min_input_size,
                name="fcn_resnet50")
    if weights is not None:
        load_weights(model, weights)
    return model
