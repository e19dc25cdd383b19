# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 31: output layers and losses for segmentation
#
# A segmentation network ends like a classifier, once per pixel: a 1×1 convolution to `C`
# channels and a loss averaged over the `H·W` pixels. Which `C` and which loss depends on
# the question:
#
# 1. **One target, no background class: C = 1.** A sigmoid per pixel says "object or
#    not", and the loss is the per-pixel **binary cross-entropy**, averaged over `H·W`.
# 2. **Many classes: C = K + 1.** The deck's example has 7 classes plus the background,
#    `C = 7 + 1`; a softmax over the channels and the per-pixel **cross-entropy**, averaged
#    over `H·W`. The background is one of the classes.
# 3. **Dice**, the overlap `2|A∩B| / (|A| + |B|)`, as a metric and as a soft, differentiable
#    loss.
# 4. **Why the background counts**: it is most of the pixels, so it dominates pixel accuracy
#    and the loss; and a softmax without a background channel must call every pixel an
#    object.
#
# Each formula is written out by hand and checked against minicnn and PyTorch; then the same
# U-Net is trained on the same `shapes` scenes with both output layers. Run it as a script,
# `python lessons/31_seg_outputs_losses.py` (`--quick` for a short run), or as a notebook.
# Figures go to `lessons/out/`.

# %%
import argparse
import os
import sys
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

import minicnn
from minicnn import optim
from minicnn.data import DataLoader, SegmentationScenes, segmentation_collate, shape_scenes
from minicnn.metrics import ConfusionMatrix, mean_dice
from minicnn.models.segmentation import unet
from minicnn.nn import functional as F
from minicnn.viz import overlay_mask

parser = argparse.ArgumentParser(description="Lesson 31: segmentation outputs and losses")
parser.add_argument("--quick", action="store_true", help="a short training run (for CI)")
args, _ = parser.parse_known_args()
OUT = Path(__file__).resolve().parent / "out" if "__file__" in globals() else Path("out")
OUT.mkdir(parents=True, exist_ok=True)
minicnn.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. C = 1: a sigmoid and the binary cross-entropy per pixel
#
# For logits $z_{hw}$ and targets $y_{hw} \in \{0, 1\}$, with $p = \sigma(z)$:
#
# $$L = -\frac{1}{HW} \sum_{h,w} \big[y_{hw} \log p_{hw} + (1 - y_{hw}) \log(1 - p_{hw})\big]$$
#
# (and the mean over the batch too). There is no background channel: "background" is
# simply $p < 0.5$.

# %%
N, H, W = 2, 6, 7
z = rng.normal(size=(N, 1, H, W)).astype(np.float32)
y = (rng.random((N, 1, H, W)) < 0.3).astype(np.float32)
p = 1 / (1 + np.exp(-z.astype(np.float64)))
by_hand = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
ours = F.binary_cross_entropy_with_logits(minicnn.tensor(z), minicnn.tensor(y)).item()
ref = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(z), torch.tensor(y))
print(f"C = 1: per-pixel BCE by hand {by_hand:.6f}, minicnn {ours:.6f}, PyTorch {ref.item():.6f}")
assert abs(ours - by_hand) < 1e-5 and abs(ref.item() - by_hand) < 1e-5

# %% [markdown]
# ## 2. C = 7 + 1: a softmax and the cross-entropy per pixel
#
# Now $z_{chw}$ for $C = 8$ channels (class 0 the background, 1..7 the objects) and a
# class index $y_{hw}$ per pixel:
#
# $$L = -\frac{1}{HW} \sum_{h,w} \log \frac{e^{z_{y_{hw} hw}}}{\sum_c e^{z_{chw}}}$$
#
# Pixels labelled with the *ignore index* (255, e.g. uncertain borders) count in neither
# the sum nor the number of pixels.

# %%
C = 7 + 1
z8 = rng.normal(size=(N, C, H, W)).astype(np.float32)
y8 = rng.integers(0, C, size=(N, H, W))
y8[0, 0, :3] = 255
logp = z8 - np.log(np.exp(z8.astype(np.float64)).sum(1, keepdims=True))
keep = y8 != 255
picked = np.take_along_axis(logp, np.where(keep, y8, 0)[:, None], 1)[:, 0]
by_hand = -picked[keep].mean()
ours = F.cross_entropy(minicnn.tensor(z8), minicnn.tensor(y8), ignore_index=255).item()
ref = torch.nn.functional.cross_entropy(torch.tensor(z8), torch.tensor(y8), ignore_index=255)
print(f"C = 7 + 1: per-pixel cross-entropy by hand {by_hand:.6f}, minicnn {ours:.6f}, "
      f"PyTorch {ref.item():.6f} ({(~keep).sum()} ignored pixels)")
assert abs(ours - by_hand) < 1e-5 and abs(ref.item() - by_hand) < 1e-5

