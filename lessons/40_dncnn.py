# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 40: DnCNN, predict the noise, not the image
#
# The networks so far turned an image into a label, boxes or a mask. A **restoration**
# network turns an image into an image of the same size. DnCNN (Zhang et al. 2017, "Beyond a
# Gaussian Denoiser") is the simplest and still a strong one: a stack of 3×3 convolutions
# with batch norm and ReLU, no pooling, no skips, trained on random patches. Its one idea is
# **residual learning**: the noisy image is `y = x + v`; the network `R` predicts the noise
# `v`, and the denoised image is `y - R(y)`. This lesson:
#
# 1. **Patch training**: why small random patches are enough (the receptive field), and
#    what a training batch looks like.
# 2. **Residual against direct**: the same network, the same steps, the same data; once
#    predicting the noise, once the clean image.
# 3. **Against the classical denoisers**: non-local means, total variation and wavelet
#    shrinkage from scikit-image (told the true σ) on held-out photographs.
#
# The photographs are real (scikit-image's and scikit-learn's, `minicnn.data.photos`); the
# test photographs never give a training patch. Run it as a script,
# `python lessons/40_dncnn.py` (`--quick` for a short run), or as a notebook. Figures go to
# `lessons/out/`.

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
from minicnn import nn, optim
from minicnn.baselines import denoise_baselines
from minicnn.data import DataLoader
from minicnn.data.photos import photo_names
from minicnn.metrics import psnr
from minicnn.models.restoration import dncnn
from minicnn.nn import functional as F
from minicnn.train.denoise import DNCNN_CPU, denoise_data

parser = argparse.ArgumentParser(description="Lesson 40: DnCNN")
parser.add_argument("--quick", action="store_true", help="a short training run (for CI)")
args, _ = parser.parse_known_args()
OUT = Path(__file__).resolve().parent / "out" if "__file__" in globals() else Path("out")
OUT.mkdir(parents=True, exist_ok=True)
minicnn.manual_seed(0)
SIGMA = 25.0  # the noise's standard deviation on the 0-255 scale (the paper's main setting)

# %% [markdown]
# ## 1. Patch training and the receptive field
#
# A 3×3 convolution sees one pixel of context on each side; `d` of them in a row see `d`.
# So one output pixel of a DnCNN of depth `d` depends on a `(2d + 1)`-pixel square of the
# input and on nothing else: the paper's DnCNN-S (`d = 17`) sees 35×35 pixels, and a 40×40
# training patch holds everything one output pixel needs. Training on small patches is then
# no approximation, and it is cheap: a batch of 16 patches of 40×40 is 25,600 pixels, less
# than one 256×256 photograph, and every patch is a different place of a different picture.
#
# We measure it on the CPU-sized DnCNN of the training recipe (`minicnn.train.denoise`,
# 10 convolutions of 32 channels): the gradient of the centre output pixel with respect to
# the input is non-zero exactly on the `2·10 + 1 = 21` square.

# %%
depth, features = DNCNN_CPU
probe_net = dncnn(1, depth=depth, features=features).eval()
y = minicnn.tensor(np.random.default_rng(0).random((1, 1, 40, 40), dtype=np.float32),
                   requires_grad=True)
probe_net.noise(y)[0, 0, 20, 20].backward()
seen = np.argwhere(np.abs(y.grad.numpy()[0, 0]) > 0)
side = seen.max(axis=0) - seen.min(axis=0) + 1
print(f"DnCNN of depth {depth}: one output pixel sees a {side[0]}x{side[1]} input window "
      f"(2d + 1 = {2 * depth + 1}); DnCNN-S (depth 17): {2 * 17 + 1}x{2 * 17 + 1}")
assert tuple(side) == (2 * depth + 1, 2 * depth + 1)

# %% [markdown]
# The training set draws a new patch at every call: a random training photograph, a random
# place, one of the 8 flips and quarter turns, and fresh Gaussian noise of σ = 25 (on the
# 0-255 scale; images are in [0, 1], so the noise's standard deviation is 25/255 ≈ 0.098).
# The test set is the central 128×128 square of each of the 6 held-out photographs, its
# noise drawn once with a fixed seed.

