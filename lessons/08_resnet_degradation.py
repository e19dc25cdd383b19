# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 08: the degradation problem, and why ResNets fix it
#
# Deeper networks should be at least as good as shallower ones: take a trained 20-layer
# network, add 36 layers that compute the identity, and you have a 56-layer network with
# exactly the same training error. Yet when He et al. (2015, *Deep Residual Learning for
# Image Recognition*, Figure 1) trained "plain" convolutional networks of 20 and 56 layers
# on CIFAR-10, the 56-layer one ended with **higher training error**, not only higher test
# error. They called it the **degradation problem**. It is not overfitting (that would
# *lower* the training error); it is an optimisation failure: SGD does not find the good
# solution that we know exists.
#
# Their fix is the *residual* block: each pair of layers learns a correction `F(x)` that is
# added to its input, `y = relu(F(x) + x)`. The same 56 layers with these identity
# *shortcuts* train better than 20 (their Figure 6, right panel).
#
# What you will do:
#
# 1. load the handwritten digits at their native 8×8 resolution;
# 2. build the four CIFAR networks of the paper, `plain20`, `plain56`, `resnet20` and
#    `resnet56`, and check what differs between them (only the shortcuts: no parameters);
# 3. see why a residual block can represent the identity with all-zero weights while a
#    plain block cannot;
# 4. train all four with the same recipe and plot the training error curves, the way
#    Figures 1 and 6 of the paper do, to `lessons/out/08_degradation.png`;
# 5. check the paper's claims on our curves.
#
# Run it as a script, `python lessons/08_resnet_degradation.py` (a few minutes on 2 CPU
# cores; `--quick` for a short run that only checks everything works, as CI does; `--seed N`
# to repeat the experiment with other initial weights), or open it as a notebook.

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

import minicnn
import minicnn.nn.functional as F
from minicnn import nn, optim
from minicnn.data import DataLoader, Subset, TensorDataset, digits
from minicnn.models import plain20, plain56, resnet20, resnet56

parser = argparse.ArgumentParser(description="Lesson 08: the degradation problem and ResNets")
parser.add_argument("--quick", action="store_true", help="a few iterations on a subset (for CI)")
parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the shuffling")
args, _ = parser.parse_known_args()  # parse_known_args: Jupyter adds arguments of its own

try:
    OUT = Path(__file__).resolve().parent / "out"
except NameError:  # inside a notebook there is no __file__
    OUT = Path("out")
OUT.mkdir(parents=True, exist_ok=True)

minicnn.manual_seed(args.seed)
print(f"quick mode: {args.quick}; seed {args.seed}; figures go to {OUT}")

# %% [markdown]
# ## 1. The data: digits at 8×8
#
# The paper trains on CIFAR-10 (32×32 colour images, 50,000 of them, 64,000 iterations of
# batch 128: hours on a GPU). We keep the experiment but shrink the data so that it runs in
# minutes on a laptop: scikit-learn's 1,437 training digits at their **native 8×8
# resolution** (`minicnn.data.digits(size=8)`), one channel, 10 classes. The CIFAR networks
# work on any input of at least 4×4 pixels: their three stages then see 8×8, 4×4 and 2×2
# maps instead of 32×32, 16×16 and 8×8, and each step is 16 times cheaper.
#
# We standardise the pixels with the training set's mean and standard deviation, once, and
# keep the images in memory as a `TensorDataset`.

# %%
train_raw, test_raw = digits(train=True, size=8), digits(train=False, size=8)
mean, std = float(train_raw.images.mean()), float(train_raw.images.std())
train_set = TensorDataset((train_raw.images - mean) / std, train_raw.labels)
test_set = TensorDataset((test_raw.images - mean) / std, test_raw.labels)
if args.quick:
    train_set, test_set = Subset(train_set, range(256)), Subset(test_set, range(128))
image, label = train_set[0]
print(f"{len(train_set)} training and {len(test_set)} test images of shape {image.shape}; "
      f"10 classes; pixel mean {mean:.3f}, std {std:.3f}")
