"""L3: detection operations with torchvision.ops' names, argument order and results.

Boxes are ``(x1, y1, x2, y2)``. ``nms`` runs the backend's kernel (reference, Numba or
CUDA by the boxes' device); the geometric functions and the focal loss are differentiable.
``roi_pool`` (Fast R-CNN) and ``roi_align`` (Mask R-CNN) crop a fixed-size feature of each
region, by backend kernels with their backward; ``MultiScaleRoIAlign`` picks each box's
level of a feature pyramid.
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
from minicnn.ops.feature_pyramid_network import (
    ExtraFPNBlock,
    FeaturePyramidNetwork,
    LastLevelMaxPool,
)
from minicnn.ops.focal_loss import sigmoid_focal_loss
from minicnn.ops.misc import FrozenBatchNorm2d
from minicnn.ops.poolers import MultiScaleRoIAlign
from minicnn.ops.roi_align import RoIAlign, roi_align
from minicnn.ops.roi_pool import RoIPool, roi_pool

__all__ = [
    "batched_nms", "box_area", "box_convert", "box_iou", "clip_boxes_to_image",
    "generalized_box_iou", "nms", "remove_small_boxes", "sigmoid_focal_loss",
    "ExtraFPNBlock", "FeaturePyramidNetwork", "FrozenBatchNorm2d", "LastLevelMaxPool",
    "MultiScaleRoIAlign", "RoIAlign", "RoIPool", "roi_align", "roi_pool",
    "complete_box_iou", "complete_box_iou_loss",
]
