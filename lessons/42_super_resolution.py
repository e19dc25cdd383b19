# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 42: super-resolution with SRCNN
#
# Enlarge a photograph three times and the new pixels have to come from somewhere. Bicubic
# interpolation makes them a smooth blend of the 4×4 nearest old ones: no new detail, a
# blurry image. SRCNN (Dong, Loy, He & Tang 2014) learns the missing detail from examples:
# it takes the bicubic enlargement and sharpens it with three convolutions. This lesson:
#
# 1. **The data**: a sharp photograph, shrunk and enlarged back by bicubic, is the blurry
#    input; the sharp photograph is the target. Why the shrinking must be *antialiased*.
# 2. **The network**: 9-1-5, 64 and 32 filters, 8,129 parameters, on the luminance Y only;
#    checked against PyTorch.
# 3. **Training** on random 33×33 patches of the training photographs, with global residual
#    learning (the network predicts only the missing detail), against bicubic on the
#    held-out photographs.
# 4. **What each layer does**: patch extraction (the 9×9 filters), the non-linear mapping
#    (1×1: one 64-vector per pixel to a 32-vector) and the reconstruction (5×5: the
#    overlapping patches averaged into the detail image).
# 5. **Colour**: the network on Y, bicubic on Cb and Cr, as the paper and `minicnn upscale`.
#
# Run it as a script, `python lessons/42_super_resolution.py` (`--quick` for a short run),
# or as a notebook. Figures go to `lessons/out/`.

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
from minicnn import optim
from minicnn.data import DataLoader
from minicnn.data.photos import center_crop, load_photo, photo_names
from minicnn.data.superres import bicubic_resize, degrade
from minicnn.metrics import psnr
from minicnn.models.restoration import srcnn
from minicnn.train.superres import DEFAULTS, SuperResTrainer, superres_data, upscale_image

parser = argparse.ArgumentParser(description="Lesson 42: super-resolution with SRCNN")
parser.add_argument("--quick", action="store_true", help="a short training run (for CI)")
args, _ = parser.parse_known_args()
OUT = Path(__file__).resolve().parent / "out" if "__file__" in globals() else Path("out")
OUT.mkdir(parents=True, exist_ok=True)
minicnn.manual_seed(0)
SCALE = 3

# %% [markdown]
# ## 1. The data: shrink, enlarge, compare
#
# SRCNN's training pairs are made, not collected: crop the sharp (high-resolution, HR)
# image to a multiple of the scale, shrink it to a third of its size, enlarge it back by
# bicubic interpolation (`minicnn.data.superres.degrade`). The enlarged image has the HR
# size and the low-resolution image's information; the network learns to map it to the
# HR image.
#
# The shrinking has to **antialias**, i.e. low-pass filter before it drops two pixels of
# three. A plain bicubic shrink reads only the 4 pixels nearest each new pixel: detail
# finer than the new pixel spacing does not disappear, it *aliases* into false coarse
# patterns. Fine stripes of period 2.4 pixels show it: shrunk 3 times without antialiasing
# they come back as bold stripes of the wrong period; antialiased, they fade to the grey
# they average to, which is what a camera with bigger pixels would see. A network cannot
# tell an aliased pattern from a real one, so it cannot undo it. The antialiased shrink is
# also what the paper did (MATLAB's `imresize`). Both resizes are PyTorch's
# (`interpolate(mode="bicubic")`, with `antialias=True` for the shrink): checked here.

# %%
xx = np.arange(96, dtype=np.float32)
stripes = np.tile(0.5 + 0.4 * np.sin(2 * np.pi * xx / 2.4), (96, 1))[None]  # (1, 96, 96)
plain = bicubic_resize(stripes, (32, 32))
smooth = bicubic_resize(stripes, (32, 32), antialias=True)
for ours, antialias in ((plain, False), (smooth, True)):
    ref = torch.nn.functional.interpolate(torch.tensor(stripes)[None], size=(32, 32),
                                          mode="bicubic", antialias=antialias)[0].numpy()
    assert np.allclose(ours, ref, atol=1e-5)
print(f"stripes of contrast {stripes.std():.3f} shrunk 3x: without antialiasing contrast "
      f"{plain.std():.3f} (aliased), antialiased {smooth.std():.3f}; both equal to PyTorch")
