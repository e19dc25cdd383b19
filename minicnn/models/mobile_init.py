"""Weight initialization shared by the mobile architectures (MobileNet V1/V2/V3, MNASNet,
EfficientNet), as torchvision writes it for each: one loop, and only the classifier's
draw differs between the families.

Convolutions are Kaiming normal over their fan-out (``std = sqrt(2 / (C_out*kh*kw))``)
with a zero bias; batch and group norms start as the identity (weight 1, bias 0); each
``Linear`` gets the family's own draw and a zero bias.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from minicnn import nn

__all__ = ["init_mobile_", "init_mobilenet_", "linear_normal_", "linear_uniform_fan_out_",
           "linear_kaiming_uniform_sigmoid_"]


def linear_normal_(linear: nn.Linear) -> None:
    """The MobileNets' classifier: ``N(0, 0.01^2)``."""
    nn.init.normal_(linear.weight, 0, 0.01)


def linear_uniform_fan_out_(linear: nn.Linear) -> None:
    """EfficientNet's classifier: ``U(-1/sqrt(out_features), 1/sqrt(out_features))``."""
    init_range = 1.0 / math.sqrt(linear.out_features)
    nn.init.uniform_(linear.weight, -init_range, init_range)


def linear_kaiming_uniform_sigmoid_(linear: nn.Linear) -> None:
    """MNASNet's classifier: Kaiming uniform over the fan-out, with the sigmoid's gain (1)."""
    nn.init.kaiming_uniform_(linear.weight, mode="fan_out", nonlinearity="sigmoid")


def init_mobile_(model: nn.Module, init_linear: Callable[[nn.Linear], None]) -> None:
    """Initialize every layer of ``model`` in place, in ``model.modules()`` order (so a seed
    gives torchvision's sequence of draws): Kaiming normal (fan_out) convolutions with zero
    bias, norm weight 1 / bias 0, and ``init_linear(linear)`` with zero bias for each Linear.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            init_linear(m)
            nn.init.zeros_(m.bias)


def init_mobilenet_(model: nn.Module) -> None:
    """torchvision's initialization of the MobileNets: :func:`init_mobile_` with the
    classifier drawn from ``N(0, 0.01^2)``."""
    init_mobile_(model, linear_normal_)
