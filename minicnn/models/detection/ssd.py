"""SSD: Liu et al. 2016, "SSD: Single Shot MultiBox Detector" (arXiv:1512.02325), built as
torchvision builds ``ssd300_vgg16`` (``models/detection/ssd.py``): the same modules, names,
initialisation, loss and postprocessing, so torchvision's weights load and give its outputs.

The idea (the paper's Fig. 2): one network pass predicts, on *several* feature maps of
decreasing resolution, for every cell and each of its default boxes (anchors), the
offsets of an object's box from the default box (4 numbers) and a score per class
(``num_classes`` numbers, class 0 is the background). Fine maps see small objects,
coarse maps large ones. ``SSD300``: the input is resized to 300x300; the maps are VGG16's
conv4_3 (38x38, L2-normalised and rescaled by a learned factor, initially 20), fc7 (19x19,
VGG's fully connected layers turned into a dilated 3x3 and a 1x1 convolution) and four
extra layers (10x10, 5x5, 3x3, 1x1): 8,732 default boxes.

Training (section 2.2): match default boxes to the ground truth
(:class:`~minicnn.models.detection._utils.SSDMatcher`: IoU >= 0.5, plus each object's best
box), then

    loss = (1 / N) * (sum over positives of smooth-L1(offsets - encoded target)
                      + sum over positives and hard negatives of cross-entropy)

with ``N`` the number of positives. Most default boxes are background, so only the
negatives with the highest classification loss count, at most 3 per positive ("hard
negative mining"). Inference: softmax scores; per class, boxes above ``score_thresh``, the
``topk_candidates`` best of them, NMS per class, the ``detections_per_img`` best overall.

Images go in as a list of ``(3, H, W)`` Tensors with values in [0, 1] (or an
``(N, 3, H, W)`` Tensor); in training mode ``model(images, targets)`` returns
``{"bbox_regression", "classification"}``, in eval mode ``model(images)`` a list of
``{"boxes": (D, 4), "scores": (D,), "labels": (D,)}`` in the original image coordinates.
"""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict

import numpy as np

from minicnn import nn
from minicnn.autograd import Tensor, ones
from minicnn.autograd.ops import cat, softmax, stack
from minicnn.backend import backend_of
from minicnn.models.detection._utils import (
    BoxCoder,
    SSDMatcher,
    freeze_backbone_stages,
    retrieve_out_channels,
    stable_descending_order,
    validate_trainable_layers,
)
from minicnn.models.detection.anchor_utils import DefaultBoxGenerator
from minicnn.models.detection.transform import GeneralizedRCNNTransform
from minicnn.models.vgg import VGG_CONFIGS, init_vgg_, make_layers, vgg16
from minicnn.models.weights import load_weights
from minicnn.nn import functional as F
from minicnn.ops import batched_nms, box_iou, clip_boxes_to_image

__all__ = ["SSD", "SSDClassificationHead", "SSDFeatureExtractorVGG", "SSDHead",
           "SSDRegressionHead", "SSDScoringHead", "check_detection_targets", "ssd300_vgg16"]


