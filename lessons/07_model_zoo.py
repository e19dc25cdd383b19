# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 07: the model zoo in numbers
#
# Two numbers describe the *cost* of a convolutional network before it has seen a single
# image:
#
# * **parameters**: how many weights it stores (memory on disk and on the device, and how
#   much there is to learn);
# * **multiply-adds** (mult-adds, MACs): how many products `w·x` one forward pass of one
#   image computes, summed over the convolutions and linear layers. A convolution with
#   output `C_out × H_out × W_out` and kernel `k × k` over `C_in / groups` input channels
#   costs `H_out·W_out·C_out·(C_in/groups)·k·k` of them.
#
# Papers call the second number "FLOPs" and mean mult-adds (one multiply-add is really two
# floating-point operations): the ResNet paper's "3.8 × 10⁹ FLOPs" for ResNet-50 is 3.8
# billion multiply-adds. We count the same way, so the figures compare directly.
#
# `minicnn.summary(model, input_size)` runs one forward pass on zeros and records, for every
# layer, its output shape, parameters and multiply-adds. In this lesson we run it on every
# architecture in `minicnn.models.MODELS` at its natural resolution, hold the results
# against the figures the papers (and the course slides) quote, and plot the whole zoo.
#
# Run it as a script, `python lessons/07_model_zoo.py` (`--quick` summarises a
# representative subset), or as a notebook. The figure goes to `lessons/out/`.

# %%
import argparse
import math
import os
import sys
import time
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt

import minicnn
from minicnn.models import EFFICIENTNET_RESOLUTION, MODELS

parser = argparse.ArgumentParser(description="Lesson 07: the model zoo in numbers")
parser.add_argument("--quick", action="store_true", help="a representative subset (for CI)")
args, _ = parser.parse_known_args()
OUT = Path(__file__).resolve().parent / "out" if "__file__" in globals() else Path("out")
OUT.mkdir(parents=True, exist_ok=True)
minicnn.manual_seed(0)

# %% [markdown]
# ## 1. Which resolution?
#
# Multiply-adds grow with the number of pixels, so the figure only means something at a
# stated input size. Each network is measured at the size it was designed for:
#
# * 224×224 for the ImageNet networks (AlexNet, VGG, ResNet, DenseNet, MobileNet, ...);
# * 299×299 for Inception-v3;
# * 32×32 for the CIFAR networks of He et al. (ResNet-20...110, the plain nets, the
#   pre-activation ResNet-110/164/1001) and DenseNet-BC-100;
# * EfficientNet-B*k* at its own resolution, 224 for B0 up to 600 for B7: compound
#   scaling grows depth, width *and* resolution together (`EFFICIENTNET_RESOLUTION`).
#
# The two tiny course networks (`lenet`, `small_resnet`, for 32×32 single-channel
# digits) stay out of the table: next to the ImageNet networks they cost almost nothing,
# a few tens of millions of mult-adds at most (shown at the end of the next cell).

# %%
CIFAR = {
    "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
    "plain20", "plain32", "plain44", "plain56", "plain110",
    "preact_resnet110", "preact_resnet164", "preact_resnet1001", "densenet_bc_100_12",
}
COURSE = {"lenet", "small_resnet"}


def resolution(name: str) -> int:
    if name in CIFAR:
        return 32
    if name == "inception_v3":
        return 299
    return EFFICIENTNET_RESOLUTION.get(name, 224)


def family(name: str) -> str:
    if name in CIFAR:
        return "CIFAR (32×32)"
    if name.startswith(("resnet", "preact", "se_resnet", "resnext", "wide_resnet")):
        return "ResNet family"
    if name.startswith("efficientnet"):
        return "EfficientNet"
    if name.startswith(("mobilenet", "shufflenet", "mnasnet", "squeezenet")):
        return "compact / mobile"
    if name.startswith("densenet"):
        return "DenseNet"
    return "classic"


for name, expected in [("resnet50", 224), ("inception_v3", 299), ("resnet56", 32),
                       ("efficientnet_b7", 600)]:
    assert resolution(name) == expected, name

