# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 23: Mask R-CNN -- a mask per object
#
# Semantic segmentation (lessons 30-31) gives every pixel a class: two touching "3"s become
# one region of class 3. **Instance segmentation** finds every object, its class, its box
# and its *own* mask. Mask R-CNN (He et al. 2017) gets it from Faster R-CNN with one more
# branch: for each detected box, RoIAlign pools a 14×14 window of the feature map, four
# 3×3 convolutions and a 2× transposed convolution predict a **28×28 mask per class**, and
# the mask of the class the box head chose is pasted back into the image at the box.
#
# This lesson, on scenes of handwritten digits (`digit_scenes`):
#
# 1. instances against classes: one scene's instance masks and its semantic mask;
# 2. the mask head's training target: the object's mask cropped to the proposal and
#    resampled to 28×28 (`project_masks_on_boxes`, checked against torchvision);
# 3. pasting a 28×28 mask back into the image (`paste_masks_in_image`, checked against
#    torchvision), and what the 28×28 resolution costs a thin digit;
# 4. the CPU-sized `maskrcnn_small` trained by `minicnn train --task instance`'s trainer, and
#    box mAP against mask mAP: a box can be right while its mask misses the strokes.
#
# Run it as a script, `python lessons/23_mask_rcnn.py` (`--quick`: a few training steps, as
# CI does), or open it as a notebook.

# %%
import argparse
import os
import sys
import time
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")  # a script only writes files; a notebook keeps its inline figures
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Rectangle
from torchvision.models.detection import roi_heads as tv_roi_heads

import minicnn
from minicnn import optim
from minicnn.autograd import Tensor
from minicnn.data import DataLoader, detection_collate, load_data
from minicnn.data.segmentation import semantic_mask
from minicnn.models.detection import maskrcnn_small
from minicnn.models.detection.roi_heads import paste_masks_in_image, project_masks_on_boxes
from minicnn.ops import box_iou
from minicnn.optim.lr_scheduler import OneCycleLR
from minicnn.train import instance
from minicnn.viz import overlay_instances, overlay_mask, plot_instances

parser = argparse.ArgumentParser(description="Lesson 23: Mask R-CNN")
parser.add_argument("--quick", action="store_true", help="a few training steps (for CI)")
parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the batches")
args, _ = parser.parse_known_args()  # parse_known_args: Jupyter adds arguments of its own

try:
    OUT = Path(__file__).resolve().parent / "out"
except NameError:  # inside a notebook there is no __file__
    OUT = Path("out")
OUT.mkdir(parents=True, exist_ok=True)
minicnn.manual_seed(args.seed)
print(f"quick mode: {args.quick}; seed {args.seed}; figures go to {OUT}")

# %% [markdown]
# ## 1. Instances against classes
#
# A `digit_scenes` sample (with `task="instance"`) is an image and torchvision's target
# dict: per object a box, a label (1..10 for the digits 0..9) and a mask `(H, W)` of its
# visible ink. The semantic mask of lesson 31 is what remains when the objects are
# forgotten: each pixel takes the label of the object covering it.

# %%
train_set, test_set = load_data("digit_scenes", task="instance")
classes = train_set.classes  # "__background__", "0", ..., "9"
scene = next(i for i in range(len(test_set)) if len(test_set[i][1]["labels"]) >= 4)
image, target = test_set[scene]
masks, labels, boxes = target["masks"].astype(bool), target["labels"], target["boxes"]
print(f"scene {scene}: {len(labels)} digits {[classes[k] for k in labels]}, masks "
      f"{masks.shape}, boxes {boxes.shape}")
semantic = semantic_mask(target["masks"], labels)
by_hand = np.zeros(masks.shape[1:], np.int64)
for m, k in zip(masks, labels):
    by_hand[m] = k
assert np.array_equal(semantic, by_hand)
assert masks.sum(axis=0).max() == 1  # visible ink: no pixel belongs to two digits

fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
axes[0].imshow(image.transpose(1, 2, 0))
axes[0].set_title("scene")
axes[1].imshow(overlay_mask(image, semantic, len(classes)), interpolation="nearest")
axes[1].set_title("semantic: a class per pixel")
axes[2].imshow(overlay_instances(image, masks), interpolation="nearest")
for (x1, y1, x2, y2), k in zip(boxes, labels):
    axes[2].add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False,
                                ec="white", lw=1))
    axes[2].text(x1, y1 - 1, classes[k], color="white", fontsize=8)
axes[2].set_title("instances: a mask per object")
for ax in axes:
    ax.axis("off")
fig.tight_layout()
fig.savefig(OUT / "23_instances.png", dpi=90)
plt.close(fig)

