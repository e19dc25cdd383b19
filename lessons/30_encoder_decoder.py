# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 30: encoder-decoder networks
#
# A classifier shrinks a 64×64 image to one label. Segmentation wants a label for *every*
# pixel, at full resolution. The networks of this part all have the same shape: an
# **encoder** that pools the image down to a small, wide **bottleneck** (it says *what* is
# there) and a **decoder** that brings it back up to the input's size (it says *where*).
# This lesson builds the pieces and checks each one:
#
# 1. Three ways up: DeconvNet's **unpooling with switches**, the **transposed
#    convolution**, and plain **interpolation**; each against PyTorch.
# 2. The bottleneck and its **receptive field**: how much of the image one bottleneck pixel
#    sees, by formula and measured with gradients.
# 3. **Skip connections**: U-Net *concatenates* the encoder's maps to the decoder's, a
#    residual network *adds* them. Three small encoder-decoders (no skip, concatenate, add)
#    trained on the same scenes: the skips bring the boundaries back.
# 4. **ResU-Net**: U-Net's long skips plus short residual connections with batch norm.
#
# Run it as a script, `python lessons/30_encoder_decoder.py` (`--quick` for a short run), or
# as a notebook. Figures go to `lessons/out/`.

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

import minicnn
from minicnn import nn, optim
from minicnn.data import DataLoader, load_data, segmentation_collate
from minicnn.metrics import ConfusionMatrix
from minicnn.models.segmentation import ResidualUnit, resunet, unet
from minicnn.nn import functional as F
from minicnn.train.segment import build_segmenter
from minicnn.viz import overlay_mask

parser = argparse.ArgumentParser(description="Lesson 30: encoder-decoder networks")
parser.add_argument("--quick", action="store_true", help="a short training run (for CI)")
args, _ = parser.parse_known_args()
OUT = Path(__file__).resolve().parent / "out" if "__file__" in globals() else Path("out")
OUT.mkdir(parents=True, exist_ok=True)
minicnn.manual_seed(0)

# %% [markdown]
# ## 1. Three ways up
#
# The encoder's 2×2 max pooling keeps the largest of four values and forgets where it was.
# **Unpooling** (Noh et al. 2015, DeconvNet) remembers: the pooling records the position of
# each maximum (the *switch*), and unpooling puts each value back exactly there, zeros
# elsewhere. The result is sparse but the boundaries are where they were. DeconvNet then
# densifies it with learned "deconvolutions".
#
# A **transposed convolution** with a 2×2 kernel and stride 2 (U-Net's up-convolution)
# paints a learned 2×2 patch per input pixel: the gradient of a strided convolution, run
# forward. **Interpolation** (ResU-Net in the course deck) has no parameters at all:
# bilinear weights of the four nearest pixels.

# %%
digits_train, _ = load_data("digits")
image = np.asarray(digits_train[3][0], np.float32)[None]  # (1, 1, 32, 32): one digit
x = minicnn.tensor(image, requires_grad=True)
pooled, switches = F.max_pool2d(x, 2, 2, return_indices=True)
unpooled = F.max_unpool2d(pooled, switches, 2, 2)
tx = torch.tensor(image, requires_grad=True)
tpooled, tswitches = torch.nn.functional.max_pool2d(tx, 2, 2, return_indices=True)
tunpooled = torch.nn.functional.max_unpool2d(tpooled, tswitches, 2, 2)
assert np.array_equal(switches.numpy(), tswitches.numpy())
assert np.array_equal(unpooled.detach().numpy(), tunpooled.detach().numpy())
# each 2x2 window of the unpooled map holds one non-zero value: its maximum, at its place
windows = unpooled.detach().numpy()[0, 0].reshape(16, 2, 16, 2)
assert ((windows != 0).sum(axis=(1, 3)) <= 1).all()
assert np.allclose(windows.max(axis=(1, 3)), pooled.detach().numpy()[0, 0])
# the gradient follows the switches back: only the maxima receive any
g = np.random.default_rng(0).normal(size=image.shape).astype(np.float32)
(unpooled * minicnn.tensor(g)).sum().backward()
(tunpooled * torch.tensor(g)).sum().backward()
assert np.allclose(x.grad.numpy(), tx.grad.numpy())
print(f"unpooling: {int((unpooled.detach().numpy() != 0).sum())} of {image.size} pixels "
      f"non-zero, each at its switch; equal to PyTorch's max_unpool2d, gradient too")

