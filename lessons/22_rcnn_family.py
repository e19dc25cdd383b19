# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 22: the R-CNN family -- R-CNN, Fast R-CNN, anchors, the RPN, RoIPool and RoIAlign
#
# YOLO and SSD (lessons 20, 21) look at the image once and predict boxes from a grid. The
# R-CNN family works in two stages: first *where* objects might be (region proposals), then
# *what* each region is and exactly where its box lies. The deck tells it in three steps:
#
# * **R-CNN** (Girshick et al. 2014): about 2,000 proposals per image from selective search;
#   each is cut out of the image, warped to a fixed size and run through the CNN on its own.
# * **Fast R-CNN** (Girshick 2015): run the CNN *once* on the whole image, cut each proposal
#   out of the *feature map* with RoI pooling, and run only a small head per proposal --
#   "much faster".
# * **Faster R-CNN** (Ren et al. 2015): learn the proposals too, with a region proposal
#   network (RPN) that scores and moves a fixed set of **anchors** on the shared feature map.
#   Mask R-CNN (He et al. 2017) then replaced RoI pooling by **RoIAlign**.
#
# This lesson builds each step with minicnn (`minicnn.models.detection.RCNN` and `FastRCNN`
# in `rcnn.py`; `AnchorGenerator`, `RPNHead`, `RegionProposalNetwork` as torchvision has
# them; `minicnn.ops.roi_pool` and `roi_align`) on `digit_scenes`:
#
# 1. R-CNN against Fast R-CNN on the same proposals with the same backbone and head: time;
# 2. anchors of three sizes and three aspect ratios at one place and on the whole grid;
# 3. what an RPN proposes before and after a short training, and its recall of the digits;
# 4. RoIPool's rounding to the feature grid against RoIAlign's sampling points, on a
#    picture and in numbers.
#
# Run it as a script, `python lessons/22_rcnn_family.py` (about 1.5 minutes of CPU;
# `--quick` for a short run that only checks everything works, as CI does), or open it as a
# notebook.

# %%
import argparse
import os
import sys
import time
from collections import OrderedDict
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")  # a script only writes files; a notebook keeps its inline figures
import matplotlib.pyplot as plt
import numpy as np
import torch
import torchvision
from matplotlib.patches import Rectangle

import minicnn
from minicnn import nn, optim
from minicnn.data import digit_scenes
from minicnn.models.detection import (
    RCNN,
    AnchorGenerator,
    FastRCNN,
    ImageList,
    RegionProposalNetwork,
    RPNHead,
    make_proposals,
    proposal_targets,
    rcnn_box_head,
)
from minicnn.models.detection.roi_heads import fastrcnn_loss
from minicnn.ops import box_iou, roi_align, roi_pool

parser = argparse.ArgumentParser(description="Lesson 22: the R-CNN family")
parser.add_argument("--quick", action="store_true", help="fewer proposals and steps (for CI)")
parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the data")
args, _ = parser.parse_known_args()  # parse_known_args: Jupyter adds arguments of its own

try:
    OUT = Path(__file__).resolve().parent / "out"
except NameError:  # inside a notebook there is no __file__
    OUT = Path("out")
OUT.mkdir(parents=True, exist_ok=True)
minicnn.manual_seed(args.seed)
rng = np.random.default_rng(args.seed)
print(f"quick mode: {args.quick}; seed {args.seed}; figures go to {OUT}")


def draw_boxes(ax, boxes, color, lw=1.0, ls="-", alpha=1.0):
    for x1, y1, x2, y2 in np.asarray(boxes):
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=color, lw=lw, ls=ls,
                               alpha=alpha))


def show(ax, image, title):
    ax.imshow(image.transpose(1, 2, 0), extent=(0, image.shape[2], image.shape[1], 0))
    ax.set_title(title, fontsize=9)
    ax.set_xlim(0, image.shape[2])
    ax.set_ylim(image.shape[1], 0)


def normalise(images):
    """Scenes in [0, 1] -> the network's input: (x - 0.5) / 0.25."""
    return minicnn.tensor((np.stack(images).astype(np.float32) - 0.5) / 0.25)


SIZE = 64
train_set = digit_scenes(train=True, n=64 if args.quick else 400, size=SIZE, max_digits=3)
test_set = digit_scenes(train=False, n=20 if args.quick else 100, size=SIZE, max_digits=3)
print(f"digit_scenes: {len(train_set)} training / {len(test_set)} test scenes of {SIZE}x{SIZE}")


