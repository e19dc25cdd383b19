"""Loss layers: thin Modules around the loss functions of ``F`` (constructor args as in PyTorch).

``reduction`` is ``"mean"`` (default), ``"sum"`` or ``"none"`` (one loss per element or
sample). ``size_average`` and ``reduce`` are PyTorch's deprecated spelling of
``reduction``; they are still understood. Class weights (``weight``, ``pos_weight``) are
registered as buffers, so they follow ``.to(device)`` and appear in ``state_dict`` as in
PyTorch.
"""

from __future__ import annotations

from minicnn.autograd.tensor import Tensor
from minicnn.nn import functional as F
from minicnn.nn.modules.module import Module

__all__ = [
    "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "DiceLoss", "L1Loss", "MSELoss",
    "NLLLoss", "SmoothL1Loss",
]

_REDUCTIONS = ("none", "mean", "sum")


def _legacy_reduction(size_average: bool | None, reduce: bool | None) -> str:
    """Translate PyTorch's old ``size_average``/``reduce`` flags into ``reduction``."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        if size_average is not None or reduce is not None:
            reduction = _legacy_reduction(size_average, reduce)
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {list(_REDUCTIONS)}, got {reduction!r}")
        self.reduction = reduction


class _WeightedLoss(_Loss):
    def __init__(self, weight: Tensor | None = None, size_average=None, reduce=None,
                 reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class L1Loss(_Loss):
    """|input - target|. input, target: (*) -> scalar (or (*) with reduction="none")."""

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.l1_loss(input, target, reduction=self.reduction)


class MSELoss(_Loss):
    """(input - target)**2. input, target: (*) -> scalar (or (*) with reduction="none")."""

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """Huber-like: 0.5 * d**2 / beta where |d| < beta, else |d| - 0.5 * beta; d = input - target."""

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0):
        super().__init__(size_average, reduce, reduction)
        if beta < 0:
            raise ValueError(f"SmoothL1Loss(beta) must be non-negative, got {beta}")
        self.beta = beta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class NLLLoss(_WeightedLoss):
    """-input[n, target[n]] (input: log-probabilities (N, C) or (N, C, d1, ...); target: class
    indices (N,) or (N, d1, ...)). Entries equal to ``ignore_index`` are skipped."""

    def __init__(self, weight: Tensor | None = None, size_average=None, ignore_index: int = -100,
                 reduce=None, reduction: str = "mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """log_softmax + NLL in one stable step. input: logits (N, C) or (N, C, d1, ...);
    target: class indices (N,) / (N, d1, ...) or class probabilities shaped like input."""

    def __init__(self, weight: Tensor | None = None, size_average=None, ignore_index: int = -100,
                 reduce=None, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(weight, size_average, reduce, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(
                f"CrossEntropyLoss(label_smoothing) must be in [0, 1], got {label_smoothing}"
            )
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class BCELoss(_WeightedLoss):
    """-(target * log(input) + (1 - target) * log(1 - input)); input: probabilities (*)."""

    def __init__(self, weight: Tensor | None = None, size_average=None, reduce=None,
                 reduction: str = "mean"):
        super().__init__(weight, size_average, reduce, reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid + BCE in one stable step; input: logits (*). ``pos_weight`` (C,) weighs positives."""

    def __init__(self, weight: Tensor | None = None, size_average=None, reduce=None,
                 reduction: str = "mean", pos_weight: Tensor | None = None):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, self.weight,
                                                  reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class DiceLoss(_WeightedLoss):
    """Soft Dice loss per class (:func:`minicnn.nn.functional.dice_loss`). input: logits
    (N, C, *d), sigmoid for C = 1 and softmax for C > 1; target: class indices (N, *d) or
    probabilities shaped like input. ``weight`` (C,) weighs the classes in the mean."""

    def __init__(self, weight: Tensor | None = None, smooth: float = 1.0,
                 ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(weight, reduction=reduction)
        if not smooth >= 0:
            raise ValueError(f"DiceLoss(smooth) must be >= 0, got {smooth}")
        self.smooth, self.ignore_index = smooth, ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.dice_loss(input, target, weight=self.weight, smooth=self.smooth,
                           ignore_index=self.ignore_index, reduction=self.reduction)