# %% [markdown]
# ## 2. The mask head's target: 28×28 inside the proposal
#
# In training, each positive proposal (IoU >= 0.5 with an object) learns that object's mask
# *as seen through the proposal*: the mask is cropped to the proposal's box and resampled to
# 28×28 with RoIAlign (`project_masks_on_boxes`), and the loss is the per-pixel binary
# cross-entropy of the 28×28 logits **of the object's class only** (the other classes' masks
# get no gradient: the class decision stays with the box head). A proposal shifted off the
# object sees the mask shifted and cut. We compare minicnn's targets with torchvision's.

# %%
k = int(np.argmax(masks.sum(axis=(1, 2))))  # the largest digit of the scene
exact = boxes[k]
w, h = exact[2] - exact[0], exact[3] - exact[1]
shifted = exact + np.array([0.15 * w, 0.1 * h, 0.15 * w, 0.1 * h], np.float32)
proposals = np.stack([exact, shifted]).astype(np.float32)
matched = np.array([k, k])
ours = project_masks_on_boxes(Tensor(target["masks"]), Tensor(proposals), matched, 28).numpy()
theirs = tv_roi_heads.project_masks_on_boxes(torch.tensor(target["masks"]),
                                             torch.tensor(proposals), torch.tensor(matched),
                                             28).numpy()
print(f"28x28 targets: shape {ours.shape}, largest difference from torchvision "
      f"{np.abs(ours - theirs).max():.2e}")
np.testing.assert_allclose(ours, theirs, atol=1e-6)
iou_shift = box_iou(Tensor(proposals[:1]), Tensor(proposals[1:])).numpy()[0, 0]
print(f"the shifted proposal's IoU with the box: {iou_shift:.2f} (>= 0.5: still positive)")
assert iou_shift >= 0.5

fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
axes[0].imshow(overlay_instances(image, masks[k:k + 1]), interpolation="nearest")
for box, colour in zip(proposals, ("white", "yellow")):
    axes[0].add_patch(Rectangle((box[0] - 0.5, box[1] - 0.5), box[2] - box[0],
                                box[3] - box[1], fill=False, ec=colour, lw=1.2))
axes[0].set_title(f"digit {classes[labels[k]]}: box (white)\nand a proposal (yellow)")
for ax, t, title in zip(axes[1:], ours, ("target in the box", "target in the proposal")):
    ax.imshow(t, cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"{title}\n28x28, values in [0, 1]")
for ax in axes:
    ax.axis("off")
fig.tight_layout()
fig.savefig(OUT / "23_mask_target.png", dpi=90)
plt.close(fig)

# %% [markdown]
# ## 3. Pasting a 28×28 mask back into the image
#
# At inference the predicted class's 28×28 probabilities are pasted at the detected box
# (`paste_masks_in_image`: the mask gets a one-pixel border, the box grows to match, the mask
# is resized bilinearly to the integer box) and thresholded at 0.5. How much does the round
# trip *mask -> 28×28 -> image* lose? A perfect mask head would still be limited by it.

# %%
pasted = paste_masks_in_image(Tensor(ours[:1, None]), Tensor(exact[None]),
                              masks.shape[1:]).numpy()
pasted_tv = tv_roi_heads.paste_masks_in_image(torch.tensor(ours[:1, None]),
                                              torch.tensor(exact[None]),
                                              masks.shape[1:]).numpy()
np.testing.assert_allclose(pasted, pasted_tv, atol=1e-6)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


round_trip = []
for i in range(8 if args.quick else 100):
    _, t = test_set[i]
    if len(t["labels"]) == 0:
        continue
    small = project_masks_on_boxes(Tensor(t["masks"]), Tensor(t["boxes"]),
                                   np.arange(len(t["labels"])), 28)
    back = paste_masks_in_image(small.reshape(-1, 1, 28, 28), Tensor(t["boxes"]),
                                t["masks"].shape[1:]).numpy()[:, 0] >= 0.5
    round_trip += [mask_iou(b, m.astype(bool)) for b, m in zip(back, t["masks"])]
print(f"mask -> 28x28 -> image: mean IoU {np.mean(round_trip):.3f} over {len(round_trip)} "
      f"digits (min {np.min(round_trip):.3f})")
assert np.mean(round_trip) > 0.75

# %% [markdown]
# ## 4. Training `maskrcnn_small`: box mAP against mask mAP
#
# `maskrcnn_small` is torchvision's Mask R-CNN with every part shrunk for a CPU (a
# three-stage residual backbone and a 64-channel FPN, 1.4 M parameters instead of 44 M; see
# `minicnn.models.detection.small_rcnn`). We train it with the trainer of
# `minicnn train --task instance` (`minicnn.train.instance.InstanceTrainer`: the five loss
# terms summed, Adam with a one-cycle schedule), then measure COCO mAP twice on held-out
# scenes: with the IoU of **boxes** and with the IoU of **masks**. A thin stroke makes the
# mask IoU harsh: a mask one pixel too wide around a 2-pixel stroke has IoU 0.5.

