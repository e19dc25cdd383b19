"""``minicnn.nn.init``: re-exports :mod:`minicnn.nn.modules.init`."""

from minicnn.nn.modules.init import *  # noqa: F403
from minicnn.nn.modules.init import (  # noqa: F401
    __all__,
    _calculate_correct_fan,
    _calculate_fan_in_and_fan_out,
)
