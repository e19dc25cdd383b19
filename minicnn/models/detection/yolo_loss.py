"""The YOLO v1 loss, term by term (Redmon et al. 2016, Section 2.2, equation (3)).

With ``S x S`` grid cells ``i`` and ``B`` predictors ``j`` per cell::

    coord     = lambda_coord sum_i sum_j 1obj_ij [(x_ij - x^_i)^2 + (y_ij - y^_i)^2]
    size      = lambda_coord sum_i sum_j 1obj_ij [(sqrt w_ij - sqrt w^_i)^2
                                                  + (sqrt h_ij - sqrt h^_i)^2]
    object    =              sum_i sum_j 1obj_ij   (C_ij - C^_ij)^2
    no_object = lambda_noobj sum_i sum_j 1noobj_ij (C_ij - 0)^2
    class     =              sum_i 1obj_i sum_c (p_i(c) - p^_i(c))^2

``lambda_coord = 5``, ``lambda_noobj = 0.5``. ``1obj_i``: an object's centre falls in cell
``i``; ``1obj_ij``: predictor ``j`` of that cell is *responsible* for it -- of the cell's ``B``
predicted boxes, the one with the highest IoU with the ground truth (ties: the lower ``j``);
``1noobj_ij = 1 - 1obj_ij`` (so the other predictors of an object's cell are pushed to 0
too, as in the paper's darknet code). ``x, y`` are the centre's offset inside its cell,
``w, h`` fractions of the image's width and height, all in [0, 1].

Choices the paper leaves open, fixed here:

* **Target confidence** ``C^_ij``: the IoU between the responsible predicted box and the
  ground truth (the paper: "we want the confidence score to equal the IoU"; darknet's
  ``rescore=1``), computed without gradient -- it is a target, not a path for gradients.
  ``rescore=False`` uses 1 instead, as many re-implementations do.
* **Several objects in one cell**: a cell predicts one set of class probabilities, so it
  takes one object: the first of the image's targets whose centre falls in it (darknet
  keeps the last; the choice is arbitrary, first is the easier one to read).
* **Class term per box** (``class_per_box=True``, the 7x7x(B(5+C)) variant): the class
  probabilities of the responsible predictor, ``sum_ij 1obj_ij sum_c (p_ij(c) - p^_i(c))^2``.
* **Cross-entropy class term** (``class_loss="ce"``, an option; the deck's squared error
  ``"mse"`` is the default and the reference): ``class = sum_i 1obj_i (-log p_i(c_i))`` with
  ``c_i`` the class of the cell's object (per box: of the responsible predictor). Through
  the softmax, the squared error's gradient on the true class's score carries a factor
  ``p_i(c_i)``, so it fades when the network is confidently wrong; the cross-entropy's
  gradient on the scores is ``p - p^`` -- the same reason classifiers train on
  cross-entropy. ``minicnn train --task detect`` trains the small YOLO with it.
* **Scale**: the sums run over cells and predictors and are averaged over the images of the
  batch (the paper sums over the batch; averaging keeps the learning rate independent of
  the batch size).

The loss is split in two so that each half can be checked on its own:
:func:`encode_targets` builds the constant targets and masks from the ground truth and the
*detached* predicted boxes (NumPy, no gradient), and :func:`yolo_loss_terms` is the
differentiable sum above (gradcheck-able: for fixed targets it is a smooth function).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minicnn.autograd import Tensor
from minicnn.autograd.ops import log_softmax, sigmoid, softmax
from minicnn.backend import backend_of

__all__ = ["CLASS_LOSSES", "YoloOutputs", "YoloTargets", "encode_targets", "split_outputs",
           "yolo_loss_terms"]

LAMBDA_COORD = 5.0
LAMBDA_NOOBJ = 0.5
CLASS_LOSSES = ("mse", "ce")  # the class term: the deck's squared error, or cross-entropy


class YoloOutputs(NamedTuple):
    """The grid tensor read as the paper's quantities, every value but the logits in [0, 1].

    ``xy: (N, S, S, B, 2)`` centre offsets in the cell; ``sqrt_wh: (N, S, S, B, 2)``
    square roots of width and height as fractions of the image; ``confidence:
    (N, S, S, B)``; ``class_probs: (N, S, S, C)``, or ``(N, S, S, B, C)`` per box;
    ``class_logits``: the raw class scores they are the softmax of (same shape; the
    cross-entropy class term reads their log-softmax).
    """

    xy: Tensor
    sqrt_wh: Tensor
    confidence: Tensor
    class_probs: Tensor
    class_logits: Tensor


class YoloTargets(NamedTuple):
    """Constant targets and masks (NumPy-like arrays on the predictions' device).

    ``responsible: (N, S, S, B)`` 1obj_ij as 0/1; ``xy, sqrt_wh: (N, S, S, B, 2)`` the
    targets of the responsible predictors (0 elsewhere); ``confidence: (N, S, S, B)``
    C^ (the IoU, or 1); ``cell: (N, S, S)`` 1obj_i; ``classes: (N, S, S, C)`` one-hot
    p^_i(c) (0 in empty cells).
    """

    responsible: object
    xy: object
    sqrt_wh: object
    confidence: object
    cell: object
    classes: object


def split_outputs(grid: Tensor, num_boxes: int, num_classes: int,
                  class_per_box: bool) -> YoloOutputs:
    """Read ``grid: (N, S, S, D)`` as the paper's quantities.

    ``D = B*5 + C`` (each box ``x, y, sqrt w, sqrt h, confidence``, then the cell's ``C``
    class scores) or, with ``class_per_box``, ``D = B*(5 + C)`` (each box its own 5 + C).
    The network's outputs are unbounded; box numbers and confidence go through a sigmoid
    and the class scores through a softmax, so that every quantity the loss compares with
    a target in [0, 1] lies in [0, 1] (the paper's last layer is linear; squashing keeps the
    small model's training stable and changes no term of the loss). The network predicts
    sqrt(w) and sqrt(h) directly, as the paper's darknet code does (``sqrt=1``): the loss
    term on square roots is then defined for every output.
    """
    n, s1, s2, d = grid.shape
    b, c = num_boxes, num_classes
    expected = b * (5 + c) if class_per_box else b * 5 + c
    if d != expected:
        raise ValueError(f"split_outputs: grid must have {expected} channels for B={b}, C={c}, "
                         f"class_per_box={class_per_box}, got shape {tuple(grid.shape)}")
    if class_per_box:
        per_box = grid.reshape(n, s1, s2, b, 5 + c)
        boxes, logits = per_box[..., :5], per_box[..., 5:]
    else:
        boxes = grid[..., : b * 5].reshape(n, s1, s2, b, 5)
        logits = grid[..., b * 5:]
    boxes = sigmoid(boxes)
    return YoloOutputs(boxes[..., 0:2], boxes[..., 2:4], boxes[..., 4], softmax(logits, -1),
                       logits)


def _iou_cxcywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes given as ``(..., 4)`` centre x, centre y, width, height; 0 when empty."""
    a1, a2 = a[..., :2] - a[..., 2:] / 2, a[..., :2] + a[..., 2:] / 2
    b1, b2 = b[..., :2] - b[..., 2:] / 2, b[..., :2] + b[..., 2:] / 2
    wh = np.clip(np.minimum(a2, b2) - np.maximum(a1, b1), 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def encode_targets(outputs: YoloOutputs, targets: list[dict], image_size: tuple[int, int],
                   rescore: bool = True) -> YoloTargets:
    """Build the loss's targets and masks from ground truth and the detached predictions.

    ``targets``: one dict per image with ``boxes: (K, 4)`` ``(x1, y1, x2, y2)`` in pixels of
    the ``image_size = (height, width)`` input and ``labels: (K,)`` in 1..C (already
    checked by the model). Returns :class:`YoloTargets` on the predictions' device.
    """
    xy = _host(outputs.xy)
    n, s_y, s_x, b, _ = xy.shape
    sqrt_wh = _host(outputs.sqrt_wh)
    num_classes = outputs.class_probs.shape[-1]
    height, width = image_size
    dtype = xy.dtype
    t_resp = np.zeros((n, s_y, s_x, b), dtype)
    t_xy = np.zeros((n, s_y, s_x, b, 2), dtype)
    t_wh = np.zeros((n, s_y, s_x, b, 2), dtype)
    t_conf = np.zeros((n, s_y, s_x, b), dtype)
    t_cell = np.zeros((n, s_y, s_x), dtype)
    t_cls = np.zeros((n, s_y, s_x, num_classes), dtype)
    cols, rows = np.arange(s_x), np.arange(s_y)
    for i, target in enumerate(targets):
        boxes = _host(target["boxes"]).astype(np.float64).reshape(-1, 4)
        labels = _host(target["labels"]).astype(np.int64).reshape(-1)
        cx = (boxes[:, 0] + boxes[:, 2]) / 2 / width
        cy = (boxes[:, 1] + boxes[:, 3]) / 2 / height
        w = (boxes[:, 2] - boxes[:, 0]) / width
        h = (boxes[:, 3] - boxes[:, 1]) / height
        col = np.clip(np.floor(cx * s_x).astype(np.int64), 0, s_x - 1)
        row = np.clip(np.floor(cy * s_y).astype(np.int64), 0, s_y - 1)
        for k in range(len(labels)):
            r, c = row[k], col[k]
            if t_cell[i, r, c]:
                continue  # the cell already holds an earlier object
            # the cell's B predicted boxes in image fractions, against the ground truth
            pred = np.concatenate([(xy[i, r, c] + [cols[c], rows[r]]) / [s_x, s_y],
                                   sqrt_wh[i, r, c] ** 2], axis=-1)
            iou = _iou_cxcywh(pred, np.array([cx[k], cy[k], w[k], h[k]]))
            j = int(np.argmax(iou))
            t_cell[i, r, c] = 1
            t_cls[i, r, c, labels[k] - 1] = 1
            t_resp[i, r, c, j] = 1
            t_xy[i, r, c, j] = cx[k] * s_x - c, cy[k] * s_y - r
            t_wh[i, r, c, j] = np.sqrt(w[k]), np.sqrt(h[k])
            t_conf[i, r, c, j] = iou[j] if rescore else 1.0
    xp_asarray = backend_of(outputs.xy.array).xp.asarray
    return YoloTargets(*(xp_asarray(a) for a in (t_resp, t_xy, t_wh, t_conf, t_cell, t_cls)))


def _host(x) -> np.ndarray:
    """A NumPy copy of a Tensor or array (on the CPU), for the target building."""
    if isinstance(x, Tensor):
        x = x.array
    get = getattr(x, "get", None)  # a CuPy array
    return np.asarray(get() if get is not None else x)


def yolo_loss_terms(outputs: YoloOutputs, targets: YoloTargets,
                    lambda_coord: float = LAMBDA_COORD,
                    lambda_noobj: float = LAMBDA_NOOBJ,
                    class_loss: str = "mse") -> dict[str, Tensor]:
    """The five terms of equation (3), each summed over cells and boxes, mean over images.

    Returns ``{"coord", "size", "object", "no_object", "class"}`` scalar Tensors; their sum
    is the paper's loss (divided by the batch size). ``class_loss="ce"``: the class term is
    the cross-entropy ``-log p(c)`` of the object's class instead of the squared error (see
    the module docstring).
    """
    if class_loss not in CLASS_LOSSES:
        raise ValueError(f"yolo_loss_terms: class_loss must be one of {CLASS_LOSSES}, "
                         f"got {class_loss!r}")
    n = outputs.xy.shape[0]
    resp = Tensor(targets.responsible)
    resp2 = Tensor(targets.responsible[..., None])
    coord = lambda_coord * (resp2 * (outputs.xy - Tensor(targets.xy)) ** 2).sum()
    size = lambda_coord * (resp2 * (outputs.sqrt_wh - Tensor(targets.sqrt_wh)) ** 2).sum()
    obj = (resp * (outputs.confidence - Tensor(targets.confidence)) ** 2).sum()
    noobj = lambda_noobj * ((1 - resp) * outputs.confidence ** 2).sum()
    per_box = outputs.class_probs.ndim == 5  # the responsible predictor's probabilities
    one_hot = Tensor(targets.classes[..., None, :] if per_box else targets.classes)
    if class_loss == "ce":  # -log p(c): the one-hot picks the object's class; 0 elsewhere
        cls = -(one_hot * log_softmax(outputs.class_logits, -1))
    else:
        cls = (outputs.class_probs - one_hot) ** 2
    cls = ((resp2 if per_box else Tensor(targets.cell[..., None])) * cls).sum()
    return {"coord": coord / n, "size": size / n, "object": obj / n, "no_object": noobj / n,
            "class": cls / n}
