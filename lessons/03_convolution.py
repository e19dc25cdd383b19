# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 03: convolution, from loops to im2col to the minicnn kernel
#
# A convolutional layer slides a small stack of filters over an image. With input
# `x: (N, C, H, W)` and weight `w: (K, C, kh, kw)` (K filters, each C x kh x kw), output
# channel `k` at position `(i, j)` is one dot product:
#
# $$ y[n, k, i, j] = b[k] + \sum_{c,u,v} w[k, c, u, v]\, x[n, c, i s + u d - p, j s + v d - p] $$
#
# with stride `s`, dilation `d` and zero padding `p` (pixels outside the image read 0).
# Deep-learning "convolution" is this *cross-correlation*: the kernel is not flipped.
#
# What you will do:
#
# 1. (a) write the formula as six nested loops -- correct and hopelessly slow;
# 2. (b) work out the output size, with stride, padding and dilation;
# 3. (c) rearrange the input into a **column matrix** (im2col) so the whole layer becomes
#    ONE matrix product, the operation CPUs and GPUs are best at;
# 4. (d) derive the backward pass: two more matrix products and col2im, the adjoint of im2col;
# 5. (e) use minicnn's kernels (`backend.im2col`, Numba-compiled) and `F.conv2d`;
# 6. (f) time all of them beside PyTorch;
# 7. (g) do fewer multiplies with Winograd's F(2x2, 3x3), the algorithm fast libraries use.
#
# Run it as a script, `python lessons/03_convolution.py` (`--quick`: smaller sizes, as CI
# does), or as a notebook through Jupytext. Figures go to `lessons/out/`. Every result is
# checked against PyTorch with an `assert`.

# %%
import argparse
import os
import sys
import time
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")  # a script only writes files; a notebook keeps its inline figures
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as TF

import minicnn
import minicnn.nn.functional as F
from minicnn.backend import current_backend, geometry, reference
from minicnn.nn.functional.conv import set_conv_algorithm

parser = argparse.ArgumentParser(description="Lesson 03: convolution")
parser.add_argument("--quick", action="store_true", help="smaller sizes (for CI)")
args, _ = parser.parse_known_args()  # parse_known_args: Jupyter adds arguments of its own

try:
    OUT = Path(__file__).resolve().parent / "out"
except NameError:  # inside a notebook there is no __file__
    OUT = Path("out")
OUT.mkdir(parents=True, exist_ok=True)

minicnn.manual_seed(0)
rng = np.random.default_rng(0)
print(f"quick mode: {args.quick}; backend: {current_backend().name}; figures go to {OUT}")


def close(a, b, tol=1e-10):
    """Max absolute difference between two arrays/tensors, asserted below ``tol``."""
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    err = float(np.abs(a - b).max())
    assert err < tol, f"max difference {err:.3g} >= {tol:g}"
    return err


# %% [markdown]
# ## (a) Convolution as loops
#
# The formula, literally: for every image, output channel, output row and column, sum over
# input channels and kernel offsets. Padding is handled by testing whether the input pixel
# lies inside the image. We check the result against `torch.nn.functional.conv2d` in
# float64, where the only differences are rounding in the last bits.

# %%
def conv2d_loops(x, w, b, stride=1, padding=0, dilation=1):
    """x: (N, C, H, W), w: (K, C, kh, kw), b: (K,) -> (N, K, H_out, W_out). Six loops."""
    n_img, c_in, h, wd = x.shape
    k_out, _, kh, kw = w.shape
    h_out = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    w_out = (wd + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    y = np.zeros((n_img, k_out, h_out, w_out))
    for n in range(n_img):
        for k in range(k_out):
            for i in range(h_out):
                for j in range(w_out):
                    total = b[k]
                    for c in range(c_in):
                        for u in range(kh):
                            for v in range(kw):
                                r = i * stride + u * dilation - padding
                                s = j * stride + v * dilation - padding
                                if 0 <= r < h and 0 <= s < wd:
                                    total += w[k, c, u, v] * x[n, c, r, s]
                    y[n, k, i, j] = total
    return y


x = rng.standard_normal((2, 3, 7, 6))
w = rng.standard_normal((4, 3, 3, 3))
b = rng.standard_normal(4)
for stride, padding, dilation in [(1, 0, 1), (2, 1, 1), (1, 2, 2)]:
    y_loops = conv2d_loops(x, w, b, stride, padding, dilation)
    y_torch = TF.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=stride,
                        padding=padding, dilation=dilation)
    err = close(y_loops, y_torch)
    print(f"stride={stride} padding={padding} dilation={dilation}: output {y_loops.shape}, "
          f"max |loops - torch| = {err:.1e}")

