"""Numba's threads (minicnn/backend/numba_threads.py): which layer, OpenMP's workers asleep
between loops, serial kernels after a fork, the workqueue's workers pinned one per core.

All of it is per process and depends on what loaded first, so each case runs in a fresh
interpreter; the kernel it runs is checked against NumPy, the settings against what the
OpenMP runtime itself reports (``OMP_DISPLAY_ENV``) and the pins against what the operating
system reports for each thread (``os.sched_getaffinity``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numba
import pytest

# Runs in a child: the threaded ReLU build on a big array (as a training step's first big
# kernel would), then reports the layer, the pins, each pinned thread's affinity, and a
# second call.
CHILD = """
import json, os, sys
{first}
import numba
from minicnn.backend import numba_cpu, numba_threads
x = np.random.default_rng(0).standard_normal(1 << 23).astype(np.float32)
assert np.array_equal(numba_cpu.relu(x), np.maximum(x, 0))
first = numba_threads._pinned_pid == os.getpid()
again = numba_threads.pin_workers()
numba_threads._pinned_pid = None  # pin afresh, to read what this call pins
pins = numba_threads.pin_workers()
print(json.dumps({{"ran": first, "again": again, "pins": pins, "layer": numba.threading_layer(),
                   "affinity": {{t: sorted(os.sched_getaffinity(int(t))) for t in pins}},
                   "main": sorted(os.sched_getaffinity(0)),
                   "wait_policy": os.environ.get("OMP_WAIT_POLICY")}}))
"""

# Runs in a child: threads started by a threaded kernel, then a fork; the forked process
# runs ReLU (``{call}``, into ``out`` or not) and exits 0 when its result matches NumPy's.
FORK = """
import os
import minicnn
import numpy as np
from minicnn.backend import numba_cpu, numba_threads
x = np.random.default_rng(0).standard_normal(1 << 23).astype(np.float32)
out = np.empty_like(x)
assert np.array_equal(numba_cpu.relu(x), np.maximum(x, 0))
print("parent threads", numba_threads.threads(), flush=True)
pid = os.fork()
if pid == 0:
    print("child threads", numba_threads.threads(), flush=True)
    os._exit(0 if np.array_equal({call}, np.maximum(x, 0)) else 1)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
"""


def _child(code: str, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("OPENBLAS_THREAD_TIMEOUT", "MINICNN_PIN_THREADS", "OMP_WAIT_POLICY",
                            "GOMP_SPINCOUNT", "OMP_DISPLAY_ENV", "NUMBA_THREADING_LAYER",
                            "NUMBA_THREADING_LAYER_PRIORITY")}
    environ.update(env)
    out = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out


def _report(first: str, **env) -> dict:
    return json.loads(_child(CHILD.format(first=first), **env).stdout.strip().splitlines()[-1])


MINICNN_FIRST = "import minicnn\nimport numpy as np"
NUMPY_FIRST = "import numpy as np\nimport minicnn"


def _openmp() -> bool:
    """Whether Numba's OpenMP layer loads here (a GNU OpenMP runtime on Linux)."""
    try:
        from numba.np.ufunc import omppool
    except ImportError:
        return False
    return omppool.openmp_vendor == "GNU"


needs_openmp = pytest.mark.skipif(not _openmp(), reason="Numba's OpenMP layer does not load here")
needs_pinning = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="pinning needs sched_setaffinity and two cores")


# ---------------------------------------------------------------- the OpenMP layer


@needs_openmp
def test_openmp_layer_starts_with_sleeping_workers():
    out = _child(CHILD.format(first=MINICNN_FIRST), OMP_DISPLAY_ENV="TRUE")
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["layer"] == "omp"
    assert "OMP_WAIT_POLICY = 'PASSIVE'" in out.stderr  # as the runtime reports it
    assert report["wait_policy"] is None  # taken out again for other OpenMP runtimes
    assert report["pins"] == {}  # the calling thread works too: nothing to pin


@needs_openmp
def test_openmp_keeps_the_users_wait_policy():
    out = _child(CHILD.format(first=MINICNN_FIRST), OMP_DISPLAY_ENV="TRUE",
                 OMP_WAIT_POLICY="ACTIVE")
    assert "OMP_WAIT_POLICY = 'ACTIVE'" in out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["wait_policy"] == "ACTIVE"


@needs_openmp
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_process_runs_the_serial_builds():
    """GNU OpenMP is not fork-safe: the forked process gets one thread and the right result."""
    out = _child(FORK.format(call="numba_cpu.relu(x)"))
    threads = numba.config.NUMBA_NUM_THREADS  # the child's too: it inherits the environment
    assert out.stdout.split("\n")[:3] == [f"parent threads {threads}", "child threads 1",
                                           "child 0"]


@needs_openmp
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_threaded_build_after_fork_is_what_the_guard_prevents():
    """The premise of the test above: the threaded build itself, run in the forked process,
    is terminated by Numba before it computes anything."""
    out = _child(FORK.format(call="numba_cpu._relu_kernel.threaded(x, out) or out"))
    assert out.stdout.strip().splitlines()[-1] != "child 0"
    assert "fork() called from a process already using GNU OpenMP" in out.stderr


# ---------------------------------------------------------------- the workqueue layer


@needs_pinning
def test_workqueue_workers_are_pinned_one_per_core():
    report = _report(MINICNN_FIRST, NUMBA_THREADING_LAYER="workqueue")
    assert report["layer"] == "workqueue"
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


@needs_pinning
@pytest.mark.parametrize("first, env", [
    (NUMPY_FIRST, {}),  # OpenBLAS loaded without the timeout: its threads spin
    (MINICNN_FIRST, {"MINICNN_PIN_THREADS": "0"}),
    (MINICNN_FIRST, {"NUMBA_NUM_THREADS": "1"}),
], ids=["numpy-first", "opted-out", "one-thread"])
def test_workqueue_workers_are_left_alone(first, env):
    report = _report(first, NUMBA_THREADING_LAYER="workqueue", **env)
    assert report["pins"] == {}


@needs_pinning
def test_numpy_first_with_the_timeout_set_pins():
    report = _report(NUMPY_FIRST, NUMBA_THREADING_LAYER="workqueue", OPENBLAS_THREAD_TIMEOUT="4")
    assert len(report["pins"]) == numba.config.NUMBA_NUM_THREADS
