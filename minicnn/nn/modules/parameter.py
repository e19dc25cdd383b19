"""``Parameter``: a Tensor that a Module learns.

A Parameter is an ordinary :class:`~minicnn.autograd.tensor.Tensor` that requires a
gradient by default. Its only special power is that assigning one to a Module attribute
(``self.weight = Parameter(...)``) registers it, so ``module.parameters()`` finds it and
the optimizer updates it.
"""

from __future__ import annotations

import numpy as np

from minicnn.autograd.tensor import Tensor
from minicnn.backend import normalize_device, to_device

__all__ = ["Parameter", "empty_parameter"]


class Parameter(Tensor):
    """A learnable tensor: ``Parameter(data=None, requires_grad=True)``.

    ``data`` may be a Tensor (its array is shared, not copied, as in PyTorch), an array
    or anything ``minicnn.tensor`` accepts. ``None`` gives an empty float32 tensor.
    """

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = np.empty((0,), dtype=np.float32)
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


def empty_parameter(shape: tuple[int, ...], device=None, dtype=None) -> Parameter:
    """An uninitialised Parameter of ``shape`` on ``device`` (float32 unless ``dtype``):
    what a layer's constructor makes before ``reset_parameters`` fills it."""
    dtype = np.dtype(np.float32 if dtype is None else dtype)
    if dtype.kind != "f":
        raise TypeError(f"parameters must be floating point, got dtype={dtype}")
    return Parameter(to_device(np.empty(shape, dtype=dtype), normalize_device(device)))