def _xavier_init(module: nn.Module) -> None:
    """Xavier-uniform weights, zero biases for every convolution (torchvision's SSD init)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.constant_(layer.bias, 0.0)


# ---------------------------------------------------------------- heads


class SSDScoringHead(nn.Module):
    """One predictor per feature map (``module_list[i]`` on map ``i``), each giving
    ``num_columns`` numbers per default box; the results are flattened and joined:
    ``[(N, C_i, H_i, W_i)] -> (N, sum_i H_i * W_i * A_i, num_columns)`` in the order
    (map, row, column, box) of the default boxes."""

    def __init__(self, module_list: nn.ModuleList, num_columns: int):
        super().__init__()
        self.module_list = module_list
        self.num_columns = num_columns

    def forward(self, x: list[Tensor]) -> Tensor:
        if len(x) != len(self.module_list):
            raise ValueError(f"{type(self).__name__}: got {len(x)} feature maps, expected "
                             f"{len(self.module_list)}")
        results = []
        for features, module in zip(x, self.module_list):
            out = module(features)
            n, _, h, w = out.shape
            # (N, A * K, H, W) -> (N, A, K, H, W) -> (N, H, W, A, K) -> (N, HWA, K)
            out = out.reshape(n, -1, self.num_columns, h, w).permute(0, 3, 4, 1, 2)
            results.append(out.reshape(n, -1, self.num_columns))
        return cat(results, dim=1)


class SSDClassificationHead(SSDScoringHead):
    """A 3x3 convolution per feature map giving ``num_classes`` scores per default box."""

    def __init__(self, in_channels: list[int], num_anchors: list[int], num_classes: int):
        cls_logits = nn.ModuleList([
            nn.Conv2d(channels, num_classes * anchors, kernel_size=3, padding=1)
            for channels, anchors in zip(in_channels, num_anchors)])
        _xavier_init(cls_logits)
        super().__init__(cls_logits, num_classes)


class SSDRegressionHead(SSDScoringHead):
    """A 3x3 convolution per feature map giving 4 box offsets per default box."""

    def __init__(self, in_channels: list[int], num_anchors: list[int]):
        bbox_reg = nn.ModuleList([
            nn.Conv2d(channels, 4 * anchors, kernel_size=3, padding=1)
            for channels, anchors in zip(in_channels, num_anchors)])
        _xavier_init(bbox_reg)
        super().__init__(bbox_reg, 4)


class SSDHead(nn.Module):
    """Both heads: ``features -> {"bbox_regression": (N, A, 4), "cls_logits": (N, A, C)}``."""

    def __init__(self, in_channels: list[int], num_anchors: list[int], num_classes: int):
        super().__init__()
        self.classification_head = SSDClassificationHead(in_channels, num_anchors, num_classes)
        self.regression_head = SSDRegressionHead(in_channels, num_anchors)

    def forward(self, x: list[Tensor]) -> dict[str, Tensor]:
        return {"bbox_regression": self.regression_head(x),
                "cls_logits": self.classification_head(x)}


# ---------------------------------------------------------------- input checks


def check_detection_targets(targets, num_images: int, num_classes: int, who: str) -> None:
    """Raise a ValueError/TypeError naming the entry unless ``targets`` is a list of
    ``num_images`` dicts with ``boxes: (K, 4)`` float xyxy boxes of positive width and
    height and ``labels: (K,)`` integers in ``[1, num_classes)``."""
    if not isinstance(targets, (list, tuple)):
        raise TypeError(f"{who}: targets must be a list of dicts (one per image), got "
                        f"{type(targets).__name__}")
    if len(targets) != num_images:
        raise ValueError(f"{who}: got {num_images} images but {len(targets)} targets; "
                         f"expected one target dict per image")
    for i, target in enumerate(targets):
        if not isinstance(target, dict) or "boxes" not in target or "labels" not in target:
            raise ValueError(f"{who}: targets[{i}] must be a dict with 'boxes' and 'labels', "
                             f"got {target if not isinstance(target, dict) else sorted(target)}")
        boxes, labels = target["boxes"], target["labels"]
        for key, value in (("boxes", boxes), ("labels", labels)):
            if not isinstance(value, Tensor):
                raise TypeError(f"{who}: targets[{i}]['{key}'] must be a Tensor, got "
                                f"{type(value).__name__}")
        if boxes.ndim != 2 or boxes.shape[1] != 4 or boxes.dtype.kind != "f":
            raise ValueError(f"{who}: targets[{i}]['boxes'] must be a float Tensor of shape "
                             f"(K, 4), got shape {tuple(boxes.shape)} and dtype {boxes.dtype}")
        if labels.ndim != 1 or labels.shape[0] != boxes.shape[0] or labels.dtype.kind not in "iu":
            raise ValueError(f"{who}: targets[{i}]['labels'] must be an integer Tensor of shape "
                             f"({boxes.shape[0]},) (one label per box), got shape "
                             f"{tuple(labels.shape)} and dtype {labels.dtype}")
        b = boxes.array
        bad = (b[:, 2:] <= b[:, :2]).any(axis=1)
        if bad.any():
            j = int(bad.nonzero()[0][0])
            raise ValueError(f"{who}: all boxes need a positive width and height (x1 < x2, "
                             f"y1 < y2); targets[{i}]['boxes'][{j}] is {b[j].tolist()}")
        lab = labels.array
        out = (lab < 1) | (lab >= num_classes)
        if out.any():
            j = int(out.nonzero()[0][0])
            raise ValueError(f"{who}: targets[{i}]['labels'] must be in [1, {num_classes - 1}] "
                             f"(0 is the background, num_classes={num_classes}); "
                             f"targets[{i}]['labels'][{j}] is {int(lab[j])}")


def as_image_list(images, who: str) -> list[Tensor]:
    """``images`` (a list of ``(C, H, W)`` Tensors or an ``(N, C, H, W)`` Tensor) as a list."""
    if isinstance(images, Tensor):
        if images.ndim != 4:
            raise ValueError(f"{who}: images must be a list of (3, H, W) Tensors or an "
                             f"(N, 3, H, W) Tensor, got a Tensor of shape {tuple(images.shape)}")
        return [images[i] for i in range(images.shape[0])]
    if not isinstance(images, (list, tuple)) or not images:
        raise TypeError(f"{who}: images must be a non-empty list of (3, H, W) Tensors or an "
                        f"(N, 3, H, W) Tensor, got {type(images).__name__}"
                        f"{' (empty)' if isinstance(images, (list, tuple)) else ''}")
    for i, image in enumerate(images):
        if not isinstance(image, Tensor) or image.ndim != 3:
            got = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
            raise ValueError(f"{who}: images[{i}] must be a (3, H, W) Tensor, got {got}")
    return list(images)


# ---------------------------------------------------------------- the detector


class SSD(nn.Module):
    """The SSD detector around any backbone that returns a list/dict of feature maps.

    Args:
        backbone: ``(N, 3, H, W) ->`` a dict (or one Tensor) of feature maps.
        anchor_generator: the :class:`DefaultBoxGenerator` (one aspect-ratio list per map).
        size: ``(width, height)`` every image is resized to.
        num_classes: object classes + 1 (class 0 is the background).
        image_mean, image_std: the input normalisation (ImageNet's by default).
        head: default an :class:`SSDHead` on the backbone's channels.
        score_thresh, nms_thresh, detections_per_img, topk_candidates: postprocessing.
        iou_thresh: the IoU from which a default box matches a ground-truth box.
        positive_fraction: positives / (positives + negatives) in the classification loss
            (0.25: 3 hard negatives per positive).
        kwargs: passed on to :class:`GeneralizedRCNNTransform`.
    """

    def __init__(self, backbone: nn.Module, anchor_generator: DefaultBoxGenerator,
                 size: tuple[int, int], num_classes: int,
                 image_mean: list[float] | None = None, image_std: list[float] | None = None,
                 head: nn.Module | None = None, score_thresh: float = 0.01,
                 nms_thresh: float = 0.45, detections_per_img: int = 200,
                 iou_thresh: float = 0.5, topk_candidates: int = 400,
                 positive_fraction: float = 0.25, **kwargs):
        super().__init__()
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
            raise ValueError(f"SSD: num_classes must be an int >= 2 (object classes + the "
                             f"background), got {num_classes!r}")
        if not 0.0 < positive_fraction <= 1.0:
            raise ValueError(f"SSD: positive_fraction must be in (0, 1], got {positive_fraction}")
        self.backbone = backbone
        self.anchor_generator = anchor_generator
        self.box_coder = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
        if head is None:
            out_channels = getattr(backbone, "out_channels", None) or \
                retrieve_out_channels(backbone, size)
            if len(out_channels) != len(anchor_generator.aspect_ratios):
                raise ValueError(
                    f"SSD: the backbone gives {len(out_channels)} feature maps but the anchor "
                    f"generator has {len(anchor_generator.aspect_ratios)} aspect-ratio lists")
            head = SSDHead(out_channels, anchor_generator.num_anchors_per_location(),
                           num_classes)
        self.head = head
        self.proposal_matcher = SSDMatcher(iou_thresh)
        image_mean = [0.485, 0.456, 0.406] if image_mean is None else image_mean
        image_std = [0.229, 0.224, 0.225] if image_std is None else image_std
        self.transform = GeneralizedRCNNTransform(min(size), max(size), image_mean, image_std,
                                                  size_divisible=1, fixed_size=size, **kwargs)
        self.num_classes = num_classes
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img
        self.topk_candidates = topk_candidates
        self.neg_to_pos_ratio = (1.0 - positive_fraction) / positive_fraction

    # ------------------------------------------------------------ training: the loss

    def compute_loss(self, targets: list[dict], head_outputs: dict[str, Tensor],
                     anchors: list[Tensor], matched_idxs: list[Tensor]) -> dict[str, Tensor]:
        """``{"bbox_regression", "classification"}``, both summed over the batch and divided
        by the number of matched default boxes (at least 1)."""
        bbox_regression = head_outputs["bbox_regression"]  # (N, A, 4)
        cls_logits = head_outputs["cls_logits"]  # (N, A, C)
        xp = backend_of(cls_logits.array).xp
        num_foreground = 0
        bbox_loss, cls_targets = [], []
        for i, (target, anchors_i, matched) in enumerate(zip(targets, anchors, matched_idxs)):
            matched = matched.array
            fg = xp.nonzero(matched >= 0)[0]  # default boxes matched to an object
            fg_matched = matched[fg]  # ... and the object each one matched
            num_foreground += int(fg.shape[0])
            target_regression = self.box_coder.encode_single(target["boxes"][fg_matched],
                                                             anchors_i[fg])
            bbox_loss.append(F.smooth_l1_loss(bbox_regression[i][fg], target_regression,
                                              reduction="sum"))
            labels = target["labels"].array
            gt_classes = xp.zeros(matched.shape[0], dtype=labels.dtype)
            gt_classes[fg] = labels[fg_matched]
            cls_targets.append(gt_classes)
        cls_targets = xp.stack(cls_targets)  # (N, A); 0 = background
        num_classes = cls_logits.shape[-1]
        cls_loss = F.cross_entropy(cls_logits.reshape(-1, num_classes),
                                   Tensor(cls_targets.reshape(-1)),
                                   reduction="none").reshape(cls_targets.shape)

        # hard negative mining: per image, the 3 * (positives) negatives of highest loss
        foreground = cls_targets > 0
        num_negative = self.neg_to_pos_ratio * foreground.sum(axis=1, keepdims=True)
        negative_loss = cls_loss.array.copy()
        negative_loss[foreground] = -np.inf  # positives sort last
        order = stable_descending_order(negative_loss, axis=1)
        rank = xp.argsort(order, axis=1)  # each default box's place in that order
        background = rank < num_negative

        n = max(1, num_foreground)
        classification = cls_loss[foreground].sum() + cls_loss[background].sum()
        return {"bbox_regression": stack(bbox_loss).sum() / n,
                "classification": classification / n}

    # ------------------------------------------------------------ inference

    def postprocess_detections(self, head_outputs: dict[str, Tensor], image_anchors: list[Tensor],
                               image_shapes: list[tuple[int, int]]) -> list[dict[str, Tensor]]:
        """Decode, threshold, keep the top-k per class, NMS per class, keep the best."""
        bbox_regression = head_outputs["bbox_regression"].detach()
        pred_scores = softmax(head_outputs["cls_logits"].detach(), dim=-1)
        num_classes = pred_scores.shape[-1]
        xp = backend_of(pred_scores.array).xp
        detections = []
        for i, (anchors, image_shape) in enumerate(zip(image_anchors, image_shapes)):
            boxes = self.box_coder.decode_single(bbox_regression[i], anchors)
            boxes = clip_boxes_to_image(boxes, image_shape).array
            scores = pred_scores.array[i]
            image_boxes, image_scores, image_labels = [], [], []
            for label in range(1, num_classes):
                score = scores[:, label]
                keep = xp.nonzero(score > self.score_thresh)[0]
                top = stable_descending_order(score[keep])[:self.topk_candidates]
                idxs = keep[top]
                image_boxes.append(boxes[idxs])
                image_scores.append(score[idxs])
                image_labels.append(xp.full(idxs.shape[0], label, dtype=xp.int64))
            image_boxes = Tensor(xp.concatenate(image_boxes))
            image_scores = Tensor(xp.concatenate(image_scores))
            image_labels = Tensor(xp.concatenate(image_labels))
            keep = batched_nms(image_boxes, image_scores, image_labels, self.nms_thresh)
            keep = keep.array[:self.detections_per_img]
            detections.append({"boxes": image_boxes[keep], "scores": image_scores[keep],
                               "labels": image_labels[keep]})
        return detections

    # ------------------------------------------------------------ forward

    def forward(self, images, targets: list[dict] | None = None):
        """Train mode: ``model(images, targets)`` -> dict of losses; eval mode:
        ``model(images)`` -> list of ``{"boxes", "scores", "labels"}`` per image."""
        name = type(self).__name__
        images = as_image_list(images, name)
        if self.training:
            if targets is None:
                raise ValueError(f"{name}: targets must be given in training mode "
                                 f"(model(images, targets)); call model.eval() for detections")
            check_detection_targets(targets, len(images), self.num_classes, name)
        original_image_sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        image_list, targets = self.transform(images, targets)

        features = self.backbone(image_list.tensors)
        if isinstance(features, Tensor):
            features = OrderedDict([("0", features)])
        features = list(features.values())
        head_outputs = self.head(features)
        anchors = self.anchor_generator(image_list, features)

        if self.training:
            matched_idxs = []
            for anchors_i, target in zip(anchors, targets):
                if target["boxes"].shape[0] == 0:
                    xp = backend_of(anchors_i.array).xp
                    matched_idxs.append(Tensor(xp.full(anchors_i.shape[0], -1, dtype=xp.int64)))
                    continue
                quality = box_iou(target["boxes"].detach(), anchors_i)
                matched_idxs.append(self.proposal_matcher(quality))
            return self.compute_loss(targets, head_outputs, anchors, matched_idxs)
        detections = self.postprocess_detections(head_outputs, anchors, image_list.image_sizes)
        return self.transform.postprocess(detections, image_list.image_sizes,
                                          original_image_sizes)


# ---------------------------------------------------------------- SSD300's VGG16 backbone


class SSDFeatureExtractorVGG(nn.Module):
    """VGG16's convolutions turned into SSD300's six feature maps (the paper's Fig. 2).

    ``backbone``: VGG16's ``features`` (13 convolutions, 5 max pools). ``features`` runs it up
    to conv4_3 (the third pool rounds up, so 300 -> 38); that map is L2-normalised per
    pixel and multiplied by ``scale_weight`` (512 learned factors, initially 20).
    ``extra[0]``: pool4, conv5_1..5_3, a 3x3 stride-1 pool, fc6 as a 3x3 convolution with
    dilation 6 and fc7 as a 1x1 convolution (19x19); ``extra[1..4]``: a 1x1 then a 3x3
    convolution each (10x10, 5x5, 3x3, 1x1). ``highres`` adds SSD512's fifth extra layer.

    ``x: (N, 3, 300, 300) -> {"0": (N, 512, 38, 38), "1": (N, 1024, 19, 19),
    "2": (N, 512, 10, 10), "3": (N, 256, 5, 5), "4": (N, 256, 3, 3), "5": (N, 256, 1, 1)}``.
    """

    def __init__(self, backbone: nn.Sequential, highres: bool):
        super().__init__()
        pools = [i for i, layer in enumerate(backbone) if isinstance(layer, nn.MaxPool2d)]
        if len(pools) != 5:
            raise ValueError(f"SSDFeatureExtractorVGG: backbone must be VGG16's features with 5 "
                             f"max pools, got {len(pools)}")
        _, _, maxpool3_pos, maxpool4_pos, _ = pools
        backbone[maxpool3_pos].ceil_mode = True  # 75 -> 38 as in the paper
        self.scale_weight = nn.Parameter(ones(512) * 20)
        self.features = nn.Sequential(*backbone[:maxpool4_pos])  # up to conv4_3
        extra = nn.ModuleList([
            _extra_layer(1024, 256, 512, kernel_size=3, padding=1, stride=2),  # conv8_2
            _extra_layer(512, 128, 256, kernel_size=3, padding=1, stride=2),  # conv9_2
            _extra_layer(256, 128, 256, kernel_size=3),  # conv10_2
            _extra_layer(256, 128, 256, kernel_size=3),  # conv11_2
        ])
        if highres:
            extra.append(_extra_layer(256, 128, 256, kernel_size=4))  # conv12_2 (SSD512)
        _xavier_init(extra)
        fc = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=False),  # pool5
            nn.Conv2d(512, 1024, kernel_size=3, padding=6, dilation=6),  # fc6, atrous
            nn.ReLU(inplace=True),
            nn.Conv2d(1024, 1024, kernel_size=1),  # fc7
            nn.ReLU(inplace=True),
        )
        _xavier_init(fc)
        extra.insert(0, nn.Sequential(*backbone[maxpool4_pos:-1], fc))  # conv5, skip pool5
        self.extra = extra
        # the channels of the maps (torchvision finds them with a forward pass at 300x300)
        self.out_channels = [512, 1024, 512, 256, 256, 256] + ([256] if highres else [])

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x = self.features(x)
        output = [self.scale_weight.reshape(1, -1, 1, 1) * F.normalize(x)]
        for block in self.extra:
            x = block(x)
            output.append(x)
        return OrderedDict((str(i), v) for i, v in enumerate(output))


def _extra_layer(in_channels: int, mid_channels: int, out_channels: int,
                 **conv_kwargs) -> nn.Sequential:
    """1x1 convolution to ``mid_channels``, ReLU, k x k convolution, ReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, mid_channels, kernel_size=1),
                         nn.ReLU(inplace=True),
                         nn.Conv2d(mid_channels, out_channels, **conv_kwargs),
                         nn.ReLU(inplace=True))


