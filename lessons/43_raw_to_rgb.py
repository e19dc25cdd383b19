# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 43: from a camera's RAW image to RGB (PyNET)
#
# A camera's sensor does not see colour. Each pixel sits under one coloured filter of a
# **Bayer mosaic** and records one number: how much red, *or* green, *or* blue light
# reached it. The phone's **ISP** (image signal processor) turns that mosaic into the photo
# you see: it fills in the two missing colours of every pixel (**demosaicing**), removes
# the sensor's noise, and applies the tone curve. PyNET (Ignatov, Van Gool & Timofte 2020)
# replaces the whole ISP with one CNN. This lesson:
#
# 1. builds the **Bayer mosaic** of a photograph and packs it into PyNET's four
#    half-resolution planes;
# 2. simulates what a sensor records: **linear light** (no sRGB gamma) plus **shot and read
#    noise**, and develops it the classical way: **bilinear demosaicing** and the sRGB curve,
#    the baseline every network is measured against;
# 3. walks through **PyNET's inverted pyramid**: five levels, each emitting its own image,
#    from 1/32 of the size up to the full photo, and the CPU variant's **global residual**:
#    the narrow PyNET learns a correction of the bilinear ISP's image;
# 4. trains the narrow PyNET with the loss of every level at once and shows **the output of
#    each level**, beside the bilinear demosaic.
#
# Run it as a script, `python lessons/43_raw_to_rgb.py` (`--quick` for a short run), or as
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

import minicnn
from minicnn import optim
from minicnn.baselines import bilinear_raw_to_rgb
from minicnn.data import DataLoader
from minicnn.data.noise import PoissonGaussianNoise
from minicnn.data.photos import center_crop, load_photo
from minicnn.data.raw import (
    bayer_masks,
    bayer_mosaic,
    demosaic_bilinear,
    linear_to_srgb,
    pack_bayer,
    simulate_raw,
    srgb_to_linear,
    unpack_bayer,
)
from minicnn.metrics import psnr
from minicnn.models.restoration import pynet, pynet_narrow
from minicnn.nn import functional as F
from minicnn.train import raw2rgb

parser = argparse.ArgumentParser(description="Lesson 43: RAW to RGB with PyNET")
parser.add_argument("--quick", action="store_true", help="a short training run (for CI)")
args, _ = parser.parse_known_args()
OUT = Path(__file__).resolve().parent / "out" if "__file__" in globals() else Path("out")
OUT.mkdir(parents=True, exist_ok=True)
minicnn.manual_seed(0)

# %% [markdown]
# ## 1. The Bayer mosaic
#
# The most common filter pattern, **RGGB**, repeats a 2×2 cell: red, green on the first
# row, green, blue on the second. Half the pixels are green (the eye is most sensitive to
# green), a quarter red, a quarter blue. PyNET does not read the mosaic as one grey image:
# it **packs** each 2×2 cell into four channels (R, G, G, B) at half the resolution, so every
# input pixel is a whole cell and every channel one colour.

# %%
photo = center_crop(load_photo("astronaut"), 128)  # a test photograph, (3, 128, 128)
mosaic = bayer_mosaic(photo)  # (1, 128, 128): one colour per pixel
masks = bayer_masks(photo.shape[1:])  # (3, 128, 128): where red, green, blue are recorded
share = masks.mean(axis=(1, 2))
assert np.allclose(share, [0.25, 0.5, 0.25])
assert np.array_equal(mosaic[0], (photo * masks).sum(axis=0))  # each pixel keeps its colour
packed = pack_bayer(mosaic)
assert packed.shape == (4, 64, 64) and np.array_equal(unpack_bayer(packed), mosaic)
assert np.array_equal(packed[0], photo[0, 0::2, 0::2])  # channel 0: the red pixels
assert np.array_equal(packed[3], photo[2, 1::2, 1::2])  # channel 3: the blue pixels
print(f"Bayer RGGB: {share[0]:.0%} red, {share[1]:.0%} green, {share[2]:.0%} blue pixels; "
      f"mosaic {mosaic.shape} packed into {packed.shape}")

fig, axes = plt.subplots(1, 6, figsize=(14, 2.8))
panels = [("photograph", photo), ("Bayer mosaic (in its colours)", photo * masks)]
panels += [(f"packed {name}", packed[k][None].repeat(3, 0))
           for k, name in enumerate(("R", "G1", "G2", "B"))]
