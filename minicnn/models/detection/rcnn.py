"""R-CNN and Fast R-CNN: the two detectors before Faster R-CNN, as the deck tells them.

R-CNN (Girshick et al. 2014, "Rich feature hierarchies for accurate object detection and
semantic segmentation", arXiv:1311.2524): about 2,000 region proposals per image (from
selective search), each one cut out of the *image*, warped to a fixed size (227x227 in the
paper, whatever the box's shape) and passed through the whole CNN on its own; the CNN's
features are classified and the box refined. K proposals cost K forward passes of the CNN.

Fast R-CNN (Girshick 2015, arXiv:1504.08083): the CNN runs *once* on the whole image; each
proposal is cut out of the *feature map* by RoI max pooling (:func:`minicnn.ops.roi_pool`)
into a fixed grid, and one head (fully connected layers, then a softmax over the classes
and per-class box offsets) runs on every pooled grid. The proposals share the convolutions,
which is where its speed comes from (the paper: 9x faster training than R-CNN with VGG-16,
213x faster testing).

Here both detectors take the same ``backbone`` and the same ``head``, so that the only
difference is *where* each proposal is cropped:

* :class:`RCNN`: crop and warp each proposal of the image to ``crop_size``
  (:func:`warp_proposals`), ``backbone`` on the K crops, ``head`` on their K maps;
* :class:`FastRCNN`: ``backbone`` on the N images, :func:`~minicnn.ops.roi_pool` each
  proposal to ``pool_size`` cells, ``head`` on the K pooled maps.

With ``crop_size = pool_size * stride`` (the backbone's stride) the head sees maps of the same
shape in both. Both return ``(class_logits (K, num_classes), box_regression (K, 4 *
num_classes))`` as :class:`~minicnn.models.detection.faster_rcnn.FastRCNNPredictor` does,
and train with Fast R-CNN's loss (:func:`~minicnn.models.detection.roi_heads.fastrcnn_loss`
on the labels and box targets of :func:`proposal_targets`). Left out: selective search (the
proposals are given; :func:`make_proposals` makes some from ground-truth boxes), R-CNN's
16 pixels of context around each crop, its per-class SVMs and separately trained box
regressor (one softmax head and one loss here, Fast R-CNN's).
"""

from __future__ import annotations

import math

import numpy as np

from minicnn import nn
from minicnn.autograd import Tensor, no_grad, zeros
from minicnn.autograd.ops import cat
from minicnn.models.detection._utils import BoxCoder
from minicnn.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from minicnn.nn import functional as F
from minicnn.ops import box_iou, roi_pool

__all__ = ["FastRCNN", "RCNN", "make_proposals", "proposal_targets", "rcnn_box_head",
           "warp_proposals"]


def _pair(name: str, size) -> tuple[int, int]:
    """``s`` or ``(h, w)`` -> ``(h, w)``, positive ints."""
    pair = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(pair) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                                 and s > 0 for s in pair):
        raise ValueError(f"{name}: expected a positive int or a pair of them, got {size!r}")
    return int(pair[0]), int(pair[1])


def _check_proposals(name: str, images: Tensor, proposals: list[Tensor]) -> None:
    if images.ndim != 4:
        raise ValueError(f"{name}: images must be (N, C, H, W), got shape {tuple(images.shape)}")
    if not isinstance(proposals, (list, tuple)) or len(proposals) != images.shape[0]:
        got = len(proposals) if isinstance(proposals, (list, tuple)) else type(proposals).__name__
        raise ValueError(f"{name}: proposals must be a list of one (K_i, 4) Tensor per image "
                         f"({images.shape[0]}), got {got}")
    for i, boxes in enumerate(proposals):
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"{name}: proposals[{i}] must be (K, 4) boxes (x1, y1, x2, y2), got "
                             f"shape {tuple(boxes.shape)}")


