"""The random generator that data transforms draw from.

The DataLoader may build the next batch in a background thread while the model trains,
so transforms must not share minicnn's global generator with the training step (the
order of draws would depend on thread timing). Instead the loader hands every batch its
own generator, seeded from (epoch seed, batch index), and installs it for the thread
that builds the batch; :func:`current` returns it. Outside a loader, transforms fall
back to minicnn's global generator (``minicnn.manual_seed``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numpy as np

from minicnn import random as _random

_local = threading.local()


def current() -> np.random.Generator:
    """The generator for the batch being built in this thread, else the global one."""
    rng = getattr(_local, "rng", None)
    return rng if rng is not None else _random.generator()


@contextlib.contextmanager
def using(rng: np.random.Generator) -> Iterator[np.random.Generator]:
    """Make ``rng`` the current generator for this thread inside the block."""
    previous = getattr(_local, "rng", None)
    _local.rng = rng
    try:
        yield rng
    finally:
        _local.rng = previous
