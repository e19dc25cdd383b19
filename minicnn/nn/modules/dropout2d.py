"""``Dropout2d``: zero whole feature maps during training, do nothing in eval mode."""

from __future__ import annotations

from minicnn.autograd.tensor import Tensor
from minicnn.nn import functional as F
from minicnn.nn.modules.dropout import _DropoutNd

__all__ = ["Dropout2d"]


class Dropout2d(_DropoutNd):
    """In training, zero each channel (a whole ``H x W`` map) with probability ``p`` and
    scale the others by ``1 / (1 - p)``; in eval mode (``model.eval()``) return the input.

    ``x: (N, C, H, W) -> (N, C, H, W)``: one random draw per (sample, channel), from
    ``minicnn.manual_seed``'s generator. Neighbouring pixels of a feature map are strongly
    correlated, so dropping single pixels barely regularizes a convolution; dropping the
    whole map does (Tompson et al., 2015). ``inplace`` is accepted for PyTorch
    compatibility; a new tensor is always returned.
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout2d(input, self.p, self.training, self.inplace)
