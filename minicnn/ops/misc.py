"""``FrozenBatchNorm2d`` (torchvision's ``ops/misc.py``): batch normalisation with fixed
statistics and affine parameters, the norm of the detection backbones loaded from trained
weights. With the small per-GPU batches of detection training, batch statistics are too
noisy to learn from, so the ImageNet ones are kept (Ren et al.'s Faster R-CNN code,
maskrcnn-benchmark issue 267).
"""

from __future__ import annotations

from minicnn import nn
from minicnn.autograd import Tensor, ones, zeros

__all__ = ["FrozenBatchNorm2d"]


class FrozenBatchNorm2d(nn.Module):
    """``x: (N, C, H, W) -> (x - running_mean) / sqrt(running_var + eps) * weight + bias``
    per channel, all four ``(C,)`` buffers (not parameters: nothing is learned). The
    state dict has BatchNorm's keys except ``num_batches_tracked``."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        if not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"FrozenBatchNorm2d: num_features must be a positive int, got "
                             f"{num_features!r}")
        self.eps = eps
        self.register_buffer("weight", ones(num_features))
        self.register_buffer("bias", zeros(num_features))
        self.register_buffer("running_mean", zeros(num_features))
        self.register_buffer("running_var", ones(num_features))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.weight.shape[0]:
            raise ValueError(f"FrozenBatchNorm2d: expected (N, {self.weight.shape[0]}, H, W), "
                             f"got {tuple(x.shape)}")
        scale = self.weight * (self.running_var + self.eps) ** -0.5
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.weight.shape[0]}, eps={self.eps})"
