"""The region proposal network (torchvision's ``models/detection/rpn.py``).

Ren et al. 2015, "Faster R-CNN: Towards Real-Time Object Detection with Region Proposal
Networks" (arXiv:1506.01497), section 3.1 and Fig. 3. A small network slides over each
feature map: a 3x3 convolution (+ ReLU), then two sibling 1x1 convolutions giving, for
each of the ``k`` anchors of every cell, an objectness logit ("object or not") and four
box offsets ``(dx, dy, dw, dh)`` from the anchor (:class:`RPNHead`).

Proposals: decode the offsets, keep the ``pre_nms_top_n`` most object-like anchors of
each level, clip them to the image, drop the tiny ones, NMS per level (IoU 0.7) and keep
the ``post_nms_top_n`` best. Training (section 3.1.2): anchors with IoU >= 0.7 with an
object (and each object's best anchors) are positive, IoU < 0.3 negative, the rest
ignored; 256 anchors per image are sampled, up to half positive
(:class:`~minicnn.models.detection._utils.BalancedPositiveNegativeSampler`); the losses
are the binary cross-entropy of the objectness over the sample and the smooth-L1
(``beta = 1/9``) of the offsets of its positives, divided by the sample size.
"""

from __future__ import annotations

import numpy as np

from minicnn import nn
from minicnn.autograd import Tensor, no_grad
from minicnn.autograd.ops import cat, sigmoid
from minicnn.backend import backend_of
from minicnn.models.detection._utils import (
    BalancedPositiveNegativeSampler,
    BoxCoder,
    Matcher,
    stable_descending_order,
)
from minicnn.models.detection.anchor_utils import AnchorGenerator
from minicnn.models.detection.image_list import ImageList
from minicnn.nn import functional as F
from minicnn.ops import batched_nms, box_iou, clip_boxes_to_image, remove_small_boxes

__all__ = ["RPNHead", "RegionProposalNetwork", "concat_box_prediction_layers"]