assert plain.std() > 5 * smooth.std()

camera = load_photo("camera", "grey")[:, 100:292, 160:352]  # a test photograph, 192x192
blurry, sharp = degrade(camera, SCALE)
small = np.clip(bicubic_resize(sharp, (64, 64), antialias=True), 0, 1)
print(f"camera 192x192 -> 64x64 -> bicubic 192x192: PSNR {psnr(sharp, blurry, 1):.2f} dB")

fig, axes = plt.subplots(1, 5, figsize=(13, 2.9))
panels = [("stripes (period 2.4 px)", stripes[0, :32, :32]),
          ("shrunk 3x, plain bicubic", plain[0]), ("shrunk 3x, antialiased", smooth[0]),
          ("camera shrunk 3x (64x64)", small[0]), ("... and bicubic back", blurry[0])]
for ax, (title, image) in zip(axes, panels, strict=True):
    ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
fig.tight_layout()
fig.savefig(OUT / "42_degradation.png", dpi=90)

# %% [markdown]
# ## 2. SRCNN: three convolutions
#
# On the luminance Y (`(N, 1, H, W)`):
#
# | layer | kernel | filters | the paper calls it |
# |-------|--------|---------|--------------------|
# | conv1 + ReLU | 9×9 | 64 | patch extraction and representation |
# | conv2 + ReLU | 1×1 | 32 | non-linear mapping |
# | conv3 | 5×5 | 1 | reconstruction |
#
# 9·9·64 + 64 + 64·32 + 32 + 5·5·32 + 1 = 8,129 parameters. Each output pixel sees
# 9 + 1 + 5 - 2 = 13 input pixels across. "Same" padding keeps the size.
#
# One change from the paper: **global residual learning** (VDSR, Kim et al. 2016), the
# input added to the output. The paper's SRCNN must first learn to copy its input before
# it can improve on it (an untrained one outputs ~0); its ~10^8 back-propagations afford
# that, a CPU lesson does not. With the skip the layers learn only the *detail*
# (sharp − bicubic), and with conv3's weights at zero the untrained network *is* bicubic.

# %%
model = srcnn(residual=True)
n_params = sum(p.numel() for p in model.parameters())
assert n_params == 9 * 9 * 64 + 64 + 64 * 32 + 32 + 5 * 5 * 32 + 1 == 8_129
ref = torch.nn.Sequential(torch.nn.Conv2d(1, 64, 9, padding=4), torch.nn.ReLU(),
                          torch.nn.Conv2d(64, 32, 1), torch.nn.ReLU(),
                          torch.nn.Conv2d(32, 1, 5, padding=2))
probe_model = srcnn(residual=True)
for (name, p), layer in zip(probe_model.named_parameters(),
                            [ref[0].weight, ref[0].bias, ref[2].weight, ref[2].bias,
                             ref[4].weight, ref[4].bias], strict=True):
    p.data.numpy()[:] = np.random.default_rng(len(name)).normal(0, 0.05, p.shape)
    layer.data = torch.tensor(p.data.numpy())
x = blurry[None, :, :40, :40]
with minicnn.no_grad():
    ours = probe_model(minicnn.tensor(x)).numpy()
theirs = (ref(torch.tensor(x)) + torch.tensor(x)).detach().numpy()
assert np.allclose(ours, theirs, atol=1e-5)
with minicnn.no_grad():
    assert np.array_equal(model(minicnn.tensor(x)).numpy(), x)  # untrained: the identity
print(f"srcnn 9-1-5: {n_params:,} parameters; equal to PyTorch's three convolutions plus the "
      f"input; untrained, it returns bicubic unchanged")

# %% [markdown]
# ## 3. Training against bicubic
#
# `minicnn.train.superres` makes the data (random aligned 33×33 patches of the 13 training
# photographs' Y, flipped and turned at random, every window of every photograph equally
# likely, so a large photograph gives more patches than a small one; the 6 test
# photographs, their central 192×192, never seen in training) and `SuperResTrainer` trains
# with the mean squared error and measures PSNR and SSIM on the test photographs, the
# network's and bicubic's, a border of 3 pixels left out. Adam with a one-cycle learning
# rate, as `minicnn train --task superres`, with a quarter of its patches here (10 epochs
# of 1,600).