# %% [markdown]
# ## (b) The output size
#
# Along one axis the input is `H` pixels plus `p` zeros on each side; a kernel of size `k`
# with dilation `d` covers `d (k - 1) + 1` pixels; it can start at positions `0, s, 2s, ...`
# as long as it fits:
#
# $$ H_{out} = \left\lfloor \frac{H + 2p - d(k - 1) - 1}{s} \right\rfloor + 1 $$
#
# `padding='same'` picks `p` so that `H_out = H` (stride 1): a total of `d (k - 1)` zeros,
# split as evenly as possible -- for an even kernel the extra one goes at the bottom/right,
# as in PyTorch.

# %%
for h_in, k, s, p, d in [(32, 3, 1, 1, 1), (32, 3, 2, 1, 1), (7, 5, 3, 0, 1), (10, 3, 1, 2, 2)]:
    h_formula = (h_in + 2 * p - d * (k - 1) - 1) // s + 1
    h_torch = TF.conv2d(torch.zeros(1, 1, h_in, h_in), torch.zeros(1, 1, k, k), stride=s,
                        padding=p, dilation=d).shape[-1]
    assert h_formula == h_torch == geometry.conv_output_size(h_in, k, s, p, p, d)
    print(f"H={h_in:2d} k={k} s={s} p={p} d={d} -> H_out={h_formula}")
same = F.conv2d(minicnn.zeros(1, 1, 9, 8), minicnn.zeros(1, 1, 4, 2), padding="same")
assert same.shape == (1, 1, 9, 8)

# %% [markdown]
# ## (c) im2col: the whole layer as one matrix product
#
# Look at the inner three loops of (a): for a fixed output pixel they take the dot product of
# the weight `w[k]` (flattened to `C*kh*kw` numbers) with the input *patch* under the kernel
# (also `C*kh*kw` numbers). Copy every patch into a column of a matrix
#
# $$ \text{cols}: (C\,k_h k_w) \times (N\,H_{out} W_{out}), $$
#
# and all the dot products at once are one matrix product, `w.reshape(K, C*kh*kw) @ cols`.
# Building `cols` needs loops only over the `kh * kw` kernel offsets: for offset `(u, v)`,
# the pixels that all output positions read form a *strided slice* of the padded input.
# (Row `(c, u, v)` of `cols` holds channel `c` shifted by `(u, v)`.)

