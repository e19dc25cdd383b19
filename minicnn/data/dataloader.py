"""``DataLoader``: batches of samples, shuffled reproducibly, optionally built ahead.

Each epoch the loader draws one seed from minicnn's global generator. The shuffle order
and every random transform of that epoch derive from this seed (batch ``b`` uses its own
generator seeded by ``(seed, b)``), so a seeded run repeats exactly, with or without the
background thread, and a run resumed from a checkpoint continues identically.

With ``prefetch > 0`` a background thread builds up to that many batches ahead while the
model computes (NumPy releases the GIL in most of its work).

Batches are NumPy arrays: this package never imports autograd. PyTorch-style code, whose
``net(inputs)`` needs Tensors, uses :class:`minicnn.utils.data.DataLoader`: this loader with
each batch's arrays wrapped as minicnn Tensors (no copy).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

import numpy as np

from minicnn import random as _random
from minicnn.data import rng as data_rng
from minicnn.data.dataset import Dataset


def default_collate(samples: list):
    """Stack a list of samples into a batch: tuples stay tuples, numbers become arrays.

    ``[(img (C,H,W), 3), (img, 7)] -> (images (N,C,H,W), labels (N,) int64)``
    """
    first = samples[0]
    if isinstance(first, tuple | list):
        return tuple(default_collate([s[i] for s in samples]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: default_collate([s[k] for s in samples]) for k in first}
    if isinstance(first, bool | np.bool_):
        return np.asarray(samples, dtype=bool)
    if isinstance(first, int | np.integer):
        return np.asarray(samples, dtype=np.int64)
    if isinstance(first, float | np.floating) and not isinstance(first, np.ndarray):
        return np.asarray(samples, dtype=np.float32)
    return np.stack([np.asarray(s) for s in samples])


class DataLoader:
    """Iterate over ``dataset`` in batches of NumPy arrays (Tensors: ``minicnn.utils.data``).

    Args:
        dataset: a :class:`Dataset` (or anything with ``len`` and indexing).
        batch_size: samples per batch.
        shuffle: a new random order every epoch (from the seeded generator).
        drop_last: drop the last batch if it is smaller than ``batch_size``.
        collate_fn: turns a list of samples into a batch (:func:`default_collate`).
        prefetch: batches to build ahead in a background thread (0: build in the loop).
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        collate_fn: Callable | None = None,
        prefetch: int = 0,
    ):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if prefetch < 0:
            raise ValueError(f"DataLoader: prefetch must be >= 0, got {prefetch}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.collate_fn = collate_fn or default_collate
        self.prefetch = prefetch

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _batches(self, seed: int) -> Iterator:
        n = len(self.dataset)
        order = np.random.default_rng(seed).permutation(n) if self.shuffle else np.arange(n)
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            with data_rng.using(np.random.default_rng([seed, b + 1])):
                batch = self.collate_fn([self.dataset[int(i)] for i in idx])
            yield batch

    def __iter__(self) -> Iterator:
        seed = int(_random.generator().integers(2**63 - 1))
        if self.prefetch == 0:
            yield from self._batches(seed)
            return
        yield from _prefetched(self._batches(seed), self.prefetch)


def _prefetched(batches: Iterator, depth: int) -> Iterator:
    """Run the ``batches`` iterator in a thread, keeping up to ``depth`` batches ready.

    Leaving the loop early (``break``, an exception, ``close()`` or the iterator being
    garbage-collected) sets ``stop``; the thread checks it at least every 0.1 s while it
    waits for room in the queue, and before each batch, so it ends promptly and is joined.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        """Queue ``item`` unless the consumer has gone; False when it has."""
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for batch in batches:
                if not put(batch):
                    return
            put(done)
        except BaseException as e:  # hand the error to the consumer
            put(e)

    thread = threading.Thread(target=work, name="minicnn-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        if thread is not threading.current_thread():  # (a garbage collection in the thread)
            thread.join()
