"""Matrix product with NumPy's ``matmul`` rules (1-D vectors, batched broadcasting)."""

from __future__ import annotations

import numpy as np

from minicnn.autograd.engine import unbroadcast
from minicnn.autograd.function import Function
from minicnn.autograd.tensor import Tensor
from minicnn.backend import array_module


class MatMul(Function):
    """``a @ b``. For 2-D: d/da = grad @ b^T, d/db = a^T @ grad; batch dims broadcast."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return array_module(a, b).matmul(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        ga, gb = ctx.needs_input_grad
        xp = array_module(grad)
        # promote vectors to matrices so one formula covers every case:
        # a (k,) is a (1, k) row, b (k,) a (k, 1) column, and grad gets those 1-dims back
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = grad
        if a.ndim == 1:
            g2 = xp.expand_dims(g2, -2 if b.ndim > 1 else 0)
        if b.ndim == 1:
            g2 = xp.expand_dims(g2, -1)
        grad_a = grad_b = None
        if ga:
            grad_a = unbroadcast(g2 @ b2.swapaxes(-1, -2), a2.shape).reshape(a.shape)
        if gb:
            grad_b = unbroadcast(a2.swapaxes(-1, -2) @ g2, b2.shape).reshape(b.shape)
        return grad_a, grad_b


def matmul(input, other):
    """Matrix product with broadcasting of batch dimensions: ``(..., n, k) @ (..., k, m)``."""
    a = input if isinstance(input, Tensor) else Tensor(input)
    b = other if isinstance(other, Tensor) else Tensor(other)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matmul: both inputs need at least 1 dimension, got shapes {a.shape} and {b.shape}"
        )
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        where = "the size" if b.ndim == 1 else "dimension -2"
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} cannot be multiplied: the last dimension of "
            f"input ({k_a}) must equal {where} of other ({k_b})"
        )
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(
            f"matmul: batch dimensions of {a.shape} and {b.shape} do not broadcast"
        ) from None
    return MatMul.apply(a, b)


mm = matmul
