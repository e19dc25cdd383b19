"""Box operations with torchvision.ops' names, argument order and results.

Boxes are ``(x1, y1, x2, y2)`` along the last axis. As in torchvision, the geometric
functions take leading dimensions: ``box_convert``, ``box_area`` and
``clip_boxes_to_image`` any ``(..., 4)``, ``box_iou`` and ``generalized_box_iou`` sets of
boxes ``(..., N, 4)``, ``(..., M, 4)``; they are built from autograd operations, so
gradients flow through them. ``nms``, ``batched_nms`` and ``remove_small_boxes`` take
``(N, 4)``, return int64 indices and call the backend's ``nms`` kernel through the registry.
"""

from __future__ import annotations

import math

from minicnn.autograd import Tensor, no_grad
from minicnn.autograd.ops import atan, clamp, maximum, minimum, stack
from minicnn.backend import backend_of

__all__ = [
    "batched_nms", "box_area", "box_convert", "box_iou", "clip_boxes_to_image",
    "complete_box_iou", "complete_box_iou_loss", "generalized_box_iou", "nms",
    "remove_small_boxes",
]

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


def _check_boxes(boxes, name: str, fn: str, shape: str = "(N, 4)") -> Tensor:
    """``boxes`` as a Tensor of ``shape`` ("(N, 4)", "(..., 4)" or "(..., N, 4)"), else a
    ValueError/TypeError naming it."""
    if not isinstance(boxes, Tensor):
        raise TypeError(f"{fn}: {name} must be a minicnn Tensor, got {type(boxes).__name__}")
    min_ndim = {"(N, 4)": 2, "(..., 4)": 1, "(..., N, 4)": 2}[shape]
    if (boxes.ndim < min_ndim or (shape == "(N, 4)" and boxes.ndim != 2)
            or boxes.shape[-1] != 4):
        raise ValueError(f"{fn}: {name} must have shape {shape}, got {tuple(boxes.shape)}")
    return boxes


def _check_format(fmt: str, name: str, fn: str) -> None:
    if fmt not in BOX_FORMATS:
        raise ValueError(f"{fn}: {name} must be one of {BOX_FORMATS}, got {fmt!r}")


def _check_scores(scores, n: int, name: str, fn: str) -> Tensor:
    if not isinstance(scores, Tensor):
        raise TypeError(f"{fn}: {name} must be a minicnn Tensor, got {type(scores).__name__}")
    if tuple(scores.shape) != (n,):
        raise ValueError(f"{fn}: {name} must have shape ({n},) to match boxes, "
                         f"got {tuple(scores.shape)}")
    return scores


def _columns(boxes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]


def box_convert(boxes: Tensor, in_fmt: str, out_fmt: str) -> Tensor:
    """Convert ``boxes: (..., 4)`` between "xyxy", "xywh" (corner, size) and "cxcywh" (center,
    size).

    Returns ``(..., 4)``; differentiable. Goes through "xyxy" as torchvision does.
    """
    _check_format(in_fmt, "in_fmt", "box_convert")
    _check_format(out_fmt, "out_fmt", "box_convert")
    boxes = _check_boxes(boxes, "boxes", "box_convert", "(..., 4)")
    if in_fmt == out_fmt:
        return boxes.clone()
    a, b, c, d = _columns(boxes)
    if in_fmt == "xywh":
        a, b, c, d = a, b, a + c, b + d
    elif in_fmt == "cxcywh":
        a, b, c, d = a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d
    if out_fmt == "xywh":
        a, b, c, d = a, b, c - a, d - b
    elif out_fmt == "cxcywh":
        a, b, c, d = (a + c) / 2, (b + d) / 2, c - a, d - b
    return stack([a, b, c, d], dim=-1)


def box_area(boxes: Tensor, fmt: str = "xyxy") -> Tensor:
    """The area of each box: ``(..., 4) -> (...)``; differentiable.

    ``(x2 - x1) * (y2 - y1)`` for ``fmt="xyxy"``, ``w * h`` for "xywh" and "cxcywh".
    """
    _check_format(fmt, "fmt", "box_area")
    a, b, c, d = _columns(_check_boxes(boxes, "boxes", "box_area", "(..., 4)"))
    return (c - a) * (d - b) if fmt == "xyxy" else c * d


