"""``Dropout``: zero random elements during training, do nothing in eval mode."""

from __future__ import annotations

from minicnn.autograd.tensor import Tensor
from minicnn.nn import functional as F
from minicnn.nn.modules.module import Module

__all__ = ["Dropout"]


class _DropoutNd(Module):
    """What every dropout layer shares (as PyTorch's ``_DropoutNd``): the checked
    probability ``p``, the ``inplace`` flag and the repr. Subclasses write ``forward``."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p!r}")
        self.p = p
        self.inplace = inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """In training, zero each element with probability ``p`` and scale the rest by 1/(1-p),
    so the expected value is unchanged; in eval mode (``model.eval()``) return the input.

    x: (*) -> (*). Randomness comes from ``minicnn.manual_seed``'s generator.
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training, self.inplace)
