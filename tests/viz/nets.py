"""Small networks built twice, in minicnn and in PyTorch, with the same weights."""

from __future__ import annotations

import numpy as np
import torch

from minicnn import nn


def layers(lib, in_channels: int = 3, classes: int = 5, bn: bool = False) -> list:
    """conv-relu-pool twice, then a classifier, for 16x16 inputs (the same indices in both
    libraries, so the state_dict keys agree)."""
    seq = [lib.Conv2d(in_channels, 4, 3, padding=1)]
    seq += [lib.BatchNorm2d(4)] if bn else []
    seq += [lib.ReLU(), lib.MaxPool2d(2), lib.Conv2d(4, 6, 3, padding=1), lib.ReLU(),
            lib.MaxPool2d(2), lib.Flatten(), lib.Linear(6 * 4 * 4, 16), lib.ReLU(),
            lib.Linear(16, classes)]
    return seq


def twin(seed: int = 0, **kwargs) -> tuple[nn.Sequential, torch.nn.Sequential]:
    """The same network in minicnn and PyTorch (evaluation mode), PyTorch's initial weights
    (batch-norm statistics randomised so they matter)."""
    torch.manual_seed(seed)
    reference = torch.nn.Sequential(*layers(torch.nn, **kwargs)).eval()
    for m in reference.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    ours = nn.Sequential(*layers(nn, **kwargs))
    ours.load_state_dict({k: v.detach().numpy() for k, v in reference.state_dict().items()})
    return ours.eval(), reference


def images(n: int = 3, channels: int = 3, size: int = 16, seed: int = 0) -> np.ndarray:
    """Random images ``(n, channels, size, size)``: no ties in any max-pool window."""
    return np.random.default_rng(seed).standard_normal((n, channels, size, size)).astype(
        np.float32)
