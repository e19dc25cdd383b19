"""CPU-sized Faster R-CNN and Mask R-CNN for the course's 64 x 64 scenes.

The same two-stage detectors as :func:`~minicnn.models.detection.fasterrcnn_resnet50_fpn`
and :func:`~minicnn.models.detection.maskrcnn_resnet50_fpn` -- :class:`FasterRCNN` /
:class:`MaskRCNN` with an FPN backbone, an RPN, RoIAlign, the two-layer box head and the
mask branch -- with every part shrunk so that a CPU trains them in minutes on the
procedural ``shapes`` and ``digit_scenes`` scenes (objects of about 10 to 50 pixels in a 64
x 64 image). Only sizes change; the code path is the named models' own.

The backbone (:func:`small_rcnn_backbone`), a ResNet in miniature with torchvision's
``BasicBlock`` (two 3x3 convolutions and a shortcut) and an FPN on its three stages::

    layer            output (64 x 64 input)    parameters
    stem             16 x 32 x 32   stride 2        464   conv 3x3 s2 + BN + ReLU
    layer1           32 x 16 x 16   stride 4     14,528   BasicBlock s2 (1x1 s2 shortcut)
    layer2           64 x  8 x  8   stride 8     57,728   BasicBlock s2
    layer3          128 x  4 x  4   stride 16   230,144   BasicBlock s2
    fpn "0" "1" "2"  64 x 16/8/4                125,312   1x1 laterals, 3x3 outputs
    fpn "pool"       64 x  2 x  2   stride 32         0   max pool of "2" (LastLevelMaxPool)

The detector around it (``num_classes=5``: 4 shapes + the background)::

    rpn.head         3x3 conv 64 + objectness (3) + offsets (12)       37,903
                     anchors 12 / 24 / 48 / 96 pixels on "0" / "1" / "2" / "pool",
                     ratios 0.5, 1, 2
    box branch       RoIAlign 7x7 from "0".."2", fc6 3136 -> 256,     875,289
                     fc7 256 -> 256, 5 scores + 20 offsets
    mask branch      RoIAlign 14x14 from "0".."2", two 3x3 convs 64,   90,629
                     2x2 s2 transposed conv 64, 1x1 conv to 5 masks of 28 x 28

:func:`fasterrcnn_small` has 1,341,368 parameters and :func:`maskrcnn_small` 1,431,997
for ``num_classes=5`` (1,349,078 and 1,440,097 for ``digit_scenes``' 11).

The images are not resized (``min_size = max_size = 64``, the scenes' size); the RPN
keeps 300 / 150 proposals before NMS and 100 / 50 after (training / testing), samples 64
anchors and 64 proposals per image (torchvision: 256 and 512), and the heads keep at most
20 detections per image.
"""

from __future__ import annotations

from collections import OrderedDict

from minicnn import nn
from minicnn.models.detection.anchor_utils import AnchorGenerator
from minicnn.models.detection.backbone_utils import BackboneWithFPN
from minicnn.models.detection.faster_rcnn import FasterRCNN, FastRCNNPredictor, TwoMLPHead
from minicnn.models.detection.mask_rcnn import MaskRCNN
from minicnn.models.detection.roi_heads import MaskRCNNHeads, MaskRCNNPredictor
from minicnn.models.resnet import BasicBlock, conv1x1
from minicnn.ops import MultiScaleRoIAlign

__all__ = ["fasterrcnn_small", "maskrcnn_small", "small_rcnn_backbone"]

SMALL_WIDTHS = (16, 32, 64, 128)  # the stem's and the three stages' channels
FPN_CHANNELS = 64
REPRESENTATION_SIZE = 256  # the box head's fc6 / fc7 width
MASK_LAYERS = (64, 64)  # the mask head's 3x3 convolutions
ANCHOR_SIZES = ((12,), (24,), (48,), (96,))  # one size per level: "0", "1", "2", "pool"
# the detector's sizes for 64 x 64 scenes, passed to FasterRCNN (torchvision's defaults in
# brackets): no resizing (800 / 1333), fewer proposals (2000 / 1000 before and after NMS),
# smaller samples (256 anchors, 512 proposals per image), fewer detections (100)
SMALL_DEFAULTS = dict(
    min_size=64, max_size=64,
    rpn_pre_nms_top_n_train=300, rpn_pre_nms_top_n_test=150,
    rpn_post_nms_top_n_train=100, rpn_post_nms_top_n_test=50,
    rpn_batch_size_per_image=64, box_batch_size_per_image=64, box_detections_per_img=20,
)


