"""L5: how good a model's outputs are, computed in NumPy (Tensors accepted), with
torchmetrics' names and interfaces where torchmetrics has them.

- Detection (:mod:`minicnn.metrics.mean_ap`): ``MeanAveragePrecision``, COCO mean average
  precision and recall for boxes or instance masks, equal to pycocotools' ``COCOeval``.
- Segmentation (:mod:`minicnn.metrics.segmentation`): confusion matrix, per-class and mean
  IoU, Dice, pixel accuracy.
- Image quality (:mod:`minicnn.metrics.image_quality`): ``psnr`` and ``ssim``, equal to
  scikit-image's ``peak_signal_noise_ratio`` and ``structural_similarity``.
"""

from minicnn.metrics.image_quality import psnr, ssim
from minicnn.metrics.mean_ap import MeanAveragePrecision
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
    # mean_ap.py
    "MeanAveragePrecision",
    # segmentation.py
    "ConfusionMatrix", "confusion_matrix", "dice_from_confusion", "iou_from_confusion",
    "mean_dice", "mean_iou", "per_class_dice", "per_class_iou", "pixel_accuracy",
    "pixel_accuracy_from_confusion",
    # image_quality.py
    "psnr", "ssim",
]
