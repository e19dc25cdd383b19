# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 04: grouped and depthwise convolutions -- what they cost and what they save
#
# A standard 3x3 convolution from C to K channels on an H x W image connects every output
# channel to every input channel: it does `9 * C * K * H * W` multiply-adds. Most of the
# cost is the channel mixing (the `C * K` factor), not the spatial filtering (the `9`).
# Two ideas cut it down:
#
# * **grouped convolution** (AlexNet, ResNeXt): split the channels into G groups and
#   convolve each group separately -- G times fewer weights and multiply-adds;
# * **depthwise-separable convolution** (Xception, MobileNet): first a *depthwise* 3x3
#   convolution that filters each channel on its own (`groups = C`), then a *pointwise*
#   1x1 convolution that mixes channels. Cost `(9 + K) * C * H * W` instead of
#   `9 * K * C * H * W`: a ratio of `1/K + 1/9`, about 8-9x fewer for K = 64...512.
#
# What you will do:
#
# 1. (a) see that a grouped convolution is G independent convolutions, side by side;
# 2. (b) count weights and multiply-adds of each kind, and check the formulas;
# 3. (c) build a depthwise-separable block and match PyTorch;
# 4. (d) measure: does 8x fewer multiply-adds mean 8x faster?
#
# Run it as a script, `python lessons/04_grouped_depthwise.py` (`--quick`: smaller sizes, as
# CI does), or as a notebook through Jupytext. Figures go to `lessons/out/`. Every claim is
# checked with an `assert`.

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
import torch.nn.functional as TF

import minicnn
import minicnn.nn as nn
import minicnn.nn.functional as F
from minicnn.backend import current_backend

parser = argparse.ArgumentParser(description="Lesson 04: grouped and depthwise convolutions")
parser.add_argument("--quick", action="store_true", help="smaller sizes (for CI)")
args, _ = parser.parse_known_args()  # parse_known_args: Jupyter adds arguments of its own

try:
    OUT = Path(__file__).resolve().parent / "out"
except NameError:  # inside a notebook there is no __file__
    OUT = Path("out")
OUT.mkdir(parents=True, exist_ok=True)

minicnn.manual_seed(0)
torch.manual_seed(0)
rng = np.random.default_rng(0)
print(f"quick mode: {args.quick}; backend: {current_backend().name}; figures go to {OUT}")


def close(a, b, tol=1e-10):
    """Max absolute difference between two arrays/tensors, asserted below ``tol``."""
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    err = float(np.abs(a - b).max())
    assert err < tol, f"max difference {err:.3g} >= {tol:g}"
    return err


# %% [markdown]
# ## (a) A grouped convolution is G convolutions side by side
#
# With `groups=G` the C input channels split into G slices of C/G and the K filters into G
# slices of K/G; filter slice g only sees input slice g. So the weight has shape
# `(K, C/G, kh, kw)` -- each filter is G times thinner. Cutting the input and the weight
# into their G slices, convolving each pair and concatenating the results must give the
# same output, and so must PyTorch.
#
# minicnn does not loop over the groups: the column matrix `(C*kh*kw, N*L)` is viewed as
# `(G, C/G*kh*kw, N*L)`, the weight as `(G, K/G, C/G*kh*kw)`, and one batched matrix product
# handles every group.

