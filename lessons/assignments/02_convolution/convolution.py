# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Assignment 02: convolution, forward and backward
#
# Lesson 03 showed convolution as nested loops and as im2col + one matrix product. Here you
# write both, forward *and* backward:
#
# 1. `conv2d_loops` and `conv2d_loops_backward`: loops over images, output channels and output
#    positions (the sum over input channels and the kernel window may be one NumPy product);
# 2. `im2col` and its adjoint `col2im`;
# 3. `Conv2d`, a `minicnn.Function` whose forward is `im2col` + a matrix product and whose
#    backward uses `col2im`.
#
# Shapes: `x: (N, C, H, W)`, `w: (K, C, kh, kw)`, `b: (K,)` -> `(N, K, OH, OW)` with
# `OH = (H + 2 * padding - kh) // stride + 1` (the same for `OW`). The grader compares your
# outputs with `minicnn.nn.functional.conv2d` and checks `Conv2d`'s backward with
# `minicnn.gradcheck`.

# %%
import numpy as np

import minicnn
import minicnn.nn.functional as F


def output_size(size: int, k: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis."""
    return (size + 2 * padding - k) // stride + 1


def pad(x, padding: int):
    """Zero padding of the last two axes. x: (N, C, H, W) -> (N, C, H + 2p, W + 2p)."""
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))


# %% [markdown]
# ## 1. Loops
#
# `out[n, k, i, j] = b[k] + sum over c, p, q of x_pad[n, c, i*s + p, j*s + q] * w[k, c, p, q]`.
# For the backward, every output element sends `grad[n, k, i, j]` back to the window it read:
# times `w[k]` into `dx`'s window, times the window into `dw[k]`, and into `db[k]`.

# %%
def conv2d_loops(x, w, b, stride: int = 1, padding: int = 0):
    """Convolution by loops. x: (N, C, H, W), w: (K, C, kh, kw), b: (K,) -> (N, K, OH, OW)."""
    ### BEGIN SOLUTION
    n_img, _, h, wd = x.shape
    k_out, _, kh, kw = w.shape
    oh, ow = output_size(h, kh, stride, padding), output_size(wd, kw, stride, padding)
    xp = pad(x, padding)
    out = np.zeros((n_img, k_out, oh, ow), dtype=x.dtype)
    for n in range(n_img):
        for k in range(k_out):
            for i in range(oh):
                for j in range(ow):
                    window = xp[n, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
                    out[n, k, i, j] = (window * w[k]).sum() + b[k]
    return out
    ### END SOLUTION


def conv2d_loops_backward(grad, x, w, stride: int = 1, padding: int = 0):
    """Gradients of conv2d_loops. grad: (N, K, OH, OW) -> (dx: (N, C, H, W),
    dw: (K, C, kh, kw), db: (K,))."""
    ### BEGIN SOLUTION
    n_img, _, h, wd = x.shape
    k_out, _, kh, kw = w.shape
    xp = pad(x, padding)
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for n in range(n_img):
        for k in range(k_out):
            for i in range(grad.shape[2]):
                for j in range(grad.shape[3]):
                    rows = slice(i * stride, i * stride + kh)
                    cols = slice(j * stride, j * stride + kw)
                    dxp[n, :, rows, cols] += grad[n, k, i, j] * w[k]
                    dw[k] += grad[n, k, i, j] * xp[n, :, rows, cols]
    dx = dxp[:, :, padding:padding + h, padding:padding + wd]
    return dx, dw, grad.sum(axis=(0, 2, 3))
    ### END SOLUTION


# %% [markdown]
# ## 2. im2col and col2im
#
# `im2col` lays every receptive field out as one column: `cols[n, :, i * OW + j]` is the window
# of output position `(i, j)`, flattened in the order `(c, p, q)` (channel first, as
# `w.reshape(K, -1)` flattens a kernel). Then the convolution is one matrix product,
# `w.reshape(K, -1) @ cols`. `col2im` is its adjoint: it adds each column back into the
# window it came from (overlapping windows add up), which is exactly what the backward needs.

# %%
def im2col(x, kh: int, kw: int, stride: int = 1, padding: int = 0):
    """Receptive fields as columns. x: (N, C, H, W) -> (N, C * kh * kw, OH * OW)."""
    ### BEGIN SOLUTION
    n_img, c, h, wd = x.shape
    oh, ow = output_size(h, kh, stride, padding), output_size(wd, kw, stride, padding)
    xp = pad(x, padding)
    cols = np.empty((n_img, c, kh, kw, oh, ow), dtype=x.dtype)
    for p in range(kh):
        for q in range(kw):
            cols[:, :, p, q] = xp[:, :, p:p + stride * oh:stride, q:q + stride * ow:stride]
    return cols.reshape(n_img, c * kh * kw, oh * ow)
    ### END SOLUTION


def col2im(cols, x_shape, kh: int, kw: int, stride: int = 1, padding: int = 0):
    """The adjoint of im2col. cols: (N, C * kh * kw, OH * OW) -> (N, C, H, W) = x_shape."""
    ### BEGIN SOLUTION
    n_img, c, h, wd = x_shape
    oh, ow = output_size(h, kh, stride, padding), output_size(wd, kw, stride, padding)
    cols = cols.reshape(n_img, c, kh, kw, oh, ow)
    xp = np.zeros((n_img, c, h + 2 * padding, wd + 2 * padding), dtype=cols.dtype)
    for p in range(kh):
        for q in range(kw):
            xp[:, :, p:p + stride * oh:stride, q:q + stride * ow:stride] += cols[:, :, p, q]
    return xp[:, :, padding:padding + h, padding:padding + wd]
    ### END SOLUTION


# %% [markdown]
# ## 3. Convolution as a Function
#
# Forward: `out = w.reshape(K, -1) @ cols + b`, reshaped to `(N, K, OH, OW)`. Backward, with
# `g = grad.reshape(N, K, OH * OW)`: `dw = sum over n of g[n] @ cols[n].T`,
# `dcols = w.reshape(K, -1).T @ g[n]` then `dx = col2im(dcols)`, and `db = grad.sum((0, 2, 3))`.

# %%
class Conv2d(minicnn.Function):
    """2-D convolution through im2col. x: (N, C, H, W), w: (K, C, kh, kw), b: (K,)
    -> (N, K, OH, OW)."""

    @staticmethod
    def forward(ctx, x, w, b, stride=1, padding=0):
        """Save what backward needs (ctx.save_for_backward, ctx.stride = stride, ...)."""
        ### BEGIN SOLUTION
        k_out, _, kh, kw = w.shape
        cols = im2col(x, kh, kw, stride, padding)
        ctx.save_for_backward(x, w, cols)
        ctx.stride, ctx.padding = stride, padding
        oh = output_size(x.shape[2], kh, stride, padding)
        ow = output_size(x.shape[3], kw, stride, padding)
        out = w.reshape(k_out, -1) @ cols + b[None, :, None]
        return out.reshape(x.shape[0], k_out, oh, ow)
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad):
        """Return (dx, dw, db) from grad: (N, K, OH, OW)."""
        ### BEGIN SOLUTION
        x, w, cols = ctx.saved_tensors
        k_out, _, kh, kw = w.shape
        g = grad.reshape(grad.shape[0], k_out, -1)
        dw = np.einsum("nkl,nml->km", g, cols).reshape(w.shape)
        dcols = w.reshape(k_out, -1).T @ g
        dx = col2im(dcols, x.shape, kh, kw, ctx.stride, ctx.padding)
        return dx, dw, grad.sum(axis=(0, 2, 3))
        ### END SOLUTION


# %% [markdown]
# ## Check yourself

# %%
if __name__ == "__main__":
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 3)), \
        rng.standard_normal(4)
    ref = F.conv2d(minicnn.tensor(x), minicnn.tensor(w), minicnn.tensor(b), stride=2, padding=1)
    assert np.allclose(conv2d_loops(x, w, b, stride=2, padding=1), ref.numpy())
    cols = im2col(x, 3, 3, stride=2, padding=1)
    assert cols.shape == (2, 27, ref.shape[2] * ref.shape[3])
    out = Conv2d.apply(minicnn.tensor(x), minicnn.tensor(w), minicnn.tensor(b), stride=2,
                       padding=1)
    assert np.allclose(out.numpy(), ref.numpy())
    xt, wt, bt = (minicnn.tensor(a, requires_grad=True) for a in (x[:1, :2, :5, :5],
                                                                    w[:2, :2], b[:2]))
    assert minicnn.gradcheck(lambda *a: Conv2d.apply(*a, stride=2, padding=1), [xt, wt, bt])
    ### BEGIN HIDDEN TESTS
    assert minicnn.gradcheck(lambda *a: Conv2d.apply(*a, stride=1, padding=0), [xt, wt, bt])
    ### END HIDDEN TESTS
    print("assignment 02: all checks passed")
