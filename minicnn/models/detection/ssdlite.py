"""SSDLite: SSD with depthwise-separable heads and extra layers on a MobileNetV3-Large
backbone, built as torchvision's ``ssdlite320_mobilenet_v3_large``
(``models/detection/ssdlite.py``): the same modules, names, initialisation and settings.

Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear Bottlenecks", section
6.2: SSDLite replaces every regular 3x3 convolution of SSD's heads by a depthwise 3x3
(+ BN + ReLU6) and a 1x1 projection, and the extra layers by 1x1 -> depthwise 3x3 stride 2
-> 1x1 blocks. Howard et al. 2019, "Searching for MobileNetV3", section 6.3: the first
map is taken at the expansion layer of the first stride-16 ... stride-32 block (C4), the
second at the backbone's last layer; with no pretrained backbone the last stage has half
its channels ("reduced tail", their Table 6). At 320x320 the six maps are 20x20, 10x10,
5x5, 3x3, 2x2 and 1x1, with 6 default boxes per cell (aspect ratios 1, 1', 2, 1/2, 3,
1/3) at scales 0.2 ... 0.95: 3,234 default boxes. 3,440,060 parameters for 91 classes.
"""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from collections.abc import Callable
from functools import partial

from minicnn import nn
from minicnn.autograd import Tensor
from minicnn.models.detection._utils import freeze_backbone_stages, validate_trainable_layers
from minicnn.models.detection.anchor_utils import DefaultBoxGenerator
from minicnn.models.detection.ssd import SSD, SSDScoringHead
from minicnn.models.mobilenetv3 import MobileNetV3, mobilenet_v3_large
from minicnn.models.weights import load_weights

__all__ = ["SSDLiteClassificationHead", "SSDLiteFeatureExtractorMobileNet", "SSDLiteHead",
           "SSDLiteRegressionHead", "ssdlite320_mobilenet_v3_large"]


def _prediction_block(in_channels: int, out_channels: int, kernel_size: int,
                      norm_layer: Callable[..., nn.Module]) -> nn.Sequential:
    """Depthwise k x k (+ norm + ReLU6), then a 1x1 convolution to ``out_channels``."""
    return nn.Sequential(
        nn.Conv2dNormActivation(in_channels, in_channels, kernel_size=kernel_size,
                                groups=in_channels, norm_layer=norm_layer,
                                activation_layer=nn.ReLU6),
        nn.Conv2d(in_channels, out_channels, 1),
    )


def _extra_block(in_channels: int, out_channels: int,
                 norm_layer: Callable[..., nn.Module]) -> nn.Sequential:
    """1x1 to ``out_channels / 2``, depthwise 3x3 stride 2, 1x1 to ``out_channels``; each with
    norm and ReLU6. Halves the map."""
    mid = out_channels // 2
    return nn.Sequential(
        nn.Conv2dNormActivation(in_channels, mid, kernel_size=1, norm_layer=norm_layer,
                                activation_layer=nn.ReLU6),
        nn.Conv2dNormActivation(mid, mid, kernel_size=3, stride=2, groups=mid,
                                norm_layer=norm_layer, activation_layer=nn.ReLU6),
        nn.Conv2dNormActivation(mid, out_channels, kernel_size=1, norm_layer=norm_layer,
                                activation_layer=nn.ReLU6),
    )


