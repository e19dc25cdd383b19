"""Numba's threads: OpenMP's workers asleep between loops, or the workqueue's pinned.

**Which threading layer.** minicnn asks Numba for its OpenMP layer first
(``NUMBA_THREADING_LAYER_PRIORITY="omp workqueue tbb"``, set in ``minicnn/__init__.py``;
your own ``NUMBA_THREADING_LAYER`` wins). In an OpenMP parallel loop the calling thread
takes a share of the work, so on 2 cores a loop wakes one worker, where the workqueue
layer wakes two and waits for both: an empty ``prange`` loop took 47 us against 77 us, and
ResNet-56's training step (batch 32, 2 cores, processes alternated) 146-157 ms against
168-181 ms; ResNet-20 55-59 against 64-70 ms, the main job's small ResNet 43-47 against
50-58 ms.

**Sleeping workers.** By default OpenMP's workers spin for a while after each loop, and on
2 cores a spinning worker holds the core that the main thread or OpenBLAS's thread needs
next (item 1 of the Performance notes in benchmarks/README.md). So :func:`threads` loads
the OpenMP runtime with ``OMP_WAIT_POLICY=passive`` (its workers sleep as soon as a loop
ends; GNU OpenMP reads the setting once, when it loads) and then takes the setting out of
the environment again, so that an OpenMP runtime loaded later by another library (PyTorch
brings its own) keeps its defaults. Your own ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is
left as it is.

**Fork.** GNU OpenMP is not fork-safe: Numba terminates a process forked from one whose
OpenMP threads had started as soon as it enters a parallel loop ("fork() called from a
process already using GNU OpenMP"). :func:`threads` returns 1 in such a process, so every
kernel there runs its serial build: the same result, on one core.

**The workqueue layer** (where no OpenMP runtime loads, or by choice) starts one worker per
core and lets them sleep between loops. Linux wakes a sleeping thread on a core near the
thread that wakes it, so the workers of a short loop often shared one core while the other
idled: a 16-channel 32x32 convolution kernel (batch 32) used one core's worth of CPU time,
threaded or not (0.72-0.90 ms threaded, 0.79 ms serial); with each worker pinned to its
own core it took 0.48-0.55 ms, using 1.6-1.8 cores. So before the first threaded kernel,
:func:`pin_workers` runs a parallel loop in which each worker reports its thread id, and
pins worker ``i`` to the ``i``-th core this process may use (``os.sched_setaffinity`` on
that thread only; the main thread and other libraries' threads are left alone). Nothing is
pinned where there is one thread or one core, where the platform has no
``sched_setaffinity`` (macOS, Windows), for another threading layer (OpenMP's calling
thread works too, and pinning its worker gained nothing: 147-150 against 146-157 ms), or
when ``MINICNN_PIN_THREADS=0`` is set. Nor where NumPy was imported before minicnn without
``OPENBLAS_THREAD_TIMEOUT`` set (so minicnn's default of 4 came too late): OpenBLAS's
worker then spins for about 0.1 s after every matrix product, and a worker pinned to its
core must share it with the spinner (ResNet-20 steps pinned 80-90 ms, unpinned 70-75).
"""

from __future__ import annotations

import os

import numba
import numpy as np
from numba import types

from minicnn import backend

# the C library's gettid(): the calling thread's id, which sched_setaffinity takes
_gettid = types.ExternalFunction("gettid", types.int32())


@numba.njit(parallel=True, cache=True)
def _worker_ids(n):  # out[i] = (the Numba thread number, the OS thread id) running iteration i
    out = np.zeros((n, 2), dtype=np.int64)
    for i in numba.prange(n):
        out[i, 0] = numba.get_thread_id()
        out[i, 1] = _gettid()
    return out


_started_pid = None  # the process that started Numba's threads (a forked child inherits it)
_pinned_pid = None  # the process that pinned its workers or found it should not (a forked
# child has workers of its own)


def _start() -> None:
    """Load Numba's threading layer, its OpenMP workers told to sleep between loops."""
    global _started_pid
    passive = "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ
    if passive:
        os.environ["OMP_WAIT_POLICY"] = "passive"
    try:
        numba.get_num_threads()  # loads the layer (and the OpenMP runtime, which reads it)
    finally:
        if passive:
            del os.environ["OMP_WAIT_POLICY"]
    _started_pid = os.getpid()


def _forked_from_gnu_openmp() -> bool:
    if os.getpid() == _started_pid or numba.threading_layer() != "omp":
        return False
    from numba.np.ufunc import omppool

    return omppool.openmp_vendor == "GNU"


def threads() -> int:
    """The number of threads a threaded kernel may use in this process.

    Starts Numba's threading layer on the first call (see the module docstring); 1 in a
    process forked from one that started GNU OpenMP's threads, else Numba's thread count
    (``numba.get_num_threads()``, which ``numba.set_num_threads`` changes)."""
    if _started_pid is None:
        _start()
    if _forked_from_gnu_openmp():
        return 1
    return numba.get_num_threads()


def threading_layer() -> str:
    """The threading layer Numba's threaded kernels run on in this process ("omp",
    "workqueue" or "tbb"), starting it if no kernel has."""
    threads()
    return numba.threading_layer()


def _wanted() -> bool:
    return (
        os.environ.get("MINICNN_PIN_THREADS", "1") != "0"
        and not backend.OPENBLAS_SPINS
        and hasattr(os, "sched_setaffinity")
        and numba.config.NUMBA_NUM_THREADS > 1
        and len(os.sched_getaffinity(0)) > 1
        and numba.threading_layer() == "workqueue"
    )


def pin_workers() -> dict[int, int]:
    """Pin each of the workqueue layer's worker threads to its own core, once per process.

    Returns ``{worker thread id: core}`` for the workers pinned by this call (empty when
    they were pinned before, or when pinning does not apply: see the module docstring)."""
    global _pinned_pid
    if _pinned_pid == os.getpid():
        return {}
    _pinned_pid = os.getpid()
    threads()  # the layer started, so that _wanted() can ask which one it is
    if not _wanted():
        return {}
    cores = sorted(os.sched_getaffinity(0))
    count = numba.get_num_threads()
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)  # every worker, not just those in use
    try:
        ids = _worker_ids(numba.config.NUMBA_NUM_THREADS)
    finally:
        numba.set_num_threads(count)
    pinned = {}
    for number, tid in {int(n): int(t) for n, t in ids}.items():
        core = cores[number % len(cores)]
        try:
            os.sched_setaffinity(tid, {core})
        except OSError:  # not allowed here (a container's policy): leave the rest alone
            break
        pinned[tid] = core
    return pinned
