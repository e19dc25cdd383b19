# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 06: your first CNN
#
# Time to put the pieces together: convolution, pooling and linear layers (lessons 03-05),
# autograd (lesson 01) and an optimizer, trained on **real handwritten digits**: the 1,797
# scans of 8×8 digits that ship with scikit-learn, resized to 32×32.
#
# The network is LeNet-5 (LeCun et al., 1998) with ReLU and max pooling, and the loop is the
# one every deep-learning program writes:
#
# ```python
# for images, labels in loader:
#     optimizer.zero_grad()                  # 1. forget the previous step's gradients
#     loss = loss_fn(model(images), labels)  # 2. forward
#     loss.backward()                        # 3. backward: d loss / d every parameter
#     optimizer.step()                       # 4. update the parameters
# ```
#
# Along the way we check that the minicnn network computes exactly what the same network in
# PyTorch computes, and we look at what the first layer learned.
#
# Run it as a script, `python lessons/06_first_cnn.py` (`--quick` for a short run), or as a
# notebook. Figures go to `lessons/out/`.

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

import minicnn
import minicnn.nn.functional as F
from minicnn import nn, optim
from minicnn.data import Subset, TransformedDataset, channel_stats, load_data
from minicnn.data.transforms import Normalize
from minicnn.utils.data import DataLoader

parser = argparse.ArgumentParser(description="Lesson 06: your first CNN")
parser.add_argument("--quick", action="store_true", help="three epochs on a subset (for CI)")
args, _ = parser.parse_known_args()
OUT = Path(__file__).resolve().parent / "out" if "__file__" in globals() else Path("out")
OUT.mkdir(parents=True, exist_ok=True)
minicnn.manual_seed(0)

# %% [markdown]
# ## 1. The data
#
# `minicnn.data.load_data("digits")` gives the 1,437 training and the 360 test images (a
# fixed split, the one `minicnn train` uses). Each sample is a float32 array `(1, 32, 32)` in
# [0, 1] and a label. We standardise the pixels with the training set's mean and standard
# deviation (`channel_stats`: one value per channel, here one channel), which makes the first
# layer's inputs centred: optimisation is easier that way. `TransformedDataset` applies the
# transform to every image it hands out.

# %%
train_set, test_set = load_data("digits")
mean, std = channel_stats(train_set)
pixels = np.stack([train_set[i][0] for i in range(len(train_set))])
assert np.isclose(mean[0], pixels.mean()) and np.isclose(std[0], pixels.std(), atol=1e-5)
normalize = Normalize(mean, std)
train_set = TransformedDataset(train_set, normalize)
test_set = TransformedDataset(test_set, normalize)
if args.quick:
    train_set, test_set = Subset(train_set, range(256)), Subset(test_set, range(128))
print(
    f"{len(train_set)} training and {len(test_set)} test images; "
    f"pixel mean {mean[0]:.3f}, std {std[0]:.3f}"
)

fig, axes = plt.subplots(2, 8, figsize=(10, 3))
for ax, i in zip(axes.ravel(), range(16)):
    image, label = train_set[i]
    ax.imshow(image[0], cmap="gray")
    ax.set_title(str(label))
    ax.axis("off")
fig.suptitle("scikit-learn's handwritten digits, resized to 32×32")
fig.savefig(OUT / "06_digits.png", dpi=90)
plt.close(fig)

# %% [markdown]
# ## 2. The network
#
# Two convolution + pooling stages extract features; three linear layers classify them.
# Follow the shapes: 32×32 → conv 5×5 → 28×28 → pool → 14×14 → conv 5×5 → 10×10 → pool →
# 5×5, and 16 channels × 5 × 5 = 400 numbers go into the classifier.


# %%
class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)  # (N, 1, 32, 32) -> (N, 6, 28, 28)
        self.conv2 = nn.Conv2d(6, 16, 5)  # (N, 6, 14, 14) -> (N, 16, 10, 10)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # -> (N, 6, 14, 14)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # -> (N, 16, 5, 5)
        x = x.flatten(1)  # -> (N, 400)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)  # logits (N, 10)


