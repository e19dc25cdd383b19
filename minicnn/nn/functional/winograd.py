"""Winograd convolution F(2x2, 3x3): a 3x3 stride-1 convolution with 2.25x fewer multiplies.

Lavin & Gray ("Fast Algorithms for Convolutional Neural Networks", 2016) compute each
2x2 output tile ``Y`` of a 3x3 convolution from its 4x4 input tile ``d`` and the filter
``g`` as ``Y = A^T [(G g G^T) * (B^T d B)] A`` (``*`` elementwise; the matrices and the
transform kernels are in backend/reference.py, "Winograd F(2x2, 3x3)"). Summed over the
input channels, the bracket turns the whole convolution into 16 GEMMs, one per element
``xi`` of the 4x4 transformed tile::

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
from minicnn.backend.reference import (
    winograd_filter_transform,
    winograd_filter_transform_backward,
    winograd_tiles,
)
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


def forward(x, weight, padding, out_hw):
    """``x: (N, C_in, H, W)``, ``weight: (C_out, C_in, 3, 3) -> (y, U, V)``.

    ``y: (N, C_out, H_out, W_out)``; ``U: (16, C_out, C_in)`` and ``V: (16, C_in, T)`` are
    the transformed filters and input, which backward needs. ``padding`` is
    ((top, bottom), (left, right)).
    """
    backend = backend_of(x)
    xp = backend.xp
    n, c = x.shape[:2]
    th, tw = winograd_tiles(out_hw)
    v = WORKSPACE.empty((16, c, n * th * tw), x.dtype, xp)
    v = backend.winograd_input_transform(x, padding, out_hw, out=v)
    u = winograd_filter_transform(weight)  # (16, C_out, C_in)
    m = WORKSPACE.empty((16, weight.shape[0], v.shape[2]), x.dtype, xp)
    xp.matmul(u, v, out=m)  # 16 GEMMs, one per tile element
    return backend.winograd_output_transform(m, n, out_hw), u, v


def backward(grad, u, v, x_shape, padding, need_x: bool = True, need_w: bool = True):
    """Gradients of :func:`forward`: ``grad: (N, C_out, H_out, W_out) -> (dx, dW)``.

    ``u`` and ``v`` are what forward returned (``u`` is needed only for ``dx``, ``v`` only
    for ``dW``); a gradient that is not needed comes back as None.
    """
    backend = backend_of(grad)
    xp = backend.xp
    out_hw = grad.shape[2:]
    th, tw = winograd_tiles(out_hw)
    dm = WORKSPACE.empty((16, grad.shape[1], grad.shape[0] * th * tw), grad.dtype, xp)
    dm = backend.winograd_output_transform_backward(grad, out=dm)  # (16, C_out, T)
    dx = dw = None
    if need_x:
        dv = WORKSPACE.empty((16, x_shape[1], dm.shape[2]), grad.dtype, xp)
        xp.matmul(u.transpose(0, 2, 1), dm, out=dv)  # (16, C_in, T)
        dx = backend.winograd_input_transform_backward(dv, x_shape, padding, out_hw)
    if need_w:
        dw = winograd_filter_transform_backward(xp.matmul(dm, v.transpose(0, 2, 1)))
    return dx, dw
