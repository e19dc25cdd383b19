"""Segmentation metrics, all read off one confusion matrix (NumPy; Tensors are accepted).

For ``C`` classes, the confusion matrix ``M`` is ``(C, C)``: ``M[i, j]`` counts the pixels
of true class ``i`` predicted as class ``j`` (scikit-learn's convention: rows are the
truth). With ``TP_c = M[c, c]``, ``FP_c = sum_i M[i, c] - TP_c`` (predicted ``c``, truly
something else) and ``FN_c = sum_j M[c, j] - TP_c`` (truly ``c``, predicted something else):

* per-class IoU (Jaccard)  ``TP / (TP + FP + FN)``: the overlap of predicted and true
  region of class ``c`` over their union;
* per-class Dice (F1)      ``2 TP / (2 TP + FP + FN)`` (= ``2 IoU / (1 + IoU)``);
* pixel accuracy           ``trace(M) / sum(M)``: the fraction of pixels labelled right.

A class that appears neither in the truth nor in the prediction has ``0 / 0``: its IoU and
Dice are NaN (undefined, not 0 and not 1), and the means (:func:`mean_iou`, :func:`mean_dice`)
average over the classes where they are defined (``nanmean``), as the common benchmark code
does (scikit-learn's ``jaccard_score`` reports 0 for them instead).

Pixels whose target equals ``ignore_index`` (e.g. 255 for the object borders of PASCAL VOC)
count nowhere. Predictions may be labels of the target's shape ``(N, H, W)`` or scores
``(N, C, H, W)`` (logits or probabilities), which are turned into labels by an argmax over
``C``. Over a data set, accumulate with :class:`ConfusionMatrix` (the IoU of the summed
matrix, not the mean of per-image IoUs).
"""

from __future__ import annotations

import numpy as np

from minicnn.autograd.tensor import Tensor

__all__ = [
    "ConfusionMatrix", "confusion_matrix", "dice_from_confusion", "iou_from_confusion",
    "mean_dice", "mean_iou", "per_class_dice", "per_class_iou", "pixel_accuracy",
    "pixel_accuracy_from_confusion",
]


def _as_array(x) -> np.ndarray:
    if isinstance(x, Tensor):
        return np.asarray(x.detach().numpy())
    return np.asarray(x)


