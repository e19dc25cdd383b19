# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 05: pooling and normalization
#
# Between its convolutions a classic CNN has two other kinds of layers. **Pooling** shrinks
# each feature map, summarizing every small window by one number (its maximum or its mean):
# the next layers see a wider part of the image for the same cost, and small shifts of a
# feature stop mattering. **Normalization** rescales activations so that their statistics
# stay tame as the network trains: local response normalization (LRN) in AlexNet and
# GoogLeNet, batch normalization in nearly everything since 2015.
#
# What you will do:
#
# 1. pool a 4x4 map by hand, and learn the output-size rule (padding, stride, ceil_mode);
# 2. compare max and average pooling on real handwritten digits and on a generated image;
# 3. follow the gradients: max pooling routes them through its *switches*, which is also
#    how DeconvNet's unpooling works; average pooling spreads them;
# 4. meet adaptive and global pooling, which turn any image size into a fixed one;
# 5. train a batch-norm layer and watch its running statistics converge, then see why eval
#    mode matters, and check the compact backward formula against plain autograd;
# 6. reproduce AlexNet's and GoogLeNet's LRN, and see the paper's formula differ from
#    PyTorch's by a factor in alpha.
#
# Run it as a script, `python lessons/05_pool_norm.py` (`--quick` for CI: fewer steps), or
# as a notebook. Figures go to `lessons/out/`. Every claim is checked with an `assert`,
# mostly against PyTorch.

# %%
import argparse
import os
import sys
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")  # a script only writes files; a notebook keeps its inline figures
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as TF
from sklearn.datasets import load_digits

import minicnn
import minicnn.nn.functional as F
from minicnn import nn

parser = argparse.ArgumentParser(description="Lesson 05: pooling and normalization")
parser.add_argument("--quick", action="store_true", help="fewer batch-norm steps (for CI)")
args, _ = parser.parse_known_args()  # parse_known_args: Jupyter adds arguments of its own

try:
    OUT = Path(__file__).resolve().parent / "out"
except NameError:  # inside a notebook there is no __file__
    OUT = Path("out")
OUT.mkdir(parents=True, exist_ok=True)
minicnn.manual_seed(0)
rng = np.random.default_rng(0)


def close(mine, theirs, rtol=1e-5, atol=1e-6):
    """Assert that a minicnn result equals a PyTorch one."""
    a = mine.detach().numpy() if isinstance(mine, minicnn.Tensor) else np.asarray(mine)
    b = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


print(f"quick mode: {args.quick}; figures go to {OUT}")

# %% [markdown]
# ## 1. Pooling by hand
#
# A 2x2 max pooling with stride 2 cuts a map into 2x2 tiles and keeps the largest value of
# each; average pooling keeps their mean. In general, along one axis of size $n$ with kernel
# $k$, stride $s$, padding $p$ and dilation $d$, the output has
#
# $$ n_\text{out} = \left\lfloor \frac{n + 2p - d(k-1) - 1}{s} \right\rfloor + 1 $$
#
# cells. `ceil_mode=True` rounds up instead, so a last, partial window at the border is
# kept, unless it would *start* in the padding. For max pooling the padding counts as
# $-\infty$ (it can never win), and it may be at most half the kernel.

# %%
a = np.array([[1, 3, 2, 0],
              [4, 6, 5, 1],
              [7, 2, 9, 8],
              [0, 1, 3, 4]], dtype=np.float32)[None, None]
x = minicnn.tensor(a)
mx = F.max_pool2d(x, 2)
av = F.avg_pool2d(x, 2)
print("max pooling:\n", mx.numpy()[0, 0], "\naverage pooling:\n", av.numpy()[0, 0])
assert mx.numpy()[0, 0].tolist() == [[6, 5], [7, 9]]
assert av.numpy()[0, 0].tolist() == [[3.5, 2.0], [2.5, 6.0]]

# odd sizes: floor drops the last row and column, ceil_mode keeps a partial window
b = minicnn.tensor(np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5))
for ceil_mode in (False, True):
    out = F.max_pool2d(b, 2, ceil_mode=ceil_mode)
    close(out, TF.max_pool2d(torch.tensor(b.numpy()), 2, ceil_mode=ceil_mode))
    print(f"5x5, 2x2 stride 2, ceil_mode={ceil_mode}: output {out.shape[2:]}")
