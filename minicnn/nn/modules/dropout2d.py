"""``Dropout2d``: zero whole feature maps during training, do nothing in eval mode."""

from __future__ import annotations

from minicnn.autograd.tensor import Tensor
from minicnn.nn import functional as F
from minicnn.nn.modules.module import Module

__all__ = ["Dropout2d"]


class Dropout2d(Module):
    """In training, zero each channel (a whole ``H x W`` map) with probability ``p`` and
    scale the others by ``1 / (1 - p)``; in eval mode (``model.eval()``) return the input.

    ``x: (N, C, H, W) -> (N, C, H, W)``: one random draw per (sample, channel), from
    ``minicnn.manual_seed``'s generator. Neighbouring pixels of a feature map are strongly
    correlated, so dropping single pixels barely regularizes a convolution; dropping the
    whole map does (Tompson et al., 2015). ``inplace`` is accepted for PyTorch
    compatibility; a new tensor is always returned.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p!r}")
        self.p = p
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout2d(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