for ax, (title, image) in zip(axes, panels, strict=True):
    zoom = image[:, 96:120, 8:32] if "mosaic" in title else image  # 24x24 of the orange suit
    ax.imshow(np.clip(zoom, 0, 1).transpose(1, 2, 0), interpolation="nearest")
    ax.set_title(title + (" (24x24 zoom)" if "mosaic" in title else ""), fontsize=8)
    ax.axis("off")
fig.tight_layout()
fig.savefig(OUT / "43_bayer.png", dpi=90)

# %% [markdown]
# ## 2. What the sensor records, and the classical ISP
#
# A photograph on disk is in **sRGB**: its values went through a gamma curve (about
# x^(1/2.2)) so that dark tones get more of the 256 levels. A sensor counts photons: its
# values are **linear** in the light. So the simulation first undoes the sRGB curve, then
# takes the mosaic, then adds the sensor's noise: **shot noise** (photon counting is a
# Poisson process, variance proportional to the signal) plus **read noise** (Gaussian):
# variance `a x + b` at signal `x`. The recipe's camera has `a = 0.01` (about 100 photons
# at full scale: a small sensor in dim light) and `b = 1e-4` (read noise 0.01).
#
# The classical ISP develops it: **bilinear demosaicing** (each missing colour is the mean
# of the nearest recorded pixels of that colour) and then the sRGB curve. It is the
# baseline: it sees the very same noisy RAW as the network. Its weak points are edges
# (colours interpolated across an edge give coloured fringes, the "zipper") and noise,
# which it keeps, and which the gamma curve amplifies in the shadows.

# %%
a, b = raw2rgb.DEFAULTS["raw_noise"]
camera = PoissonGaussianNoise(a, b)
flat = np.full((3, 64, 64), 0.5, np.float32)  # a grey card, to measure the noise on
grey_raw = simulate_raw(flat, camera, np.random.default_rng(0), linear=True)
x = float(srgb_to_linear(np.float32(0.5)))
print(f"sRGB 0.5 is linear light {x:.3f}; the noise variance there: measured "
      f"{grey_raw.var():.2e}, a x + b = {a * x + b:.2e}")
assert abs(grey_raw.var() / (a * x + b) - 1) < 0.1
raw = simulate_raw(photo, camera, np.random.default_rng(1), linear=True)  # (4, 64, 64)
clean_raw = simulate_raw(photo, None, np.random.default_rng(1), linear=True)
bilinear = bilinear_raw_to_rgb(raw, linear=True)  # demosaic, then the sRGB curve
bilinear_clean = bilinear_raw_to_rgb(clean_raw, linear=True)
# demosaicing keeps the recorded samples: only the missing colours are interpolated
demosaiced = demosaic_bilinear(unpack_bayer(raw))
assert np.allclose((demosaiced * masks).sum(0), unpack_bayer(raw)[0], atol=1e-6)
assert np.allclose(linear_to_srgb(srgb_to_linear(photo)), photo, atol=1e-5)
p_clean, p_noisy = psnr(photo, bilinear_clean, 1.0), psnr(photo, bilinear, 1.0)
print(f"bilinear demosaic of the astronaut: {p_clean:.2f} dB without noise, {p_noisy:.2f} dB "
      f"with the camera's noise")
assert p_noisy < p_clean

