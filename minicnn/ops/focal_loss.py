"""Sigmoid focal loss (Lin et al., "Focal Loss for Dense Object Detection", 2017)."""

from __future__ import annotations

from minicnn.autograd import Tensor
from minicnn.nn.functional import binary_cross_entropy_with_logits

__all__ = ["sigmoid_focal_loss"]

REDUCTIONS = ("none", "mean", "sum")


def sigmoid_focal_loss(inputs: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2,
                       reduction: str = "none") -> Tensor:
    """``-alpha_t (1 - p_t)^gamma log(p_t)`` per element, as torchvision.ops.sigmoid_focal_loss.

    ``inputs: (*)`` logits, ``targets: (*)`` of the same shape holding 0 or 1 (floats).
    ``p_t`` is ``sigmoid(inputs)`` where the target is 1 and ``1 - sigmoid`` where it is 0;
    ``alpha_t`` is ``alpha`` and ``1 - alpha`` likewise (a negative ``alpha`` turns the
    weighting off). ``(1 - p_t)^gamma`` down-weights the easy examples. ``reduction``:
    "none" -> ``(*)``, "mean" or "sum" -> a scalar. Differentiable in ``inputs``.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"sigmoid_focal_loss: reduction must be one of {REDUCTIONS}, "
                         f"got {reduction!r}")
    if tuple(inputs.shape) != tuple(targets.shape):
        raise ValueError(f"sigmoid_focal_loss: targets must have the shape of inputs "
                         f"{tuple(inputs.shape)}, got {tuple(targets.shape)}")
    p = inputs.sigmoid()
    ce_loss = binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss
