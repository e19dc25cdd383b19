"""L3: detection operations with torchvision.ops' names, argument order and results.

Boxes are ``(x1, y1, x2, y2)``. ``nms`` runs the backend's kernel (reference, Numba or
CUDA by the boxes' device); the geometric functions and the focal loss are differentiable.
"""

from minicnn.ops.boxes import (
    batched_nms,
    box_area,
    box_convert,
    box_iou,
    clip_boxes_to_image,
    complete_box_iou,
    complete_box_iou_loss,
    generalized_box_iou,
    nms,
    remove_small_boxes,
)
from minicnn.ops.focal_loss import sigmoid_focal_loss

__all__ = [
    "batched_nms", "box_area", "box_convert", "box_iou", "clip_boxes_to_image",
    "generalized_box_iou", "nms", "remove_small_boxes", "sigmoid_focal_loss",
    "complete_box_iou", "complete_box_iou_loss",
]
