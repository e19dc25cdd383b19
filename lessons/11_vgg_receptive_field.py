# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 11: VGG's stacked 3×3 convolutions and the receptive field
#
# Simonyan & Zisserman (2015, "Very Deep Convolutional Networks", Section 2.3) built every
# VGG network from 3×3 convolutions only, and argued:
#
# * a stack of two 3×3 convolutions (no pooling between) sees a **5×5** region, three see
#   **7×7**: the same *receptive field* as one 5×5 or 7×7 layer;
# * with C channels in and out the stack has fewer weights: 2·3²·C² = 18C² against 25C²,
#   3·3²·C² = 27C² against 49C² ("81% more" for the 7×7);
# * and two or three ReLUs instead of one make the decision function more discriminative.
#
# This lesson measures each claim: the receptive field by formula (`minicnn.viz.receptive_field`)
# and by a gradient probe, the parameters and multiply-adds with `minicnn.summary`, the time
# of a forward pass; then VGG-16's receptive fields layer by layer (conv5_3: 196 px, pool5:
# 212 px) drawn on an image.
#
# Run it as a script, `python lessons/11_vgg_receptive_field.py` (`--quick` for a short run),
# or as a notebook. Figures go to `lessons/out/`.

# %%
import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import minicnn
from minicnn import nn
from minicnn.data import load_data
from minicnn.models.vgg import VGG_CONFIGS, make_layers
from minicnn.summary import summary
from minicnn.viz import plot_receptive_field, receptive_field, receptive_field_table

parser = argparse.ArgumentParser(description="Lesson 11: VGG's 3x3 stacks and receptive fields")
parser.add_argument("--quick", action="store_true", help="smaller timing runs (for CI)")
args, _ = parser.parse_known_args()
OUT = Path(__file__).resolve().parent / "out" if "__file__" in globals() else Path("out")
OUT.mkdir(parents=True, exist_ok=True)
minicnn.manual_seed(0)

# %% [markdown]
# ## 1. The receptive field by formula
#
# Going up a chain of layers with kernel k, stride s, padding p and dilation d, the field of
# one output pixel grows by (k − 1)·d input-pixel *jumps*, and the jump (the distance in
# input pixels between neighbouring output pixels) multiplies by the stride:
#
# $$r_{out} = r_{in} + (k-1)\,d\,j_{in}, \qquad j_{out} = j_{in}\,s$$
#
# starting from r = 1, j = 1 at the input. At stride 1, each 3×3 layer adds 2 pixels: 3, 5,
# 7. `receptive_field(model, (C, H, W))` runs the model once with forward hooks and keeps
# this recurrence for every layer (the table's `start` is the centre of output pixel
# (0, 0)'s field).

# %%
C = 16 if args.quick else 64