# %% [markdown]
# ## 3. Dice: the metric and the soft loss
#
# For a predicted region $A$ and a true region $B$ of one class, Dice is
# $2|A∩B| / (|A| + |B|)$, between 0 (disjoint) and 1 (identical); it is the F1 score of the
# pixels, and $\text{Dice} = 2\,\text{IoU} / (1 + \text{IoU})$. The **soft Dice loss**
# replaces the hard region by the probabilities: per class $c$,
#
# $$L_c = 1 - \frac{2 \sum p_c t_c + s}{\sum p_c + \sum t_c + s}$$
#
# with a small smoothing $s$ that keeps an empty class defined. It only looks at the
# overlap, not at how many pixels there are, so a small object weighs as much as a large
# one.

# %%
pred = np.array([[0, 1, 1, 0], [0, 1, 1, 2], [0, 0, 2, 2]])
true = np.array([[0, 1, 1, 1], [0, 1, 0, 2], [0, 0, 2, 2]])
for c in (1, 2):
    a, b = pred == c, true == c
    dice = 2 * (a & b).sum() / (a.sum() + b.sum())
    iou = (a & b).sum() / (a | b).sum()
    assert abs(dice - 2 * iou / (1 + iou)) < 1e-12
    print(f"class {c}: |A| = {a.sum()}, |B| = {b.sum()}, |A∩B| = {(a & b).sum()}: "
          f"Dice {dice:.3f}, IoU {iou:.3f}")
hand_mean = np.mean([2 * ((pred == c) & (true == c)).sum() / ((pred == c).sum()
                                                              + (true == c).sum())
                     for c in range(3)])
assert abs(mean_dice(pred, true, 3) - hand_mean) < 1e-12

probs = np.exp(logp)  # softmax of z8
t = np.eye(C)[np.where(keep, y8, 0)].transpose(0, 3, 1, 2) * keep[:, None]
p_kept = probs * keep[:, None]
s = 1.0
per_class = 1 - (2 * (p_kept * t).sum((0, 2, 3)) + s) / (p_kept.sum((0, 2, 3))
                                                        + t.sum((0, 2, 3)) + s)
ours = F.dice_loss(minicnn.tensor(z8), minicnn.tensor(y8), smooth=s, ignore_index=255,
                   reduction="none").numpy()
assert np.allclose(ours, per_class, atol=1e-5)
print(f"soft Dice loss per class (C = 8), by hand = minicnn: {np.round(per_class, 3)}")

# %% [markdown]
# ## 4. The same scenes, two output layers
#
# The `shapes` scenes give both targets from the same objects: the binary mask (any shape
# = 1) and the semantic mask (background 0, circle 1, square 2, triangle 3, cross 4). We
# train the same small U-Net twice, identical except for its last layer: `C = 1` with BCE
# on the binary masks, and `C = 4 + 1` with the cross-entropy on the semantic ones. Both
# find the objects (the foreground IoU); only the second can say which shape each is.

# %%
size, n_train, n_test, epochs = (32, 64, 16, 2) if args.quick else (32, 200, 64, 5)
scenes_train = shape_scenes(True, n=n_train, size=size)
scenes_test = shape_scenes(False, n=n_test, size=size)
semantic_train, semantic_test = SegmentationScenes(scenes_train), SegmentationScenes(scenes_test)
test_images = np.stack([semantic_test[i][0] for i in range(n_test)])
test_masks = np.stack([semantic_test[i][1] for i in range(n_test)])
test_fg = (test_masks > 0).astype(np.int64)


def train(num_outputs: int):
    minicnn.manual_seed(0)
    model = unet(3, num_outputs, base_width=8, depth=2, padding="same", batch_norm=True)
    opt = optim.Adam(model.parameters(), lr=3e-3)
    loader = DataLoader(semantic_train, 16, shuffle=True, collate_fn=segmentation_collate)
    losses = []
    for _ in range(epochs):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            logits = model(minicnn.tensor(xb))
            if num_outputs == 1:  # the binary target: any shape
                loss = F.binary_cross_entropy_with_logits(
                    logits, minicnn.tensor((yb > 0)[:, None].astype(np.float32)))
            else:
                loss = F.cross_entropy(logits, minicnn.tensor(yb))
            loss.backward()
            opt.step()
            losses.append(loss.item())
    model.eval()
    with minicnn.no_grad():
        out = model(minicnn.tensor(test_images)).numpy()
    return losses, out


bce_losses, bce_logits = train(1)
ce_losses, ce_logits = train(5)
binary_pred = (bce_logits[:, 0] > 0).astype(np.int64)  # sigmoid > 0.5
semantic_pred = ce_logits.argmax(1)
fg_iou_binary = ConfusionMatrix(2).update(binary_pred, test_fg).compute()["iou"][1]
fg_iou_semantic = ConfusionMatrix(2).update((semantic_pred > 0).astype(np.int64),
                                            test_fg).compute()["iou"][1]