assert F.max_pool2d(b, 2).shape[2:] == (2, 2)
assert F.max_pool2d(b, 2, ceil_mode=True).shape[2:] == (3, 3)

# AlexNet's overlapping pooling: 3x3 windows every 2 pixels (55 -> 27)
big = minicnn.randn(1, 1, 55, 55)
assert F.max_pool2d(big, 3, stride=2).shape[2:] == (27, 27)

# %% [markdown]
# ## 2. Max versus average on real images
#
# We take handwritten digits (scikit-learn's 8x8 scans, enlarged 4x to 32x32, shifted by
# 2 pixels so the pooling windows do not line up with the original pixels) and a
# generated 64x64 image with thin lines, a disc and noise. Max pooling keeps every bright
# stroke at full strength, however thin: it answers "is the feature *somewhere* in this
# window?". Average pooling dims thin lines (a 1-pixel line in a 4x4 window keeps a quarter
# of its value) and smooths noise away: it answers "how much of the feature is here?".

# %%
digits = load_digits()
images = np.kron(digits.images[:4] / 16.0, np.ones((4, 4)))  # (4, 32, 32), nearest 4x
# shift by 2 pixels so that each 4x4 pooling window straddles four of the original pixels
images = np.pad(images, ((0, 0), (2, 0), (2, 0)))[:, :32, :32]
yy, xx = np.mgrid[0:64, 0:64]
scene = 0.15 * rng.random((64, 64))
scene[10, 5:60] = 1.0  # a one-pixel horizontal line
scene[:, 50] = 1.0  # a one-pixel vertical line
scene[(yy - 40) ** 2 + (xx - 24) ** 2 < 12**2] = 0.7  # a disc
batch = minicnn.tensor(images[:, None].astype(np.float32))  # (4, 1, 32, 32)
scene_t = minicnn.tensor(scene[None, None].astype(np.float32))

k = 4
for pool, tpool in [(F.max_pool2d, TF.max_pool2d), (F.avg_pool2d, TF.avg_pool2d)]:
    close(pool(batch, k), tpool(torch.tensor(batch.numpy()), k))
    close(pool(scene_t, k), tpool(torch.tensor(scene_t.numpy()), k))
