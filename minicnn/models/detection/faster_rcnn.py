"""Faster R-CNN: Ren et al. 2015, "Faster R-CNN: Towards Real-Time Object Detection with
Region Proposal Networks" (arXiv:1506.01497), with the feature pyramid of Lin et al. 2017
and RoIAlign; built as torchvision builds it (``models/detection/faster_rcnn.py``): the
same modules, names, initialisation and defaults, so torchvision's state dicts load and
give its outputs.

The deck's story: R-CNN ran a CNN on every cropped proposal; Fast R-CNN runs the backbone
once and pools each proposal from the feature map; Faster R-CNN also learns the proposals
with a region proposal network sharing the backbone. Four losses are trained jointly: the
RPN's objectness and box offsets, the heads' classes and box offsets.

``fasterrcnn_resnet50_fpn``: ResNet-50 + FPN (P2..P6), one anchor size per level (32 ..
512) at ratios 0.5, 1, 2; RoIAlign 7x7 from P2..P5; two 1024-wide fully connected layers;
41,755,286 parameters for COCO's 91 classes. ``fasterrcnn_mobilenet_v3_large_fpn``:
MobileNetV3-Large's last two stages + FPN, five anchor sizes per level; 19,386,354.
"""

from __future__ import annotations

import os

from minicnn import nn
from minicnn.autograd import Tensor
from minicnn.models.detection._utils import validate_trainable_layers
from minicnn.models.detection.anchor_utils import AnchorGenerator
from minicnn.models.detection.backbone_utils import mobilenet_extractor, resnet_fpn_extractor
from minicnn.models.detection.generalized_rcnn import GeneralizedRCNN
from minicnn.models.detection.roi_heads import RoIHeads
from minicnn.models.detection.rpn import RegionProposalNetwork, RPNHead
from minicnn.models.detection.transform import GeneralizedRCNNTransform
from minicnn.models.mobilenetv3 import mobilenet_v3_large
from minicnn.models.resnet import resnet50
from minicnn.models.weights import load_weights
from minicnn.nn import functional as F
from minicnn.ops import FrozenBatchNorm2d, MultiScaleRoIAlign
from minicnn.serialization import array_shapes, load_arrays

__all__ = ["FastRCNNPredictor", "FasterRCNN", "TwoMLPHead", "fasterrcnn_mobilenet_v3_large_fpn",
           "fasterrcnn_resnet50_fpn"]


def _default_anchorgen() -> AnchorGenerator:
    """One anchor size per FPN level (32 on P2 .. 512 on P6), ratios 0.5, 1, 2."""
    anchor_sizes = ((32,), (64,), (128,), (256,), (512,))
    return AnchorGenerator(anchor_sizes, ((0.5, 1.0, 2.0),) * len(anchor_sizes))


class TwoMLPHead(nn.Module):
    """Flatten, ``fc6`` + ReLU, ``fc7`` + ReLU: ``(K, C, 7, 7) -> (K, representation_size)``."""

    def __init__(self, in_channels: int, representation_size: int) -> None:
        super().__init__()
        self.fc6 = nn.Linear(in_channels, representation_size)
        self.fc7 = nn.Linear(representation_size, representation_size)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.fc7(F.relu(self.fc6(x.flatten(1)))))


