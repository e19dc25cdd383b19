"""``minicnn.models.detection``: detection models with torchvision's calling convention.

In train mode ``model(images, targets)`` returns a dict of named loss Tensors; in eval
mode ``model(images)`` returns one dict per image with ``boxes`` ``(x1, y1, x2, y2)``,
``scores`` and ``labels``.
"""

# SSD (ssd.py, ssdlite.py), Faster R-CNN (rpn.py, ...) and their parts (_utils.py,
# anchor_utils.py, transform.py)
from minicnn.models.detection._utils import (
    BalancedPositiveNegativeSampler,
    BoxCoder,
    Matcher,
    SSDMatcher,
)
from minicnn.models.detection.anchor_utils import AnchorGenerator, DefaultBoxGenerator
from minicnn.models.detection.faster_rcnn import (
    FasterRCNN,
    fasterrcnn_mobilenet_v3_large_fpn,
    fasterrcnn_resnet50_fpn,
)
from minicnn.models.detection.generalized_rcnn import GeneralizedRCNN
from minicnn.models.detection.image_list import ImageList
from minicnn.models.detection.mask_rcnn import MaskRCNN, maskrcnn_resnet50_fpn
from minicnn.models.detection.roi_heads import RoIHeads
from minicnn.models.detection.rpn import RegionProposalNetwork, RPNHead
from minicnn.models.detection.ssd import SSD, SSDHead, ssd300_vgg16
from minicnn.models.detection.ssdlite import SSDLiteHead, ssdlite320_mobilenet_v3_large
from minicnn.models.detection.transform import GeneralizedRCNNTransform

# YOLO v1 (yolo.py, yolo_loss.py)
from minicnn.models.detection.yolo import YoloV1, yolo_v1, yolo_v1_small

__all__ = ["YoloV1", "yolo_v1", "yolo_v1_small"]
__all__ += ["BoxCoder", "DefaultBoxGenerator", "GeneralizedRCNNTransform", "ImageList",
            "Matcher", "SSD", "SSDHead", "SSDLiteHead", "SSDMatcher", "ssd300_vgg16",
            "ssdlite320_mobilenet_v3_large"]
__all__ += ["AnchorGenerator", "BalancedPositiveNegativeSampler", "FasterRCNN",
            "GeneralizedRCNN", "MaskRCNN", "RegionProposalNetwork", "RoIHeads", "RPNHead",
            "fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_resnet50_fpn",
            "maskrcnn_resnet50_fpn"]

# YOLOv5 (yolov5.py, yolov5_loss.py)
from minicnn.models.detection.yolov5 import (  # noqa: E402
    YOLOv5,
    yolov5l,
    yolov5m,
    yolov5n,
    yolov5s,
    yolov5x,
)

__all__ += ["YOLOv5", "yolov5n", "yolov5s", "yolov5m", "yolov5l", "yolov5x"]

# R-CNN and Fast R-CNN (rcnn.py): the deck's two steps before Faster R-CNN
from minicnn.models.detection.rcnn import (  # noqa: E402
    RCNN,
    FastRCNN,
    make_proposals,
    proposal_targets,
    rcnn_box_head,
    warp_proposals,
)

__all__ += ["RCNN", "FastRCNN", "make_proposals", "proposal_targets", "rcnn_box_head",
            "warp_proposals"]

# CPU-sized Faster / Mask R-CNN for the 64 x 64 scenes (small_rcnn.py)
from minicnn.models.detection.small_rcnn import fasterrcnn_small, maskrcnn_small  # noqa: E402

__all__ += ["fasterrcnn_small", "maskrcnn_small"]
