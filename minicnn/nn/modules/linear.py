"""``Linear`` (fully connected layer), ``Identity``, ``Flatten`` and ``Unflatten``."""

from __future__ import annotations

import math

import numpy as np

from minicnn.autograd.tensor import Tensor
from minicnn.nn import functional as F
from minicnn.nn.modules import init
from minicnn.nn.modules.module import Module
from minicnn.nn.modules.parameter import empty_parameter

__all__ = ["Flatten", "Identity", "Linear", "Unflatten"]




class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. to remove a layer). Ignores arguments."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input


class Linear(Module):
    """``y = x @ weight.T + bias``.

    x: (*, in_features) -> (*, out_features); weight: (out_features, in_features),
    bias: (out_features,). Initialised as in PyTorch: ``kaiming_uniform_(weight, a=sqrt(5))``
    -- which gives U(-1/sqrt(in_features), 1/sqrt(in_features)) -- and the bias uniform on
    the same interval.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"Linear({name}) must be a non-negative int, got {value!r}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.weight = empty_parameter((self.out_features, self.in_features), device, dtype)
        if bias:
            self.bias = empty_parameter((self.out_features,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default initialisation (see the class docstring)."""
        init.default_init_(self.weight, self.bias)

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Flatten(Module):
    """Merge dims ``start_dim..end_dim`` into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim ``dim`` into ``unflattened_size``.

    E.g. dim=1, unflattened_size=(C, H, W): (N, C*H*W) -> (N, C, H, W).

    One entry of ``unflattened_size`` may be -1 (inferred).
    """

    def __init__(self, dim: int, unflattened_size: tuple[int, ...]):
        super().__init__()
        if not isinstance(dim, (int, np.integer)):
            raise TypeError(f"Unflatten(dim) must be an int, got {type(dim).__name__}")
        if not isinstance(unflattened_size, (tuple, list)) or not all(
            isinstance(s, (int, np.integer)) for s in unflattened_size
        ):
            raise TypeError(
                f"Unflatten(unflattened_size) must be a tuple of ints, got {unflattened_size!r}"
            )
        self.dim = dim
        self.unflattened_size = unflattened_size

    def forward(self, input: Tensor) -> Tensor:
        shape = input.shape
        dim = self.dim + len(shape) if self.dim < 0 else self.dim
        if not 0 <= dim < len(shape):
            raise ValueError(
                f"Unflatten(dim={self.dim}) is out of range for an input of shape {shape}"
            )
        sizes = tuple(self.unflattened_size)
        known = math.prod(s for s in sizes if s != -1)
        fits = known == shape[dim] if -1 not in sizes else shape[dim] % max(known, 1) == 0
        if not fits:
            raise ValueError(
                f"Unflatten: unflattened_size {sizes} does not match size {shape[dim]} of dim "
                f"{dim} of the input of shape {shape}"
            )
        return input.reshape(*shape[:dim], *sizes, *shape[dim + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
