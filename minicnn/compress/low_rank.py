"""Low-rank (SVD) factorisation of fully connected layers (Denton et al. 2014, "Exploiting
Linear Structure Within Convolutional Networks for Efficient Evaluation"; the "SVD" row of
SqueezeNet's Table 2: AlexNet 240 MB -> 48 MB).

A ``Linear(in, out)`` layer computes ``y = x W^T + b`` with ``W`` of shape ``(out, in)``.
Its singular value decomposition ``W = U S V^T`` keeps the ``r`` largest singular values::

    W  ~  W_r = U[:, :r] diag(S[:r]) V^T[:r]           (the best rank-r approximation)

and the layer becomes two smaller ones, ``Linear(in, r, bias=False)`` with weight
``diag(S[:r]) V^T[:r]`` (shape ``(r, in)``) followed by ``Linear(r, out)`` with weight
``U[:, :r]`` (shape ``(out, r)``) and the old bias: ``r * (in + out)`` weights instead of
``in * out``, fewer whenever ``r < in * out / (in + out)``.
"""

from __future__ import annotations

import numpy as np

from minicnn.autograd.tensor import Tensor
from minicnn.nn.modules.container import Sequential
from minicnn.nn.modules.linear import Linear
from minicnn.nn.modules.module import Module
from minicnn.nn.modules.parameter import Parameter

__all__ = ["factorize_linear_layers", "low_rank_linear"]


def _check_rank(rank: int) -> None:
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1:
        raise ValueError(f"low_rank: rank must be a positive int, got {rank!r}")


def low_rank_linear(layer: Linear, rank: int) -> Sequential:
    """``Sequential(Linear(in, rank, bias=False), Linear(rank, out))`` computing the rank-``rank``
    truncated SVD of ``layer``'s weight: ``x: (*, in) -> (*, out)``.

    ``rank`` may be at most ``min(in, out)`` (that rank reproduces the layer exactly, up to
    rounding).
    """
    if not isinstance(layer, Linear):
        raise TypeError(f"low_rank_linear: expected a Linear layer, got {type(layer).__name__}")
    _check_rank(rank)
    out_features, in_features = layer.weight.shape
    if rank > min(in_features, out_features):
        raise ValueError(f"low_rank_linear: rank must be at most min(in_features, out_features) "
                         f"= {min(in_features, out_features)}, got {rank}")
    w = layer.weight.detach().numpy().astype(np.float64)
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    first = Linear(in_features, rank, bias=False)
    second = Linear(rank, out_features, bias=layer.bias is not None)
    device = layer.weight.device
    first.weight = Parameter(Tensor((s[:rank, None] * vt[:rank]).astype(np.float32)).to(device))
    second.weight = Parameter(Tensor(u[:, :rank].astype(np.float32)).to(device))
    if layer.bias is not None:
        second.bias = Parameter(layer.bias.detach().clone())
    return Sequential(first, second)


def factorize_linear_layers(model: Module, rank: int) -> dict[str, tuple[int, int]]:
    """Replace, in place, every ``Linear`` of ``model`` that ``rank`` makes smaller
    (``rank * (in + out) < in * out``) by :func:`low_rank_linear`; returns
    ``{name: (weights before, weights after)}`` of the layers replaced."""
    _check_rank(rank)
    replaced = {}
    for parent_name, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            if not isinstance(child, Linear):
                continue
            out_features, in_features = child.weight.shape
            if rank * (in_features + out_features) >= in_features * out_features:
                continue
            setattr(parent, name, low_rank_linear(child, rank))
            full = f"{parent_name}.{name}" if parent_name else name
            replaced[full] = (in_features * out_features, rank * (in_features + out_features))
    return replaced
