"""Winograd convolution F(2x2, 3x3): a 3x3 stride-1 convolution with 2.25x fewer multiplies.

Lavin & Gray ("Fast Algorithms for Convolutional Neural Networks", 2016) compute each
2x2 output tile ``Y`` of a 3x3 convolution from its 4x4 input tile ``d`` and the filter
``g`` as ``Y = A^T [(G g G^T) * (B^T d B)] A`` (``*`` elementwise; the matrices and the
transform kernels are the backend's, first written in backend/reference.py, "Winograd
F(2x2, 3x3)"). Summed over the input channels, the bracket turns the whole convolution
into 16 GEMMs, one per element ``xi`` of the 4x4 transformed tile::

    U[xi] = (G g G^T)[xi]      (C_out, C_in)   the filters, transformed
    V[xi] = (B^T d B)[xi]      (C_in, T)       all T = N * ceil(H_out/2) * ceil(W_out/2) tiles
    M[xi] = U[xi] @ V[xi]      (C_out, T)
    y     = A^T M A            per tile, cropped to (H_out, W_out)

An output pixel costs 16/4 = 4 multiplies per input channel instead of im2col's 9, so
the GEMMs, most of a convolution's time, shrink 2.25x. ``V`` (4 values per input pixel)
is also smaller than im2col's column matrix (9 per pixel). Backward is the same chain
read backwards: every step is linear, so its gradient is its transpose::

    dM = A dY A^T              per tile (the adjoint of the output transform)
    dV = U^T @ dM              then dx = the adjoint of the input transform (overlap-add)
    dU = dM @ V^T              then dW = G^T dU G

The result equals direct convolution up to rounding (the transforms add at most four
terms, with coefficients 0, +-1 and 1/2). ``conv2d`` uses it for 3x3, stride-1,
dilation-1, ungrouped convolutions on the CPU when :func:`pays` says it is faster;
``set_conv_algorithm`` in conv.py overrides the choice.
"""

from __future__ import annotations

from minicnn.backend import backend_of
from minicnn.backend.geometry import winograd_tiles
from minicnn.nn.functional.workspace import WORKSPACE

__all__ = ["MIN_CHANNELS", "MIN_WORK", "applies", "pays", "forward", "backward"]

# When Winograd is faster than im2col on the CPU. The GEMMs it saves grow with
# C_in * C_out per pixel, the transforms it adds only with C_in + C_out, so small layers
# lose. Measured forward+backward at batch 32 on 2 cores (im2col time / Winograd time):
# 32ch 16x16 and 64ch 8x8 0.8-0.9 (C_in*C_out*H*W = 2^18); 32ch 32x32 1.3, 64ch 16x16 and
# 128ch 8x8 1.05 (2^20); 64ch 56x56, 128ch 28x28 and 256ch 14x14 1.5-1.7.
MIN_CHANNELS = 16
MIN_WORK = 1 << 20  # C_in * C_out * H_out * W_out, per image


def applies(kernel, stride, dilation, groups: int) -> bool:
    """True when F(2x2, 3x3) computes this convolution: 3x3, stride 1, dilation 1, groups 1."""
    return kernel == (3, 3) and stride == (1, 1) and dilation == (1, 1) and groups == 1


def pays(c_in: int, c_out: int, out_hw) -> bool:
    """True when Winograd is expected to beat im2col on the CPU (see ``MIN_WORK``)."""
    return (min(c_in, c_out) >= MIN_CHANNELS
            and c_in * c_out * int(out_hw[0]) * int(out_hw[1]) >= MIN_WORK)


# The work goes in chunks of images: a chunk's transformed tiles (V and M going forward,
# dM and dV going back, 16 * (C_in + C_out) values per tile) are made, multiplied and
# transformed back while they may still be in the CPU's cache, and the temporaries stay
# chunk-sized (on a 64-channel 32x32 layer at batch 32, M, dM and dV would be 32 MB each).
# Measured against one pass over the whole batch: the same speed within the noise of
# these machines (chunks of 8 to 16 MB were 10% faster in some runs, slower in others).
# The chunks' arrays come from the convolution workspace (workspace.py): fresh ones would
# fault their pages in on every call.
CHUNK_BYTES = 16 << 20