up_t = nn.ConvTranspose2d(1, 1, 2, stride=2)
t_up = torch.nn.ConvTranspose2d(1, 1, 2, stride=2)
t_up.weight.data = torch.tensor(up_t.weight.detach().numpy())
t_up.bias.data = torch.tensor(up_t.bias.detach().numpy())
transposed = up_t(pooled)
assert np.allclose(transposed.detach().numpy(), t_up(tpooled).detach().numpy(), atol=1e-6)
# kernel 2, stride 2: output pixel (2i + a, 2j + b) = w[a, b] * input (i, j) + bias
w = up_t.weight.detach().numpy()[0, 0]
p = pooled.detach().numpy()[0, 0]
assert np.allclose(transposed.detach().numpy()[0, 0],
                   np.kron(p, w) + up_t.bias.detach().numpy()[0], atol=1e-6)
bilinear = F.interpolate(pooled, scale_factor=2, mode="bilinear", align_corners=False)
t_bilinear = torch.nn.functional.interpolate(tpooled, scale_factor=2, mode="bilinear",
                                             align_corners=False)
assert np.allclose(bilinear.detach().numpy(), t_bilinear.detach().numpy(), atol=1e-6)
print(f"transposed convolution: {up_t.weight.numel() + 1} parameters, the patch kron(x, w); "
      f"bilinear interpolation: none; both equal to PyTorch")