def targets_of(dataset, indices):
    return [{"boxes": minicnn.tensor(np.asarray(dataset[i][1]["boxes"], np.float32)),
             "labels": minicnn.tensor(np.asarray(dataset[i][1]["labels"], np.int64))}
            for i in indices]


# %% [markdown]
# ## 1. R-CNN against Fast R-CNN: where the crop happens
#
# Both detectors get the same proposals, the same backbone and the same head; only the
# place of the crop differs.
#
# * **R-CNN** cuts each proposal out of the *image* (rounded to whole pixels), warps it to
#   32×32 whatever its shape (`warp_proposals`: a bilinear resize), and runs the backbone on
#   each of the K crops: K forward passes.
# * **Fast R-CNN** runs the backbone once per *image*, then `roi_pool` cuts each proposal out
#   of the 8×8 feature map (stride 8) into 4×4 cells.
#
# The backbone: four 3×3 convolutions (16, 32, 64, 64 channels, batch norm, ReLU) with three
# 2×2 max pools, stride 8; a 32×32 crop becomes a 4×4 map, the same size as RoI pooling's
# output, so the same head (two fully connected layers of 256 and Fast R-CNN's predictor:
# 11 class scores and 4 offsets per class) reads both. The proposals stand in for selective
# search: jittered copies of the digits' boxes and random boxes (`make_proposals`).
#
# What costs what: the backbone sees `N·64²` pixels in Fast R-CNN and `K·32²` in R-CNN, so
# with K = 64 proposals per image R-CNN does 16 times the convolutions (the paper: 2,000
# proposals per image, and 9× faster training, 213× faster testing with VGG-16). We time
# both, evaluation (no gradients) for several K and one training step at the largest,
# in CPU seconds (user + system, all threads: the machine may be shared) and wall seconds.
#
# Measured (seed 0, 4 scenes, a shared and busy 2-core machine, so the small times are
# noisy): at K = 256 proposals per scene R-CNN took 1.45 s and Fast R-CNN 0.10 s of CPU to
# evaluate (15×), and 3.45 s against 0.29 s for a training step (12×); at K = 64 22× in
# evaluation. Fast R-CNN's time hardly grows with K (its head is the only per-proposal
# work); R-CNN's grows with K (11× from K = 4 to K = 256).


# %%
def small_backbone():
    conv = nn.Conv2dNormActivation
    return nn.Sequential(conv(3, 16), nn.MaxPool2d(2), conv(16, 32), nn.MaxPool2d(2),
                         conv(32, 64), nn.MaxPool2d(2), conv(64, 64))


STRIDE, POOL = 8, 4
backbone = small_backbone()
head = rcnn_box_head(64, POOL, num_classes=11, representation_size=256)
fast = FastRCNN(backbone, head, pool_size=POOL, spatial_scale=1 / STRIDE)
slow = RCNN(backbone, head, crop_size=POOL * STRIDE)
print(f"backbone {sum(p.numel() for p in backbone.parameters()):,} parameters, head "
      f"{sum(p.numel() for p in head.parameters()):,}; the two detectors share both")

N_IMAGES = 4
images = normalise([test_set[i][0] for i in range(N_IMAGES)])
targets = targets_of(test_set, range(N_IMAGES))
all_proposals = [make_proposals(t["boxes"].numpy(), (SIZE, SIZE), num_jittered=200,
                                num_random=300, rng=rng) for t in targets]
all_proposals = [p[rng.permutation(len(p))] for p in all_proposals]
K_LIST = [4, 16, 64] if args.quick else [4, 16, 64, 256]


def timed(fn, repeat):
    """The smallest CPU and wall seconds of ``repeat`` calls of ``fn``, and its result."""
    best_cpu = best_wall = float("inf")
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        result = fn()
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return best_cpu, best_wall, result


backbone.eval()
timings = {"R-CNN": [], "Fast R-CNN": []}
# what the time is spent on, counted: the pixels of the backbone's input per call
pixels_seen = []
count_hook = backbone.register_forward_pre_hook(
    lambda module, inputs: pixels_seen.append(inputs[0].shape[0] * inputs[0].shape[2]
                                              * inputs[0].shape[3]))
