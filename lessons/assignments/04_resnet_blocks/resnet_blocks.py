# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Assignment 04: residual blocks, then a small ResNet on digits
#
# He et al. (2015) add the input of a block to its output: `relu(F(x) + shortcut(x))`.
# Write the two blocks of the paper, with torchvision's attribute names (the grader loads
# your block's `state_dict` into `minicnn.models.resnet`'s block and compares outputs and
# gradients):
#
# 1. `BasicBlock(inplanes, planes, stride)`: `conv1` (3x3, stride) `bn1` relu `conv2` (3x3)
#    `bn2`, plus the shortcut, then relu. `expansion = 1`.
# 2. `Bottleneck(inplanes, planes, stride)`: `conv1` (1x1 to `planes`) `bn1` relu `conv2` (3x3,
#    stride: ResNet v1.5) `bn2` relu `conv3` (1x1 to `4 * planes`) `bn3`, plus the shortcut,
#    then relu. `expansion = 4`.
#
# The shortcut is the identity when the shapes agree; otherwise `downsample`, a 1x1
# convolution with the block's stride (no bias) and a batch norm:
# `nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out))`.
# Every convolution has `bias=False` (batch norm follows) and 3x3 ones have `padding=1`.
#
# 3. `train_digits`: the training loop of a small ResNet built from your blocks on the 8x8
#    handwritten digits; the grader wants at least 90% test accuracy, in seconds.

# %%
import time

import numpy as np

import minicnn
import minicnn.nn.functional as F
from minicnn import nn, optim
from minicnn.data import TensorDataset, digits
from minicnn.utils.data import DataLoader  # yields Tensors


def shortcut(inplanes: int, out: int, stride: int):
    """The projection shortcut, or None for the identity."""
    if stride == 1 and inplanes == out:
        return None
    return nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out))


# %%
class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut.
    x: (N, inplanes, H, W) -> (N, planes, H / stride, W / stride)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = shortcut(inplanes, planes, stride)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + identity)
        ### END SOLUTION


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (stride), 1x1 expand by 4, and a shortcut.
    x: (N, inplanes, H, W) -> (N, 4 * planes, H / stride, W / stride)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        ### BEGIN SOLUTION
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.downsample = shortcut(inplanes, out, stride)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + identity)
        ### END SOLUTION


# %% [markdown]
# ## A small ResNet on digits
#
# `digit_resnet` stacks your blocks: a 3x3 stem with 16 channels, a basic block, a basic
# block to 32 channels at stride 2 (8x8 -> 4x4), a bottleneck to 64 channels at stride 2
# (-> 2x2), global average pooling and a linear classifier. Write the loop of `train_digits`:
# for each batch, zero the gradients, compute the cross-entropy of the logits, backward, step.

# %%
def digit_resnet(num_classes: int = 10) -> nn.Module:
    """(N, 1, 8, 8) -> (N, num_classes) logits."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        BasicBlock(16, 16), BasicBlock(16, 32, stride=2), Bottleneck(32, 16, stride=2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes),
    )


def digit_data():
    """The 8x8 digits, standardized: (train, test) TensorDatasets of (1, 8, 8) images."""
    train, test = digits(train=True, size=8), digits(train=False, size=8)
    mean, std = float(train.images.mean()), float(train.images.std())
    return (TensorDataset((train.images - mean) / std, train.labels),
            TensorDataset((test.images - mean) / std, test.labels))


def accuracy(model: nn.Module, dataset) -> float:
    """Fraction of ``dataset`` the model classifies correctly (evaluation mode)."""
    model.eval()
    correct = 0
    with minicnn.no_grad():
        for images, labels in DataLoader(dataset, batch_size=256):
            correct += int((model(images).numpy().argmax(1) == labels.numpy()).sum())
    return correct / len(dataset)


def train_digits(epochs: int = 3, seed: int = 0, verbose: bool = False) -> float:
    """Train ``digit_resnet`` with Adam (lr 0.01, batches of 64); return its test accuracy."""
    minicnn.manual_seed(seed)
    train_set, test_set = digit_data()
    model = digit_resnet()
    opt = optim.Adam(model.parameters(), lr=0.01)
    loader = DataLoader(train_set, batch_size=64, shuffle=True)
    for epoch in range(epochs):
        model.train()
        start = time.perf_counter()
        ### BEGIN SOLUTION
        for images, labels in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            opt.step()
        ### END SOLUTION
        if verbose:
            print(f"epoch {epoch + 1}: test accuracy {accuracy(model, test_set):.3f} "
                  f"({time.perf_counter() - start:.1f} s)")
    return accuracy(model, test_set)


# %% [markdown]
# ## Check yourself

# %%
if __name__ == "__main__":
    x = minicnn.randn(2, 16, 8, 8)
    assert BasicBlock(16, 32, stride=2)(x).shape == (2, 32, 4, 4)
    assert Bottleneck(16, 8)(x).shape == (2, 32, 8, 8)
    assert np.all(BasicBlock(16, 16)(x).detach().numpy() >= 0)  # relu after the addition
    acc = train_digits(verbose=True)
    print(f"test accuracy {acc:.3f}")
    assert acc >= 0.9
    print("assignment 04: all checks passed")