model = LeNet()
print(model)
n_params = sum(p.numel() for p in model.parameters())
print(f"{n_params:,} parameters")
assert n_params == (6 * 25 + 6) + (16 * 6 * 25 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (
    84 * 10 + 10
)

# %% [markdown]
# ## 3. Same network, same numbers as PyTorch
#
# Because minicnn uses PyTorch's parameter names, a PyTorch `state_dict` loads straight
# into our model. With identical weights, both frameworks must give identical logits and
# identical gradients: a strong check that every layer is right.


# %%
class TorchLeNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = torch.nn.Conv2d(1, 6, 5), torch.nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = (
            torch.nn.Linear(400, 120),
            torch.nn.Linear(120, 84),
            torch.nn.Linear(84, 10),
        )

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2).flatten(1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


torch.manual_seed(0)
reference = TorchLeNet()
model.load_state_dict({k: v.detach().numpy() for k, v in reference.state_dict().items()})
# The digits have large blank areas, so many 2×2 pooling windows hold exactly equal values.
# On such a tie the max's gradient goes to whichever value rounding made largest, and two
# libraries may round differently. A whisper of noise makes every window's maximum unique,
# so the comparison checks the layers rather than the rounding.
noise = np.random.default_rng(0).normal(0.0, 0.01, size=(8, 1, 32, 32)).astype(np.float32)
images = np.stack([train_set[i][0] for i in range(8)]) + noise
labels = np.array([train_set[i][1] for i in range(8)])
loss = F.cross_entropy(model(minicnn.tensor(images)), minicnn.tensor(labels))
loss.backward()
ref_loss = torch.nn.functional.cross_entropy(reference(torch.tensor(images)), torch.tensor(labels))
ref_loss.backward()
print(f"loss: minicnn {loss.item():.6f}, PyTorch {ref_loss.item():.6f}")
assert abs(loss.item() - ref_loss.item()) < 1e-5
for name, p in model.named_parameters():
    np.testing.assert_allclose(
        p.grad.numpy(),
        dict(reference.named_parameters())[name].grad.numpy(),
        rtol=1e-3,
        atol=1e-5,
        err_msg=name,
    )
print("logits, loss and every gradient agree with PyTorch")

# %% [markdown]
# ## 4. Training
#
# Stochastic gradient descent with momentum on mini-batches of 32, shuffled each epoch.
# After every epoch we measure accuracy on the *test* images, which the model never trains
# on: that is the number that tells whether it learned digits or memorised pictures.
# `minicnn.utils.data.DataLoader` (PyTorch's `torch.utils.data.DataLoader`) stacks the
# samples into batches of Tensors: images `(32, 1, 32, 32)` float32, labels `(32,)` int64.

# %%
minicnn.manual_seed(0)
model = LeNet()
optimizer = optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
train_loader = DataLoader(train_set, batch_size=32, shuffle=True)
test_loader = DataLoader(test_set, batch_size=256)


def accuracy(model, loader) -> float:
    model.eval()
    correct = total = 0
    with minicnn.no_grad():
        for x, y in loader:
            _, predicted = minicnn.max(model(x), 1)
            correct += (predicted == y).sum().item()
            total += len(y)
    model.train()
    return correct / total


epochs = 3 if args.quick else 10
losses, accuracies = [], []
start = time.perf_counter()
for epoch in range(epochs):
    total = 0.0
    for x, y in train_loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
    losses.append(total / len(train_set))
    accuracies.append(accuracy(model, test_loader))
    print(
        f"epoch {epoch + 1}: train loss {losses[-1]:.4f}, test accuracy {100 * accuracies[-1]:.1f}%"
    )
print(f"{epochs} epochs in {time.perf_counter() - start:.1f} s")

assert losses[-1] < losses[0], "training must lower the loss"
assert accuracies[-1] > (0.3 if args.quick else 0.95), accuracies  # chance is 0.1

fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
a.plot(range(1, epochs + 1), losses, "o-")
a.set(xlabel="epoch", ylabel="train loss", title="Loss")
b.plot(range(1, epochs + 1), [100 * acc for acc in accuracies], "o-")
b.set(xlabel="epoch", ylabel="test accuracy (%)", title="Accuracy")
fig.tight_layout()
fig.savefig(OUT / "06_training.png", dpi=90)
plt.close(fig)

# %% [markdown]
# ## 5. What did the first layer learn?
#
# The six 5×5 filters of `conv1` are small images themselves. After training they look
# like stroke and edge detectors: they respond to the pieces digits are made of.

# %%
weights = model.conv1.weight.detach().numpy()[:, 0]
fig, axes = plt.subplots(1, 6, figsize=(9, 1.8))
for ax, w in zip(axes, weights):
    ax.imshow(w, cmap="RdBu_r", vmin=-abs(weights).max(), vmax=abs(weights).max())
    ax.axis("off")
fig.suptitle("conv1 filters after training (red positive, blue negative)")
fig.savefig(OUT / "06_filters.png", dpi=90)
plt.close(fig)

# %% [markdown]
# ## What to try
#
# * Replace `max_pool2d` by `avg_pool2d`; replace ReLU by `tanh` as in the 1998 paper.
# * Train with `optim.Adam(model.parameters(), lr=1e-3)` instead of SGD.
# * `minicnn train --model lenet` trains the same network from the command line.

# %%
print("lesson 06: all checks passed")
