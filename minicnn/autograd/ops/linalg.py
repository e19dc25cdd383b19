"""Matrix product with NumPy's ``matmul`` rules (1-D vectors, batched broadcasting)."""

from __future__ import annotations

from minicnn.autograd.engine import unbroadcast
from minicnn.autograd.function import Function
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
