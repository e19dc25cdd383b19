# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 13: DenseNet, SENet and ShuffleNet
#
# Three ideas from the architecture slides after ResNet, each about *channels*:
#
# 1. **DenseNet** (Huang et al. 2017): every layer sees the feature maps of all earlier
#    layers of its block and adds `k` new ones (the *growth rate*); *transitions* between
#    blocks halve the channels and the resolution.
# 2. **Squeeze-and-Excitation** (Hu et al. 2018): a block looks at the average of each
#    channel and reweights its channels, input by input.
# 3. **ShuffleNet** (Zhang et al. 2017): group convolutions are cheap but keep each group to
#    itself; a *channel shuffle* between them lets information cross the groups. Its
#    complexity table (MFLOPs against width and groups) is reproduced at the end.
#
# Run it as a script, `python lessons/13_dense_se_shuffle.py` (`--quick` for a short run),
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
import torchvision

import minicnn
from minicnn import nn, optim
from minicnn.data import Subset, TransformedDataset, channel_stats, load_data
from minicnn.data.transforms import Normalize
from minicnn.models import densenet121
from minicnn.models.densenet import DenseBlock, Transition
from minicnn.models.shufflenet import ShuffleNetV1, shufflenet_v1_widths
from minicnn.nn import functional as F
from minicnn.summary import summary
from minicnn.train import Trainer
from minicnn.utils.data import DataLoader

parser = argparse.ArgumentParser(description="Lesson 13: DenseNet, SENet and ShuffleNet")
parser.add_argument("--quick", action="store_true", help="a short training run (for CI)")
args, _ = parser.parse_known_args()
OUT = Path(__file__).resolve().parent / "out" if "__file__" in globals() else Path("out")
OUT.mkdir(parents=True, exist_ok=True)
minicnn.manual_seed(0)
started = time.perf_counter()


def to_torch(state: dict) -> dict:
    return {k: torch.from_numpy(np.array(v.detach().numpy())) for k, v in state.items()}


# %% [markdown]
# ## 1. DenseNet: growth and transition
#
# Inside a dense block, layer `l` gets the concatenation of the block's input (`k0`
# channels) and the outputs of the `l - 1` layers before it, and makes `k` new channels:
# its input has `k0 + (l - 1) k` channels and the block's output `k0 + L k`. Each layer is
# BN-ReLU-conv1×1 (to `4k`, the "bottleneck") then BN-ReLU-conv3×3 (to `k`). A transition
# (BN-ReLU-conv1×1-avgpool 2×2) multiplies the channels by the compression θ = 0.5 and
# halves the resolution. We build a block with `k0 = 16`, `k = 12`, `L = 4`, watch the
# channels grow, and check block and transition against torchvision's on the same weights.

