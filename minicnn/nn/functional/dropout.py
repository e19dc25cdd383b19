"""Dropout: zero random elements while training, scaling the rest by ``1 / (1 - p)``.

"Inverted" dropout: the survivors are scaled up during training, so the expected value
of every element is unchanged and evaluation needs no rescaling -- it is the identity.

The random mask is drawn from :func:`minicnn.random.generator` on the CPU and then moved
to the input's device, so ``minicnn.manual_seed(s)`` gives the same mask everywhere.
The backward multiplies by the very same mask.
"""

from __future__ import annotations

import numpy as np

from minicnn import random as _random
from minicnn.autograd.function import Function
from minicnn.autograd.tensor import Tensor
from minicnn.backend import to_device


class Dropout(Function):
    """``x * mask`` where ``mask`` holds 0 (dropped) or ``1 / (1 - p)`` (kept).

    ``mask`` may have size-1 dimensions (channel dropout): it broadcasts over them.
    """

    @staticmethod
    def forward(ctx, x, mask):
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask, None


def _check(input, p: float, name: str) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
    if input.dtype.kind != "f":
        raise TypeError(f"{name}: input must be a floating-point tensor, got dtype {input.dtype}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: dropout probability p must be in [0, 1], got {p}")


def _apply_mask(input: Tensor, p: float, mask_shape: tuple[int, ...]) -> Tensor:
    """Draw a keep-mask of ``mask_shape`` (kept with probability ``1 - p``) and apply it."""
    if p == 1.0:  # everything dropped: no randomness needed, and no division by 0
        mask = np.zeros(mask_shape, dtype=input.dtype)
    else:
        keep = _random.generator().random(mask_shape, dtype=np.float32) >= p
        mask = keep.astype(input.dtype) * (1.0 / (1.0 - p))
    return Dropout.apply(input, to_device(mask, input.device))


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p``, scale the others by ``1 / (1 - p)``.

    ``x: (*) -> (*)``. With ``training=False`` or ``p=0`` the input is returned as it is.
    ``inplace`` is accepted for PyTorch compatibility; a new tensor is always returned.
    """
    _check(input, p, "dropout")
    if not training or p == 0 or input.numel() == 0:
        return input
    return _apply_mask(input, p, input.shape)


def _feature_dropout(input: Tensor, p: float, training: bool, spatial: int, name: str) -> Tensor:
    """Drop whole channels: one draw per (sample, channel), shared by all ``spatial`` dims."""
    _check(input, p, name)
    if input.ndim not in (spatial + 1, spatial + 2):
        dims = {1: "L", 2: "H, W", 3: "D, H, W"}[spatial]
        raise ValueError(
            f"{name}: input must be (N, C, {dims}) or unbatched (C, {dims}), got shape "
            f"{input.shape}"
        )
    if not training or p == 0 or input.numel() == 0:
        return input
    channel_dims = input.ndim - spatial
    return _apply_mask(input, p, input.shape[:channel_dims] + (1,) * spatial)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels: ``x: (N, C, L)`` or ``(C, L)``; one draw per channel."""
    return _feature_dropout(input, p, training, 1, "dropout1d")


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole feature maps: ``x: (N, C, H, W)`` or ``(C, H, W)``; one draw per channel.

    A 3-D input is unbatched ``(C, H, W)``, as PyTorch's documentation states (PyTorch
    itself still treats it as ``(N, C, L)``, with a warning that this will change).
    """
    return _feature_dropout(input, p, training, 2, "dropout2d")


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole volumes: ``x: (N, C, D, H, W)`` or ``(C, D, H, W)``; one draw per channel."""
    return _feature_dropout(input, p, training, 3, "dropout3d")
