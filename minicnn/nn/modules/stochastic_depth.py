"""Stochastic depth (Huang et al. 2016, "Deep Networks with Stochastic Depth"), in
torchvision's form (``torchvision.ops.StochasticDepth``).

A residual block computes ``x + f(x)``. During training, stochastic depth drops the
residual branch ``f(x)`` at random, so the block is the identity for that step and the
network is, on average, shallower; at test time every branch is used. The kept branches
are scaled by ``1 / (1 - p)`` (as in inverted dropout), so the expected output in
training equals the output in evaluation, which therefore needs no rescaling.

* ``mode="row"`` (EfficientNet): one draw per sample -- each image of the batch keeps or
  drops the branch on its own;
* ``mode="batch"``: one draw for the whole batch.

The random draws come from :func:`minicnn.random.generator` on the CPU (then moved to the
input's device), so ``minicnn.manual_seed`` repeats them.
"""

from __future__ import annotations

import numpy as np

from minicnn import random as _random
from minicnn.autograd.tensor import Tensor
from minicnn.backend import to_device
from minicnn.nn.modules.module import Module

__all__ = ["StochasticDepth"]


class StochasticDepth(Module):
    """``x: (N, *) -> (N, *)``: in training, each row (``mode="row"``) or the whole batch
    (``mode="batch"``) is zeroed with probability ``p`` and otherwise scaled by
    ``1 / (1 - p)``; the identity in eval mode or when ``p == 0``."""

    def __init__(self, p: float, mode: str):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"StochasticDepth: drop probability p has to be between 0 and 1, "
                             f"but got {p!r}")
        if mode not in ("batch", "row"):
            raise ValueError(f"StochasticDepth: mode has to be either 'batch' or 'row', "
                             f"but got {mode!r}")
        self.p = float(p)
        self.mode = mode

    def forward(self, input: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return input
        if input.ndim < 1:
            raise ValueError(f"StochasticDepth expects an input (N, *), got shape "
                             f"{tuple(input.shape)}")
        shape = (input.shape[0],) + (1,) * (input.ndim - 1) if self.mode == "row" \
            else (1,) * input.ndim
        survival = 1.0 - self.p
        keep = _random.generator().random(shape) < survival
        noise = keep.astype(input.dtype) / survival if survival > 0 \
            else np.zeros(shape, input.dtype)
        return input * Tensor(to_device(noise, input.device))

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"
