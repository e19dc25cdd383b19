"""Normalization layers other than batch norm: ``InstanceNorm2d``, ``GroupNorm``,
``LayerNorm`` and ``LocalResponseNorm``; thin wrappers over
:mod:`minicnn.nn.functional.normalization`, with PyTorch's arguments, defaults, ``repr``
and ``state_dict`` keys."""

from __future__ import annotations

from numbers import Integral

from minicnn.autograd.tensor import Tensor
from minicnn.nn import functional as F
from minicnn.nn.modules.batchnorm import _NormBase, register_affine, reset_affine
from minicnn.nn.modules.module import Module

__all__ = ["GroupNorm", "InstanceNorm2d", "LayerNorm", "LocalResponseNorm"]


class InstanceNorm2d(_NormBase):
    """Instance norm over ``(N, C, H, W)`` (or unbatched ``(C, H, W)``): each channel of
    each sample normalized by its own statistics (style transfer, Ulyanov et al., 2016).

    Defaults differ from batch norm: ``affine=False, track_running_stats=False``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None,
                 dtype=None, *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias=bias)

    def _check_input_dim(self, input: Tensor) -> None:
        if input.ndim not in (3, 4):
            raise ValueError(f"InstanceNorm2d: expected 3D or 4D input (got {input.ndim}D input)")

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        unbatched = input.ndim == 3
        x = input.unsqueeze(0) if unbatched else input
        if self.affine and x.shape[1] != self.num_features:
            raise ValueError(f"InstanceNorm2d: expected input's size at dim={1 - unbatched} to "
                             f"match num_features ({self.num_features}), got {x.shape[1]}")
        out = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                              self.training or not self.track_running_stats,
                              self.momentum if self.momentum is not None else 0.0, self.eps)
        return out.squeeze(0) if unbatched else out


class GroupNorm(Module):
    """Group norm (Wu and He, 2018): the ``num_channels`` channels form ``num_groups``
    groups, each normalized per sample; learnable per-channel ``weight``/``bias``.
    ``(N, C, *) -> same shape``."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        if not isinstance(num_groups, Integral) or num_groups <= 0 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels must be divisible by num_groups, got "
                             f"num_channels={num_channels}, num_groups={num_groups}")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        register_affine(self, (num_channels,), affine, bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class LayerNorm(Module):
    """Layer norm (Ba et al., 2016) over the last ``len(normalized_shape)`` dims, with an
    element-wise ``weight``/``bias`` of shape ``normalized_shape``. ``(*, *normalized_shape)
    -> same shape``."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        register_affine(self, self.normalized_shape, elementwise_affine, bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class LocalResponseNorm(Module):
    """Local response normalization across channels (AlexNet, GoogLeNet):
    ``b_c = a_c / (k + alpha/size * sum of a^2 over size neighbouring channels) ** beta``.
    ``(N, C, *) -> same shape``; AlexNet: ``LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2)``."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input: Tensor) -> Tensor:
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
