"""Channel rounding shared by the width-scaled mobile architectures (MobileNetV2/V3,
EfficientNet): a width multiplier gives fractional channel counts, which are rounded to a
multiple of 8 (hardware-friendly) the way the TensorFlow reference code and torchvision do.
"""

from __future__ import annotations

__all__ = ["make_divisible"]


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """The multiple of ``divisor`` nearest to ``v`` (at least ``min_value``, default
    ``divisor``), rounded up when rounding down would lose more than 10% of ``v``.

    ``make_divisible(32 * 1.1) == 32``, ``make_divisible(16 * 1.4) == 24``.
    """
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:  # rounding down must not remove more than 10%
        new_v += divisor
    return new_v