def warp_proposals(images: Tensor, proposals: list[Tensor],
                   size: int | tuple[int, int]) -> Tensor:
    """R-CNN's input: every proposal cut out of its image and warped to ``size``.

    Each box ``(x1, y1, x2, y2)`` (image pixels) is rounded outwards to whole pixels
    (``floor(x1) .. ceil(x2)``), clipped to the image (at least one pixel), cropped and
    resized bilinearly (``F.interpolate``, ``align_corners=False``) to ``size``, whatever its
    aspect ratio: R-CNN's anisotropic warp.

    Args:
        images: ``(N, C, H, W)``.
        proposals: one ``(K_i, 4)`` Tensor per image.
        size: ``s`` or ``(h, w)`` of the warped crops.

    Returns:
        ``(K, C, h, w)`` with ``K = sum K_i``, image 0's boxes first; differentiable with
        respect to ``images``.
    """
    _check_proposals("warp_proposals", images, proposals)
    size = _pair("warp_proposals: size", size)
    height, width = images.shape[-2:]
    crops = []
    for i, boxes in enumerate(proposals):
        for x1, y1, x2, y2 in np.asarray(boxes.detach().numpy(), dtype=np.float64):
            left = min(max(math.floor(x1), 0), width - 1)
            top = min(max(math.floor(y1), 0), height - 1)
            right = max(min(math.ceil(x2), width), left + 1)
            bottom = max(min(math.ceil(y2), height), top + 1)
            crop = images[i:i + 1, :, top:bottom, left:right]
            crops.append(F.interpolate(crop, size=size, mode="bilinear", align_corners=False))
    if not crops:
        return zeros(0, images.shape[1], *size, dtype=images.dtype, device=images.device)
    return cat(crops, dim=0)


def rcnn_box_head(in_channels: int, pool_size: int | tuple[int, int], num_classes: int,
                  representation_size: int = 256) -> nn.Sequential:
    """The head both detectors share: Fast R-CNN's two fully connected layers
    (:class:`TwoMLPHead`) and its predictor (:class:`FastRCNNPredictor`):
    ``(K, in_channels, ph, pw) -> (class_logits (K, num_classes), box_regression
    (K, 4 * num_classes))``."""
    ph, pw = _pair("rcnn_box_head: pool_size", pool_size)
    return nn.Sequential(TwoMLPHead(in_channels * ph * pw, representation_size),
                         FastRCNNPredictor(representation_size, num_classes))


class RCNN(nn.Module):
    """R-CNN: crop and warp each proposal, run the CNN on every crop.

    Args:
        backbone: convolutions, ``(K, 3, crop_h, crop_w) -> (K, C, ph, pw)``.
        head: ``(K, C, ph, pw) -> (class_logits, box_regression)`` (e.g.
            :func:`rcnn_box_head`).
        crop_size: the size every proposal is warped to (``pool_size * stride`` for the
            backbone's maps to have the head's input size).

    ``forward(images (N, 3, H, W), proposals [one (K_i, 4) per image])`` ->
    ``(class_logits (K, num_classes), box_regression (K, 4 * num_classes))``.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module,
                 crop_size: int | tuple[int, int]) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.crop_size = _pair("RCNN: crop_size", crop_size)

    def box_features(self, images: Tensor, proposals: list[Tensor]) -> Tensor:
        """The backbone's map of each warped proposal: ``(K, C, ph, pw)``."""
        return self.backbone(warp_proposals(images, proposals, self.crop_size))

    def forward(self, images: Tensor, proposals: list[Tensor]) -> tuple[Tensor, Tensor]:
        return self.head(self.box_features(images, proposals))


class FastRCNN(nn.Module):
    """Fast R-CNN: the backbone once per image, RoI max pooling of each proposal.

    Args:
        backbone: convolutions, ``(N, 3, H, W) -> (N, C, H / stride, W / stride)``.
        head: ``(K, C, ph, pw) -> (class_logits, box_regression)`` (e.g.
            :func:`rcnn_box_head`).
        pool_size: RoI pooling's output grid ``(ph, pw)``.
        spatial_scale: feature cells per image pixel, ``1 / stride``.

    ``forward(images (N, 3, H, W), proposals [one (K_i, 4) per image])`` ->
    ``(class_logits (K, num_classes), box_regression (K, 4 * num_classes))``.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, pool_size: int | tuple[int, int],
                 spatial_scale: float) -> None:
        super().__init__()
        if not spatial_scale > 0:
            raise ValueError(f"FastRCNN: spatial_scale must be > 0 (1 / the backbone's stride), "
                             f"got {spatial_scale!r}")
        self.backbone = backbone
        self.head = head
        self.pool_size = _pair("FastRCNN: pool_size", pool_size)
        self.spatial_scale = float(spatial_scale)

    def box_features(self, images: Tensor, proposals: list[Tensor]) -> Tensor:
        """Each proposal RoI-pooled from its image's map: ``(K, C, ph, pw)``."""
        _check_proposals("FastRCNN", images, proposals)
        features = self.backbone(images)
        return roi_pool(features, list(proposals), self.pool_size, self.spatial_scale)

    def forward(self, images: Tensor, proposals: list[Tensor]) -> tuple[Tensor, Tensor]:
        return self.head(self.box_features(images, proposals))


