"""Reference kernels: every kernel of minicnn, written once against the array module ``xp``.

These are the readable versions a student reads first, and the oracle the Numba and
CuPy kernels are tested against. Each takes and returns raw arrays (NumPy or CuPy):
no autograd here. A kernel finds its array module with ``array_module(x)``, so the
same code runs on CuPy arrays too.

The table ``KERNELS`` at the bottom is what the backend registry reads.
"""

from __future__ import annotations

import numpy as np

from minicnn.backend.geometry import conv_output_size, winograd_tiles
from minicnn.backend.xp import array_module

# ---------------------------------------------------------------- scatter-add


def index_add(target, index, values) -> None:
    """In place: ``target[index] += values``, adding once per occurrence of a repeated index.

    Plain ``target[index] += values`` adds only once for a repeated index; this is the
    backward of indexing (``x[idx]``), where each use of an element must add its gradient.
    """
    xp = array_module(target)
    xp.add.at(target, index, values)


# ---------------------------------------------------------------- padding


def _pad_source_index(n_in: int, before: int, after: int, mode: str, xp):
    """For each output position along one axis, the input position it copies from."""
    pos = xp.arange(-before, n_in + after)
    if mode == "replicate":
        return xp.clip(pos, 0, n_in - 1)
    if mode == "circular":  # wrap around: -1 -> n-1, n -> 0
        return pos % n_in
    # reflect (mirror without repeating the edge): -1 -> 1, n -> n-2
    period = 2 * (n_in - 1)
    pos = xp.abs(pos) % period
    return xp.where(pos >= n_in, period - pos, pos)


def pad(x, pad_width: tuple[tuple[int, int], ...], mode: str = "constant", value: float = 0.0):
    """Pad ``x`` by ``pad_width`` ((before, after) per axis).

    ``mode``: "constant" fills with ``value``; "reflect" mirrors without the edge
    (``[1 2 3] -> 2 [1 2 3] 2``); "replicate" repeats the edge (``1 [1 2 3] 3``);
    "circular" wraps around (``3 [1 2 3] 1``).
    """
    xp = array_module(x)
    if mode == "constant":
        return xp.pad(x, pad_width, mode="constant", constant_values=value)
    if mode in ("reflect", "replicate", "circular"):
        out = x
        for axis, (before, after) in enumerate(pad_width):
            if before or after:
                idx = _pad_source_index(x.shape[axis], before, after, mode, xp)
                out = xp.take(out, idx, axis=axis)
        return out
    raise ValueError(
        f"pad mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}"
    )


def pad_backward(grad, x_shape: tuple[int, ...], pad_width, mode: str = "constant"):
    """Gradient of :func:`pad` with respect to its input: ``grad`` has the padded shape.

    Constant padding just crops. Reflect, replicate and circular padding copied some input
    elements several times, so their gradients are summed back (scatter-add per axis).
    """
    xp = array_module(grad)
    if mode == "constant":
        crop = tuple(slice(b, b + n) for (b, _), n in zip(pad_width, x_shape, strict=True))
        return grad[crop]
    out = grad
    for axis, (before, after) in enumerate(pad_width):
        if before or after:
            n = x_shape[axis]
            idx = _pad_source_index(n, before, after, mode, np)  # host ints, small

            def at(k, axis=axis):  # index of slice k along ``axis``
                return (slice(None),) * axis + (k,)

            summed = out[at(slice(before, before + n))].copy()  # the copied interior
            for k in [*range(before), *range(before + n, before + n + after)]:
                summed[at(int(idx[k]))] += out[at(k)]  # each border slice back to its source
            out = summed
    return xp.ascontiguousarray(out)


# ---------------------------------------------------------------- error function

# W. J. Cody's rational Chebyshev approximations to erf and erfc (Math. Comp. 23, 1969;
# the CALERF routine of SPECFUN), accurate to about 1e-16 relative in float64.
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)
_ERFC_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
           2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
           2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERFC_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
           1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
           3.43936767414372164e03, 1.23033935480374942e03)
_ERFC_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
           1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERFC_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
           6.05183413124413191e-2, 2.33520497626869185e-3)
_ONE_OVER_SQRT_PI = 5.6418958354775628695e-1


def _rational(t, num, den, last_num, last_den):
    """Cody's ratio of polynomials in ``t``, by Horner's rule.

    ``num`` holds the numerator's coefficients with the leading one last, ``den`` the
    denominator's (its leading coefficient is 1); ``last_*`` are the constant terms.
    """
    top, bottom = num[-1] * t, t
    for a, b in zip(num[:-1], den, strict=True):
        top, bottom = (top + a) * t, (bottom + b) * t
    return (top + last_num) / (bottom + last_den)


def erf(x):
    """The error function ``erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt``, element-wise.

    NumPy has no erf, so this is W. J. Cody's algorithm, in three intervals of ``|x|``:

    * ``|x| <= 0.46875``: ``erf(x) = x * R1(x^2)``;
    * ``0.46875 < |x| <= 4``: ``erfc(|x|) = exp(-x^2) * R2(|x|)``;
    * ``|x| > 4``: ``erfc(|x|) = exp(-x^2) / |x| * (1/sqrt(pi) - R3(1/x^2) / x^2)``;

    with ``R1, R2, R3`` rational functions, and ``erf = 1 - erfc``. ``exp(-x^2)`` is split as
    ``exp(-s^2) * exp(-(x - s)(x + s))`` with ``s = floor(16 |x|) / 16`` so that rounding
    ``x^2`` costs no accuracy. About 1e-16 relative error in float64; float32 inputs are
    computed in float32 (all three branches are evaluated, then selected).
    """
    xp = array_module(x)
    y = xp.abs(x)
    # each branch sees its inputs clipped to its interval, so none overflows where unused
    u = xp.clip(x, -0.46875, 0.46875)
    small = u * _rational(u * u, (*_ERF_A[:3], _ERF_A[4]), _ERF_B[:3], _ERF_A[3], _ERF_B[3])
    m = xp.minimum(y, 4.0)
    mid = _rational(m, (*_ERFC_C[:7], _ERFC_C[8]), _ERFC_D[:7], _ERFC_C[7], _ERFC_D[7])
    w = xp.clip(y, 4.0, 30.0)  # erfc(30) underflows to 0: nothing is lost by clipping there
    t = 1.0 / (w * w)
    large = (_ONE_OVER_SQRT_PI
             - t * _rational(t, (*_ERFC_P[:4], _ERFC_P[5]), _ERFC_Q[:4], _ERFC_P[4], _ERFC_Q[4])
             ) / w
    v = xp.minimum(y, 30.0)
    s = xp.floor(v * 16.0) / 16.0
    erfc_abs = xp.exp(-s * s) * xp.exp(-(v - s) * (v + s)) * xp.where(y <= 4.0, mid, large)
    big = (0.5 - erfc_abs) + 0.5
    return xp.where(y <= 0.46875, small, xp.where(x < 0, -big, big))


# ---------------------------------------------------------------- select


def where(cond, a, b):
    """``a`` where ``cond`` is true, else ``b``, with broadcasting: ``xp.where``.

    A kernel of its own because NumPy's ``where`` branches per element: on the random
    signs of a layer's activations it ran 20x slower than on sorted ones (numba_cpu.py).
    """
    return array_module(cond, a, b).where(cond, a, b)


def relu(x):
    """``max(x, 0)`` (NaN stays NaN, as in PyTorch)."""
    return array_module(x).maximum(x, 0)


def relu_backward(grad, out):
    """ReLU's gradient from its output: 0 where ``out <= 0`` (exactly where the input was),
    else ``grad`` (a NaN input passes its gradient, as in PyTorch)."""
    return grad * ~(out <= 0)


# ---------------------------------------------------------------- softmax family


