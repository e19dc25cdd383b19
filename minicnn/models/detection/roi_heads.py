"""The second stage of Faster / Mask R-CNN (torchvision's ``models/detection/roi_heads.py``).

Girshick 2015, "Fast R-CNN" (arXiv:1504.08083): every region proposal is pooled from the
feature map into a fixed ``7 x 7`` grid (RoIAlign here, He et al. 2017), a box head
(two fully connected layers, :class:`~minicnn.models.detection.faster_rcnn.TwoMLPHead`)
turns it into a vector, and a predictor gives a score per class and per-class box
offsets (:class:`~minicnn.models.detection.faster_rcnn.FastRCNNPredictor`).

Training (Fast R-CNN, section 2.3): the ground-truth boxes join the proposals; a
proposal with IoU >= 0.5 with an object takes its class, below 0.5 it is background; 512
per image are sampled, a quarter positive; the losses are the cross-entropy of the
classes (:func:`fastrcnn_loss`) and the smooth-L1 of the true class's offsets (weights
10, 10, 5, 5). Inference: softmax, per-class decoded boxes clipped to the image, scores
above ``score_thresh``, NMS per class, the ``detections_per_img`` best.

Mask R-CNN (He et al. 2017, arXiv:1703.06870, section 3): a third branch on ``14 x 14``
RoIAlign features, four 3x3 convolutions (:class:`MaskRCNNHeads`) and a 2x transposed
convolution to a ``28 x 28`` mask per class (:class:`MaskRCNNPredictor`); trained with the
per-pixel binary cross-entropy of the true class's mask against the ground-truth mask
cropped to the proposal and resampled to 28 x 28 (:func:`maskrcnn_loss`). At inference
the predicted class's mask is pasted back into the image at its box
(:func:`paste_masks_in_image`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from minicnn import nn
from minicnn.autograd import Tensor, no_grad
from minicnn.autograd.ops import sigmoid, softmax
from minicnn.backend import backend_of
from minicnn.models.detection._utils import BalancedPositiveNegativeSampler, BoxCoder, Matcher
from minicnn.nn import functional as F
from minicnn.ops import batched_nms, box_iou, clip_boxes_to_image, remove_small_boxes, roi_align

__all__ = ["MaskRCNNHeads", "MaskRCNNPredictor", "RoIHeads", "fastrcnn_loss",
           "maskrcnn_inference", "maskrcnn_loss", "paste_masks_in_image"]


# ---------------------------------------------------------------- losses


def fastrcnn_loss(class_logits: Tensor, box_regression: Tensor, labels: list[Tensor],
                  regression_targets: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Fast R-CNN's two losses on the sampled proposals of all images.

    ``class_logits: (K, C)``, ``box_regression: (K, 4 * C)``, per image the labels ``(K_i,)``
    (0 = background) and the encoded targets ``(K_i, 4)`` -> ``(cross-entropy mean,
    smooth-L1 (beta 1/9) of the true class's offsets on positives, summed / K)``.
    """
    xp = backend_of(class_logits.array).xp
    labels = xp.concatenate([lab.array for lab in labels])
    targets = Tensor(xp.concatenate([t.array for t in regression_targets]))
    classification_loss = F.cross_entropy(class_logits, Tensor(labels))
    pos = xp.nonzero(labels > 0)[0]
    n = class_logits.shape[0]
    box_regression = box_regression.reshape(n, box_regression.shape[-1] // 4, 4)
    box_loss = F.smooth_l1_loss(box_regression[pos, labels[pos]], targets[pos], beta=1 / 9,
                                reduction="sum")
    return classification_loss, box_loss / max(int(labels.shape[0]), 1)


def project_masks_on_boxes(gt_masks: Tensor, boxes: Tensor, matched_idxs, size: int) -> Tensor:
    """Crop each proposal's matched ground-truth mask ``(H, W)`` to the proposal and resample
    it to ``size x size`` with RoIAlign: ``(P, size, size)`` targets in [0, 1]."""
    xp = backend_of(boxes.array).xp
    b = boxes.detach().array
    rois = Tensor(xp.concatenate([matched_idxs.astype(b.dtype)[:, None], b], axis=1))
    masks = Tensor(gt_masks.array[:, None].astype(b.dtype))
    with no_grad():
        return roi_align(masks, rois, (size, size), 1.0)[:, 0]


def maskrcnn_loss(mask_logits: Tensor, proposals: list[Tensor], gt_masks: list[Tensor],
                  gt_labels: list[Tensor], mask_matched_idxs: list) -> Tensor:
    """Mask R-CNN's mask loss: the mean binary cross-entropy of each positive proposal's
    true-class mask logits ``mask_logits: (P, C, M, M)`` against its ground-truth mask
    cropped and resampled to ``M x M``; 0 (with a gradient) without positives."""
    size = mask_logits.shape[-1]
    xp = backend_of(mask_logits.array).xp
    labels = xp.concatenate([lab.array[idxs] for lab, idxs in zip(gt_labels, mask_matched_idxs)])
    targets = [project_masks_on_boxes(m, p, i, size)
               for m, p, i in zip(gt_masks, proposals, mask_matched_idxs)]
    if sum(t.shape[0] for t in targets) == 0:
        return mask_logits.sum() * 0
    mask_targets = Tensor(xp.concatenate([t.array for t in targets]))
    return F.binary_cross_entropy_with_logits(
        mask_logits[xp.arange(labels.shape[0]), labels], mask_targets)


def maskrcnn_inference(x: Tensor, labels: list[Tensor]) -> list[Tensor]:
    """The predicted class's mask probabilities: ``x: (D, C, M, M)`` logits and per image the
    labels -> per image ``(D_i, 1, M, M)``."""
    prob = sigmoid(x.detach()).array
    xp = backend_of(prob).xp
    all_labels = xp.concatenate([lab.array for lab in labels])
    prob = prob[xp.arange(prob.shape[0]), all_labels][:, None]
    sizes = np.cumsum([lab.shape[0] for lab in labels])[:-1]
    return [Tensor(p) for p in xp.split(prob, sizes.tolist())]


# ---------------------------------------------------------------- mask pasting


def _expand_boxes(boxes, scale: float):
    """Scale xyxy boxes about their centres by ``scale``."""
    w_half = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale
    h_half = (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
    x_c = (boxes[:, 2] + boxes[:, 0]) * 0.5
    y_c = (boxes[:, 3] + boxes[:, 1]) * 0.5
    return np.stack([x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half], axis=1)


def _paste_mask_in_image(mask: np.ndarray, box: np.ndarray, im_h: int, im_w: int) -> np.ndarray:
    """Resize ``mask: (M, M)`` bilinearly to the integer box (both ends included) and place it
    in an ``(im_h, im_w)`` image of zeros, cut at the image's border."""
    w = max(int(box[2] - box[0] + 1), 1)
    h = max(int(box[3] - box[1] + 1), 1)
    resized = F.interpolate(Tensor(mask[None, None]), size=(h, w), mode="bilinear",
                            align_corners=False).array[0, 0]
    im_mask = np.zeros((im_h, im_w), dtype=mask.dtype)
    x_0, x_1 = max(box[0], 0), min(box[2] + 1, im_w)
    y_0, y_1 = max(box[1], 0), min(box[3] + 1, im_h)
    if x_1 > x_0 and y_1 > y_0:
        im_mask[y_0:y_1, x_0:x_1] = resized[y_0 - box[1]:y_1 - box[1], x_0 - box[0]:x_1 - box[0]]
    return im_mask


def paste_masks_in_image(masks: Tensor, boxes: Tensor, img_shape: tuple[int, int],
                         padding: int = 1) -> Tensor:
    """Paste ``masks: (D, 1, M, M)`` (probabilities) into images of ``img_shape`` ``(H, W)`` at
    ``boxes: (D, 4)``: ``(D, 1, H, W)``. As torchvision: each mask gets a ``padding``-pixel
    border of zeros and its box is enlarged by ``(M + 2 padding) / M`` to match, the box
    corners are truncated to integers, and the mask is resized bilinearly to the box."""
    im_h, im_w = int(img_shape[0]), int(img_shape[1])
    m = masks.detach().array
    on_device = backend_of(m).device != "cpu"
    m = np.asarray(m.get() if on_device else m)
    b = boxes.detach().array
    b = np.asarray(b.get() if on_device else b)
    size = m.shape[-1]
    m = np.pad(m, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    b = _expand_boxes(b, float(size + 2 * padding) / size).astype(np.int64)
    pasted = [_paste_mask_in_image(mask[0], box, im_h, im_w) for mask, box in zip(m, b)]
    out = (np.stack(pasted)[:, None] if pasted else np.zeros((0, 1, im_h, im_w), m.dtype))
    return Tensor(out).to(masks.device)


# ---------------------------------------------------------------- mask branch modules


class MaskRCNNHeads(nn.Sequential):
    """The mask branch's trunk: one 3x3 convolution + ReLU per entry of ``layers``
    (``(256,) * 4`` in the paper), ``(P, in_channels, 14, 14) -> (P, layers[-1], 14, 14)``.
    Keys ``0.0.weight``... (``Conv2dNormActivation`` blocks); He-normal (fan-out) weights,
    zero biases."""

    def __init__(self, in_channels: int, layers: tuple[int, ...] | list[int], dilation: int,
                 norm_layer: Callable[..., nn.Module] | None = None) -> None:
        blocks, channels = [], in_channels
        for features in layers:
            blocks.append(nn.Conv2dNormActivation(channels, features, kernel_size=3, stride=1,
                                                  padding=dilation, dilation=dilation,
                                                  norm_layer=norm_layer))
            channels = features
        super().__init__(*blocks)
        for layer in self.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)


class MaskRCNNPredictor(nn.Sequential):
    """A 2x2 stride-2 transposed convolution (+ ReLU) and a 1x1 convolution to one mask
    logit map per class: ``(P, in_channels, 14, 14) -> (P, num_classes, 28, 28)``."""

    def __init__(self, in_channels: int, dim_reduced: int, num_classes: int) -> None:
        super().__init__(OrderedDict([
            ("conv5_mask", nn.ConvTranspose2d(in_channels, dim_reduced, 2, 2, 0)),
            ("relu", nn.ReLU(inplace=True)),
            ("mask_fcn_logits", nn.Conv2d(dim_reduced, num_classes, 1, 1, 0)),
        ]))
        for name, param in self.named_parameters():
            if "weight" in name:
                nn.init.kaiming_normal_(param, mode="fan_out", nonlinearity="relu")


# ---------------------------------------------------------------- the heads


class RoIHeads(nn.Module):
    """Box (and optionally mask) heads on the proposals.

    Args:
        box_roi_pool: a :class:`~minicnn.ops.MultiScaleRoIAlign` (7 x 7).
        box_head, box_predictor: e.g. ``TwoMLPHead`` and ``FastRCNNPredictor``.
        fg_iou_thresh, bg_iou_thresh: IoU from which a proposal is an object (0.5, 0.5).
        batch_size_per_image, positive_fraction: the training sample (512, 0.25).
        bbox_reg_weights: the box coder's weights (default ``(10, 10, 5, 5)``).
        score_thresh, nms_thresh, detections_per_img: inference (0.05, 0.5, 100).
        mask_roi_pool, mask_head, mask_predictor: the mask branch (all three or none).

    ``forward(features, proposals, image_shapes, targets=None)`` -> ``(result, losses)``:
    in eval ``result`` is one ``{"boxes", "labels", "scores"[, "masks"]}`` per image and
    ``losses`` is ``{}``; in training ``result`` is ``[]`` and ``losses`` holds
    ``loss_classifier``, ``loss_box_reg`` (and ``loss_mask``).
    """

    def __init__(self, box_roi_pool: nn.Module, box_head: nn.Module, box_predictor: nn.Module,
                 fg_iou_thresh: float, bg_iou_thresh: float, batch_size_per_image: int,
                 positive_fraction: float, bbox_reg_weights: tuple[float, ...] | None,
                 score_thresh: float, nms_thresh: float, detections_per_img: int,
                 mask_roi_pool: nn.Module | None = None, mask_head: nn.Module | None = None,
                 mask_predictor: nn.Module | None = None) -> None:
        super().__init__()
        self.proposal_matcher = Matcher(fg_iou_thresh, bg_iou_thresh,
                                        allow_low_quality_matches=False)
        self.fg_bg_sampler = BalancedPositiveNegativeSampler(batch_size_per_image,
                                                             positive_fraction)
        self.box_coder = BoxCoder((10.0, 10.0, 5.0, 5.0) if bbox_reg_weights is None
                                  else bbox_reg_weights)
        self.box_roi_pool = box_roi_pool
        self.box_head = box_head
        self.box_predictor = box_predictor
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img
        self.mask_roi_pool = mask_roi_pool
        self.mask_head = mask_head
        self.mask_predictor = mask_predictor

    def has_mask(self) -> bool:
        return (self.mask_roi_pool is not None and self.mask_head is not None
                and self.mask_predictor is not None)

    # ------------------------------------------------------------ training samples

    def assign_targets_to_proposals(self, proposals: list[Tensor], gt_boxes: list[Tensor],
                                    gt_labels: list[Tensor]) -> tuple[list, list]:
        """Per image: the matched ground truth of each proposal (index, 0 when unmatched)
        and its label (the object's class, 0 background, -1 ignored), int64 arrays."""
        matched_idxs, labels = [], []
        for props, boxes, gt_lab in zip(proposals, gt_boxes, gt_labels):
            xp = backend_of(props.array).xp
            if boxes.shape[0] == 0:
                matched_idxs.append(xp.zeros(props.shape[0], dtype=xp.int64))
                labels.append(xp.zeros(props.shape[0], dtype=xp.int64))
                continue
            with no_grad():
                matched = self.proposal_matcher(box_iou(boxes, props)).array
            clamped = xp.maximum(matched, 0)
            lab = gt_lab.array[clamped].astype(xp.int64)
            lab[matched == Matcher.BELOW_LOW_THRESHOLD] = 0
            lab[matched == Matcher.BETWEEN_THRESHOLDS] = -1
            matched_idxs.append(clamped)
            labels.append(lab)
        return matched_idxs, labels

    def subsample(self, labels: list) -> list:
        """Per image, the indices of the sampled proposals (in index order)."""
        pos, neg = self.fg_bg_sampler([Tensor(lab) for lab in labels])
        return [backend_of(p.array).xp.nonzero(p.array | n.array)[0] for p, n in zip(pos, neg)]

    def select_training_samples(self, proposals: list[Tensor], targets: list[dict]):
        """Add the ground truth to the proposals, match, sample: per image the sampled
        proposals, their matched ground-truth indices, labels and encoded box targets."""
        dtype = proposals[0].dtype
        gt_boxes = [t["boxes"].detach().to(dtype) for t in targets]
        gt_labels = [t["labels"] for t in targets]
        xp = backend_of(proposals[0].array).xp
        proposals = [Tensor(xp.concatenate([p.array, g.array])) for p, g in zip(proposals,
                                                                                gt_boxes)]
        matched_idxs, labels = self.assign_targets_to_proposals(proposals, gt_boxes, gt_labels)
        sampled = self.subsample(labels)
        matched_gt_boxes = []
        for i, inds in enumerate(sampled):
            proposals[i] = Tensor(proposals[i].array[inds])
            labels[i] = labels[i][inds]
            matched_idxs[i] = matched_idxs[i][inds]
            if gt_boxes[i].shape[0] == 0:
                # all background: the box targets are never used (torchvision encodes
                # against zero boxes, whose log(0) only warns)
                matched_gt_boxes.append(proposals[i])
            else:
                matched_gt_boxes.append(Tensor(gt_boxes[i].array[matched_idxs[i]]))
        regression_targets = self.box_coder.encode(matched_gt_boxes, proposals)
        return proposals, matched_idxs, [Tensor(lab) for lab in labels], regression_targets

    # ------------------------------------------------------------ inference

    def postprocess_detections(self, class_logits: Tensor, box_regression: Tensor,
                               proposals: list[Tensor], image_shapes: list[tuple[int, int]]):
        """Per image: ``(D, 4)`` boxes, ``(D,)`` scores and ``(D,)`` labels."""
        num_classes = class_logits.shape[-1]
        pred_boxes = self.box_coder.decode(box_regression.detach(), proposals).array
        pred_scores = softmax(class_logits.detach(), dim=-1).array
        xp = backend_of(pred_scores).xp
        all_boxes, all_scores, all_labels = [], [], []
        start = 0
        for props, image_shape in zip(proposals, image_shapes):
            stop = start + props.shape[0]
            boxes = clip_boxes_to_image(Tensor(pred_boxes[start:stop]), image_shape).array
            scores = pred_scores[start:stop]
            start = stop
            labels = xp.broadcast_to(xp.arange(num_classes, dtype=xp.int64), scores.shape)
            # drop the background column, then one candidate per (proposal, class)
            boxes = boxes[:, 1:].reshape(-1, 4)
            scores = scores[:, 1:].reshape(-1)
            labels = labels[:, 1:].reshape(-1)
            inds = xp.nonzero(scores > self.score_thresh)[0]
            boxes, scores, labels = boxes[inds], scores[inds], labels[inds]
            keep = remove_small_boxes(Tensor(boxes), min_size=1e-2).array
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = batched_nms(Tensor(boxes), Tensor(scores), Tensor(labels), self.nms_thresh)
            keep = keep.array[:self.detections_per_img]
            all_boxes.append(Tensor(boxes[keep]))
            all_scores.append(Tensor(scores[keep]))
            all_labels.append(Tensor(labels[keep]))
        return all_boxes, all_scores, all_labels

    # ------------------------------------------------------------ forward

    def forward(self, features: dict[str, Tensor], proposals: list[Tensor],
                image_shapes: list[tuple[int, int]], targets: list[dict] | None = None):
        if self.training:
            if targets is None:
                raise ValueError("RoIHeads: targets must be given in training mode")
            if self.has_mask() and not all("masks" in t for t in targets):
                raise ValueError("RoIHeads: every target needs 'masks' ((K, H, W) uint8) to "
                                 "train the mask head")
            proposals, matched_idxs, labels, regression_targets = \
                self.select_training_samples(proposals, targets)
        box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(box_features)

        result, losses = [], {}
        if self.training:
            loss_classifier, loss_box_reg = fastrcnn_loss(class_logits, box_regression, labels,
                                                          regression_targets)
            losses = {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}
        else:
            boxes, scores, labels = self.postprocess_detections(class_logits, box_regression,
                                                                proposals, image_shapes)
            result = [{"boxes": b, "labels": lab, "scores": s}
                      for b, lab, s in zip(boxes, labels, scores)]

        if self.has_mask():
            if self.training:
                mask_proposals, pos_matched_idxs = [], []
                for props, lab, matched in zip(proposals, labels, matched_idxs):
                    pos = backend_of(lab.array).xp.nonzero(lab.array > 0)[0]
                    mask_proposals.append(Tensor(props.array[pos]))
                    pos_matched_idxs.append(matched[pos])
            else:
                mask_proposals = [r["boxes"] for r in result]
            mask_features = self.mask_head(self.mask_roi_pool(features, mask_proposals,
                                                              image_shapes))
            mask_logits = self.mask_predictor(mask_features)
            if self.training:
                losses["loss_mask"] = maskrcnn_loss(
                    mask_logits, mask_proposals, [t["masks"] for t in targets],
                    [t["labels"] for t in targets], pos_matched_idxs)
            else:
                probs = maskrcnn_inference(mask_logits, [r["labels"] for r in result])
                for prob, r in zip(probs, result):
                    r["masks"] = prob
        return result, losses