# %% [markdown]
# ## 3. PyNET's inverted pyramid
#
# PyNET's encoder pools the packed RAW four times: level 1 at H/2 (the packed size), level
# 2 at H/4, ... level 5 at H/32. Then it rebuilds the image from the bottom up: each level
# refines the upsampled features of the level below with **multi-scale blocks** (parallel
# 3×3, 5×5, 7×7, 9×9 convolutions, concatenated; the big kernels live at the fine levels)
# and emits **its own RGB image** through a 3×3 convolution and a sigmoid. Level 5 sees the
# whole patch at 1/32 of the size: global colour and brightness. Level 1 gets the fine
# texture, and level 0, a transposed step on top, returns the full H × W.
#
# The authors train it **level by level**: level 5 alone first, then 4 on top, ... then 0,
# each stage starting from the previous one's weights. `model.pyramid(x)` returns every
# level's image.
#
# **The CPU variant is residual.** Trained as published, the narrow PyNET must learn the
# whole ISP from nothing (the tone curve, the colours, the demosaicing, the denoising):
# after 400 steps on a CPU it reached 17 dB on the test photographs, 8 dB *below* the
# bilinear demosaic, its images blurred and washed out. So `pynet_narrow` does what VDSR
# does for super-resolution (global residual learning; not in PyNET's paper): every level's
# image is the **bilinear ISP's image** (`bilinear_isp`: the same demosaic and sRGB curve as
# the baseline, averaged down to the level's size) **plus** the level's output convolution,
# which starts at zero. The untrained network *is* the classical ISP, and training only has
# to learn what that ISP gets wrong: the noise and the detail.
#
# **Four more changes make it learn in a CPU budget**, each measured (the module
# `minicnn.models.restoration.pynet` has the numbers): level 0 is a **sub-pixel
# convolution** of level 1's features (12 maps pixel-shuffled to full size: one correction
# per colour and Bayer site) plus a 3×3 filter of the ISP's image; the upsampling layers use
# `align_corners=False`, so the coarse levels' features land on the right pixels (with the
# authors' `True` they drift by up to 7.5 pixels of level 1 at the borders); the 5×5 … 9×9
# branches are **dilated 3×3** convolutions (the same windows, 9 taps: cheaper steps); and
# instance norm stays on level 1 only (levels 4 and 5 of a 64×64 patch are 4×4 and 2×2
# maps). It is still PyNET's pyramid: five levels, multi-scale blocks, an image per level.
# `pynet_narrow(residual=False)` and `pynet()` are the published network.

# %%
narrow = pynet_narrow()  # the CPU variant, residual: the untrained network is the bilinear ISP
n_narrow = sum(p.numel() for p in narrow.parameters())
assert n_narrow == 2_325_063  # dilated 3x3 branches: fewer weights than the published 2,985,370
assert sum(p.numel() for p in pynet_narrow(residual=False).parameters()) == 2_985_370
if not args.quick:  # the published network: 47.5 M parameters (w = 32), 16x the narrow one
    n_full = sum(p.numel() for p in pynet().parameters())
    assert n_full == 47_554_738
    print(f"pynet (published, w = 32): {n_full:,} parameters")
print(f"pynet_narrow (w = 8, the CPU variant): {n_narrow:,} parameters")
narrow.eval()
with minicnn.no_grad():
    levels = narrow.pyramid(minicnn.tensor(raw[None]))