def log_softmax(x, axis: int):
    """``x - logsumexp(x, axis)``, computed stably by subtracting the maximum first."""
    xp = array_module(x)
    if x.size == 0:  # nothing to normalize (and no maximum of an empty axis)
        return x.copy()
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def log_softmax_backward(grad, out, axis: int):
    """Gradient of ``out = log_softmax(x)``: ``grad - softmax(x) * sum(grad)``."""
    xp = array_module(grad)
    return grad - xp.exp(out) * grad.sum(axis=axis, keepdims=True)


def softmax(x, axis: int):
    """``exp(x) / sum(exp(x))`` along ``axis``, stable: the maximum is subtracted first."""
    xp = array_module(x)
    if x.size == 0:  # nothing to normalize (and no maximum of an empty axis)
        return x.copy()
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_backward(grad, out, axis: int):
    """Gradient of ``out = softmax(x)``: ``out * (grad - sum(grad * out))``."""
    return out * (grad - (grad * out).sum(axis=axis, keepdims=True))


# ---------------------------------------------------------------- convolution
#
# Geometry arguments, shared by every convolution kernel (all backends):
#   kernel   (kh, kw)                      stride   (sh, sw)          dilation (dh, dw)
#   padding  ((top, bottom), (left, right)) -- zeros added around the input
#   out_size (h_out, w_out) or None        -- None: the usual output size, conv_output_size
#                                             in geometry.py (shared with nn.functional)
# The column matrix of an input x: (N, C, H, W) is ``cols: (C*kh*kw, N*h_out*w_out)`` with
#   cols[(c*kh + i)*kw + j, (n*h_out + y)*w_out + x] = x_padded[n, c, y*sh + i*dh, x*sw + j*dw]
# so that a convolution is one matrix product: weight.reshape(C_out, C*kh*kw) @ cols.


def _conv_out_hw(x_shape, kernel, stride, padding, dilation, out_size) -> tuple[int, int]:
    if out_size is not None:
        return int(out_size[0]), int(out_size[1])
    (pt, pb), (pl, pr) = padding
    return (conv_output_size(x_shape[2], kernel[0], stride[0], pt, pb, dilation[0]),
            conv_output_size(x_shape[3], kernel[1], stride[1], pl, pr, dilation[1]))


def _canvas_hw(x_shape, kernel, stride, padding, dilation, h_out, w_out) -> tuple[int, int]:
    """Size of the zero-padded input that every kernel window of the output fits in."""
    (pt, pb), (pl, pr) = padding
    reach_h = stride[0] * (h_out - 1) + dilation[0] * (kernel[0] - 1) + 1
    reach_w = stride[1] * (w_out - 1) + dilation[1] * (kernel[1] - 1) + 1
    return max(x_shape[2] + pt + pb, reach_h), max(x_shape[3] + pl + pr, reach_w)


def _window(i: int, j: int, kernel, stride, dilation, h_out: int, w_out: int):
    """The strided slices of the padded input that kernel offset (i, j) reads, for every output."""
    rows = slice(i * dilation[0], i * dilation[0] + stride[0] * (h_out - 1) + 1, stride[0])
    cols = slice(j * dilation[1], j * dilation[1] + stride[1] * (w_out - 1) + 1, stride[1])
    return rows, cols


def _zero_pad(x, padding, canvas_hw):
    """``x: (N, C, H, W)`` placed at (top, left) of a zero canvas of size ``canvas_hw``."""
    xp = array_module(x)
    (pt, _), (pl, _) = padding
    out = xp.zeros(x.shape[:2] + tuple(canvas_hw), dtype=x.dtype)
    out[:, :, pt:pt + x.shape[2], pl:pl + x.shape[3]] = x
    return out


def im2col(x, kernel, stride, padding, dilation, out_size=None, out=None):
    """Unfold ``x: (N, C, H, W)`` into ``cols: (C*kh*kw, N*h_out*w_out)`` (layout above).

    One strided copy per kernel offset (i, j): every output position reads the padded
    input at ``(y*sh + i*dh, x*sw + j*dw)``, which is a strided slice. ``out``: an
    optional C-contiguous array of ``cols``' size to write into (a reused workspace).
    """
    xp = array_module(x)
    n, c = x.shape[:2]
    kh, kw = kernel
    h_out, w_out = _conv_out_hw(x.shape, kernel, stride, padding, dilation, out_size)
    xpad = _zero_pad(x, padding, _canvas_hw(x.shape, kernel, stride, padding, dilation,
                                            h_out, w_out))
    xpad = xpad.transpose(1, 0, 2, 3)  # (C, N, H_pad, W_pad): channels first, like the rows
    shape = (c, kh, kw, n, h_out, w_out)
    cols = xp.empty(shape, dtype=x.dtype) if out is None else out.reshape(shape)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xpad[(slice(None), slice(None))
                                 + _window(i, j, kernel, stride, dilation, h_out, w_out)]
    return cols.reshape(c * kh * kw, n * h_out * w_out)