# %%
steps = 40 if args.quick else 500
batch = 16
train_set, test_set = denoise_data(SIGMA, num_patches=steps * batch)
test = [test_set[i] for i in range(len(test_set))]
names = photo_names("test")
noisy_patches, clean_patches = next(iter(DataLoader(train_set, 8, shuffle=True)))
measured = float(np.std(noisy_patches - clean_patches)) * 255
print(f"{len(train_set)} training patches ({steps} steps of {batch}); noise of the first batch: "
      f"std {measured:.1f} on the 0-255 scale (sigma {SIGMA:g})")
assert abs(measured - SIGMA) < 0.1 * SIGMA

fig, axes = plt.subplots(2, 8, figsize=(12, 3.4))
for k in range(8):
    for row, image in enumerate((clean_patches, noisy_patches)):
        axes[row, k].imshow(np.clip(image[k, 0], 0, 1), cmap="gray", vmin=0, vmax=1)
        axes[row, k].axis("off")
axes[0, 0].set_title("clean patches", loc="left", fontsize=9)
axes[1, 0].set_title(f"noisy (sigma {SIGMA:g})", loc="left", fontsize=9)
fig.tight_layout()
fig.savefig(OUT / "40_patches.png", dpi=90)
plt.close(fig)

# %% [markdown]
# ## 2. Residual against direct
#
# Two copies of the same network (same initial weights, same patches in the same order,
# Adam with the recipe's one-cycle schedule: the learning rate warms up to 1e-2, then
# decays to nearly zero):
#
# * **residual**: the output is `y - R(y)` (DnCNN),
# * **direct**: the output is `R(y)` itself, the network must rebuild the clean image.
#
# Both minimise the mean squared error against the clean patches. The last convolution
# starts at zero, so the residual network starts as the identity (it removes nothing, PSNR
# of the noisy image) and the direct one starts at a black image; that is the point: the
# identity is already a good denoiser's starting point, and what is left to learn, the
# noise, has no structure to remember and is nearly the same Gaussian whatever the picture.
# The loop is written out here; the recipe's `DenoiseTrainer` runs the same one.


# %%
def output(net, noisy, residual: bool):
    return noisy - net.noise(noisy) if residual else net.noise(noisy)


def train(residual: bool):
    minicnn.manual_seed(0)
    net = dncnn(1, depth=depth, features=features)
    nn.init.zeros_(net.model[len(net.model) - 1].weight)
    opt = optim.Adam(net.parameters(), lr=1e-2)
    schedule = optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=steps)
    losses = []
    net.train()
    for noisy, clean in DataLoader(train_set, batch, shuffle=True):
        loss = F.mse_loss(output(net, minicnn.tensor(noisy), residual), minicnn.tensor(clean))
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
        losses.append(loss.item())
    return net.eval(), losses


def test_psnr(net, residual: bool) -> list[float]:
    scores = []
    with minicnn.no_grad():
        for noisy, clean in test:
            out = output(net, minicnn.tensor(noisy[None]), residual).numpy()[0]
            scores.append(psnr(clean, out, data_range=1.0))
    return scores


results = {}
for residual in (True, False):
    name = "residual" if residual else "direct"
    started = time.process_time()
    net, losses = train(residual)
    scores = test_psnr(net, residual)
    results[name] = (net, losses, scores)
    print(f"{name:>8}: final training loss {np.mean(losses[-20:]):.5f}, test PSNR "
          f"{np.mean(scores):.2f} dB ({time.process_time() - started:.0f} s of CPU)")
noisy_psnr = [psnr(clean, noisy, data_range=1.0) for noisy, clean in test]
print(f"   noisy: test PSNR {np.mean(noisy_psnr):.2f} dB")
res_psnr, dir_psnr = np.mean(results["residual"][2]), np.mean(results["direct"][2])
assert res_psnr > np.mean(noisy_psnr)
if not args.quick:
    assert res_psnr > dir_psnr, (res_psnr, dir_psnr)

fig, (ax_loss, ax_img) = plt.subplots(1, 2, figsize=(11, 4))
for name, (_, losses, _) in results.items():
    smooth = np.convolve(losses, np.ones(10) / 10, mode="valid")
    ax_loss.semilogy(smooth, label=f"{name} (test {np.mean(results[name][2]):.2f} dB)")
ax_loss.axhline((SIGMA / 255) ** 2, color="grey", ls="--", label="the noise's variance")
ax_loss.set(xlabel="step", ylabel="training MSE (10-step mean)",
            title="same network, same steps: predict the noise or the image")
