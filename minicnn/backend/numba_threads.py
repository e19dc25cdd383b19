"""Numba's worker threads, one per core.

Numba's workqueue threading layer (the one minicnn selects, see ``minicnn/__init__.py``)
starts one worker thread per core and lets them sleep between parallel loops. Linux wakes
a sleeping thread on a core chosen near the thread that wakes it, so the workers of a
short parallel loop often shared one core while the other idled: a 16-channel 32x32
convolution kernel (batch 32) used one core's worth of CPU time, threaded or not
(0.72-0.90 ms threaded, 0.79 ms serial). With each worker pinned to its own core it took
0.48-0.55 ms, using 1.6-1.8 cores. (A long loop does not show it: the scheduler spreads the
workers within a few milliseconds.)

So before the first threaded kernel runs, :func:`pin_workers` runs a parallel loop in which
each worker reports its thread id, and pins worker ``i`` to the ``i``-th core this process
may use (``os.sched_setaffinity`` on that thread only; the main thread and other
libraries' threads are left alone). Nothing is pinned where there is one thread or one
core, where the platform has no ``sched_setaffinity`` (macOS, Windows), for another
threading layer, or when ``MINICNN_PIN_THREADS=0`` is set.

Nor where NumPy was imported before minicnn without ``OPENBLAS_THREAD_TIMEOUT`` set (so
minicnn's default of 4 came too late, see ``minicnn/__init__.py``): OpenBLAS's worker then
spins for about 0.1 s after every matrix product, and a worker pinned to its core must
share it with the spinner. ResNet-20 training steps (batch 32, 2 cores), processes
alternated: pinned with OpenBLAS quiet 58-78 ms, unpinned 75-94 ms; with OpenBLAS
spinning, pinned 80-90 ms, unpinned 70-75 ms.
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


_pinned_pid = None  # the process that pinned its workers or found it should not (a forked
# child has workers of its own)


def _wanted() -> bool:
    return (
        os.environ.get("MINICNN_PIN_THREADS", "1") != "0"
        and not backend.OPENBLAS_SPINS
        and hasattr(os, "sched_setaffinity")
        and numba.config.NUMBA_NUM_THREADS > 1
        and len(os.sched_getaffinity(0)) > 1
    )


def pin_workers() -> dict[int, int]:
    """Pin each of Numba's worker threads to its own core, once per process.

    Returns ``{worker thread id: core}`` for the workers pinned by this call (empty when
    they were pinned before, or when pinning does not apply: see the module docstring)."""
    global _pinned_pid
    if _pinned_pid == os.getpid():
        return {}
    _pinned_pid = os.getpid()
    if not _wanted():
        return {}
    cores = sorted(os.sched_getaffinity(0))
    threads = numba.get_num_threads()
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)  # every worker, not just those in use
    try:
        ids = _worker_ids(numba.config.NUMBA_NUM_THREADS)
    finally:
        numba.set_num_threads(threads)
    if numba.threading_layer() != "workqueue":
        return {}
    pinned = {}
    for number, tid in {int(n): int(t) for n, t in ids}.items():
        core = cores[number % len(cores)]
        try:
            os.sched_setaffinity(tid, {core})
        except OSError:  # not allowed here (a container's policy): leave the rest alone
            break
        pinned[tid] = core
    return pinned