# %% [markdown]
# ## 2. Summarise the zoo
#
# One `summary` per model. The forward pass runs on zeros with batch 1 and `no_grad`, so
# it is cheap except for the largest networks; most of the time goes into *building* the
# models (initialising VGG's 138 million weights takes seconds). The full lesson
# summarises all of them (about 2 minutes on 2 cores); `--quick` a representative
# subset of 15.

# %%
QUICK = [
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
    "alexnet", "squeezenet1_0", "mobilenet_v2", "resnet20", "resnet56",
    "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
]
names = QUICK if args.quick else [n for n in MODELS if n not in COURSE]
assert all(n in MODELS for n in names)

results = {}  # name -> (params, mult_adds, resolution)
start = time.perf_counter()
for name in names:
    model = MODELS[name]()
    r = resolution(name)
    s = minicnn.summary(model, (3, r, r))
    # the summary's parameter total is the same as counting the tensors directly
    assert s.total_params == sum(p.numel() for p in model.parameters()), name
    results[name] = (s.total_params, s.total_mult_adds, r)
    del model, s
print(f"{len(results)} models summarised in {time.perf_counter() - start:.1f} s\n")

print(f"{'model':22s} {'input':>7s} {'params':>10s} {'mult-adds':>11s}  family")
for name, (p, m, r) in sorted(results.items(), key=lambda kv: kv[1][1]):
    print(f"{name:22s} {r:>3d}x{r:<3d} {p / 1e6:9.2f}M {m / 1e9:10.3f}G  {family(name)}")
for name in sorted(COURSE):
    s = minicnn.summary(MODELS[name](), (1, 32, 32))
    print(f"{name:22s}  32x32  {s.total_params / 1e6:9.3f}M {s.total_mult_adds / 1e9:10.4f}G  "
          "course network, 1 channel (not plotted)")
    assert s.total_mult_adds < 50e6

# %% [markdown]
# What a single summary looks like: one row per layer, here for the first layers of
# ResNet-18. The 7×7 stem convolution alone costs 118 million multiply-adds:
# 112·112 outputs × 64 channels × 3·7·7 inputs each.

# %%
table = str(minicnn.summary(MODELS["resnet18"](), (3, 224, 224))).splitlines()
print("\n".join(table[:8] + ["..."] + table[-5:]))
assert any("118,013,952" in line for line in table[:8])  # 112*112*64*3*7*7
assert 112 * 112 * 64 * 3 * 7 * 7 == 118_013_952

# %% [markdown]
# ## 3. ResNets against the paper
#
# He et al. (2015), Table 1, give 1.8, 3.6, 3.8, 7.6 and 11.3 × 10⁹ FLOPs (mult-adds)
# for ResNet-18/34/50/101/152. Our counts for 18 and 34 agree within 2 %. For 50, 101 and
# 152 they are higher -- ResNet-50 comes out at **4.09** G, 8 % above 3.8 -- and the
# reason is a small change of architecture, not a counting error.
#
# The deeper ResNets are built from *bottleneck* blocks: 1×1 (reduce) → 3×3 → 1×1
# (expand). Where a stage halves the resolution, the first block has stride 2. The paper
# (ResNet "v1") put that stride on the first **1×1** convolution; torchvision, and
# minicnn after it, put it on the **3×3** convolution ("v1.5", from Facebook's
# fb.resnet.torch), which is slightly more accurate. The 3×3 convolution's output has the
# same size either way, but in v1.5 the first 1×1 convolution runs at the *full* input
# resolution: four times the pixels. In the three downsampling blocks of stages 2-4 that
# 1×1 layer costs 56·56·256·128 = 28·28·512·256 = 14·14·1024·512 ≈ 102.8 M mult-adds in
# v1.5 against a quarter of it in v1: 3 × 77.1 M ≈ 0.23 G more, whatever the depth.
# (The ResNeXt paper, which uses the v1.5 placement, indeed quotes 4.1 G for ResNet-50.)
#
# We check this by moving the stride back onto the 1×1 convolution of a minicnn model and
# summarising again: v1 matches the paper within 2 % at every depth, and the basic-block
# ResNet-18/34 have no 1×1 reduce layer, so nothing changes for them.

# %%
PAPER_GFLOPS = {"resnet18": 1.8, "resnet34": 3.6, "resnet50": 3.8, "resnet101": 7.6,
                "resnet152": 11.3}