fig, axes = plt.subplots(1, 5, figsize=(12, 2.8))
for ax, (title, a) in zip(axes, [("input 32x32", image), ("max pool 16x16", p[None, None]),
                                 ("unpool (switches)", unpooled.detach().numpy()),
                                 ("transposed conv 2x2/2", transposed.detach().numpy()),
                                 ("bilinear", bilinear.detach().numpy())], strict=True):
    ax.imshow(np.asarray(a)[0, 0], cmap="gray", interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
fig.tight_layout()
fig.savefig(OUT / "30_upsampling.png", dpi=90)

# %% [markdown]
# ## 2. The bottleneck and the receptive field
#
# Each 3×3 convolution lets a pixel see one more neighbour on each side, *in the units of
# its own map*; each 2×2 pooling doubles those units (the *jump*). So the receptive field of
# one bottleneck pixel of a U-Net with `depth` poolings is
#
# $$r = 1 + \sum_{\text{layers}} (k - 1)\, j, \qquad j \leftarrow j \cdot s$$
#
# with two 3×3 convolutions per level, a 2×2 pool between levels, two more convolutions at
# the bottom. We check the formula by measuring it: the gradient of one bottleneck pixel
# with respect to the input is non-zero exactly on the pixels it depends on. (All weights
# are set positive, so no ReLU is silent; max pooling routes each gradient to one pixel of
# its window, so we take the union over a few random images.)

# %%


def receptive_field(depth: int) -> int:
    r, j = 1, 1
    for _ in range(depth):
        r += 2 * (3 - 1) * j  # two 3x3 convolutions
        r += (2 - 1) * j  # the 2x2 pool ...
        j *= 2  # ... doubles the jump
    return r + 2 * (3 - 1) * j  # the bottleneck's two convolutions


def measured_receptive_field(depth: int, size: int = 96) -> int:
    model = unet(1, 2, base_width=2, depth=depth, padding="same")
    for prm in model.parameters():
        prm.data = minicnn.tensor(np.abs(prm.detach().numpy()) + 0.01)
    xs = minicnn.tensor(np.random.default_rng(depth).random((6, 1, size, size),
                                                            dtype=np.float32),
                        requires_grad=True)
    h = xs
    for block in model.encoder:
        h = model.pool(block(h))
    h = model.bottleneck(h)
    c = h.shape[2] // 2
    h[:, 0, c, c].sum().backward()
    touched = np.abs(xs.grad.numpy()).sum(axis=(0, 1)) > 0
    rows, cols = np.nonzero(touched)
    return int(max(rows.max() - rows.min(), cols.max() - cols.min()) + 1)


rf = {}
for depth in (1, 2, 3):
    rf[depth] = receptive_field(depth)
    measured = measured_receptive_field(depth)
    print(f"U-Net depth {depth}: bottleneck at 1/{2 ** depth} of the size, "
          f"{2 ** depth * 64 if depth else 64} channels at the paper's width, "
          f"receptive field {rf[depth]} px (measured {measured})")
    assert measured == rf[depth], (depth, measured, rf[depth])
assert receptive_field(4) == 140  # the paper's U-Net: 140 x 140 pixels of context
print(f"the paper's U-Net (depth 4): {receptive_field(4)} px seen by one bottleneck pixel")

# %% [markdown]
# A depth-3 bottleneck pixel sees 68×68 pixels: a whole 64×64 scene, enough to tell a
# square from a cross. But it is 8× coarser than the input: a boundary known only to the
# nearest 8 pixels. The decoder has to bring the *where* back, and that is what the skips
# are for.
#
# ## 3. Skip connections: concatenate or add
#
# Three encoder-decoders with the same encoder (two levels, 16 and 32 channels) and the
# same decoder, trained identically on the `shapes` segmentation scenes (background + 4
# shapes), differing only in what reaches the decoder from the encoder:
#
# * **none**: the decoder sees only the upsampled bottleneck;
# * **concatenate** (U-Net): `cat([skip, up], 1)`, twice the channels, the next convolution
#   learns how to mix them;
# * **add** (residual style): `skip + up`, same channels, fewer parameters.

# %%


def conv_bn(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU())


class TinyEncoderDecoder(nn.Module):
    """x: (N, 3, H, W) -> (N, classes, H, W); skip in {"none", "concat", "add"}."""

    def __init__(self, skip: str, classes: int = 5, width: int = 16):
        super().__init__()
        self.skip = skip
        self.enc1, self.enc2 = conv_bn(3, width), conv_bn(width, 2 * width)
        self.bottom = conv_bn(2 * width, 4 * width)
        self.up2 = nn.ConvTranspose2d(4 * width, 2 * width, 2, stride=2)
        self.up1 = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        grow = 2 if skip == "concat" else 1
        self.dec2, self.dec1 = conv_bn(grow * 2 * width, 2 * width), conv_bn(grow * width, width)
        self.head = nn.Conv2d(width, classes, 1)
        self.pool = nn.MaxPool2d(2)

    def merge(self, skip, up):
        if self.skip == "concat":
            return minicnn.cat([skip, up], 1)
        return skip + up if self.skip == "add" else up

    def forward(self, x):
        s1 = self.enc1(x)
        s2 = self.enc2(self.pool(s1))
        h = self.bottom(self.pool(s2))
        h = self.dec2(self.merge(s2, self.up2(h)))
        h = self.dec1(self.merge(s1, self.up1(h)))
        return self.head(h)


size, n_train, n_test, epochs = (32, 48, 16, 2) if args.quick else (32, 240, 64, 4)
train, test = load_data("shapes", task="segment", image_size=size)
train_sub = [train[i] for i in range(n_train)]
test_sub = [test[i] for i in range(n_test)]
test_images = np.stack([im for im, _ in test_sub])
test_masks = np.stack([m for _, m in test_sub])


def train_and_score(model):
    minicnn.manual_seed(0)
    opt = optim.Adam(model.parameters(), lr=3e-3)
    loader = DataLoader(train_sub, 16, shuffle=True, collate_fn=segmentation_collate)
    for _ in range(epochs):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            F.cross_entropy(model(minicnn.tensor(xb)), minicnn.tensor(yb)).backward()
            opt.step()
    model.eval()
    with minicnn.no_grad():
        pred = model(minicnn.tensor(test_images)).numpy().argmax(1)
    scores = ConfusionMatrix(5).update(pred, test_masks).compute()
    # boundary pixels: those with a neighbour of another class (where the "where" matters)
    edge = np.zeros_like(test_masks, bool)
    edge[:, 1:] |= test_masks[:, 1:] != test_masks[:, :-1]
    edge[:, :, 1:] |= test_masks[:, :, 1:] != test_masks[:, :, :-1]
    return scores["mean_iou"], float((pred == test_masks)[edge].mean()), pred


results = {}
for skip in ("none", "concat", "add"):
    minicnn.manual_seed(1)
    model = TinyEncoderDecoder(skip)
    n_params = sum(prm.numel() for prm in model.parameters())
    start = time.perf_counter()
    miou, edge_acc, pred = train_and_score(model)
    results[skip] = (miou, edge_acc, pred, n_params)
    print(f"skip={skip:<7} {n_params:6,} parameters: test mIoU {miou:.3f}, boundary-pixel "
          f"accuracy {100 * edge_acc:.1f}% ({time.perf_counter() - start:.0f} s)")
# concatenation doubles the decoder's input channels: more parameters than adding
assert results["concat"][3] > results["add"][3] == results["none"][3]
if not args.quick:  # with enough training, both skips beat none, on the boundaries most
    assert min(results["concat"][1], results["add"][1]) > results["none"][1], results
    assert min(results["concat"][0], results["add"][0]) > results["none"][0], results

fig, axes = plt.subplots(3, 4, figsize=(10, 7.5))
for row in range(3):
    axes[row, 0].imshow(overlay_mask(test_images[row], test_masks[row], 5))
    axes[row, 0].set_title("truth" if row == 0 else "", fontsize=9)
    for col, skip in enumerate(("none", "concat", "add"), 1):
        axes[row, col].imshow(overlay_mask(test_images[row], results[skip][2][row], 5))
        if row == 0:
            axes[row, col].set_title(f"skip: {skip} (mIoU {results[skip][0]:.2f})", fontsize=9)
for ax in axes.ravel():
    ax.axis("off")
fig.tight_layout()
fig.savefig(OUT / "30_skips.png", dpi=90)

# %% [markdown]
# ## 4. ResU-Net and the networks of `minicnn.models.segmentation`
#
# ResU-Net (Zhang et al. 2018) keeps U-Net's long, concatenating skips and builds every
# level from a *residual unit*: `BN → ReLU → conv → BN → ReLU → conv`, plus a short
# shortcut `x` (a 1×1 convolution when the width changes). As with any residual block,
# if its last convolution is silent the unit is exactly its shortcut.

# %%
unit = ResidualUnit(8, 8)
unit.eval()
for prm in (unit.conv2.weight, unit.conv2.bias):
    prm.data = minicnn.tensor(np.zeros(prm.shape, np.float32))
probe = minicnn.tensor(np.random.default_rng(2).normal(size=(1, 8, 6, 6)).astype(np.float32))
with minicnn.no_grad():
    assert np.array_equal(unit(probe).numpy(), probe.numpy())
print("a residual unit whose last convolution is zero is the identity")

# the papers' widths, and the CPU-sized networks `minicnn train --task segment` builds
# (DeconvNet at the paper's width: 251,797,205 parameters, too big to build here)
for name, model, side in [("unet (paper)", unet(), 572),
                          ("resunet (paper)", resunet(), 64),
                          ("unet (train recipe)", build_segmenter("unet", 5), 64),
                          ("resunet (train recipe)", build_segmenter("resunet", 5), 64),
                          ("deconvnet (train recipe)", build_segmenter("deconvnet", 5), 64)]:
    count = sum(prm.numel() for prm in model.parameters())
    print(f"{name:<30} {count:>12,} parameters, input {side}x{side}")
    if name == "unet (paper)":
        assert count == 31_030_658
    if name == "resunet (paper)":
        assert count == 8_223_809

print("lesson 30: all checks passed")
