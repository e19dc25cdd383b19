"""Reused scratch memory for the big temporary arrays of convolution.

im2col's column matrix, its gradient, and the Winograd tiles are the largest arrays a
convolution makes (several times the input). They are carved out of buffers kept in
one :class:`Workspace`, ``WORKSPACE``, shared by conv.py and winograd.py.
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["Workspace", "WORKSPACE"]


class Workspace:
    """Reused scratch memory for big temporaries (im2col's ``cols``, Winograd's tiles).

    A fresh array above 32 MB comes straight from the OS (glibc maps it), and touching
    its pages the first time costs as much as filling it again: on a 64-channel 32x32
    layer at batch 32, im2col into a fresh 75 MB array took 10 ms, into a reused one 3 ms
    (benchmarks/README.md, "Performance notes"). So big scratch arrays are carved out of
    buffers kept here. A buffer is handed out again only when nothing else refers to it:
    every view of a buffer holds a reference to it, so ``sys.getrefcount`` tells whether
    the ``cols`` saved for a backward pass are still alive. CPU (NumPy) arrays only:
    CuPy has its own memory pool.
    """

    MIN_BYTES = 4 << 20  # smaller arrays come from malloc's free lists anyway
    FREE_REFCOUNT = 3  # the list, the loop variable and getrefcount's own argument

    def __init__(self, max_bytes: int = 2 << 30):
        self.max_bytes = max_bytes
        self.buffers: list[np.ndarray] = []

    def empty(self, shape, dtype, xp=np):
        """An uninitialized C-contiguous array, from a free buffer when one fits."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        if xp is not np or nbytes < self.MIN_BYTES:
            return xp.empty(shape, dtype=dtype)
        for buf in self.buffers:  # the smallest free buffer that fits, within 2x
            if nbytes <= buf.nbytes <= 2 * nbytes and sys.getrefcount(buf) <= self.FREE_REFCOUNT:
                return buf[:nbytes].view(dtype).reshape(shape)
        buf = np.empty(nbytes, dtype=np.uint8)
        self._make_room(nbytes)
        if sum(b.nbytes for b in self.buffers) + nbytes <= self.max_bytes:
            self.buffers.append(buf)
            self.buffers.sort(key=lambda b: b.nbytes)
        return buf.view(dtype).reshape(shape)

    def _make_room(self, nbytes: int) -> None:
        """Drop free buffers (largest first) until ``nbytes`` more fit under the cap."""
        for buf in sorted(self.buffers, key=lambda b: -b.nbytes):
            if sum(b.nbytes for b in self.buffers) + nbytes <= self.max_bytes:
                return
            if sys.getrefcount(buf) <= self.FREE_REFCOUNT + 1:  # + the sorted() list
                # by identity: list.remove would compare the arrays element by element
                self.buffers = [b for b in self.buffers if b is not buf]

    def clear(self) -> None:
        """Forget every buffer (memory in use elsewhere stays valid)."""
        self.buffers.clear()


WORKSPACE = Workspace()
