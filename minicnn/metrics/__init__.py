"""``minicnn.metrics``: how good a model's outputs are, computed in NumPy (Tensors accepted).

Segmentation (:mod:`minicnn.metrics.segmentation`): confusion matrix, per-class and mean IoU,
Dice, pixel accuracy.
"""

from minicnn.metrics.segmentation import (
    ConfusionMatrix,
    confusion_matrix,
    dice_from_confusion,
    iou_from_confusion,
    mean_dice,
    mean_iou,
    per_class_dice,
    per_class_iou,
    pixel_accuracy,
    pixel_accuracy_from_confusion,
)

__all__ = [
    # segmentation.py
    "ConfusionMatrix", "confusion_matrix", "dice_from_confusion", "iou_from_confusion",
    "mean_dice", "mean_iou", "per_class_dice", "per_class_iou", "pixel_accuracy",
    "pixel_accuracy_from_confusion",
]
