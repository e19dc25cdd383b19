"""L3: ``Module``, ``Parameter`` and the layers (thin wrappers over ``nn.functional``).

To add layers: one ``from minicnn.nn.modules.<file> import ...`` line below (kept in
alphabetical order of the file) and one line of names in ``__all__``.
"""

from minicnn.nn.modules.activation import (
    ELU,
    GELU,
    Hardsigmoid,
    Hardswish,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from minicnn.nn.modules.batchnorm import BatchNorm1d, BatchNorm2d
from minicnn.nn.modules.container import ModuleDict, ModuleList, Sequential
from minicnn.nn.modules.conv import Conv2d, ConvTranspose2d
from minicnn.nn.modules.conv_norm_activation import Conv2dNormActivation
from minicnn.nn.modules.dropout import Dropout
from minicnn.nn.modules.dropout2d import Dropout2d
from minicnn.nn.modules.linear import Flatten, Identity, Linear, Unflatten
from minicnn.nn.modules.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    DiceLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from minicnn.nn.modules.module import IncompatibleKeys, Module, RemovableHandle, StateDictError
from minicnn.nn.modules.normalization import (
    GroupNorm,
    InstanceNorm2d,
    LayerNorm,
    LocalResponseNorm,
)
from minicnn.nn.modules.parameter import Parameter
from minicnn.nn.modules.pooling import (
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool1d,
    AvgPool2d,
    GlobalAvgPool2d,
    GlobalMaxPool2d,
    MaxPool1d,
    MaxPool2d,
    MaxUnpool2d,
)
from minicnn.nn.modules.shuffle import ChannelShuffle, PixelShuffle, PixelUnshuffle
from minicnn.nn.modules.squeeze_excitation import SqueezeExcitation
from minicnn.nn.modules.stochastic_depth import StochasticDepth
from minicnn.nn.modules.upsampling import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d

__all__: list[str] = [
    # activation.py
    "ELU", "GELU", "Hardsigmoid", "Hardswish", "LeakyReLU", "LogSoftmax", "ReLU", "ReLU6",
    "SiLU", "Sigmoid", "Softmax", "Softplus", "Tanh",
    # batchnorm.py
    "BatchNorm1d", "BatchNorm2d",
    # container.py
    "ModuleDict", "ModuleList", "Sequential",
    # conv_norm_activation.py
    "Conv2dNormActivation",
    # conv.py
    "Conv2d", "ConvTranspose2d",
    # dropout.py
    "Dropout",
    # dropout2d.py
    "Dropout2d",
    # linear.py
    "Flatten", "Identity", "Linear", "Unflatten",
    # loss.py
    "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "DiceLoss", "L1Loss", "MSELoss",
    "NLLLoss", "SmoothL1Loss",
    # module.py, parameter.py
    "IncompatibleKeys", "Module", "Parameter", "RemovableHandle", "StateDictError",
    # normalization.py
    "GroupNorm", "InstanceNorm2d", "LayerNorm", "LocalResponseNorm",
    # pooling.py
    "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AvgPool1d", "AvgPool2d", "GlobalAvgPool2d",
    "GlobalMaxPool2d", "MaxPool1d", "MaxPool2d", "MaxUnpool2d",
    # shuffle.py
    "ChannelShuffle", "PixelShuffle", "PixelUnshuffle",
    # squeeze_excitation.py
    "SqueezeExcitation",
    # stochastic_depth.py
    "StochasticDepth",
    # upsampling.py
    "Upsample", "UpsamplingBilinear2d", "UpsamplingNearest2d",
]
