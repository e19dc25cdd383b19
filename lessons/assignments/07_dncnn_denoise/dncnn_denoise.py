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
# 3. The training loop of `train_denoiser`, on random patches of a photograph with Gaussian
#    noise drawn on the fly.
#
# The grader then denoises a part of the photograph that no training patch came from and
# wants a PSNR (`minicnn.metrics.psnr`) at least 3 dB above the noisy input; it prints
# scikit-image's non-local means (given the true sigma) beside it. Beating non-local means
# takes the full DnCNN and longer training: this small one stays about 0.5 dB below.
# This assignment needs the restoration parts of minicnn (`minicnn.models.restoration`,
# `minicnn.metrics.psnr`); without them the grader skips the tests that use them and says so.

# %%
import numpy as np

import minicnn
import minicnn.nn.functional as F
from minicnn import nn, optim

SIGMA = 25.0  # noise standard deviation on the 0-255 scale
PATCH = 32


# %%
class TinyDnCNN(nn.Module):
    """DnCNN. y: (N, channels, H, W) noisy image in [0, 1] -> (N, channels, H, W) denoised."""

    def __init__(self, channels: int = 1, depth: int = 5, features: int = 16):
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
# The photograph is scikit-image's `camera` (512 x 512, grey), scaled to [0, 1]; training
# patches come from its top 320 rows, the test crop from its bottom 128 rows. Training takes
# a few minutes on 2 CPU cores (the reference: +3.5 dB over the noisy crop after 400 steps,
# +4.0 dB after 1500, non-local means +4.5 dB).

# %%
def photograph():
    """scikit-image's camera as float32 in [0, 1]: (train part (320, 512), test crop (128, 128))."""
    from skimage import data

    image = data.camera().astype(np.float32) / 255
    return image[:320], image[384:, 192:320]


def train_denoiser(steps: int = 600, batch: int = 16, seed: int = 0,
                   verbose: bool = False) -> TinyDnCNN:
    """Train TinyDnCNN with Adam (lr 2e-3) on random PATCH x PATCH patches at sigma SIGMA."""
    minicnn.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train, _ = photograph()
    model = TinyDnCNN()
    opt = optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for step in range(steps):
        corners = rng.integers(0, [train.shape[0] - PATCH, train.shape[1] - PATCH], (batch, 2))
        clean = np.stack([train[i:i + PATCH, j:j + PATCH] for i, j in corners])[:, None]
        noise = (rng.standard_normal(clean.shape) * SIGMA / 255).astype(np.float32)
        ### BEGIN SOLUTION
        loss = residual_loss(model, minicnn.tensor(clean + noise), minicnn.tensor(noise))
        opt.zero_grad()
        loss.backward()
        opt.step()
        ### END SOLUTION
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
    y = minicnn.rand(2, 1, 16, 16)
    model = TinyDnCNN()
    assert model(y).shape == y.shape
    model = train_denoiser(verbose=True)
    _, test = photograph()
    noisy = test + np.random.default_rng(1).standard_normal(test.shape).astype(np.float32) \
        * SIGMA / 255
    mse = float(((denoise(model, noisy) - test) ** 2).mean())
    print(f"PSNR noisy {10 * np.log10(1 / ((noisy - test) ** 2).mean()):.2f} dB, "
          f"denoised {10 * np.log10(1 / mse):.2f} dB")
    print("assignment 07: all checks passed")
