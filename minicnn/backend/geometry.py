"""Convolution geometry shared by the kernels and by ``nn.functional``: sizes, not data.

Every backend's kernels and the differentiable ops above them must agree on how big an
output is; this small module says it once. It imports nothing (no array module, no
kernels), so ``nn.functional`` can use it without depending on one backend.
"""

from __future__ import annotations

__all__ = ["conv_output_size", "winograd_tiles"]


def conv_output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                     dilation: int) -> int:
    """Output length along one axis: ``(size + pads - dilation*(kernel-1) - 1) // stride + 1``."""
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


def winograd_tiles(out_hw) -> tuple[int, int]:
    """The number of 2x2 output tiles ``(th, tw)`` of Winograd F(2x2, 3x3) that cover an
    output of size ``out_hw = (H_out, W_out)``: ``ceil(H_out / 2), ceil(W_out / 2)``."""
    return (int(out_hw[0]) + 1) // 2, (int(out_hw[1]) + 1) // 2