def col2im(cols, x_shape, kernel, stride, padding, dilation, out_size=None):
    """The adjoint of :func:`im2col`: add every column entry back where it was read from.

    ``cols: (C*kh*kw, N*h_out*w_out) -> (N, C, H, W)``; an input pixel read by several
    kernel windows receives the sum of their entries (the gradient of im2col).
    """
    xp = array_module(cols)
    n, c, h, w = x_shape
    kh, kw = kernel
    h_out, w_out = _conv_out_hw(x_shape, kernel, stride, padding, dilation, out_size)
    cols = cols.reshape(c, kh, kw, n, h_out, w_out)
    hc, wc = _canvas_hw(x_shape, kernel, stride, padding, dilation, h_out, w_out)
    xpad = xp.zeros((c, n, hc, wc), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            # within one offset the windows never overlap, so += on the slice is exact
            xpad[(slice(None), slice(None))
                 + _window(i, j, kernel, stride, dilation, h_out, w_out)] += cols[:, i, j]
    (pt, _), (pl, _) = padding
    return xp.ascontiguousarray(xpad[:, :, pt:pt + h, pl:pl + w].transpose(1, 0, 2, 3))


def depthwise_conv2d(x, weight, stride, padding, dilation, out_size=None):
    """Depthwise convolution: each input channel is convolved with its own filters.

    ``x: (N, C, H, W)``, ``weight: (C*M, 1, kh, kw) -> (N, C*M, h_out, w_out)``: output
    channel ``c*M + m`` is input channel ``c`` convolved with filter ``weight[c*M + m]``
    (M is the channel multiplier). It is :func:`grouped_conv2d` with one input channel
    per group; backends may give it kernels of its own.
    """
    return grouped_conv2d(x, weight, stride, padding, dilation, out_size)


def depthwise_conv2d_backward_input(grad, weight, x_shape, stride, padding, dilation):
    """Gradient of :func:`depthwise_conv2d` with respect to ``x``:
    ``grad: (N, C*M, h_out, w_out)``, ``weight: (C*M, 1, kh, kw) -> (N, C, H, W)``."""
    return grouped_conv2d_backward_input(grad, weight, x_shape, stride, padding, dilation)


def depthwise_conv2d_backward_weight(grad, x, kernel, stride, padding, dilation):
    """Gradient of :func:`depthwise_conv2d` with respect to ``weight``:
    ``grad: (N, C*M, h_out, w_out)``, ``x: (N, C, H, W) -> (C*M, 1, kh, kw)``."""
    return grouped_conv2d_backward_weight(grad, x, kernel, stride, padding, dilation,
                                          x.shape[1])


# Grouped convolution, computed directly (no column matrix). With G groups, input channel
# block g*C/G .. (g+1)*C/G feeds output channel block g*O/G .. (g+1)*O/G; the group count
# is read off the shapes, G = C // weight.shape[1] (the weight gradient, which gets no
# weight, takes it as an argument). Axes below: n image, g group, c input channel within
# the group, m output channel within the group, (y, x) output position.


def grouped_conv2d(x, weight, stride, padding, dilation, out_size=None):
    """Grouped convolution, PyTorch's ``conv2d(x, weight, groups=G)``.

    ``x: (N, C, H, W)``, ``weight: (O, C/G, kh, kw) -> (N, O, h_out, w_out)``: output
    channel ``o`` belongs to group ``g = o // (O/G)`` and reads input channels
    ``g*C/G .. (g+1)*C/G``. Summed over the kernel offsets, one shifted slice each,
    contracted with that offset's weights over the channels of each group.
    """
    xp = array_module(x)
    n, c = x.shape[:2]
    o, cg, kh, kw = weight.shape
    groups = c // cg
    kernel = (kh, kw)
    h_out, w_out = _conv_out_hw(x.shape, kernel, stride, padding, dilation, out_size)
    xpad = _zero_pad(x, padding, _canvas_hw(x.shape, kernel, stride, padding, dilation,
                                            h_out, w_out))
    xpad = xpad.reshape(n, groups, cg, *xpad.shape[2:])
    w = weight.reshape(groups, o // groups, cg, kh, kw)
    out = xp.zeros((n, groups, o // groups, h_out, w_out), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            window = xpad[(slice(None),) * 3
                          + _window(i, j, kernel, stride, dilation, h_out, w_out)]
            out += xp.einsum("ngcyx,gmc->ngmyx", window, w[:, :, :, i, j])
    return out.reshape(n, o, h_out, w_out)


def grouped_conv2d_backward_input(grad, weight, x_shape, stride, padding, dilation):
    """Gradient of :func:`grouped_conv2d` with respect to ``x``.

    ``grad: (N, O, h_out, w_out)``, ``weight: (O, C/G, kh, kw) -> (N, C, H, W)``: each
    offset's gradient, contracted over the output channels of a group, is added back at
    the shifted slice that offset read.
    """
    xp = array_module(grad)
    n, c = x_shape[:2]
    o, cg, kh, kw = weight.shape
    groups = c // cg
    kernel = (kh, kw)
    h_out, w_out = grad.shape[2:]
    g = grad.reshape(n, groups, o // groups, h_out, w_out)
    w = weight.reshape(groups, o // groups, cg, kh, kw)
    hc, wc = _canvas_hw(x_shape, kernel, stride, padding, dilation, h_out, w_out)
    xpad = xp.zeros((n, groups, cg, hc, wc), dtype=grad.dtype)
    for i in range(kh):
        for j in range(kw):
            # within one offset the windows never overlap, so += on the slice is exact
            xpad[(slice(None),) * 3 + _window(i, j, kernel, stride, dilation, h_out, w_out)] \
                += xp.einsum("ngmyx,gmc->ngcyx", g, w[:, :, :, i, j])
    (pt, _), (pl, _) = padding
    xpad = xpad.reshape(n, c, hc, wc)
    return xp.ascontiguousarray(xpad[:, :, pt:pt + x_shape[2], pl:pl + x_shape[3]])


def grouped_conv2d_backward_weight(grad, x, kernel, stride, padding, dilation, groups):
    """Gradient of :func:`grouped_conv2d` with respect to ``weight``.

    ``grad: (N, O, h_out, w_out)``, ``x: (N, C, H, W) -> (O, C/G, kh, kw)``. Unlike the
    other two kernels this one takes ``groups`` (G): no weight is passed to read it from.
    One contraction over the images and output positions per kernel offset.
    """
    xp = array_module(grad)
    n, c = x.shape[:2]
    o, h_out, w_out = grad.shape[1:]
    kh, kw = kernel
    cg, og = c // groups, o // groups
    g = grad.reshape(n, groups, og, h_out, w_out)
    xpad = _zero_pad(x, padding, _canvas_hw(x.shape, kernel, stride, padding, dilation,
                                            h_out, w_out))
    xpad = xpad.reshape(n, groups, cg, *xpad.shape[2:])
    gw = xp.empty((groups, og, cg, kh, kw), dtype=grad.dtype)
    for i in range(kh):
        for j in range(kw):
            window = xpad[(slice(None),) * 3
                          + _window(i, j, kernel, stride, dilation, h_out, w_out)]
            gw[:, :, :, i, j] = xp.einsum("ngmyx,ngcyx->gmc", g, window)
    return gw.reshape(o, cg, kh, kw)


# ---------------------------------------------------------------- Winograd F(2x2, 3x3)
# A 3x3 stride-1 convolution computed tile by tile (Lavin & Gray, "Fast Algorithms for
# Convolutional Neural Networks", 2016). Each 2x2 output tile Y reads a 4x4 input tile d,
# and with the filter g (3x3):
#
#     Y = A^T [ (G g G^T) * (B^T d B) ] A          (* is the elementwise product)
#
# The 16 products of the bracket replace the 36 multiply-adds of the direct 2x2 x 3x3
# window: 2.25x fewer. Summed over the input channels, the bracket becomes 16 GEMMs
# (one per tile element xi): M[xi] (C_out, T) = U[xi] (C_out, C_in) @ V[xi] (C_in, T),
# with U = G g G^T and V = B^T d B for all T tiles. The kernels below are the input and
# output transforms and their adjoints; nn/functional/winograd.py does the GEMMs.
#
# Tiles: output tile (ty, tx) covers output rows 2ty, 2ty+1 and reads rows 2ty .. 2ty+3
# of the zero-padded input; with th x tw tiles the padded "canvas" is (2th+2) x (2tw+2),
# and outputs past (H_out, W_out) are computed and dropped. Tile t = (n*th + ty)*tw + tx.
# (th, tw) = winograd_tiles(out_hw), in geometry.py.

WINOGRAD_BT = ((1, 0, -1, 0),  # B^T: input tile d (4x4) -> V = B^T d B
               (0, 1, 1, 0),
               (0, -1, 1, 0),
               (0, 1, 0, -1))
WINOGRAD_G = ((1.0, 0.0, 0.0),  # G: filter g (3x3) -> U = G g G^T
              (0.5, 0.5, 0.5),
              (0.5, -0.5, 0.5),
              (0.0, 0.0, 1.0))
WINOGRAD_AT = ((1, 1, 1, 0),  # A^T: M (4x4) -> output tile Y = A^T M A (2x2)
               (0, 1, -1, -1))


def _both_sides(matrix, tiles, xp):
    """``matrix @ tile @ matrix^T`` for every tile; ``tiles: (a, b, ...) -> (k, l, ...)``."""
    m = xp.asarray(matrix, dtype=tiles.dtype)
    return xp.einsum("lb,kb...->kl...", m, xp.einsum("ka,ab...->kb...", m, tiles))


def _fill(out, result, xp):
    """``result`` copied into ``out`` (reshaped to fit) if given, else made contiguous."""
    if out is None:
        return xp.ascontiguousarray(result)
    out = out.reshape(result.shape)
    out[...] = result
    return out


def _g_kron_g(dtype, xp):
    """``G (x) G`` (16 x 9): ``vec(G g G^T) = (G (x) G) vec(g)`` for a 3x3 filter ``g``,
    so all the filters transform in one matrix product."""
    g = xp.asarray(WINOGRAD_G, dtype=dtype)
    return xp.kron(g, g)


def winograd_filter_transform(weight):
    """``weight: (C_out, C_in, 3, 3) -> U: (16, C_out, C_in)``, ``U[4a+b] = (G g G^T)[a, b]``."""
    xp = array_module(weight)
    o, c = weight.shape[:2]
    return (_g_kron_g(weight.dtype, xp) @ weight.reshape(o * c, 9).T).reshape(16, o, c)


def winograd_filter_transform_backward(du):
    """The adjoint of :func:`winograd_filter_transform`: ``dU: (16, C_out, C_in) -> dW:
    (C_out, C_in, 3, 3)``, ``dW = G^T dU G``."""
    xp = array_module(du)
    o, c = du.shape[1:]
    return (du.reshape(16, o * c).T @ _g_kron_g(du.dtype, xp)).reshape(o, c, 3, 3)


def winograd_input_transform(x, padding, out_hw, out=None):
    """``x: (N, C, H, W) -> V: (16, C, T)``, ``V[4a+b, c, t] = (B^T d B)[a, b]`` for the
    4x4 input tile ``d`` of every output tile ``t`` (``T = N*th*tw``).

    ``padding`` is ((top, bottom), (left, right)) as in im2col; ``out_hw`` the output size
    ``(H + top + bottom - 2, W + left + right - 2)``; ``out``: an optional array to fill.
    """
    xp = array_module(x)
    n, c = x.shape[:2]
    th, tw = winograd_tiles(out_hw)
    canvas = _zero_pad(x, padding, (2 * th + 2, 2 * tw + 2))
    # d[a, b, n, c, ty, tx] = canvas[n, c, 2ty + a, 2tx + b]: 16 strided slices
    d = xp.stack([xp.stack([canvas[:, :, a:a + 2 * th:2, b:b + 2 * tw:2] for b in range(4)])
                  for a in range(4)])
    v = _both_sides(WINOGRAD_BT, d, xp)  # (4, 4, N, C, th, tw)
    return _fill(out, v.transpose(0, 1, 3, 2, 4, 5).reshape(16, c, n * th * tw), xp)


def winograd_input_transform_backward(dv, x_shape, padding, out_hw, out=None):
    """The adjoint of :func:`winograd_input_transform`: ``dV: (16, C, T) -> dx: x_shape``.

    Every tile's ``B dV B^T`` (4x4) is added back where the tile was read from; tiles
    overlap by two rows and columns, so pixels receive the sum of up to four tiles.
    ``out``: an optional array of ``x_shape`` to fill.
    """
    xp = array_module(dv)
    n, c, h, w = x_shape
    th, tw = winograd_tiles(out_hw)
    dv = dv.reshape(4, 4, c, n, th, tw).transpose(0, 1, 3, 2, 4, 5)  # (4, 4, N, C, th, tw)
    bt = xp.asarray(WINOGRAD_BT, dtype=dv.dtype)
    dd = _both_sides(bt.T, dv, xp)  # B dV B^T: the transpose of B^T . B
    canvas = xp.zeros((n, c, 2 * th + 2, 2 * tw + 2), dtype=dv.dtype)
    for a in range(4):
        for b in range(4):  # within one (a, b) the tiles' pixels never overlap: += is exact
            canvas[:, :, a:a + 2 * th:2, b:b + 2 * tw:2] += dd[a, b]
    (pt, _), (pl, _) = padding
    return _fill(out, canvas[:, :, pt:pt + h, pl:pl + w], xp)


def winograd_output_transform(m, n_batch: int, out_hw, out=None):
    """``M: (16, C_out, T) -> y: (N, C_out, H_out, W_out)``, each tile ``Y = A^T M A`` (2x2).
    ``out``: an optional array of y's shape to fill."""
    xp = array_module(m)
    th, tw = winograd_tiles(out_hw)
    k = m.shape[1]
    y = _both_sides(WINOGRAD_AT, m.reshape(4, 4, k, n_batch, th, tw), xp)  # (2, 2, K, N, th, tw)
    # y[n, k, 2ty + i, 2tx + j] = tile (i, j) of tile (ty, tx)
    y = y.transpose(3, 2, 4, 0, 5, 1).reshape(n_batch, k, 2 * th, 2 * tw)
    return _fill(out, y[:, :, :out_hw[0], :out_hw[1]], xp)


def winograd_output_transform_backward(grad, out=None):
    """The adjoint of :func:`winograd_output_transform`: ``dy: (N, C_out, H_out, W_out) ->
    dM: (16, C_out, T)``, each tile ``dM = A dY A^T`` (dY zero-padded to whole tiles).
    ``out``: an optional array to fill."""
    xp = array_module(grad)
    n, k, h_out, w_out = grad.shape
    th, tw = winograd_tiles((h_out, w_out))
    g = xp.zeros((n, k, 2 * th, 2 * tw), dtype=grad.dtype)
    g[:, :, :h_out, :w_out] = grad
    g = g.reshape(n, k, th, 2, tw, 2).transpose(3, 5, 1, 0, 2, 4)  # (2, 2, K, N, th, tw)
    at = xp.asarray(WINOGRAD_AT, dtype=grad.dtype)
    return _fill(out, _both_sides(at.T, g, xp).reshape(16, k, n * th * tw), xp)


# ---------------------------------------------------------------- upsampling


def upsample_nearest(x, src_h, src_w):
    """Nearest-neighbour resampling, a gather: ``out[n, c, i, j] = x[n, c, src_h[i], src_w[j]]``.

    x: (N, C, H, W); src_h: (H_out,) and src_w: (W_out,) integer source rows and columns
    -> (N, C, H_out, W_out).
    """
    return x[:, :, src_h[:, None], src_w[None, :]]


def _sum_runs(grad, src, n_in: int, axis: int):
    """Sum ``grad`` along ``axis`` into ``n_in`` slots: slot ``src[i]`` gets ``grad[..., i, ...]``.

    ``src`` is sorted (nearest resizing never goes backwards), so the positions copied
    from one input pixel form a run; ``add.reduceat`` sums each run in one pass.
    """
    xp = array_module(grad)
    first = xp.concatenate([xp.ones(1, dtype=bool), src[1:] != src[:-1]])
    starts = xp.flatnonzero(first)  # where each run begins
    shape = list(grad.shape)
    shape[axis] = n_in
    out = xp.zeros(shape, dtype=grad.dtype)  # input pixels no output copied keep 0
    index = [slice(None)] * grad.ndim
    index[axis] = src[starts]
    out[tuple(index)] = xp.add.reduceat(grad, starts, axis=axis)
    return out


def upsample_nearest_backward(grad, in_hw: tuple[int, int], src_h, src_w):
    """Gradient of :func:`upsample_nearest`: each output gradient is added to its source pixel.

    grad: (N, C, H_out, W_out) -> (N, C, H, W) with ``in_hw = (H, W)``. A pixel copied k
    times receives the sum of k gradients: summed along W, then along H.
    """
    h, w = in_hw
    return _sum_runs(_sum_runs(grad, src_w, w, axis=3), src_h, h, axis=2)


def upsample_linear(x, a_h, a_w):
    """Separable linear resampling by interpolation matrices: ``out = a_h @ x @ a_w.T`` per plane.

    x: (N, C, H, W); a_h: (H_out, H) and a_w: (W_out, W), row i holding the weights that
    output position i gives the input positions (at most two non-zeros, summing to 1);
    ``None`` leaves that axis as it is. -> (N, C, H_out, W_out).
    """
    if a_h is None and a_w is None:
        return x.copy()
    n, c, h, w = x.shape
    if a_w is not None:  # along W: one GEMM over all rows of all planes
        x = (x.reshape(n * c * h, w) @ a_w.T).reshape(n, c, h, a_w.shape[0])
    if a_h is not None:  # along H: one (H_out, H) @ (H, W_out) product per plane
        x = a_h @ x
    return x


def upsample_linear_backward(grad, a_h, a_w):
    """Gradient of :func:`upsample_linear`: the transposed matrices, ``a_h.T @ grad @ a_w``.

    grad: (N, C, H_out, W_out) -> (N, C, H, W).
    """
    if a_h is None and a_w is None:
        return grad.copy()
    if a_h is not None:
        grad = a_h.T @ grad
    n, c, h, w_out = grad.shape
    if a_w is not None:
        grad = (grad.reshape(n * c * h, w_out) @ a_w).reshape(n, c, h, a_w.shape[1])
    return grad


# ---- pooling
#
# Geometry arguments shared by the pooling kernels (all backends), each a pair (rows, cols):
#   kernel (kh, kw)   stride (sh, sw)   padding (ph, pw)   dilation (dh, dw)
#   out_hw (h_out, w_out): computed once by nn.functional.pooling (it knows ceil_mode).
# Output cell (y, x) reads the input rows y*sh - ph + i*dh (i < kh) and the columns
# x*sw - pw + j*dw (j < kw); positions outside the input are padding. Indices of maxima
# are flat positions h*W + w inside each (n, c) plane, as in PyTorch.


def _pool_canvas(x, padding, reach_hw, fill):
    """``x: (N, C, H, W)`` at (ph, pw) of a canvas filled with ``fill``, big enough for
    every window: ``reach_hw`` is how far the last window reaches, padding included."""
    xp = array_module(x)
    n, c, h, w = x.shape
    ph, pw = padding
    canvas = xp.full((n, c, max(h + 2 * ph, reach_hw[0]), max(w + 2 * pw, reach_hw[1])),
                     fill, dtype=x.dtype)
    canvas[:, :, ph:ph + h, pw:pw + w] = x
    return canvas


def _pool_reach(kernel, stride, dilation, out_hw):
    """Extent of the padded input that the windows of an ``out_hw`` output cover."""
    return tuple(s * (o - 1) + d * (k - 1) + 1
                 for k, s, d, o in zip(kernel, stride, dilation, out_hw, strict=True))


def _pool_offset_view(i, j, stride_dilation, out_hw):
    """Slices of the padded input that kernel offset (i, j) reads, one cell per output."""
    (sh, sw), (dh, dw) = stride_dilation
    h_out, w_out = out_hw
    return (slice(None), slice(None),
            slice(i * dh, i * dh + sh * (h_out - 1) + 1, sh),
            slice(j * dw, j * dw + sw * (w_out - 1) + 1, sw))


def _first_valid(starts, dilation: int):
    """First in-range position of each window start: start, or start + a multiple of dilation."""
    xp = array_module(starts)
    return xp.where(starts < 0, starts + ((-starts + dilation - 1) // dilation) * dilation, starts)


def max_pool2d(x, kernel, stride, padding, dilation, out_hw):
    """Max over each window: ``x: (N, C, H, W) -> out, indices: (N, C, h_out, w_out)``.

    Padding counts as -inf, so it never wins. Ties keep the first maximum in row-major
    window order, and NaN wins over everything, as PyTorch's CPU kernel does. Loops over
    the kh*kw kernel offsets; each one is a strided view of the -inf padded input.
    """
    xp = array_module(x)
    h, w = x.shape[2:]
    canvas = _pool_canvas(x, padding, _pool_reach(kernel, stride, dilation, out_hw), -xp.inf)
    row0 = xp.arange(out_hw[0]) * stride[0] - padding[0]  # top row of each window
    col0 = xp.arange(out_hw[1]) * stride[1] - padding[1]
    best = xp.full(x.shape[:2] + tuple(out_hw), -xp.inf, dtype=x.dtype)
    # a window that holds only -inf reports its first in-range cell, as PyTorch does
    first = _first_valid(row0, dilation[0])[:, None] * w + _first_valid(col0, dilation[1])
    index = xp.broadcast_to(first, best.shape).astype(xp.int64)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            v = canvas[_pool_offset_view(i, j, (stride, dilation), out_hw)]
            better = (v > best) | xp.isnan(v)
            flat = (row0 + i * dilation[0])[:, None] * w + (col0 + j * dilation[1])
            best = xp.where(better, v, best)
            index = xp.where(better, flat, index)
    return best, index


def max_pool2d_backward(grad, indices, in_hw):
    """Gradient of max pooling (and of adaptive max pooling): each output's gradient is
    added to the input cell its index names. ``grad, indices: (N, C, h_out, w_out) ->
    (N, C, H, W)``; overlapping windows may name one cell twice: the gradients add up."""
    xp = array_module(grad)
    n, c = grad.shape[:2]
    plane = in_hw[0] * in_hw[1]
    flat = (xp.arange(n * c).reshape(n, c, 1, 1) * plane + indices).ravel()
    dx = xp.bincount(flat, weights=grad.ravel(), minlength=n * c * plane)
    return dx.astype(grad.dtype).reshape((n, c) + tuple(in_hw))


def _avg_pool_divisor(in_hw, kernel, stride, padding, out_hw, count_include_pad,
                      divisor_override, xp):
    """What each output of average pooling is divided by, ``(h_out, w_out)``, PyTorch's rule:
    the window clipped to the padded input (count_include_pad) or to the input itself."""
    if divisor_override:
        return xp.asarray(float(divisor_override))
    sizes = []
    for n_in, k, s, p, n_out in zip(in_hw, kernel, stride, padding, out_hw, strict=True):
        start = xp.arange(n_out) * s - p
        end = xp.minimum(start + k, n_in + p)  # a ceil_mode window may hang off the padding
        if not count_include_pad:
            start, end = xp.maximum(start, 0), xp.minimum(end, n_in)
        sizes.append(end - start)
    return sizes[0][:, None] * sizes[1][None, :]


def avg_pool2d(x, kernel, stride, padding, out_hw, count_include_pad=True, divisor_override=None):
    """Mean over each window: ``x: (N, C, H, W) -> (N, C, h_out, w_out)``.

    Sums one strided view of the zero-padded input per kernel offset, then divides by
    PyTorch's divisor (see ``_avg_pool_divisor``).
    """
    xp = array_module(x)
    one = (1, 1)
    canvas = _pool_canvas(x, padding, _pool_reach(kernel, stride, one, out_hw), 0)
    total = xp.zeros(x.shape[:2] + tuple(out_hw), dtype=x.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            total += canvas[_pool_offset_view(i, j, (stride, one), out_hw)]
    divisor = _avg_pool_divisor(x.shape[2:], kernel, stride, padding, out_hw,
                                count_include_pad, divisor_override, xp)
    return total / divisor.astype(x.dtype)


def avg_pool2d_backward(grad, in_hw, kernel, stride, padding, count_include_pad=True,
                        divisor_override=None):
    """Gradient of :func:`avg_pool2d`: every cell of a window receives grad / divisor.
    ``grad: (N, C, h_out, w_out) -> (N, C, H, W)``."""
    xp = array_module(grad)
    out_hw = grad.shape[2:]
    one = (1, 1)
    divisor = _avg_pool_divisor(in_hw, kernel, stride, padding, out_hw,
                                count_include_pad, divisor_override, xp)
    g = grad / divisor.astype(grad.dtype)
    reach = _pool_reach(kernel, stride, one, out_hw)
    (ph, pw), (h, w) = padding, in_hw
    canvas = xp.zeros(grad.shape[:2] + (max(h + 2 * ph, reach[0]), max(w + 2 * pw, reach[1])),
                      dtype=grad.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            # within one offset the windows never overlap, so += on the view is exact
            canvas[_pool_offset_view(i, j, (stride, one), out_hw)] += g
    return xp.ascontiguousarray(canvas[:, :, ph:ph + h, pw:pw + w])


def adaptive_pool_bins(n_in: int, n_out: int, xp):
    """PyTorch's adaptive bins along one axis: bin i is ``[floor(i*n_in/n_out),
    ceil((i+1)*n_in/n_out))``. Returns (starts, ends) as int64 arrays of length ``n_out``."""
    i = xp.arange(n_out)
    return (i * n_in) // n_out, ((i + 1) * n_in + n_out - 1) // n_out


def _adaptive_avg_matrix(n_in: int, n_out: int, dtype, xp):
    """``(n_out, n_in)`` matrix whose row i averages bin i: 1/len(bin) inside it, 0 outside."""
    starts, ends = adaptive_pool_bins(n_in, n_out, xp)
    pos = xp.arange(n_in)
    inside = (pos[None, :] >= starts[:, None]) & (pos[None, :] < ends[:, None])
    return inside.astype(dtype) / (ends - starts).astype(dtype)[:, None]


def adaptive_avg_pool2d(x, out_hw):
    """Average over PyTorch's adaptive bins: ``x: (N, C, H, W) -> (N, C, h_out, w_out)``.

    The operation is linear and separable: ``out = A_h @ x @ A_w.T`` per plane, with the
    bin-averaging matrices of :func:`_adaptive_avg_matrix`.
    """
    xp = array_module(x)
    a_h = _adaptive_avg_matrix(x.shape[2], out_hw[0], x.dtype, xp)
    a_w = _adaptive_avg_matrix(x.shape[3], out_hw[1], x.dtype, xp)
    return xp.ascontiguousarray(a_h @ x @ a_w.T)


def adaptive_avg_pool2d_backward(grad, in_hw):
    """Gradient of :func:`adaptive_avg_pool2d`: the transposed matrices, ``A_h.T @ grad @ A_w``."""
    xp = array_module(grad)
    a_h = _adaptive_avg_matrix(in_hw[0], grad.shape[2], grad.dtype, xp)
    a_w = _adaptive_avg_matrix(in_hw[1], grad.shape[3], grad.dtype, xp)
    return xp.ascontiguousarray(a_h.T @ grad @ a_w)


def adaptive_max_pool2d(x, out_hw):
    """Max over PyTorch's adaptive bins: ``x: (N, C, H, W) -> out, indices: (N, C, h_out, w_out)``.

    Loops over offsets inside the largest bin; offset (i, j) of every bin is one gather.
    Ties keep the first maximum and NaN wins, as in :func:`max_pool2d`.
    """
    xp = array_module(x)
    h, w = x.shape[2:]
    (r0, r1), (c0, c1) = adaptive_pool_bins(h, out_hw[0], xp), adaptive_pool_bins(w, out_hw[1], xp)
    best = xp.full(x.shape[:2] + tuple(out_hw), -xp.inf, dtype=x.dtype)
    index = xp.broadcast_to(r0[:, None] * w + c0[None, :], best.shape).astype(xp.int64)
    for i in range(int((r1 - r0).max())):
        rows = r0 + i
        for j in range(int((c1 - c0).max())):
            cols = c0 + j
            inside = (rows < r1)[:, None] & (cols < c1)[None, :]
            v = x[:, :, xp.minimum(rows, h - 1)[:, None], xp.minimum(cols, w - 1)[None, :]]
            better = inside & ((v > best) | xp.isnan(v))
            best = xp.where(better, v, best)
            index = xp.where(better, rows[:, None] * w + cols[None, :], index)
    return best, index


def max_unpool2d(x, indices, out_hw):
    """Put each value back where its max came from (DeconvNet's "switches"), zeros elsewhere.

    ``x, indices: (N, C, h, w) -> (N, C, *out_hw)``. A repeated index keeps the last value.
    """
    xp = array_module(x)
    n, c = x.shape[:2]
    out = xp.zeros((n * c, out_hw[0] * out_hw[1]), dtype=x.dtype)
    out[xp.arange(n * c)[:, None], indices.reshape(n * c, -1)] = x.reshape(n * c, -1)
    return out.reshape((n, c) + tuple(out_hw))


def max_unpool2d_backward(grad, indices):
    """Gradient of :func:`max_unpool2d`: gather ``grad`` at the indices. ``-> indices.shape``."""
    xp = array_module(grad)
    n, c = grad.shape[:2]
    flat = xp.take_along_axis(grad.reshape(n * c, -1), indices.reshape(n * c, -1), axis=1)
    return flat.reshape(indices.shape)


# ---- normalization
#
# Batch, instance, group and layer norm all normalize ``x`` viewed as ``(A, B, L)`` over
# axes 0 and 2, one mean and variance per B: batch norm views (N, C, H, W) as (N, C, H*W);
# instance norm as (1, N*C, H*W); group norm as (1, N*G, C/G*H*W); layer norm as
# (1, N, D). xhat = (x - mean) * invstd with invstd = 1 / sqrt(var + eps).


def batch_norm_stats(x):
    """Mean and biased variance of ``x: (A, B, L)`` over axes 0 and 2: two ``(B,)`` arrays."""
    mean = x.mean(axis=(0, 2))
    centered = x - mean[None, :, None]
    return mean, (centered * centered).mean(axis=(0, 2))


def batch_norm_elemt(x, mean, invstd, weight=None, bias=None):
    """``y = (x - mean) * invstd * weight + bias`` per B, computed as PyTorch does:
    ``y = x * alpha + beta`` with ``alpha = invstd * weight``, ``beta = bias - mean * alpha``.
    ``x: (A, B, L)``, the rest ``(B,)`` (weight/bias None: 1/0)."""
    alpha = invstd if weight is None else invstd * weight
    beta = -mean * alpha if bias is None else bias - mean * alpha
    return x * alpha[None, :, None] + beta[None, :, None]


def batch_norm_backward_reduce(grad, x, mean, invstd):
    """The two per-B sums normalization backward needs: ``sum(grad)`` and
    ``sum(grad * xhat)`` over axes 0 and 2 (also the gradients of bias and weight)."""
    xhat = (x - mean[None, :, None]) * invstd[None, :, None]
    return grad.sum(axis=(0, 2)), (grad * xhat).sum(axis=(0, 2))


def batch_norm_backward_elemt(grad, x, mean, invstd, weight, sum_dy, sum_dy_xhat):
    """Gradient of normalizing with batch statistics, the compact formula per B (M = A*L):
    ``dx = weight * invstd * (grad - sum_dy / M - xhat * sum_dy_xhat / M)``."""
    m = x.shape[0] * x.shape[2]
    scale = invstd if weight is None else invstd * weight
    xhat = (x - mean[None, :, None]) * invstd[None, :, None]
    return scale[None, :, None] * (
        grad - (sum_dy / m)[None, :, None] - xhat * (sum_dy_xhat / m)[None, :, None])


def _channel_window_sum(a, before: int, size: int):
    """``out[:, c] = sum(a[:, c - before + i] for i < size)`` over axis 1, out of range = 0.
    One slice per window offset (never a loop over channels)."""
    xp = array_module(a)
    c = a.shape[1]
    padded = xp.zeros((a.shape[0], c + size - 1) + a.shape[2:], dtype=a.dtype)
    padded[:, before:before + c] = a
    out = xp.zeros_like(a)
    for i in range(size):
        out += padded[:, i:i + c]
    return out


def local_response_norm(x, size: int, alpha: float, beta: float, k: float):
    """LRN across channels, PyTorch's formula: ``x: (N, C, *) -> out, scale``
    ``scale_c = k + alpha * mean(x_c'^2 for c' in c - size//2 .. c + (size-1)//2)``
    (channels outside 0..C-1 count as 0, and the mean divides by ``size``),
    ``out = x / scale ** beta``."""
    window = _channel_window_sum(x * x, size // 2, size)
    scale = window / size * alpha + k
    return x / scale**beta, scale


def local_response_norm_backward(grad, x, out, scale, size: int, alpha: float, beta: float):
    """Gradient of :func:`local_response_norm`: channel i enters the windows of the
    channels c = i - (size-1)//2 .. i + size//2, so
    ``dx_i = grad_i / scale_i**beta - 2*alpha*beta/size * x_i * sum_c grad_c * out_c / scale_c``."""
    t = grad * out / scale
    return grad / scale**beta - (2.0 * alpha * beta / size) * x * _channel_window_sum(
        t, (size - 1) // 2, size)

# ---------------------------------------------------------------- non-maximum suppression


def nms_order(scores, xp):
    """Indices that sort ``scores`` by decreasing score; equal scores keep their input order."""
    return xp.argsort(-scores, kind="stable")


def nms(boxes, scores, iou_threshold: float):
    """Greedy non-maximum suppression: the indices of the boxes kept, by decreasing score.

    ``boxes: (N, 4)`` as ``(x1, y1, x2, y2)``, ``scores: (N,)`` -> ``keep: (K,)`` int64.
    The steps: sort by score; take the highest box not yet suppressed and keep it; compute
    its IoU with every later box in one vectorized row; suppress those with IoU above
    ``iou_threshold``; repeat with the next box not suppressed. A pair with no area at all
    (IoU 0/0) does not suppress, as in torchvision.
    """
    xp = array_module(boxes)
    order = nms_order(scores, xp)
    b = boxes[order]
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    n = b.shape[0]
    suppressed = xp.zeros(n, dtype=bool)
    keep = []
    for i in range(n):
        if suppressed[i]:
            continue
        keep.append(i)
        # IoU of box i with every later box, in one row
        w = xp.maximum(xp.minimum(x2[i], x2[i + 1:]) - xp.maximum(x1[i], x1[i + 1:]), 0)
        h = xp.maximum(xp.minimum(y2[i], y2[i + 1:]) - xp.maximum(y1[i], y1[i + 1:]), 0)
        inter = w * h
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = inter / (areas[i] + areas[i + 1:] - inter)
        suppressed[i + 1:] |= iou > iou_threshold
    return order[xp.asarray(keep, dtype=xp.int64)].astype(xp.int64)

# ---------------------------------------------------------------- RoI pooling
#
# ``rois: (K, 5)`` rows ``(batch_index, x1, y1, x2, y2)`` in input pixels; ``spatial_scale``
# maps them onto the feature map ``x: (N, C, H, W)``. Both kernels follow torchvision's CPU
# kernels to the rounding: coordinates are computed in the input's dtype.

FLT_MAX = float(np.finfo(np.float32).max)  # torchvision's "no maximum yet" for every dtype


def _roi_round(v, xp):
    """``std::round``: halves away from zero (NumPy's ``round`` takes halves to even)."""
    a = xp.abs(v)
    r = xp.floor(a)
    return xp.copysign(r + (a - r >= 0.5), v)


def roi_pool_bins(rois, n_out: int, size: int, spatial_scale: float, axis: int):
    """Fast R-CNN's bins of every RoI along one axis (0: x, 1: y): ``lo, hi: (K, n_out)``.

    The RoI's ends are rounded to feature cells, ``[start, end]`` inclusive, split into
    ``n_out`` bins of ``length / n_out`` cells; bin ``p`` covers the cells
    ``floor(p * bin) .. ceil((p + 1) * bin) - 1`` after ``start``, clipped to ``[0, size)``.
    """
    xp = array_module(rois)
    dtype = rois.dtype.type
    start = _roi_round(rois[:, 1 + axis] * dtype(spatial_scale), xp).astype(xp.int64)
    end = _roi_round(rois[:, 3 + axis] * dtype(spatial_scale), xp).astype(xp.int64)
    length = xp.maximum(end - start + 1, 1)
    bin_size = length.astype(rois.dtype) / dtype(n_out)
    p = xp.arange(n_out, dtype=rois.dtype)
    lo = xp.floor(p * bin_size[:, None]).astype(xp.int64) + start[:, None]
    hi = xp.ceil((p + 1) * bin_size[:, None]).astype(xp.int64) + start[:, None]
    return xp.clip(lo, 0, size), xp.clip(hi, 0, size)


def roi_pool(x, rois, output_size: tuple[int, int], spatial_scale: float):
    """Fast R-CNN's RoI max pooling: ``x: (N, C, H, W), rois: (K, 5) -> out, argmax:
    (K, C, oh, ow)``.

    Each bin's output is the maximum of its cells (the first one in row-major order among
    equal maxima); ``argmax`` is its flat position ``h * W + w`` in the (n, c) plane, -1
    with output 0 for an empty bin (a RoI hanging off the map). Loops over RoIs and bins;
    each window's maximum is taken over all channels at once.
    """
    xp = array_module(x)
    k_rois, c = rois.shape[0], x.shape[1]
    h, w = x.shape[2:]
    oh, ow = output_size
    out = xp.zeros((k_rois, c, oh, ow), dtype=x.dtype)
    argmax = xp.full((k_rois, c, oh, ow), -1, dtype=xp.int64)
    if k_rois == 0:
        return out, argmax
    h_lo, h_hi = (a.tolist() for a in roi_pool_bins(rois, oh, h, spatial_scale, axis=1))
    w_lo, w_hi = (a.tolist() for a in roi_pool_bins(rois, ow, w, spatial_scale, axis=0))
    batch = rois[:, 0].astype(xp.int64).tolist()
    for k in range(k_rois):
        for p in range(oh):
            for q in range(ow):
                r0, r1, c0, c1 = h_lo[k][p], h_hi[k][p], w_lo[k][q], w_hi[k][q]
                if r1 <= r0 or c1 <= c0:
                    continue  # an empty bin: 0, argmax -1
                window = x[batch[k], :, r0:r1, c0:c1].reshape(c, -1)
                i = xp.argmax(window, axis=1)
                best = window[xp.arange(c), i]
                wins = best > -FLT_MAX  # torchvision starts from -FLT_MAX with a strict >
                out[k, :, p, q] = xp.where(wins, best, -FLT_MAX)
                flat = (r0 + i // (c1 - c0)) * w + c0 + i % (c1 - c0)
                argmax[k, :, p, q] = xp.where(wins, flat, -1)
    return out, argmax


def roi_pool_backward(grad, argmax, rois, x_shape):
    """Gradient of :func:`roi_pool`: each bin's gradient goes to the cell its argmax names
    (nothing for an empty bin). ``grad, argmax: (K, C, oh, ow) -> (N, C, H, W)``."""
    xp = array_module(grad)
    n, c, h, w = x_shape
    batch = rois[:, 0].astype(xp.int64)
    plane = (batch[:, None] * c + xp.arange(c)) * (h * w)  # (K, C): start of each plane
    hit = argmax >= 0
    flat = (plane[:, :, None, None] + argmax)[hit]
    dx = xp.bincount(flat, weights=grad[hit], minlength=n * c * h * w)
    return dx.astype(grad.dtype).reshape(x_shape)


def roi_align_axis(rois, n_out: int, size: int, spatial_scale: float, sampling_ratio: int,
                   aligned: bool, axis: int):
    """Mask R-CNN's RoIAlign along one axis (0: x, 1: y): ``weights: (K, n_out, size)`` and
    the number of samples per bin ``grid: (K,)``.

    Each RoI's extent ``[start, end]`` (shifted by half a cell when ``aligned``; at least
    one cell long when not) is split into ``n_out`` bins; each bin takes ``grid`` evenly
    spaced samples (``sampling_ratio``, or ``ceil(bin size)`` when it is <= 0). A sample at
    ``y`` reads cells ``floor(y)`` and ``floor(y) + 1`` with weights ``1 - frac``, ``frac``
    (clamped at the edges; 0 beyond one cell outside the map). ``weights[k, p]`` sums the
    weights of bin ``p``'s samples. Bilinear interpolation is separable, so RoIAlign of one
    RoI is ``weights_y @ x[n] @ weights_x^T / (grid_y * grid_x)``.
    """
    xp = array_module(rois)
    dtype = rois.dtype.type
    offset = dtype(0.5 if aligned else 0.0)
    start = rois[:, 1 + axis] * dtype(spatial_scale) - offset
    end = rois[:, 3 + axis] * dtype(spatial_scale) - offset
    length = end - start
    if not aligned:
        length = xp.maximum(length, dtype(1))
    bin_size = length / dtype(n_out)
    k_rois = rois.shape[0]
    if sampling_ratio > 0:
        grid = xp.full(k_rois, sampling_ratio, dtype=xp.int64)
    else:
        grid = xp.ceil(bin_size).astype(xp.int64)
    g_max = int(grid.max()) if k_rois else 0
    # sample i of bin p: start + p * bin + (i + 0.5) * bin / grid, shape (K, n_out, g_max)
    p = xp.arange(n_out, dtype=rois.dtype)
    i = xp.arange(g_max, dtype=rois.dtype) + dtype(0.5)
    y = ((start[:, None] + p * bin_size[:, None])[:, :, None]
         + (i * bin_size[:, None] / xp.maximum(grid, 1)[:, None].astype(rois.dtype))[:, None, :])
    valid = (y >= -1) & (y <= size) & (xp.arange(g_max) < grid[:, None, None])
    y = xp.maximum(y, 0)
    low = y.astype(xp.int64)  # floor: y >= 0
    edge = low >= size - 1
    low = xp.where(edge, size - 1, low)
    high = xp.where(edge, size - 1, low + 1)
    frac = xp.where(edge, dtype(0), y - low.astype(rois.dtype))
    row = (xp.arange(k_rois)[:, None] * n_out + xp.arange(n_out))[:, :, None] * size
    weights = xp.bincount(
        xp.concatenate([(row + low)[valid], (row + high)[valid]]),
        weights=xp.concatenate([(1 - frac)[valid], frac[valid]]),
        minlength=k_rois * n_out * size)
    return weights.astype(rois.dtype).reshape(k_rois, n_out, size), grid


def roi_align_weights(rois, output_size, x_shape, spatial_scale, sampling_ratio, aligned):
    """Both axes' weights ``wy: (K, oh, H)``, ``wx: (K, ow, W)`` and each RoI's sample count
    ``max(grid_y * grid_x, 1)``, ``(K,)``: what every backend's RoIAlign computes from."""
    wy, gy = roi_align_axis(rois, output_size[0], x_shape[2], spatial_scale, sampling_ratio,
                            aligned, axis=1)
    wx, gx = roi_align_axis(rois, output_size[1], x_shape[3], spatial_scale, sampling_ratio,
                            aligned, axis=0)
    return wy, wx, array_module(rois).maximum(gy * gx, 1).astype(rois.dtype)


def roi_align_support(weights):
    """First and one-past-last cell with a nonzero weight of each row of ``weights: (K, n, S)``,
    ``lo, hi: (K, n)`` int64 (0, 0 for a row without any): a bin's samples read one
    contiguous run of cells, so the compiled kernels visit only that run."""
    xp = array_module(weights)
    nonzero = weights != 0
    anything = nonzero.any(axis=2)
    lo = xp.where(anything, nonzero.argmax(axis=2), 0)
    hi = xp.where(anything, weights.shape[2] - nonzero[:, :, ::-1].argmax(axis=2), 0)
    return lo.astype(xp.int64), hi.astype(xp.int64)


def roi_align(x, rois, output_size: tuple[int, int], spatial_scale: float,
              sampling_ratio: int, aligned: bool):
    """RoIAlign: ``x: (N, C, H, W), rois: (K, 5) -> (K, C, oh, ow)``, the mean of the
    bilinearly interpolated samples of each bin (see :func:`roi_align_axis`). Loops over
    RoIs; each is two matrix products over all channels."""
    xp = array_module(x)
    wy, wx, count = roi_align_weights(rois, output_size, x.shape, spatial_scale,
                                      sampling_ratio, aligned)
    out = xp.empty((rois.shape[0], x.shape[1]) + tuple(output_size), dtype=x.dtype)
    for k, n in enumerate(rois[:, 0].astype(xp.int64).tolist()):
        out[k] = wy[k] @ x[n] @ wx[k].T  # (oh, H) @ (C, H, W) @ (W, ow) -> (C, oh, ow)
    return out / count[:, None, None, None]


def roi_align_backward(grad, rois, x_shape, spatial_scale: float, sampling_ratio: int,
                       aligned: bool):
    """Gradient of :func:`roi_align` with respect to ``x``: ``grad: (K, C, oh, ow) ->
    (N, C, H, W)``, each RoI's gradient spread back through the same weights."""
    xp = array_module(grad)
    wy, wx, count = roi_align_weights(rois, grad.shape[2:], x_shape, spatial_scale,
                                      sampling_ratio, aligned)
    grad = grad / count[:, None, None, None]
    dx = xp.zeros(x_shape, dtype=grad.dtype)
    for k, n in enumerate(rois[:, 0].astype(xp.int64).tolist()):
        dx[n] += wy[k].T @ grad[k] @ wx[k]  # (H, oh) @ (C, oh, ow) @ (ow, W) -> (C, H, W)
    return dx


KERNELS = {
    "roi_align": roi_align,
    "roi_align_backward": roi_align_backward,
    "roi_pool": roi_pool,
    "roi_pool_backward": roi_pool_backward,
    "nms": nms,
    "max_pool2d": max_pool2d,
    "max_pool2d_backward": max_pool2d_backward,
    "avg_pool2d": avg_pool2d,
    "avg_pool2d_backward": avg_pool2d_backward,
    "adaptive_avg_pool2d": adaptive_avg_pool2d,
    "adaptive_avg_pool2d_backward": adaptive_avg_pool2d_backward,
    "adaptive_max_pool2d": adaptive_max_pool2d,
    "max_unpool2d": max_unpool2d,
    "max_unpool2d_backward": max_unpool2d_backward,
    "batch_norm_stats": batch_norm_stats,
    "batch_norm_elemt": batch_norm_elemt,
    "batch_norm_backward_reduce": batch_norm_backward_reduce,
    "batch_norm_backward_elemt": batch_norm_backward_elemt,
    "local_response_norm": local_response_norm,
    "local_response_norm_backward": local_response_norm_backward,
    "index_add": index_add,
    "where": where,
    "relu": relu,
    "relu_backward": relu_backward,
    "im2col": im2col,
    "col2im": col2im,
    "depthwise_conv2d": depthwise_conv2d,
    "depthwise_conv2d_backward_input": depthwise_conv2d_backward_input,
    "depthwise_conv2d_backward_weight": depthwise_conv2d_backward_weight,
    "grouped_conv2d": grouped_conv2d,
    "grouped_conv2d_backward_input": grouped_conv2d_backward_input,
    "grouped_conv2d_backward_weight": grouped_conv2d_backward_weight,
    "winograd_filter_transform": winograd_filter_transform,
    "winograd_filter_transform_backward": winograd_filter_transform_backward,
    "winograd_input_transform": winograd_input_transform,
    "winograd_input_transform_backward": winograd_input_transform_backward,
    "winograd_output_transform": winograd_output_transform,
    "winograd_output_transform_backward": winograd_output_transform_backward,
    "pad": pad,
    "pad_backward": pad_backward,
    "erf": erf,
    "log_softmax": log_softmax,
    "log_softmax_backward": log_softmax_backward,
    "softmax": softmax,
    "softmax_backward": softmax_backward,
    "upsample_nearest": upsample_nearest,
    "upsample_nearest_backward": upsample_nearest_backward,
    "upsample_linear": upsample_linear,
    "upsample_linear_backward": upsample_linear_backward,
}