def _labels(pred, target, num_classes: int, ignore_index: int | None,
            fn: str) -> tuple[np.ndarray, np.ndarray]:
    """The checked flat ``(pred, target)`` labels of the pixels that count."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 1:
        raise ValueError(f"{fn}: num_classes must be a positive integer, got {num_classes!r}")
    pred, target = _as_array(pred), _as_array(target)
    if target.dtype.kind not in "iub":
        raise TypeError(f"{fn}: target must hold integer class labels, got dtype {target.dtype}")
    if pred.ndim == target.ndim + 1 and pred.ndim >= 2:  # scores (N, C, ...) -> labels
        if pred.shape[1] != num_classes or pred.shape[:1] + pred.shape[2:] != target.shape:
            raise ValueError(
                f"{fn}: scores of shape {pred.shape} do not match target of shape "
                f"{target.shape} with num_classes={num_classes}: expected scores "
                f"{target.shape[:1] + (num_classes,) + target.shape[1:]}")
        pred = pred.argmax(axis=1)
    elif pred.shape != target.shape:
        raise ValueError(f"{fn}: prediction shape {pred.shape} does not match target (mask) "
                         f"shape {target.shape}; give labels of the target's shape or scores "
                         f"(N, C, ...)")
    elif pred.dtype.kind not in "iub":
        raise TypeError(f"{fn}: predicted labels must be integers, got dtype {pred.dtype}; "
                        f"for scores give (N, C, ...)")
    pred, target = pred.reshape(-1).astype(np.int64), target.reshape(-1).astype(np.int64)
    keep = np.ones(target.shape, bool) if ignore_index is None else target != ignore_index
    for what, values in (("target", target[keep]), ("prediction", pred[keep])):
        bad = (values < 0) | (values >= num_classes)
        if bad.any():
            extra = "" if ignore_index is None else f" (or the ignore_index {ignore_index})"
            raise ValueError(
                f"{fn}: {what} holds label {int(values[bad][0])}, out of range for "
                f"num_classes={num_classes}: expected 0 <= label < {num_classes}{extra}")
    return pred[keep], target[keep]


def confusion_matrix(pred, target, num_classes: int,
                     ignore_index: int | None = None) -> np.ndarray:
    """The ``(C, C)`` int64 confusion matrix: ``M[i, j]`` = pixels of true class ``i``
    predicted as ``j``.

    ``pred``: labels of the target's shape (e.g. ``(N, H, W)``) or scores ``(N, C, H, W)``
    (argmax over ``C``); ``target``: integer labels ``(N, H, W)`` in ``[0, C)`` or
    ``ignore_index`` (those pixels are left out). NumPy arrays or Tensors.
    """
    pred, target = _labels(pred, target, num_classes, ignore_index, "confusion_matrix")
    counts = np.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def _check_confusion(cm, fn: str) -> np.ndarray:
    cm = _as_array(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"{fn}: a confusion matrix must be square (C, C), got shape {cm.shape}")
    return cm.astype(np.float64)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def iou_from_confusion(cm) -> np.ndarray:
    """Per-class IoU ``TP / (TP + FP + FN)`` from a ``(C, C)`` confusion matrix: ``(C,)``
    float64, NaN for a class absent from truth and prediction."""
    cm = _check_confusion(cm, "iou_from_confusion")
    tp = np.diag(cm)
    return _ratio(tp, cm.sum(0) + cm.sum(1) - tp)


def dice_from_confusion(cm) -> np.ndarray:
    """Per-class Dice ``2 TP / (2 TP + FP + FN)`` from a ``(C, C)`` confusion matrix: ``(C,)``
    float64, NaN for a class absent from truth and prediction."""
    cm = _check_confusion(cm, "dice_from_confusion")
    tp = np.diag(cm)
    return _ratio(2 * tp, cm.sum(0) + cm.sum(1))


def pixel_accuracy_from_confusion(cm) -> float:
    """``trace(M) / sum(M)``: the fraction of counted pixels labelled right (NaN if none)."""
    cm = _check_confusion(cm, "pixel_accuracy_from_confusion")
    total = cm.sum()
    return float(np.trace(cm) / total) if total > 0 else float("nan")


def _nanmean(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def per_class_iou(pred, target, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """Per-class IoU ``(C,)`` of ``pred`` against ``target`` (arguments as
    :func:`confusion_matrix`)."""
    return iou_from_confusion(confusion_matrix(pred, target, num_classes, ignore_index))


def mean_iou(pred, target, num_classes: int, ignore_index: int | None = None) -> float:
    """The mean of the per-class IoUs over the classes present in truth or prediction."""
    return _nanmean(per_class_iou(pred, target, num_classes, ignore_index))


def per_class_dice(pred, target, num_classes: int,
                   ignore_index: int | None = None) -> np.ndarray:
    """Per-class Dice ``(C,)`` of ``pred`` against ``target`` (arguments as
    :func:`confusion_matrix`)."""
    return dice_from_confusion(confusion_matrix(pred, target, num_classes, ignore_index))


def mean_dice(pred, target, num_classes: int, ignore_index: int | None = None) -> float:
    """The mean of the per-class Dice scores over the classes present in truth or prediction."""
    return _nanmean(per_class_dice(pred, target, num_classes, ignore_index))


def pixel_accuracy(pred, target, num_classes: int, ignore_index: int | None = None) -> float:
    """The fraction of pixels (not ignored) whose predicted label is the true one."""
    return pixel_accuracy_from_confusion(
        confusion_matrix(pred, target, num_classes, ignore_index))


class ConfusionMatrix:
    """A confusion matrix accumulated over batches, and the metrics read off it.

        metric = ConfusionMatrix(num_classes=8, ignore_index=255)
        for images, masks in loader:
            metric.update(model(images), masks)     # scores (N, C, H, W), masks (N, H, W)
        metric.compute()   # {"pixel_accuracy", "mean_iou", "mean_dice", "iou", "dice"}
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None):
        confusion_matrix(np.zeros(0, np.int64), np.zeros(0, np.int64), num_classes)  # checks
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.matrix = np.zeros((num_classes, num_classes), np.int64)

    def update(self, pred, target) -> ConfusionMatrix:
        """Add the pixels of one batch (arguments as :func:`confusion_matrix`)."""
        self.matrix += confusion_matrix(pred, target, self.num_classes, self.ignore_index)
        return self

    def reset(self) -> None:
        self.matrix[...] = 0

    def compute(self) -> dict:
        """``pixel_accuracy``, ``mean_iou``, ``mean_dice`` (floats) and per-class ``iou``,
        ``dice`` (``(C,)`` arrays) of everything added so far."""
        iou, dice = iou_from_confusion(self.matrix), dice_from_confusion(self.matrix)
        return {"pixel_accuracy": pixel_accuracy_from_confusion(self.matrix),
                "mean_iou": _nanmean(iou), "mean_dice": _nanmean(dice), "iou": iou,
                "dice": dice}