def to_v1(model):
    """Move the stride of each downsampling bottleneck from its 3x3 onto its first 1x1 conv."""
    for stage in (model.layer2, model.layer3, model.layer4):
        block = stage[0]
        if hasattr(block, "conv3") and block.conv2.stride != (1, 1):
            block.conv1.stride, block.conv2.stride = block.conv2.stride, (1, 1)
    return model


one_by_one = 56 * 56 * 256 * 128
assert one_by_one == 28 * 28 * 512 * 256 == 14 * 14 * 1024 * 512
print(f"{'model':10s} {'paper':>6s} {'v1.5 (ours)':>12s} {'diff':>6s} {'v1':>7s} {'diff':>6s}")
for name, paper in PAPER_GFLOPS.items():
    v15 = results[name][1] / 1e9
    v1 = minicnn.summary(to_v1(MODELS[name]()), (3, 224, 224)).total_mult_adds / 1e9
    print(f"{name:10s} {paper:6.1f} {v15:12.3f} {100 * (v15 / paper - 1):+5.1f}% "
          f"{v1:7.3f} {100 * (v1 / paper - 1):+5.1f}%")
    assert abs(v1 / paper - 1) < 0.02, (name, v1, paper)  # v1: the paper's network
    if name in ("resnet18", "resnet34"):
        assert v1 == v15  # basic blocks: nothing moved
        assert abs(v15 / paper - 1) < 0.02, (name, v15, paper)
    else:
        assert abs(v15 / paper - 1) < 0.10, (name, v15, paper)
        # the whole difference is the three 1x1 convolutions, a quarter of the cost each
        assert round((v15 - v1) * 1e9) == 3 * (one_by_one - one_by_one // 4), name

# %% [markdown]
# ## 4. ResNeXt-50 and SqueezeNet: same cost, or far fewer weights
#
# ResNeXt-50 (32×4d) replaces each bottleneck's 3×3 convolution by 32 groups of 4
# channels and widens the block so that the cost stays that of ResNet-50: the paper's
# Table 1 gives **25.5 M** parameters for ResNet-50 and **25.0 M** for ResNeXt-50 (and 4.1
# against 4.2 G mult-adds, both in the v1.5 placement).
#
# SqueezeNet (Iandola et al., 2016) set out to reach AlexNet's accuracy with **50× fewer
# parameters**: "fire" modules squeeze the channels with 1×1 convolutions before
# expanding them, and there is no large fully connected layer. Note that it does *not*
# save computation: at 224×224 SqueezeNet 1.0 needs more multiply-adds than AlexNet.

# %%
p_resnet, m_resnet, _ = results["resnet50"]
p_resnext, m_resnext, _ = results["resnext50_32x4d"]
print(f"ResNet-50   {p_resnet / 1e6:.2f} M params, {m_resnet / 1e9:.2f} G mult-adds")
print(f"ResNeXt-50  {p_resnext / 1e6:.2f} M params, {m_resnext / 1e9:.2f} G mult-adds")
assert abs(p_resnet / 25.5e6 - 1) < 0.01 and abs(p_resnext / 25.0e6 - 1) < 0.01
assert p_resnext < p_resnet
assert abs(m_resnext / 4.2e9 - 1) < 0.02 and abs(m_resnet / 4.1e9 - 1) < 0.02

p_alex, m_alex, _ = results["alexnet"]
p_squeeze, m_squeeze, _ = results["squeezenet1_0"]
ratio = p_alex / p_squeeze
print(f"AlexNet {p_alex / 1e6:.1f} M params, SqueezeNet 1.0 {p_squeeze / 1e6:.2f} M: "
      f"{ratio:.1f}x fewer; mult-adds {m_alex / 1e9:.2f} G vs {m_squeeze / 1e9:.2f} G")
assert 45 < ratio < 55, ratio  # "50x fewer parameters"
assert m_squeeze > m_alex  # fewer weights, not fewer operations

# %% [markdown]
# ## 5. EfficientNet: compound scaling
#
# EfficientNet-B1...B7 are B0 scaled up by one coefficient φ: depth by 1.2^φ, width by
# 1.1^φ and resolution by 1.15^φ (rounded to the published sizes). Every step up must
# therefore cost more parameters *and* more multiply-adds. B0 itself is the paper's
# 5.3 M parameters and 0.39 G mult-adds.

# %%
effnets = sorted((n for n in results if n.startswith("efficientnet")), key=lambda n: n[-1])
for prev, cur in zip(effnets, effnets[1:]):
    assert results[cur][0] > results[prev][0], (prev, cur)  # parameters grow
    assert results[cur][1] > results[prev][1], (prev, cur)  # mult-adds grow
    assert results[cur][2] >= results[prev][2], (prev, cur)  # so does the resolution
print(" < ".join(f"{n[-2:]} ({results[n][0] / 1e6:.1f}M, {results[n][1] / 1e9:.2f}G)"
                 for n in effnets))
assert abs(results["efficientnet_b0"][0] / 5.3e6 - 1) < 0.01
assert abs(results["efficientnet_b0"][1] / 0.39e9 - 1) < 0.02

# %% [markdown]
# Two more classics: MobileNetV2 (Sandler et al., 2018) is 3.4-3.5 M parameters and
# 300 M mult-adds, and the CIFAR ResNet-56 is 0.85 M parameters (He et al., Table 6).

# %%
assert abs(results["mobilenet_v2"][0] / 3.5e6 - 1) < 0.02
assert abs(results["mobilenet_v2"][1] / 300e6 - 1) < 0.02
assert abs(results["resnet56"][0] / 0.85e6 - 1) < 0.01

# %% [markdown]
# ## 6. The zoo on one picture
#
# Parameters against multiply-adds, both on log scales. Networks on the same diagonal
# spend the same computation per weight. Things to look for: AlexNet, ZFNet and VGG sit
# high (most of their weights are in the fully connected layers, which are cheap to run);
# SqueezeNet sits fifty times lower than AlexNet at about the same cost; the compact and
# mobile networks and EfficientNet-B0 do ImageNet in a few hundred million mult-adds; the
# EfficientNets climb a line as φ grows; the CIFAR networks work on 32×32 images and cost
# least of all. Networks that land on the same point share a label (VGG with and without
# batch norm; a CIFAR ResNet and its plain twin, whose shortcuts have no weights).

# %%
colors = {"classic": "tab:red", "ResNet family": "tab:blue", "DenseNet": "tab:purple",
          "compact / mobile": "tab:green", "EfficientNet": "tab:orange",
          "CIFAR (32×32)": "tab:gray"}
fig, ax = plt.subplots(figsize=(11, 8))
for fam, color in colors.items():
    members = [n for n in results if family(n) == fam]
    if not members:
        continue
    ax.scatter([results[n][1] for n in members], [results[n][0] for n in members], s=25,
               color=color, label=fam, alpha=0.8)
    # networks that land on (nearly) the same point share one label: vgg11 / vgg11_bn
    spots = {}
    for n in members:
        key = (round(math.log10(results[n][1]), 2), round(math.log10(results[n][0]), 2))
        spots.setdefault(key, []).append(n)
    for group in spots.values():
        ax.annotate(" / ".join(group), (results[group[0]][1], results[group[0]][0]),
                    fontsize=6, color=color, xytext=(3, 2), textcoords="offset points")
ax.set(xscale="log", yscale="log", xlabel="multiply-adds per image",
       ylabel="parameters",
       title=f"minicnn.models at their natural resolution ({len(results)} models)")
ax.grid(True, which="both", alpha=0.3)
ax.legend(loc="lower right")
fig.tight_layout()
fig.savefig(OUT / "07_params_vs_madds.png", dpi=110)
plt.close(fig)

# %% [markdown]
# ## What to try
#
# * `print(minicnn.summary(minicnn.models.mobilenet_v2(), (3, 224, 224)))`: where do the
#   mult-adds of a depthwise-separable network go -- the 3×3 depthwise or the 1×1
#   pointwise convolutions?
# * Summarise ResNet-50 at 112, 224 and 448: is the cost exactly proportional to the
#   number of pixels? (Look at the classifier, and at what adaptive pooling does.)
# * `minicnn summary --model resnet50` prints the same table from the command line.

# %%
print("lesson 07: all checks passed")