ax_loss.legend()
noisy0 = minicnn.tensor(test[0][0][None])
with minicnn.no_grad():
    predicted_noise = results["residual"][0].noise(noisy0).numpy()[0, 0]
ax_img.imshow(predicted_noise, cmap="gray")
ax_img.set_title(f"R(y) of the residual network on {names[0]}: noise, std "
                 f"{255 * predicted_noise.std():.1f}/255", fontsize=9)
ax_img.axis("off")
fig.tight_layout()
fig.savefig(OUT / "40_residual_vs_direct.png", dpi=90)
plt.close(fig)

# %% [markdown]
# What the residual network outputs, `R(y)`, looks like noise with a standard deviation near
# σ: it has learned what noise looks like, and what is left of the picture in `R(y)` (the
# faint edges) is the error it makes.

# %%
print(f"the residual network's noise estimate on {names[0]}: std "
      f"{255 * predicted_noise.std():.1f} on the 0-255 scale (true sigma {SIGMA:g})")
if not args.quick:
    assert abs(255 * predicted_noise.std() - SIGMA) < 0.25 * SIGMA

# %% [markdown]
# ## 3. Against the classical denoisers
#
# The methods a user would otherwise pick, each told the true σ (`minicnn.baselines`):
# **non-local means** (Buades et al. 2005: average the pixels whose *surrounding patch*
# looks alike), **total variation** (Chambolle 2004: the image with the smallest total
# gradient near the noisy one) and **wavelet** shrinkage (BayesShrink). Per photograph, and
# the best of the three per photograph (an oracle choice no user could make).
#
# The lesson's network trained for a minute or two of CPU. The command-line recipe,
# `minicnn train --task denoise --model dncnn --noise 25`, trains the same network for
# about eight times as many steps in under 10 minutes of CPU; the README reports how far
# above the best classical denoiser it gets.

# %%
net = results["residual"][0]
rows = []
for name, (noisy, clean), ours in zip(names, test, results["residual"][2], strict=True):
    base = denoise_baselines(noisy, clean, SIGMA / 255)
    rows.append((name, psnr(clean, noisy, data_range=1.0), ours,
                 *(base[m].psnr for m in ("nl_means", "tv", "wavelet"))))
print(f"{'photograph':<22}{'noisy':>7}{'DnCNN':>8}{'NL-means':>10}{'TV':>7}{'wavelet':>9}")
for row in rows:
    print(f"{row[0]:<22}" + "".join(f"{v:>{w}.2f}" for v, w in zip(row[1:], (7, 8, 10, 7, 9))))
means = np.mean([r[1:] for r in rows], axis=0)
best = np.mean([max(r[3:]) for r in rows])
print(f"{'mean':<22}" + "".join(f"{v:>{w}.2f}" for v, w in zip(means, (7, 8, 10, 7, 9))))
print(f"best classical per photograph: {best:.2f} dB; the lesson's DnCNN {means[1]:.2f} dB "
      f"({means[1] - best:+.2f} dB) after {steps} steps")
assert means[2] > means[0] and means[1] > means[0]  # everything removes noise

noisy, clean = test[names.index("camera")]
with minicnn.no_grad():
    ours = np.clip(net(minicnn.tensor(noisy[None])).numpy()[0, 0], 0, 1)
nlm = denoise_baselines(noisy, clean, SIGMA / 255, methods=("nl_means",))["nl_means"].image
panels = [("noisy", noisy[0]), ("DnCNN", ours), ("non-local means", nlm[0]), ("clean", clean[0])]
fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
for ax, (label, image) in zip(axes, panels):
    ax.imshow(np.clip(image, 0, 1), cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"{label} {psnr(clean[0], image, data_range=1.0):.2f} dB"
                 if label != "clean" else label, fontsize=9)
    ax.axis("off")
fig.suptitle(f"camera, central 128x128, sigma {SIGMA:g}", fontsize=10)
fig.tight_layout()
fig.savefig(OUT / "40_vs_nlm.png", dpi=90)
plt.close(fig)

# %% [markdown]
# Reading the table: non-local means is strong on the cameraman's flat sky and coat, where
# many patches look alike, and weak on texture; the network has learned from textures
# (grass, gravel, brick are in the training set) and from edges. With a few hundred steps it
# is already near the classical methods; the longer recipe run clears them.

# %%
print("lesson 40: all checks passed")
