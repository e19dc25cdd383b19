"""Convolution geometry shared by the kernels and by ``nn.functional``: sizes, not data.

Every backend's kernels and the differentiable ops above them must agree on how big an
output is; this small module says it once. It imports nothing (no array module, no
kernels), so ``nn.functional`` can use it without depending on one backend.

The bicubic weights live here too: host-side NumPy tables (which input pixels each output
pixel mixes, and how), shared by ``F.interpolate(mode="bicubic")`` and by ``minicnn.data``'s
super-resolution degradation, so both resize with the same bicubic.
"""

from __future__ import annotations

import numpy as np

__all__ = ["conv_output_size", "cubic_coefficients", "cubic_matrix", "cubic_source_weights",
           "winograd_tiles"]


def conv_output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                     dilation: int) -> int:
    """Output length along one axis: ``(size + pads - dilation*(kernel-1) - 1) // stride + 1``."""
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


def winograd_tiles(out_hw) -> tuple[int, int]:
    """The number of 2x2 output tiles ``(th, tw)`` of Winograd F(2x2, 3x3) that cover an
    output of size ``out_hw = (H_out, W_out)``: ``ceil(H_out / 2), ceil(W_out / 2)``."""
    return (int(out_hw[0]) + 1) // 2, (int(out_hw[1]) + 1) // 2


# ---------------------------------------------------------------- bicubic resampling

# PyTorch's (and OpenCV's) cubic-convolution parameter; Keys (1981) and MATLAB use -0.5
CUBIC_A = -0.75


def cubic_coefficients(t: np.ndarray, a: float = CUBIC_A) -> np.ndarray:
    """The four cubic-convolution weights of the neighbours at offsets ``-1, 0, 1, 2`` of a
    sample at fraction ``t`` in ``[0, 1]`` past its left neighbour (Keys 1981).

    ``t: (n,) -> (n, 4)``, in the precision of ``t``; each row sums to 1. The kernel is
    ``(a+2)|x|^3 - (a+3)|x|^2 + 1`` for ``|x| <= 1`` and ``a|x|^3 - 5a|x|^2 + 8a|x| - 4a``
    for ``1 < |x| < 2``, evaluated in PyTorch's Horner order.
    """
    ft = t.dtype.type
    a = ft(a)
    one = ft(1)

    def near(x):  # |x| <= 1
        return ((a + ft(2)) * x - (a + ft(3))) * x * x + one

    def far(x):  # 1 < |x| < 2
        return ((a * x - ft(5) * a) * x + ft(8) * a) * x - ft(4) * a

    return np.stack([far(t + one), near(t), near(one - t), far(one - t + one)], axis=-1)


def cubic_source_weights(n_in: int, n_out: int, scale: float | None, align_corners: bool,
                         dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Where each output position of one axis reads the input, and with what weights, for
    bicubic resampling as PyTorch's ``interpolate(mode="bicubic", antialias=False)``.

    Output ``i`` sits at the source coordinate ``src = i * (n_in - 1) / (n_out - 1)``
    (``align_corners=True``; 0 when ``n_out == 1``) or ``src = ratio * (i + 0.5) - 0.5``
    (``align_corners=False``, not clamped at 0 unlike the linear modes), with ``ratio =
    1 / scale`` when a scale factor is given, else ``n_in / n_out``. It mixes the inputs
    ``floor(src) - 1 .. floor(src) + 2``, each index clamped into ``[0, n_in - 1]`` (the
    border pixel repeats), with :func:`cubic_coefficients` of ``t = src - floor(src)``.

    Returns ``(index, weight)``: ``(n_out, 4)`` int64 and ``(n_out, 4)`` of ``dtype``
    (float32 or float64: coordinates are computed in that precision, as PyTorch does).
    """
    ft = np.float64 if np.dtype(dtype) == np.float64 else np.float32
    dst = np.arange(n_out)
    if align_corners:
        ratio = ft(n_in - 1) / ft(n_out - 1) if n_out > 1 else ft(0)
        src = ratio * dst.astype(ft)
    else:
        ratio = ft(1.0 / scale) if scale else ft(n_in) / ft(n_out)
        src = (ratio * (dst.astype(ft) + ft(0.5)) - ft(0.5)).astype(ft)
    left = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), n_in - 1)
    t = np.clip(src - left.astype(ft), ft(0), ft(1))
    index = np.clip(left[:, None] + np.arange(-1, 3), 0, n_in - 1)
    return index, cubic_coefficients(t)


def cubic_matrix(n_in: int, n_out: int, scale: float | None, align_corners: bool,
                 dtype=np.float32) -> np.ndarray:
    """The ``(n_out, n_in)`` matrix ``A`` of bicubic resampling along one axis: ``y = A @ x``.

    Row ``i`` holds the four weights of :func:`cubic_source_weights` (those of clamped
    border indices added together), so a 2-d image resizes as ``A_h @ image @ A_w.T`` and
    the gradient of that is ``A_h.T @ grad @ A_w``.
    """
    index, weight = cubic_source_weights(n_in, n_out, scale, align_corners, dtype)
    a = np.zeros((n_out, n_in), dtype=weight.dtype)
    np.add.at(a, (np.arange(n_out)[:, None], index), weight)
    return a
