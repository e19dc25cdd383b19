"""Rearranging channels and pixels: ``pixel_shuffle``, ``pixel_unshuffle``, ``channel_shuffle``.

None of these computes anything: each is a reshape, a permutation of axes and a reshape
back, so each is one ``Function`` whose backward applies the inverse permutation.

* ``pixel_shuffle`` (ESPCN, sub-pixel convolution): ``(*, C*r*r, H, W) -> (*, C, H*r, W*r)``.
  Output pixel ``(c, h*r + i, w*r + j)`` comes from input channel ``c*r*r + i*r + j`` at
  ``(h, w)``: the ``r*r`` channels of a group fill one ``r x r`` block.
* ``pixel_unshuffle`` is its inverse: ``(*, C, H*r, W*r) -> (*, C*r*r, H, W)``.
* ``channel_shuffle`` (ShuffleNet): ``(N, C, *)`` viewed as ``(N, g, C/g, *)``, the two
  group axes swapped, flattened back: channel ``k*g + i`` of the output is channel
  ``i*(C/g) + k`` of the input, so the next grouped convolution sees every group.
"""

from __future__ import annotations

import numpy as np

from minicnn.autograd.function import Function
from minicnn.autograd.tensor import Tensor
from minicnn.backend import array_module

__all__ = ["channel_shuffle", "pixel_shuffle", "pixel_unshuffle"]


class ReshapePermuteReshape(Function):
    """``x.reshape(split).transpose(perm).reshape(out_shape)``; backward undoes the three."""

    @staticmethod
    def forward(ctx, x, *, split, perm, out_shape):
        ctx.in_shape, ctx.split, ctx.perm = x.shape, split, perm
        moved = x.reshape(split).transpose(perm)
        return array_module(x).ascontiguousarray(moved).reshape(out_shape)

    @staticmethod
    def backward(ctx, grad):
        permuted = tuple(ctx.split[p] for p in ctx.perm)
        inverse = tuple(int(i) for i in np.argsort(ctx.perm))
        back = grad.reshape(permuted).transpose(inverse)
        return array_module(grad).ascontiguousarray(back).reshape(ctx.in_shape)


def _check_input(input, name: str, min_dim: int, layout: str) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a minicnn Tensor, got {type(input).__name__}")
    if input.ndim < min_dim:
        raise ValueError(
            f"{name}: input must have at least {min_dim} dimensions {layout}, got shape "
            f"{tuple(input.shape)}"
        )


def _check_factor(value, name: str, arg: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{name}: {arg} must be an int, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name}: {arg} must be positive, got {value}")
    return int(value)


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """Move channel blocks into space: ``x: (*, C*r*r, H, W) -> (*, C, H*r, W*r)``.

    With ``r = upscale_factor``:
    ``output[..., c, h*r + i, w*r + j] = input[..., c*r*r + i*r + j, h, w]``, as in PyTorch.
    """
    _check_input(input, "pixel_shuffle", 3, "(*, C*r*r, H, W)")
    r = _check_factor(upscale_factor, "pixel_shuffle", "upscale_factor")
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise ValueError(
            f"pixel_shuffle: the channel count {c} must be divisible by upscale_factor**2 = "
            f"{r * r} (upscale_factor={r}), input shape {tuple(input.shape)}"
        )
    k = len(lead)
    split = (*lead, c // (r * r), r, r, h, w)
    perm = (*range(k), k, k + 3, k + 1, k + 4, k + 2)  # (*, C, H, r, W, r)
    out_shape = (*lead, c // (r * r), h * r, w * r)
    return ReshapePermuteReshape.apply(input, split=split, perm=perm, out_shape=out_shape)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """Move space into channels: ``x: (*, C, H*r, W*r) -> (*, C*r*r, H, W)``.

    The inverse of :func:`pixel_shuffle`; with ``r = downscale_factor``:
    ``output[..., c*r*r + i*r + j, h, w] = input[..., c, h*r + i, w*r + j]``.
    """
    _check_input(input, "pixel_unshuffle", 3, "(*, C, H*r, W*r)")
    r = _check_factor(downscale_factor, "pixel_unshuffle", "downscale_factor")
    *lead, c, h, w = input.shape
    for size, axis in ((h, "height"), (w, "width")):
        if size % r:
            raise ValueError(
                f"pixel_unshuffle: the {axis} {size} must be divisible by downscale_factor={r}, "
                f"input shape {tuple(input.shape)}"
            )
    k = len(lead)
    split = (*lead, c, h // r, r, w // r, r)
    perm = (*range(k), k, k + 2, k + 4, k + 1, k + 3)  # (*, C, r, r, H/r, W/r)
    out_shape = (*lead, c * r * r, h // r, w // r)
    return ReshapePermuteReshape.apply(input, split=split, perm=perm, out_shape=out_shape)


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """ShuffleNet's channel shuffle: ``x: (N, C, *) -> (N, C, *)`` with the channels of the
    ``groups`` groups interleaved: view ``(N, g, C/g, *)``, swap axes 1 and 2, flatten.
    """
    _check_input(input, "channel_shuffle", 3, "(N, C, *)")
    g = _check_factor(groups, "channel_shuffle", "groups")
    n, c, *rest = input.shape
    if c % g:
        raise ValueError(
            f"channel_shuffle: the channel count {c} must be divisible by groups={g}, input "
            f"shape {tuple(input.shape)}"
        )
    split = (n, g, c // g, *rest)
    perm = (0, 2, 1, *range(3, len(split)))
    return ReshapePermuteReshape.apply(input, split=split, perm=perm, out_shape=tuple(input.shape))
