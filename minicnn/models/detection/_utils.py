"""What the detectors share, with torchvision's names (``models/detection/_utils.py``): the
box coder, the matchers, and two small helpers of the constructors.

* :class:`BoxCoder` turns a box into the offsets a network regresses *relative to an
  anchor* (default box) and back. For an anchor with centre ``(xa, ya)`` and size
  ``(wa, ha)`` and a box ``(x, y, w, h)``::

      dx = wx * (x - xa) / wa      dy = wy * (y - ya) / ha
      dw = ww * log(w / wa)        dh = wh * log(h / ha)

  The weights ``(wx, wy, ww, wh)`` scale the targets to about unit variance; SSD uses
  ``(10, 10, 5, 5)``, the "variances" 0.1 and 0.2 of the SSD paper written as their
  inverses. Decoding inverts it, with ``dw``/``dh`` clipped at ``log(1000 / 16)`` so that
  ``exp`` cannot overflow.
* :class:`Matcher` gives each prediction (anchor) the ground-truth box it overlaps most,
  or -1 (below ``low_threshold``) / -2 (between the thresholds).
* :class:`SSDMatcher` is the SSD paper's rule (Liu et al. 2016, section 2.2, "Matching
  strategy"): every anchor with IoU >= 0.5 matches its best box, and in addition each
  ground-truth box takes its best anchor whatever the IoU, so no object goes unmatched.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from minicnn.autograd import Tensor, no_grad, zeros
from minicnn.autograd.ops import cat, clamp, exp, log, stack
from minicnn.backend import backend_of
from minicnn.ops import batched_nms
from minicnn.random import generator

__all__ = ["BalancedPositiveNegativeSampler", "BoxCoder", "Matcher", "SSDMatcher",
           "batch_images", "check_box_targets", "select_detections",
           "overwrite_eps", "retrieve_out_channels", "stable_descending_order",
           "validate_trainable_layers"]


class BalancedPositiveNegativeSampler:
    """Draw, per image, a training batch of ``batch_size_per_image`` elements of which at
    most ``positive_fraction`` are positive (Faster R-CNN, section 3.1.3: 256 anchors, up
    to half positive, the rest negative; the RoI heads: 512 proposals, a quarter positive).

    ``__call__(matched_idxs)``: per image a ``(A,)`` integer Tensor, ``>= 1`` positive, ``0``
    negative, ``-1`` ignored -> ``(pos_masks, neg_masks)``, per image ``(A,)`` uint8 masks
    of the chosen positives and negatives. The choice is uniform without replacement,
    drawn from minicnn's generator (``minicnn.manual_seed`` repeats it).
    """

    def __init__(self, batch_size_per_image: int, positive_fraction: float) -> None:
        if not isinstance(batch_size_per_image, int) or batch_size_per_image < 1:
            raise ValueError(f"BalancedPositiveNegativeSampler: batch_size_per_image must be a "
                             f"positive int, got {batch_size_per_image!r}")
        if not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(f"BalancedPositiveNegativeSampler: positive_fraction must be in "
                             f"[0, 1], got {positive_fraction!r}")
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction

    def __call__(self, matched_idxs: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        pos_masks, neg_masks = [], []
        for matched in matched_idxs:
            m = matched.array
            xp = backend_of(m).xp
            positive = xp.nonzero(m >= 1)[0]
            negative = xp.nonzero(m == 0)[0]
            num_pos = min(int(positive.shape[0]),
                          int(self.batch_size_per_image * self.positive_fraction))
            num_neg = min(int(negative.shape[0]), self.batch_size_per_image - num_pos)
            rng = generator()  # on the CPU, so that a seed gives the same draw on any device
            perm1 = xp.asarray(rng.permutation(positive.shape[0])[:num_pos])
            perm2 = xp.asarray(rng.permutation(negative.shape[0])[:num_neg])
            pos_mask = xp.zeros(m.shape, dtype=xp.uint8)
            neg_mask = xp.zeros(m.shape, dtype=xp.uint8)
            pos_mask[positive[perm1]] = 1
            neg_mask[negative[perm2]] = 1
            pos_masks.append(Tensor(pos_mask))
            neg_masks.append(Tensor(neg_mask))
        return pos_masks, neg_masks


class BoxCoder:
    """Encode boxes as offsets from reference boxes (anchors) and decode them back.

    Args:
        weights: ``(wx, wy, ww, wh)``, the multipliers of the four offsets.
        bbox_xform_clip: the largest ``dw``/``dh`` that :meth:`decode_single` exponentiates.
    """

    def __init__(self, weights: tuple[float, float, float, float],
                 bbox_xform_clip: float = math.log(1000.0 / 16)) -> None:
        if len(weights) != 4:
            raise ValueError(f"BoxCoder: weights must be 4 numbers (wx, wy, ww, wh), "
                             f"got {weights!r}")
        self.weights = tuple(float(w) for w in weights)
        self.bbox_xform_clip = bbox_xform_clip

    def encode(self, reference_boxes: list[Tensor], proposals: list[Tensor]) -> tuple[Tensor, ...]:
        """:meth:`encode_single` over lists (one entry per image); returns one Tensor per image."""
        sizes = [len(b) for b in reference_boxes]
        targets = self.encode_single(cat(list(reference_boxes)), cat(list(proposals)))
        return tuple(targets.split(sizes, 0))

    def encode_single(self, reference_boxes: Tensor, proposals: Tensor) -> Tensor:
        """The offsets of ``reference_boxes`` (the targets, ``(N, 4)`` xyxy) relative to
        ``proposals`` (the anchors, ``(N, 4)`` xyxy): ``(N, 4)`` rows ``(dx, dy, dw, dh)``."""
        _check_pairs(reference_boxes, proposals, "reference_boxes", "proposals", "encode_single")
        wx, wy, ww, wh = self.weights
        ex_widths = proposals[:, 2] - proposals[:, 0]
        ex_heights = proposals[:, 3] - proposals[:, 1]
        ex_ctr_x = proposals[:, 0] + 0.5 * ex_widths
        ex_ctr_y = proposals[:, 1] + 0.5 * ex_heights
        gt_widths = reference_boxes[:, 2] - reference_boxes[:, 0]
        gt_heights = reference_boxes[:, 3] - reference_boxes[:, 1]
        gt_ctr_x = reference_boxes[:, 0] + 0.5 * gt_widths
        gt_ctr_y = reference_boxes[:, 1] + 0.5 * gt_heights
        dx = wx * (gt_ctr_x - ex_ctr_x) / ex_widths
        dy = wy * (gt_ctr_y - ex_ctr_y) / ex_heights
        dw = ww * log(gt_widths / ex_widths)
        dh = wh * log(gt_heights / ex_heights)
        return stack([dx, dy, dw, dh], dim=1)

    def decode(self, rel_codes: Tensor, boxes: list[Tensor]) -> Tensor:
        """:meth:`decode_single` for the boxes of several images: ``rel_codes`` holds
        ``(sum N_i, 4 * K)`` offsets; returns ``(sum N_i, K, 4)``."""
        if not isinstance(boxes, (list, tuple)):
            raise TypeError(f"BoxCoder.decode: boxes must be a list or tuple of Tensors, got "
                            f"{type(boxes).__name__}")
        total = sum(b.shape[0] for b in boxes)
        if total > 0:
            rel_codes = rel_codes.reshape(total, -1)
        pred = self.decode_single(rel_codes, cat(list(boxes)))
        return pred.reshape(total, -1, 4) if total > 0 else pred

    def decode_single(self, rel_codes: Tensor, boxes: Tensor) -> Tensor:
        """Apply offsets ``rel_codes: (N, 4 * K)`` to reference boxes ``boxes: (N, 4)``:
        ``(N, 4 * K)`` xyxy boxes (K boxes per reference box). Differentiable."""
        if not isinstance(rel_codes, Tensor) or not isinstance(boxes, Tensor):
            raise TypeError("BoxCoder.decode_single: rel_codes and boxes must be Tensors, got "
                            f"{type(rel_codes).__name__} and {type(boxes).__name__}")
        if rel_codes.ndim != 2 or rel_codes.shape[1] % 4 or boxes.ndim != 2 \
                or boxes.shape[1] != 4 or boxes.shape[0] != rel_codes.shape[0]:
            raise ValueError(f"BoxCoder.decode_single: expected rel_codes (N, 4 * K) and boxes "
                             f"(N, 4), got {tuple(rel_codes.shape)} and {tuple(boxes.shape)}")
        boxes = boxes.to(rel_codes.dtype)
        widths = boxes[:, 2] - boxes[:, 0]
        heights = boxes[:, 3] - boxes[:, 1]
        ctr_x = boxes[:, 0] + 0.5 * widths
        ctr_y = boxes[:, 1] + 0.5 * heights
        wx, wy, ww, wh = self.weights
        dx = rel_codes[:, 0::4] / wx
        dy = rel_codes[:, 1::4] / wy
        dw = clamp(rel_codes[:, 2::4] / ww, max=self.bbox_xform_clip)
        dh = clamp(rel_codes[:, 3::4] / wh, max=self.bbox_xform_clip)
        pred_ctr_x = dx * widths[:, None] + ctr_x[:, None]
        pred_ctr_y = dy * heights[:, None] + ctr_y[:, None]
        half_w = 0.5 * (exp(dw) * widths[:, None])
        half_h = 0.5 * (exp(dh) * heights[:, None])
        corners = [pred_ctr_x - half_w, pred_ctr_y - half_h, pred_ctr_x + half_w,
                   pred_ctr_y + half_h]
        return stack(corners, dim=2).flatten(1)


def _check_pairs(a, b, name_a: str, name_b: str, fn: str) -> None:
    for name, t in ((name_a, a), (name_b, b)):
        if not isinstance(t, Tensor):
            raise TypeError(f"BoxCoder.{fn}: {name} must be a Tensor, got {type(t).__name__}")
        if t.ndim != 2 or t.shape[1] != 4:
            raise ValueError(f"BoxCoder.{fn}: {name} must have shape (N, 4), "
                             f"got {tuple(t.shape)}")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"BoxCoder.{fn}: {name_a} and {name_b} must have the same number of "
                         f"rows, got {a.shape[0]} and {b.shape[0]}")


class Matcher:
    """Assign to each prediction the ground-truth element it matches best.

    ``match_quality_matrix: (M, N)`` (M ground-truth boxes, N predictions, e.g. IoU) ->
    ``(N,)`` int64: the index in ``[0, M)`` of the best ground truth when its quality is
    ``>= high_threshold``, ``BETWEEN_THRESHOLDS`` (-2) when it is in
    ``[low_threshold, high_threshold)``, ``BELOW_LOW_THRESHOLD`` (-1) below that.
    ``allow_low_quality_matches`` gives back its best ground truth to every prediction that
    is the best (ties included) for some ground truth (Faster R-CNN's rule).
    """

    BELOW_LOW_THRESHOLD = -1
    BETWEEN_THRESHOLDS = -2

    def __init__(self, high_threshold: float, low_threshold: float,
                 allow_low_quality_matches: bool = False) -> None:
        if low_threshold > high_threshold:
            raise ValueError(f"Matcher: low_threshold must be <= high_threshold, got "
                             f"{low_threshold} > {high_threshold}")
        self.high_threshold = high_threshold
        self.low_threshold = low_threshold
        self.allow_low_quality_matches = allow_low_quality_matches

    def __call__(self, match_quality_matrix: Tensor) -> Tensor:
        q = _quality_array(match_quality_matrix, type(self).__name__)
        xp = backend_of(q).xp
        matches = xp.argmax(q, axis=0).astype(xp.int64)  # the first best, as torch
        matched_vals = q.max(axis=0)
        all_matches = matches.copy() if self.allow_low_quality_matches else None
        below = matched_vals < self.low_threshold
        between = (matched_vals >= self.low_threshold) & (matched_vals < self.high_threshold)
        matches[below] = self.BELOW_LOW_THRESHOLD
        matches[between] = self.BETWEEN_THRESHOLDS
        if all_matches is not None:
            best_per_gt = q.max(axis=1)
            preds = xp.nonzero(q == best_per_gt[:, None])[1]
            matches[preds] = all_matches[preds]
        return Tensor(matches)


def _quality_array(match_quality_matrix, who: str):
    if not isinstance(match_quality_matrix, Tensor):
        raise TypeError(f"{who}: match_quality_matrix must be a Tensor, got "
                        f"{type(match_quality_matrix).__name__}")
    if match_quality_matrix.ndim != 2:
        raise ValueError(f"{who}: match_quality_matrix must be (M ground truths, N predictions), "
                         f"got shape {tuple(match_quality_matrix.shape)}")
    if match_quality_matrix.shape[0] == 0:
        raise ValueError(f"{who}: no ground-truth boxes available for one of the images "
                         f"(match_quality_matrix has shape {tuple(match_quality_matrix.shape)})")
    if match_quality_matrix.shape[1] == 0:
        raise ValueError(f"{who}: no proposal boxes available for one of the images "
                         f"(match_quality_matrix has shape {tuple(match_quality_matrix.shape)})")
    return match_quality_matrix.array


class SSDMatcher(Matcher):
    """The SSD matching: a prediction matches its best ground truth when their quality is
    ``>= threshold`` (else -1), and every ground truth also takes its single best
    prediction, whatever the quality (if two ground truths share a best prediction, the
    later one keeps it)."""

    def __init__(self, threshold: float) -> None:
        super().__init__(threshold, threshold, allow_low_quality_matches=False)

    def __call__(self, match_quality_matrix: Tensor) -> Tensor:
        matches = super().__call__(match_quality_matrix).array
        xp = backend_of(matches).xp
        best_pred_per_gt = xp.argmax(match_quality_matrix.array, axis=1)
        matches[best_pred_per_gt] = xp.arange(best_pred_per_gt.shape[0], dtype=xp.int64)
        return Tensor(matches)


def overwrite_eps(model, eps: float) -> None:
    """Set the ``eps`` of every ``FrozenBatchNorm2d`` in ``model`` (torchvision does
    ``overwrite_eps(model, 0.0)`` after loading its COCO weights of
    ``fasterrcnn_resnet50_fpn`` and ``maskrcnn_resnet50_fpn``, trained with eps 0)."""
    for module in model.modules():
        if type(module).__name__ == "FrozenBatchNorm2d":
            module.eps = eps


def retrieve_out_channels(model, size: tuple[int, int]) -> list[int]:
    """The channels of each feature map ``model`` returns for a ``(1, 3, size[1], size[0])``
    input of zeros (run in eval mode under ``no_grad``; the mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            features = model(zeros(1, 3, size[1], size[0]))
    finally:
        model.train(was_training)
    if isinstance(features, Tensor):
        features = {"0": features}
    return [int(f.shape[1]) for f in features.values()]


def validate_trainable_layers(is_trained: bool, trainable_backbone_layers: int | None,
                              max_value: int, default_value: int) -> int:
    """The number of trainable backbone stages, as torchvision decides it: all of them
    (``max_value``, with a warning if another number was asked for) when no pretrained
    weights are loaded, else ``trainable_backbone_layers`` or ``default_value``."""
    if not is_trained:
        if trainable_backbone_layers is not None:
            warnings.warn(
                "Changing trainable_backbone_layers has no effect if neither weights nor "
                f"weights_backbone are given, falling back to trainable_backbone_layers="
                f"{max_value} so that all layers are trainable", stacklevel=3)
        trainable_backbone_layers = max_value
    if trainable_backbone_layers is None:
        trainable_backbone_layers = default_value
    if not 0 <= trainable_backbone_layers <= max_value:
        raise ValueError(f"trainable_backbone_layers must be in [0, {max_value}], got "
                         f"{trainable_backbone_layers}")
    return trainable_backbone_layers


def freeze_backbone_stages(features, stage_indices: list[int], trainable_layers: int) -> None:
    """Freeze every block of ``features`` before the last ``trainable_layers`` stages
    (``stage_indices``: where each stage starts; 0 freezes all of ``features``)."""
    num_stages = len(stage_indices)
    if not 0 <= trainable_layers <= num_stages:
        raise ValueError(f"trainable_backbone_layers must be in [0, {num_stages}], got "
                         f"{trainable_layers}")
    freeze_before = (len(features) if trainable_layers == 0
                     else stage_indices[num_stages - trainable_layers])
    for block in features[:freeze_before]:
        for parameter in block.parameters():
            parameter.requires_grad_(False)


def stable_descending_order(values: np.ndarray, axis: int = -1):
    """Indices that sort ``values`` in decreasing order, equal values in index order (what
    ``torch.sort(descending=True)`` returns on the CPU)."""
    xp = backend_of(values).xp
    if xp is np:
        return np.argsort(-values, axis=axis, kind="stable")
    return xp.argsort(-values, axis=axis)  # CuPy's sort is stable


def batch_images(name: str, images) -> Tensor:
    """The one-stage detectors' input: an ``(N, 3, H, W)`` Tensor, or a list of ``(3, H, W)``
    Tensors of one shape stacked into one. ``name`` (the model's) leads each error."""
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError(f"{name}: images is an empty list")
        for k, image in enumerate(images):
            if not isinstance(image, Tensor) or image.ndim != 3:
                raise ValueError(f"{name}: images[{k}] must be a (3, H, W) Tensor, "
                                 f"got {getattr(image, 'shape', type(image).__name__)}")
        if len({tuple(image.shape) for image in images}) > 1:
            raise ValueError(f"{name}: images must all have one shape, got "
                             f"{sorted({tuple(image.shape) for image in images})}")
        return stack(list(images))
    if not isinstance(images, Tensor):
        raise TypeError(f"{name}: images must be an (N, 3, H, W) Tensor or a list of "
                        f"(3, H, W) Tensors, got {type(images).__name__}")
    return images


def check_box_targets(name: str, targets, n: int, num_classes: int) -> None:
    """Check the one-stage detectors' training targets: a list of ``n`` dicts with
    ``boxes`` ``(K, 4)`` (finite, ``x2 > x1``, ``y2 > y1``) and ``labels`` ``(K,)``, integers
    in ``1..num_classes`` (0 is the background). One-line errors led by ``name``."""
    if not isinstance(targets, (list, tuple)):
        raise TypeError(f"{name}: targets must be a list of dicts, got {type(targets).__name__}")
    if len(targets) != n:
        raise ValueError(f"{name}: len(targets) must equal the number of images ({n}), "
                         f"got {len(targets)}")
    for k, target in enumerate(targets):
        if not isinstance(target, dict) or "boxes" not in target or "labels" not in target:
            raise ValueError(f"{name}: targets[{k}] must be a dict with 'boxes' and 'labels', "
                             f"got {target!r:.80}")
        boxes = np.asarray(target["boxes"].numpy() if isinstance(target["boxes"], Tensor)
                           else target["boxes"])
        labels = np.asarray(target["labels"].numpy() if isinstance(target["labels"], Tensor)
                            else target["labels"])
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"{name}: targets[{k}]['boxes'] must have shape (K, 4), "
                             f"got {boxes.shape}")
        if labels.shape != (boxes.shape[0],):
            raise ValueError(f"{name}: targets[{k}]['labels'] must have shape "
                             f"({boxes.shape[0]},) to match the boxes, got {labels.shape}")
        if not np.isfinite(boxes).all():
            raise ValueError(f"{name}: targets[{k}]['boxes'] has non-finite values")
        bad = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
        if bad.any():
            raise ValueError(f"{name}: targets[{k}]['boxes'] must have x2 > x1 and y2 > y1, "
                             f"got {boxes[bad][0].tolist()}")
        if labels.size and (labels.dtype.kind not in "iu" or labels.min() < 1
                            or labels.max() > num_classes):
            raise ValueError(f"{name}: targets[{k}]['labels'] must be integers in "
                             f"1..{num_classes} (0 is the background), got {labels.tolist()[:10]}")


def select_detections(boxes, scores, score_thresh: float, nms_thresh: float,
                      detections_per_img: int) -> dict[str, Tensor]:
    """One image's detections from every candidate box and its class scores (arrays):
    ``boxes (A, 4)`` in pixels, ``scores (A, C)``. Each (box, class) pair above
    ``score_thresh`` is a candidate; NMS at ``nms_thresh`` runs within each class
    (``batched_nms``) and the ``detections_per_img`` best are kept. Labels are 1..C."""
    xp = backend_of(scores).xp
    which, cls = xp.nonzero(scores > score_thresh)
    kept_boxes, kept_scores = Tensor(boxes[which]), Tensor(scores[which, cls])
    keep = batched_nms(kept_boxes, kept_scores, Tensor(cls), nms_thresh).array
    keep = keep[:detections_per_img]
    return {"boxes": Tensor(kept_boxes.array[keep]), "scores": Tensor(kept_scores.array[keep]),
            "labels": Tensor((cls[keep] + 1).astype(xp.int64))}
