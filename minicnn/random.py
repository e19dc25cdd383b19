"""The one random number generator of minicnn (L0: imports nothing of minicnn).

Everything random -- initialisation, dropout, data shuffling and augmentation -- draws
from :func:`generator`, so ``minicnn.manual_seed(s)`` makes a CPU run repeat exactly.
Random numbers are always drawn on the CPU with NumPy and then moved to the device,
so the same seed gives the same numbers on the GPU too.
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the global generator to ``seed`` and return it.

    ``seed`` is an int in ``[-2**63, 2**64)``; a negative one is read as its 64-bit
    two's complement, as ``torch.manual_seed`` does.
    """
    global _generator
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"manual_seed(seed) needs an int, got {type(seed).__name__}")
    seed = int(seed)
    if not -(2**63) <= seed < 2**64:
        raise ValueError(f"manual_seed(seed) needs an int in [-2**63, 2**64), got {seed}")
    _generator = np.random.default_rng(seed % 2**64)
    return _generator


def generator() -> np.random.Generator:
    """The global generator (reset by :func:`manual_seed`)."""
    return _generator


def get_state() -> dict:
    """The generator's state as a JSON-serialisable dict (for checkpoints)."""
    return _generator.bit_generator.state


def set_state(state: dict) -> None:
    """Restore a state returned by :func:`get_state`."""
    _generator.bit_generator.state = state
