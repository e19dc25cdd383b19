"""YOLOv5 n/s/m/l/x: one configuration table, scaled in depth and width.

Ultralytics YOLOv5, release v4.0 (January 2021; the P5 models are unchanged in v5.0), the
release whose README gives the deck's table (COCO, 80 classes, input 640 x 640)::

    model     depth  width   params (M)   GFLOPs @640      minicnn (this file, computed)
    YOLOv5s   0.33   0.50        7.3          17.0          7.28 M   17.0 G
    YOLOv5m   0.67   0.75       21.4          51.3         21.38 M   51.2 G
    YOLOv5l   1.00   1.00       47.0         115.4         47.06 M  115.3 G
    YOLOv5x   1.33   1.25       87.7         218.8         87.78 M  218.6 G

(``yolov5n``, depth 0.33 and width 0.25, came with v6.0; here it is the same v4.0 network at
that width: 1.88 M parameters, 4.6 GFLOPs. The release's GFLOPs are 2 x multiply-adds of the
convolutions.) The table below is the release's ``models/yolov5s.yaml``: each row is ``(from,
number, module, args)`` -- the layer takes the output of layer ``from`` (-1: the one before;
a list: those layers, concatenated), repeats its block ``number`` times, and ``args`` start
with its output channels. A variant scales every ``number > 1`` by ``depth_multiple``
(rounded, at least 1) and every channel count by ``width_multiple`` (rounded up to a multiple
of 8). The blocks, each a small class below:

* ``Conv``: Conv2d (no bias) + BatchNorm2d (eps 1e-3, momentum 0.03) + SiLU.
* ``Focus``: the stem; space-to-depth (every 2 x 2 pixel block becomes 4 channels:
  ``(N, 3, H, W) -> (N, 12, H/2, W/2)``) then a 3x3 Conv.
* ``C3``: the CSP bottleneck with 3 convolutions: one 1x1 branch through ``n`` Bottlenecks
  (1x1 then 3x3, with a residual in the backbone), one plain 1x1 branch, concatenated and
  mixed by a third 1x1.
* ``SPP``: spatial pyramid pooling: 1x1, max pools 5/9/13 (stride 1) concatenated with
  their input, 1x1.
* The PANet neck (layers 10-23): top-down (1x1, nearest 2x upsampling, concatenation with
  the backbone's P4 then P3) and bottom-up (3x3 stride 2, concatenation with the neck's
  own P4 and P5 maps).
* ``Detect``: a 1x1 convolution per level (strides 8, 16, 32) to ``3 x (5 + C)`` numbers:
  three anchors per level (the release's COCO anchors below, in pixels), each
  ``(x, y, w, h, objectness, C class scores)``.

Decoding (the release's): with ``s = sigmoid(output)``, a cell ``(i, j)``, the level's
stride and the anchor's ``(a_w, a_h)``::

    x = (2 s_x - 0.5 + i) * stride        w = (2 s_w)^2 * a_w    (0 to 4 times the anchor)
    y = (2 s_y - 0.5 + j) * stride        h = (2 s_h)^2 * a_h

score = objectness x class probability (both sigmoids); boxes above ``score_thresh`` (the
release's detect.py: 0.25) go through NMS per class (``batched_nms``, IoU 0.45), at most
``detections_per_img`` (300) per image. The loss is in ``yolov5_loss``.

Calling convention (torchvision's): ``images`` an ``(N, 3, H, W)`` Tensor or a list of
``(3, H, W)`` Tensors, ``H`` and ``W`` multiples of 32; in train mode ``model(images,
targets)`` returns ``{"loss_box", "loss_obj", "loss_cls"}`` (sum them for the total); in eval
mode ``model(images)`` returns one dict per image with ``boxes (D, 4)`` ``(x1, y1, x2, y2)`` in
pixels, ``scores (D,)`` and ``labels (D,)`` in 1..C (``num_classes = C``, no background class,
as the release; label ``l`` is the network's class ``l - 1``).
"""

from __future__ import annotations

import math

import numpy as np

from minicnn import nn
from minicnn.autograd import Tensor, no_grad
from minicnn.autograd.ops import cat, sigmoid
from minicnn.backend import backend_of
from minicnn.models.detection._utils import batch_images, check_box_targets, select_detections
from minicnn.models.detection.yolov5_loss import (
    ANCHOR_T,
    BALANCE,
    BOX_GAIN,
    CLS_GAIN,
    OBJ_GAIN,
    targets_to_array,
    yolov5_loss,
)

