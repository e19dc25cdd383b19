# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Assignment 07: DnCNN, denoising by residual learning
#
# Zhang et al. (2017) train a network `R` to predict the *noise* `v` of a noisy image
# `y = x + v`; the denoised image is `y - R(y)`. Predicting the residual is easier than
# predicting the image: the noise has no structure to remember. Write:
#
# 1. `TinyDnCNN`: `self.model = nn.Sequential(...)` with, in this order, a 3x3 convolution
#    (`channels -> features`, padding 1, bias) and a ReLU; `depth - 2` times a 3x3
#    convolution (`features -> features`, padding 1, bias), a BatchNorm2d and a ReLU; a last
#    3x3 convolution (`features -> channels`, padding 1, bias). `noise(y)` returns
#    `self.model(y)`, `forward(y)` returns `y - noise(y)`. (The layout is
#    `minicnn.models.restoration.dncnn`'s, whose weights the grader loads into yours.)
# 2. `residual_loss`: the mean squared error between the predicted noise and the true noise.
# 3. The training loop of `train_denoiser`, on random patches of photographs with Gaussian
#    noise drawn on the fly.
#
# The grader then trains your network (`train_denoiser(seed=0)`, as it is below), denoises
# two crops that no training patch comes from and compares it with the classical method a
# user would otherwise pick: scikit-image's non-local means, told the true sigma
# (`minicnn.baselines.denoise(noisy, sigma, "nl_means")`). Your mean PSNR
# (`minicnn.metrics.psnr`) over the two crops must be above non-local means' on the same
# noisy crops. The noise is strong (sigma = 50 on the 0-255 scale): there non-local means
# finds few similar patches to average, and a small network trained for minutes can beat it
# (at sigma = 25 it is much harder: a 5-layer one stayed 0.5 dB below).
# This assignment needs the restoration parts of minicnn (`minicnn.models.restoration`,
# `minicnn.metrics.psnr`, `minicnn.baselines`) and scikit-image; without them the grader
# skips the tests that use them and says so.

# %%
import numpy as np

import minicnn
import minicnn.nn.functional as F
from minicnn import nn, optim

SIGMA = 50.0  # noise standard deviation on the 0-255 scale
PATCH = 40  # training patches of PATCH x PATCH pixels (DnCNN-S's size)
STEPS = 2500  # training steps of `train_denoiser` (batches of 16 patches)
CROP = 128  # the test crops are CROP x CROP


# %%
class TinyDnCNN(nn.Module):
    """DnCNN. y: (N, channels, H, W) noisy image in [0, 1] -> (N, channels, H, W) denoised."""

    def __init__(self, channels: int = 1, depth: int = 7, features: int = 32):
        super().__init__()
        ### BEGIN SOLUTION
        layers = [nn.Conv2d(channels, features, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1), nn.BatchNorm2d(features),
                       nn.ReLU()]
        layers.append(nn.Conv2d(features, channels, 3, padding=1))
        self.model = nn.Sequential(*layers)
        ### END SOLUTION

    def noise(self, y):
        """The estimated noise R(y), same shape as y."""
        ### BEGIN SOLUTION
        return self.model(y)
        ### END SOLUTION

    def forward(self, y):
        ### BEGIN SOLUTION
        return y - self.noise(y)
        ### END SOLUTION


def residual_loss(model: TinyDnCNN, noisy, noise):
    """Mean squared error between model.noise(noisy) and the true noise (Tensors of the same
    shape (N, C, H, W)) -> a scalar Tensor."""
    ### BEGIN SOLUTION
    return F.mse_loss(model.noise(noisy), noise)
    ### END SOLUTION


# %% [markdown]
# ## Data and training
#
# The photographs are those of `minicnn.data.photos` in grey, in [0, 1]. The test crops are
# the bottom 128 rows, central 128 columns, of two of its test photographs: `camera` (grass
# and the tripod's feet) and `coins` (the bottom row of coins). Training patches come from
# five of its training photographs (`TRAIN_PHOTOS`) and from the rest of those two: above the
# crop, and left and right of it (so the network sees grass and coins, but never the test
# pixels; the grader checks it by content). Training (`STEPS` = 2,500 steps of 16 patches)
# takes about 390 s of CPU (one core). Measured with this reference solution (mean PSNR over
# the two crops; noisy 14.92 dB, non-local means 23.23 dB): seed 0 23.68 dB (+0.44), seed 1
# 23.51 dB (+0.28), seed 2 23.50 dB (+0.27). With 1,500 steps the margin was +0.17 / -0.14
# dB (seeds 0 / 1): non-local means is a strong baseline at this size, and the network
# clears it only with enough steps.