# %%
epochs, patches = (1, 640) if args.quick else (10, 1600)  # the job: 20 epochs of 3200
train, test = superres_data(SCALE, num_patches=patches)
minicnn.manual_seed(0)
model = srcnn(residual=True)
opt = optim.Adam(model.parameters(), DEFAULTS["lr"])
loader = DataLoader(train, DEFAULTS["batch_size"], shuffle=True)
sched = optim.lr_scheduler.OneCycleLR(opt, DEFAULTS["lr"], total_steps=epochs * len(loader))
trainer = SuperResTrainer(model, opt, scale=SCALE, scheduler=sched, progress=False)
start = time.process_time()
history = trainer.fit(loader, DataLoader(test, 1), epochs)
cpu = time.process_time() - start
result = trainer.evaluate(DataLoader(test, 1))
print(f"{epochs} epochs of {patches} patches ({cpu:.0f} s of CPU): SRCNN {result['val_psnr']:.2f} "
      f"dB, bicubic {result['bicubic_psnr']:.2f} dB "
      f"({result['val_psnr'] - result['bicubic_psnr']:+.2f} dB) on the test photographs' Y")
for name, row in zip(photo_names("test"), result["per_image"], strict=True):
    print(f"  {name:<22} SRCNN {row['psnr']:.2f} dB  bicubic {row['bicubic_psnr']:.2f} dB  "
          f"SSIM {row['ssim']:.4f} / {row['bicubic_ssim']:.4f}")
# the trainer's PSNR is scikit-image's on the same pixels
from skimage.metrics import peak_signal_noise_ratio  # noqa: E402

b0, s0 = test[0]
with minicnn.no_grad():
    o0 = np.clip(model.eval()(minicnn.tensor(b0[None])).numpy()[0], 0, 1)
inner = (0, slice(SCALE, -SCALE), slice(SCALE, -SCALE))
assert np.isclose(result["per_image"][0]["psnr"],
                  peak_signal_noise_ratio(s0[inner], o0[inner], data_range=1), atol=1e-4)
if not args.quick:  # trained, SRCNN adds detail bicubic cannot
    assert result["val_psnr"] > result["bicubic_psnr"] + 0.3, result

# %% [markdown]
# ## 4. What each layer does
#
# **Patch extraction** (conv1): 64 filters of 9×9 slide over the image; each answers how
# much a 9×9 patch looks like it, and together they describe the patch (the paper compares
# them to a learned dictionary of patches). In the paper, after ~10^8 back-propagations,
# they look like edge, line and Laplacian detectors; after the few minutes here they are
# still close to their random (He) initialisation, noisy to the eye, yet as a bank they
# already tell edges from flat areas (the first map below). **Non-linear mapping** (conv2,
# 1×1): at each pixel, the 64 answers become 32 numbers, the code of the high-resolution
# patch; the ReLU leaves most of them at 0 (a sparse code, active along edges).
# **Reconstruction** (conv3, 5×5): every pixel's 32-vector paints a 5×5 patch of detail;
# the overlapping patches add up (an average, in the paper's words) to the detail image
# that, added to bicubic, gives the output. We take the network apart layer by layer on
# the camera crop and check that the pieces add up to the network's output.

# %%
model.eval()
with minicnn.no_grad():
    xin = minicnn.tensor(blurry[None])
    f1 = model.relu(model.conv1(xin))
    f2 = model.relu(model.conv2(f1))
    detail = model.conv3(f2)
    out = model(xin).numpy()[0]
f1, f2, detail = f1.numpy()[0], f2.numpy()[0], detail.numpy()[0]
assert np.allclose(detail + blurry, out, atol=1e-6)  # reconstruction + bicubic = output
true_detail = sharp - blurry
corr = float(np.corrcoef(detail[inner].ravel(), true_detail[inner].ravel())[0, 1])
active1, active2 = (f1 > 0).mean(), (f2 > 0).mean()
print(f"patch extraction: 64 maps, {100 * active1:.0f}% of their values > 0; non-linear "
      f"mapping: 32 maps, {100 * active2:.0f}% > 0; reconstruction: detail of std "
      f"{detail.std():.4f} (the true detail {true_detail.std():.4f}), correlation "
      f"{corr:.2f} with it")
