"""COCO mean average precision (mAP) for detection, with torchmetrics' interface.

The numbers are exactly those of pycocotools' ``COCOeval`` (the reference everyone quotes);
the evaluation is written out here in NumPy, in the same steps:

1. **Match** (per image and class): sort the detections by score (at most the largest
   ``max_detection_thresholds`` per image); compute their IoU with every ground-truth
   object; for each IoU threshold, walk the detections from the best score down and give
   each the not-yet-matched object it overlaps most (IoU >= threshold). Objects marked
   ``iscrowd`` may absorb any number of detections; their IoU divides by the detection's
   area instead of the union. An object that is crowd, or whose area is outside the
   current area range, is *ignored*: a detection matched to it counts neither as a true
   nor as a false positive, and so does an unmatched detection outside the area range.
2. **Accumulate** (per class, area range and detection limit): pool the detections of all
   images, sort by score, count true and false positives cumulatively: recall = TP / (number
   of objects not ignored), precision = TP / (TP + FP). Make precision non-increasing from
   the right and read it at 101 recall points 0, 0.01, ..., 1 (0 beyond the largest recall).
3. **Summarize**: the mean over IoU thresholds, recall points and classes of that table
   (``map``); recall at the largest detection limit, averaged likewise (``mar_100``).
   A class with no object (not ignored) in the whole set has no value: it is -1 in the
   tables and left out of the means; a mean over nothing is -1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from minicnn.autograd import Tensor

__all__ = ["MeanAveragePrecision"]

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")
IOU_TYPES = ("bbox", "segm")
# COCO's area ranges in pixels^2: all, small (< 32^2), medium (32^2 .. 96^2), large (> 96^2)
AREA_RANGES = {"all": (0.0, 1e5**2), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2),
               "large": (96.0**2, 1e5**2)}


@dataclass
class _Image:
    """One image's detections and ground truth, in COCO's form (boxes as float64 xywh)."""

    det_boxes: np.ndarray  # (D, 4) x, y, w, h
    det_masks: np.ndarray | None  # (D, H, W) bool
    det_scores: np.ndarray  # (D,)
    det_labels: np.ndarray  # (D,) int64
    det_areas: np.ndarray  # (D,)
    gt_boxes: np.ndarray  # (G, 4) x, y, w, h
    gt_masks: np.ndarray | None  # (G, H, W) bool
    gt_labels: np.ndarray  # (G,) int64
    gt_crowd: np.ndarray  # (G,) bool
    gt_areas: np.ndarray  # (G,)


def _as_numpy(value, name: str) -> np.ndarray:
    """A NumPy array from a NumPy array, a minicnn Tensor or anything with ``.numpy()``."""
    if isinstance(value, Tensor):
        return value.detach().numpy()
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "numpy"):  # e.g. a torch tensor
        return np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach")
                          else value.numpy())
    if isinstance(value, (list, tuple)):
        return np.asarray(value)
    raise TypeError(f"MeanAveragePrecision.update: {name} must be a NumPy array or a Tensor, "
                    f"got {type(value).__name__}")


def _boxes_to_xywh(boxes: np.ndarray, box_format: str, name: str) -> np.ndarray:
    """``(K, 4)`` boxes in ``box_format`` -> float64 ``(K, 4)`` as (x, y, w, h), COCO's form."""
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"MeanAveragePrecision.update: {name} must have shape (K, 4), "
                         f"got {boxes.shape}")
    b = boxes.astype(np.float64)
    if box_format == "xyxy":
        if np.any(b[:, 2] < b[:, 0]) or np.any(b[:, 3] < b[:, 1]):
            raise ValueError(f"MeanAveragePrecision.update: {name} has boxes with x2 < x1 or "
                             f"y2 < y1; expected (x1, y1, x2, y2) with x1 <= x2, y1 <= y2")
        return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)
    if np.any(b[:, 2:] < 0):
        raise ValueError(f"MeanAveragePrecision.update: {name} has boxes with a negative "
                         f"width or height (box_format={box_format!r})")
    if box_format == "cxcywh":
        b = np.stack([b[:, 0] - 0.5 * b[:, 2], b[:, 1] - 0.5 * b[:, 3], b[:, 2], b[:, 3]], 1)
    return b


