"""The YOLOv5 loss (release v4.0/v5.0 ``utils/loss.py``): which anchors learn which object,
and three terms.

**Target assignment** (:func:`build_targets`), for each level (stride 8, 16, 32) with its
three anchors, in grid units (pixels / stride):

1. *Shape match*: an object goes to every anchor of the level whose width and height ratios
   are both within ``anchor_t`` = 4: ``max(r, 1/r) < 4`` for ``r = w / a_w`` and ``h / a_h``.
   No IoU and no single best anchor: an object can train anchors of several levels.
2. *Neighbouring cells*: besides the cell ``(floor x, floor y)`` its centre falls in, the
   nearer horizontal neighbour (left when the centre is in the cell's left half, else
   right) and the nearer vertical one also predict it -- up to 3 cells per matched anchor
   (none beyond the image's first or last cell). The decode ``2 sigmoid - 0.5`` reaches
   -0.5..1.5 cells, so a neighbour can still put the centre there. More positives per
   object, which is what lets YOLOv5 train quickly.

**Terms** (each mean is over the positives, or over every anchor for objectness):

* ``loss_box`` = batch size x ``box_gain`` x mean over levels' positives of
  ``1 - CIoU(predicted, target)`` (``minicnn.ops.complete_box_iou_loss``; the box decoded
  as in ``yolov5``);
* ``loss_obj`` = batch size x ``obj_gain`` x sum over levels of ``balance[level]`` x
  BCE(objectness logits, target), the target being the positive's CIoU (detached, clamped
  at 0) and 0 elsewhere; ``balance`` = (4.0, 1.0, 0.4) for strides 8, 16, 32;
* ``loss_cls`` = batch size x ``cls_gain`` x mean BCE of the class logits against one-hot
  targets (none with a single class).

Gains from the release's ``hyp.scratch.yaml``: box 0.05, obj 1.0, cls 0.5; ``YOLOv5``
scales them as the release's ``train.py`` does: cls by ``nc / 80``, obj by ``(image size /
640)^2`` -- objectness is a mean over every anchor of the image, of which an object's few
positives are a larger share at a smaller size. As in the release, each term is then
multiplied by the batch size (the scale its SGD learning rate and weight decay are tuned
for).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minicnn.autograd import Tensor
from minicnn.autograd.ops import cat, sigmoid
from minicnn.backend import backend_of
from minicnn.nn.functional import binary_cross_entropy_with_logits
from minicnn.ops import complete_box_iou_loss

__all__ = ["ANCHOR_T", "BALANCE", "LevelTargets", "build_targets", "targets_to_array",
           "yolov5_loss"]

ANCHOR_T = 4.0  # largest width/height ratio between an object and an anchor it trains
BALANCE = (4.0, 1.0, 0.4)  # objectness weight of the levels (strides 8, 16, 32)
BOX_GAIN, OBJ_GAIN, CLS_GAIN = 0.05, 1.0, 0.5
NEIGHBOUR = 0.5  # a centre within this much of a cell's side pulls in that neighbour


class LevelTargets(NamedTuple):
    """The positives of one level, one entry per (object, anchor, cell): ``image, anchor,
    gj, gi, cls`` and ``target`` (the object's row of the targets) integer arrays ``(P,)``;
    ``box (P, 4)``: the object's centre relative to the cell's corner and its width and
    height, in grid units; ``anchor_wh (P, 2)`` in grid units."""

    image: np.ndarray
    anchor: np.ndarray
    gj: np.ndarray
    gi: np.ndarray
    cls: np.ndarray
    box: np.ndarray
    anchor_wh: np.ndarray
    target: np.ndarray


def targets_to_array(targets: list[dict]) -> np.ndarray:
    """torchvision target dicts -> ``(T, 6)`` rows ``(image, class, cx, cy, w, h)``: the
    class 0-based (label - 1), the box's centre and size in pixels."""
    rows = []
    for k, target in enumerate(targets):
        boxes, labels = target["boxes"], target["labels"]
        boxes = np.asarray(boxes.numpy() if isinstance(boxes, Tensor) else boxes, np.float64)
        labels = np.asarray(labels.numpy() if isinstance(labels, Tensor) else labels)
        boxes = boxes.reshape(-1, 4)
        centre, size = (boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]
        rows.append(np.column_stack([np.full(len(boxes), k), labels - 1, centre, size]))
    return np.concatenate(rows, 0) if rows else np.zeros((0, 6))


def build_targets(targets: np.ndarray, grid_sizes, anchors, strides,
                  anchor_t: float = ANCHOR_T) -> list[LevelTargets]:
    """The positives of every level (module docstring): ``targets (T, 6)`` from
    :func:`targets_to_array`, ``grid_sizes`` ``[(ny, nx)]`` per level, ``anchors (levels,
    na, 2)`` in pixels, ``strides`` per level. Order within a level: the cell the centre is
    in, then the left, upper, right and lower neighbours; each anchor-major."""
    targets = np.asarray(targets, np.float64).reshape(-1, 6)
    levels = []
    for (ny, nx), level_anchors, stride in zip(grid_sizes, anchors, strides):
        anchor_wh = np.asarray(level_anchors, np.float64) / stride  # (na, 2)
        gxy, gwh = targets[:, 2:4] / stride, targets[:, 4:6] / stride
        ratio = gwh[None] / anchor_wh[:, None]  # (na, T, 2)
        a, t = np.nonzero(np.maximum(ratio, 1 / ratio).max(2) < anchor_t)
        xy = gxy[t]
        inverse = np.array([nx, ny]) - xy  # distance to the far edges
        near_low = (xy % 1 < NEIGHBOUR) & (xy > 1)  # left / upper neighbour
        near_high = (inverse % 1 < NEIGHBOUR) & (inverse > 1)  # right / lower neighbour
        choose = [np.ones(len(t), bool), near_low[:, 0], near_low[:, 1],
                  near_high[:, 0], near_high[:, 1]]
        shifts = [(0, 0), (-1, 0), (0, -1), (1, 0), (0, 1)]
        a_all, t_all, cells = [], [], []
        for mask, shift in zip(choose, shifts):
            a_all.append(a[mask])
            t_all.append(t[mask])
            # the cell half a cell away from the centre, towards the neighbour
            cells.append(np.floor(xy[mask] + NEIGHBOUR * np.array(shift)).astype(np.int64))
        a, t, cell = np.concatenate(a_all), np.concatenate(t_all), np.concatenate(cells)
        gi, gj = np.clip(cell[:, 0], 0, nx - 1), np.clip(cell[:, 1], 0, ny - 1)
        box = np.column_stack([gxy[t] - np.column_stack([gi, gj]), gwh[t]])
        levels.append(LevelTargets(targets[t, 0].astype(np.int64), a, gj, gi,
                                   targets[t, 1].astype(np.int64), box, anchor_wh[a], t))
    return levels


def _xywh_to_xyxy(xy: Tensor, wh: Tensor) -> Tensor:
    return cat([xy - wh / 2, xy + wh / 2], 1)


def yolov5_loss(outputs: list[Tensor], targets: np.ndarray, anchors, strides, gains: dict,
                balance=BALANCE, anchor_t: float = ANCHOR_T) -> dict[str, Tensor]:
    """``{"loss_box", "loss_obj", "loss_cls"}`` (module docstring) of the raw ``outputs``
    ``[(N, na, ny, nx, 5 + C)]`` per level against ``targets (T, 6)``
    (:func:`targets_to_array`); ``anchors (levels, na, 2)`` in pixels; ``gains`` the
    ``"box"``, ``"obj"`` and ``"cls"`` gains; ``balance`` the levels' objectness weights."""
    levels = build_targets(targets, [tuple(p.shape[2:4]) for p in outputs], anchors, strides,
                           anchor_t)
    zero = sum(p.sum() for p in outputs) * 0.0
    loss_box, loss_obj, loss_cls = zero, zero, zero
    for p, level, weight in zip(outputs, levels, balance):
        n, na, ny, nx, no = p.shape
        xp = backend_of(p.array).xp
        flat = p.reshape(-1, no)
        tobj = xp.zeros(flat.shape[0], dtype=p.dtype)
        if len(level.image):
            rows = xp.asarray(((level.image * na + level.anchor) * ny + level.gj) * nx
                              + level.gi)
            ps = flat[rows]
            pxy = sigmoid(ps[:, :2]) * 2 - 0.5
            anchor_wh = Tensor(xp.asarray(level.anchor_wh, dtype=p.dtype))
            pwh = (sigmoid(ps[:, 2:4]) * 2) ** 2 * anchor_wh
            box = Tensor(xp.asarray(level.box, dtype=p.dtype))
            one_minus_ciou = complete_box_iou_loss(_xywh_to_xyxy(pxy, pwh),
                                                   _xywh_to_xyxy(box[:, :2], box[:, 2:]))
            loss_box = loss_box + one_minus_ciou.mean()
            tobj[rows] = xp.clip(1 - one_minus_ciou.array, 0, None)
            if no - 5 > 1:
                onehot = xp.zeros((len(rows), no - 5), dtype=p.dtype)
                onehot[xp.arange(len(rows)), xp.asarray(level.cls)] = 1
                loss_cls = loss_cls + binary_cross_entropy_with_logits(ps[:, 5:],
                                                                       Tensor(onehot))
        loss_obj = loss_obj + binary_cross_entropy_with_logits(flat[:, 4], Tensor(tobj)) * weight
    batch = outputs[0].shape[0]
    return {"loss_box": loss_box * (gains["box"] * batch),
            "loss_obj": loss_obj * (gains["obj"] * batch),
            "loss_cls": loss_cls * (gains["cls"] * batch)}
