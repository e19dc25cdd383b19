# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 09: training speed — time to accuracy
#
# DAWNBench (Coleman et al., 2017) changed the question from "how accurate?" to "how fast
# to a given accuracy?". Most of the winning entries did not change the network: they
# changed the **optimisation schedule**. The "sweet spot" of the lecture is Adam (or SGD
# with momentum) with a **one-cycle** learning rate (Smith, 2018): warm the rate up from a
# small value to a large peak, then anneal it far below the start. Large rates in the
# middle travel fast across the loss surface; the final annealing settles into a minimum.
#
# We train the same network on the digits twice from the same initial weights:
#
# 1. SGD with a constant learning rate, the textbook baseline;
# 2. Adam with `OneCycleLR`,
#
# and count the epochs and seconds each needs to reach a target test accuracy.

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
import minicnn.nn.functional as F
from minicnn import optim
from minicnn.data import DataLoader, Subset, TransformedDataset, channel_stats, load_data
from minicnn.data.transforms import Normalize
from minicnn.models import lenet

parser = argparse.ArgumentParser(description="Lesson 09: training speed")
parser.add_argument("--quick", action="store_true", help="a subset and 3 epochs (for CI)")
args, _ = parser.parse_known_args()
OUT = Path(__file__).resolve().parent / "out" if "__file__" in globals() else Path("out")
OUT.mkdir(parents=True, exist_ok=True)

EPOCHS = 3 if args.quick else 10
TARGET = 0.60 if args.quick else 0.97

train_set, test_set = load_data("digits")
norm = Normalize(*channel_stats(train_set))  # the training images' mean and std
train_set, test_set = TransformedDataset(train_set, norm), TransformedDataset(test_set, norm)
if args.quick:
    train_set, test_set = Subset(train_set, range(320)), Subset(test_set, range(160))

# %% [markdown]
# ## The learning-rate schedules
#
# Before training, look at what `OneCycleLR` does over a run: the rate climbs for the
# first 30% of the steps (`pct_start=0.3`) from `max_lr / 25` to `max_lr`, then follows a
# cosine down to `max_lr / (25 · 10⁴)`. For Adam, the one-cycle policy also cycles β₁
# (the momentum) the opposite way: 0.95 → 0.85 → 0.95.

# %%
steps_per_epoch = len(DataLoader(train_set, batch_size=32))
probe = optim.Adam(lenet().parameters(), lr=1e-3)
schedule = optim.lr_scheduler.OneCycleLR(
    probe, max_lr=3e-3, epochs=EPOCHS, steps_per_epoch=steps_per_epoch
)
lrs, betas = [], []
for _ in range(EPOCHS * steps_per_epoch):
    lrs.append(probe.param_groups[0]["lr"])
    betas.append(probe.param_groups[0]["betas"][0])
    probe.step()
    schedule.step()
assert abs(max(lrs) - 3e-3) < 1e-9 and abs(lrs[0] - 3e-3 / 25) < 1e-12
assert lrs[-1] < lrs[0] / 100
peak = int(np.argmax(lrs))
assert abs(peak / len(lrs) - 0.3) < 0.05
assert min(betas) == betas[peak] and abs(betas[peak] - 0.85) < 1e-9

fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3))
a.plot(lrs)
a.set(xlabel="step", ylabel="learning rate", title="OneCycleLR: the rate")
b.plot(betas)
b.set(xlabel="step", ylabel="β₁", title="…and Adam's momentum")
fig.tight_layout()
fig.savefig(OUT / "09_onecycle.png", dpi=90)
plt.close(fig)

# %% [markdown]
# ## Two runs from the same start
#
# Same seed, so the same initial weights and the same order of batches: only the
# optimiser differs.


# %%
def accuracy(model, loader) -> float:
    model.eval()
    correct = total = 0
    with minicnn.no_grad():
        for x, y in loader:
            correct += int((model(minicnn.tensor(x)).numpy().argmax(1) == y).sum())
            total += len(y)
    model.train()
    return correct / total


def run(make_optimizer, make_scheduler=None):
    minicnn.manual_seed(0)
    model = lenet()
    optimizer = make_optimizer(model.parameters())
    scheduler = make_scheduler(optimizer) if make_scheduler else None
    loader = DataLoader(train_set, batch_size=32, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=256)
    curve, seconds, elapsed = [], [], 0.0
    for _ in range(EPOCHS):
        start = time.perf_counter()
        for x, y in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(minicnn.tensor(x)), minicnn.tensor(y)).backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        elapsed += time.perf_counter() - start
        curve.append(accuracy(model, test_loader))
        seconds.append(elapsed)
    return curve, seconds


sgd_curve, sgd_time = run(lambda p: optim.SGD(p, lr=0.01))
cycle_curve, cycle_time = run(
    lambda p: optim.Adam(p, lr=3e-3),
    lambda o: optim.lr_scheduler.OneCycleLR(
        o, max_lr=3e-3, epochs=EPOCHS, steps_per_epoch=steps_per_epoch
    ),
)


def time_to(curve, seconds, target):
    for epoch, (acc, s) in enumerate(zip(curve, seconds), start=1):
        if acc >= target:
            return epoch, s
    return None, None


for name, curve, secs in (
    ("SGD, constant rate", sgd_curve, sgd_time),
    ("Adam + OneCycle", cycle_curve, cycle_time),
):
    epoch, s = time_to(curve, secs, TARGET)
    reached = f"epoch {epoch} ({s:.1f} s)" if epoch else f"not within {EPOCHS} epochs"
    print(
        f"{name:20s} final test accuracy {100 * curve[-1]:.1f}%, "
        f"reaches {100 * TARGET:.0f}%: {reached}"
    )

# %% [markdown]
# The one-cycle run reaches the target in fewer epochs, and ends higher: at the same cost
# per epoch, that is fewer seconds to accuracy — the DAWNBench point.

# %%
cycle_epoch, _ = time_to(cycle_curve, cycle_time, TARGET)
sgd_epoch, _ = time_to(sgd_curve, sgd_time, TARGET)
assert cycle_epoch is not None, cycle_curve
assert sgd_epoch is None or cycle_epoch <= sgd_epoch
assert cycle_curve[-1] >= sgd_curve[-1]

fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(range(1, EPOCHS + 1), [100 * a for a in sgd_curve], "o-", label="SGD, constant lr 0.01")
ax.plot(
    range(1, EPOCHS + 1), [100 * a for a in cycle_curve], "o-", label="Adam + OneCycle (max 3e-3)"
)
ax.axhline(100 * TARGET, color="gray", ls="--", label=f"target {100 * TARGET:.0f}%")
ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="Time to accuracy on the digits")
ax.legend()
fig.tight_layout()
fig.savefig(OUT / "09_time_to_accuracy.png", dpi=90)
plt.close(fig)

# %% [markdown]
# ## What to try
#
# * Give SGD the one-cycle schedule too (`max_lr=0.1`, momentum cycling on): most of the
#   gain is the schedule, not Adam.
# * Raise `max_lr` until training diverges: the "LR range test" of Smith (2018) picks the
#   peak just below that point.
# * `minicnn train --optimizer sgd --scheduler none` against the default
#   (`--optimizer adam --scheduler onecycle`) on the command line.

# %%
print("lesson 09: all checks passed")