semantic_scores = ConfusionMatrix(5).update(semantic_pred, test_masks).compute()
print(f"C = 1 + BCE:        foreground IoU {fg_iou_binary:.3f}")
print(f"C = 4 + 1 + CE:     foreground IoU {fg_iou_semantic:.3f}, mIoU over the 5 classes "
      f"{semantic_scores['mean_iou']:.3f}, per class {np.round(semantic_scores['iou'], 3)}")
for losses in (bce_losses, ce_losses):  # both learn
    assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses
if not args.quick:
    assert fg_iou_binary > 0.5 and fg_iou_semantic > 0.5, (fg_iou_binary, fg_iou_semantic)

# %% [markdown]
# ## 5. Why the background counts
#
# **It is most of the pixels.** A "network" that calls every pixel background is right on
# most pixels, yet finds nothing: pixel accuracy flatters it, the IoU of each object class
# (0) and so the mIoU do not.

# %%
background_share = float((test_masks == 0).mean())
nothing = np.zeros_like(test_masks)
lazy = ConfusionMatrix(5).update(nothing, test_masks).compute()
print(f"background: {100 * background_share:.1f}% of the test pixels. Predicting background "
      f"everywhere: pixel accuracy {100 * lazy['pixel_accuracy']:.1f}%, mIoU "
      f"{lazy['mean_iou']:.3f}")
assert abs(lazy["pixel_accuracy"] - background_share) < 1e-12
assert lazy["mean_iou"] < 0.25 < 0.7 < lazy["pixel_accuracy"]

# %% [markdown]
# **It weighs by its pixel count in the loss.** Each pixel adds its own term to the
# cross-entropy, so the background, about four fifths of the pixels, has four times the say
# of all the shapes together: early in training most of the loss is background, and a
# network can lower it a lot by getting the background right. Class weights (`weight=` in
# `cross_entropy`, e.g. the inverse of each class's pixel frequency) rebalance it; the
# "mean" then divides by the summed weights of the pixels, exactly as in PyTorch.

# %%
counts = np.bincount(test_masks.ravel(), minlength=5).astype(np.float64)
weights = (counts.sum() / (5 * np.maximum(counts, 1))).astype(np.float32)
per_pixel = F.cross_entropy(minicnn.tensor(ce_logits), minicnn.tensor(test_masks),
                            reduction="none").numpy()
bg_share_loss = per_pixel[test_masks == 0].sum() / per_pixel.sum()
weighted = F.cross_entropy(minicnn.tensor(ce_logits), minicnn.tensor(test_masks),
                           weight=minicnn.tensor(weights)).item()
ref = torch.nn.functional.cross_entropy(torch.tensor(ce_logits), torch.tensor(test_masks),
                                        weight=torch.tensor(weights)).item()
assert abs(weighted - ref) < 1e-5 * max(1.0, abs(ref))
print(f"background pixels carry {100 * bg_share_loss:.1f}% of the unweighted loss; "
      f"inverse-frequency weights {np.round(weights, 2)} (weighted loss {weighted:.4f} = "
      f"PyTorch's {ref:.4f})")

# %% [markdown]
# **A softmax needs it.** The softmax makes the channels compete for every pixel: drop the
# background channel and each pixel must be one of the four shapes. A sigmoid output
# (C = 1, or one sigmoid per class) has the background built in as "no channel fires".

# %%
without_background = ce_logits[:, 1:].argmax(1) + 1  # 4 channels: a shape everywhere
assert (without_background > 0).all()
forced = ConfusionMatrix(5).update(without_background, test_masks).compute()
print(f"softmax over the 4 shape channels only: every pixel is a shape, mIoU "
      f"{forced['mean_iou']:.3f} instead of {semantic_scores['mean_iou']:.3f}")
assert forced["iou"][0] == 0

fig, axes = plt.subplots(3, 4, figsize=(10, 7.5))
for row in range(3):
    shown = [(overlay_mask(test_images[row], test_masks[row], 5), "truth"),
             (overlay_mask(test_images[row], binary_pred[row], 2), "C = 1, BCE"),
             (overlay_mask(test_images[row], semantic_pred[row], 5), "C = 4 + 1, CE"),
             (overlay_mask(test_images[row], without_background[row], 5),
              "no background channel")]
    for ax, (picture, title) in zip(axes[row], shown, strict=True):
        ax.imshow(picture)
        ax.axis("off")
        if row == 0:
            ax.set_title(title, fontsize=9)
fig.tight_layout()
fig.savefig(OUT / "31_outputs.png", dpi=90)

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(bce_losses, label="C = 1, BCE")
ax.plot(ce_losses, label="C = 4 + 1, cross-entropy")
ax.set(xlabel="batch", ylabel="training loss", title="Same network, same scenes")
ax.legend()
fig.tight_layout()
fig.savefig(OUT / "31_losses.png", dpi=90)

print("lesson 31: all checks passed")