# %%
k0, k, L = 16, 12, 4
block = DenseBlock(L, k0, bn_size=4, growth_rate=k, drop_rate=0.0)
transition = Transition(k0 + L * k, (k0 + L * k) // 2)
seen = []
for layer in block.values():
    layer.register_forward_pre_hook(
        lambda m, a: seen.append(sum(f.shape[1] for f in a[0]) if isinstance(a[0], list)
                                 else a[0].shape[1]))
x = minicnn.randn(2, k0, 8, 8)
y = block(x)
z = transition(y)
print(f"growth rate k = {k}: layer inputs {seen} channels; block output {tuple(y.shape)}; "
      f"transition {tuple(z.shape)}")
assert seen == [k0 + i * k for i in range(L)] == [16, 28, 40, 52]
assert y.shape == (2, k0 + L * k, 8, 8) and z.shape == (2, 32, 4, 4)
assert np.array_equal(y.detach().numpy()[:, :k0], x.numpy())  # the input passes through unchanged

tv = torchvision.models.densenet
ref_block = tv._DenseBlock(L, k0, bn_size=4, growth_rate=k, drop_rate=0.0).eval()
ref_transition = tv._Transition(k0 + L * k, (k0 + L * k) // 2).eval()
ref_block.load_state_dict(to_torch(block.state_dict()))
ref_transition.load_state_dict(to_torch(transition.state_dict()))
block.eval()
transition.eval()
with torch.no_grad():
    expected = ref_transition(ref_block(torch.from_numpy(np.array(x.numpy())))).numpy()
np.testing.assert_allclose(transition(block(x)).detach().numpy(), expected, atol=1e-5)
print("dense block + transition = torchvision's on the same weights")

# %% [markdown]
# DenseNet-121 (k = 32, blocks of 6, 12, 24, 16 layers, a 64-channel stem): the channels
# climb by 32 per layer and fall by half at each transition.

# %%
model = densenet121()
channels, marks, halved = [64], [], []
for name, module in model.features.named_children():
    if isinstance(module, DenseBlock):
        for _ in module.values():
            channels.append(channels[-1] + 32)
        marks.append((len(channels) - 1, name))
    elif isinstance(module, Transition):
        channels.append(module.conv.out_channels)
        halved.append(channels[-1])
ends = [channels[i] for i, _ in marks]
print(f"DenseNet-121: dense blocks end at {ends} channels, transitions give {halved}")
assert ends == [256, 512, 1024, 1024] and halved == [128, 256, 512]
assert model.classifier.in_features == 1024
n_params = sum(p.numel() for p in model.parameters())
assert n_params == sum(p.numel() for p in torchvision.models.densenet121().parameters())
print(f"{n_params:,} parameters, as torchvision's")

fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(channels, ".-")
for i, name in marks:
    ax.annotate(name, (i, channels[i]), textcoords="offset points", xytext=(-20, 5))
ax.set_xlabel("layer (dense layers and transitions)")
ax.set_ylabel("channels")
ax.set_title("DenseNet-121: growth k = 32, transitions halve")
fig.tight_layout()
fig.savefig(OUT / "13_densenet_growth.png", dpi=100)
plt.close(fig)

# %% [markdown]
# ## 2. Squeeze-and-Excitation: channel weights per input
#
# For a feature map `x` of `C` channels the SE block computes one weight per channel,
#
# $$ s = \sigma\big(W_2\, \mathrm{ReLU}(W_1\, \mathrm{avgpool}(x))\big) \in (0, 1)^C, \qquad
#    y_c = s_c\, x_c, $$
#
# with `W1` of shape `(C/r, C)` and `W2` of shape `(C, C/r)` (r = 16 in the paper). First
# by hand in NumPy and against torchvision's `SqueezeExcitation`; then inside a small CNN
# trained on the digits, where we look at the weights it gives to its channels for each
# digit (Hu et al., Figure 6, does the same for SE-ResNet-50 on ImageNet classes): the
# weights are computed from each input, so they can differ from digit to digit.

# %%
se = nn.SqueezeExcitation(32, 8)
x = minicnn.randn(4, 32, 6, 6)
pooled = x.numpy().mean(axis=(2, 3))
w1, b1 = se.fc1.weight.detach().numpy()[:, :, 0, 0], se.fc1.bias.detach().numpy()
w2, b2 = se.fc2.weight.detach().numpy()[:, :, 0, 0], se.fc2.bias.detach().numpy()
s = 1 / (1 + np.exp(-(np.maximum(pooled @ w1.T + b1, 0) @ w2.T + b2)))
np.testing.assert_allclose(se(x).detach().numpy(), s[:, :, None, None] * x.numpy(), atol=1e-6)
ref_se = torchvision.ops.SqueezeExcitation(32, 8)
ref_se.load_state_dict(to_torch(se.state_dict()))
with torch.no_grad():
    np.testing.assert_allclose(se(x).detach().numpy(),
                               ref_se(torch.from_numpy(np.array(x.numpy()))).numpy(), atol=1e-6)
print("SE by hand = minicnn = torchvision")


class SECNN(nn.Module):
    """(N, 1, 32, 32) -> (N, 10): LeNet's two convolutions and a third, each of the last two
    followed by an SE block (r = 4), and one linear layer."""

    def __init__(self):
        super().__init__()
        self.stage1 = nn.Sequential(nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2))  # 14x14
        self.stage2 = nn.Sequential(nn.Conv2d(16, 32, 5), nn.ReLU())  # 10x10
        self.se2 = nn.SqueezeExcitation(32, 8)
        self.stage3 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(32, 32, 3, padding=1),
                                    nn.ReLU())  # 5x5
        self.se3 = nn.SqueezeExcitation(32, 8)
        self.fc = nn.Linear(32 * 5 * 5, 10)

    def forward(self, x):
        x = self.se2(self.stage2(self.stage1(x)))
        x = self.se3(self.stage3(x))
        return self.fc(x.flatten(1))


