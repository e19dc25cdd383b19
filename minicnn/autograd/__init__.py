"""L1: the autograd engine -- Tensor, Function, backward, no_grad, gradcheck."""

from minicnn.autograd.creation import (
    arange,
    empty,
    from_numpy,
    full,
    manual_seed,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from minicnn.autograd.function import Context, Function
from minicnn.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from minicnn.autograd.tensor import Tensor

__all__ = [
    "Context", "Function", "Tensor", "arange", "empty", "enable_grad", "from_numpy", "full",
    "is_grad_enabled", "manual_seed", "no_grad", "ones", "ones_like", "rand", "randint", "randn",
    "set_grad_enabled", "tensor", "zeros", "zeros_like",
]