with minicnn.no_grad():
    fast(images, [minicnn.tensor(p[:4]) for p in all_proposals])  # warm-up (kernels compile)
    slow(images, [minicnn.tensor(p[:4]) for p in all_proposals])
    for k in K_LIST:
        proposals = [minicnn.tensor(p[:k]) for p in all_proposals]
        for name, model in (("R-CNN", slow), ("Fast R-CNN", fast)):
            cpu, wall, (logits, deltas) = timed(lambda m=model, p=proposals: m(images, p), 5)
            assert logits.shape == (N_IMAGES * k, 11) and deltas.shape == (N_IMAGES * k, 44)
            timings[name].append((cpu, wall))
            pixels = pixels_seen[-1]  # the last of the timed calls
            # R-CNN convolves every K crop of 32x32, Fast R-CNN each whole image once
            expected = N_IMAGES * k * (POOL * STRIDE) ** 2 if name == "R-CNN" \
                else N_IMAGES * SIZE * SIZE
            assert pixels == expected, (name, k, pixels, expected)
count_hook.remove()
backbone.train()

print(f"\nevaluation of {N_IMAGES} scenes, K proposals per scene (seconds: CPU / wall)")
print(f"{'K':>5s} {'R-CNN':>15s} {'Fast R-CNN':>15s} {'ratio (CPU)':>12s}")
for k, (s_cpu, s_wall), (f_cpu, f_wall) in zip(K_LIST, timings["R-CNN"], timings["Fast R-CNN"]):
    print(f"{k:>5d} {s_cpu:>7.3f} / {s_wall:<6.3f} {f_cpu:>7.3f} / {f_wall:<6.3f} "
          f"{s_cpu / f_cpu:>10.1f}x")

# one training step (forward, Fast R-CNN's loss, backward) at the largest K
k = K_LIST[-1]
proposals = [minicnn.tensor(p[:k]) for p in all_proposals]
labels, regression = proposal_targets(proposals, targets)
n_objects = int(sum((lab.numpy() > 0).sum() for lab in labels))


def train_step(model):
    cls_loss, box_loss = fastrcnn_loss(*model(images, proposals), labels, regression)
    (cls_loss + box_loss).backward()
    backbone.zero_grad()
    head.zero_grad()


for model in (slow, fast):  # warm-up: the backward kernels compile on first use
    train_step(model)
step_times = {name: timed(lambda m=model: train_step(m), 3)[:2]
              for name, model in (("R-CNN", slow), ("Fast R-CNN", fast))}
eval_ratio = timings["R-CNN"][-1][0] / timings["Fast R-CNN"][-1][0]
train_ratio = step_times["R-CNN"][0] / step_times["Fast R-CNN"][0]
print(f"training step, K = {k} ({n_objects} of {N_IMAGES * k} proposals on a digit): R-CNN "
      f"{step_times['R-CNN'][0]:.3f} s, Fast R-CNN {step_times['Fast R-CNN'][0]:.3f} s of CPU")
print(f"Fast R-CNN is {eval_ratio:.1f}x faster in evaluation and {train_ratio:.1f}x faster in "
      f"training at K = {k} proposals per scene (CPU time)")
# R-CNN's cost grows with the proposals, Fast R-CNN's hardly: the convolutions are shared.
# The times above are measurements (noisy on a shared machine: 11-22x measured), not
# checked; what is checked is their cause, counted exactly: the pixels the backbone
# convolves per call, K * 32 * 32 per image for R-CNN against one image for Fast R-CNN
rcnn_pixels = N_IMAGES * K_LIST[-1] * (POOL * STRIDE) ** 2
print(f"backbone input per call at K = {K_LIST[-1]}: R-CNN {rcnn_pixels:,} pixels, "
      f"Fast R-CNN {N_IMAGES * SIZE * SIZE:,} ({rcnn_pixels / (N_IMAGES * SIZE * SIZE):.0f}x)")

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for name, marker in (("R-CNN", "o"), ("Fast R-CNN", "s")):
    axes[0].plot(K_LIST, [c for c, _ in timings[name]], marker=marker, label=name)