train_set, test_set = load_data("digits")
normalize = Normalize(*channel_stats(train_set))
train_set = TransformedDataset(train_set, normalize)
test_set = TransformedDataset(test_set, normalize)
if args.quick:
    train_set = Subset(train_set, range(512))
net = SECNN()
trainer = Trainer(net, optim.Adam(net.parameters(), lr=2e-3), progress=False)
for _ in range(2 if args.quick else 6):
    trainer.train_epoch(DataLoader(train_set, batch_size=32, shuffle=True))
test_loader = DataLoader(test_set, batch_size=360)
result = trainer.evaluate(test_loader)
print(f"SE-CNN test accuracy {100 * result['val_acc']:.1f}%")

weights = {}
hooks = [getattr(net, name).scale_activation.register_forward_hook(
    lambda m, a, out, name=name: weights.__setitem__(name, out.numpy()[:, :, 0, 0]))
    for name in ("se2", "se3")]
images, labels = next(iter(test_loader))
net.eval()
with minicnn.no_grad():
    net(images)
for h in hooks:
    h.remove()
labels = np.asarray(labels)
per_class = {name: np.stack([w[labels == c].mean(0) for c in range(10)])
             for name, w in weights.items()}
spread = {name: float(pc.std(0).mean()) for name, pc in per_class.items()}
print(f"channel weights in ({min(w.min() for w in weights.values()):.3f}, "
      f"{max(w.max() for w in weights.values()):.3f}); mean spread across digits: "
      f"se2 {spread['se2']:.3f}, se3 {spread['se3']:.3f}")
assert all(((w >= 0) & (w <= 1)).all() for w in weights.values())  # sigmoid (float32)
assert max(spread.values()) > 0.01  # the weights depend on the input's class

fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
for ax, (name, pc) in zip(axes, per_class.items(), strict=True):
    im = ax.imshow(pc, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set_xlabel("channel")
    ax.set_ylabel("digit")
    ax.set_title(f"{name}: mean SE weight per digit")
fig.colorbar(im, ax=axes)
fig.savefig(OUT / "13_se_weights.png", dpi=100)
plt.close(fig)

# %% [markdown]
# ## 3. Channel shuffle: with and without
#
# A group convolution with `g` groups splits the channels into `g` groups and convolves each
# group alone: `g` times fewer weights and multiply-adds. Stack two and an output channel
# still depends on the inputs of *one* group only. The shuffle reshapes the channels to
# `(g, C/g)`, transposes to `(C/g, g)` and flattens, so each group of the next layer gets a
# channel from every group of the last one.

# %%
g, C = 4, 16
order = F.channel_shuffle(minicnn.tensor(np.arange(C, dtype=np.float32)).reshape(1, C, 1, 1),
                          g).numpy().ravel().astype(int)
print(f"channel_shuffle of channels 0..15 with g = 4: {order.tolist()}")
assert order.tolist() == [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15]
with torch.no_grad():
    ref = torch.nn.ChannelShuffle(g)(torch.arange(C, dtype=torch.float32).reshape(1, C, 1, 1))
assert order.tolist() == ref.ravel().int().tolist()


def dependence(shuffle: bool) -> np.ndarray:
    """``D[o, i]``: 1 where output channel ``o`` of two stacked 1x1 group convolutions
    (``g`` groups) depends on input channel ``i`` (the gradient is not zero)."""
    minicnn.manual_seed(1)
    conv1, conv2 = nn.Conv2d(C, C, 1, groups=g), nn.Conv2d(C, C, 1, groups=g)
    rows = []
    for o in range(C):
        x = minicnn.randn(1, C, 1, 1, requires_grad=True)
        h = conv1(x)
        if shuffle:
            h = F.channel_shuffle(h, g)
        conv2(h)[0, o].sum().backward()
        rows.append(x.grad.numpy().ravel() != 0)
    return np.array(rows, dtype=int)


without, with_shuffle = dependence(False), dependence(True)
print(f"inputs each output channel depends on: without shuffle {without.sum(1).min()}-"
      f"{without.sum(1).max()} of {C}, with shuffle {with_shuffle.sum(1).min()}-"
      f"{with_shuffle.sum(1).max()}")
assert np.array_equal(without, np.kron(np.eye(g, dtype=int), np.ones((C // g, C // g), int)))
assert with_shuffle.all()

fig, axes = plt.subplots(1, 2, figsize=(8, 4))
for ax, (title, d) in zip(axes, (("two group convs, no shuffle", without),
                                 ("with a channel shuffle between", with_shuffle)), strict=True):
    ax.imshow(d, cmap="Greys", vmin=0, vmax=1)
    ax.set_title(title)
    ax.set_xlabel("input channel")
    ax.set_ylabel("output channel")
fig.tight_layout()
fig.savefig(OUT / "13_channel_shuffle.png", dpi=100)
plt.close(fig)

# %% [markdown]
# ## 4. ShuffleNet's complexity table
#
# Zhang et al., Table 2 gives the cost of ShuffleNet at three widths ("ShuffleNet s×"
# scales *every* layer's number of filters by s, so the cost is roughly s² times that of
# 1×) for 1 to 8 groups; more groups allow wider layers at the same cost (Table 1). We
# count the multiply-adds ("FLOPs" in the paper) of `ShuffleNetV1(g, width_mult=s)` at
# 224×224 with `minicnn.summary`. At 0.5× the widths are those of the authors' released
# code; at 0.25× we are 5-15% under the paper (see `help(minicnn.models.shufflenet)`: the
# paper gives no 0.25× widths; it seems not to scale the 24-channel stem below 12).

# %%
PAPER = {1: (143, 140, 137, 133, 137), 0.5: (38,) * 5, 0.25: (13,) * 5}
GROUPS = (1, 2, 3, 4, 8)
table = {}
for width in (1, 0.5, 0.25):
    for group in GROUPS:
        if args.quick and (width, group) not in ((1, 3), (0.5, 4), (0.25, 8)):
            continue
        info = summary(ShuffleNetV1(group, width_mult=width), (3, 224, 224))
        table[width, group] = info.total_mult_adds / 1e6
print(f"{'MFLOPs':<8}" + "".join(f"{'g = ' + str(g):>16}" for g in GROUPS))
for width in (1, 0.5, 0.25):
    cells = [f"{table[width, gr]:7.1f} ({PAPER[width][i]:>3})" if (width, gr) in table
             else f"{'':>13}" for i, gr in enumerate(GROUPS)]
    print(f"{str(width) + 'x':<8}" + "".join(f"{c:>16}" for c in cells) + "   (paper)")
print(f"widths at 0.5x, g = 4: conv1 and stages {shufflenet_v1_widths(4, 0.5)}")
for (width, group), ours in table.items():
    paper = PAPER[width][GROUPS.index(group)]
    tolerance = {1: 0.011, 0.5: 0.03 if group <= 4 else 0.07, 0.25: 0.16}[width]
    assert abs(ours - paper) <= tolerance * paper, (width, group, ours, paper)
assert abs(table[0.5, 4] - 38) < 0.5  # the deck's 0.5x (g = 4)

fig, ax = plt.subplots(figsize=(6, 3.5))
for width in (1, 0.5, 0.25):
    groups = [gr for gr in GROUPS if (width, gr) in table]
    ax.plot(groups, [table[width, gr] for gr in groups], "o-", label=f"{width}x minicnn")
    ax.plot(GROUPS, PAPER[width], "k:", lw=1)
ax.set_yscale("log")
ax.set_xlabel("groups g")
ax.set_ylabel("MFLOPs at 224x224")
ax.set_title("ShuffleNet complexity (dotted: the paper's Table 2)")
ax.legend()
fig.tight_layout()
fig.savefig(OUT / "13_shufflenet_complexity.png", dpi=100)
plt.close(fig)

# %%
print(f"\nlesson time {time.perf_counter() - started:.0f} s")
print("lesson 13: all checks passed")