# %%
TRAIN_PHOTOS = ("chelsea", "rocket", "china", "moon", "clock")
HELD_OUT = ("camera", "coins")  # test crops from these; their other pixels train


def _grey(name: str) -> np.ndarray:
    from minicnn.data.photos import load_photo

    return load_photo(name, "grey")[0]


def test_crops() -> dict:
    """{name: (CROP, CROP) float32 in [0, 1]}: the bottom CROP rows of each photograph of
    HELD_OUT, central CROP columns."""
    crops = {}
    for name in HELD_OUT:
        image = _grey(name)
        left = (image.shape[1] - CROP) // 2
        crops[name] = image[-CROP:, left:left + CROP]
    return crops


def training_images() -> list:
    """The (H, W) float32 images in [0, 1] training patches come from: TRAIN_PHOTOS, and
    each photograph of HELD_OUT cut around its test crop (above, bottom left, bottom right)."""
    images = [_grey(name) for name in TRAIN_PHOTOS]
    for name in HELD_OUT:
        image = _grey(name)
        left = (image.shape[1] - CROP) // 2
        images += [image[:-CROP], image[-CROP:, :left], image[-CROP:, left + CROP:]]
    return images


def random_patches(images: list, batch: int, rng: np.random.Generator) -> np.ndarray:
    """batch random PATCH x PATCH patches, each of a random image: (batch, 1, PATCH, PATCH)."""
    patches = []
    for k in rng.integers(0, len(images), batch):
        image = images[k]
        i, j = rng.integers(0, [image.shape[0] - PATCH + 1, image.shape[1] - PATCH + 1])
        patches.append(image[i:i + PATCH, j:j + PATCH])
    return np.stack(patches)[:, None]


def train_denoiser(steps: int = STEPS, batch: int = 16, seed: int = 0, lr: float = 1e-2,
                   verbose: bool = False) -> TinyDnCNN:
    """Train TinyDnCNN with Adam (lr decayed to 0 on a cosine) on random patches at SIGMA.
    The last convolution starts at zero: the network starts as the identity (no noise
    predicted), not from a random guess of noise far larger than the true one."""
    minicnn.manual_seed(seed)
    rng = np.random.default_rng(seed)
    images = training_images()
    model = TinyDnCNN()
    nn.init.zeros_(model.model[len(model.model) - 1].weight)
    opt = optim.Adam(model.parameters(), lr=lr)
    schedule = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    model.train()
    for step in range(steps):
        clean = random_patches(images, batch, rng)
        noise = (rng.standard_normal(clean.shape) * SIGMA / 255).astype(np.float32)
        ### BEGIN SOLUTION
        loss = residual_loss(model, minicnn.tensor(clean + noise), minicnn.tensor(noise))
        opt.zero_grad()
        loss.backward()
        opt.step()
        ### END SOLUTION
        schedule.step()
        if verbose and step % 100 == 0:
            print(f"step {step}: loss {loss.item():.5f}")
    return model.eval()


def denoise(model: TinyDnCNN, noisy: np.ndarray) -> np.ndarray:
    """Denoise one (H, W) image in [0, 1] -> (H, W), clipped to [0, 1]."""
    with minicnn.no_grad():
        out = model(minicnn.tensor(noisy[None, None].astype(np.float32))).numpy()[0, 0]
    return np.clip(out, 0, 1)


# %% [markdown]
# ## Check yourself

# %%
if __name__ == "__main__":
    from minicnn.baselines import denoise as classical
    from minicnn.metrics import psnr

    y = minicnn.rand(2, 1, 16, 16)
    model = TinyDnCNN()
    assert model(y).shape == y.shape
    model = train_denoiser(verbose=True)
    for k, (name, clean) in enumerate(test_crops().items()):
        noisy = clean + np.random.default_rng(k).standard_normal(clean.shape).astype(
            np.float32) * SIGMA / 255
        nlm = classical(noisy, SIGMA / 255, "nl_means")
        print(f"{name}: PSNR noisy {psnr(clean, np.clip(noisy, 0, 1), data_range=1.0):.2f} dB, "
              f"network {psnr(clean, denoise(model, noisy), data_range=1.0):.2f} dB, non-local "
              f"means {psnr(clean, np.clip(nlm, 0, 1), data_range=1.0):.2f} dB")
    print("assignment 07: all checks passed")