if not args.quick:
    assert corr > 0.2, corr

filters = model.conv1.weight.detach().numpy()[:, 0]  # (64, 9, 9)
order = np.argsort(-np.abs(filters).sum(axis=(1, 2)))  # the strongest first
fig = plt.figure(figsize=(13, 7))
grid = fig.add_gridspec(4, 8)
for k in range(16):
    ax = fig.add_subplot(grid[k // 8, k % 8])
    f = filters[order[k]]
    ax.imshow(f, cmap="RdBu_r", vmin=-np.abs(f).max(), vmax=np.abs(f).max())
    ax.set_title(f"conv1 #{order[k]}", fontsize=7)
    ax.axis("off")
crop = (slice(48, 144), slice(48, 144))
for k, (title, image, cmap) in enumerate([
        ("conv1 map (strongest filter)", f1[order[0]][crop], "gray"),
        ("conv2 map 0 (1x1 mapping)", f2[0][crop], "gray"),
        ("reconstruction: detail", detail[0][crop], "RdBu_r"),
        ("true detail (sharp - bicubic)", true_detail[0][crop], "RdBu_r")]):
    ax = fig.add_subplot(grid[2:, 2 * k:2 * k + 2])
    lim = np.abs(true_detail[0][crop]).max() if cmap == "RdBu_r" else None
    ax.imshow(image, cmap=cmap, vmin=-lim if lim else None, vmax=lim)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
fig.suptitle("SRCNN's three layers: 16 of the 64 patch-extraction filters (9x9), and the "
             "camera crop through the layers", fontsize=10)
fig.savefig(OUT / "42_srcnn_layers.png", dpi=90)

# %% [markdown]
# ## 5. Colour: the network on Y, bicubic on Cb and Cr
#
# The eye sees detail in brightness far more than in colour, so SRCNN sharpens only Y:
# `upscale_image` converts RGB to YCbCr (BT.601), enlarges all three channels by bicubic,
# lets the network sharpen Y, and converts back. This is what `minicnn upscale IN OUT
# --run RUN` does with a trained run. Here: the astronaut (a test photograph) shrunk three
# times and enlarged back both ways.

# %%
astro = center_crop(load_photo("astronaut", "rgb"), 144)
lowres = np.clip(bicubic_resize(astro, (48, 48), antialias=True), 0, 1)
network_rgb = upscale_image(model, lowres, SCALE)
bicubic_rgb = np.clip(bicubic_resize(lowres, (144, 144)), 0, 1)
assert network_rgb.shape == astro.shape == (3, 144, 144)
score_net, score_bic = psnr(astro, network_rgb, 1), psnr(astro, bicubic_rgb, 1)
print(f"astronaut 48x48 -> 144x144 (RGB PSNR): SRCNN on Y {score_net:.2f} dB, bicubic "
      f"{score_bic:.2f} dB")

fig, axes = plt.subplots(1, 4, figsize=(12, 3.3))
for ax, (title, image) in zip(axes, [
        ("low resolution (48x48)", np.repeat(np.repeat(lowres, 3, 1), 3, 2)),
        (f"bicubic {score_bic:.2f} dB", bicubic_rgb), (f"SRCNN {score_net:.2f} dB", network_rgb),
        ("sharp", astro)], strict=True):
    ax.imshow(np.clip(image.transpose(1, 2, 0), 0, 1))
    ax.set_title(title, fontsize=9)
    ax.axis("off")
fig.tight_layout()
fig.savefig(OUT / "42_superres.png", dpi=90)

# %% [markdown]
# ## What to take away
#
# * The blurry input is made by shrinking with an antialiasing filter and enlarging; a
#   plain shrink aliases, and no network can undo aliasing.
# * SRCNN is three convolutions: a bank of patch detectors, a per-pixel mapping of their
#   answers, and a reconstruction that paints overlapping patches of detail.
# * Predicting the detail (residual learning) instead of the image is what lets such a
#   network train in minutes; `minicnn train --task superres` does it with the settings
#   above and reports the network beside bicubic each epoch.

# %%
print("lesson 42: all checks passed")
