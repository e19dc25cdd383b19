"""Shared fixtures: the backends to run on, slow/GPU markers, PyTorch comparison helpers.

* ``backend`` fixture: every available backend ("numpy", "numba", and "cupy" with a GPU).
  A test that takes it runs once per backend, inside ``use_backend`` for CPU ones; for
  "cupy" it gets the device "cuda" through ``device_of(backend)``.
* ``@pytest.mark.slow``: skipped unless ``--runslow`` (CI runs a sample: ``--slow-sample``).
* ``@pytest.mark.gpu``: skipped cleanly where CuPy or a GPU is missing.
"""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import pytest

import minicnn
from minicnn.backend import get_backend

os.environ.setdefault("MPLBACKEND", "Agg")


def _available_backends() -> list[str]:
    names = ["numpy"]
    with contextlib.suppress(RuntimeError):
        get_backend("numba")
        names.append("numba")
    with contextlib.suppress(RuntimeError):
        get_backend("cupy")
        names.append("cupy")
    return names


AVAILABLE_BACKENDS = _available_backends()
GPU = "cupy" in AVAILABLE_BACKENDS


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="run every test marked slow")
    parser.addoption(
        "--slow-sample",
        type=int,
        default=4,
        help="run this many tests marked slow, picked by a fixed seed (default 4: the CI sample)",
    )


def pytest_collection_modifyitems(config, items):
    if not GPU:
        skip_gpu = pytest.mark.skip(reason='needs CuPy and a CUDA GPU (pip install "minicnn[gpu]")')
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip_gpu)
    if config.getoption("--runslow"):
        return
    slow = [item for item in items if "slow" in item.keywords]
    keep = set()
    n = config.getoption("--slow-sample")
    if n:
        keep = {item.nodeid for item in random.Random(0).sample(slow, min(n, len(slow)))}
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in slow:
        if item.nodeid not in keep:
            item.add_marker(skip_slow)


@pytest.fixture(params=AVAILABLE_BACKENDS)
def backend(request):
    """The name of a backend; CPU backends are active inside the test."""
    name = request.param
    if name == "cupy":
        yield name
        return
    with minicnn.use_backend(name):
        yield name


def device_of(backend_name: str) -> str:
    """The device tensors must live on to use ``backend_name``."""
    return "cuda" if backend_name == "cupy" else "cpu"


@pytest.fixture(autouse=True)
def _seed():
    minicnn.manual_seed(0)
    np.random.seed(0)
    yield
