# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 41: denoising with the imaging physics
#
# A consumer denoiser is trained on one kind of noise and guesses how strong it is. A
# medical scanner *knows* its noise: an MR scanner measures the noise of each receive coil,
# and parallel imaging multiplies it by a **g-factor** map that varies smoothly over the
# image. A denoiser that is told the noise can do better than one that guesses, and one
# network can then serve every noise level. This lesson:
#
# 1. **SNR units**: the image divided by the noise's standard deviation; the noise is then
#    the same (unit variance) at every level, and a g-factor map says where it is larger.
# 2. **Rician noise**: an MR magnitude image is `|signal + complex Gaussian noise|`; its mean
#    is biased upwards where the signal is weak. Formula, simulation and SciPy's Rice
#    distribution agree.
# 3. **Noise-aware against blind**: a DnCNN trained at σ = 25 against the noise-aware network
#    (input in SNR units plus a noise-map channel, trained on σ in [5, 55]) at test noise
#    σ = 10, 25 and 50.
#
# Run it as a script, `python lessons/41_imaging_physics.py` (`--quick` for a short run), or
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
from scipy import stats

import minicnn
from minicnn import optim
from minicnn.baselines import best_denoiser
from minicnn.data import DataLoader
from minicnn.data.noise import MRINoise, rician_mean
from minicnn.data.photos import load_photo
from minicnn.metrics import psnr
from minicnn.nn import functional as F
from minicnn.train.denoise import NOISE_RANGE, build_denoiser, denoise_data

parser = argparse.ArgumentParser(description="Lesson 41: denoising with the imaging physics")
parser.add_argument("--quick", action="store_true", help="a short training run (for CI)")
args, _ = parser.parse_known_args()
OUT = Path(__file__).resolve().parent / "out" if "__file__" in globals() else Path("out")
OUT.mkdir(parents=True, exist_ok=True)
minicnn.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. SNR units and the g-factor
#
# `MRINoise(snr, g_max)` (`minicnn.data.noise`) simulates a magnitude MR image from a
# photograph: the clean image becomes a complex image of magnitude `snr · clean` (with a
# smooth phase), complex Gaussian noise of standard deviation `g` is added to its real and
# imaginary parts, and the magnitude is taken. The image is in **SNR units**: a pixel of
# value 1 in the clean photograph has value `snr`, and the noise's standard deviation is
# `g` (1 without parallel imaging). The g-factor map is smooth, between 1 and `g_max`.
#
# Checked here on a flat bright image (where the Rician noise is nearly Gaussian), over 50
# calls, each with its own random g-factor map: divided by the map the call returns, the
# noise has unit standard deviation everywhere; not divided, it does not.

# %%
model = MRINoise(20.0, g_max=3.0)
flat = np.ones((1, 48, 48), np.float32)
scaled, raw, high, low = [], [], [], []
for _ in range(50):
    noisy, signal, g = model(flat, rng)
    noise = noisy - np.sqrt(signal**2 + g**2)  # nearly zero-mean at SNR 20
    scaled.append(noise / g)
    raw.append(noise)
    high.append(noise[g > 2.5])
    low.append(noise[g < 1.5])
std_scaled, std_raw = np.std(scaled), np.std(raw)
print(f"noise std in SNR units divided by the g-factor map: {std_scaled:.3f}; not divided: "
      f"{std_raw:.3f}; where g > 2.5: {np.std(np.concatenate(high)):.2f}, where g < 1.5: "
      f"{np.std(np.concatenate(low)):.2f}")
assert abs(std_scaled - 1) < 0.03 and std_raw > 1.3
assert np.std(np.concatenate(high)) > 2.5 and np.std(np.concatenate(low)) < 1.5

camera = load_photo("camera", "grey")
noisy, clean_snr, g_map = model(camera, np.random.default_rng(2))
print(f"camera in SNR units: clean up to {clean_snr.max():.1f}, noise std 1 to "
      f"{g_map.max():.2f} (the g-factor map); noisy magnitude mean {noisy.mean():.2f}")
fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
for ax, (title, image) in zip(axes, [("clean (SNR units, snr 20)", clean_snr[0]),
                                     ("g-factor map", g_map[0]),
                                     ("noisy magnitude (Rician)", noisy[0])]):
    im = ax.imshow(image, cmap="gray" if "map" not in title else "magma")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    fig.colorbar(im, ax=ax, fraction=0.046)
fig.tight_layout()
fig.savefig(OUT / "41_snr_gfactor.png", dpi=90)
plt.close(fig)

# %% [markdown]
# ## 2. Rician magnitude noise
#
# The magnitude of `ν + σ(n₁ + i n₂)` (`n₁, n₂` standard normal) is not `ν` plus zero-mean
# noise: it is never negative, and where the signal is weak its mean is biased up. With no
# signal at all it is Rayleigh-distributed with mean `σ √(π/2) ≈ 1.25 σ`; for a strong
# signal the mean tends to `√(ν² + σ²)` and the noise to a Gaussian of standard deviation
# `σ`. The formula (`minicnn.data.noise.rician_mean`, a Laguerre polynomial), a simulation
# and SciPy's Rice distribution (`scipy.stats.rice(ν / σ, scale=σ)`) agree. A denoiser for
# magnitude images must remove that bias too; in SNR units (σ = 1) it is the same curve
# whatever the scanner's noise.

# %%
nu = np.linspace(0, 5, 21)
samples = np.abs(nu[:, None] + rng.standard_normal((21, 200_000))
                 + 1j * rng.standard_normal((21, 200_000)))
simulated = samples.mean(axis=1)
formula = rician_mean(nu, 1.0)
scipy_mean = stats.rice(np.maximum(nu, 1e-12), scale=1.0).mean()
print(f"mean magnitude at nu = 0: formula {formula[0]:.4f}, simulated {simulated[0]:.4f}, "
      f"sigma sqrt(pi/2) = {np.sqrt(np.pi / 2):.4f}; at nu = 5: {formula[-1]:.4f} "
      f"(sqrt(nu^2 + 1) = {np.sqrt(26):.4f})")
assert np.allclose(formula, scipy_mean, rtol=1e-6)
assert np.allclose(simulated, formula, atol=0.01)
assert abs(formula[0] - np.sqrt(np.pi / 2)) < 1e-9

fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(nu, formula - nu, label="formula: E|y| - nu")
ax.plot(nu, simulated - nu, "o", ms=4, label="simulated (200,000 draws)")
ax.set(xlabel="signal nu (SNR units, sigma = 1)", ylabel="bias of the magnitude",
       title="Rician bias: large where the signal is weak")
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(OUT / "41_rician_bias.png", dpi=90)
plt.close(fig)

# %% [markdown]
# ## 3. The noise-aware network against a blind DnCNN
#
# Two networks of the training recipe (`minicnn.train.denoise.build_denoiser`), trained
# here with the same loop, the same number of steps and the same patches:
#
# * `dncnn`: DnCNN (10 convolutions of 32 channels) trained at σ = 25 only. It is told
#   nothing: it removes what it learned σ = 25 noise looks like.
# * `noise_aware`: the noise-aware denoiser (`minicnn.models.restoration.noise_aware`) in
#   SNR units: it sees the noisy image divided by the noise map `M` (the noise's standard
#   deviation at each pixel, here σ/255 everywhere) beside `M` itself, predicts the
#   standardised noise and multiplies it back by `M`. Its convolutions run on the 2×2
#   pixel-unshuffled image (as FFDNet), 10 convolutions of 64 channels, about two thirds
#   of the DnCNN's cost per step. Each training patch draws its σ in [5, 55].
#
# Both are tested on the held-out photographs at σ = 10, 25 and 50, beside the best of
# scikit-image's denoisers told σ.

# %%
steps = 30 if args.quick else 500
batch = 16
LEVELS = (10.0, 25.0, 50.0)


