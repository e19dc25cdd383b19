"""The two-stage detector's skeleton (torchvision's ``models/detection/generalized_rcnn.py``):
transform -> backbone -> region proposal network -> RoI heads -> postprocess."""

from __future__ import annotations

from collections import OrderedDict

from minicnn import nn
from minicnn.autograd import Tensor
from minicnn.models.detection.ssd import as_image_list, check_detection_targets

__all__ = ["GeneralizedRCNN"]


class GeneralizedRCNN(nn.Module):
    """``backbone`` (an FPN: a dict of maps), ``rpn``, ``roi_heads`` and ``transform``.

    Train mode: ``model(images, targets)`` -> the dict of the RPN's and the heads' losses
    (sum them). Eval mode: ``model(images)`` -> per image ``{"boxes": (D, 4), "labels":
    (D,), "scores": (D,)}`` (and ``"masks": (D, 1, H, W)`` probabilities for Mask R-CNN) in
    the coordinates of the original images. ``images``: a list of ``(3, H_i, W_i)`` float
    Tensors in [0, 1] or an ``(N, 3, H, W)`` Tensor; ``targets``: one dict per image with
    ``boxes: (K, 4)`` float xyxy, ``labels: (K,)`` int64 in ``[1, num_classes)`` (and
    ``masks: (K, H, W)`` uint8); ``K = 0`` is allowed (an image of background).
    """

    def __init__(self, backbone: nn.Module, rpn: nn.Module, roi_heads: nn.Module,
                 transform: nn.Module) -> None:
        super().__init__()
        self.transform = transform
        self.backbone = backbone
        self.rpn = rpn
        self.roi_heads = roi_heads

    def _num_classes(self) -> int:
        """The classes (background included) of the box predictor, if it says."""
        cls_score = getattr(self.roi_heads.box_predictor, "cls_score", None)
        return int(getattr(cls_score, "out_features", 2**31 - 1))

    def forward(self, images, targets: list[dict] | None = None):
        name = type(self).__name__
        images = as_image_list(images, name)
        channels = len(self.transform.image_mean)
        for i, image in enumerate(images):
            if image.shape[0] != channels:
                raise ValueError(f"{name}: images[{i}] has {image.shape[0]} channels, expected "
                                 f"{channels} (one per image_mean entry), shape (C, H, W)")
        if self.training:
            if targets is None:
                raise ValueError(f"{name}: targets must be given in training mode "
                                 f"(model(images, targets)); call model.eval() for detections")
            check_detection_targets(targets, len(images), self._num_classes(), name)
        original_image_sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        image_list, targets = self.transform(images, targets if self.training else None)
        features = self.backbone(image_list.tensors)
        if isinstance(features, Tensor):
            features = OrderedDict([("0", features)])
        proposals, proposal_losses = self.rpn(image_list, features, targets)
        detections, detector_losses = self.roi_heads(features, proposals,
                                                     image_list.image_sizes, targets)
        if self.training:
            return {**detector_losses, **proposal_losses}
        return self.transform.postprocess(detections, image_list.image_sizes,
                                          original_image_sizes)