__all__ = ["ANCHORS", "BACKBONE", "HEAD", "SCALES", "STRIDES", "YOLOv5", "yolov5", "yolov5l",
           "yolov5m", "yolov5n", "yolov5s", "yolov5x"]

# ---------------------------------------------------------------- the table, as data

# (from, number, module, args): models/yolov5s.yaml of release v4.0, at depth = width = 1
BACKBONE = [
    (-1, 1, "Focus", [64, 3]),             # 0  P1/2
    (-1, 1, "Conv", [128, 3, 2]),          # 1  P2/4
    (-1, 3, "C3", [128]),                  # 2
    (-1, 1, "Conv", [256, 3, 2]),          # 3  P3/8
    (-1, 9, "C3", [256]),                  # 4
    (-1, 1, "Conv", [512, 3, 2]),          # 5  P4/16
    (-1, 9, "C3", [512]),                  # 6
    (-1, 1, "Conv", [1024, 3, 2]),         # 7  P5/32
    (-1, 1, "SPP", [1024, [5, 9, 13]]),    # 8
    (-1, 3, "C3", [1024, False]),          # 9
]
HEAD = [
    (-1, 1, "Conv", [512, 1, 1]),          # 10
    (-1, 1, "Upsample", []),               # 11
    ([-1, 6], 1, "Concat", []),            # 12 cat backbone P4
    (-1, 3, "C3", [512, False]),           # 13
    (-1, 1, "Conv", [256, 1, 1]),          # 14
    (-1, 1, "Upsample", []),               # 15
    ([-1, 4], 1, "Concat", []),            # 16 cat backbone P3
    (-1, 3, "C3", [256, False]),           # 17 (P3/8-small)
    (-1, 1, "Conv", [256, 3, 2]),          # 18
    ([-1, 14], 1, "Concat", []),           # 19 cat head P4
    (-1, 3, "C3", [512, False]),           # 20 (P4/16-medium)
    (-1, 1, "Conv", [512, 3, 2]),          # 21
    ([-1, 10], 1, "Concat", []),           # 22 cat head P5
    (-1, 3, "C3", [1024, False]),          # 23 (P5/32-large)
    ([17, 20, 23], 1, "Detect", []),       # 24 Detect(P3, P4, P5)
]
# (depth_multiple, width_multiple) of each variant
SCALES = {"n": (0.33, 0.25), "s": (0.33, 0.50), "m": (0.67, 0.75), "l": (1.0, 1.0),
          "x": (1.33, 1.25)}
# the COCO anchors (width, height in pixels), three per level
ANCHORS = [
    [(10, 13), (16, 30), (33, 23)],        # P3/8
    [(30, 61), (62, 45), (59, 119)],       # P4/16
    [(116, 90), (156, 198), (373, 326)],   # P5/32
]
STRIDES = (8, 16, 32)
BN_EPS, BN_MOMENTUM = 1e-3, 0.03
SCORE_THRESH = 0.25  # the release's detect.py
NMS_THRESH = 0.45


def make_divisible(x: float, divisor: int = 8) -> int:
    """The smallest multiple of ``divisor`` at least ``x`` (the release's channel rounding)."""
    return math.ceil(x / divisor) * divisor


# ---------------------------------------------------------------- the blocks


