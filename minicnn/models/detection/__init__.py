"""``minicnn.models.detection``: detection models with torchvision's calling convention.

In train mode ``model(images, targets)`` returns a dict of named loss Tensors; in eval
mode ``model(images)`` returns one dict per image with ``boxes`` ``(x1, y1, x2, y2)``,
``scores`` and ``labels``.
"""

from minicnn.models.detection.yolo import YoloV1, yolo_v1, yolo_v1_small

__all__ = ["YoloV1", "yolo_v1", "yolo_v1_small"]
