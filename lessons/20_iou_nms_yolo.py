# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 20: IoU, NMS and YOLO v1
#
# A classifier says *what* is in an image; a detector says what and *where*, as boxes
# `(x1, y1, x2, y2)` in pixels with a class and a score each. Three ideas carry the whole
# one-stage family, and this lesson builds each with its numbers checked:
#
# 1. **IoU**, intersection over union: how much two boxes agree.
# 2. **YOLO v1** (Redmon et al. 2016): one network looks once at the image and fills an
#    S×S grid; each cell predicts B boxes with a confidence, and class probabilities. Its loss
#    is five sums of squares.
# 3. **NMS**, non-maximum suppression: many cells see the same object; keep the best box
#    and drop the ones that overlap it.
#
# Then we train the small YOLO on scenes of real handwritten digits and look at its boxes.
# Run it as a script, `python lessons/20_iou_nms_yolo.py` (`--quick` for a short run), or as
# a notebook. Figures go to `lessons/out/`.

# %%
import argparse
import os
import sys
import time
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
import torchvision

import minicnn
from minicnn import ops, optim
from minicnn.data import digit_scenes
from minicnn.metrics import MeanAveragePrecision
from minicnn.models.detection import yolo_v1, yolo_v1_small
from minicnn.models.detection.yolo_loss import encode_targets, split_outputs

parser = argparse.ArgumentParser(description="Lesson 20: IoU, NMS and YOLO v1")
parser.add_argument("--quick", action="store_true", help="a short training run (for CI)")
args, _ = parser.parse_known_args()
OUT = Path(__file__).resolve().parent / "out" if "__file__" in globals() else Path("out")
OUT.mkdir(parents=True, exist_ok=True)
minicnn.manual_seed(0)

# %% [markdown]
# ## 1. IoU by picture and by formula
#
# For boxes A and B, the intersection is the box between the larger top-left corner and the
# smaller bottom-right corner (empty if those cross):
#
# $$\mathrm{IoU}(A, B) = \frac{|A \cap B|}{|A \cup B|}
#   = \frac{|A \cap B|}{|A| + |B| - |A \cap B|}$$
#
# 1 for identical boxes, 0 for disjoint ones. Detection counts a predicted box as right when
# its IoU with a ground-truth box of its class is at least 0.5.

# %%
A = np.array([10.0, 10.0, 50.0, 40.0])  # 40 x 30
B = np.array([30.0, 20.0, 70.0, 60.0])  # 40 x 40
inter_box = np.r_[np.maximum(A[:2], B[:2]), np.minimum(A[2:], B[2:])]  # (30, 20, 50, 40)
inter = np.prod(np.clip(inter_box[2:] - inter_box[:2], 0, None))
union = np.prod(A[2:] - A[:2]) + np.prod(B[2:] - B[:2]) - inter
print(f"|A| = 1200, |B| = 1600, |A ∩ B| = {inter:.0f}, |A ∪ B| = {union:.0f}, "
      f"IoU = {inter / union:.4f}")
assert inter == 400 and union == 2400
ours = ops.box_iou(minicnn.tensor(A[None]), minicnn.tensor(B[None])).item()
ref = torchvision.ops.box_iou(torch.tensor(A[None]), torch.tensor(B[None])).item()
assert abs(ours - 1 / 6) < 1e-12 and abs(ref - 1 / 6) < 1e-12
print(f"minicnn.ops.box_iou: {ours:.4f}, torchvision.ops.box_iou: {ref:.4f}")

fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
shifts = [(0, 0), (20, 10), (40, 35)]
for ax, (dx, dy) in zip(axes, shifts, strict=True):
    b = A + [dx, dy, dx, dy]
    lo, hi = np.maximum(A[:2], b[:2]), np.minimum(A[2:], b[2:])
    ax.add_patch(plt.Rectangle(A[:2], *(A[2:] - A[:2]), fill=False, lw=2, color="tab:blue"))
    ax.add_patch(plt.Rectangle(b[:2], *(b[2:] - b[:2]), fill=False, lw=2, color="tab:orange"))
    if (hi > lo).all():
        ax.add_patch(plt.Rectangle(lo, *(hi - lo), color="tab:green", alpha=0.5))
    iou = ops.box_iou(minicnn.tensor(A[None]), minicnn.tensor(b[None])).item()
    ax.set_title(f"IoU = {iou:.2f}")
    ax.set_xlim(0, 100), ax.set_ylim(90, 0), ax.set_aspect("equal")