axes[0].set_xscale("log", base=2)
axes[0].set_yscale("log")
axes[0].set_xlabel("proposals per scene K")
axes[0].set_ylabel("CPU seconds (evaluation)")
axes[0].set_title(f"{N_IMAGES} scenes of 64x64, same backbone and head")
axes[0].legend()
names = ["R-CNN", "Fast R-CNN"]
x = np.arange(2)
axes[1].bar(x - 0.2, [timings[n][-1][0] for n in names], 0.4, label="evaluation")
axes[1].bar(x + 0.2, [step_times[n][0] for n in names], 0.4, label="training step")
axes[1].set_xticks(x, names)
axes[1].set_ylabel("CPU seconds")
axes[1].set_title(f"K = {k}: Fast R-CNN {eval_ratio:.0f}x / {train_ratio:.0f}x faster")
axes[1].legend()
fig.tight_layout()
fig.savefig(OUT / "22_rcnn_vs_fast.png", dpi=80)
plt.close(fig)

# %% [markdown]
# ## 2. Anchors
#
# Faster R-CNN's RPN does not search the image for regions; it starts from a fixed set of
# **anchors**: at every cell of the feature map, boxes of a few sizes and aspect ratios.
# `AnchorGenerator(sizes=((16, 24, 32),), aspect_ratios=((0.5, 1.0, 2.0),))` gives 3 × 3 = 9
# anchors per cell; for size `s` and ratio `a = h / w` the anchor is `s / sqrt(a)` wide and
# `s·sqrt(a)` high (area `s²`, rounded to whole pixels as torchvision does), centred on
# `(j·stride, i·stride)` for cell `(i, j)` -- the cell's top-left corner in torchvision, not
# its centre. On the 8×8 map of a 64×64 scene that is 576 anchors. The RPN predicts, for
# each, an objectness score and four offsets (the box coder of lesson 21).

# %%
anchor_generator = AnchorGenerator(((16, 24, 32),), ((0.5, 1.0, 2.0),))
per_cell = anchor_generator.num_anchors_per_location()[0]
grid = SIZE // STRIDE
anchors = anchor_generator(ImageList(minicnn.zeros(1, 3, SIZE, SIZE), [(SIZE, SIZE)]),
                           [minicnn.zeros(1, 64, grid, grid)])[0].numpy()
print(f"anchors per location: {per_cell}, anchors in all: {len(anchors)} ({grid}x{grid} cells)")
assert per_cell == 9 and len(anchors) == grid * grid * 9
cell = (4, 3)  # row i, column j
at_cell = anchors.reshape(grid, grid, 9, 4)[cell]
widths, heights = (at_cell[:, 2:] - at_cell[:, :2]).T
centres = (at_cell[:, :2] + at_cell[:, 2:]) / 2
expected = np.array([[s / np.sqrt(a), s * np.sqrt(a)] for a in (0.5, 1.0, 2.0)
                     for s in (16, 24, 32)])
assert np.abs(np.stack([widths, heights], 1) - expected).max() <= 1.0  # whole pixels
assert np.abs(centres - [cell[1] * STRIDE, cell[0] * STRIDE]).max() <= 0.5
print("the 9 anchors at cell (4, 3): width x height",
      ", ".join(f"{w:.0f}x{h:.0f}" for w, h in zip(widths, heights)))

scene_image, scene = test_set[0]
gt = np.asarray(scene["boxes"], np.float32)
anchor_iou = box_iou(minicnn.tensor(gt), minicnn.tensor(anchors)).numpy()
print(f"scene 0: best anchor IoU of each digit {np.round(anchor_iou.max(1), 2)}; anchors with "
      f"IoU >= 0.5 (RPN positives here): {(anchor_iou.max(0) >= 0.5).sum()}")

fig, axes = plt.subplots(1, 2, figsize=(10, 5))
show(axes[0], scene_image, "the 9 anchors of one cell (3 sizes x 3 ratios)")
colours = ["yellow", "orange", "red"]
for n, box in enumerate(at_cell):
    draw_boxes(axes[0], [box], colours[n % 3], lw=1.5)
centres_all = (anchors[::9, :2] + anchors[::9, 2:]) / 2
for ax in axes:
    ax.scatter(*centres_all.T, s=8, c="white", edgecolors="black", linewidths=0.5)
axes[0].scatter([cell[1] * STRIDE], [cell[0] * STRIDE], s=40, c="red")
show(axes[1], scene_image, "digits (red) and their anchors with IoU >= 0.5 (yellow)")
draw_boxes(axes[1], anchors[anchor_iou.max(0) >= 0.5], "yellow", lw=0.8, ls="--")
draw_boxes(axes[1], anchors[anchor_iou.argmax(1)], "cyan", lw=1.2)
draw_boxes(axes[1], gt, "red", lw=2)
for ax in axes:
    ax.set_xticks(np.arange(0, SIZE + 1, STRIDE))
    ax.set_yticks(np.arange(0, SIZE + 1, STRIDE))
    ax.grid(color="white", lw=0.3)
