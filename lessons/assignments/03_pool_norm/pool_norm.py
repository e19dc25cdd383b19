# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Assignment 03: pooling, batch normalization and LRN, forward and backward
#
# Lesson 05 used these layers; here you write them as `minicnn.Function`s on NumPy arrays:
#
# 1. max pooling and average pooling (square windows, no padding);
# 2. batch normalization: the training-mode Function (batch statistics, forward and
#    backward) and `batch_norm`, which also keeps the running statistics and uses them in
#    evaluation mode;
# 3. local response normalization across channels, as AlexNet used it.
#
# The grader compares each forward with `minicnn.nn.functional` (`max_pool2d`, `avg_pool2d`,
# `batch_norm`, `local_response_norm`) and checks each backward with `minicnn.gradcheck`.

# %%
import numpy as np

import minicnn
import minicnn.nn.functional as F


def windows(x, k: int, stride: int):
    """Every k x k window, flattened. x: (N, C, H, W) -> (N, C, OH, OW, k * k) with
    OH = (H - k) // stride + 1; element p * k + q of a window is its row p, column q."""
    n, c, h, w = x.shape
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.empty((n, c, oh, ow, k, k), dtype=x.dtype)
    for p in range(k):
        for q in range(k):
            out[..., p, q] = x[:, :, p:p + stride * oh:stride, q:q + stride * ow:stride]
    return out.reshape(n, c, oh, ow, k * k)


def channel_window_sum(v, before: int, after: int):
    """out[:, c] = sum of v[:, c - before .. c + after] (channels outside are 0).
    v: (N, C, *) -> same shape."""
    c = v.shape[1]
    padded = np.concatenate([np.zeros_like(v[:, :1]).repeat(before, 1), v,
                             np.zeros_like(v[:, :1]).repeat(after, 1)], axis=1)
    return sum(padded[:, i:i + c] for i in range(before + after + 1))


# %% [markdown]
# ## 1. Pooling
#
# Max pooling sends each output's gradient to the one input that won its window (remember
# which with `argmax`); average pooling spreads it evenly over the window.

# %%
class MaxPool2d(minicnn.Function):
    """Max over k x k windows. x: (N, C, H, W) -> (N, C, OH, OW)."""

    @staticmethod
    def forward(ctx, x, k=2, stride=2):
        ### BEGIN SOLUTION
        win = windows(x, k, stride)
        idx = win.argmax(axis=-1)
        ctx.save_for_backward(idx)
        ctx.shape, ctx.k, ctx.stride = x.shape, k, stride
        return np.take_along_axis(win, idx[..., None], axis=-1)[..., 0]
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad):
        """Return dx: (N, C, H, W)."""
        ### BEGIN SOLUTION
        (idx,) = ctx.saved_tensors
        k, s = ctx.k, ctx.stride
        oh, ow = grad.shape[2:]
        dx = np.zeros(ctx.shape, dtype=grad.dtype)
        for p in range(k):
            for q in range(k):
                dx[:, :, p:p + s * oh:s, q:q + s * ow:s] += grad * (idx == p * k + q)
        return dx
        ### END SOLUTION


class AvgPool2d(minicnn.Function):
    """Mean over k x k windows. x: (N, C, H, W) -> (N, C, OH, OW)."""

    @staticmethod
    def forward(ctx, x, k=2, stride=2):
        ### BEGIN SOLUTION
        ctx.shape, ctx.k, ctx.stride = x.shape, k, stride
        return windows(x, k, stride).mean(axis=-1)
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad):
        """Return dx: (N, C, H, W)."""
        ### BEGIN SOLUTION
        k, s = ctx.k, ctx.stride
        oh, ow = grad.shape[2:]
        dx = np.zeros(ctx.shape, dtype=grad.dtype)
        for p in range(k):
            for q in range(k):
                dx[:, :, p:p + s * oh:s, q:q + s * ow:s] += grad / (k * k)
        return dx
        ### END SOLUTION


# %% [markdown]
# ## 2. Batch normalization
#
# Training mode, per channel over `m = N * H * W` values: `mu`, the biased variance `var`,
# `xhat = (x - mu) / sqrt(var + eps)`, `y = gamma * xhat + beta`. With `g = dL/dy` and
# `gh = g * gamma`, the backward is
# `dx = (m * gh - sum(gh) - xhat * sum(gh * xhat)) / (m * sqrt(var + eps))`,
# `dgamma = sum(g * xhat)`, `dbeta = sum(g)` (sums over N, H, W).
#
# `batch_norm` in training mode also updates the running statistics in place,
# `running = (1 - momentum) * running + momentum * batch_statistic` with the *unbiased*
# variance (as PyTorch), and in evaluation mode normalizes with them instead.