assert image.shape == (1, 8, 8) and image.dtype == np.float32
assert len(train_raw) == 1437 and len(test_raw) == 360

# %% [markdown]
# ## 2. Four networks that differ only in their shortcuts
#
# The CIFAR networks of the paper (Section 4.2) are a 3×3 convolution, then three stages of
# `2n` 3×3 convolutions with 16, 32 and 64 filters (the second and third stage start with
# stride 2), a global average pool and one fully connected layer: `6n + 2` weighted layers.
# `n = 3` gives 20 layers, `n = 9` gives 56. Every convolution is followed by batch
# normalisation, as in the paper.
#
# In `resnet20` and `resnet56` every pair of convolutions is a residual block,
# `relu(bn2(conv2(relu(bn1(conv1(x))))) + x)`. Where a stage halves the map and doubles
# the channels, the shortcut is the paper's **option A**: take every second pixel of `x` and
# append zero channels. It has no parameters, so `plainNN` and `resnetNN` have *exactly*
# the same weights: the only difference is the `+ x`.

# %%
constructors = {"plain20": plain20, "plain56": plain56, "resnet20": resnet20,
                "resnet56": resnet56}
nets = {name: ctor(num_classes=10, in_channels=1) for name, ctor in constructors.items()}


def count(model, kind) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


params = {name: sum(p.numel() for p in net.parameters()) for name, net in nets.items()}
print(f"{'network':<10}{'conv':>6}{'fc':>4}{'BN':>5}{'blocks':>8}{'parameters':>12}")
for name, net in nets.items():
    blocks = sum(len(getattr(net, f"layer{i}")) for i in (1, 2, 3))
    print(f"{name:<10}{count(net, nn.Conv2d):>6}{count(net, nn.Linear):>4}"
          f"{count(net, nn.BatchNorm2d):>5}{blocks:>8}{params[name]:>12,}")

for depth in (20, 56):
    plain, res = nets[f"plain{depth}"], nets[f"resnet{depth}"]
    assert count(plain, nn.Conv2d) == count(res, nn.Conv2d) == depth - 1  # + 1 fc = depth
    assert count(plain, nn.Linear) == count(res, nn.Linear) == 1
    assert params[f"plain{depth}"] == params[f"resnet{depth}"]  # option A adds no parameters
    assert [n for n, _ in plain.named_parameters()] == [n for n, _ in res.named_parameters()]
ratio = params["plain56"] / params["plain20"]
print(f"56 layers have {ratio:.2f}x the parameters of 20 layers")
assert 3.0 < ratio < 3.3  # the paper's 0.85M / 0.27M (with 3 input channels and 10 classes)

# %% [markdown]
# The parameter counts do not quite follow the depth ratio 56/20 = 2.8, because the layers
# added by `n = 9` are spread evenly over the stages while the first convolution and the
# classifier stay the same: a 3×3 layer of the last stage (64 → 64 channels, 36,864 weights)
# costs 16 times one of the first stage (16 → 16, 2,304 weights).
#
# The paper's Table 6 reports 0.27M parameters for ResNet-20 and 0.85M for ResNet-56 with
# RGB input. Ours take one channel, which saves `2 × 16 × 9 = 288` weights in the first
# convolution:

# %%
rgb = {name: sum(p.numel() for p in ctor(num_classes=10).parameters())
       for name, ctor in constructors.items()}
print({name: f"{n / 1e6:.3f}M" for name, n in rgb.items()})
assert round(rgb["resnet20"] / 1e6, 2) == 0.27 and round(rgb["resnet56"] / 1e6, 2) == 0.85
assert all(rgb[name] - params[name] == 2 * 16 * 9 for name in nets)