def _chunks(n: int, tiles_per_image: int, c_in: int, c_out: int, itemsize: int):
    """``[(n0, n1), ...]``: image ranges whose transformed tiles take about CHUNK_BYTES."""
    per_image = 16 * (c_in + c_out) * tiles_per_image * itemsize
    step = max(1, CHUNK_BYTES // per_image)
    return [(n0, min(n, n0 + step)) for n0 in range(0, n, step)]


def forward(x, weight, padding, out_hw, keep_v: bool = True):
    """``x: (N, C_in, H, W)``, ``weight: (C_out, C_in, 3, 3) -> (y, U, Vs)``.

    ``y: (N, C_out, H_out, W_out)``; ``U: (16, C_out, C_in)`` is the transformed filters
    and ``Vs`` the transformed input, one ``(16, C_in, T_chunk)`` array per chunk of images
    (None unless ``keep_v``): backward needs U for dx and Vs for dW. ``padding`` is
    ((top, bottom), (left, right)).
    """
    backend = backend_of(x)
    xp = backend.xp
    n, c = x.shape[:2]
    o = weight.shape[0]
    th, tw = winograd_tiles(out_hw)
    u = backend.winograd_filter_transform(weight)  # (16, C_out, C_in)
    y = xp.empty((n, o, *out_hw), dtype=x.dtype)
    vs = []
    for n0, n1 in _chunks(n, th * tw, c, o, x.dtype.itemsize):
        t = (n1 - n0) * th * tw
        v = WORKSPACE.empty((16, c, t), x.dtype, xp)
        backend.winograd_input_transform(x[n0:n1], padding, out_hw, out=v)  # (16, C_in, T)
        m = WORKSPACE.empty((16, o, t), x.dtype, xp)
        xp.matmul(u, v, out=m)  # 16 GEMMs, one per tile element: (16, C_out, T)
        backend.winograd_output_transform(m, n1 - n0, out_hw, out=y[n0:n1])
        vs.append(v)
    return y, u, vs if keep_v else None


def backward(grad, u, vs, x_shape, padding, need_x: bool = True, need_w: bool = True):
    """Gradients of :func:`forward`: ``grad: (N, C_out, H_out, W_out) -> (dx, dW)``.

    ``u`` and ``vs`` are what forward returned (``u`` is needed only for ``dx``, ``vs``
    only for ``dW``); a gradient that is not needed comes back as None.
    """
    backend = backend_of(grad)
    xp = backend.xp
    n, o = grad.shape[:2]
    c = x_shape[1]
    out_hw = grad.shape[2:]
    th, tw = winograd_tiles(out_hw)
    dx = xp.empty(x_shape, dtype=grad.dtype) if need_x else None
    du = xp.zeros((16, o, c), dtype=grad.dtype) if need_w else None
    for i, (n0, n1) in enumerate(_chunks(n, th * tw, c, o, grad.dtype.itemsize)):
        t = (n1 - n0) * th * tw
        dm = WORKSPACE.empty((16, o, t), grad.dtype, xp)
        backend.winograd_output_transform_backward(grad[n0:n1], out=dm)  # (16, C_out, T)
        if need_x:
            dv = WORKSPACE.empty((16, c, t), grad.dtype, xp)
            xp.matmul(u.transpose(0, 2, 1), dm, out=dv)  # (16, C_in, T)
            backend.winograd_input_transform_backward(dv, (n1 - n0, *x_shape[1:]), padding,
                                                      out_hw, out=dx[n0:n1])
        if need_w:
            du += xp.matmul(dm, vs[i].transpose(0, 2, 1))  # (16, C_out, C_in)
    return dx, backend.winograd_filter_transform_backward(du) if need_w else None