# %%
C, K, G = 8, 12, 4
x = rng.standard_normal((2, C, 9, 9))
w = rng.standard_normal((K, C // G, 3, 3))
mx, mw = minicnn.tensor(x), minicnn.tensor(w)
y_grouped = F.conv2d(mx, mw, padding=1, groups=G)
pieces = [F.conv2d(mx[:, g * C // G:(g + 1) * C // G], mw[g * K // G:(g + 1) * K // G],
                   padding=1) for g in range(G)]
y_pieces = minicnn.cat(pieces, dim=1)
y_torch = TF.conv2d(torch.tensor(x), torch.tensor(w), padding=1, groups=G)
print(f"groups={G}: weight {tuple(w.shape)}, output {y_grouped.shape}")
close(y_grouped, y_pieces)
close(y_grouped, y_torch)
print("grouped conv == G separate convs concatenated == torch")

# %% [markdown]
# ## (b) Counting weights and multiply-adds
#
# Each output value of a convolution is a dot product of length `(C/G) * kh * kw`, so
#
# $$ \text{MACs} = N\, K\, H_{out} W_{out} \cdot \frac{C}{G} k_h k_w,
#    \qquad \text{weights} = K \cdot \frac{C}{G} k_h k_w. $$
#
# We count both from real layers (the shapes of their weights and outputs) and check them
# against the closed forms of the introduction, at a MobileNet-like size: C = K = 256
# channels on 14x14 images.

# %%
def conv_cost(layer, x_shape):
    """(weights, multiply-adds) of a minicnn Conv2d applied to an input of ``x_shape``."""
    with minicnn.no_grad():
        y = layer(minicnn.zeros(*x_shape))
    k_out, c_per_group, kh, kw = layer.weight.shape
    weights = layer.weight.numel()
    macs = y.numel() * c_per_group * kh * kw  # one dot product per output value
    return weights, macs


C = K = 256
H = W = 14
x_shape = (1, C, H, W)
layers = {
    "standard 3x3": [nn.Conv2d(C, K, 3, padding=1, bias=False)],
    "grouped 3x3, G=32": [nn.Conv2d(C, K, 3, padding=1, groups=32, bias=False)],
    "depthwise 3x3": [nn.Conv2d(C, C, 3, padding=1, groups=C, bias=False)],
    "pointwise 1x1": [nn.Conv2d(C, K, 1, bias=False)],
    "depthwise-separable": [nn.Conv2d(C, C, 3, padding=1, groups=C, bias=False),
                            nn.Conv2d(C, K, 1, bias=False)],
}
costs = {}
for name, parts in layers.items():
    counts = [conv_cost(layer, x_shape) for layer in parts]
    costs[name] = (sum(c[0] for c in counts), sum(c[1] for c in counts))
    print(f"{name:22s} weights {costs[name][0]:9,d}   multiply-adds {costs[name][1]:12,d}")

assert costs["standard 3x3"] == (9 * C * K, 9 * C * K * H * W)
assert costs["grouped 3x3, G=32"][1] == 9 * C * K * H * W // 32
assert costs["depthwise 3x3"] == (9 * C, 9 * C * H * W)
assert costs["pointwise 1x1"] == (C * K, C * K * H * W)
assert costs["depthwise-separable"][1] == (9 + K) * C * H * W
ratio = costs["depthwise-separable"][1] / costs["standard 3x3"][1]
assert abs(ratio - (1 / K + 1 / 9)) < 1e-12
print(f"separable / standard = {ratio:.4f} = 1/K + 1/9: {1 / ratio:.1f}x fewer multiply-adds")
# PyTorch counts the same number of weights
torch_weights = sum(p.numel() for p in torch.nn.Conv2d(C, K, 3, groups=32, bias=False)
                    .parameters())
assert torch_weights == costs["grouped 3x3, G=32"][0]

# %% [markdown]
# ## (c) A depthwise-separable block, checked against PyTorch
#
# MobileNet's block: depthwise 3x3 (here with a *channel multiplier* of 2: each input
# channel gets two filters, so `C -> 2C` channels, still `groups = C`), then pointwise 1x1
# to K channels. minicnn runs the depthwise part with a direct kernel (no column matrix:
# through im2col it would become thousands of tiny matrix products); on the numba backend
# grouped convolutions with few channels per group (ResNeXt's 4) use the same kernels. We
# load PyTorch's weights into the minicnn layers and compare outputs and all gradients in
# float64.

# %%
C, K, mult = 6, 10, 2
mine = nn.Sequential(nn.Conv2d(C, C * mult, 3, padding=1, groups=C, dtype=np.float64),
                     nn.Conv2d(C * mult, K, 1, dtype=np.float64))
theirs = torch.nn.Sequential(torch.nn.Conv2d(C, C * mult, 3, padding=1, groups=C),
                             torch.nn.Conv2d(C * mult, K, 1)).double()
assert repr(mine) == repr(theirs)
print(mine)
mine.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
x = rng.standard_normal((2, C, 8, 7))
mx, tx = minicnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
my, ty = mine(mx), theirs(tx)
close(my, ty)
dy = rng.standard_normal(my.shape)
my.backward(minicnn.tensor(dy))
ty.backward(torch.tensor(dy))
close(mx.grad, tx.grad)
for p, q in zip(mine.parameters(), theirs.parameters(), strict=True):
    close(p.grad, q.grad)
print("depthwise-separable block: outputs and gradients equal torch's")

# %% [markdown]
# ## (d) Fewer multiply-adds -- how much faster?
#
# We time forward and forward+backward of a standard 3x3 layer and of the separable block
# that replaces it, in minicnn and in PyTorch. Expect the speed-up to fall short of the
# multiply-add ratio: a depthwise convolution does only 9 multiply-adds per input value it
# reads (a standard one `9 K`), so it is limited by memory traffic, not arithmetic, and
# the pointwise part is a matrix product with a short inner dimension.

# %%
def best_time(fn, repeat):
    """The fastest of ``repeat`` runs after one warm-up call, in seconds."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


n_img, C, size = (4, 32, 8) if args.quick else (16, 128, 16)
K = C
repeat = 3 if args.quick else 7
xb = rng.standard_normal((n_img, C, size, size)).astype(np.float32)
w_std = (rng.standard_normal((K, C, 3, 3)) * 0.05).astype(np.float32)
w_dw = (rng.standard_normal((C, 1, 3, 3)) * 0.3).astype(np.float32)
w_pw = (rng.standard_normal((K, C, 1, 1)) * 0.1).astype(np.float32)


def blocks(lib, conv):
    """The two alternatives as functions of the input, in minicnn or torch."""
    ws = {k: lib.tensor(v, requires_grad=True) for k, v in
          (("std", w_std), ("dw", w_dw), ("pw", w_pw))}
    return {
        "standard 3x3": lambda t: conv(t, ws["std"], padding=1),
        "depthwise-separable": lambda t: conv(conv(t, ws["dw"], padding=1, groups=C), ws["pw"]),
    }


def time_block(fn, xin, no_grad):
    """(forward, forward+backward) seconds of ``fn`` on ``xin``."""

    def forward():
        with no_grad():
            fn(xin)

    def forward_backward():
        fn(xin).sum().backward()

    return best_time(forward, repeat), best_time(forward_backward, repeat)


results = {}
for lib_name, lib, conv in [("minicnn", minicnn, F.conv2d), ("PyTorch", torch, TF.conv2d)]:
    xin = lib.tensor(xb, requires_grad=True)
    no_grad = minicnn.no_grad if lib is minicnn else torch.no_grad
    for block_name, fn in blocks(lib, conv).items():
        results[lib_name, block_name] = time_block(fn, xin, no_grad)

# the two libraries compute the same thing
mb, tb = blocks(minicnn, F.conv2d), blocks(torch, TF.conv2d)
for name in mb:
    close(mb[name](minicnn.tensor(xb)), tb[name](torch.tensor(xb)), tol=1e-4)

mac_ratio = (9 + K) * C / (9 * K * C)
print(f"N={n_img}, C=K={C}, {size}x{size}: separable does {1 / mac_ratio:.1f}x fewer "
      "multiply-adds")
for lib_name in ("minicnn", "PyTorch"):
    f_std, fb_std = results[lib_name, "standard 3x3"]
    f_sep, fb_sep = results[lib_name, "depthwise-separable"]
    print(f"  {lib_name:8s} standard {f_std * 1e3:7.2f} / {fb_std * 1e3:7.2f} ms, separable "
          f"{f_sep * 1e3:7.2f} / {fb_sep * 1e3:7.2f} ms (forward / forward+backward): "
          f"speed-up {f_std / f_sep:.1f}x / {fb_std / fb_sep:.1f}x")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
ks = np.array([8, 16, 32, 64, 128, 256, 512, 1024])
ax1.semilogx(ks, 1 / (1 / ks + 1 / 9), "o-", base=2)
ax1.axhline(9, color="gray", ls=":", label="limit 9 (K -> infinity)")
ax1.set(xlabel="output channels K", ylabel="standard / separable multiply-adds",
        title="what depthwise-separable saves: 1 / (1/K + 1/9)")
ax1.legend()
labels = ["multiply-adds", "minicnn fwd", "minicnn fwd+bwd", "PyTorch fwd", "PyTorch fwd+bwd"]
speedups = [1 / mac_ratio]
for lib_name in ("minicnn", "PyTorch"):
    for i in range(2):
        speedups.append(results[lib_name, "standard 3x3"][i]
                        / results[lib_name, "depthwise-separable"][i])
ax2.bar(labels, speedups, color=["gray", "C0", "C0", "C2", "C2"])
ax2.set(ylabel="standard / separable", title=f"measured speed-up (C=K={C}, {size}x{size})")
ax2.tick_params(axis="x", rotation=20)
for i, s in enumerate(speedups):
    ax2.text(i, s, f"{s:.1f}x", ha="center", va="bottom")
fig.tight_layout()
fig.savefig(OUT / "04_cost.png", dpi=100)
plt.close(fig)
print("saved", OUT / "04_cost.png")

# %% [markdown]
# ## Summary
#
# * `groups=G` splits a convolution into G independent ones: G times fewer weights and
#   multiply-adds, and channels only mix within a group.
# * Depthwise (`groups = C`) + pointwise (1x1) replaces `9 C K H W` multiply-adds by
#   `(9 + K) C H W`; the saving tends to 9x for wide layers.
# * The measured speed-up is smaller: the depthwise part reads much data for little
#   arithmetic. Counting multiply-adds predicts the work, not the time.
#
# Next: the building blocks of real networks -- pooling and normalization.

# %%
print("lesson 04: all checks passed")