def _vgg_extractor(features: nn.Sequential, highres: bool,
                   trainable_layers: int) -> SSDFeatureExtractorVGG:
    """Freeze all but the last ``trainable_layers`` of VGG's 5 stages, then extract."""
    stage_indices = [0] + [i for i, b in enumerate(features) if isinstance(b, nn.MaxPool2d)][:-1]
    freeze_backbone_stages(features, stage_indices, trainable_layers)
    return SSDFeatureExtractorVGG(features, highres)


def ssd300_vgg16(*, weights: str | os.PathLike | None = None, progress: bool = True,
                 num_classes: int | None = None,
                 weights_backbone: str | os.PathLike | None = None,
                 trainable_backbone_layers: int | None = None, **kwargs) -> SSD:
    """SSD300 with a VGG16 backbone, as torchvision's ``ssd300_vgg16``: 35,641,826
    parameters for 91 classes (COCO's numbering, background included).

    Args:
        weights: a ``.safetensors``/``.npz`` file with a whole SSD300 state dict, e.g.
            ``minicnn.models.export_torchvision("ssd300_vgg16", path, model=tv_model)`` of a
            torchvision model (with PyTorch; loading needs only minicnn).
        progress: accepted for torchvision's signature (nothing is downloaded).
        num_classes: object classes + 1 (default 91).
        weights_backbone: a file with VGG16's state dict (e.g. ``export-torchvision vgg16``);
            its ``features`` become the backbone.
        trainable_backbone_layers: VGG stages (of 5) left trainable from the last; only with
            ``weights`` or ``weights_backbone`` (default 4), else all are trainable.
        kwargs: passed to :class:`SSD` (``score_thresh``, ``nms_thresh``, ...).

    ``images``: list of ``(3, H, W)`` Tensors in [0, 1], resized to 300x300 inside.
    """
    if "size" in kwargs:
        warnings.warn("ssd300_vgg16: the size of the model is fixed (300x300); ignoring the "
                      "size argument", stacklevel=2)
        kwargs.pop("size")
    if weights is not None:
        weights_backbone = None
    num_classes = 91 if num_classes is None else num_classes
    trainable_backbone_layers = validate_trainable_layers(
        weights is not None or weights_backbone is not None, trainable_backbone_layers, 5, 4)
    if weights_backbone is not None:
        vgg = vgg16()
        load_weights(vgg, weights_backbone)
        features = vgg.features
    else:
        features = make_layers(VGG_CONFIGS["D"])
        init_vgg_(features)
    backbone = _vgg_extractor(features, False, trainable_backbone_layers)
    anchor_generator = DefaultBoxGenerator(
        [[2], [2, 3], [2, 3], [2, 3], [2], [2]],
        scales=[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05],
        steps=[8, 16, 32, 64, 100, 300],
    )
    defaults = {
        # the backbone's input: 0-255 pixels minus the ImageNet mean (Caffe's VGG)
        "image_mean": [0.48235, 0.45882, 0.40784],
        "image_std": [1.0 / 255.0, 1.0 / 255.0, 1.0 / 255.0],
    }
    model = SSD(backbone, anchor_generator, (300, 300), num_classes, **{**defaults, **kwargs})
    if weights is not None:
        load_weights(model, weights)
    return model