fig.suptitle("IoU = green area / (blue area + orange area − green area)")
fig.tight_layout()
fig.savefig(OUT / "20_iou.png", dpi=90)
plt.close(fig)

# %% [markdown]
# ## 2. The 7×7×30 and 7×7×50 tensors
#
# YOLO v1 cuts the 448×448 image into S×S = 7×7 cells. The cell that contains an object's
# centre is the one that must find it. Each cell predicts B = 2 boxes, each `x, y` (the
# centre's offset inside the cell), `w, h` (fractions of the image) and a confidence, plus
# C = 20 class probabilities shared by the cell: 2·5 + 20 = **30** numbers per cell.
# The later variant gives each box its own class scores: 2·(5 + 20) = **50**.
#
# The paper's network (Figure 3) is 24 convolutions and two fully connected layers, the last
# one printing the 7·7·30 numbers. Its first fully connected layer alone has
# 7·7·1024·4096 weights: 205 of its 272 million parameters. We build it at 64×64 input
# (a 1×1 map before the fully connected layers) to keep the lesson light; the output grid
# is the same.

# %%
if not args.quick:
    for class_per_box, depth in ((False, 30), (True, 50)):
        paper = yolo_v1(class_per_box=class_per_box, image_size=64).eval()
        grid = paper.grid_outputs(minicnn.randn(1, 3, 64, 64))
        print(f"yolo_v1(class_per_box={class_per_box}): output {tuple(grid.shape)}")
        assert grid.shape == (1, 7, 7, depth)
        del paper
# the same layout from the small model, at any grid size
small20 = yolo_v1_small(num_classes=20, image_size=56, grid_size=7, class_per_box=True)
grid = small20.grid_outputs(minicnn.randn(1, 3, 56, 56))
assert grid.shape == (1, 7, 7, 50)
print(f"yolo_v1_small(20 classes, class_per_box=True): {tuple(grid.shape)} = 7 x 7 x 2(5 + 20)")

fig, ax = plt.subplots(figsize=(11, 1.8))
parts = [("x", 1), ("y", 1), ("√w", 1), ("√h", 1), ("C", 1), ("20 class scores", 20)] * 2
colours = {"x": "tab:blue", "y": "tab:blue", "√w": "tab:cyan", "√h": "tab:cyan",
           "C": "tab:red", "20 class scores": "tab:green"}
start = 0
for name, width in parts:
    ax.add_patch(plt.Rectangle((start, 0), width, 1, color=colours[name], ec="white"))
    ax.text(start + width / 2, 0.5, name, ha="center", va="center", fontsize=9)
    start += width
ax.text(12.5, 1.2, "box 1", ha="center"), ax.text(37.5, 1.2, "box 2", ha="center")
ax.set_xlim(0, 50), ax.set_ylim(0, 1.5), ax.axis("off")
ax.set_title("the 50 numbers of one cell of the 7×7×50 tensor (class_per_box=True)")
fig.savefig(OUT / "20_grid_tensor.png", dpi=90, bbox_inches="tight")
plt.close(fig)