def stack(n: int, k: int, channels: int = C) -> nn.Sequential:
    """n convolutions k×k, 'same' padding, each followed by a ReLU."""
    layers = []
    for _ in range(n):
        layers += [nn.Conv2d(channels, channels, k, padding=k // 2), nn.ReLU()]
    return nn.Sequential(*layers)


PAIRS = {"two 3x3 vs one 5x5": ((2, 3), (1, 5)), "three 3x3 vs one 7x7": ((3, 3), (1, 7))}
nets = {f"{n}x {k}x{k}": stack(n, k) for pair in PAIRS.values() for n, k in pair}
for name, net in nets.items():
    rows = receptive_field(net, (C, 16, 16))
    print(f"{name}: receptive field {rows[-1].size[0]:.0f} px")
print(receptive_field_table(receptive_field(nets["3x 3x3"], (C, 16, 16))))
assert receptive_field(nets["2x 3x3"], (C, 16, 16))[-1].size == (5, 5)
assert receptive_field(nets["1x 5x5"], (C, 16, 16))[-1].size == (5, 5)
assert receptive_field(nets["3x 3x3"], (C, 16, 16))[-1].size == (7, 7)
assert receptive_field(nets["1x 7x7"], (C, 16, 16))[-1].size == (7, 7)

# %% [markdown]
# ## 2. The receptive field measured: which input pixels move the output?
#
# The formula says which pixels *can* matter. A gradient says which do: back-propagate 1
# from the centre pixel of the last layer's first channel to the input; the input pixels
# with a non-zero gradient are those that output depends on. With positive weights and
# positive inputs no ReLU is off and no gradient cancels, so the non-zero region is exactly
# the receptive field. The gradient's *size* tells more: through a stack, the centre pixels
# are reached by many more paths than the corners, so the stack weighs its 5×5 or 7×7 field
# unevenly, most at the centre (Luo et al. 2016's "effective receptive field"), while a
# single 5×5 or 7×7 layer weighs it evenly.


# %%
def footprint(net: nn.Sequential, size: int = 15) -> np.ndarray:
    """|d out[0, 0, centre] / d input| summed over the input channels, ``(size, size)``."""
    for p in net.parameters():  # a positive copy: no ReLU is off, nothing cancels
        p.data = minicnn.tensor(np.full(p.shape, 0.05, dtype=np.float32))
    x = minicnn.tensor(np.ones((1, C, size, size), dtype=np.float32), requires_grad=True)
    out = net(x)
    seed = np.zeros(out.shape, dtype=np.float32)
    seed[0, 0, size // 2, size // 2] = 1
    out.backward(minicnn.tensor(seed))
    return np.abs(x.grad.numpy()).sum(axis=1)[0]


prints = {name: footprint(stack(int(name[0]), int(name[3]))) for name in nets}
for name, fp in prints.items():
    ys, xs = np.nonzero(fp)
    height, width = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    expected = receptive_field(nets[name], (C, 15, 15))[-1].size
    print(f"{name}: the output depends on a {height}x{width} square of pixels; "
          f"centre/corner weight {fp[7, 7] / fp[ys.min(), xs.min()]:.0f}")
    assert (height, width) == expected
single = prints["1x 5x5"][prints["1x 5x5"] > 0]
assert np.allclose(single, single[0]), "one layer weighs its field evenly"
assert prints["2x 3x3"][7, 7] > 4 * prints["2x 3x3"][5, 5], "the stack favours the centre"

fig, axes = plt.subplots(1, 4, figsize=(11, 3))
for ax, (name, fp) in zip(axes, prints.items(), strict=True):
    ax.imshow(fp[3:12, 3:12], cmap="magma")
    ax.set_title(f"{name}: field {np.count_nonzero(fp[7]):d} px", fontsize=9)
    ax.set_xticks([]), ax.set_yticks([])
fig.suptitle("gradient of one output pixel with respect to the input (9x9 crop)")
fig.tight_layout()
fig.savefig(OUT / "11_footprint.png", dpi=90)
plt.close(fig)

# %% [markdown]
# ## 3. Parameters, multiply-adds and time
#
# Per output pixel a k×k layer with C channels in and out does k²·C² multiply-adds and holds
# k²·C² weights (plus C biases). `minicnn.summary` counts both from the model itself; we
# check them against the formulas and then time a forward pass of each on the same input.
# The counts are the paper's claim and are asserted; the times are printed as measured (they
# depend on the machine, the kernels and how busy the cores are).

# %%
H = 32
rows = []
for label, pair in PAIRS.items():
    for n, k in pair:
        name = f"{n}x {k}x{k}"
        s = summary(nets[name], (C, H, H))
        weights = n * k * k * C * C
        assert s.total_params == weights + n * C
        assert s.total_mult_adds == weights * H * H
        x = minicnn.randn(8, C, H, H)
        with minicnn.no_grad():
            nets[name](x)  # warm up (compilation, buffers)
            repeats = 2 if args.quick else 5
            start = time.perf_counter()
            for _ in range(repeats):
                nets[name](x)
            seconds = (time.perf_counter() - start) / repeats
        rows.append((label, name, s.total_params, s.total_mult_adds, seconds))
print(f"{'':22}{'layers':>9}{'params':>10}{'mult-adds':>14}{'forward (ms)':>14}")
for label, name, params, madds, seconds in rows:
    print(f"{label:22}{name:>9}{params:>10,}{madds:>14,}{1000 * seconds:>14.1f}")
for (_, _, p_stack, m_stack, _), (_, _, p_one, m_one, _), (ratio) in (
        (rows[0], rows[1], 18 / 25), (rows[2], rows[3], 27 / 49)):
    print(f"weights of the stack / the single layer: {p_stack / p_one:.3f} "
          f"(formula without biases {ratio:.3f}); multiply-adds {m_stack / m_one:.3f}")
    assert abs(m_stack / m_one - ratio) < 1e-12
print("the 7x7 layer has 49/27 - 1 = 81% more weights than three 3x3 layers")
print("forward times on this machine follow the multiply-adds only roughly: each layer has a "
      "fixed cost, and a 3x3 convolution may take a different algorithm (Winograd) than a "
      "5x5 or 7x7; on a busy shared CPU the times are noisy, the counts are exact")

fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
names = [r[1] for r in rows]
colours = ["tab:blue", "tab:orange", "tab:blue", "tab:orange"]
for ax, column, title in zip(axes, (2, 3, 4), ("parameters", "multiply-adds",
                                                "forward time (s)"), strict=True):
    ax.bar(names, [r[column] for r in rows], color=colours)
    ax.set_title(title)
    ax.tick_params(axis="x", labelsize=8)
fig.suptitle(f"C = {C} channels, {H}x{H} maps, batch 8 for the time (blue: 3x3 stacks)")
fig.tight_layout()
fig.savefig(OUT / "11_cost.png", dpi=90)
plt.close(fig)

# %% [markdown]
# ## 4. VGG-16, layer by layer
#
# VGG-16 (configuration D) is thirteen 3×3 convolutions in five blocks, each block closed by
# a 2×2 max pool that doubles the jump. Within block b every 3×3 adds 2·2^(b−1) pixels.
# The field depends only on the layers' geometry, not on the channels or the input size, so
# we measure it on a 32×32 input (the smallest VGG takes), and draw it with a VGG-16 of
# 1/16 of the channels at 224×224 (the same fields, 256 times fewer multiply-adds).
# Published values (Araujo et al. 2019, Distill, Table 1): 212 px at pool5.

# %%
vgg_rows = receptive_field(make_layers(VGG_CONFIGS["D"]), (3, 32, 32))
print(receptive_field_table(vgg_rows))
by_name = {r.name: r for r in vgg_rows}
assert by_name["28"].size == (196, 196), "conv5_3"
assert by_name["30"].size == (212, 212) and by_name["30"].jump == (32, 32), "pool5"

thin = [v if v == "M" else v // 16 for v in VGG_CONFIGS["D"]]
thin_rows = receptive_field(make_layers(thin), (3, 224, 224))
assert [r.size for r in thin_rows] == [r.size for r in vgg_rows]
image = load_data("shapes", image_size=224)[1][0][0]
vgg_names = {"2": "conv1_2", "7": "conv2_2", "14": "conv3_3", "21": "conv4_3", "28": "conv5_3",
             "30": "pool5"}
convs = [replace(r, name=vgg_names[r.name]) for r in thin_rows if r.name in vgg_names]
plot_receptive_field(image, convs, OUT / "11_vgg16_rf.png",
                     title="VGG-16: the field of the centre pixel (conv1_2 ... conv5_3, pool5)")

# %% [markdown]
# ## What to try
#
# * Insert a max pool between the two 3×3 layers: the field becomes 3 + 1 + 2·2 = 8 px.
# * Dilate the second 3×3 layer (`dilation=2`): 7 px with 18C² weights.
# * `minicnn.viz.receptive_field(minicnn.models.resnet50(), (3, 64, 64))`: 427 px at layer4.

# %%
print("lesson 11: all checks passed")