fig.suptitle("anchor centres (white dots): one per cell of the 8x8 map, at j*8, i*8; "
             "cyan: each digit's best anchor", fontsize=9)
fig.tight_layout()
fig.savefig(OUT / "22_anchors.png", dpi=80)
plt.close(fig)

# %% [markdown]
# ## 3. What an RPN proposes, before and after training
#
# The RPN (`RegionProposalNetwork` with an `RPNHead`: a 3×3 convolution, then per anchor one
# objectness logit and four offsets) on the backbone of section 1. Training (Ren et al.,
# section 3.1.2): an anchor is positive if its IoU with a digit is at least 0.5 here (0.7 in
# the paper and torchvision, for larger objects than our 13×20-pixel digits), or it is a
# digit's best anchor; negative below 0.3; 64 anchors sampled per image, half positive at
# most; binary cross-entropy on the objectness and smooth-L1 on the positives' offsets.
# At test time every anchor is moved by its offsets, the 300 best are kept, NMS at IoU 0.7
# removes duplicates, and the rest are the proposals, best first.
#
# We measure the **recall**: the share of the test digits that some proposal among the top
# k of their scene overlaps by IoU >= 0.5 -- what the second stage can hope to find.
# Before training the objectness scores are noise, so the top proposals are anchors in
# random places; after a short training (Adam, batches of 16 scenes) they sit on the digits.
#
# Measured (seed 0, 150 steps of 16 scenes, 70 s of CPU; 203 digits of 100 held-out scenes):
# the top 10 proposals per scene found 6% of the digits before training and 100% after; the
# top 5 3% and 96%; the single best 0% and 48% (a scene holds up to three digits).

# %%
rpn_backbone = small_backbone()
rpn = RegionProposalNetwork(anchor_generator, RPNHead(64, per_cell), fg_iou_thresh=0.5,
                            bg_iou_thresh=0.3, batch_size_per_image=64, positive_fraction=0.5,
                            pre_nms_top_n={"training": 300, "testing": 300},
                            post_nms_top_n={"training": 100, "testing": 100}, nms_thresh=0.7)


def propose(dataset):
    """The RPN's proposals (best first) on every scene of ``dataset``, with the targets."""
    rpn_backbone.eval()
    rpn.eval()
    out = []
    with minicnn.no_grad():
        for start in range(0, len(dataset), 25):
            indices = range(start, min(start + 25, len(dataset)))
            x = normalise([dataset[i][0] for i in indices])
            boxes, _ = rpn(ImageList(x, [(SIZE, SIZE)] * len(indices)),
                           OrderedDict([("0", rpn_backbone(x))]))
            out += zip(boxes, targets_of(dataset, indices))
    rpn_backbone.train()
    rpn.train()
    return out


def recall(proposed, k):
    """Share of the digits overlapped by IoU >= 0.5 by one of their scene's top-k proposals."""
    found = total = 0
    for boxes, target in proposed:
        iou = box_iou(target["boxes"], boxes[:k]).numpy()
        found += int((iou.max(1) >= 0.5).sum()) if iou.size else 0
        total += len(target["boxes"])
    return found / total


TOP = (1, 5, 10, 50)
before = propose(test_set)
recall_before = {k: recall(before, k) for k in TOP}

steps = 30 if args.quick else 150
batch = 8 if args.quick else 16
optimizer = optim.Adam(list(rpn_backbone.parameters()) + list(rpn.parameters()), lr=2e-3)
history = []
cpu, wall = time.process_time(), time.perf_counter()
for _ in range(steps):
    indices = rng.choice(len(train_set), batch, replace=False)
    x = normalise([train_set[i][0] for i in indices])
    _, losses = rpn(ImageList(x, [(SIZE, SIZE)] * batch), OrderedDict([("0", rpn_backbone(x))]),
                    targets_of(train_set, indices))
    loss = losses["loss_objectness"] + losses["loss_rpn_box_reg"]
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    history.append([losses["loss_objectness"].item(), losses["loss_rpn_box_reg"].item()])
history = np.asarray(history)
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
print(f"RPN: {steps} steps of {batch} scenes in {cpu:.0f} s of CPU ({wall:.0f} s wall); "
      f"objectness loss {history[:5, 0].mean():.3f} -> {history[-5:, 0].mean():.3f}")