def proposal_targets(proposals: list[Tensor], targets: list[dict], fg_iou_thresh: float = 0.5,
                     weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
                     ) -> tuple[list[Tensor], list[Tensor]]:
    """What each proposal should predict (Fast R-CNN, section 2.3): the class of the object it
    overlaps most if their IoU is at least ``fg_iou_thresh``, else 0 (background), and the
    offsets from the proposal to the object it overlaps most (:class:`BoxCoder` with
    ``weights``; the loss reads them on the objects' proposals only).

    Returns per image ``labels (K_i,)`` int64 and ``regression_targets (K_i, 4)``, ready for
    :func:`~minicnn.models.detection.roi_heads.fastrcnn_loss`.
    """
    if len(proposals) != len(targets):
        raise ValueError(f"proposal_targets: {len(proposals)} proposal sets for "
                         f"{len(targets)} targets; expected one per image")
    coder = BoxCoder(weights)
    labels, regression = [], []
    for boxes, target in zip(proposals, targets):
        gt = target["boxes"].detach()
        if gt.shape[0] == 0:
            labels.append(Tensor(np.zeros(boxes.shape[0], np.int64)))
            regression.append(Tensor(np.zeros((boxes.shape[0], 4), np.float32)))
            continue
        with no_grad():
            iou = box_iou(gt, boxes.detach()).numpy()  # (objects, proposals)
        best = iou.argmax(axis=0)
        lab = np.asarray(target["labels"].numpy(), np.int64)[best]
        lab[iou.max(axis=0) < fg_iou_thresh] = 0
        labels.append(Tensor(lab))
        regression.append(coder.encode_single(Tensor(gt.numpy()[best]), boxes.detach()))
    return labels, regression


def make_proposals(gt_boxes: np.ndarray, image_size: tuple[int, int], num_jittered: int = 8,
                   num_random: int = 16, jitter: float = 0.2, min_size: float = 4.0,
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """Stand-in proposals for one image: ``num_jittered`` copies of every ground-truth box
    with the centre moved by ``N(0, jitter)`` of its width / height and the sides scaled by
    ``exp(N(0, jitter))``, and ``num_random`` boxes placed uniformly, with sides uniform in
    ``[min_size, half the image]``; all clipped to the image, at least ``min_size`` wide.

    Returns ``(num_jittered * len(gt_boxes) + num_random, 4)`` float32 ``(x1, y1, x2, y2)``.
    """
    rng = np.random.default_rng() if rng is None else rng
    gt = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    height, width = image_size
    centre = np.repeat((gt[:, :2] + gt[:, 2:]) / 2, num_jittered, axis=0)
    sides = np.repeat(gt[:, 2:] - gt[:, :2], num_jittered, axis=0)
    centre = centre + rng.normal(0.0, jitter, centre.shape) * sides
    sides = sides * np.exp(rng.normal(0.0, jitter, sides.shape))
    random_sides = rng.uniform(min_size, max(min_size, min(height, width) / 2), (num_random, 2))
    random_centre = rng.uniform(0, 1, (num_random, 2)) * np.array([width, height])
    centre = np.concatenate([centre, random_centre])
    sides = np.maximum(np.concatenate([sides, random_sides]), min_size)
    boxes = np.concatenate([centre - sides / 2, centre + sides / 2], axis=1)
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, width)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, height)
    # a box squeezed by the border keeps min_size, moved back inside
    for lo, hi, limit in ((0, 2, width), (1, 3, height)):
        short = boxes[:, hi] - boxes[:, lo] < min_size
        boxes[short, lo] = np.minimum(boxes[short, lo], limit - min_size)
        boxes[short, hi] = boxes[short, lo] + min_size
    return boxes.astype(np.float32)
