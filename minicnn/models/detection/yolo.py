"""YOLO v1: one network looks once at the whole image and predicts an S x S grid of boxes.

Redmon, Divvala, Girshick & Farhadi 2016, "You Only Look Once: Unified, Real-Time Object
Detection" (CVPR). The image is divided into ``S x S`` cells; each cell predicts ``B`` boxes
``(x, y, w, h, confidence)`` and ``C`` class probabilities, an ``S x S x (B*5 + C)`` tensor:
7 x 7 x 30 for ``S = 7, B = 2, C = 20`` (PASCAL VOC). The course's later variant gives each
box its own class scores: ``S x S x B*(5 + C)`` = 7 x 7 x 50 (``class_per_box=True``).

The paper's network (Figure 3; input 448 x 448, every convolution padded to keep its size,
leaky ReLU with slope 0.1 after every layer but the last, which is linear)::

    7x7x64-s2, maxpool 2x2-s2                                        448 -> 224 -> 112
    3x3x192, maxpool                                                 112 -> 56
    1x1x128, 3x3x256, 1x1x256, 3x3x512, maxpool                      56 -> 28
    4 x {1x1x256, 3x3x512}, 1x1x512, 3x3x1024, maxpool               28 -> 14
    2 x {1x1x512, 3x3x1024}, 3x3x1024, 3x3x1024-s2                   14 -> 7
    3x3x1024, 3x3x1024                                               7
    FC 7*7*1024 -> 4096, leaky ReLU, dropout 0.5, FC 4096 -> 7*7*30

24 convolutions and 2 fully connected layers: ``yolo_v1()`` has 271,703,550 parameters
(counted from the table above, weights and biases: 60,155,968 in the convolutions,
205,524,992 in the first and 6,022,590 in the second fully connected layer; the paper gives
no total). ``class_per_box=True`` (7 x 7 x 50): 275,718,610. The first fully
connected layer's input is 1024 * (image_size / 64)^2, so a smaller ``image_size`` gives a
smaller network with the same 7 x 7 output (the tests use 64 x 64).

``yolo_v1_small`` keeps the idea (a grid of cells, B boxes each, the same loss and decoding)
on a CPU-sized, batch-normalized backbone (stride 8) ending in a 1x1 convolution instead of
the fully connected layers; it is the default detector of ``minicnn train --task detect``.

Calling convention (torchvision's): in train mode ``model(images, targets)`` returns the loss
terms ``{"coord", "size", "object", "no_object", "class"}`` (sum them for the total; see
``yolo_loss``); in eval mode ``model(images)`` returns one dict per image with ``boxes: (D, 4)``
``(x1, y1, x2, y2)`` in pixels, ``scores: (D,)`` and ``labels: (D,)`` in 1..C. ``images`` is an
``(N, 3, H, W)`` Tensor or a list of ``(3, H, W)`` Tensors, ``H = W = image_size``. Labels of
targets are 1..C (torchvision's convention, 0 being background); class ``l`` is the
network's class index ``l - 1``, so ``num_classes = C`` as in the paper (20 for VOC).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minicnn import nn
from minicnn.autograd import Tensor, no_grad
from minicnn.backend import backend_of
from minicnn.models.detection._utils import batch_images, check_box_targets, select_detections
from minicnn.models.detection.yolo_loss import (
    CLASS_LOSSES,
    LAMBDA_COORD,
    LAMBDA_NOOBJ,
    encode_targets,
    split_outputs,
    yolo_loss_terms,
)

__all__ = ["YOLO_V1_CONFIGS", "Conv", "YoloV1", "grid_depth", "yolo_v1", "yolo_v1_small"]


# ---------------------------------------------------------------- the table, as data


class Conv(NamedTuple):
    """A ``kernel x kernel`` convolution to ``out_channels``, padded to keep the size."""

    out_channels: int
    kernel: int
    stride: int = 1


POOL = "M"  # max pool 2x2, stride 2

YOLO_V1_CONFIGS: dict[str, list] = {
    # Figure 3 of the paper, left to right
    "yolo_v1": [
        Conv(64, 7, 2), POOL,
        Conv(192, 3), POOL,
        Conv(128, 1), Conv(256, 3), Conv(256, 1), Conv(512, 3), POOL,
        *[Conv(256, 1), Conv(512, 3)] * 4, Conv(512, 1), Conv(1024, 3), POOL,
        *[Conv(512, 1), Conv(1024, 3)] * 2, Conv(1024, 3), Conv(1024, 3, 2),
        Conv(1024, 3), Conv(1024, 3),
    ],
    # small: total stride 8 (64 x 64 -> 8 x 8 cells of 8 pixels); widths times `width`
    "yolo_v1_small": [
        Conv(16, 3), POOL, Conv(32, 3), POOL, Conv(64, 3), POOL,
        Conv(128, 3), Conv(64, 1), Conv(128, 3),
    ],
}

LEAKY_SLOPE = 0.1  # Section 2.2
SCORE_THRESH = 0.3  # the course's threshold on p_object * class probability
NMS_THRESH = 0.5


def make_backbone(cfg: list, in_channels: int = 3, batch_norm: bool = False,
                  width: float = 1.0) -> nn.Sequential:
    """Each ``Conv`` gives Conv2d (+ BatchNorm2d) + LeakyReLU(0.1); ``POOL`` a 2x2 max pool.

    ``width`` multiplies every channel count (the small model's knob).
    """
    layers: list[nn.Module] = []
    for item in cfg:
        if item == POOL:
            layers.append(nn.MaxPool2d(2, 2))
            continue
        out = max(1, round(item.out_channels * width))
        layers.append(nn.Conv2d(in_channels, out, item.kernel, item.stride, item.kernel // 2,
                                bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out))
        layers.append(nn.LeakyReLU(LEAKY_SLOPE))
        in_channels = out
    return nn.Sequential(*layers)


def grid_depth(num_boxes: int, num_classes: int, class_per_box: bool) -> int:
    """D, the numbers per cell: ``B*5 + C``, or ``B*(5 + C)`` with class scores per box."""
    return num_boxes * (5 + num_classes) if class_per_box else num_boxes * 5 + num_classes


def _stride(cfg: list) -> int:
    stride = 1
    for item in cfg:
        stride *= 2 if item == POOL else item.stride
    return stride


# ---------------------------------------------------------------- the network


class YoloV1(nn.Module):
    """YOLO v1: ``backbone`` (convolutions) and ``head`` (to the ``S x S x D`` grid).

    ``grid_outputs(x)``: ``(N, 3, image_size, image_size) -> (N, S, S, D)`` raw outputs,
    ``D = B*5 + C`` or ``B*(5 + C)`` (``class_per_box``); ``forward`` as torchvision's
    detection models (module docstring). ``score_thresh`` (0.3) and ``nms_thresh`` (0.5):
    the decoding's threshold on ``p_object * p(class)`` and NMS's IoU threshold;
    ``detections_per_img`` the most boxes returned per image. 0.3 is the threshold for
    showing boxes; to measure mAP, lower it (``model.score_thresh = 0.01``, as torchvision's
    detectors do): boxes scoring below 0.3 can still be hits. ``rescore=True``: the
    responsible box's target confidence is its IoU with the ground truth (paper), else 1.
    ``class_loss``: the class term, ``"mse"`` (the deck's squared error) or ``"ce"``
    (cross-entropy; see ``yolo_loss``).
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, num_classes: int, num_boxes: int,
                 grid_size: int, image_size: int, class_per_box: bool = False,
                 score_thresh: float = SCORE_THRESH, nms_thresh: float = NMS_THRESH,
                 detections_per_img: int = 100, lambda_coord: float = LAMBDA_COORD,
                 lambda_noobj: float = LAMBDA_NOOBJ, rescore: bool = True,
                 class_loss: str = "mse", name: str = "yolo_v1"):
        super().__init__()
        for arg, value in (("num_classes", num_classes), ("num_boxes", num_boxes),
                           ("grid_size", grid_size), ("image_size", image_size),
                           ("detections_per_img", detections_per_img)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}: {arg} must be a positive integer, got {value!r}")
        for arg, value in (("score_thresh", score_thresh), ("nms_thresh", nms_thresh)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name}: {arg} must be in [0, 1], got {value!r}")
        if class_loss not in CLASS_LOSSES:
            raise ValueError(f"{name}: class_loss must be one of {CLASS_LOSSES}, "
                             f"got {class_loss!r}")
        self.backbone, self.head = backbone, head
        self.num_classes, self.num_boxes, self.grid_size = num_classes, num_boxes, grid_size
        self.image_size, self.class_per_box, self.name = image_size, class_per_box, name
        self.score_thresh, self.nms_thresh = score_thresh, nms_thresh
        self.detections_per_img = detections_per_img
        self.lambda_coord, self.lambda_noobj, self.rescore = lambda_coord, lambda_noobj, rescore
        self.class_loss = class_loss

    @property
    def out_channels(self) -> int:
        """D, the numbers each cell predicts."""
        return grid_depth(self.num_boxes, self.num_classes, self.class_per_box)

    def grid_outputs(self, x: Tensor) -> Tensor:
        """``x: (N, 3, image_size, image_size) -> (N, S, S, D)``, the raw (unsquashed) grid."""
        self._check_images(x)
        y = self.head(self.backbone(x))
        s = self.grid_size
        if y.ndim == 2:  # fully connected head: (N, S*S*D)
            return y.reshape(y.shape[0], s, s, self.out_channels)
        return y.permute(0, 2, 3, 1)  # convolutional head: (N, D, S, S)

    def forward(self, images, targets: list[dict] | None = None):
        x = batch_images(self.name, images)
        if self.training:
            if targets is None:
                raise ValueError(f"{self.name}: in training mode targets must be given "
                                 f"(call model.eval() to detect)")
            check_box_targets(self.name, targets, x.shape[0], self.num_classes)
            return self.loss(self.grid_outputs(x), targets)
        with no_grad():
            return self.postprocess(self.grid_outputs(x))

    def loss(self, grid: Tensor, targets: list[dict]) -> dict[str, Tensor]:
        """The five loss terms of ``grid: (N, S, S, D)`` against ``targets`` (see yolo_loss)."""
        outputs = split_outputs(grid, self.num_boxes, self.num_classes, self.class_per_box)
        encoded = encode_targets(outputs, targets, (self.image_size, self.image_size),
                                 self.rescore)
        return yolo_loss_terms(outputs, encoded, self.lambda_coord, self.lambda_noobj,
                               self.class_loss)

    def postprocess(self, grid: Tensor) -> list[dict[str, Tensor]]:
        """Boxes in pixels from ``grid: (N, S, S, D)``.

        Every predictor's box gets the class-specific score ``confidence * p(class)`` for each
        class; scores above ``score_thresh`` survive, NMS at ``nms_thresh`` runs within each
        class (``batched_nms``), and the ``detections_per_img`` best are returned.
        """
        out = split_outputs(grid, self.num_boxes, self.num_classes, self.class_per_box)
        xp = backend_of(grid.array).xp
        xy, sqrt_wh = out.xy.array, out.sqrt_wh.array
        n, s, _, b, _ = xy.shape
        size = self.image_size
        offsets = xp.stack(xp.meshgrid(xp.arange(s), xp.arange(s), indexing="xy"), -1)
        centre = (xy + offsets[None, :, :, None, :].astype(xy.dtype)) * (size / s)
        half = sqrt_wh ** 2 * (size / 2)
        boxes = xp.clip(xp.concatenate([centre - half, centre + half], -1), 0, size)
        probs = out.class_probs.array
        if probs.ndim == 4:  # one set per cell, shared by its boxes
            probs = probs[:, :, :, None, :]
        scores = out.confidence.array[..., None] * probs  # (N, S, S, B, C)
        results = []
        for i in range(n):
            box_i = boxes[i].reshape(-1, 4)
            score_i = scores[i].reshape(-1, self.num_classes)
            results.append(select_detections(box_i, score_i, self.score_thresh,
                                             self.nms_thresh, self.detections_per_img))
        return results

    # ------------------------------------------------------------ input checks

    def _check_images(self, x: Tensor) -> None:
        s = self.image_size
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != s or x.shape[3] != s:
            raise ValueError(f"{self.name}: images must be (N, 3, {s}, {s}) (image_size={s}), "
                             f"got {tuple(x.shape)}")



# ---------------------------------------------------------------- named variants


def yolo_v1(num_classes: int = 20, num_boxes: int = 2, class_per_box: bool = False,
            image_size: int = 448, grid_size: int = 7, dropout: float = 0.5,
            **kwargs) -> YoloV1:
    """The paper's network (Figure 3): 24 convolutions, FC 4096, dropout, FC S*S*D.

    ``(N, 3, 448, 448) -> 7 x 7 x 30`` for the defaults (``class_per_box=True``: 7 x 7 x 50);
    271,703,550 parameters at 448 x 448 (the module docstring counts them). ``image_size``
    must be a multiple of 64 (the backbone's stride); ``kwargs`` go to :class:`YoloV1`
    (``score_thresh``, ``nms_thresh``, ``detections_per_img``, ``rescore``, ...).
    """
    cfg = YOLO_V1_CONFIGS["yolo_v1"]
    stride = _stride(cfg)
    if image_size % stride:
        raise ValueError(f"yolo_v1: image_size must be a multiple of {stride}, got {image_size}")
    head_in = 1024 * (image_size // stride) ** 2
    d = grid_depth(num_boxes, num_classes, class_per_box)
    head = nn.Sequential(nn.Flatten(), nn.Linear(head_in, 4096), nn.LeakyReLU(LEAKY_SLOPE),
                         nn.Dropout(dropout), nn.Linear(4096, grid_size * grid_size * d))
    return YoloV1(make_backbone(cfg), head, num_classes, num_boxes, grid_size, image_size,
                  class_per_box, name="yolo_v1", **kwargs)


def yolo_v1_small(num_classes: int = 10, image_size: int = 64, grid_size: int | None = None,
                  num_boxes: int = 2, class_per_box: bool = False, width: float = 1.0,
                  confidence_bias: float = 0.0, **kwargs) -> YoloV1:
    """A CPU-sized YOLO v1 for small scenes (``digit_scenes``: handwritten digits of 16-24
    pixels on 64 x 64 canvases).

    Six 3x3/1x1 convolutions with batch norm and leaky ReLU (16-32-64-128-64-128 channels
    times ``width``), three 2x2 max pools (stride 8), and a 1x1 convolution to ``D`` numbers
    per cell. ``grid_size`` defaults to ``image_size // 8`` (64 -> 8 x 8 cells of 8 pixels,
    so that two digits rarely share a cell); another grid size resamples the last map with
    adaptive average pooling. ``(N, 3, image_size, image_size) -> (N, S, S, D)`` grid; the
    same loss and decoding as :func:`yolo_v1`; ``kwargs`` go to :class:`YoloV1`.

    ``confidence_bias``: the initial bias of the confidence outputs (before the sigmoid).
    0 starts every box at confidence 0.5, and the no-object term of the ~99% empty boxes
    dominates the first updates; a negative value (-4: confidence 0.018) starts near the
    truth for empty boxes, as RetinaNet's prior does for its classifier.
    """
    cfg = YOLO_V1_CONFIGS["yolo_v1_small"]
    stride = _stride(cfg)
    if image_size < stride:
        raise ValueError(f"yolo_v1_small: image_size must be at least {stride}, got {image_size}")
    grid = image_size // stride if grid_size is None else grid_size
    backbone = make_backbone(cfg, batch_norm=True, width=width)
    channels = [m for m in backbone.modules() if isinstance(m, nn.Conv2d)][-1].out_channels
    d = grid_depth(num_boxes, num_classes, class_per_box)
    layers: list[nn.Module] = []
    if grid * stride != image_size:
        layers.append(nn.AdaptiveAvgPool2d(grid))
    layers.append(nn.Conv2d(channels, d, 1))
    if confidence_bias:
        step = 5 + num_classes if class_per_box else 5  # box j's numbers start at j * step
        with no_grad():
            layers[-1].bias.array[4::step][:num_boxes] = confidence_bias
    return YoloV1(backbone, nn.Sequential(*layers), num_classes, num_boxes, grid, image_size,
                  class_per_box, name="yolo_v1_small", **kwargs)