class Conv(nn.Module):
    """Conv2d (no bias, 'same' padding) + BatchNorm2d + SiLU: ``(N, c1, H, W) -> (N, c2,
    H/s, W/s)``."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, g: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, groups=g, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = nn.SiLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class Focus(nn.Module):
    """Space-to-depth then a Conv: ``(N, c1, H, W) -> (N, 4 c1, H/2, W/2) -> (N, c2, H/2,
    W/2)``; the four pixels of each 2 x 2 block, in the release's order (top-left,
    bottom-left, top-right, bottom-right), become channels."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1):
        super().__init__()
        self.conv = Conv(c1 * 4, c2, k, s)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(cat([x[..., ::2, ::2], x[..., 1::2, ::2],
                              x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1))


class Bottleneck(nn.Module):
    """1x1 then 3x3 Conv, plus the input when ``shortcut`` and the widths agree."""

    def __init__(self, c1: int, c2: int, shortcut: bool = True, e: float = 0.5):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_, c2, 3, 1)
        self.add = shortcut and c1 == c2

    def forward(self, x: Tensor) -> Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    """CSP bottleneck with 3 convolutions: ``cv3(cat(m(cv1(x)), cv2(x)))`` with ``m`` ``n``
    Bottlenecks of width ``c2 / 2``; ``(N, c1, H, W) -> (N, c2, H, W)``."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True):
        super().__init__()
        c_ = c2 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c1, c_, 1, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = nn.Sequential(*[Bottleneck(c_, c_, shortcut, e=1.0) for _ in range(n)])

    def forward(self, x: Tensor) -> Tensor:
        return self.cv3(cat([self.m(self.cv1(x)), self.cv2(x)], 1))


class SPP(nn.Module):
    """Spatial pyramid pooling: 1x1 to ``c1 / 2``, max pools of sizes ``k`` (stride 1,
    'same' padding) concatenated with their input, 1x1 to ``c2``."""

    def __init__(self, c1: int, c2: int, k: tuple[int, ...] = (5, 9, 13)):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * (len(k) + 1), c2, 1, 1)
        self.m = nn.ModuleList([nn.MaxPool2d(size, 1, size // 2) for size in k])

    def forward(self, x: Tensor) -> Tensor:
        x = self.cv1(x)
        return self.cv2(cat([x] + [pool(x) for pool in self.m], 1))


class Concat(nn.Module):
    """Concatenate a list of maps along the channels."""

    def forward(self, xs: list[Tensor]) -> Tensor:
        return cat(list(xs), 1)


class Detect(nn.Module):
    """One 1x1 convolution per level to ``na * (5 + nc)`` numbers per cell: ``[(N, c_i, H_i,
    W_i)] -> [(N, na, H_i, W_i, 5 + nc)]`` raw outputs. The biases start at the release's
    priors: objectness ``log(8 / cells)`` (about 8 objects per ``image_size``-pixel image),
    classes ``log(0.6 / (nc - 0.99))``."""

    def __init__(self, nc: int, anchors, ch: list[int], strides=STRIDES, image_size: int = 640):
        super().__init__()
        self.nc, self.no = nc, nc + 5
        self.anchors = np.asarray(anchors, np.float32)  # (nl, na, 2) in pixels
        self.nl, self.na = self.anchors.shape[:2]
        self.stride = tuple(strides)
        self.m = nn.ModuleList([nn.Conv2d(c, self.no * self.na, 1) for c in ch])
        with no_grad():
            for conv, s in zip(self.m, self.stride):
                b = conv.bias.array.reshape(self.na, self.no)
                b[:, 4] += math.log(8 / (image_size / s) ** 2)
                b[:, 5:] += math.log(0.6 / (nc - 0.99))

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        out = []
        for conv, x in zip(self.m, xs):
            n, _, h, w = x.shape
            out.append(conv(x).reshape(n, self.na, self.no, h, w).permute(0, 1, 3, 4, 2))
        return out


BLOCKS = {"Conv": Conv, "Focus": Focus, "C3": C3, "SPP": SPP}


# ---------------------------------------------------------------- the network


class YOLOv5(nn.Module):
    """The layers of :data:`BACKBONE` + :data:`HEAD` at ``depth_multiple`` and
    ``width_multiple``, run in order (``model.0`` ... ``model.24``, the release's
    ``state_dict`` names), each reading the outputs its ``from`` names.

    ``raw_outputs(x)``: ``(N, 3, H, W) -> [(N, 3, H/8, W/8, 5 + C), (N, 3, H/16, W/16, 5 + C),
    (N, 3, H/32, W/32, 5 + C)]``, the Detect layer's raw numbers; ``forward`` as torchvision's
    detection models (module docstring). ``image_size``: the size of the images it trains
    on (the release's 640), for the objectness prior of the Detect biases and the default
    objectness gain. ``box_gain``, ``obj_gain``, ``cls_gain``, ``anchor_t``: the loss's
    hyperparameters (see ``yolov5_loss``; the default gains are the release's, the class
    gain times ``num_classes / 80`` and the objectness gain times ``(image_size / 640)^2``).
    """

    def __init__(self, depth_multiple: float, width_multiple: float, num_classes: int = 80,
                 anchors=ANCHORS, image_size: int = 640, score_thresh: float = SCORE_THRESH,
                 nms_thresh: float = NMS_THRESH, detections_per_img: int = 300,
                 box_gain: float = BOX_GAIN, obj_gain: float | None = None,
                 cls_gain: float | None = None, anchor_t: float = ANCHOR_T,
                 name: str = "yolov5"):
        super().__init__()
        for arg, value in (("num_classes", num_classes), ("image_size", image_size),
                           ("detections_per_img", detections_per_img)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}: {arg} must be a positive integer, got {value!r}")
        for arg, value in (("score_thresh", score_thresh), ("nms_thresh", nms_thresh)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name}: {arg} must be in [0, 1], got {value!r}")
        self.name, self.num_classes = name, num_classes
        self.score_thresh, self.nms_thresh = score_thresh, nms_thresh
        self.detections_per_img = detections_per_img
        # the release's train.py scales the COCO-tuned gains to the data: the class gain by
        # nc / 80, the objectness gain by (image_size / 640)^2 (fewer cells per object)
        self.gains = {
            "box": box_gain,
            "obj": OBJ_GAIN * (image_size / 640) ** 2 if obj_gain is None else obj_gain,
            "cls": CLS_GAIN * num_classes / 80 if cls_gain is None else cls_gain,
        }
        self.anchor_t = anchor_t
        layers, self.sources, channels = [], [], [3]
        for src, number, kind, args in BACKBONE + HEAD:
            number = max(round(number * depth_multiple), 1) if number > 1 else number
            srcs = [src] if isinstance(src, int) else list(src)
            c_in = [channels[s if s < 0 else s + 1] for s in srcs]  # channels[0]: the image
            if kind in BLOCKS:
                c_out = make_divisible(args[0] * width_multiple)
                if kind == "C3":
                    shortcut = args[1] if len(args) > 1 else True
                    layer = C3(c_in[0], c_out, number, shortcut)
                elif kind == "SPP":
                    layer = SPP(c_in[0], c_out, tuple(args[1]))
                else:  # Conv, Focus (number is 1 for each in the table)
                    layer = BLOCKS[kind](c_in[0], c_out, *args[1:])
            elif kind == "Upsample":
                layer, c_out = nn.Upsample(scale_factor=2, mode="nearest"), c_in[0]
            elif kind == "Concat":
                layer, c_out = Concat(), sum(c_in)
            else:  # Detect
                layer, c_out = Detect(num_classes, anchors, c_in, STRIDES, image_size), None
            layers.append(layer)
            self.sources.append(src)
            channels.append(c_out)
        self.model = nn.ModuleList(layers)
        self.detect: Detect = layers[-1]
        # the layers whose outputs a later layer reads (besides the one just before)
        self._kept = {s for src in self.sources if not isinstance(src, int)
                      for s in src if s >= 0}

    @property
    def strides(self) -> tuple[int, ...]:
        return self.detect.stride

    def raw_outputs(self, x: Tensor) -> list[Tensor]:
        """``(N, 3, H, W) -> [(N, 3, H_i, W_i, 5 + C)]`` for strides 8, 16, 32 (raw logits)."""
        self._check_images(x)
        saved: dict[int, Tensor] = {}
        for i, (layer, src) in enumerate(zip(self.model, self.sources)):
            if not isinstance(src, int):
                x = [x if s == -1 else saved[s] for s in src]
            x = layer(x)
            if i in self._kept:
                saved[i] = x
        return x

    def forward(self, images, targets: list[dict] | None = None):
        x = batch_images(self.name, images)
        if self.training:
            if targets is None:
                raise ValueError(f"{self.name}: in training mode targets must be given "
                                 f"(call model.eval() to detect)")
            check_box_targets(self.name, targets, x.shape[0], self.num_classes)
            return self.loss(self.raw_outputs(x), targets)
        with no_grad():
            return self.postprocess(self.raw_outputs(x))

    def loss(self, outputs: list[Tensor], targets: list[dict]) -> dict[str, Tensor]:
        """``{"loss_box", "loss_obj", "loss_cls"}`` of the raw ``outputs`` against
        ``targets`` (torchvision dicts, boxes in pixels; see ``yolov5_loss``)."""
        return yolov5_loss(outputs, targets_to_array(targets), self.detect.anchors,
                           self.strides, self.gains, BALANCE, self.anchor_t)

    def decode(self, outputs: list[Tensor]) -> np.ndarray:
        """Every anchor's box and scores, ``(N, A, 5 + C)`` arrays: ``(cx, cy, w, h)`` in
        pixels, objectness and class probabilities (the release's sigmoid decode)."""
        decoded = []
        for p, anchors, stride in zip(outputs, self.detect.anchors, self.strides):
            y = sigmoid(p).array
            xp = backend_of(y).xp
            n, na, h, w, no = y.shape
            gy, gx = xp.meshgrid(xp.arange(h), xp.arange(w), indexing="ij")
            grid = xp.stack([gx, gy], -1).astype(y.dtype)[None, None]  # (1, 1, h, w, 2)
            anchor_wh = xp.asarray(anchors, dtype=y.dtype).reshape(1, na, 1, 1, 2)
            xy = (y[..., :2] * 2 - 0.5 + grid) * stride
            wh = (y[..., 2:4] * 2) ** 2 * anchor_wh
            decoded.append(xp.concatenate([xy, wh, y[..., 4:]], -1).reshape(n, -1, no))
        return xp.concatenate(decoded, 1)

    def postprocess(self, outputs: list[Tensor]) -> list[dict[str, Tensor]]:
        """Boxes in pixels: score = objectness x class probability for every anchor and
        class; above ``score_thresh``, NMS within each class at ``nms_thresh``, the
        ``detections_per_img`` best per image."""
        decoded = self.decode(outputs)
        xp = backend_of(decoded).xp
        results = []
        for d in decoded:
            centre, size = d[:, :2], d[:, 2:4]
            boxes = xp.concatenate([centre - size / 2, centre + size / 2], 1)
            scores = d[:, 5:] * d[:, 4:5]
            results.append(select_detections(boxes, scores, self.score_thresh, self.nms_thresh,
                                             self.detections_per_img))
        return results

    # ------------------------------------------------------------ input checks

    def _check_images(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] % 32 or x.shape[3] % 32:
            raise ValueError(f"{self.name}: images must be (N, 3, H, W) with H and W multiples "
                             f"of 32, got {tuple(x.shape)}")



# ---------------------------------------------------------------- the named variants


def yolov5(size: str, num_classes: int = 80, image_size: int = 640, **kwargs) -> YOLOv5:
    """YOLOv5 ``size`` ("n", "s", "m", "l" or "x": :data:`SCALES`) for ``num_classes``
    classes and images of about ``image_size`` pixels (the objectness prior); ``kwargs`` go
    to :class:`YOLOv5`."""
    if size not in SCALES:
        raise ValueError(f"yolov5: size must be one of {', '.join(SCALES)}, got {size!r}")
    return YOLOv5(*SCALES[size], num_classes=num_classes, image_size=image_size,
                  name=f"yolov5{size}", **kwargs)


def yolov5n(num_classes: int = 80, image_size: int = 640, **kwargs) -> YOLOv5:
    """YOLOv5n: depth 0.33, width 0.25 (1.9 M parameters, 4.6 GFLOPs at 640 for COCO)."""
    return yolov5("n", num_classes, image_size, **kwargs)


def yolov5s(num_classes: int = 80, image_size: int = 640, **kwargs) -> YOLOv5:
    """YOLOv5s: depth 0.33, width 0.50 (7.3 M parameters, 17.0 GFLOPs at 640 for COCO)."""
    return yolov5("s", num_classes, image_size, **kwargs)


def yolov5m(num_classes: int = 80, image_size: int = 640, **kwargs) -> YOLOv5:
    """YOLOv5m: depth 0.67, width 0.75 (21.4 M parameters, 51.3 GFLOPs at 640 for COCO)."""
    return yolov5("m", num_classes, image_size, **kwargs)


def yolov5l(num_classes: int = 80, image_size: int = 640, **kwargs) -> YOLOv5:
    """YOLOv5l: depth 1.0, width 1.0 (47.0 M parameters, 115.4 GFLOPs at 640 for COCO)."""
    return yolov5("l", num_classes, image_size, **kwargs)


def yolov5x(num_classes: int = 80, image_size: int = 640, **kwargs) -> YOLOv5:
    """YOLOv5x: depth 1.33, width 1.25 (87.7 M parameters, 218.8 GFLOPs at 640 for COCO)."""
    return yolov5("x", num_classes, image_size, **kwargs)
