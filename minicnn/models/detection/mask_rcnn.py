"""Mask R-CNN: He et al. 2017, "Mask R-CNN" (arXiv:1703.06870), built as torchvision builds
it (``models/detection/mask_rcnn.py``).

Faster R-CNN plus a mask per detected box: a branch parallel to the box head pools each
box with RoIAlign (14 x 14), four 3x3 convolutions and a 2x transposed convolution predict
a 28 x 28 mask per class, and only the predicted class's mask is used (the class
competition stays in the box head). ``maskrcnn_resnet50_fpn``: 44,401,393 parameters for
91 classes. In eval mode each detection dict also holds ``masks: (D, 1, H, W)``: mask
probabilities pasted into the original image (threshold them at 0.5 for binary masks).
"""

from __future__ import annotations

import os

from minicnn import nn
from minicnn.models.detection.backbone_utils import resnet_fpn_extractor
from minicnn.models.detection.faster_rcnn import (
    FasterRCNN,
    backbone_setup,
    load_detection_weights,
)
from minicnn.models.detection.roi_heads import MaskRCNNHeads, MaskRCNNPredictor
from minicnn.models.resnet import resnet50
from minicnn.ops import MultiScaleRoIAlign

__all__ = ["MaskRCNN", "maskrcnn_resnet50_fpn"]


class MaskRCNN(FasterRCNN):
    """:class:`FasterRCNN` with a mask branch; its arguments, plus:

    Args:
        mask_roi_pool: default ``MultiScaleRoIAlign(["0", "1", "2", "3"], 14, 2)``.
        mask_head: default :class:`MaskRCNNHeads` with four 256-channel convolutions.
        mask_predictor: default :class:`MaskRCNNPredictor` (256 -> ``num_classes`` masks).

    Training targets also need ``masks: (K, H, W)`` uint8 per image; the loss dict adds
    ``loss_mask``.
    """

    def __init__(self, backbone: nn.Module, num_classes: int | None = None,
                 *args, mask_roi_pool: MultiScaleRoIAlign | None = None,
                 mask_head: nn.Module | None = None, mask_predictor: nn.Module | None = None,
                 **kwargs) -> None:
        if not isinstance(mask_roi_pool, (MultiScaleRoIAlign, type(None))):
            raise TypeError(f"MaskRCNN: mask_roi_pool must be a MultiScaleRoIAlign or None, got "
                            f"{type(mask_roi_pool).__name__}")
        if num_classes is not None and mask_predictor is not None:
            raise ValueError("MaskRCNN: num_classes must be None when mask_predictor is given")
        out_channels = getattr(backbone, "out_channels", None)
        super().__init__(backbone, num_classes, *args, **kwargs)
        if mask_roi_pool is None:
            mask_roi_pool = MultiScaleRoIAlign(featmap_names=["0", "1", "2", "3"],
                                               output_size=14, sampling_ratio=2)
        if mask_head is None:
            mask_head = MaskRCNNHeads(out_channels, (256, 256, 256, 256), 1)
        if mask_predictor is None:
            mask_predictor = MaskRCNNPredictor(256, 256, num_classes)
        self.roi_heads.mask_roi_pool = mask_roi_pool
        self.roi_heads.mask_head = mask_head
        self.roi_heads.mask_predictor = mask_predictor


def maskrcnn_resnet50_fpn(*, weights: str | os.PathLike | None = None, progress: bool = True,
                          num_classes: int | None = None,
                          weights_backbone: str | os.PathLike | None = None,
                          trainable_backbone_layers: int | None = None, **kwargs) -> MaskRCNN:
    """Mask R-CNN with a ResNet-50 FPN backbone, as torchvision's: 44,401,393 parameters for
    91 classes. Arguments as
    :func:`~minicnn.models.detection.faster_rcnn.fasterrcnn_resnet50_fpn` (``weights``: a
    whole-model state dict file, e.g. exported from torchvision's
    ``maskrcnn_resnet50_fpn``); ``kwargs`` go to :class:`MaskRCNN`."""
    weights_backbone, num_classes, layers, norm_layer = backbone_setup(
        weights, weights_backbone, num_classes, trainable_backbone_layers, 5, 3)
    backbone = resnet50(norm_layer=norm_layer)
    if weights_backbone is not None:
        load_detection_weights(backbone, weights_backbone)
    model = MaskRCNN(resnet_fpn_extractor(backbone, layers), num_classes=num_classes, **kwargs)
    if weights is not None:
        load_detection_weights(model, weights)
    return model