# %% [markdown]
# ## 3. The loss, term by term
#
# With $\mathbb{1}^{obj}_{ij}$ = "predictor j of cell i is *responsible* for an object" (the
# object's centre is in cell i, and of the cell's B boxes, j has the highest IoU with it):
#
# | term | formula | weight |
# |---|---|---|
# | coord | $\sum \mathbb{1}^{obj}_{ij}[(x - \hat x)^2 + (y - \hat y)^2]$ | λcoord = 5 |
# | size | $\sum \mathbb{1}^{obj}_{ij}[(\sqrt w-\sqrt{\hat w})^2 + (\sqrt h-\sqrt{\hat h})^2]$ | 5 |
# | object | $\sum \mathbb{1}^{obj}_{ij}(C - \hat C)^2$, $\hat C$ = IoU of box and truth | 1 |
# | no_object | $\sum \mathbb{1}^{noobj}_{ij} C^2$ | λnoobj = 0.5 |
# | class | $\sum_i \mathbb{1}^{obj}_i \sum_c (p(c) - \hat p(c))^2$ | 1 |
#
# Square roots: an error of 2 pixels matters more on a small box than on a large one.
# λnoobj = 0.5: most boxes see no object, and their push towards 0 would drown the rest.
# The class term is a squared error of probabilities, as in the paper. Its gradient through
# the softmax, `2(p - p̂)·p(1 - p)`, fades when the network is confidently wrong, so classes
# are learned slowly; `yolo_v1_small(class_loss="ce")` uses the cross-entropy `-log p(c)`
# instead (gradient `p - p̂` on the scores, as in every classifier), and `minicnn train --task
# detect` trains with it. This lesson keeps the paper's loss.
# The model returns the five terms separately (as torchvision's detectors do); we recompute
# two of them by hand from the masks.

# %%
data_size = 64
train_scenes = digit_scenes(train=True, n=96 if args.quick else 800, size=data_size)
test_scenes = digit_scenes(train=False, n=16 if args.quick else 200, size=data_size)
print(f"digit_scenes: {len(train_scenes)} training and {len(test_scenes)} test scenes of "
      f"{data_size}x{data_size}, classes {train_scenes.classes[1:]}")


def as_tensors(samples):
    images = minicnn.tensor(np.stack([image for image, _ in samples]))
    targets = [{"boxes": minicnn.tensor(t["boxes"]), "labels": minicnn.tensor(t["labels"])}
               for _, t in samples]
    return images, targets


train_samples = [train_scenes[i] for i in range(len(train_scenes))]
test_samples = [test_scenes[i] for i in range(len(test_scenes))]
model = yolo_v1_small(num_classes=10, image_size=data_size)  # 8 x 8 cells of 8 pixels
images, targets = as_tensors(train_samples[:4])
terms = model(images, targets)
for name, value in terms.items():
    print(f"  {name:9s} {value.item():8.4f}")
total = sum(terms.values())
print(f"  total     {total.item():8.4f}")

with minicnn.no_grad():
    out = split_outputs(model.grid_outputs(images), 2, 10, False)
enc = encode_targets(out, targets, (data_size, data_size))
conf = out.confidence.numpy()
no_object = 0.5 * ((1 - enc.responsible) * conf**2).sum() / 4
xy_error = ((out.xy.numpy() - enc.xy) ** 2).sum(-1)
coord = 5 * (enc.responsible * xy_error).sum() / 4
assert abs(no_object - terms["no_object"].item()) < 1e-4 * no_object
assert abs(coord - terms["coord"].item()) < 1e-4 * coord
n_objects = sum(len(t["labels"]) for t in targets)
print(f"{n_objects} objects in 4 scenes, {int(enc.responsible.sum())} responsible predictors "
      f"of {enc.responsible.size}: the no_object term sees all the others")

# %% [markdown]
# ## 4. NMS in five steps
#
# After decoding, each box has a score = confidence × class probability. Per class:
#
# 1. drop the boxes scoring at most 0.3 (the threshold);
# 2. select the box with the highest score and keep it;
# 3. compute its IoU with every remaining box;
# 4. drop the boxes whose IoU with it is above 0.5;
# 5. repeat from step 2 until no box is left.
#
# Below, the steps written out, on a cluster of boxes around two objects, compared with
# `minicnn.ops.nms` and torchvision's.

# %%
rng = np.random.default_rng(3)
centres = np.array([[30, 30], [62, 40]])
boxes = np.concatenate([
    np.r_[c - 14, c + 14] + rng.normal(0, 3, (6, 4)) for c in centres]).astype(np.float32)
scores = rng.uniform(0.1, 1.0, len(boxes)).astype(np.float32)