# %% [markdown]
# ## 3. Why identity shortcuts help: representing "do nothing"
#
# Suppose the 20 first layers already solve the problem. For the 56-layer network to be at
# least as good, the other 36 layers only have to pass their input through unchanged.
#
# * A **plain** block must *learn* the identity: two convolutions, two batch norms and two
#   ReLUs whose composition is `x ↦ x`. That is a very particular point in weight space
#   (identity kernels, batch-norm scales that undo the normalisation), and nothing in the
#   training pulls the weights towards it.
# * A **residual** block computes `relu(F(x) + x)`. Its input comes out of a ReLU, so it is
#   non-negative, and with `F = 0` the block returns `relu(x) = x`. A branch that outputs
#   zero is the easiest thing to learn: shrinking the last batch norm's scale to 0 is
#   enough (and weight decay pulls every weight towards zero anyway).
#
# Let us check that. We take the second block of the first stage of each 20-layer network,
# set the scale and shift (`weight`, `bias`) of its last batch norm to zero, and feed it a
# non-negative input.

# %%
x = np.abs(minicnn.random.generator().standard_normal((4, 16, 8, 8)))  # a post-ReLU input
x = minicnn.tensor(x.astype(np.float32))
for name in ("resnet20", "plain20"):
    block = constructors[name](num_classes=10, in_channels=1).layer1[1]
    block.bn2.weight.data[...] = 0
    block.bn2.bias.data[...] = 0
    with minicnn.no_grad():
        y = block(x)
    gap = float(np.abs(y.numpy() - x.numpy()).max())
    print(f"{name} block with a zeroed last batch norm: max |block(x) - x| = {gap:.3g}")
    if name == "resnet20":
        assert gap == 0.0  # exactly the identity
    else:
        assert np.all(y.numpy() == 0) and gap > 1  # a plain block outputs relu(0) = 0: it erases x

# %% [markdown]
# A residual block with a silent branch is the identity; a plain block with a silent branch
# is the zero function. So in a ResNet, "adding layers that do nothing" is the default
# rather than a difficult target, and each block only needs to learn a small correction to
# its input.
#
# One more thing the paper checks: the plain networks do *not* suffer from *vanishing*
# gradients. Batch normalisation keeps every layer's output at unit scale, and the gradient
# that reaches the first convolution of the 56-layer plain network is not small. Quite the
# opposite: measured at initialisation on one mini-batch, it is about two orders of
# magnitude *larger* than the 20-layer network's (130 to 200 times over seeds 0, 1, 2).
# Deep plain networks with batch norm have gradients that grow layer by layer towards the
# input (Yang et al. 2019, *A Mean Field Theory of Batch Normalization*), which makes their
# loss surface rough and SGD's steps erratic in the first layers. The shortcuts tame that
# too: in the ResNets the 56-layer gradient is within a small factor of the 20-layer one,
# because every block passes the gradient straight through its `+ x` as well as through
# its branch.

# %%
x_batch = minicnn.tensor(np.stack([train_set[i][0] for i in range(64)]))
y_batch = minicnn.tensor(np.array([train_set[i][1] for i in range(64)]))
first_grad = {}
for name, net in nets.items():
    F.cross_entropy(net(x_batch), y_batch).backward()
    first_grad[name] = float(np.linalg.norm(net.conv1.weight.grad.numpy()))
    net.zero_grad()
print("norm of d loss / d conv1.weight at initialisation:",
      {name: f"{g:.3g}" for name, g in first_grad.items()})
assert first_grad["plain56"] > 50 * first_grad["plain20"]  # not vanishing: exploding
assert first_grad["resnet56"] < first_grad["plain56"] / 10  # shortcuts keep it in check

# %% [markdown]
# ## 4. Training all four with the paper's recipe
#
# The recipe of Section 4.2: SGD with momentum 0.9, weight decay 10⁻⁴, learning rate 0.1
# divided by 10 at 50% and 75% of training (the paper: at 32k and 48k of 64k iterations).
# We use mini-batches of 64 and count in iterations, like the paper's figures.
#
# During training we record the error of every mini-batch (the fraction of its images the
# network gets wrong, in training mode, *before* the update): that is what the paper's
# training curves show. After every epoch we also measure the test error with the
# networks in evaluation mode (batch norm using its running statistics).

