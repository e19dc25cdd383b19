"""``minicnn.utils.data``: PyTorch's ``torch.utils.data``, whose batches are minicnn Tensors.

    from minicnn.utils.data import DataLoader, TensorDataset, random_split

    dataset = TensorDataset(images, labels)            # arrays or minicnn Tensors
    train_set, val_set = random_split(dataset, [0.8, 0.2])
    for inputs, labels in DataLoader(train_set, batch_size=32, shuffle=True):
        outputs = net(inputs)                          # inputs: Tensor (N, C, H, W) float32
        loss = criterion(outputs, labels)              # labels: Tensor (N,) int64

Two loaders, one engine. :class:`minicnn.data.DataLoader` yields NumPy arrays: the data
layer (datasets, transforms, shuffling, prefetching) is NumPy only and never imports
autograd, so it can be read and tested on its own. This module's :class:`DataLoader` is
the same loader with every array of a batch wrapped as a Tensor (no copy) at its edge,
which is what PyTorch code expects and what the README and lessons use. Samples may be
NumPy values or minicnn Tensors; ``default_collate`` stacks them, Python ints become an
int64 tensor (labels, as in PyTorch) and Python floats a float32 one (PyTorch's collate
gives float64 there; float32 is what the layers take).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from minicnn import random as _random
from minicnn.autograd.tensor import Tensor
from minicnn.backend import to_device
from minicnn.data import dataloader as _numpy_loader
from minicnn.data import dataset as _numpy_dataset
from minicnn.data import detection as _detection
from minicnn.data.dataset import Dataset, Subset

__all__ = [
    "DataLoader", "Dataset", "Subset", "TensorDataset", "default_collate", "detection_collate",
    "random_split", "to_tensors",
]


def to_tensors(batch):
    """Every NumPy array in ``batch`` (nested tuples, lists, dicts) as a Tensor sharing its
    memory; Tensors and anything else stay as they are."""
    if isinstance(batch, np.ndarray):
        return Tensor._wrap(batch)
    if isinstance(batch, tuple | list):
        return type(batch)(to_tensors(b) for b in batch)
    if isinstance(batch, dict):
        return {k: to_tensors(v) for k, v in batch.items()}
    return batch


def default_collate(samples: list):
    """Stack samples into a batch of Tensors (``torch.utils.data.default_collate``).

    ``[(image (C, H, W), 3), (image, 7)] -> (Tensor (N, C, H, W), Tensor (N,) int64)``;
    tuples stay tuples, dicts stay dicts (collated per key).
    """
    return to_tensors(_numpy_loader.default_collate(samples))


def detection_collate(samples: list) -> tuple[Tensor, list[dict]]:
    """Batch detection samples ``[(image (3, H, W), target dict), ...]`` into ``(images,
    targets)``: ``images`` a Tensor ``(N, 3, H, W)``, ``targets`` a list of ``N`` dicts whose
    arrays are Tensors (``boxes`` ``(K, 4)`` float32, ``labels`` ``(K,)`` int64, ...), as
    torchvision's detection references batch them; see
    :func:`minicnn.data.detection.detection_collate` for the checks.

        loader = DataLoader(digit_scenes(), batch_size=16, shuffle=True,
                            collate_fn=detection_collate)
        for images, targets in loader:
            losses = model(images, targets)        # a dict of loss Tensors
    """
    return to_tensors(_detection.detection_collate(samples))


class DataLoader(_numpy_loader.DataLoader):
    """Iterate over ``dataset`` in batches of minicnn Tensors (as ``torch.utils.data.DataLoader``).

    The arguments are :class:`minicnn.data.DataLoader`'s (``batch_size``, ``shuffle``,
    ``drop_last``, ``collate_fn``, ``prefetch``); shuffling draws from ``minicnn.manual_seed``'s
    generator. Whatever ``collate_fn`` returns, its NumPy arrays come out as Tensors.
    """

    def __iter__(self) -> Iterator:
        batches = super().__iter__()
        try:
            for batch in batches:
                yield to_tensors(batch)
        finally:
            batches.close()  # stops a prefetching thread when the loop is left early


class TensorDataset(_numpy_dataset.TensorDataset):
    """Samples are the ``i``-th rows of equally long tensors: ``(x[i], y[i], ...)`` as Tensors.

    Takes minicnn Tensors (or NumPy arrays); they are kept as CPU arrays (``.tensors`` gives
    them as Tensors) and batches are built on the CPU: move them with ``.to(device)``.
    ``transform`` (optional, a minicnn extra) is applied to the first tensor's row.
    """

    def __init__(self, *tensors, transform: Callable | None = None):
        arrays = [to_device(t.array, "cpu") if isinstance(t, Tensor) else t for t in tensors]
        super().__init__(*arrays, transform=transform)

    @property
    def tensors(self) -> tuple[Tensor, ...]:
        return tuple(Tensor._wrap(a) for a in self.arrays)

    def __getitem__(self, index: int):
        return to_tensors(tuple(np.asarray(v) for v in super().__getitem__(index)))


def random_split(dataset, lengths: Sequence[int | float], generator=None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random :class:`Subset` s of the given lengths.

    ``lengths`` are counts summing to ``len(dataset)``, or fractions summing to 1 (the
    remainder of flooring goes one by one to the first subsets, as in PyTorch). The order
    comes from ``minicnn.manual_seed``'s generator, or from ``generator`` (a
    ``numpy.random.Generator``) when given.
    """
    n = len(dataset)
    lengths = [int(x) if isinstance(x, np.integer) else x for x in lengths]
    if not lengths or any(isinstance(x, bool) or not isinstance(x, int | float) or x < 0
                          for x in lengths):
        raise ValueError(f"random_split: lengths must be non-negative numbers, got {lengths}")
    if all(isinstance(x, int) for x in lengths):
        counts = lengths
    elif math.isclose(sum(lengths), 1.0) and all(x <= 1 for x in lengths):
        counts = [math.floor(n * x) for x in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
    else:
        raise ValueError(
            f"random_split: lengths must be ints summing to the dataset's length ({n}) or "
            f"fractions summing to 1, got {lengths}"
        )
    if sum(counts) != n:
        raise ValueError(
            f"random_split: lengths {lengths} sum to {sum(counts)}, expected the dataset's "
            f"length {n}"
        )
    if generator is None:
        generator = _random.generator()
    elif not isinstance(generator, np.random.Generator):
        raise TypeError(
            f"random_split: generator must be a numpy.random.Generator or None, got "
            f"{type(generator).__name__}"
        )
    order = generator.permutation(n)
    bounds = np.cumsum([0] + counts)
    return [Subset(dataset, order[a:b].tolist()) for a, b in zip(bounds[:-1], bounds[1:])]
