"""The fully connected layer as a function: ``y = x W^T + b``."""

from __future__ import annotations

import math

from minicnn.autograd.function import Function
from minicnn.autograd.tensor import Tensor


class Linear(Function):
    """``y = x W^T + b`` for ``x: (*, in)``, ``W: (out, in)``, ``b: (out,)``.

    The leading dimensions are flattened into one, so the whole batch is ONE matrix
    product ``(M, in) @ (in, out)`` (M = product of the leading sizes), and so are the
    gradients::

        dx = dy W            (M, out) @ (out, in)
        dW = dy^T x          (out, M) @ (M, in)
        db = sum_rows(dy)    (out,)
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        rows = math.prod(x.shape[:-1])
        x2 = x.reshape(rows, x.shape[-1])  # a view when x is contiguous
        out = x2 @ weight.T  # weight.T is a view: BLAS reads it transposed, no copy
        if bias is not None:
            out += bias
        ctx.save_for_backward(x2, weight)
        ctx.x_shape = x.shape
        return out.reshape(x.shape[:-1] + (weight.shape[0],))

    @staticmethod
    def backward(ctx, grad):
        x2, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        g2 = grad.reshape(x2.shape[0], grad.shape[-1])
        grad_x = (g2 @ weight).reshape(ctx.x_shape) if need_x else None
        grad_w = g2.T @ x2 if need_w else None
        grad_b = g2.sum(axis=0) if need_b else None
        return grad_x, grad_w, grad_b


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias``.

    ``input: (*, in_features)``, ``weight: (out_features, in_features)``,
    ``bias: (out_features,)`` or None ``-> (*, out_features)``.
    """
    for name, t in (("input", input), ("weight", weight), ("bias", bias)):
        if t is not None and not isinstance(t, Tensor):
            raise TypeError(f"linear: {name} must be a Tensor, got {type(t).__name__}")
    if weight.ndim != 2:
        raise ValueError(
            f"linear: weight must be 2-D (out_features, in_features), got shape {weight.shape}"
        )
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input of shape {input.shape} has {input.shape[-1] if input.ndim else 0} "
            f"features in its last dimension but weight of shape {weight.shape} expects "
            f"in_features = {weight.shape[1]}"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(
            f"linear: bias must have shape (out_features,) = ({weight.shape[0]},), "
            f"got {bias.shape}"
        )
    dtypes = {t.dtype for t in (input, weight, bias) if t is not None}
    if len(dtypes) > 1:
        raise TypeError(
            f"linear: input, weight and bias must share one dtype, got input {input.dtype}, "
            f"weight {weight.dtype}" + ("" if bias is None else f", bias {bias.dtype}")
        )
    if len({t.device for t in (input, weight, bias) if t is not None}) > 1:
        raise ValueError("linear: input, weight and bias must be on the same device")
    return Linear.apply(input, weight, bias)