line_max = F.max_pool2d(scene_t, k).numpy()[0, 0, 10 // k, 2:12].min()  # away from the other line
line_avg = F.avg_pool2d(scene_t, k).numpy()[0, 0, 10 // k, 2:12].max()
print(f"1-pixel line after 4x4 pooling: max keeps {line_max:.2f}, average keeps <= {line_avg:.2f}")
assert line_max == 1.0 and line_avg < 0.4

fig, axes = plt.subplots(3, 5, figsize=(12, 7.5))
for col in range(5):
    src = batch[col:col + 1] if col < 4 else scene_t
    for row, (title, img) in enumerate([("input", src), ("max 4x4", F.max_pool2d(src, k)),
                                        ("avg 4x4", F.avg_pool2d(src, k))]):
        ax = axes[row, col]
        ax.imshow(img.numpy()[0, 0], cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{title} {tuple(img.shape[2:])}", fontsize=9)
        ax.axis("off")
fig.suptitle("max pooling keeps thin bright strokes; average pooling dims them and smooths noise")
fig.tight_layout()
fig.savefig(OUT / "05_max_vs_avg.png", dpi=110)
plt.close(fig)

# %% [markdown]
# ## 3. Where the gradients go: switches
#
# The output of max pooling depends on one input per window, the winner, so the gradient
# flows back only to it: $\partial y / \partial x_i = 1$ for the argmax, 0 for the others.
# `return_indices=True` returns those argmax positions (flat indices $h \cdot W + w$ inside
# each map): Zeiler and Fergus called them *switches*. DeconvNet's **unpooling**
# (`max_unpool2d`) puts values back at the switches and zeros elsewhere, which is exactly the
# gradient of max pooling. Average pooling instead hands every input of a window the same
# share, $1 / (\text{window size})$.

# %%
xg = minicnn.tensor(a, requires_grad=True)
out, switches = F.max_pool2d(xg, 2, return_indices=True)
out.sum().backward()
print("switches (flat indices into the 4x4 map):\n", switches.numpy()[0, 0])
print("gradient of max pooling:\n", xg.grad.numpy()[0, 0])
assert xg.grad.numpy().sum() == 4 and switches.numpy()[0, 0].tolist() == [[5, 6], [8, 10]]
unpooled = F.max_unpool2d(out.detach(), switches, 2)
np.testing.assert_array_equal(unpooled.numpy() != 0, xg.grad.numpy() != 0)
t_out, t_idx = TF.max_pool2d(torch.tensor(a), 2, return_indices=True)
close(unpooled, TF.max_unpool2d(t_out, t_idx, 2))

xa = minicnn.tensor(a, requires_grad=True)
F.avg_pool2d(xa, 2).sum().backward()
assert np.all(xa.grad.numpy() == 0.25)

# overlapping windows can pick the same winner twice: its gradients add up
xo = minicnn.tensor(a, requires_grad=True)
to = torch.tensor(a, requires_grad=True)
F.max_pool2d(xo, 3, stride=1).sum().backward()
TF.max_pool2d(to, 3, stride=1).sum().backward()
close(xo.grad, to.grad)
print("3x3 stride-1 windows: the 9 is the max of all 4 windows, gradient",
      xo.grad.numpy()[0, 0, 2, 2])
assert xo.grad.numpy()[0, 0, 2, 2] == 4

# %% [markdown]
# ## 4. Adaptive and global pooling
#
# Adaptive pooling fixes the *output* size and derives the windows: along an axis of $n$
# inputs and $m$ outputs, bin $i$ covers inputs $\lfloor i n / m \rfloor$ to
# $\lceil (i+1) n / m \rceil - 1$, so neighbouring bins may share a row. With output size
# 1 it is **global pooling**, one number per channel: Network in Network, GoogLeNet and
# ResNet end that way, so they accept any image size.

# %%
for size in [(7, 7), (13, 10), (32, 32)]:
    fmap = minicnn.randn(2, 8, *size)
    pooled = nn.AdaptiveAvgPool2d((3, 3))(fmap)
    close(pooled, TF.adaptive_avg_pool2d(torch.tensor(fmap.numpy()), (3, 3)))
    gap = nn.GlobalAvgPool2d()(fmap)
    close(gap, fmap.numpy().mean(axis=(2, 3), keepdims=True))
    print(f"input {size} -> adaptive {pooled.shape[2:]}, global {gap.shape[2:]}")
    assert pooled.shape == (2, 8, 3, 3) and gap.shape == (2, 8, 1, 1)

# %% [markdown]
# ## 5. Batch normalization
#
# For each channel, batch norm standardizes over the batch (and the pixels):
#
# $$ \hat x = \frac{x - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}}, \qquad y = \gamma \hat x + \beta $$
#
# with the batch mean $\mu_B$ and the *biased* variance $\sigma^2_B$ (divided by $M$, the
# count). In **training** mode it also keeps running averages for later:
# $\text{running} \leftarrow (1 - m)\,\text{running} + m\,\text{batch}$, with the *unbiased*
# variance ($M / (M - 1)$ times larger), $m$ = `momentum` = 0.1. In **eval** mode it uses
# those running statistics instead, so a prediction does not depend on the rest of the batch.
#
# We feed batches whose channels have means 3 and -1 and standard deviations 2 and 0.5,
# and watch the running statistics approach them. `momentum=None` takes the plain
# cumulative average of all batches seen instead.

# %%
steps = 60 if args.quick else 300
true_mean, true_std = np.array([3.0, -1.0]), np.array([2.0, 0.5])
ours = {m: nn.BatchNorm2d(2, momentum=m) for m in (0.1, None)}
theirs = {m: torch.nn.BatchNorm2d(2, momentum=m) for m in (0.1, None)}
history = {m: [] for m in ours}
for _ in range(steps):
    xb = (rng.standard_normal((8, 2, 4, 4)) * true_std[:, None, None] + true_mean[:, None, None])
    xb = xb.astype(np.float32)
    for m in ours:
        y = ours[m](minicnn.tensor(xb))
        close(y, theirs[m](torch.tensor(xb)), rtol=1e-4, atol=1e-5)
        history[m].append(np.concatenate([ours[m].running_mean.numpy(),
                                          ours[m].running_var.numpy()]))
for m in ours:
    close(ours[m].running_mean, theirs[m].running_mean, rtol=1e-4, atol=1e-5)
    close(ours[m].running_var, theirs[m].running_var, rtol=1e-4, atol=1e-5)
    print(f"momentum={m}: running mean {ours[m].running_mean.numpy().round(3)}, running var "
          f"{ours[m].running_var.numpy().round(3)} (true {true_mean}, {true_std**2})")
    assert ours[m].num_batches_tracked.item() == steps
final = ours[None]
assert np.allclose(final.running_mean.numpy(), true_mean, atol=0.1)
assert np.allclose(final.running_var.numpy(), true_std**2, rtol=0.1)

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for m, style in [(0.1, "-"), (None, "--")]:
    h = np.array(history[m])
    for ch, color in [(0, "C0"), (1, "C1")]:
        axes[0].plot(h[:, ch], style, color=color, label=f"channel {ch}, momentum={m}")
        axes[1].plot(h[:, 2 + ch], style, color=color, label=f"channel {ch}, momentum={m}")
for ax, target, title in [(axes[0], true_mean, "running_mean"),
                          (axes[1], true_std**2, "running_var")]:
    for value in target:
        ax.axhline(value, color="gray", lw=0.8, ls=":")
    ax.set(title=title, xlabel="training step")
    ax.legend(fontsize=8)
fig.suptitle("batch norm running statistics converge to the data's (dotted)")
fig.tight_layout()
fig.savefig(OUT / "05_batchnorm_running.png", dpi=110)
plt.close(fig)

# %% [markdown]
# Train and eval mode differ most with a tiny batch. With 2 samples, the training-mode
# output of a sample depends on its partner; in eval mode it does not.

# %%
bn = ours[0.1]
pair_a = minicnn.tensor(np.stack([xb[0], xb[1]]))
pair_b = minicnn.tensor(np.stack([xb[0], xb[2]]))
with minicnn.no_grad():  # only looking: no graph needed
    bn.train()
    train_diff = np.abs(bn(pair_a).numpy()[0] - bn(pair_b).numpy()[0]).max()
    bn.eval()
    eval_diff = np.abs(bn(pair_a).numpy()[0] - bn(pair_b).numpy()[0]).max()
print(f"same sample, different partner: train-mode output changes by {train_diff:.3f}, "
      f"eval-mode by {eval_diff:.1e}")
assert train_diff > 0.01 and eval_diff == 0.0

# %% [markdown]
# **The backward pass.** Every $\hat x_i$ depends on all inputs of its channel through
# $\mu_B$ and $\sigma_B$. Working the chain rule through them gives the compact formula
# minicnn's `BatchNorm` function uses, with $g = \gamma\, \partial L / \partial y$:
#
# $$ \frac{\partial L}{\partial x_i} = \frac{1}{\sqrt{\sigma_B^2 + \epsilon}}
#    \left( g_i - \frac{1}{M}\sum_j g_j - \hat x_i \frac{1}{M} \sum_j g_j \hat x_j \right) $$
#
# We check it against autograd run through the same formula written with primitive ops
# (mean, subtraction, division...), which knows nothing of that derivation.

# %%
xd = rng.standard_normal((4, 3, 5, 5))
gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
x1, w1, b1 = (minicnn.tensor(v, requires_grad=True) for v in (xd, gamma, beta))
x2, w2, b2 = (minicnn.tensor(v, requires_grad=True) for v in (xd, gamma, beta))
upstream = minicnn.tensor(rng.standard_normal(xd.shape))
F.batch_norm(x1, None, None, w1, b1, training=True).backward(upstream)
mu = x2.mean(dim=(0, 2, 3), keepdim=True)
var = ((x2 - mu) * (x2 - mu)).mean(dim=(0, 2, 3), keepdim=True)
y2 = (x2 - mu) / (var + 1e-5).sqrt() * w2.reshape(1, 3, 1, 1) + b2.reshape(1, 3, 1, 1)
y2.backward(upstream)
for fused, composed in [(x1, x2), (w1, w2), (b1, b2)]:
    np.testing.assert_allclose(fused.grad.numpy(), composed.grad.numpy(), rtol=1e-9, atol=1e-11)
assert minicnn.gradcheck(lambda x: F.batch_norm(x, None, None, training=True),
                         [minicnn.tensor(rng.standard_normal((3, 2, 2, 2)), requires_grad=True)])
print("compact batch-norm backward == autograd through primitive ops == finite differences")

# %% [markdown]
# ## 6. Local response normalization (AlexNet, GoogLeNet)
#
# Before batch norm, AlexNet normalized each activation by its neighbours across channels,
# "inspired by lateral inhibition in real neurons": a strongly active channel damps the
# ones next to it. The paper writes (with $N$ channels and $n = 5$ neighbours)
#
# $$ b^i = a^i \Big/ \Big(k + \alpha \sum_{j=\max(0, i-n/2)}^{\min(N-1, i+n/2)} (a^j)^2\Big)^\beta,
#    \qquad k=2,\ n=5,\ \alpha=10^{-4},\ \beta=0.75. $$
#
# PyTorch's (and Caffe's) `local_response_norm` divides $\alpha$ by $n$: it averages the
# squares instead of summing them. So the paper's layer is
# `LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2)`, whereas the often copied
# `LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2)` is five times weaker. GoogLeNet used
# LRN twice in its stem, Caffe-style: `size=5, alpha=1e-4, beta=0.75, k=1`.

# %%
def lrn_paper(a, n=5, k=2.0, alpha=1e-4, beta=0.75):
    """AlexNet's formula, with an explicit loop over channels (the readable version)."""
    out = np.empty_like(a)
    channels = a.shape[1]
    for i in range(channels):
        lo, hi = max(0, i - n // 2), min(channels - 1, i + n // 2)
        out[:, i] = a[:, i] / (k + alpha * (a[:, lo:hi + 1] ** 2).sum(axis=1)) ** beta
    return out


acts = np.abs(rng.standard_normal((2, 16, 6, 6))) * 20  # ReLU outputs, large enough to matter
acts[:, 8] *= 5  # one strongly active channel
alexnet = nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0)
googlenet = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
for layer in (alexnet, googlenet):
    ref = torch.nn.LocalResponseNorm(layer.size, layer.alpha, layer.beta, layer.k)
    close(layer(minicnn.tensor(acts)), ref(torch.tensor(acts)), rtol=1e-10, atol=1e-12)
np.testing.assert_allclose(alexnet(minicnn.tensor(acts)).numpy(), lrn_paper(acts), rtol=1e-12)
print("AlexNet's paper formula == LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2)")

# the gradient too, against PyTorch (LRN's backward couples neighbouring channels)
xl = minicnn.tensor(acts, requires_grad=True)
tl = torch.tensor(acts, requires_grad=True)
alexnet(xl).sum().backward()
torch.nn.LocalResponseNorm(5, 5e-4, 0.75, 2.0)(tl).sum().backward()
close(xl.grad, tl.grad, rtol=1e-10, atol=1e-12)

# lateral inhibition: channels next to the strong one are damped more than distant ones
ratio = (alexnet(minicnn.tensor(acts)).numpy() / acts).mean(axis=(0, 2, 3))
print("output / input per channel:", ratio.round(3))
assert ratio[6:11].max() < ratio[:5].min() and ratio[6:11].max() < ratio[12:].min()

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(ratio, "o-", label="AlexNet (k=2, n=5, alpha=5e-4 in PyTorch's form)")
ax.plot((googlenet(minicnn.tensor(acts)).numpy() / acts).mean(axis=(0, 2, 3)), "s-",
        label="GoogLeNet (k=1, n=5, alpha=1e-4)")
ax.axvline(8, color="gray", ls=":", label="the strongly active channel")
ax.set(xlabel="channel", ylabel="mean output / input", title="LRN damps the neighbours of a "
       "strong channel")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(OUT / "05_lrn.png", dpi=110)
plt.close(fig)

# %% [markdown]
# ## Summary
#
# * Pooling shrinks maps by a window summary; the output size follows one formula, with
#   `ceil_mode` keeping partial border windows. Max pooling keeps the strongest response and
#   routes gradients through its switches (DeconvNet unpools with them); average pooling
#   keeps the mean and spreads gradients evenly. Global (adaptive) pooling makes networks
#   accept any image size.
# * Batch norm uses batch statistics in training and running ones in eval: call
#   `model.eval()` before testing. Its backward is the compact formula above.
# * LRN is AlexNet's and GoogLeNet's cross-channel normalization; mind the $\alpha / n$ of
#   PyTorch's definition when reproducing a paper.
#
# Next, lesson 06 puts convolution, pooling and linear layers together into a first CNN.

# %%
print("lesson 05: all checks passed")