def _stage(inplanes: int, planes: int) -> nn.Sequential:
    """One BasicBlock of stride 2 with a 1x1 stride-2 convolution + BN as its shortcut."""
    downsample = nn.Sequential(conv1x1(inplanes, planes, 2), nn.BatchNorm2d(planes))
    return nn.Sequential(BasicBlock(inplanes, planes, 2, downsample))


def small_rcnn_backbone(widths: tuple[int, int, int, int] = SMALL_WIDTHS,
                        out_channels: int = FPN_CHANNELS) -> BackboneWithFPN:
    """The small ResNet (a 3x3 stride-2 stem, three stride-2 BasicBlock stages) with an FPN of
    ``out_channels`` on the stages' outputs (strides 4, 8, 16) and ``"pool"`` (stride 32):
    ``(N, 3, H, W) ->`` ``{"0", "1", "2", "pool"}`` maps of ``out_channels``. The
    network's children are ``stem``, ``layer1``..``layer3`` (state dict keys under
    ``body.``), as a ResNet's; BatchNorm trains (nothing is frozen: no pretrained weights).
    """
    c0, c1, c2, c3 = widths
    body = nn.Sequential(OrderedDict([
        ("stem", nn.Sequential(nn.Conv2d(3, c0, 3, stride=2, padding=1, bias=False),
                               nn.BatchNorm2d(c0), nn.ReLU(inplace=True))),
        ("layer1", _stage(c0, c1)),
        ("layer2", _stage(c1, c2)),
        ("layer3", _stage(c2, c3)),
    ]))
    return BackboneWithFPN(body, {"layer1": "0", "layer2": "1", "layer3": "2"},
                           [c1, c2, c3], out_channels)


def _small_box_parts(out_channels: int, num_classes: int) -> dict:
    """The anchors, the box pooler, head and predictor of the small detectors."""
    return dict(
        rpn_anchor_generator=AnchorGenerator(ANCHOR_SIZES, ((0.5, 1.0, 2.0),) * len(ANCHOR_SIZES)),
        box_roi_pool=MultiScaleRoIAlign(["0", "1", "2"], output_size=7, sampling_ratio=2),
        box_head=TwoMLPHead(out_channels * 7 * 7, REPRESENTATION_SIZE),
        box_predictor=FastRCNNPredictor(REPRESENTATION_SIZE, num_classes),
    )


def _check_num_classes(name: str, num_classes) -> None:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise ValueError(f"{name}: num_classes must be an int >= 2 (object classes + the "
                         f"background), got {num_classes!r}")


def fasterrcnn_small(*, num_classes: int = 5, **kwargs) -> FasterRCNN:
    """The CPU-sized Faster R-CNN of the module docstring: 1,341,368 parameters for
    ``num_classes=5`` (object classes + the background). ``kwargs`` override the sizes
    of :data:`SMALL_DEFAULTS` and go to :class:`FasterRCNN` (``box_score_thresh``, ...)."""
    _check_num_classes("fasterrcnn_small", num_classes)
    backbone = small_rcnn_backbone()
    parts = _small_box_parts(backbone.out_channels, num_classes)
    return FasterRCNN(backbone, None, **{**SMALL_DEFAULTS, **parts, **kwargs})


def maskrcnn_small(*, num_classes: int = 5, **kwargs) -> MaskRCNN:
    """The CPU-sized Mask R-CNN of the module docstring: 1,431,997 parameters for
    ``num_classes=5``; :func:`fasterrcnn_small` plus a mask branch of two 64-channel 3x3
    convolutions on 14 x 14 RoIAlign features and 28 x 28 masks. ``kwargs`` as
    :func:`fasterrcnn_small`'s, going to :class:`MaskRCNN`."""
    _check_num_classes("maskrcnn_small", num_classes)
    backbone = small_rcnn_backbone()
    parts = _small_box_parts(backbone.out_channels, num_classes)
    parts.update(
        mask_roi_pool=MultiScaleRoIAlign(["0", "1", "2"], output_size=14, sampling_ratio=2),
        mask_head=MaskRCNNHeads(backbone.out_channels, MASK_LAYERS, 1),
        mask_predictor=MaskRCNNPredictor(MASK_LAYERS[-1], MASK_LAYERS[-1], num_classes),
    )
    return MaskRCNN(backbone, None, **{**SMALL_DEFAULTS, **parts, **kwargs})
