# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Assignment 05: detection basics, IoU, NMS and the YOLO v1 loss
#
# Lesson 20 walked through these three; here you write them:
#
# 1. `box_iou`: the intersection over union of every pair of boxes `(x1, y1, x2, y2)`;
# 2. `nms`: non-maximum suppression, torchvision's `ops.nms` semantics;
# 3. `yolo_loss`: the five terms of Redmon et al.'s equation (3) on the network's outputs,
#    given the targets and masks (`encode_targets` builds those from the ground truth).
#
# The grader compares `box_iou` and `nms` with `minicnn.ops` and torchvision, and `yolo_loss`
# (values and gradients) with `minicnn.models.detection.yolo_loss.yolo_loss_terms`.

# %%
import numpy as np

import minicnn
from minicnn.models.detection.yolo_loss import (
    YoloOutputs,
    YoloTargets,
    encode_targets,
    split_outputs,
)

# %% [markdown]
# ## 1. IoU
#
# The intersection of two boxes is the box from the larger top-left corner to the smaller
# bottom-right corner, empty (area 0) when that has a negative width or height.
# `IoU = intersection / (area1 + area2 - intersection)`.

# %%
def box_iou(boxes1, boxes2):
    """IoU of every pair. boxes1: (N, 4), boxes2: (M, 4) arrays (x1, y1, x2, y2) -> (N, M)."""
    ### BEGIN SOLUTION
    a, b = boxes1[:, None, :], boxes2[None, :, :]
    wh = np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0,
                 None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / (area_a + area_b - inter)
    ### END SOLUTION


# %% [markdown]
# ## 2. Non-maximum suppression
#
# Take the highest-scoring box left, keep it, drop every remaining box whose IoU with it is
# *above* `iou_threshold`; repeat until no box is left. Return the kept indices in order of
# decreasing score (ties: the lower index first, as a stable sort gives).

# %%
def nms(boxes, scores, iou_threshold: float):
    """boxes: (N, 4), scores: (N,) arrays -> (K,) int64 indices of the kept boxes."""
    ### BEGIN SOLUTION
    order = np.argsort(-scores, kind="stable")
    iou = box_iou(boxes, boxes)
    keep = []
    suppressed = np.zeros(len(boxes), dtype=bool)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return np.array(keep, dtype=np.int64)
    ### END SOLUTION


# %% [markdown]
# ## 3. The YOLO v1 loss
#
# With `S x S` cells `i`, `B` predictors `j` per cell, `resp = 1obj_ij` (the responsible
# predictor of an object's cell) and `cell = 1obj_i`, every term summed over cells and
# predictors and *divided by the number of images*:
#
# * `coord = 5 * sum resp * ((x - x^)^2 + (y - y^)^2)` (on `outputs.xy`)
# * `size = 5 * sum resp * ((sqrt w - sqrt w^)^2 + (sqrt h - sqrt h^)^2)` (on `outputs.sqrt_wh`)
# * `object = sum resp * (C - C^)^2` and `no_object = 0.5 * sum (1 - resp) * C^2`
#   (on `outputs.confidence`)
# * `class = sum cell * sum_c (p(c) - p^(c))^2` (on `outputs.class_probs`)
#
# `outputs` holds Tensors; `targets` holds arrays: wrap them with `minicnn.tensor(...)` and use
# Tensor operations so that autograd gives the gradients.

# %%
def yolo_loss(outputs: YoloOutputs, targets: YoloTargets) -> dict:
    """The five terms: {"coord", "size", "object", "no_object", "class"} scalar Tensors."""
    ### BEGIN SOLUTION
    n = outputs.xy.shape[0]
    resp = minicnn.tensor(targets.responsible)
    resp2 = minicnn.tensor(targets.responsible[..., None])
    cell = minicnn.tensor(targets.cell[..., None])
    return {
        "coord": 5.0 * (resp2 * (outputs.xy - minicnn.tensor(targets.xy)) ** 2).sum() / n,
        "size": 5.0 * (resp2 * (outputs.sqrt_wh - minicnn.tensor(targets.sqrt_wh)) ** 2).sum()
        / n,
        "object": (resp * (outputs.confidence - minicnn.tensor(targets.confidence)) ** 2).sum()
        / n,
        "no_object": 0.5 * ((1 - resp) * outputs.confidence ** 2).sum() / n,
        "class": (cell * (outputs.class_probs - minicnn.tensor(targets.classes)) ** 2).sum() / n,
    }
    ### END SOLUTION


def example(seed: int = 0, n: int = 2, s: int = 4, b: int = 2, c: int = 3):
    """A random grid (N, S, S, B*5 + C) in float64, its YoloOutputs and the targets of random
    ground-truth boxes in 64x64 images."""
    rng = np.random.default_rng(seed)
    grid = minicnn.tensor(rng.standard_normal((n, s, s, b * 5 + c)), requires_grad=True)
    truth = []
    for _ in range(n):
        xy = rng.uniform(0, 44, (3, 2))
        wh = rng.uniform(6, 20, (3, 2))
        truth.append({"boxes": np.concatenate([xy, xy + wh], 1),
                      "labels": rng.integers(1, c + 1, 3)})
    outputs = split_outputs(grid, b, c, class_per_box=False)
    return grid, outputs, encode_targets(outputs, truth, (64, 64))


# %% [markdown]
# ## Check yourself

# %%
if __name__ == "__main__":
    a = np.array([[0, 0, 10, 10], [5, 5, 15, 15]], dtype=float)
    assert np.allclose(box_iou(a, a), [[1, 25 / 175], [25 / 175, 1]])
    assert nms(a, np.array([0.5, 0.9]), 0.1).tolist() == [1]
    assert nms(a, np.array([0.5, 0.9]), 0.2).tolist() == [1, 0]
    grid, outputs, targets = example()
    terms = yolo_loss(outputs, targets)
    assert set(terms) == {"coord", "size", "object", "no_object", "class"}
    print({k: round(float(v.item()), 4) for k, v in terms.items()})
    ### BEGIN HIDDEN TESTS
    assert minicnn.gradcheck(lambda g: sum(yolo_loss(split_outputs(g, 2, 3, False),
                                                     targets).values()), [grid])
    ### END HIDDEN TESTS
    print("assignment 05: all checks passed")