after = propose(test_set)
recall_after = {k: recall(after, k) for k in TOP}
print(f"recall of the {sum(len(t['boxes']) for _, t in after)} test digits at IoU 0.5:")
for k in TOP:
    print(f"  top {k:>2d} proposals per scene: before training {recall_before[k]:.2f}, "
          f"after {recall_after[k]:.2f}")
assert np.isfinite(history).all()
assert history[-5:, 0].mean() < history[:5, 0].mean()
if not args.quick:  # measured: top-10 recall 0.06 before, 1.00 after (seed 0)
    assert recall_after[10] > 0.9 and recall_after[10] > recall_before[10] + 0.5, (
        recall_before, recall_after)

fig, axes = plt.subplots(2, 4, figsize=(14, 7.4))
for row, (name, proposed) in zip(axes, (("before training", before), ("after", after))):
    for ax, (boxes, target), i in zip(row, proposed, range(4)):
        show(ax, test_set[i][0], f"{name}: top 10 proposals (yellow)")
        draw_boxes(ax, boxes.numpy()[:10], "yellow", lw=1.0)
        draw_boxes(ax, target["boxes"].numpy(), "red", lw=2)
        ax.axis("off")
fig.suptitle(f"RPN proposals; recall of the test digits by the top 10 at IoU 0.5: "
             f"{recall_before[10]:.2f} before, {recall_after[10]:.2f} after {steps} steps")
fig.tight_layout()
fig.savefig(OUT / "22_rpn_proposals.png", dpi=80)
plt.close(fig)

# %% [markdown]
# ## 4. RoIPool against RoIAlign: rounding to the grid
#
# A proposal's corners are real numbers; the feature map has cells of 8 pixels. RoIPool
# (Fast R-CNN) **rounds twice**: the box's corners to the nearest cell (`round(x / 8)`,
# inclusive at both ends), then each of its `2 × 2` bins to whole cells (`floor` at the
# start, `ceil` at the end, so neighbouring bins may share cells), and takes the maximum
# of each bin's cells. RoIAlign (Mask R-CNN) **rounds nothing**: each bin reads
# `2 × 2` evenly spaced points by bilinear interpolation of the four cells around each and
# averages them. (We use `aligned=True`, Detectron2's half-cell correction, so that cell `i`
# sits at its centre `(i + 0.5)·8` pixels; torchvision's Faster/Mask R-CNN use the paper's
# `aligned=False`, which reads every point half a cell off.)
#
# The picture: the box, the cells RoIPool takes for each bin (worked out by hand here and
# checked against `roi_pool`), and RoIAlign's sampling points. Then the numbers: on a map
# whose cells hold their own x coordinate `(i + 0.5)·8` (a ramp), a bin's true average is
# the x of its centre; RoIAlign gives exactly that, RoIPool a staircase that moves only when
# the rounding jumps. Last, on the trained backbone's features of a scene: a box moved right
# by 1, 2, ... pixels, and how much each pooled output changes.

# %%
BOX = np.array([17.0, 9.0, 41.0, 41.0], np.float32)  # /8: (2.125, 1.125, 5.125, 5.125)
OUT_SIZE, SCALE = 2, 1 / STRIDE


def roipool_cells(box, out_size=OUT_SIZE, scale=SCALE, size=grid):
    """RoIPool's cells, by hand: per bin (row, column) the half-open ranges of feature rows
    and columns it takes the maximum over."""
    x1, y1, x2, y2 = (int(np.floor(v * scale + 0.5)) for v in box)  # round half away from 0
    w, h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
    bins = {}
    for by in range(out_size):
        for bx in range(out_size):
            r0 = min(max(int(np.floor(by * h / out_size)) + y1, 0), size)
            r1 = min(max(int(np.ceil((by + 1) * h / out_size)) + y1, 0), size)
            c0 = min(max(int(np.floor(bx * w / out_size)) + x1, 0), size)
            c1 = min(max(int(np.ceil((bx + 1) * w / out_size)) + x1, 0), size)
            bins[by, bx] = (r0, r1, c0, c1)
    return bins