class FastRCNNPredictor(nn.Module):
    """``(K, in_channels) -> (scores (K, num_classes), box offsets (K, 4 * num_classes))``."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.cls_score = nn.Linear(in_channels, num_classes)
        self.bbox_pred = nn.Linear(in_channels, num_classes * 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.ndim == 4 and tuple(x.shape[2:]) != (1, 1):
            raise ValueError(f"FastRCNNPredictor: expected (K, C) or (K, C, 1, 1) features, got "
                             f"{tuple(x.shape)}")
        x = x.flatten(1)
        return self.cls_score(x), self.bbox_pred(x)


class FasterRCNN(GeneralizedRCNN):
    """Faster R-CNN around any backbone with an ``out_channels`` attribute that returns a dict
    of maps (an FPN's ``"0", "1", "2", "3", "pool"``).

    Args (torchvision's, with its defaults):
        backbone: the feature extractor.
        num_classes: object classes + 1 (the background); None only with ``box_predictor``.
        min_size, max_size: the transform's resize (800, 1333).
        image_mean, image_std: the normalisation (ImageNet's).
        rpn_anchor_generator, rpn_head: default :func:`_default_anchorgen` and an
            :class:`RPNHead` on ``backbone.out_channels``.
        rpn_pre_nms_top_n_train/test, rpn_post_nms_top_n_train/test: 2000/1000, 2000/1000.
        rpn_nms_thresh, rpn_fg_iou_thresh, rpn_bg_iou_thresh: 0.7, 0.7, 0.3.
        rpn_batch_size_per_image, rpn_positive_fraction, rpn_score_thresh: 256, 0.5, 0.0.
        box_roi_pool: default ``MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2)``.
        box_head, box_predictor: default :class:`TwoMLPHead` (1024) and
            :class:`FastRCNNPredictor`.
        box_score_thresh, box_nms_thresh, box_detections_per_img: 0.05, 0.5, 100.
        box_fg_iou_thresh, box_bg_iou_thresh: 0.5, 0.5.
        box_batch_size_per_image, box_positive_fraction: 512, 0.25.
        bbox_reg_weights: default ``(10, 10, 5, 5)``.
        kwargs: passed to :class:`GeneralizedRCNNTransform` (``size_divisible``, ...).

    Calling convention: see :class:`GeneralizedRCNN`.
    """

    def __init__(self, backbone: nn.Module, num_classes: int | None = None,
                 min_size: int = 800, max_size: int = 1333,
                 image_mean: list[float] | None = None, image_std: list[float] | None = None,
                 rpn_anchor_generator: AnchorGenerator | None = None,
                 rpn_head: nn.Module | None = None,
                 rpn_pre_nms_top_n_train: int = 2000, rpn_pre_nms_top_n_test: int = 1000,
                 rpn_post_nms_top_n_train: int = 2000, rpn_post_nms_top_n_test: int = 1000,
                 rpn_nms_thresh: float = 0.7, rpn_fg_iou_thresh: float = 0.7,
                 rpn_bg_iou_thresh: float = 0.3, rpn_batch_size_per_image: int = 256,
                 rpn_positive_fraction: float = 0.5, rpn_score_thresh: float = 0.0,
                 box_roi_pool: MultiScaleRoIAlign | None = None,
                 box_head: nn.Module | None = None, box_predictor: nn.Module | None = None,
                 box_score_thresh: float = 0.05, box_nms_thresh: float = 0.5,
                 box_detections_per_img: int = 100, box_fg_iou_thresh: float = 0.5,
                 box_bg_iou_thresh: float = 0.5, box_batch_size_per_image: int = 512,
                 box_positive_fraction: float = 0.25,
                 bbox_reg_weights: tuple[float, ...] | None = None, **kwargs) -> None:
        name = type(self).__name__
        if not hasattr(backbone, "out_channels"):
            raise ValueError(f"{name}: the backbone needs an attribute out_channels (the "
                             f"channels of its maps, the same on every level)")
        if not isinstance(rpn_anchor_generator, (AnchorGenerator, type(None))):
            raise TypeError(f"{name}: rpn_anchor_generator must be an AnchorGenerator or None, "
                            f"got {type(rpn_anchor_generator).__name__}")
        if not isinstance(box_roi_pool, (MultiScaleRoIAlign, type(None))):
            raise TypeError(f"{name}: box_roi_pool must be a MultiScaleRoIAlign or None, got "
                            f"{type(box_roi_pool).__name__}")
        if num_classes is not None and box_predictor is not None:
            raise ValueError(f"{name}: num_classes must be None when box_predictor is given")
        if num_classes is None and box_predictor is None:
            raise ValueError(f"{name}: give num_classes (object classes + 1) or a box_predictor")
        if num_classes is not None and (not isinstance(num_classes, int)
                                        or isinstance(num_classes, bool) or num_classes < 2):
            raise ValueError(f"{name}: num_classes must be an int >= 2 (object classes + the "
                             f"background), got {num_classes!r}")
        out_channels = backbone.out_channels
        if rpn_anchor_generator is None:
            rpn_anchor_generator = _default_anchorgen()
        if rpn_head is None:
            rpn_head = RPNHead(out_channels, rpn_anchor_generator.num_anchors_per_location()[0])
        rpn = RegionProposalNetwork(
            rpn_anchor_generator, rpn_head, rpn_fg_iou_thresh, rpn_bg_iou_thresh,
            rpn_batch_size_per_image, rpn_positive_fraction,
            {"training": rpn_pre_nms_top_n_train, "testing": rpn_pre_nms_top_n_test},
            {"training": rpn_post_nms_top_n_train, "testing": rpn_post_nms_top_n_test},
            rpn_nms_thresh, score_thresh=rpn_score_thresh)
        if box_roi_pool is None:
            box_roi_pool = MultiScaleRoIAlign(featmap_names=["0", "1", "2", "3"], output_size=7,
                                              sampling_ratio=2)
        if box_head is None:
            resolution = box_roi_pool.output_size[0]
            box_head = TwoMLPHead(out_channels * resolution ** 2, 1024)
        if box_predictor is None:
            box_predictor = FastRCNNPredictor(1024, num_classes)
        roi_heads = RoIHeads(box_roi_pool, box_head, box_predictor, box_fg_iou_thresh,
                             box_bg_iou_thresh, box_batch_size_per_image, box_positive_fraction,
                             bbox_reg_weights, box_score_thresh, box_nms_thresh,
                             box_detections_per_img)
        image_mean = [0.485, 0.456, 0.406] if image_mean is None else image_mean
        image_std = [0.229, 0.224, 0.225] if image_std is None else image_std
        transform = GeneralizedRCNNTransform(min_size, max_size, image_mean, image_std, **kwargs)
        super().__init__(backbone, rpn, roi_heads, transform)


def load_detection_weights(model: nn.Module, path: str | os.PathLike) -> None:
    """:func:`~minicnn.models.weights.load_weights`, except that BatchNorm's
    ``num_batches_tracked`` entries of the file are skipped where the model has a
    :class:`~minicnn.ops.FrozenBatchNorm2d` (as torchvision's does), so that the state dict
    of a model trained with BatchNorm loads into the frozen one."""
    expected = model.state_dict()
    extra = [k for k in array_shapes(path) if k.endswith("num_batches_tracked")
             and k not in expected]
    if not extra:
        load_weights(model, path)
        return
    arrays = {k: v for k, v in load_arrays(path).items() if k not in extra}
    model.load_state_dict(arrays, strict=True)


def backbone_setup(weights, weights_backbone, num_classes: int | None,
                   trainable_backbone_layers: int | None, max_layers: int,
                   default_layers: int) -> tuple:
    """torchvision's bookkeeping: a whole-model file overrides the backbone's; 91 classes by
    default; the trainable stages; frozen BatchNorm when trained weights are loaded."""
    if weights is not None:
        weights_backbone = None
    num_classes = 91 if num_classes is None else num_classes
    is_trained = weights is not None or weights_backbone is not None
    layers = validate_trainable_layers(is_trained, trainable_backbone_layers, max_layers,
                                       default_layers)
    norm_layer = FrozenBatchNorm2d if is_trained else nn.BatchNorm2d
    return weights_backbone, num_classes, layers, norm_layer


def fasterrcnn_resnet50_fpn(*, weights: str | os.PathLike | None = None, progress: bool = True,
                            num_classes: int | None = None,
                            weights_backbone: str | os.PathLike | None = None,
                            trainable_backbone_layers: int | None = None,
                            **kwargs) -> FasterRCNN:
    """Faster R-CNN with a ResNet-50 FPN backbone, as torchvision's: 41,755,286 parameters
    for 91 classes.

    Args:
        weights: a ``.safetensors``/``.npz`` file with a whole model's state dict, e.g.
            ``minicnn.models.export_torchvision("fasterrcnn_resnet50_fpn", path,
            model=tv_model)`` of a torchvision model. With it (or ``weights_backbone``) the
            backbone's BatchNorms are :class:`~minicnn.ops.FrozenBatchNorm2d`, as in
            torchvision (for its COCO weights torchvision also sets their eps to 0:
            :func:`~minicnn.models.detection._utils.overwrite_eps` ``(model, 0.0)``).
        progress: accepted for torchvision's signature (nothing is downloaded).
        num_classes: object classes + 1 (default 91).
        weights_backbone: a file with ResNet-50's state dict.
        trainable_backbone_layers: ResNet stages (0..5) left trainable from the last; only
            with ``weights`` or ``weights_backbone`` (default 3), else all 5.
        kwargs: passed to :class:`FasterRCNN` (``min_size``, ``box_score_thresh``, ...).
    """
    weights_backbone, num_classes, layers, norm_layer = backbone_setup(
        weights, weights_backbone, num_classes, trainable_backbone_layers, 5, 3)
    backbone = resnet50(norm_layer=norm_layer)
    if weights_backbone is not None:
        load_detection_weights(backbone, weights_backbone)
    model = FasterRCNN(resnet_fpn_extractor(backbone, layers), num_classes=num_classes,
                       **kwargs)
    if weights is not None:
        load_detection_weights(model, weights)
    return model


def fasterrcnn_mobilenet_v3_large_fpn(*, weights: str | os.PathLike | None = None,
                                      progress: bool = True, num_classes: int | None = None,
                                      weights_backbone: str | os.PathLike | None = None,
                                      trainable_backbone_layers: int | None = None,
                                      **kwargs) -> FasterRCNN:
    """Faster R-CNN with a MobileNetV3-Large FPN backbone (its last two stages, strides 16
    and 32, plus P6), anchors of sizes 32..512 on every level, ``rpn_score_thresh=0.05``,
    as torchvision's: 19,386,354 parameters for 91 classes. Arguments as
    :func:`fasterrcnn_resnet50_fpn`; ``trainable_backbone_layers`` in 0..6 (default 3)."""
    weights_backbone, num_classes, layers, norm_layer = backbone_setup(
        weights, weights_backbone, num_classes, trainable_backbone_layers, 6, 3)
    backbone = mobilenet_v3_large(norm_layer=norm_layer)
    if weights_backbone is not None:
        load_detection_weights(backbone, weights_backbone)
    anchor_sizes = ((32, 64, 128, 256, 512),) * 3
    anchors = AnchorGenerator(anchor_sizes, ((0.5, 1.0, 2.0),) * len(anchor_sizes))
    # torchvision's default pooler names maps "0".."3" and skips the missing ones; this
    # backbone has "0" and "1" (and "pool"), so name those (the same pooling)
    pooler = MultiScaleRoIAlign(featmap_names=["0", "1"], output_size=7, sampling_ratio=2)
    defaults = {"rpn_score_thresh": 0.05, "box_roi_pool": pooler}
    model = FasterRCNN(mobilenet_extractor(backbone, True, layers), num_classes,
                       rpn_anchor_generator=anchors, **{**defaults, **kwargs})
    if weights is not None:
        load_detection_weights(model, weights)
    return model