def _inter_union(boxes1: Tensor, boxes2: Tensor, fn: str,
                 fmt: str = "xyxy") -> tuple[Tensor, Tensor]:
    """Intersection and union areas of every pair: ``(..., N, 4), (..., M, 4) ->
    (..., N, M), (..., N, M)``."""
    _check_format(fmt, "fmt", fn)
    _check_boxes(boxes1, "boxes1", fn, "(..., N, 4)")
    _check_boxes(boxes2, "boxes2", fn, "(..., N, 4)")
    area1, area2 = box_area(boxes1, fmt), box_area(boxes2, fmt)
    if fmt != "xyxy":
        boxes1, boxes2 = box_convert(boxes1, fmt, "xyxy"), box_convert(boxes2, fmt, "xyxy")
    # (..., N, M, 2): the top-left and bottom-right corners of each pair's intersection
    lt = maximum(boxes1[..., :, None, :2], boxes2[..., None, :, :2])
    rb = minimum(boxes1[..., :, None, 2:], boxes2[..., None, :, 2:])
    wh = clamp(rb - lt, min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[..., :, None] + area2[..., None, :] - inter
    return inter, union


def box_iou(boxes1: Tensor, boxes2: Tensor, fmt: str = "xyxy") -> Tensor:
    """Intersection over union of every pair: ``(..., N, 4), (..., M, 4) -> (..., N, M)``
    (leading dimensions broadcast); boxes in ``fmt``; differentiable.

    Two boxes with no area between them give 0/0 = NaN, as in torchvision.
    """
    inter, union = _inter_union(boxes1, boxes2, "box_iou", fmt)
    return inter / union


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """GIoU of every pair: ``IoU - (C - union) / C`` with C the smallest enclosing box's area.

    ``(..., N, 4), (..., M, 4) -> (..., N, M)``, values in [-1, 1]; differentiable.
    """
    inter, union = _inter_union(boxes1, boxes2, "generalized_box_iou")
    iou = inter / union
    lt = minimum(boxes1[..., :, None, :2], boxes2[..., None, :, :2])
    rb = maximum(boxes1[..., :, None, 2:], boxes2[..., None, :, 2:])
    wh = clamp(rb - lt, min=0)
    enclosing = wh[..., 0] * wh[..., 1]
    return iou - (enclosing - union) / enclosing


def _ciou_penalties(b1: tuple, b2: tuple, iou: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """CIoU's two penalties for boxes given as columns ``(x1, y1, x2, y2)`` that broadcast
    together: ``rho^2 / c^2`` (the squared distance of the centres over the squared diagonal
    of the smallest enclosing box) and ``alpha * v`` (the aspect ratios' disagreement
    ``v = 4/pi^2 (atan(w1/h1) - atan(w2/h2))^2``, weighted by ``alpha = v / (1 - IoU + v)``,
    a constant for the gradient as in the paper and torchvision)."""
    (x1, y1, x2, y2), (x1g, y1g, x2g, y2g) = b1, b2
    diagonal2 = (clamp(maximum(x2, x2g) - minimum(x1, x1g), min=0) ** 2
                 + clamp(maximum(y2, y2g) - minimum(y1, y1g), min=0) ** 2 + eps)
    centres2 = ((x1 + x2 - x1g - x2g) / 2) ** 2 + ((y1 + y2 - y1g - y2g) / 2) ** 2
    v = (4 / math.pi ** 2) * (atan((x2 - x1) / (y2 - y1)) - atan((x2g - x1g) / (y2g - y1g))) ** 2
    with no_grad():
        alpha = v.detach() / (1 - iou.detach() + v.detach() + eps)
    return centres2 / diagonal2, alpha * v


def complete_box_iou(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7) -> Tensor:
    """Complete IoU (CIoU) of every pair: ``IoU - rho^2/c^2 - alpha v``; differentiable.

    Zheng et al. 2020, "Distance-IoU Loss" (AAAI): beyond the overlap, CIoU penalises the
    distance between the centres (``rho``, over the enclosing box's diagonal ``c``) and the
    difference of the aspect ratios (``v``, weighted by ``alpha``; see :func:`_ciou_penalties`).
    ``(..., N, 4), (..., M, 4) -> (..., N, M)``, values in [-1.5, 1]; as torchvision's.
    """
    inter, union = _inter_union(boxes1, boxes2, "complete_box_iou")
    iou = inter / union
    b1 = [c[..., :, None] for c in _columns(boxes1)]
    b2 = [c[..., None, :] for c in _columns(boxes2)]
    distance, aspect = _ciou_penalties(b1, b2, iou, eps)
    return iou - distance - aspect


def complete_box_iou_loss(boxes1: Tensor, boxes2: Tensor, reduction: str = "none",
                          eps: float = 1e-7) -> Tensor:
    """``1 - CIoU`` of each box of ``boxes1`` with the box of ``boxes2`` at the same place
    (not every pair): ``(..., 4), (..., 4) -> (...)``, or its ``"mean"``/``"sum"``
    (``reduction``); differentiable; as torchvision's (IoU ``inter / (union + eps)``).

    The box loss of YOLOv5 (see ``minicnn.models.detection.yolov5_loss``).
    """
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"complete_box_iou_loss: reduction must be 'none', 'mean' or 'sum', "
                         f"got {reduction!r}")
    boxes1 = _check_boxes(boxes1, "boxes1", "complete_box_iou_loss", "(..., 4)")
    boxes2 = _check_boxes(boxes2, "boxes2", "complete_box_iou_loss", "(..., 4)")
    b1, b2 = _columns(boxes1), _columns(boxes2)
    inter = (clamp(minimum(b1[2], b2[2]) - maximum(b1[0], b2[0]), min=0)
             * clamp(minimum(b1[3], b2[3]) - maximum(b1[1], b2[1]), min=0))
    union = box_area(boxes1) + box_area(boxes2) - inter
    iou = inter / (union + eps)
    distance, aspect = _ciou_penalties(b1, b2, iou, eps)
    loss = 1 - iou + distance + aspect
    if reduction == "mean":
        return loss.mean() if loss.numel() else (loss * 0).sum()
    return loss.sum() if reduction == "sum" else loss


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression: ``boxes (N, 4), scores (N,) -> keep (K,)`` int64.

    Sort by score; keep the best box; drop every box whose IoU with it is above
    ``iou_threshold``; repeat with the best box left. ``keep`` indexes ``boxes`` in
    decreasing score order (ties keep their input order).
    """
    boxes = _check_boxes(boxes, "boxes", "nms")
    scores = _check_scores(scores, boxes.shape[0], "scores", "nms")
    keep = backend_of(boxes.array).nms(boxes.array, scores.array, float(iou_threshold))
    return Tensor(keep)


# batched_nms's switch from one shifted NMS to one NMS per category, in boxes (torchvision
# switches above 4,000 coordinates on the CPU and 20,000 on a GPU)
BATCHED_NMS_ONE_PASS = {"cpu": 1000, "cuda": 5000}


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """NMS within each category: boxes of different ``idxs`` never suppress each other.

    ``boxes (N, 4), scores (N,), idxs (N,)`` integers -> ``keep (K,)`` int64 by decreasing
    score (ties keep their input order). As torchvision, two ways to the same result:

    * up to :data:`BATCHED_NMS_ONE_PASS` boxes (1,000 on the CPU, 5,000 on a GPU), each
      category's boxes are shifted by ``idx * (max coordinate + 1)`` so that they cannot
      overlap another's, then one ``nms`` runs;
    * above it, one ``nms`` per category, then the kept boxes are merged by score: NMS is
      quadratic in the number of boxes, so many small runs beat one big one.
    """
    boxes = _check_boxes(boxes, "boxes", "batched_nms")
    scores = _check_scores(scores, boxes.shape[0], "scores", "batched_nms")
    _check_scores(idxs, boxes.shape[0], "idxs", "batched_nms")
    if boxes.shape[0] == 0:
        return nms(boxes, scores, iou_threshold)
    b, xp = boxes.array, backend_of(boxes.array).xp
    gpu = backend_of(b).device == "cuda"
    if boxes.shape[0] <= BATCHED_NMS_ONE_PASS["cuda" if gpu else "cpu"]:
        offsets = idxs.array.astype(b.dtype) * (b.max() + 1)
        return nms(Tensor(b + offsets[:, None]), scores, iou_threshold)
    kept = []
    for category in xp.unique(idxs.array).tolist():
        members = xp.nonzero(idxs.array == category)[0]
        keep = nms(Tensor(b[members]), Tensor(scores.array[members]), iou_threshold)
        kept.append(members[keep.array])
    kept = xp.sort(xp.concatenate(kept))  # input order, so that ties stay in it
    return Tensor(kept[xp.argsort(-scores.array[kept], kind="stable")].astype(xp.int64))


def remove_small_boxes(boxes: Tensor, min_size: float) -> Tensor:
    """Indices of the boxes whose width and height are both at least ``min_size``.

    ``(N, 4) -> (K,)`` int64, in input order.
    """
    b = _check_boxes(boxes, "boxes", "remove_small_boxes").array
    xp = backend_of(b).xp
    large = ((b[:, 2] - b[:, 0]) >= min_size) & ((b[:, 3] - b[:, 1]) >= min_size)
    return Tensor(xp.nonzero(large)[0].astype(xp.int64))


def clip_boxes_to_image(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Clip ``boxes: (..., 4)`` to an image of ``size = (height, width)``: ``(..., 4)``;
    differentiable."""
    if len(size) != 2:
        raise ValueError(f"clip_boxes_to_image: size must be (height, width), got {size!r}")
    height, width = size
    x1, y1, x2, y2 = _columns(_check_boxes(boxes, "boxes", "clip_boxes_to_image", "(..., 4)"))
    return stack([clamp(x1, 0, width), clamp(y1, 0, height),
                  clamp(x2, 0, width), clamp(y2, 0, height)], dim=-1)