# %%
class BatchNorm2dTrain(minicnn.Function):
    """Batch norm with batch statistics. x: (N, C, H, W), gamma, beta: (C,) -> (N, C, H, W)."""

    @staticmethod
    def forward(ctx, x, gamma, beta, eps=1e-5):
        ### BEGIN SOLUTION
        mean = x.mean(axis=(0, 2, 3), keepdims=True)
        invstd = 1 / np.sqrt(x.var(axis=(0, 2, 3), keepdims=True) + eps)
        xhat = (x - mean) * invstd
        ctx.save_for_backward(xhat, invstd, gamma)
        return gamma[None, :, None, None] * xhat + beta[None, :, None, None]
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad):
        """Return (dx, dgamma, dbeta)."""
        ### BEGIN SOLUTION
        xhat, invstd, gamma = ctx.saved_tensors
        m = grad.size // grad.shape[1]
        gh = grad * gamma[None, :, None, None]
        dx = (m * gh - gh.sum(axis=(0, 2, 3), keepdims=True)
              - xhat * (gh * xhat).sum(axis=(0, 2, 3), keepdims=True)) * invstd / m
        return dx, (grad * xhat).sum(axis=(0, 2, 3)), grad.sum(axis=(0, 2, 3))
        ### END SOLUTION


def batch_norm(x, gamma, beta, running_mean, running_var, training: bool,
               momentum: float = 0.1, eps: float = 1e-5):
    """Batch norm. x: (N, C, H, W) Tensor, gamma, beta: (C,) Tensors; running_mean and
    running_var: (C,) NumPy arrays, updated in place when training -> (N, C, H, W) Tensor."""
    ### BEGIN SOLUTION
    if training:
        data = x.detach().numpy()
        m = data.size // data.shape[1]
        running_mean *= 1 - momentum
        running_mean += momentum * data.mean(axis=(0, 2, 3))
        running_var *= 1 - momentum
        running_var += momentum * data.var(axis=(0, 2, 3)) * m / (m - 1)
        return BatchNorm2dTrain.apply(x, gamma, beta, eps=eps)
    scale = minicnn.tensor(1 / np.sqrt(running_var + eps)).reshape(1, -1, 1, 1)
    xhat = (x - minicnn.tensor(running_mean).reshape(1, -1, 1, 1)) * scale
    return gamma.reshape(1, -1, 1, 1) * xhat + beta.reshape(1, -1, 1, 1)
    ### END SOLUTION


# %% [markdown]
# ## 3. Local response normalization
#
# `y_c = x_c / s_c ** beta` with `s_c = k + alpha / size * sum of x_j^2` over the channels
# `j = c - size // 2 .. c + (size - 1) // 2` (`channel_window_sum` does that sum). Channel
# `x_j` appears in the sums of every `c` whose window holds `j`, so
# `dx_j = g_j / s_j ** beta - 2 * alpha * beta / size * x_j * sum over those c of
# g_c * x_c / s_c ** (beta + 1)`; those `c` run from `j - (size - 1) // 2` to `j + size // 2`.

# %%
class LRN(minicnn.Function):
    """Local response normalization across channels. x: (N, C, H, W) -> same shape."""

    @staticmethod
    def forward(ctx, x, size=5, alpha=1e-4, beta=0.75, k=1.0):
        ### BEGIN SOLUTION
        s = k + alpha / size * channel_window_sum(x * x, size // 2, (size - 1) // 2)
        ctx.save_for_backward(x, s)
        ctx.size, ctx.alpha, ctx.beta = size, alpha, beta
        return x * s ** -beta
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad):
        """Return dx: (N, C, H, W)."""
        ### BEGIN SOLUTION
        x, s = ctx.saved_tensors
        size, alpha, beta = ctx.size, ctx.alpha, ctx.beta
        spread = channel_window_sum(grad * x * s ** (-beta - 1), (size - 1) // 2, size // 2)
        return grad * s ** -beta - 2 * alpha * beta / size * x * spread
        ### END SOLUTION


# %% [markdown]
# ## Check yourself

# %%
if __name__ == "__main__":
    rng = np.random.default_rng(0)

    def t(*shape):
        return minicnn.tensor(rng.standard_normal(shape), requires_grad=True)

    x = t(2, 3, 6, 6)
    assert np.allclose(MaxPool2d.apply(x, k=2, stride=2).detach().numpy(),
                       F.max_pool2d(x, 2, 2).detach().numpy())
    assert minicnn.gradcheck(lambda a: MaxPool2d.apply(a, k=3, stride=2), [t(1, 2, 7, 7)])
    assert minicnn.gradcheck(lambda a: AvgPool2d.apply(a, k=2, stride=1), [t(1, 2, 4, 5)])
    assert minicnn.gradcheck(lambda *a: BatchNorm2dTrain.apply(*a), [t(3, 2, 2, 2), t(2), t(2)])
    assert minicnn.gradcheck(lambda a: LRN.apply(a, size=3, alpha=0.5, beta=0.75, k=2.0),
                             [t(1, 4, 2, 2)])
    ### BEGIN HIDDEN TESTS
    assert minicnn.gradcheck(lambda a: LRN.apply(a, size=4, alpha=0.5, beta=0.75, k=2.0),
                             [t(1, 6, 2, 2)])
    ### END HIDDEN TESTS
    print("assignment 03: all checks passed")