# %%
def im2col_numpy(x, kh, kw, stride=1, padding=0, dilation=1):
    """x: (N, C, H, W) -> cols: (C*kh*kw, N*H_out*W_out), one strided copy per offset."""
    n_img, c_in, h, wd = x.shape
    h_out = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    w_out = (wd + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((c_in, kh, kw, n_img, h_out, w_out), dtype=x.dtype)
    for u in range(kh):
        for v in range(kw):
            rows = slice(u * dilation, u * dilation + stride * (h_out - 1) + 1, stride)
            columns = slice(v * dilation, v * dilation + stride * (w_out - 1) + 1, stride)
            cols[:, u, v] = xp[:, :, rows, columns].transpose(1, 0, 2, 3)  # (C, N, Ho, Wo)
    return cols.reshape(c_in * kh * kw, n_img * h_out * w_out), (h_out, w_out)


def conv2d_im2col(x, w, b, stride=1, padding=0, dilation=1):
    """The convolution as ONE matrix product over the column matrix."""
    k_out, _, kh, kw = w.shape
    cols, (h_out, w_out) = im2col_numpy(x, kh, kw, stride, padding, dilation)
    y = w.reshape(k_out, -1) @ cols + b[:, None]  # (K, N*H_out*W_out)
    return y.reshape(k_out, x.shape[0], h_out, w_out).transpose(1, 0, 2, 3)


cols, _ = im2col_numpy(x, 3, 3, stride=2, padding=1)
print("x:", x.shape, "-> cols:", cols.shape, "(C*kh*kw, N*H_out*W_out)")
# PyTorch calls im2col "unfold": (N, C*kh*kw, L) -- the same columns, batch first
unfold = TF.unfold(torch.tensor(x), (3, 3), padding=1, stride=2)
close(cols, unfold.permute(1, 0, 2).reshape(cols.shape))
for stride, padding, dilation in [(1, 0, 1), (2, 1, 1), (1, 2, 2)]:
    close(conv2d_im2col(x, w, b, stride, padding, dilation),
          conv2d_loops(x, w, b, stride, padding, dilation))
print("im2col + matmul == loops == torch")

# %% [markdown]
# A picture of the column matrix for one 6x6 single-channel image and a 3x3 kernel: each
# of the 16 columns is one flattened 3x3 patch, and each of the 9 rows is the image
# shifted by one kernel offset. Every interior pixel appears up to 9 times: im2col trades
# memory (9x the input for a 3x3 kernel) for the speed of one big matrix product.

# %%
img = np.arange(36, dtype=np.float64).reshape(1, 1, 6, 6)
img_cols, _ = im2col_numpy(img, 3, 3)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1, 2]})
ax1.imshow(img[0, 0], cmap="viridis")
ax1.set_title("input 6x6 (pixel value = index)")
for (r, c), v in np.ndenumerate(img[0, 0]):
    ax1.text(c, r, int(v), ha="center", va="center", color="w", fontsize=8)
ax2.imshow(img_cols, cmap="viridis", aspect="auto")
ax2.set(title="im2col: 9 rows (kernel offsets) x 16 columns (output pixels)",
        xlabel="output pixel", ylabel="kernel offset (u, v)")
for (r, c), v in np.ndenumerate(img_cols):
    ax2.text(c, r, int(v), ha="center", va="center", color="w", fontsize=7)
fig.tight_layout()
fig.savefig(OUT / "03_im2col.png", dpi=100)
plt.close(fig)
print("saved", OUT / "03_im2col.png")

# %% [markdown]
# ## (d) Backward: two more matrix products and col2im
#
# Forward is `Y = W cols` with `W: (K, C kh kw)` and `Y` laid out as `(K, N H_out W_out)`.
# For a matrix product the gradients are the usual ones:
#
# * `dW = dY cols^T` -- the weight gradient, another matrix product;
# * `dcols = W^T dY` -- the gradient of the column matrix;
# * `db = dY` summed over everything but the channel.
#
# `dcols` must then go back to the shape of `x`. Every entry of `cols` was *copied* from one
# input pixel, so its gradient is *added* back to that pixel: **col2im**, the adjoint of
# im2col. A pixel that appears in 9 columns receives the sum of 9 gradients. Being the
# adjoint means `<im2col(x), c> = <x, col2im(c)>` for every `x` and `c`, which we check too.

