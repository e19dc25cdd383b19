"""L5: evaluation metrics with torchmetrics' names and interfaces.

``MeanAveragePrecision``: COCO mean average precision and recall for boxes or instance
masks, equal to pycocotools' ``COCOeval``.
"""

from minicnn.metrics.mean_ap import MeanAveragePrecision

__all__ = ["MeanAveragePrecision"]
