"""Numba CPU kernels for the hot paths. Anything not here falls back to ``reference.py``.

Every kernel is compiled with ``cache=True`` so the compile cost (about a second each)
is paid once per machine, not once per process. Each public function checks whether
its fast case applies and otherwise calls the reference kernel: the results must be
the same, and ``tests/backend`` checks that they are.
"""

from __future__ import annotations

import numba
import numpy as np

from minicnn.backend import reference

# ---------------------------------------------------------------- scatter-add


@numba.njit(cache=True)
def _add_rows(target, index, values):  # target[index[i], :] += values[i, :], rows in order
    for i in range(index.shape[0]):
        row = index[i]
        for j in range(target.shape[1]):
            target[row, j] += values[i, j]


def index_add(target, index, values) -> None:
    """In place ``target[index] += values`` with repeats accumulated (see the reference).

    Fast case: ``index`` is one 1-D integer array selecting rows of a C-contiguous
    float ``target`` -- the backward of ``x[idx]`` and of cross-entropy's target pick.
    """
    fast = (
        isinstance(index, np.ndarray)
        and index.ndim == 1
        and index.dtype.kind in "iu"
        and target.ndim >= 1
        and target.flags.c_contiguous
        and target.dtype.kind == "f"
    )
    if not fast:
        reference.index_add(target, index, values)
        return
    n = target.shape[0]
    idx = index.astype(np.int64)
    idx = np.where(idx < 0, idx + n, idx)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexError(f"index out of range for axis 0 of size {n}")
    rows = np.broadcast_to(values, (idx.shape[0],) + target.shape[1:]).astype(target.dtype)
    _add_rows(target.reshape(n, -1), idx, np.ascontiguousarray(rows).reshape(idx.shape[0], -1))


# ---------------------------------------------------------------- log-softmax over rows


@numba.njit(cache=True, parallel=True)
def _log_softmax_rows(x, out):  # per row: out = x - max - log(sum(exp(x - max)))
    for i in numba.prange(x.shape[0]):
        m = x[i, 0]
        for j in range(1, x.shape[1]):
            m = max(m, x[i, j])
        s = 0.0
        for j in range(x.shape[1]):
            s += np.exp(x[i, j] - m)
        lse = m + np.log(s)
        for j in range(x.shape[1]):
            out[i, j] = x[i, j] - lse


def log_softmax(x, axis: int):
    """``log_softmax`` along ``axis``; fast case: the last axis of a float array."""
    if x.ndim == 0 or axis % x.ndim != x.ndim - 1 or x.dtype.kind != "f" or x.shape[-1] == 0:
        return reference.log_softmax(x, axis)
    rows = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
    out = np.empty_like(rows)
    _log_softmax_rows(rows, out)
    return out.reshape(x.shape)


KERNELS = {
    "index_add": index_add,
    "log_softmax": log_softmax,
}