# %%
batch_size = 64
epochs = 2 if args.quick else 18
steps_per_epoch = len(train_set) // batch_size  # the last, smaller batch is dropped
total_steps = epochs * steps_per_epoch
print(f"{epochs} epochs x {steps_per_epoch} iterations = {total_steps} iterations per network")


def test_error(model) -> float:
    model.eval()
    wrong = 0
    with minicnn.no_grad():
        for x, y in DataLoader(test_set, batch_size=256):
            wrong += int((model(minicnn.tensor(x)).numpy().argmax(1) != y).sum())
    model.train()
    return wrong / len(test_set)


def train(model):
    """The paper's recipe; returns per-iteration training errors, per-epoch test errors, seconds."""
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    milestones = [total_steps // 2, (3 * total_steps) // 4]
    scheduler = optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)  # per iteration
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True)
    train_err, test_err = [], []
    start = time.perf_counter()
    for _ in range(epochs):
        for x, y in loader:
            logits = model(minicnn.tensor(x))
            loss = F.cross_entropy(logits, minicnn.tensor(y))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            train_err.append(float((logits.detach().numpy().argmax(1) != y).mean()))
        test_err.append(test_error(model))
    return np.array(train_err), np.array(test_err), time.perf_counter() - start


results = {}
for name in nets:
    minicnn.manual_seed(args.seed)  # the same shuffling for every network
    model = constructors[name](num_classes=10, in_channels=1)
    train_err, test_err, seconds = train(model)
    results[name] = {"train": train_err, "test": test_err, "seconds": seconds}
    print(f"{name:<9} {seconds:6.1f} s ({1000 * seconds / total_steps:.0f} ms/iteration); "
          f"training error over the last epoch {100 * train_err[-steps_per_epoch:].mean():5.1f}%, "
          f"test error {100 * test_err[-1]:5.1f}%")

# %% [markdown]
# ## 5. The figure
#
# As in the paper's Figure 6: plain networks on the left, ResNets on the right, the
# 20-layer network in orange and the 56-layer one in red; thin dashed lines are the training
# error (a moving average over one epoch of mini-batches, which smooths the noise of single
# batches of 64) and bold lines the test error, measured at the end of each epoch.


# %%
def smooth(errors, window):
    """Moving average over the last ``window`` iterations (fewer at the start)."""
    cumulative = np.concatenate([[0.0], np.cumsum(errors)])
    ends = np.arange(1, len(errors) + 1)
    starts = np.maximum(ends - window, 0)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)


