"""Copies that change dtype or device, differentiably (``tensor.to``, ``clone``)."""

from __future__ import annotations

import numpy as np

from minicnn.autograd.function import Function
from minicnn.backend import array_module, to_device


class ToCopy(Function):
    """Copy to another dtype and/or device; the gradient comes back in the input's kind."""

    @staticmethod
    def forward(ctx, a, dtype=None, device=None):
        ctx.dtype, ctx.device = a.dtype, "cpu" if array_module(a).__name__ == "numpy" else "cuda"
        out = a if device is None else to_device(a, device)
        if dtype is not None and out.dtype != dtype:
            out = out.astype(dtype)
        return out.copy() if out is a else out

    @staticmethod
    def backward(ctx, grad):
        return to_device(grad, ctx.device).astype(ctx.dtype, copy=False)


def to_copy(input, dtype=None, device=None):
    """``input`` converted to ``dtype`` and/or moved to ``device`` (self when nothing changes)."""
    dtype = None if dtype is None else np.dtype(dtype)
    if (dtype is None or dtype == input.dtype) and (device is None or device == input.device):
        return input
    if dtype is not None and dtype.kind not in "fc":  # integer results carry no gradient
        input = input.detach()
    return ToCopy.apply(input, dtype=dtype, device=device)


def clone(input):
    """A copy of ``input`` that stays in the graph (the gradient passes through)."""
    return ToCopy.apply(input, dtype=None, device=None)