# %%
def col2im_numpy(cols, x_shape, kh, kw, stride=1, padding=0, dilation=1):
    """The adjoint of im2col_numpy: add each column entry back onto the pixel it came from."""
    n_img, c_in, h, wd = x_shape
    h_out = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    w_out = (wd + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    cols = cols.reshape(c_in, kh, kw, n_img, h_out, w_out)
    xp = np.zeros((n_img, c_in, h + 2 * padding, wd + 2 * padding))
    for u in range(kh):
        for v in range(kw):
            rows = slice(u * dilation, u * dilation + stride * (h_out - 1) + 1, stride)
            columns = slice(v * dilation, v * dilation + stride * (w_out - 1) + 1, stride)
            xp[:, :, rows, columns] += cols[:, u, v].transpose(1, 0, 2, 3)
    return xp[:, :, padding:padding + h, padding:padding + wd]


stride, padding = 2, 1
cols, (h_out, w_out) = im2col_numpy(x, 3, 3, stride, padding)
c_rand = rng.standard_normal(cols.shape)
lhs = np.sum(cols * c_rand)
rhs = np.sum(x * col2im_numpy(c_rand, x.shape, 3, 3, stride, padding))
print(f"<im2col(x), c> = {lhs:.10f}\n<x, col2im(c)> = {rhs:.10f}")
assert abs(lhs - rhs) < 1e-9

dy = rng.standard_normal((2, 4, h_out, w_out))  # an upstream gradient dL/dy
dy_mat = dy.transpose(1, 0, 2, 3).reshape(4, -1)  # (K, N*H_out*W_out), the layout of Y
dw_mine = (dy_mat @ cols.T).reshape(w.shape)
dx_mine = col2im_numpy(w.reshape(4, -1).T @ dy_mat, x.shape, 3, 3, stride, padding)
db_mine = dy.sum(axis=(0, 2, 3))

xt = torch.tensor(x, requires_grad=True)
wt = torch.tensor(w, requires_grad=True)
bt = torch.tensor(b, requires_grad=True)
TF.conv2d(xt, wt, bt, stride=stride, padding=padding).backward(torch.tensor(dy))
close(dw_mine, wt.grad)
close(dx_mine, xt.grad)
close(db_mine, bt.grad)
print("dW = dY cols^T, dX = col2im(W^T dY), db = sum(dY): all equal to torch's gradients")

# %% [markdown]
# ## (e) The minicnn kernels
#
# minicnn's `F.conv2d` does exactly (c) and (d), with three refinements:
#
# * im2col and col2im are compiled loops (`minicnn/backend/numba_cpu.py`; the readable
#   NumPy versions in `reference.py` are the ones above, with asymmetric padding). col2im
#   runs one thread per (image, channel) plane, which owns its pixels: no two threads add
#   into the same place, so no locks or atomics are needed.
# * the large column matrices are written into reused buffers: a fresh 75 MB array costs
#   as much to fault into memory as to fill;
# * 1x1 convolutions skip im2col (the input already *is* the column matrix), and depthwise
#   convolutions use direct loops (lesson 04).
#
# The backend's im2col must agree with ours exactly (it is a copy), and `F.conv2d` with PyTorch
# in value and gradient.

# %%
backend = current_backend()
pads = ((padding, padding), (padding, padding))
cols_kernel = backend.im2col(x, (3, 3), (stride, stride), pads, (1, 1))
assert np.array_equal(cols_kernel, cols)
dx_kernel = backend.col2im(w.reshape(4, -1).T @ dy_mat, x.shape, (3, 3), (stride, stride), pads,
                           (1, 1))
close(dx_kernel, xt.grad)

mx = minicnn.tensor(x, requires_grad=True)
mw = minicnn.tensor(w, requires_grad=True)
mb = minicnn.tensor(b, requires_grad=True)
y = F.conv2d(mx, mw, mb, stride=stride, padding=padding)
y.backward(minicnn.tensor(dy))
print("minicnn:", y.grad_fn, y.shape)
close(y, TF.conv2d(torch.tensor(x), wt.detach(), bt.detach(), stride=stride, padding=padding))
for mine, theirs in [(mx.grad, xt.grad), (mw.grad, wt.grad), (mb.grad, bt.grad)]:
    close(mine, theirs)
print(f"F.conv2d on backend {backend.name!r}: output and all three gradients match torch")

# %% [markdown]
# ## (f) How fast?
#
# A ResNet-style layer: 32 channels in and out, 3x3, padding 1, on a batch of 16x16 images
# (CIFAR size 32x32 and 64 channels in the full run). We time the forward pass of
#
# * the loops of (a) -- on one image only and one output channel, then scaled up (the full
#   layer would take minutes);
# * im2col + matmul in NumPy from (c);
# * minicnn's `F.conv2d`;
# * PyTorch.
#
# and report the multiply-adds per second. A 3x3 layer does `N*K*H_out*W_out*C*9`
# multiply-adds; a good implementation runs at a good fraction of the machine's
# floating-point peak, a Python loop at a few million per second.

# %%
def best_time(fn, repeat):
    """The fastest of ``repeat`` runs after one warm-up call, in seconds (the fastest run is
    the one least disturbed by other programs)."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


n_img, chans, size = (4, 16, 16) if args.quick else (16, 64, 32)
repeat = 3 if args.quick else 5
xf = rng.standard_normal((n_img, chans, size, size)).astype(np.float32)
wf = (rng.standard_normal((chans, chans, 3, 3)) * 0.1).astype(np.float32)
bf = np.zeros(chans, np.float32)
macs = n_img * chans * size * size * chans * 9

# the loops: one image, one output channel, scaled up to the whole layer
start = time.perf_counter()
conv2d_loops(xf[:1], wf[:1], bf[:1], 1, 1)
t_loop = (time.perf_counter() - start) * n_img * chans
with torch.no_grad():
    y_ref = TF.conv2d(torch.tensor(xf), torch.tensor(wf), torch.tensor(bf), padding=1).numpy()
close(conv2d_im2col(xf, wf, bf, 1, 1), y_ref, tol=1e-3)
t_im2col = best_time(lambda: conv2d_im2col(xf, wf, bf, 1, 1), repeat)
mxf, mwf, mbf = minicnn.tensor(xf), minicnn.tensor(wf), minicnn.tensor(bf)
close(F.conv2d(mxf, mwf, mbf, padding=1), y_ref, tol=1e-3)
t_minicnn = best_time(lambda: F.conv2d(mxf, mwf, mbf, padding=1), repeat)
txf, twf, tbf = torch.tensor(xf), torch.tensor(wf), torch.tensor(bf)
with torch.no_grad():
    t_torch = best_time(lambda: TF.conv2d(txf, twf, tbf, padding=1), repeat)

timings = {"loops (scaled)": t_loop, "im2col NumPy": t_im2col,
           f"minicnn ({backend.name})": t_minicnn, "PyTorch": t_torch}
print(f"layer: N={n_img}, {chans}->{chans} channels, {size}x{size}, 3x3: "
      f"{macs / 1e6:.0f} M multiply-adds")
for name, t in timings.items():
    print(f"  {name:18s} {t * 1e3:10.2f} ms  {macs / t / 1e9:8.3f} G multiply-adds/s")
assert t_im2col < t_loop / 10, "one matrix product should beat Python loops by far"

fig, ax = plt.subplots(figsize=(7, 3.5))
names = list(timings)
ax.barh(names, [timings[k] * 1e3 for k in names], color=["C3", "C1", "C0", "C2"])
ax.set_xscale("log")
ax.set_xlim(right=max(timings.values()) * 1e3 * 8)  # room for the labels
ax.invert_yaxis()
ax.set(xlabel="forward time (ms, log scale)",
       title=f"3x3 conv, N={n_img}, {chans}->{chans} ch, {size}x{size}")
for i, k in enumerate(names):
    ax.text(timings[k] * 1e3, i, f" {timings[k] * 1e3:.1f} ms", va="center")
fig.tight_layout()
fig.savefig(OUT / "03_conv_timing.png", dpi=100)
plt.close(fig)
print("saved", OUT / "03_conv_timing.png")

# %% [markdown]
# ## (g) Fewer multiplies: Winograd's F(2x2, 3x3)
#
# im2col does every multiply-add of the formula. Lavin & Gray (2016) noticed that a 3x3
# convolution can do fewer. In one dimension, two outputs of a 3-tap filter `g` over four
# inputs `d` take 6 multiplies directly, but only 4 this way (Winograd's F(2, 3)):
#
#     m1 = (d0 - d2) g0          m2 = (d1 + d2) (g0 + g1 + g2) / 2
#     m4 = (d1 - d3) g2          m3 = (d2 - d1) (g0 - g1 + g2) / 2
#     y0 = m1 + m2 + m3          y1 = m2 - m3 - m4
#
# The filter sums are computed once per filter, not per pixel. Nested in two dimensions,
# a 2x2 output tile costs 16 multiplies instead of 36: `Y = A^T [(G g G^T) * (B^T d B)] A`
# with small matrices of 0, +-1 and 1/2. Summed over the input channels, the 16 products
# become 16 matrix products, so the layer still runs as GEMMs, 2.25x smaller ones.
# minicnn uses it for large 3x3 stride-1 layers on the CPU (`minicnn/nn/functional/winograd.py`);
# `set_conv_algorithm` chooses by hand.
#
# A third way skips the column matrix altogether. The *direct* kernels loop over the padded
# input itself: one pass over an image adds four kernel taps to eight output channels, so
# every pixel loaded feeds 32 multiply-adds, and nothing nine times the input is written.
# minicnn picks them for stride-1 layers on planes of 8x8 and more with up to 128 input
# channels (every stride-1 layer of a CIFAR ResNet, see `DIRECT_MIN_PIXELS` in
# `minicnn/nn/functional/conv.py`): there building the column matrix costs as much as the
# product it feeds.

# %%
d, g = rng.standard_normal(4), rng.standard_normal(3)
m1, m4 = (d[0] - d[2]) * g[0], (d[1] - d[3]) * g[2]
m2 = (d[1] + d[2]) * (g[0] + g[1] + g[2]) / 2
m3 = (d[2] - d[1]) * (g[0] - g[1] + g[2]) / 2
close([m1 + m2 + m3, m2 - m3 - m4], [d[0:3] @ g, d[1:4] @ g])
print("1-d F(2, 3): 4 multiplies give the same two outputs as 6")

# the 2-d tile formula with minicnn's matrices, against the direct 3x3 correlation
BT, G_, AT = (np.array(m, dtype=float) for m in (reference.WINOGRAD_BT, reference.WINOGRAD_G,
                                                 reference.WINOGRAD_AT))
tile, filt = rng.standard_normal((4, 4)), rng.standard_normal((3, 3))
direct = np.array([[np.sum(tile[i:i + 3, j:j + 3] * filt) for j in range(2)] for i in range(2)])
close(AT @ ((G_ @ filt @ G_.T) * (BT @ tile @ BT.T)) @ AT.T, direct)
print("2-d F(2x2, 3x3): 16 multiplies give the 2x2 tile that takes 36 directly")

# the whole layer of (f), forward and backward, by each algorithm
mxg = minicnn.tensor(xf, requires_grad=True)
mwg = minicnn.tensor(wf, requires_grad=True)


def forward_backward():
    mxg.grad = mwg.grad = None
    y = F.conv2d(mxg, mwg, mbf, padding=1)
    y.backward(minicnn.ones_like(y))
    return y


algorithm_times = {}
for name in ("im2col", "winograd", "direct"):
    set_conv_algorithm(name)
    close(forward_backward(), y_ref, tol=1e-3)
    algorithm_times[name] = best_time(forward_backward, repeat)
set_conv_algorithm("auto")
for name, t in algorithm_times.items():
    print(f"  {name:9s} forward+backward {t * 1e3:8.2f} ms")
print(f"Winograd / im2col time: {algorithm_times['winograd'] / algorithm_times['im2col']:.2f} "
      f"(multiplies: 16/36 = {16 / 36:.2f}; the transforms cost memory traffic, and small "
      "layers do not pay it back)")
print(f"direct / im2col time: {algorithm_times['direct'] / algorithm_times['im2col']:.2f} "
      "(the same multiplies, no column matrix)")

# %% [markdown]
# ## Summary
#
# * A convolution is a dot product per output pixel and filter; im2col lays the patches out
#   as columns so that all of them are one matrix product.
# * Backward is two more matrix products (`dW = dY cols^T`, `dcols = W^T dY`) and col2im,
#   the adjoint of im2col, which adds the gradients of repeated pixels.
# * The price is memory: the column matrix is `kh*kw` times the input. The payoff is that the
#   time goes into matrix products, which run near the machine's peak.
# * Winograd's F(2x2, 3x3) trades multiplies for additions: 2.25x fewer for a 3x3 stride-1
#   layer, still as matrix products, with the same result up to rounding.
# * Direct kernels skip the column matrix: loops over the padded input that reuse each loaded
#   pixel for many multiply-adds. They win where the column matrix is large beside the
#   product (few channels, big planes).
#
# `benchmarks/bench_conv.py` times the full forward and backward of ResNet layers against
# PyTorch. Next, lesson 04: grouped and depthwise convolutions, and what they save.

# %%
print("lesson 03: all checks passed")