class RPNHead(nn.Module):
    """``conv_depth`` 3x3 convolutions + ReLU, then the objectness and box-offset 1x1
    convolutions, on every feature map.

    ``forward(x)``: a list of ``(N, in_channels, H_i, W_i)`` maps -> ``(logits, bbox_reg)``,
    lists of ``(N, num_anchors, H_i, W_i)`` and ``(N, 4 * num_anchors, H_i, W_i)``.
    Weights N(0, 0.01^2), biases 0.
    """

    def __init__(self, in_channels: int, num_anchors: int, conv_depth: int = 1) -> None:
        super().__init__()
        self.conv = nn.Sequential(*[nn.Conv2dNormActivation(in_channels, in_channels,
                                                            kernel_size=3, norm_layer=None)
                                    for _ in range(conv_depth)])
        self.cls_logits = nn.Conv2d(in_channels, num_anchors, kernel_size=1, stride=1)
        self.bbox_pred = nn.Conv2d(in_channels, num_anchors * 4, kernel_size=1, stride=1)
        for layer in self.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.normal_(layer.weight, std=0.01)
                if layer.bias is not None:
                    nn.init.constant_(layer.bias, 0)

    def forward(self, x: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        logits, bbox_reg = [], []
        for feature in x:
            t = self.conv(feature)
            logits.append(self.cls_logits(t))
            bbox_reg.append(self.bbox_pred(t))
        return logits, bbox_reg


def _permute_and_flatten(layer: Tensor, n: int, c: int, h: int, w: int) -> Tensor:
    """``(N, A * C, H, W) -> (N, H * W * A, C)`` in the anchors' order (row, column, anchor)."""
    return layer.reshape(n, -1, c, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, c)


def concat_box_prediction_layers(box_cls: list[Tensor],
                                 box_regression: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Join the per-level head outputs: ``(N * A_total, C)`` scores and
    ``(N * A_total, 4)`` offsets, image-major, then level, row, column, anchor."""
    cls_flat, reg_flat = [], []
    for cls_level, reg_level in zip(box_cls, box_regression):
        n, axc, h, w = cls_level.shape
        a = reg_level.shape[1] // 4
        cls_flat.append(_permute_and_flatten(cls_level, n, axc // a, h, w))
        reg_flat.append(_permute_and_flatten(reg_level, n, 4, h, w))
    box_cls = cat(cls_flat, dim=1)
    return box_cls.reshape(-1, box_cls.shape[-1]), cat(reg_flat, dim=1).reshape(-1, 4)


class RegionProposalNetwork(nn.Module):
    """Anchors, the head, proposals and (in training) the RPN's two losses.

    Args:
        anchor_generator: an :class:`AnchorGenerator`.
        head: an :class:`RPNHead` (or any module with its outputs).
        fg_iou_thresh, bg_iou_thresh: IoU from which an anchor is positive / below which
            it is negative (0.7, 0.3).
        batch_size_per_image, positive_fraction: the training sample (256, 0.5).
        pre_nms_top_n, post_nms_top_n: ``{"training": int, "testing": int}``, the proposals
            kept per level before NMS and per image after it.
        nms_thresh: the NMS IoU (0.7).
        score_thresh: proposals need an objectness probability of at least this.

    ``forward(images, features, targets=None)``: the :class:`ImageList`, an ordered dict of
    ``(N, C, H_i, W_i)`` maps and (training) the targets -> ``(boxes, losses)``: per image
    ``(P, 4)`` proposals (no gradient), and ``{"loss_objectness", "loss_rpn_box_reg"}`` in
    training (``{}`` in eval).
    """

    def __init__(self, anchor_generator: AnchorGenerator, head: nn.Module,
                 fg_iou_thresh: float, bg_iou_thresh: float, batch_size_per_image: int,
                 positive_fraction: float, pre_nms_top_n: dict[str, int],
                 post_nms_top_n: dict[str, int], nms_thresh: float,
                 score_thresh: float = 0.0) -> None:
        super().__init__()
        for name, value in (("pre_nms_top_n", pre_nms_top_n), ("post_nms_top_n", post_nms_top_n)):
            if not isinstance(value, dict) or set(value) != {"training", "testing"}:
                raise ValueError(f"RegionProposalNetwork: {name} must be a dict with the keys "
                                 f"'training' and 'testing', got {value!r}")
        self.anchor_generator = anchor_generator
        self.head = head
        self.box_coder = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
        self.proposal_matcher = Matcher(fg_iou_thresh, bg_iou_thresh,
                                        allow_low_quality_matches=True)
        self.fg_bg_sampler = BalancedPositiveNegativeSampler(batch_size_per_image,
                                                             positive_fraction)
        self._pre_nms_top_n = pre_nms_top_n
        self._post_nms_top_n = post_nms_top_n
        self.nms_thresh = nms_thresh
        self.score_thresh = score_thresh
        self.min_size = 1e-3

    def pre_nms_top_n(self) -> int:
        return self._pre_nms_top_n["training" if self.training else "testing"]

    def post_nms_top_n(self) -> int:
        return self._post_nms_top_n["training" if self.training else "testing"]

    def assign_targets_to_anchors(self, anchors: list[Tensor],
                                  targets: list[dict]) -> tuple[list[Tensor], list[Tensor]]:
        """Per image: the anchors' labels (1 positive, 0 negative, -1 ignored; in the anchors'
        dtype) and the ground-truth box each anchor matched ``(A, 4)``."""
        labels, matched_gt_boxes = [], []
        for anchors_i, target in zip(anchors, targets):
            gt_boxes = target["boxes"].detach()
            a = anchors_i.array
            xp = backend_of(a).xp
            if gt_boxes.shape[0] == 0:
                # no anchor is positive, so these targets are never used; torchvision puts
                # zeros here, whose log(0) offsets only warn
                matched_gt_boxes.append(Tensor(a.copy()))
                labels.append(Tensor(xp.zeros(a.shape[0], dtype=a.dtype)))
                continue
            with no_grad():
                matched = self.proposal_matcher(box_iou(gt_boxes, anchors_i)).array
            matched_gt_boxes.append(Tensor(gt_boxes.array[xp.maximum(matched, 0)]))
            labels_i = (matched >= 0).astype(a.dtype)
            labels_i[matched == Matcher.BELOW_LOW_THRESHOLD] = 0.0
            labels_i[matched == Matcher.BETWEEN_THRESHOLDS] = -1.0
            labels.append(Tensor(labels_i))
        return labels, matched_gt_boxes

    def _get_top_n_idx(self, objectness, num_anchors_per_level: list[int]):
        """``(N, A_total)`` scores -> ``(N, K)`` indices of the ``pre_nms_top_n`` best of each
        level (best first within a level)."""
        xp = backend_of(objectness).xp
        chosen, offset = [], 0
        for n in num_anchors_per_level:
            order = stable_descending_order(objectness[:, offset:offset + n], axis=1)
            chosen.append(order[:, :min(self.pre_nms_top_n(), n)] + offset)
            offset += n
        return xp.concatenate(chosen, axis=1)

    def filter_proposals(self, proposals: Tensor, objectness: Tensor,
                         image_shapes: list[tuple[int, int]],
                         num_anchors_per_level: list[int]) -> tuple[list[Tensor], list[Tensor]]:
        """Top-n per level, clip, drop small and low-score boxes, NMS per level, top-n:
        per image the ``(P, 4)`` boxes and ``(P,)`` objectness probabilities."""
        num_images = proposals.shape[0]
        scores_all = objectness.detach().array.reshape(num_images, -1)
        xp = backend_of(scores_all).xp
        levels = xp.concatenate([xp.full(n, i, dtype=xp.int64)
                                 for i, n in enumerate(num_anchors_per_level)])
        top_n_idx = self._get_top_n_idx(scores_all, num_anchors_per_level)
        batch_idx = xp.arange(num_images)[:, None]
        scores_all = scores_all[batch_idx, top_n_idx]
        levels = levels[top_n_idx]
        boxes_all = proposals.detach().array[batch_idx, top_n_idx]
        probs_all = sigmoid(Tensor(scores_all)).array
        final_boxes, final_scores = [], []
        for boxes, scores, lvl, image_shape in zip(boxes_all, probs_all, levels, image_shapes):
            boxes = clip_boxes_to_image(Tensor(boxes), image_shape).array
            keep = remove_small_boxes(Tensor(boxes), self.min_size).array
            boxes, scores, lvl = boxes[keep], scores[keep], lvl[keep]
            keep = xp.nonzero(scores >= self.score_thresh)[0]
            boxes, scores, lvl = boxes[keep], scores[keep], lvl[keep]
            keep = batched_nms(Tensor(boxes), Tensor(scores), Tensor(lvl),
                               self.nms_thresh).array[:self.post_nms_top_n()]
            final_boxes.append(Tensor(boxes[keep]))
            final_scores.append(Tensor(scores[keep]))
        return final_boxes, final_scores

    def compute_loss(self, objectness: Tensor, pred_bbox_deltas: Tensor, labels: list[Tensor],
                     regression_targets: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Sample anchors, then ``(objectness BCE mean over the sample, smooth-L1 of the
        positives' offsets summed / sample size)``."""
        pos_masks, neg_masks = self.fg_bg_sampler(labels)
        xp = backend_of(objectness.array).xp
        pos = xp.nonzero(xp.concatenate([m.array for m in pos_masks]))[0]
        neg = xp.nonzero(xp.concatenate([m.array for m in neg_masks]))[0]
        sampled = xp.concatenate([pos, neg])
        labels_all = xp.concatenate([lab.array for lab in labels])
        targets_all = cat(list(regression_targets), dim=0)
        box_loss = F.smooth_l1_loss(pred_bbox_deltas[pos], targets_all[pos], beta=1 / 9,
                                    reduction="sum") / max(int(sampled.shape[0]), 1)
        objectness_loss = F.binary_cross_entropy_with_logits(
            objectness.flatten()[sampled], Tensor(labels_all[sampled]))
        return objectness_loss, box_loss

    def forward(self, images: ImageList, features: dict[str, Tensor],
                targets: list[dict] | None = None) -> tuple[list[Tensor], dict[str, Tensor]]:
        features = list(features.values())
        objectness, pred_bbox_deltas = self.head(features)
        anchors = self.anchor_generator(images, features)
        num_images = len(anchors)
        num_anchors_per_level = [int(np.prod(o.shape[1:])) for o in objectness]
        objectness, pred_bbox_deltas = concat_box_prediction_layers(objectness, pred_bbox_deltas)
        proposals = self.box_coder.decode(pred_bbox_deltas.detach(), anchors)
        proposals = proposals.reshape(num_images, -1, 4)
        boxes, _ = self.filter_proposals(proposals, objectness, images.image_sizes,
                                         num_anchors_per_level)
        losses = {}
        if self.training:
            if targets is None:
                raise ValueError("RegionProposalNetwork: targets must be given in training mode")
            labels, matched_gt_boxes = self.assign_targets_to_anchors(anchors, targets)
            regression_targets = self.box_coder.encode(matched_gt_boxes, anchors)
            loss_objectness, loss_rpn_box_reg = self.compute_loss(
                objectness, pred_bbox_deltas, labels, regression_targets)
            losses = {"loss_objectness": loss_objectness, "loss_rpn_box_reg": loss_rpn_box_reg}
        return boxes, losses
