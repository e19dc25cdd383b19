"""``minicnn.nn.functional`` (imported as ``F``): differentiable ops, named as in PyTorch.

One Function per op, forward and backward side by side, in the files beside this one.
The tensor-math ops that live in ``minicnn.autograd.ops`` (relu, sigmoid, tanh, softmax,
log_softmax, ...) are re-exported here too, as PyTorch does.
"""

from minicnn.autograd.ops import log_softmax, relu, sigmoid, softmax, tanh
from minicnn.nn.functional.activation import (
    elu,
    gelu,
    hardsigmoid,
    hardswish,
    hardtanh,
    leaky_relu,
    relu6,
    silu,
    softplus,
)
from minicnn.nn.functional.conv import conv2d, conv_transpose2d
from minicnn.nn.functional.dropout import dropout, dropout1d, dropout2d, dropout3d
from minicnn.nn.functional.keypoints import soft_argmax
from minicnn.nn.functional.linear import linear
from minicnn.nn.functional.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    dice_loss,
    huber_loss,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)
from minicnn.nn.functional.normalization import (
    batch_norm,
    group_norm,
    instance_norm,
    layer_norm,
    local_response_norm,
    normalize,
)
from minicnn.nn.functional.padding import pad
from minicnn.nn.functional.pooling import (
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool1d,
    avg_pool2d,
    max_pool1d,
    max_pool2d,
    max_unpool2d,
)
from minicnn.nn.functional.shuffle import channel_shuffle, pixel_shuffle, pixel_unshuffle
from minicnn.nn.functional.upsampling import interpolate

__all__ = [
    # normalization.py, pooling.py
    "adaptive_avg_pool2d", "adaptive_max_pool2d", "avg_pool1d", "avg_pool2d", "batch_norm",
    "group_norm", "instance_norm", "layer_norm", "local_response_norm", "max_pool1d",
    "max_pool2d", "max_unpool2d", "normalize",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "conv2d", "conv_transpose2d",
    "cross_entropy", "dice_loss", "dropout", "dropout1d", "dropout2d", "dropout3d", "elu", "gelu",
    "hardsigmoid", "hardswish", "hardtanh", "huber_loss", "l1_loss", "leaky_relu", "linear",
    "log_softmax", "mse_loss", "nll_loss", "pad", "relu", "relu6", "sigmoid", "silu",
    "smooth_l1_loss", "softmax", "softplus", "tanh",
    # shuffle.py, upsampling.py
    "channel_shuffle", "interpolate", "pixel_shuffle", "pixel_unshuffle",
    # keypoints.py
    "soft_argmax",
]
