"""Numba's workers pinned one per core (minicnn/backend/numba_threads.py), and when not.

Pinning is per process and depends on what loaded first, so each case runs in a fresh
interpreter; the kernel it then runs is checked against NumPy, and the pins against what
the operating system reports for each thread (``os.sched_getaffinity``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numba
import pytest

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="pinning needs sched_setaffinity and two cores")

# Runs in a child: the threaded ReLU build on a big array (as a training step's first big
# kernel would), then reports the pins, each pinned thread's affinity, and a second call.
CHILD = """
import json, os, sys
{first}
from minicnn.backend import numba_cpu, numba_threads
x = np.random.default_rng(0).standard_normal(1 << 23).astype(np.float32)
assert np.array_equal(numba_cpu.relu(x), np.maximum(x, 0))
first = numba_threads._pinned_pid == os.getpid()
again = numba_threads.pin_workers()
numba_threads._pinned_pid = None  # pin afresh, to read what this call pins
pins = numba_threads.pin_workers()
print(json.dumps({{"ran": first, "again": again, "pins": pins,
                   "affinity": {{t: sorted(os.sched_getaffinity(int(t))) for t in pins}},
                   "main": sorted(os.sched_getaffinity(0))}}))
"""


def _child(first: str, **env) -> dict:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("OPENBLAS_THREAD_TIMEOUT", "MINICNN_PIN_THREADS")}
    environ.update(env)
    out = subprocess.run([sys.executable, "-c", CHILD.format(first=first)], env=environ,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


MINICNN_FIRST = "import minicnn\nimport numpy as np"
NUMPY_FIRST = "import numpy as np\nimport minicnn"


def test_workers_are_pinned_one_per_core():
    report = _child(MINICNN_FIRST)
    assert report["ran"]  # the first threaded kernel pinned them
    assert report["again"] == {}  # once per process
    pins = {int(t): core for t, core in report["pins"].items()}
    cores = sorted(os.sched_getaffinity(0))  # the child's, inherited from this process
    workers = min(numba.config.NUMBA_NUM_THREADS, len(cores))
    assert len(pins) == numba.config.NUMBA_NUM_THREADS
    assert len(set(pins.values())) == workers  # each its own core
    for tid, core in pins.items():
        assert report["affinity"][str(tid)] == [core]
    assert set(pins.values()) <= set(cores)
    assert report["main"] == cores  # the main thread is left alone


@pytest.mark.parametrize("first, env", [
    (NUMPY_FIRST, {}),  # OpenBLAS loaded without the timeout: its threads spin
    (MINICNN_FIRST, {"MINICNN_PIN_THREADS": "0"}),
    (MINICNN_FIRST, {"NUMBA_NUM_THREADS": "1"}),
], ids=["numpy-first", "opted-out", "one-thread"])
def test_workers_are_left_alone(first, env):
    report = _child(first, **env)
    assert report["pins"] == {}


def test_numpy_first_with_the_timeout_set_pins():
    report = _child(NUMPY_FIRST, OPENBLAS_THREAD_TIMEOUT="4")
    assert len(report["pins"]) == numba.config.NUMBA_NUM_THREADS

