"""``soft_argmax``: the differentiable read-out of a landmark from its heatmap.

The argmax of a heatmap has no gradient (moving a score does not move the argmax until it
jumps). The soft-argmax (Sun et al. 2018, "Integral Human Pose Regression", ECCV; Nibali
et al. 2018, "Numerical Coordinate Regression with Convolutional Neural Networks") turns
the ``H x W`` scores of one heatmap into a probability map with a softmax and returns the
expected pixel centre under it::

    p[i, j] = exp(beta s[i, j]) / sum exp(beta s)
    x = sum_ij p[i, j] (j + 0.5),   y = sum_ij p[i, j] (i + 0.5)

(pixel centres as in ``minicnn.data``: a ``W x H`` map spans ``[0, W] x [0, H]``). Its
backward is the softmax's: with ``u = dL/dx (j + 0.5) + dL/dy (i + 0.5)`` at every pixel,
``dL/ds = beta p (u - sum p u)``. ``beta`` is an inverse temperature: large values approach
the hard argmax (and its missing gradient), small ones blur the estimate towards the map's
centre.
"""

from __future__ import annotations

from minicnn.autograd.function import Function
from minicnn.autograd.tensor import Tensor
from minicnn.backend import array_module

__all__ = ["soft_argmax"]


class SoftArgmax(Function):
    """``(M, H, W)`` scores -> ``(M, 2)`` expected ``(x, y)``; see the module docstring."""

    @staticmethod
    def forward(ctx, s, *, beta):
        xp = array_module(s)
        m, h, w = s.shape
        flat = beta * s.reshape(m, h * w)
        flat = flat - flat.max(axis=1, keepdims=True)
        p = xp.exp(flat)
        p /= p.sum(axis=1, keepdims=True)
        p = p.reshape(m, h, w)
        xs = xp.arange(w, dtype=s.dtype) + 0.5
        ys = xp.arange(h, dtype=s.dtype) + 0.5
        ctx.p, ctx.xs, ctx.ys, ctx.beta = p, xs, ys, beta
        return xp.stack([(p.sum(axis=1) * xs).sum(axis=1), (p.sum(axis=2) * ys).sum(axis=1)], 1)

    @staticmethod
    def backward(ctx, grad):
        p = ctx.p
        u = grad[:, 0, None, None] * ctx.xs[None, None, :] + grad[:, 1, None, None] * ctx.ys[
            None, :, None]
        mean = (p * u).sum(axis=(1, 2), keepdims=True)
        return ctx.beta * p * (u - mean)


def soft_argmax(input: Tensor, beta: float = 1.0) -> Tensor:
    """The expected pixel centre under ``softmax(beta * input)`` over each map's pixels.

    ``input: (*, H, W)`` scores (e.g. ``(N, K, H, W)``: K landmark heatmaps) -> ``(*, 2)``
    coordinates ``(x, y)`` in pixels, ``0 <= x <= W``, ``0 <= y <= H``. Differentiable.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"soft_argmax: input must be a minicnn Tensor, got "
                        f"{type(input).__name__}")
    if input.ndim < 2 or input.shape[-1] < 1 or input.shape[-2] < 1:
        raise ValueError(f"soft_argmax: input must be (*, H, W) scores with H, W >= 1, got "
                         f"shape {tuple(input.shape)}")
    if not beta > 0:
        raise ValueError(f"soft_argmax: beta must be positive, got {beta}")
    *lead, h, w = input.shape
    out = SoftArgmax.apply(input.reshape(-1, h, w), beta=float(beta))
    return out.reshape(*lead, 2)