def roialign_points(box, out_size=OUT_SIZE, ratio=2):
    """RoIAlign's sampling points in image pixels (aligned=True): per bin ``ratio x ratio``
    points at the centres of an even grid over the bin."""
    x1, y1, x2, y2 = box
    bw, bh = (x2 - x1) / out_size, (y2 - y1) / out_size
    return {(by, bx): [(x1 + (bx + (sx + 0.5) / ratio) * bw, y1 + (by + (sy + 0.5) / ratio) * bh)
                       for sy in range(ratio) for sx in range(ratio)]
            for by in range(out_size) for bx in range(out_size)}


# a ramp: every cell holds the x coordinate of its centre, (i + 0.5) * 8 pixels
ramp = np.broadcast_to((np.arange(grid) + 0.5) * STRIDE, (1, 1, grid, grid)).astype(np.float32)
ramp_t = minicnn.tensor(ramp.copy())
bins = roipool_cells(BOX)
pool_out = roi_pool(ramp_t, [minicnn.tensor(BOX[None])], OUT_SIZE, SCALE).numpy()[0, 0]
by_hand = np.array([[ramp[0, 0, r0:r1, c0:c1].max() for bx in range(OUT_SIZE)
                     for (r0, r1, c0, c1) in [bins[by, bx]]] for by in range(OUT_SIZE)])
assert np.array_equal(pool_out, by_hand)
print(f"box {BOX.tolist()} on the 8x8 map of stride 8: RoIPool's bins take cells "
      + "; ".join(f"bin {k}: rows {r0}-{r1 - 1}, columns {c0}-{c1 - 1}"
                  for k, (r0, r1, c0, c1) in bins.items()))


def pooled_x(box):
    """The top-left bin of ``box`` on the ramp: RoIPool, RoIAlign (aligned), the true mean,
    with torchvision's ops as the reference for both."""
    boxes = [minicnn.tensor(box[None])]
    ours_pool = roi_pool(ramp_t, boxes, OUT_SIZE, SCALE).numpy()[0, 0, 0, 0]
    ours_align = roi_align(ramp_t, boxes, OUT_SIZE, SCALE, 2, aligned=True).numpy()[0, 0, 0, 0]
    tv_boxes = [torch.tensor(box[None])]
    tv_pool = torchvision.ops.roi_pool(torch.tensor(ramp), tv_boxes, OUT_SIZE, SCALE)
    tv_align = torchvision.ops.roi_align(torch.tensor(ramp), tv_boxes, OUT_SIZE, SCALE, 2,
                                         aligned=True)
    assert abs(ours_pool - tv_pool[0, 0, 0, 0].item()) < 1e-5
    assert abs(ours_align - tv_align[0, 0, 0, 0].item()) < 1e-4
    true_mean = box[0] + (box[2] - box[0]) / (2 * OUT_SIZE)  # x of the bin's centre
    return ours_pool, ours_align, true_mean


shifts = np.arange(0, 16.5, 0.5)
ramp_values = np.array([pooled_x(BOX + np.array([s, 0, s, 0], np.float32)) for s in shifts])
pool_err = np.abs(ramp_values[:, 0] - ramp_values[:, 2])
align_err = np.abs(ramp_values[:, 1] - ramp_values[:, 2])
print(f"ramp, top-left bin, box moved right by 0-16 px: RoIAlign's error at most "
      f"{align_err.max():.1e} px, RoIPool's up to {pool_err.max():.1f} px")
assert align_err.max() < 1e-3 and pool_err.max() >= STRIDE / 2

# real features: the trained backbone's map of a test scene, the box moved right
with minicnn.no_grad():
    rpn_backbone.eval()
    feats = rpn_backbone(normalise([test_set[0][0]]))
    rpn_backbone.train()


def pooled(box, fn):
    return fn(feats, [minicnn.tensor(box[None])]).numpy()


def pool_fn(f, b):
    return roi_pool(f, b, OUT_SIZE, SCALE)


def align_fn(f, b):
    return roi_align(f, b, OUT_SIZE, SCALE, 2, aligned=True)


base = {"RoIPool": pooled(BOX, pool_fn), "RoIAlign": pooled(BOX, align_fn)}
changes = {name: [] for name in base}
for s in range(1, 9):
    moved = BOX + np.array([s, 0, s, 0], np.float32)
    for name, fn in (("RoIPool", pool_fn), ("RoIAlign", align_fn)):
        changes[name].append(np.linalg.norm(pooled(moved, fn) - base[name])
                             / np.linalg.norm(base[name]))
