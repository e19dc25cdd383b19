# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Assignment 01: backward passes
#
# Lesson 01 showed how autograd walks the graph; here you write the backward passes it
# calls. Each operation is a `minicnn.Function` whose `forward` is given; write its
# `backward(ctx, grad)`: the gradient of the loss with respect to each input, given `grad`,
# the gradient with respect to the output.
#
# Broadcasting: `a * b` with `a: (3, 4)` and `b: (4,)` uses each element of `b` three times,
# so its gradient is the *sum* of the three contributions. First write `sum_to_shape`,
# then use it in every backward whose inputs may broadcast.
#
# Write your code between the markers `### BEGIN SOLUTION` and `### END SOLUTION` (the
# student version has `raise NotImplementedError` there). Check yourself by running this file
# (or the notebook): the cells at the end compare your gradients with finite differences
# through `minicnn.gradcheck`. The grader does the same on other shapes:
# `minicnn homework grade FOLDER`.

# %%
import numpy as np

import minicnn
from minicnn.backend import array_module


# %%
def sum_to_shape(grad, shape):
    """Sum ``grad`` over the axes broadcasting added or stretched so that it has ``shape``.

    grad: an array of the broadcast shape, e.g. (2, 3, 4); shape: an input's shape, e.g.
    (3, 1) -> an array of shape (3, 1): the sum over axis 0 (added) and axis 2 (stretched).
    """
    ### BEGIN SOLUTION
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad
    ### END SOLUTION


# %%
class Mul(minicnn.Function):
    """a * b with broadcasting. a, b: broadcastable shapes -> their broadcast shape."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        """Return (dL/da, dL/db), each of its input's shape."""
        a, b = ctx.saved_tensors
        ### BEGIN SOLUTION
        return sum_to_shape(grad * b, a.shape), sum_to_shape(grad * a, b.shape)
        ### END SOLUTION


class Div(minicnn.Function):
    """a / b with broadcasting. a, b: broadcastable shapes -> their broadcast shape."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        """Return (dL/da, dL/db), each of its input's shape."""
        a, b = ctx.saved_tensors
        ### BEGIN SOLUTION
        grad_a = grad / b
        grad_b = -grad * a / (b * b)
        return sum_to_shape(grad_a, a.shape), sum_to_shape(grad_b, b.shape)
        ### END SOLUTION


class Tanh(minicnn.Function):
    """tanh(x), element-wise. x: any shape -> same shape."""

    @staticmethod
    def forward(ctx, x):
        y = array_module(x).tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        """Return dL/dx; use the saved output y (d tanh / dx = 1 - y^2)."""
        (y,) = ctx.saved_tensors
        ### BEGIN SOLUTION
        return grad * (1 - y * y)
        ### END SOLUTION


class MatMul(minicnn.Function):
    """a @ b for matrices. a: (M, K), b: (K, N) -> (M, N)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        """Return (dL/da: (M, K), dL/db: (K, N)) from grad: (M, N)."""
        a, b = ctx.saved_tensors
        ### BEGIN SOLUTION
        return grad @ b.T, a.T @ grad
        ### END SOLUTION


class LogSumExp(minicnn.Function):
    """log(sum(exp(x), axis=-1)), computed stably. x: (M, N) -> (M,)."""

    @staticmethod
    def forward(ctx, x):
        xp = array_module(x)
        m = x.max(axis=-1, keepdims=True)
        out = m + xp.log(xp.exp(x - m).sum(axis=-1, keepdims=True))
        ctx.save_for_backward(x, out)
        return out[:, 0]

    @staticmethod
    def backward(ctx, grad):
        """Return dL/dx: (M, N) from grad: (M,) (the gradient is the softmax of x)."""
        x, out = ctx.saved_tensors
        ### BEGIN SOLUTION
        softmax = array_module(x).exp(x - out)
        return grad[:, None] * softmax
        ### END SOLUTION


# %% [markdown]
# ## Check yourself
#
# `minicnn.gradcheck(fn, inputs)` perturbs each element of each float64 input by ±eps and
# compares the change of the output with your backward; on a mismatch it names the input and
# the element. These cells run when you run the file or the notebook (not when the grader
# imports it).

# %%
if __name__ == "__main__":
    rng = np.random.default_rng(0)

    def t(*shape, positive=False):
        data = rng.standard_normal(shape)
        return minicnn.tensor(np.abs(data) + 0.5 if positive else data, requires_grad=True)

    assert sum_to_shape(np.ones((2, 3, 4)), (3, 1)).tolist() == [[8.0]] * 3
    assert minicnn.gradcheck(Mul.apply, [t(3, 4), t(3, 4)])
    assert minicnn.gradcheck(Mul.apply, [t(3, 4), t(4)])  # b broadcast over rows
    assert minicnn.gradcheck(Div.apply, [t(2, 3), t(2, 3, positive=True)])
    assert minicnn.gradcheck(Tanh.apply, [t(5, 2)])
    assert minicnn.gradcheck(MatMul.apply, [t(3, 4), t(4, 2)])
    assert minicnn.gradcheck(LogSumExp.apply, [t(3, 5)])
    ### BEGIN HIDDEN TESTS
    assert minicnn.gradcheck(Div.apply, [t(2, 1, 3), t(4, 1, positive=True)])
    assert minicnn.gradcheck(lambda x: Tanh.apply(Mul.apply(x, x)), [t(3, 3)])
    ### END HIDDEN TESTS
    print("assignment 01: all checks passed")
