"""``minicnn.nn.functional`` (imported as ``F``): differentiable ops, named as in PyTorch.

One Function per op, forward and backward side by side, in the files beside this one.
The tensor-math ops that live in ``minicnn.autograd.ops`` (relu, sigmoid, tanh, softmax,
log_softmax, ...) are re-exported here too, as PyTorch does.
"""

from minicnn.autograd.ops import log_softmax, relu, sigmoid, softmax, tanh

__all__ = ["log_softmax", "relu", "sigmoid", "softmax", "tanh"]
