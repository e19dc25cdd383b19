"""``minicnn.viz``: matplotlib figures of training runs (curves, confusion matrix, predictions,
detections and precision-recall curves, segmentation masks, landmarks)."""

from minicnn.viz.detection import (
    draw_boxes,
    plot_detection_curves,
    plot_detections,
    plot_precision_recall,
    save_detections,
)
from minicnn.viz.landmarks import draw_landmarks, plot_landmark_curves, plot_landmarks
from minicnn.viz.segmentation import (
    mask_colours,
    overlay_mask,
    plot_segmentation_curves,
    plot_segmentations,
    save_segmentation,
)
from minicnn.viz.training import plot_confusion, plot_curves, plot_predictions

__all__ = ["draw_boxes", "plot_confusion", "plot_curves", "plot_detection_curves",
           "plot_detections", "plot_precision_recall", "plot_predictions", "save_detections"]
__all__ += ["draw_landmarks", "plot_landmark_curves", "plot_landmarks"]
__all__ += ["mask_colours", "overlay_mask", "plot_segmentation_curves", "plot_segmentations",
            "save_segmentation"]