print("box moved right by 1..8 px; relative change of the pooled features:")
for name, values in changes.items():
    print(f"  {name:8s} " + " ".join(f"{v:.3f}" for v in values))
# RoIPool cannot see a shift of 1 or 2 px (the rounded corners stay on the same cells:
# 2.125 + 2/8 < 2.5), RoIAlign follows every pixel
assert changes["RoIPool"][0] == 0 and changes["RoIPool"][1] == 0
assert min(changes["RoIAlign"]) > 0
print(f"a shift of 2 px changes RoIPool's output by {changes['RoIPool'][1]:.3f}, RoIAlign's by "
      f"{changes['RoIAlign'][1]:.3f}; at 3 px RoIPool jumps by {changes['RoIPool'][2]:.3f}")

fig, axes = plt.subplots(1, 3, figsize=(16, 5))
bin_colours = {(0, 0): "red", (0, 1): "orange", (1, 0): "cyan", (1, 1): "magenta"}
for ax, title in zip(axes[:2], ("RoIPool: the box (white) rounded to cells, 2x2 bins",
                                "RoIAlign: 2x2 bins, 2x2 bilinear samples each")):
    show(ax, test_set[0][0], title)
    ax.set_xticks(np.arange(0, SIZE + 1, STRIDE))
    ax.set_yticks(np.arange(0, SIZE + 1, STRIDE))
    ax.grid(color="white", lw=0.5)
    draw_boxes(ax, [BOX], "white", lw=2)
for (by, bx), (r0, r1, c0, c1) in bins.items():
    axes[0].add_patch(Rectangle((c0 * STRIDE, r0 * STRIDE), (c1 - c0) * STRIDE,
                                (r1 - r0) * STRIDE, fill=True, fc=bin_colours[by, bx],
                                alpha=0.25, ec=bin_colours[by, bx], lw=2))
x1, y1, x2, y2 = BOX
for (by, bx), points in roialign_points(BOX).items():
    bw, bh = (x2 - x1) / OUT_SIZE, (y2 - y1) / OUT_SIZE
    axes[1].add_patch(Rectangle((x1 + bx * bw, y1 + by * bh), bw, bh, fill=False,
                                ec=bin_colours[by, bx], lw=1.5, ls="--"))
    axes[1].scatter(*np.array(points).T, s=25, c=bin_colours[by, bx], edgecolors="black")
axes[1].scatter(*np.meshgrid((np.arange(grid) + 0.5) * STRIDE, (np.arange(grid) + 0.5) * STRIDE),
                s=4, c="white")
axes[2].plot(shifts, ramp_values[:, 2], "k-", lw=3, alpha=0.3, label="true mean of the bin")
axes[2].plot(shifts, ramp_values[:, 1], "b.-", label="RoIAlign")
axes[2].step(shifts, ramp_values[:, 0], "r-", where="post", label="RoIPool")
axes[2].set_xlabel("box moved right by (pixels)")
axes[2].set_ylabel("top-left bin's value on the ramp (x, pixels)")
axes[2].set_title("a ramp map: RoIAlign follows the box, RoIPool jumps a cell at a time",
                  fontsize=9)
axes[2].legend()
fig.tight_layout()
fig.savefig(OUT / "22_roipool_vs_roialign.png", dpi=80)
plt.close(fig)

# %% [markdown]
# ## What to remember
#
# * R-CNN runs the CNN on every warped proposal; Fast R-CNN runs it once per image and cuts
#   the proposals out of the feature map, so its cost hardly grows with the number of
#   proposals (section 1: 15× faster to evaluate, 12× to train at 256 proposals per scene
#   here; the paper's 213× and 9× are VGG-16 on 2,000 proposals of large images).
# * Faster R-CNN's RPN scores and moves a fixed set of anchors (sizes × aspect ratios at
#   every cell) on the same feature map; a short training turns random proposals into
#   proposals on the objects (the recall above).
# * RoIPool rounds the box and its bins to feature cells, so small shifts of a box are lost
#   and larger ones jump by a cell; RoIAlign samples the map bilinearly where the box
#   really is -- what Mask R-CNN's pixel-accurate masks need.
# * `minicnn.models.detection.fasterrcnn_resnet50_fpn` and `maskrcnn_resnet50_fpn` are these
#   pieces at full size, with torchvision's names, weights and outputs.

# %%
print("lesson 22: all checks passed")