for level in sorted(levels, reverse=True):
    shape = tuple(levels[level].shape)
    assert shape == (1, 3, 128 // 2 ** level, 128 // 2 ** level)
    print(f"level {level}: {shape[2]}x{shape[3]} RGB")
assert np.allclose(levels[0].numpy()[0], bilinear, atol=1e-6)  # exactly the classical ISP
print(f"the untrained residual PyNET: {psnr(photo, levels[0].numpy()[0], 1.0):.2f} dB, the "
      f"bilinear ISP's {p_noisy:.2f} dB")

# %% [markdown]
# ## 4. Training every level at once
#
# On a CPU we train the levels **jointly** rather than one after the other: the loss is a
# weighted sum over the levels of the mean squared error of each level's image against the
# photograph averaged down to that level's size. For the residual CPU variant only the two
# finest images have a loss (level 0: 1, level 1: 0.5; `raw2rgb.LEVEL_WEIGHTS`): the ISP
# already gets the colours and the light right, which is what the coarse images would
# teach, and in a measured run their losses slowed the training (after 160 steps: +0.61 dB
# over bilinear with every level's loss and the gradients clipped, +1.00 dB with these two
# and no clipping). The coarse levels still learn, as the
# features level 1 builds on; their own images stay the ISP's, averaged down. The recipe
# (`minicnn.train.raw2rgb`) does exactly this; here it is written out once and checked
# against it. Training patches are
# 64×64 RGB (32×32 packed RAW, the least PyNET takes) from the *training* photographs; the
# astronaut is a test photograph, never trained on.

# %%


def pyramid_loss(model, raw_batch, rgb_batch):
    """Weighted sum over the levels of MSE(level's image, the photo averaged down to its
    size)."""
    images = model.pyramid(minicnn.tensor(raw_batch))
    target = minicnn.tensor(rgb_batch)
    total = 0
    for level, weight in raw2rgb.LEVEL_WEIGHTS.items():
        truth = F.avg_pool2d(target, 2 ** level) if level else target
        total = total + weight * F.mse_loss(images[level], truth)
    return total


steps, batch = (3, 2) if args.quick else (80, 8)
train_set, _ = raw2rgb.raw2rgb_data(patch_size=64, num_patches=steps * batch, test_crop=128)
model = pynet_narrow()
optimizer = optim.Adam(model.parameters(), lr=raw2rgb.DEFAULTS["lr"])
recipe = raw2rgb.Raw2RGBTrainer(model, optimizer, progress=False)
losses, start = [], time.perf_counter()
model.train()
for step, (raw_batch, rgb_batch) in enumerate(DataLoader(train_set, batch, shuffle=True)):
    loss = pyramid_loss(model, raw_batch, rgb_batch)
    if step == 0:  # the recipe's loss is this one
        ours, _ = recipe.training_step(*recipe._batch(raw_batch, rgb_batch))
        assert abs(ours.item() - loss.item()) < 1e-5 * loss.item()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
seconds = time.perf_counter() - start
print(f"trained {steps} steps of {batch} patches in {seconds:.0f} s: the summed loss went "
      f"from {losses[0]:.4f} to {losses[-1]:.4f}")
assert all(np.isfinite(losses))

# %% [markdown]
# The output of each level on the astronaut (a photograph never trained on), against the
# photograph at that level's size, and level 0 against the bilinear demosaic of the same
# noisy RAW. The coarse levels (no loss of their own here) return the ISP's image averaged
# down; the fine levels must get every edge and remove the noise.
#
# A warning in numbers: 80 steps are far from enough. The bilinear demosaic with the exact
# sRGB curve is a strong baseline; the residual network starts exactly there and must
# learn to remove the noise without losing the edges, which takes thousands of steps (the
# recipe's default run, `minicnn train --task raw2rgb`, 20 epochs of 640 patches, 1,600
# steps in 8 minutes of CPU, reaches 27.38 dB against bilinear demosaicing's 25.17 dB on
# the 4 test photographs, +2.21 dB: the README has its numbers). PyNET's authors train for
# days on a GPU, level by level.

# %%
model.eval()
with minicnn.no_grad():
    levels = {k: v.numpy()[0] for k, v in model.pyramid(minicnn.tensor(raw[None])).items()}
scores = {}
for level, image in levels.items():
    f = 2 ** level
    truth = photo.reshape(3, 128 // f, f, 128 // f, f).mean(axis=(2, 4))
    scores[level] = psnr(truth, image, 1.0)
    print(f"level {level} ({image.shape[1]}x{image.shape[2]}): PSNR {scores[level]:.2f} dB "
          f"against the photograph at that size")
print(f"level 0: {scores[0]:.2f} dB; bilinear demosaic of the same noisy RAW: "
      f"{p_noisy:.2f} dB")

fig, axes = plt.subplots(1, 9, figsize=(18, 2.6))
panels = [(f"level {k}\n{scores[k]:.1f} dB", levels[k]) for k in sorted(levels, reverse=True)]
panels = [("RAW (mosaic)", raw2rgb.mosaic_colours(raw, True))] + panels
panels.append((f"bilinear\n{p_noisy:.1f} dB", bilinear))
for ax, (title, image) in zip(axes, panels + [("truth", photo)], strict=True):
    ax.imshow(np.clip(image, 0, 1).transpose(1, 2, 0), interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.axis("off")
fig.tight_layout()
fig.savefig(OUT / "43_pyramid_levels.png", dpi=90)

fig, axes = plt.subplots(1, 4, figsize=(11, 3))
crop = (slice(None), slice(20, 84), slice(30, 94))
for ax, (title, image) in zip(axes, [("RAW (mosaic)", raw2rgb.mosaic_colours(raw, True)),
                                     (f"bilinear {p_noisy:.1f} dB", bilinear),
                                     (f"PyNET level 0 {scores[0]:.1f} dB", levels[0]),
                                     ("truth", photo)], strict=True):
    ax.imshow(np.clip(image[crop], 0, 1).transpose(1, 2, 0), interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
fig.tight_layout()
fig.savefig(OUT / "43_vs_bilinear.png", dpi=90)

print("lesson 43: all checks passed")