# %%
n_train, n_test, epochs = (8, 8, 1) if args.quick else (1000, 100, instance.DEFAULTS["epochs"])
train_scenes = minicnn.data.Subset(train_set, range(n_train))
test_scenes = minicnn.data.Subset(test_set, range(n_test))
model = maskrcnn_small(num_classes=len(classes))
loader = DataLoader(train_scenes, 4 if args.quick else 8, shuffle=True,
                    collate_fn=detection_collate)
optimizer = optim.Adam(model.parameters(), lr=instance.DEFAULTS["lr"],
                       weight_decay=instance.DEFAULTS["weight_decay"])
scheduler = OneCycleLR(optimizer, max_lr=instance.DEFAULTS["lr"],
                       total_steps=epochs * len(loader))
trainer = instance.InstanceTrainer(model, optimizer, scheduler=scheduler,
                                   scheduler_interval="batch", progress=False)
start = time.process_time()
history = trainer.fit(loader, DataLoader(test_scenes, 50, collate_fn=detection_collate), epochs)
seconds = time.process_time() - start
last = history[-1]
print(f"{epochs} epochs of {n_train} scenes in {seconds:.0f} s of CPU: box mAP@0.5 "
      f"{last['val_map_50']:.3f} (@0.5:0.95 {last['val_map']:.3f}), mask mAP@0.5 "
      f"{last['val_mask_map_50']:.3f} (@0.5:0.95 {last['val_mask_map']:.3f})")

# evaluating again gives the same numbers (the test scenes and weights are fixed)
evaluation = trainer.evaluate(DataLoader(test_scenes, 50, collate_fn=detection_collate))
assert abs(evaluation["val_mask_map"] - last["val_mask_map"]) < 1e-9

# %% [markdown]
# For each true digit, the detection of its class that overlaps it most: its box IoU
# against its mask IoU. Points below the diagonal are boxes better than their masks.

# %%
model.eval()
box_ious, mask_ious, shown = [], [], None
model.roi_heads.score_thresh = 0.3
for images, targets in DataLoader(test_scenes, 50, collate_fn=detection_collate):
    preds = instance.mask_predictions(trainer.predict(images))
    if shown is None:
        shown = (images, preds, targets)
    for p, t in zip(preds, targets):
        for box, lab, m in zip(t["boxes"], t["labels"], t["masks"].astype(bool)):
            same = np.nonzero(p["labels"] == lab)[0]
            if len(same) == 0:
                continue
            ious = box_iou(Tensor(box[None]), Tensor(p["boxes"][same])).numpy()[0]
            j = same[int(np.argmax(ious))]
            box_ious.append(float(ious.max()))
            mask_ious.append(mask_iou(p["masks"][j], m))
box_ious, mask_ious = np.asarray(box_ious), np.asarray(mask_ious)
if len(box_ious):
    print(f"{len(box_ious)} digits found with their class: mean box IoU "
          f"{box_ious.mean():.3f}, mean mask IoU {mask_ious.mean():.3f}")

fig, ax = plt.subplots(figsize=(4.5, 4.2))
ax.scatter(box_ious, mask_ious, s=8, alpha=0.6)
ax.plot([0, 1], [0, 1], "k--", lw=0.8)
ax.set(xlabel="box IoU", ylabel="mask IoU", xlim=(0, 1), ylim=(0, 1),
       title="each true digit and its best detection")
fig.tight_layout()
fig.savefig(OUT / "23_box_vs_mask.png", dpi=90)
plt.close(fig)
plot_instances(shown[0], shown[1], shown[2], classes, OUT / "23_predictions.png",
               max_images=4)

# %% [markdown]
# ## What to remember
#
# * Instance segmentation = detection + a mask per detection; Mask R-CNN adds a small
#   convolutional branch on RoIAlign features to Faster R-CNN.
# * The mask head predicts 28×28 masks per class *inside the box*; training crops the true
#   mask to each positive proposal, inference pastes the chosen class's mask back at the box.
# * The 28×28 resolution is a ceiling (here about the round-trip IoU of section 3), and mask
#   IoU is stricter than box IoU on thin objects: mask mAP sits below box mAP.
# * `minicnn train --task instance` trains `maskrcnn_small` on `shapes` or `digit_scenes` and
#   reports both mAPs each epoch.

# %%
print("lesson 23: all checks passed")