def _normal_init(module: nn.Module) -> None:
    """N(0, 0.03^2) weights and zero biases for every convolution (torchvision's SSDLite)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.normal_(layer.weight, mean=0.0, std=0.03)
            if layer.bias is not None:
                nn.init.constant_(layer.bias, 0.0)


class SSDLiteClassificationHead(SSDScoringHead):
    """A depthwise-separable predictor per map giving ``num_classes`` scores per box."""

    def __init__(self, in_channels: list[int], num_anchors: list[int], num_classes: int,
                 norm_layer: Callable[..., nn.Module]):
        cls_logits = nn.ModuleList([
            _prediction_block(channels, num_classes * anchors, 3, norm_layer)
            for channels, anchors in zip(in_channels, num_anchors)])
        _normal_init(cls_logits)
        super().__init__(cls_logits, num_classes)


class SSDLiteRegressionHead(SSDScoringHead):
    """A depthwise-separable predictor per map giving 4 box offsets per box."""

    def __init__(self, in_channels: list[int], num_anchors: list[int],
                 norm_layer: Callable[..., nn.Module]):
        bbox_reg = nn.ModuleList([
            _prediction_block(channels, 4 * anchors, 3, norm_layer)
            for channels, anchors in zip(in_channels, num_anchors)])
        _normal_init(bbox_reg)
        super().__init__(bbox_reg, 4)


class SSDLiteHead(nn.Module):
    """Both heads: ``features -> {"bbox_regression": (N, A, 4), "cls_logits": (N, A, C)}``."""

    def __init__(self, in_channels: list[int], num_anchors: list[int], num_classes: int,
                 norm_layer: Callable[..., nn.Module]):
        super().__init__()
        self.classification_head = SSDLiteClassificationHead(in_channels, num_anchors,
                                                             num_classes, norm_layer)
        self.regression_head = SSDLiteRegressionHead(in_channels, num_anchors, norm_layer)

    def forward(self, x: list[Tensor]) -> dict[str, Tensor]:
        return {"bbox_regression": self.regression_head(x),
                "cls_logits": self.classification_head(x)}


class SSDLiteFeatureExtractorMobileNet(nn.Module):
    """MobileNet's ``features`` cut at the C4 block's expansion layer, plus four extra blocks.

    ``features[0]``: the backbone up to and including block ``c4_pos``'s expansion 1x1
    convolution (stride 16); ``features[1]``: the rest of that block and of the backbone
    (stride 32); ``extra``: four :func:`_extra_block` s (512, 256, 256, 128 channels, times
    ``width_mult``, at least ``min_depth``). ``x -> {"0": ..., ..., "5": ...}``, six maps.
    """

    def __init__(self, backbone: nn.Sequential, c4_pos: int,
                 norm_layer: Callable[..., nn.Module], width_mult: float = 1.0,
                 min_depth: int = 16):
        super().__init__()
        if backbone[c4_pos].use_res_connect:
            raise ValueError("SSDLiteFeatureExtractorMobileNet: backbone[c4_pos] must be a "
                             "strided block (it has a residual connection)")
        self.features = nn.Sequential(
            nn.Sequential(*backbone[:c4_pos], backbone[c4_pos].block[0]),  # to C4 expansion
            nn.Sequential(backbone[c4_pos].block[1:], *backbone[c4_pos + 1:]),  # the rest
        )

        def get_depth(d: int) -> int:
            return max(min_depth, int(d * width_mult))

        depths = [get_depth(512), get_depth(256), get_depth(256), get_depth(128)]
        extra_in = [backbone[-1][0].out_channels, *depths[:-1]]
        self.extra = nn.ModuleList([_extra_block(i, o, norm_layer)
                                    for i, o in zip(extra_in, depths)])
        _normal_init(self.extra)
        # the channels of the six maps (torchvision finds them with a forward pass)
        self.out_channels = [backbone[c4_pos].block[0][0].out_channels,
                             backbone[-1][0].out_channels, *depths]

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        output = []
        for block in self.features:
            x = block(x)
            output.append(x)
        for block in self.extra:
            x = block(x)
            output.append(x)
        return OrderedDict((str(i), v) for i, v in enumerate(output))


def mobilenet_extractor(backbone: MobileNetV3, trainable_layers: int,
                         norm_layer: Callable[..., nn.Module]) -> SSDLiteFeatureExtractorMobileNet:
    """Freeze all but the last ``trainable_layers`` stages (the stem, each strided block
    C1..C4, the last layer), then extract from the C4 block."""
    features = backbone.features
    stage_indices = ([0] + [i for i, b in enumerate(features) if getattr(b, "_is_cn", False)]
                     + [len(features) - 1])
    freeze_backbone_stages(features, stage_indices, trainable_layers)
    return SSDLiteFeatureExtractorMobileNet(features, stage_indices[-2], norm_layer)


def ssdlite320_mobilenet_v3_large(*, weights: str | os.PathLike | None = None,
                                  progress: bool = True, num_classes: int | None = None,
                                  weights_backbone: str | os.PathLike | None = None,
                                  trainable_backbone_layers: int | None = None,
                                  norm_layer: Callable[..., nn.Module] | None = None,
                                  **kwargs) -> SSD:
    """SSDLite at 320x320 on MobileNetV3-Large, as torchvision's
    ``ssdlite320_mobilenet_v3_large``: 3,440,060 parameters for 91 classes.

    Args:
        weights: a ``.safetensors``/``.npz`` file with the whole model's state dict.
        progress: accepted for torchvision's signature (nothing is downloaded).
        num_classes: object classes + 1 (default 91).
        weights_backbone: a file with ``mobilenet_v3_large``'s state dict; then the last
            stage keeps its full width (no reduced tail), as in torchvision.
        trainable_backbone_layers: stages (of 6) left trainable from the last; only with
            ``weights`` or ``weights_backbone`` (default 6).
        norm_layer: default ``BatchNorm2d(eps=0.001, momentum=0.03)``.
        kwargs: passed to :class:`~minicnn.models.detection.ssd.SSD`.
    """
    if "size" in kwargs:
        warnings.warn("ssdlite320_mobilenet_v3_large: the size of the model is fixed "
                      "(320x320); ignoring the size argument", stacklevel=2)
        kwargs.pop("size")
    if weights is not None:
        weights_backbone = None
    num_classes = 91 if num_classes is None else num_classes
    trainable_backbone_layers = validate_trainable_layers(
        weights is not None or weights_backbone is not None, trainable_backbone_layers, 6, 6)
    reduce_tail = weights_backbone is None  # MobileNetV3 paper, Table 6
    if norm_layer is None:
        norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
    backbone = mobilenet_v3_large(norm_layer=norm_layer, reduced_tail=reduce_tail)
    if weights_backbone is not None:
        load_weights(backbone, weights_backbone)
    else:
        _normal_init(backbone)
    backbone = mobilenet_extractor(backbone, trainable_backbone_layers, norm_layer)

    size = (320, 320)
    anchor_generator = DefaultBoxGenerator([[2, 3] for _ in range(6)], min_ratio=0.2,
                                           max_ratio=0.95)
    out_channels = backbone.out_channels
    defaults = {
        "score_thresh": 0.001,
        "nms_thresh": 0.55,
        "detections_per_img": 300,
        "topk_candidates": 300,
        "image_mean": [0.5, 0.5, 0.5],  # [0, 1] -> [-1, 1]
        "image_std": [0.5, 0.5, 0.5],
    }
    head = SSDLiteHead(out_channels, anchor_generator.num_anchors_per_location(), num_classes,
                       norm_layer)
    model = SSD(backbone, anchor_generator, size, num_classes, head=head,
                **{**defaults, **kwargs})
    if weights is not None:
        load_weights(model, weights)
    return model