def train(name: str, train_set, aware: bool):
    minicnn.manual_seed(0)
    net = build_denoiser(name)  # its last convolution starts at zero: the identity
    opt = optim.Adam(net.parameters(), lr=1e-2)
    schedule = optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=steps)
    net.train()
    started = time.process_time()
    for inputs, clean in DataLoader(train_set, batch, shuffle=True):
        inputs = inputs if aware else (inputs,)
        loss = F.mse_loss(net(*(minicnn.tensor(x) for x in inputs)), minicnn.tensor(clean))
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
    print(f"{name}: {steps} steps, last loss {loss.item():.5f}, "
          f"{time.process_time() - started:.0f} s of CPU")
    return net.eval()


blind_train, _ = denoise_data(25.0, num_patches=steps * batch)
aware_train, _ = denoise_data(25.0, num_patches=steps * batch, train_sigma=NOISE_RANGE,
                              noise_map=True)
blind = train("dncnn", blind_train, aware=False)
aware = train("noise_aware", aware_train, aware=True)

table = {}
for sigma in LEVELS:
    _, test = denoise_data(sigma, noise_map=True)
    scores = {"noisy": [], "dncnn (sigma 25)": [], "noise_aware": [], "best classical": []}
    for k in range(len(test)):
        (noisy, noise_map), clean = test[k]
        with minicnn.no_grad():
            out_blind = blind(minicnn.tensor(noisy[None])).numpy()[0]
            out_aware = aware(minicnn.tensor(noisy[None]),
                              minicnn.tensor(noise_map[None])).numpy()[0]
        scores["noisy"].append(psnr(clean, noisy, data_range=1.0))
        scores["dncnn (sigma 25)"].append(psnr(clean, out_blind, data_range=1.0))
        scores["noise_aware"].append(psnr(clean, out_aware, data_range=1.0))
        scores["best classical"].append(best_denoiser(noisy, clean, sigma / 255).psnr)
    table[sigma] = {k: float(np.mean(v)) for k, v in scores.items()}

print(f"{'test sigma':<12}" + "".join(f"{k:>19}" for k in table[LEVELS[0]]))
for sigma, row in table.items():
    print(f"{sigma:<12g}" + "".join(f"{v:>19.2f}" for v in row.values()))
if not args.quick:  # away from its training level the blind network fails; told, one does not
    for sigma in LEVELS:  # the noise-aware network removes noise at every level
        assert table[sigma]["noise_aware"] > table[sigma]["noisy"], table[sigma]
    for sigma in (10.0, 50.0):
        assert table[sigma]["noise_aware"] > table[sigma]["dncnn (sigma 25)"], table[sigma]

fig, ax = plt.subplots(figsize=(6.5, 4.2))
for key, style in (("noisy", ":"), ("best classical", "--"), ("dncnn (sigma 25)", "o-"),
                   ("noise_aware", "s-")):
    ax.plot(LEVELS, [table[s][key] for s in LEVELS], style, label=key)
ax.axvline(25, color="grey", lw=0.8)
ax.set(xlabel="test noise sigma (0-255 scale)", ylabel="mean test PSNR (dB)",
       title="told the noise, one network for every level")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(OUT / "41_noise_aware_vs_blind.png", dpi=90)
plt.close(fig)

# %% [markdown]
# Reading the table: at σ = 10 the blind DnCNN removes noise that is not there and blurs the
# image (it can fall below the noisy image's PSNR); at σ = 50 it leaves most of the noise
# in. The noise-aware network, told σ, does the right amount at each level; at σ = 25, the
# blind network's own level, it stays below it after the same number of steps: one network
# for the whole range needs more training than one for one level. The command-line recipe
# measures the same comparison at full length (`minicnn train --task denoise --model
# noise_aware`, then `minicnn eval RUN --noise 10`): it trains the noise-aware network 20
# epochs, twice the DnCNN's steps (1.1 times its CPU time, a step costing two thirds of
# one), and it ends 0.23 dB below the DnCNN at σ = 25, 3.8 and 7.6 dB above it at σ = 10
# and 50; the README has the table.

# %%
print("lesson 41: all checks passed")