def iou_one(box, others):
    lo, hi = np.maximum(box[:2], others[:, :2]), np.minimum(box[2:], others[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    return inter / (area + np.prod(others[:, 2:] - others[:, :2], axis=1) - inter)


def nms_steps(boxes, scores, score_thresh=0.3, iou_thresh=0.5):
    """The five steps; returns the kept indices and the state after each selection."""
    left = [int(i) for i in np.nonzero(scores > score_thresh)[0]]  # step 1
    kept, history = [], []
    while left:  # step 5
        best = max(left, key=lambda i: scores[i])  # step 2
        kept.append(best)
        left.remove(best)
        ious = iou_one(boxes[best], boxes[left]) if left else np.zeros(0)  # step 3
        dropped = [i for i, v in zip(left, ious, strict=True) if v > iou_thresh]  # step 4
        left = [i for i in left if i not in dropped]
        history.append((best, dropped, list(left)))
    return kept, history


kept, history = nms_steps(boxes, scores)
above = np.nonzero(scores > 0.3)[0]
ours = above[ops.nms(minicnn.tensor(boxes[above]), minicnn.tensor(scores[above]), 0.5).numpy()]
ref = above[torchvision.ops.nms(torch.tensor(boxes[above]), torch.tensor(scores[above]),
                                0.5).numpy()]
print(f"NMS: {len(boxes)} boxes, {len(above)} above 0.3; kept by the five steps: {kept}")
assert list(ours) == kept and list(ref) == kept

fig, axes = plt.subplots(1, len(history) + 1, figsize=(3 * (len(history) + 1), 3.2))
for ax in axes:
    ax.set_xlim(0, 95), ax.set_ylim(75, 0), ax.set_aspect("equal"), ax.set_xticks([])
    ax.set_yticks([])
for i, box in enumerate(boxes):
    style = dict(fill=False, lw=1, color="grey" if scores[i] <= 0.3 else "black")
    axes[0].add_patch(plt.Rectangle(box[:2], *(box[2:] - box[:2]), **style))
axes[0].set_title("all boxes (grey: ≤ 0.3)", fontsize=9)
for ax, (step, (best, dropped, left)) in zip(axes[1:], enumerate(history), strict=True):
    for i in left:
        ax.add_patch(plt.Rectangle(boxes[i, :2], *(boxes[i, 2:] - boxes[i, :2]), fill=False,
                                   color="black", lw=1))
    for i in dropped:
        ax.add_patch(plt.Rectangle(boxes[i, :2], *(boxes[i, 2:] - boxes[i, :2]), fill=False,
                                   color="tab:red", lw=1, ls="--"))
    for i in kept[: step + 1]:
        ax.add_patch(plt.Rectangle(boxes[i, :2], *(boxes[i, 2:] - boxes[i, :2]), fill=False,
                                   color="tab:green", lw=2.5))
    ax.set_title(f"keep {best} ({scores[best]:.2f}), drop {len(dropped)}", fontsize=9)
fig.suptitle("NMS: green kept, red dashed dropped (IoU > 0.5 with the kept box), black left")
fig.tight_layout()
fig.savefig(OUT / "20_nms_steps.png", dpi=90)
plt.close(fig)

# %% [markdown]
# ## 5. Train the small YOLO on handwritten digits
#
# `digit_scenes`: scikit-learn's real handwritten digits, 16-24 pixels each, one to five on a
# textured 64×64 canvas; the test scenes use handwriting the model never trains on.
# `yolo_v1_small` is YOLO v1 on a CPU-sized backbone (six convolutions with batch norm,
# stride 8: an 8×8 grid) with the same loss and decoding. Adam, mini-batches of 32, the
# learning rate annealed to 0 along a cosine. We measure mAP@0.5 with
# `minicnn.metrics.MeanAveragePrecision` (equal to pycocotools').

# %%
minicnn.manual_seed(0)
model = yolo_v1_small(num_classes=10, image_size=data_size)
epochs, batch = (3, 32) if args.quick else (12, 32)
optimizer = optim.Adam(model.parameters(), lr=3e-3)
steps, step = epochs * (len(train_samples) // batch), 0
history_loss = []
order_rng = np.random.default_rng(0)
start = time.perf_counter()
for epoch in range(epochs):
    model.train()
    order = order_rng.permutation(len(train_samples))
    for k in range(0, len(order) - batch + 1, batch):
        for group in optimizer.param_groups:
            group["lr"] = 3e-3 * 0.5 * (1 + np.cos(np.pi * step / steps))
        step += 1
        images, targets = as_tensors([train_samples[i] for i in order[k: k + batch]])
        terms = model(images, targets)
        loss = sum(terms.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history_loss.append({name: value.item() for name, value in terms.items()})
    print(f"epoch {epoch + 1}: loss {sum(history_loss[-1].values()):.3f} "
          f"({time.perf_counter() - start:.0f} s)")

# %% [markdown]
# The course's threshold (score > 0.3) is for showing boxes. Average precision ranks *all*
# detections, so evaluation keeps low-scored boxes too (torchvision's detectors use 0.01
# there): a box below 0.3 can still be a hit, and appending boxes at the bottom of the
# ranking can only extend the precision-recall curve, never lower it.

# %%
model.eval()
images, targets = as_tensors(test_samples)
maps = {}
for thresh in (0.3, 0.01):
    model.score_thresh = thresh
    with minicnn.no_grad():
        detections = model(images)
    metric = MeanAveragePrecision()
    metric.update(detections, targets)
    result = metric.compute()
    maps[thresh] = float(result["map_50"].item())
    print(f"after {epochs} epochs ({time.perf_counter() - start:.0f} s), score > {thresh}: "
          f"test mAP@0.5 = {maps[thresh]:.3f}, mAP@0.5:0.95 = {float(result['map'].item()):.3f}")
model.score_thresh = 0.3
with minicnn.no_grad():
    detections = model(images)  # the boxes to show
map50 = maps[0.3]
assert maps[0.01] >= maps[0.3] - 1e-12
first = np.mean([sum(h.values()) for h in history_loss[:3]])
last = np.mean([sum(h.values()) for h in history_loss[-3:]])
assert last < (0.7 if args.quick else 0.3) * first, (first, last)
if not args.quick:
    # measured: 0.47 (score > 0.3) and 0.74 (score > 0.01) after 12 epochs of 800 scenes
    assert map50 > 0.35 and maps[0.01] > 0.6, maps

fig, ax = plt.subplots(figsize=(6, 3.8))
for name in history_loss[0]:
    ax.plot([h[name] for h in history_loss], label=name)
ax.set_yscale("log"), ax.set_xlabel("step"), ax.legend(fontsize=8)
ax.set_title("the five loss terms")
fig.tight_layout()
shown = min(6, len(test_samples))
fig2, axes2 = plt.subplots(1, shown, figsize=(2.4 * shown, 2.8))
for ax, (image, target), det in zip(axes2, test_samples[:shown], detections, strict=False):
    ax.imshow(image.transpose(1, 2, 0)), ax.axis("off")
    for box in target["boxes"]:
        ax.add_patch(plt.Rectangle(box[:2], *(box[2:] - box[:2]), fill=False, color="white",
                                   lw=1, ls="--"))
    for box, score, label in zip(det["boxes"].numpy(), det["scores"].numpy(),
                                 det["labels"].numpy(), strict=True):
        ax.add_patch(plt.Rectangle(box[:2], *(box[2:] - box[:2]), fill=False,
                                   color="yellow", lw=1.5))
        ax.text(box[0], box[1] - 1, f"{label - 1}:{score:.2f}", color="yellow", fontsize=7)
fig2.suptitle(f"small YOLO on held-out scenes (dashed: truth; boxes scoring > 0.3), "
              f"mAP@0.5 = {maps[0.01]:.2f}")
fig2.tight_layout()
fig2.savefig(OUT / "20_yolo_digits.png", dpi=90)
fig.savefig(OUT / "20_yolo_loss.png", dpi=90)
plt.close(fig), plt.close(fig2)

# %% [markdown]
# ## What to remember
#
# * IoU = intersection / union; 0.5 is the usual "this box found that object".
# * YOLO v1 predicts a fixed S×S×(B·5 + C) tensor in one pass; the cell holding an object's
#   centre is responsible for it, and of its B boxes, the one that overlaps the object most.
# * Its loss is five sums of squares, weighted to favour localisation (λcoord = 5) and to
#   quieten the many empty boxes (λnoobj = 0.5).
# * NMS keeps the best box of each cluster: select, compare IoU, drop above 0.5, repeat.

# %%
print("lesson 20: all checks passed")
