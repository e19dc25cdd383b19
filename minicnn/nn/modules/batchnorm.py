"""Batch normalization layers: ``BatchNorm1d`` and ``BatchNorm2d`` (and their base ``_NormBase``,
shared with ``InstanceNorm2d``).

Parameters ``weight`` (ones) and ``bias`` (zeros, unless ``bias=False``) when ``affine``;
buffers ``running_mean`` (zeros), ``running_var`` (ones) and ``num_batches_tracked`` (int64)
when ``track_running_stats``: the same ``state_dict`` keys as PyTorch.

In training mode a layer normalizes with the batch statistics and moves the running ones
towards them (``running = (1 - momentum) * running + momentum * batch``; ``momentum=None``
gives the cumulative average ``momentum = 1 / num_batches_tracked``). In eval mode it uses
the running statistics, so a single example gives the same answer as within any batch.
"""

from __future__ import annotations

import numpy as np

from minicnn.autograd.tensor import Tensor
from minicnn.backend import normalize_device, to_device
from minicnn.nn import functional as F
from minicnn.nn.modules import init
from minicnn.nn.modules.module import Module
from minicnn.nn.modules.parameter import empty_parameter

__all__ = ["BatchNorm1d", "BatchNorm2d"]


def _array(values: np.ndarray, device) -> np.ndarray:
    return to_device(values, normalize_device(device))


def register_affine(module: Module, shape: tuple[int, ...], affine: bool, bias: bool,
                    device=None, dtype=None) -> None:
    """Register the learnable ``weight`` and ``bias`` of a normalization layer, both of
    ``shape``; ``None`` where ``affine`` (or ``bias``) is off, as PyTorch registers them."""
    module.register_parameter("weight", empty_parameter(shape, device, dtype) if affine else None)
    module.register_parameter("bias",
                              empty_parameter(shape, device, dtype) if affine and bias else None)


def reset_affine(module: Module) -> None:
    """``weight`` 1 and ``bias`` 0: the layer starts as a pure normalization."""
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


class _NormBase(Module):
    """Parameters, buffers, resets and ``repr`` common to batch and instance norm."""

    _version = 2  # version 2 added num_batches_tracked, as in PyTorch

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None,
                 dtype=None, *, bias: bool = True):
        super().__init__()
        if not isinstance(num_features, (int, np.integer)) or isinstance(num_features, bool) \
                or num_features <= 0:
            raise ValueError(f"{type(self).__name__}(num_features) must be a positive int, got "
                             f"{num_features!r}")
        dtype = np.dtype(np.float32 if dtype is None else dtype)
        self.num_features = int(num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        register_affine(self, (self.num_features,), affine, bias, device, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(_array(np.zeros(num_features, dtype),
                                                               device)))
            self.register_buffer("running_var", Tensor(_array(np.ones(num_features, dtype),
                                                              device)))
            self.register_buffer("num_batches_tracked",
                                 Tensor(_array(np.zeros((), np.int64), device)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches seen."""
        if self.track_running_stats:
            self.running_mean.array[...] = 0
            self.running_var.array[...] = 1
            self.num_batches_tracked.array[...] = 0

    def reset_parameters(self) -> None:
        """Reset the running statistics; weight 1 and bias 0 (the identity map)."""
        self.reset_running_stats()
        reset_affine(self)

    def _check_input_dim(self, input: Tensor) -> None:
        raise NotImplementedError

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        """A checkpoint older than version 2 (or without metadata) may lack
        ``num_batches_tracked``: keep the current count instead of calling it missing."""
        version = local_metadata.get("version")
        key = prefix + "num_batches_tracked"
        if (version is None or version < 2) and self.track_running_stats \
                and key not in state_dict:
            state_dict[key] = self.num_batches_tracked
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.array += 1
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked.item())
        # eval mode without running statistics falls back to the batch's own
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if keep else None,
                            self.running_var if keep else None, self.weight, self.bias,
                            use_batch, factor, self.eps)


class BatchNorm1d(_BatchNorm):
    """Batch norm over ``(N, C)`` or ``(N, C, L)`` inputs, statistics per channel C.

    Args: num_features (C), eps=1e-5, momentum=0.1 (None: cumulative average),
    affine=True (learn weight and bias), track_running_stats=True; keyword bias=True.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.ndim not in (2, 3):
            raise ValueError(f"BatchNorm1d: expected 2D or 3D input (got {input.ndim}D input)")


class BatchNorm2d(_BatchNorm):
    """Batch norm over ``(N, C, H, W)`` inputs, statistics per channel C (over N, H, W).

    Args: num_features (C), eps=1e-5, momentum=0.1 (None: cumulative average),
    affine=True (learn weight and bias), track_running_stats=True; keyword bias=True.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.ndim != 4:
            raise ValueError(f"BatchNorm2d: expected 4D input (got {input.ndim}D input)")