colours = {"20": "tab:orange", "56": "tab:red"}
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, family, title in zip(axes, ("plain", "resnet"), ("plain networks", "ResNets"), strict=True):
    for depth, colour in colours.items():
        name, r = f"{family}{depth}", results[f"{family}{depth}"]
        iterations = np.arange(1, len(r["train"]) + 1)
        label = f"{'plain' if family == 'plain' else 'ResNet'}-{depth}"
        ax.plot(iterations, 100 * smooth(r["train"], steps_per_epoch), "--", lw=1, color=colour,
                label=f"{label} training")
        ax.plot(steps_per_epoch * np.arange(1, epochs + 1), 100 * r["test"], "-", lw=2.5,
                color=colour, label=f"{label} test")
    for milestone in (total_steps // 2, (3 * total_steps) // 4):
        ax.axvline(milestone, color="0.8", lw=0.8, zorder=0)
    ax.set(title=title, xlabel="iteration", ylim=(0, 100))
    ax.legend()
axes[0].set_ylabel("error (%)")
fig.suptitle("Digits 8×8: deeper plain networks train worse; deeper ResNets do not "
             "(after He et al. 2015, Fig. 1 and 6)")
fig.tight_layout()
fig.savefig(OUT / "08_degradation.png", dpi=100)
plt.close(fig)
print("saved", OUT / "08_degradation.png")

# %% [markdown]
# ## 6. The claims, checked
#
# We compare the training error averaged over the last epoch, the right end of the dashed
# curves.
#
# * **Degradation.** The 56-layer plain network ends with a higher *training* error than
#   the 20-layer one. Overfitting cannot explain this (it would lower the training error),
#   nor a lack of capacity: the deeper network could copy the shallower one and make its
#   extra layers the identity. It fits even its own training images worse: SGD does not
#   find that solution.
# * **Residual learning removes it.** With the same layers, the same data and the same
#   optimiser, the 56-layer ResNet ends far below the 56-layer plain network, and the gap
#   between 56 and 20 layers is much smaller with shortcuts than without.
#
# The effect is stronger here than in the paper, where plain-56 ends a few points of
# training error above plain-20. With our few hundred iterations, the 56-layer plain network
# learns slowly or hardly at all (in some runs it stays close to chance, 90% error),
# while the 56-layer ResNet, with the very same layers and recipe, gets to a few percent.
#
# On CIFAR-10, after 64,000 iterations, the paper goes one step further: ResNet-56 beats
# ResNet-20 (6.97% against 8.75% test error). With our few hundred iterations that is not
# reliably the case yet (the deeper network still has more to learn: try more epochs), so
# the lesson only prints the comparison.
#
# With `--quick` the runs are far too short to show anything, so we only check that all
# four networks trained and produced finite curves.

# %%
final = {name: float(r["train"][-steps_per_epoch:].mean()) for name, r in results.items()}
final_test = {name: float(r["test"][-1]) for name, r in results.items()}
print(f"{'network':<10}{'training error':>16}{'test error':>12}{'time':>9}")
for name in nets:
    print(f"{name:<10}{100 * final[name]:>15.1f}%{100 * final_test[name]:>11.1f}%"
          f"{results[name]['seconds']:>8.0f}s")

for r in results.values():
    assert len(r["train"]) == total_steps and len(r["test"]) == epochs
    assert np.all(np.isfinite(r["train"])) and np.all((0 <= r["train"]) & (r["train"] <= 1))
if not args.quick:
    assert final["plain56"] > final["plain20"] + 0.05, final  # degradation: worse training fit
    assert final_test["plain56"] > final_test["plain20"], final_test
    assert final["resnet56"] < final["plain56"] - 0.05, final  # shortcuts fix it
    assert final["resnet56"] - final["resnet20"] < final["plain56"] - final["plain20"], final
    print("the 56-layer plain network trains worse than the 20-layer one; the 56-layer "
          "ResNet does not suffer from it")
verdict = "lower" if final["resnet56"] < final["resnet20"] else "not lower (yet)"
print(f"ResNet-56's training error is {verdict} than ResNet-20's")

# %% [markdown]
# ## Summary
#
# * Stacking more plain layers can make a network *harder to train*: its training error
#   goes up. That is the degradation problem, an optimisation difficulty, not overfitting,
#   and not vanishing gradients (batch norm keeps them from shrinking; towards the input of
#   a deep plain network they rather explode).
# * A residual block `relu(F(x) + x)` with identity shortcuts represents "do nothing" with
#   `F = 0`, so extra blocks start close to harmless and only learn corrections. Option A
#   shortcuts (subsample, pad with zero channels) cost no parameters: the plain and residual
#   networks have identical weights.
# * With shortcuts, 56 layers train about as well as 20, and with enough training better.
#
# ## What to try
#
# * Train longer (`epochs = 40`) and watch whether ResNet-56 overtakes ResNet-20.
# * Rerun with `--seed 1` and `--seed 2`: the degradation is there every time.
# * `plain110` and `resnet110` (the paper warms up with lr 0.01 for the 110-layer net).
# * `minicnn.data.shapes(size=16)`: coloured shapes, 3 channels (slower per step).

# %%
print("lesson 08: all checks passed")