def _bbox_iou(det: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of detections ``(D, 4)`` with objects ``(G, 4)``, both xywh -> ``(D, G)``.

    As pycocotools: for a crowd object the overlap divides by the detection's area.
    """
    x2 = np.minimum(det[:, None, 0] + det[:, None, 2], gt[None, :, 0] + gt[None, :, 2])
    y2 = np.minimum(det[:, None, 1] + det[:, None, 3], gt[None, :, 1] + gt[None, :, 3])
    w = x2 - np.maximum(det[:, None, 0], gt[None, :, 0])
    h = y2 - np.maximum(det[:, None, 1], gt[None, :, 1])
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    det_area = (det[:, 2] * det[:, 3])[:, None]
    union = np.where(crowd[None, :], det_area, det_area + (gt[:, 2] * gt[:, 3])[None, :] - inter)
    return np.divide(inter, union, out=np.zeros_like(inter), where=inter > 0)


def _mask_iou(det: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of binary masks ``(D, H, W)`` with ``(G, H, W)`` -> ``(D, G)``; areas in pixels."""
    d = det.reshape(len(det), det.shape[1] * det.shape[2]).astype(np.float64)
    g = gt.reshape(len(gt), gt.shape[1] * gt.shape[2]).astype(np.float64)
    inter = d @ g.T
    det_area = d.sum(axis=1)[:, None]
    union = np.where(crowd[None, :], det_area, det_area + g.sum(axis=1)[None, :] - inter)
    return np.divide(inter, union, out=np.zeros_like(inter), where=inter > 0)


def _match(ious: np.ndarray, gt_ignore: np.ndarray, gt_crowd: np.ndarray,
           iou_thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching of detections (rows of ``ious``, best score first) to objects.

    ``ious: (D, G)``; ``gt_ignore, gt_crowd: (G,)`` -> ``matched, matched_ignored: (T, D)``
    bool: whether detection d found an object at threshold t, and whether that object is
    ignored. Each detection takes, among the objects still free (crowd ones always are)
    with IoU >= t, the one of largest IoU (the last on ties, as COCOeval's loop does),
    preferring objects that are not ignored.
    """
    n_thr, (n_det, n_gt) = len(iou_thresholds), ious.shape
    matched = np.zeros((n_thr, n_det), dtype=bool)
    matched_ignored = np.zeros((n_thr, n_det), dtype=bool)
    taken = np.zeros((n_thr, n_gt), dtype=bool)
    thresholds = np.minimum(iou_thresholds, 1 - 1e-10)[:, None]  # (T, 1)
    rows = np.arange(n_thr)
    if n_gt == 0:
        return matched, matched_ignored
    # a detection below every threshold with every object matches nothing: skip it
    for d in np.flatnonzero(ious.max(axis=1) >= thresholds.min()):
        candidate = (~taken | gt_crowd[None, :]) & (ious[d][None, :] >= thresholds)  # (T, G)
        for ignored in (False, True):  # objects not ignored first
            pick = candidate & (gt_ignore[None, :] == ignored) & ~matched[:, d:d + 1]
            if not pick.any():
                continue
            reversed_ious = np.where(pick, ious[d][None, :], -np.inf)[:, ::-1]
            best = n_gt - 1 - np.argmax(reversed_ious, axis=1)  # last index of the largest
            found = pick.any(axis=1)
            taken[rows[found], best[found]] = True
            matched[found, d] = True
            matched_ignored[found, d] = ignored
    return matched, matched_ignored


class MeanAveragePrecision:
    """COCO mean average precision and recall for boxes or instance masks (= pycocotools).

    torchmetrics' interface: call :meth:`update` with each batch's predictions and targets,
    then :meth:`compute`; :meth:`reset` starts over.

    Args:
        box_format: "xyxy" (default), "xywh" or "cxcywh", the format of every ``boxes``.
        iou_type: "bbox" (IoU of boxes) or "segm" (IoU of binary ``masks``; areas are
            pixel counts, as COCO's).
        iou_thresholds: IoU thresholds T (default COCO's 0.5, 0.55, ..., 0.95).
        rec_thresholds: recall points R (default 0, 0.01, ..., 1).
        max_detection_thresholds: three detection limits per image (default 1, 10, 100);
            the results' ``mar_<limit>`` keys are named by them; every ``map*`` uses the
            largest (COCOeval.summarize's ``map`` asks for 100 by name and is -1 when 100
            is not a limit; here it is the mean at the largest limit, like its other numbers).
        class_metrics: also compute ``map_per_class`` and ``mar_<largest>_per_class``.
        extended_summary: also return ``precision (T, R, K, A, M)``, ``recall (T, K, A, M)``
            and ``scores (T, R, K, A, M)`` (K classes, A = 4 area ranges all / small /
            medium / large, M detection limits; -1 where undefined) and ``ious``, a dict
            ``(image index, class) -> (D, G)`` IoU array.

    Example::

        metric = MeanAveragePrecision()
        metric.update([{"boxes": pred_boxes, "scores": scores, "labels": labels}],
                      [{"boxes": gt_boxes, "labels": gt_labels}])
        metric.compute()["map_50"]
    """

    def __init__(self, box_format: str = "xyxy", iou_type: str = "bbox",
                 iou_thresholds: Sequence[float] | None = None,
                 rec_thresholds: Sequence[float] | None = None,
                 max_detection_thresholds: Sequence[int] | None = None,
                 class_metrics: bool = False, extended_summary: bool = False) -> None:
        if box_format not in BOX_FORMATS:
            raise ValueError(f"MeanAveragePrecision: box_format must be one of {BOX_FORMATS}, "
                             f"got {box_format!r}")
        if iou_type not in IOU_TYPES:
            raise ValueError(f"MeanAveragePrecision: iou_type must be one of {IOU_TYPES}, "
                             f"got {iou_type!r}")
        self.box_format, self.iou_type = box_format, iou_type
        # the same expressions as COCOeval's Params, so the thresholds are the same floats
        self.iou_thresholds = (np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1)
                               if iou_thresholds is None
                               else np.asarray(iou_thresholds, dtype=np.float64))
        self.rec_thresholds = (np.linspace(0.0, 1.0, int(np.round((1.0 - 0.0) / 0.01)) + 1)
                               if rec_thresholds is None
                               else np.asarray(rec_thresholds, dtype=np.float64))
        limits = [1, 10, 100] if max_detection_thresholds is None else max_detection_thresholds
        if len(limits) != 3 or any(int(m) != m or m < 1 for m in limits):
            raise ValueError("MeanAveragePrecision: max_detection_thresholds must be three "
                             f"positive integers, got {max_detection_thresholds!r}")
        self.max_detection_thresholds = sorted(int(m) for m in limits)
        for name, values in (("iou_thresholds", self.iou_thresholds),
                             ("rec_thresholds", self.rec_thresholds)):
            if values.ndim != 1 or len(values) == 0 or np.any((values < 0) | (values > 1)):
                raise ValueError(f"MeanAveragePrecision: {name} must be a non-empty list of "
                                 f"values in [0, 1], got {values.tolist()!r}")
        self.class_metrics, self.extended_summary = class_metrics, extended_summary
        self.reset()

    def reset(self) -> None:
        """Forget every image seen so far."""
        self._images: list[_Image] = []

    # ------------------------------------------------------------------ input

    def update(self, preds: Sequence[dict], target: Sequence[dict]) -> None:
        """Add a batch: one dict per image in each list (NumPy arrays or Tensors).

        ``preds[i]``: ``boxes (D, 4)`` (for iou_type "bbox"), ``masks (D, H, W)`` bool (for
        "segm"), ``scores (D,)``, ``labels (D,)``. ``target[i]``: ``boxes (G, 4)`` /
        ``masks (G, H, W)``, ``labels (G,)``, optional ``iscrowd (G,)`` 0/1 and ``area (G,)``
        (used for the small/medium/large split when > 0; else the box's or mask's area).
        """
        if not isinstance(preds, Sequence) or not isinstance(target, Sequence):
            raise ValueError("MeanAveragePrecision.update: preds and target must be lists of "
                             f"dicts, got {type(preds).__name__} and {type(target).__name__}")
        if len(preds) != len(target):
            raise ValueError(f"MeanAveragePrecision.update: preds and target must have one "
                             f"dict per image each, got {len(preds)} preds and "
                             f"{len(target)} targets")
        for i, (pred, tgt) in enumerate(zip(preds, target)):
            self._images.append(self._image(pred, tgt, i))

    def _read(self, entry: dict, kind: str, i: int, scored: bool):
        """One dict's (boxes xywh, masks, scores, labels, areas), validated."""
        where = f"{kind}[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"MeanAveragePrecision.update: {where} must be a dict, "
                             f"got {type(entry).__name__}")
        spatial = "boxes" if self.iou_type == "bbox" else "masks"
        required = [spatial, "labels"] + (["scores"] if scored else [])
        missing = [key for key in required if key not in entry]
        if missing:
            raise ValueError(f"MeanAveragePrecision.update: {where} lacks the key(s) "
                             f"{missing} (iou_type={self.iou_type!r}); it has "
                             f"{sorted(entry)}")
        labels = _as_numpy(entry["labels"], f"{where}['labels']")
        if labels.ndim != 1:
            raise ValueError(f"MeanAveragePrecision.update: {where}['labels'] must have shape "
                             f"(K,), got {labels.shape}")
        if labels.dtype.kind not in "iu" and not (labels.dtype.kind == "f"
                                                  and np.all(labels == np.round(labels))):
            raise ValueError(f"MeanAveragePrecision.update: {where}['labels'] must be integer "
                             f"class labels, got {labels.dtype} values {labels[:5].tolist()}")
        n = len(labels)
        masks = None
        if self.iou_type == "bbox":
            boxes = _boxes_to_xywh(_as_numpy(entry["boxes"], f"{where}['boxes']"),
                                   self.box_format, f"{where}['boxes']")
            areas = boxes[:, 2] * boxes[:, 3]
            count, count_name = len(boxes), "boxes"
        else:
            masks = _as_numpy(entry["masks"], f"{where}['masks']")
            if masks.ndim != 3:
                raise ValueError(f"MeanAveragePrecision.update: {where}['masks'] must have "
                                 f"shape (K, H, W), got {masks.shape}")
            masks = masks.astype(bool)
            boxes = np.zeros((len(masks), 4))
            areas = masks.sum(axis=(1, 2)).astype(np.float64)
            count, count_name = len(masks), "masks"
        if count != n:
            raise ValueError(f"MeanAveragePrecision.update: {where} has {count} "
                             f"{count_name} but {n} labels")
        scores = None
        if scored:
            scores = _as_numpy(entry["scores"], f"{where}['scores']").astype(np.float64)
            if scores.shape != (n,):
                raise ValueError(f"MeanAveragePrecision.update: {where}['scores'] must have "
                                 f"shape ({n},) to match its labels, got {scores.shape}")
        return boxes, masks, scores, labels.astype(np.int64), areas

    def _image(self, pred: dict, tgt: dict, i: int) -> _Image:
        det_boxes, det_masks, det_scores, det_labels, det_areas = self._read(pred, "preds", i,
                                                                              True)
        gt_boxes, gt_masks, _, gt_labels, gt_areas = self._read(tgt, "target", i, False)
        n = len(gt_labels)
        crowd = np.zeros(n, dtype=bool)
        if "iscrowd" in tgt:
            crowd = _as_numpy(tgt["iscrowd"], f"target[{i}]['iscrowd']").astype(bool)
            if crowd.shape != (n,):
                raise ValueError(f"MeanAveragePrecision.update: target[{i}]['iscrowd'] must "
                                 f"have shape ({n},), got {crowd.shape}")
        if "area" in tgt:
            given = _as_numpy(tgt["area"], f"target[{i}]['area']").astype(np.float64)
            if given.shape != (n,):
                raise ValueError(f"MeanAveragePrecision.update: target[{i}]['area'] must "
                                 f"have shape ({n},), got {given.shape}")
            gt_areas = np.where(given > 0, given, gt_areas)
        if (det_masks is not None and len(det_masks) and len(gt_masks)
                and det_masks.shape[1:] != gt_masks.shape[1:]):
            raise ValueError(f"MeanAveragePrecision.update: preds[{i}]['masks'] are "
                             f"{det_masks.shape[1:]} but target[{i}]['masks'] are "
                             f"{gt_masks.shape[1:]}; they must be the same image size")
        return _Image(det_boxes, det_masks, det_scores, det_labels, det_areas,
                      gt_boxes, gt_masks, gt_labels, crowd, gt_areas)

    # ------------------------------------------------------------------ evaluation

    def _evaluate_image(self, image: _Image, label: int):
        """Step 1 for one image and class: a list over area ranges of
        ``(scores (D,), matched (T, D), det_ignored (T, D), gt_ignored (G,))`` and the
        ``(D, G)`` IoU array; (None, None) when the image has neither detections nor objects
        of the class."""
        dets = np.flatnonzero(image.det_labels == label)
        gts = np.flatnonzero(image.gt_labels == label)
        if len(dets) == 0 and len(gts) == 0:
            return None, None
        order = np.argsort(-image.det_scores[dets], kind="mergesort")  # stable, as COCOeval
        dets = dets[order][: self.max_detection_thresholds[-1]]
        crowd = image.gt_crowd[gts]
        if self.iou_type == "bbox":
            ious = _bbox_iou(image.det_boxes[dets], image.gt_boxes[gts], crowd)
        else:
            ious = _mask_iou(image.det_masks[dets], image.gt_masks[gts], crowd)
        gt_area, det_area = image.gt_areas[gts], image.det_areas[dets]
        per_area = []
        for low, high in AREA_RANGES.values():
            gt_ignored = crowd | (gt_area < low) | (gt_area > high)
            # objects not ignored first (stable), as COCOeval orders them before matching
            gt_order = np.argsort(gt_ignored, kind="mergesort")
            matched, matched_ignored = _match(ious[:, gt_order], gt_ignored[gt_order],
                                              crowd[gt_order], self.iou_thresholds)
            outside = (det_area < low) | (det_area > high)
            det_ignored = matched_ignored | (~matched & outside[None, :])
            per_area.append((image.det_scores[dets], matched, det_ignored, gt_ignored))
        return per_area, ious

    def _accumulate(self, evaluations: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Step 2: ``precision (T, R, A, M)``, ``scores (T, R, A, M)``, ``recall (T, A, M)``
        of one class from its per-image evaluations (-1 where the class has no object)."""
        n_thr, n_rec = len(self.iou_thresholds), len(self.rec_thresholds)
        n_area, n_lim = len(AREA_RANGES), len(self.max_detection_thresholds)
        precision = -np.ones((n_thr, n_rec, n_area, n_lim))
        scores_at = -np.ones((n_thr, n_rec, n_area, n_lim))
        recall = -np.ones((n_thr, n_area, n_lim))
        for a in range(n_area):
            parts = [e[a] for e in evaluations]
            n_objects = sum(int(np.count_nonzero(~gt_ignored)) for *_, gt_ignored in parts)
            if not parts or n_objects == 0:
                continue
            for m, limit in enumerate(self.max_detection_thresholds):
                scores = np.concatenate([s[:limit] for s, *_ in parts])
                order = np.argsort(-scores, kind="mergesort")
                sorted_scores = scores[order]
                matched = np.concatenate([mt[:, :limit] for _, mt, _, _ in parts], 1)[:, order]
                ignored = np.concatenate([ig[:, :limit] for _, _, ig, _ in parts], 1)[:, order]
                tp = np.cumsum(matched & ~ignored, axis=1).astype(float)
                fp = np.cumsum(~matched & ~ignored, axis=1).astype(float)
                for t in range(n_thr):
                    rc = tp[t] / n_objects
                    pr = tp[t] / (fp[t] + tp[t] + np.spacing(1))
                    recall[t, a, m] = rc[-1] if len(rc) else 0
                    # precision envelope: the best precision at this recall or beyond
                    pr = np.maximum.accumulate(pr[::-1])[::-1]
                    at = np.searchsorted(rc, self.rec_thresholds, side="left")
                    inside = at < len(pr)  # recall points beyond the largest recall stay 0
                    precision[t, :, a, m] = 0
                    precision[t, inside, a, m] = pr[at[inside]]
                    scores_at[t, :, a, m] = 0
                    scores_at[t, inside, a, m] = sorted_scores[at[inside]]
        return precision, scores_at, recall

    def compute(self) -> dict:
        """The COCO summary over every image seen, as a dict of Tensors.

        ``map``, ``map_50``, ``map_75``, ``map_small``, ``map_medium``, ``map_large``,
        ``mar_<m>`` for each detection limit m, ``mar_small``, ``mar_medium``,
        ``mar_large`` (float32 scalars, -1 where undefined), ``map_per_class`` and
        ``mar_<m>_per_class`` ``(K,)`` (-1 unless ``class_metrics``), ``classes (K,)`` int32;
        with ``extended_summary`` also ``precision``, ``recall``, ``scores`` (float64) and
        ``ious``.
        """
        labels = [im.det_labels for im in self._images] + [im.gt_labels for im in
                                                            self._images]
        classes = np.unique(np.concatenate(labels)) if labels else np.zeros(0, np.int64)
        n_thr, n_rec = len(self.iou_thresholds), len(self.rec_thresholds)
        n_area, n_lim = len(AREA_RANGES), len(self.max_detection_thresholds)
        precision = -np.ones((n_thr, n_rec, len(classes), n_area, n_lim))
        scores = -np.ones((n_thr, n_rec, len(classes), n_area, n_lim))
        recall = -np.ones((n_thr, len(classes), n_area, n_lim))
        ious = {}
        for k, label in enumerate(classes):
            evaluations = []
            for i, image in enumerate(self._images):
                per_area, iou = self._evaluate_image(image, int(label))
                if per_area is not None:
                    evaluations.append(per_area)
                    if self.extended_summary:
                        ious[(i, int(label))] = Tensor(iou)
            precision[:, :, k], scores[:, :, k], recall[:, k] = self._accumulate(evaluations)
        results = self._summarize(precision, recall)
        limit = self.max_detection_thresholds[-1]
        if self.class_metrics and len(classes):
            per_class = [self._summarize(precision[:, :, k:k + 1], recall[:, k:k + 1])
                         for k in range(len(classes))]
            results["map_per_class"] = _scalar([r["map"].item() for r in per_class])
            results[f"mar_{limit}_per_class"] = _scalar([r[f"mar_{limit}"].item()
                                                         for r in per_class])
        else:
            results["map_per_class"] = _scalar(-1.0)
            results[f"mar_{limit}_per_class"] = _scalar(-1.0)
        results["classes"] = Tensor(classes.astype(np.int32))
        if self.extended_summary:
            results.update(precision=Tensor(precision), recall=Tensor(recall),
                           scores=Tensor(scores), ious=ious)
        return results

    def _summarize(self, precision: np.ndarray, recall: np.ndarray) -> dict:
        """Step 3: COCOeval.summarize's twelve numbers from ``precision (T, R, K, A, M)`` and
        ``recall (T, K, A, M)``."""
        areas = list(AREA_RANGES)
        limits = self.max_detection_thresholds

        def mean(values: np.ndarray) -> Tensor:
            defined = values[values > -1]
            return _scalar(float(np.mean(defined)) if defined.size else -1.0)

        def ap(area: str = "all", iou: float | None = None) -> Tensor:
            p = precision[..., areas.index(area), len(limits) - 1]
            if iou is not None:
                p = p[np.flatnonzero(self.iou_thresholds == iou)]
            return mean(p)

        def ar(area: str = "all", m: int = len(limits) - 1) -> Tensor:
            return mean(recall[..., areas.index(area), m])

        out = {"map": ap(), "map_50": ap(iou=0.5), "map_75": ap(iou=0.75),
               "map_small": ap("small"), "map_medium": ap("medium"), "map_large": ap("large")}
        out.update({f"mar_{m}": ar(m=i) for i, m in enumerate(limits)})
        out.update(mar_small=ar("small"), mar_medium=ar("medium"), mar_large=ar("large"))
        return out


def _scalar(value) -> Tensor:
    """A float32 Tensor, as torchmetrics returns its results."""
    return Tensor(np.asarray(value, dtype=np.float32))
