"""``Dataset``: anything with ``__len__`` and ``__getitem__(i) -> sample``, as in PyTorch.

Samples are NumPy values: typically ``(image, label)`` with ``image`` a float32 array
``(C, H, W)`` in [0, 1] and ``label`` an int.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


class Dataset:
    """Base class: subclasses implement ``__len__`` and ``__getitem__``."""

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int):
        raise NotImplementedError


class TensorDataset(Dataset):
    """Samples are the ``i``-th rows of equally long arrays: ``(x[i], y[i], ...)``.

    ``transform`` (optional) is applied to the first array's row (the image).
    """

    def __init__(self, *arrays, transform: Callable | None = None):
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        arrays = tuple(np.asarray(a) for a in arrays)  # a minicnn Tensor gives its array
        n = len(arrays[0])
        for i, a in enumerate(arrays):
            if len(a) != n:
                raise ValueError(f"TensorDataset: array {i} has {len(a)} rows, expected {n}")
        self.arrays = arrays
        self.transform = transform

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: int):
        sample = [a[index] for a in self.arrays]
        if self.transform is not None:
            sample[0] = self.transform(sample[0])
        return tuple(sample)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order.

    A dataset with class names (``classes``) gives its subsets the same ``classes``.
    """

    def __init__(self, dataset: Dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = [int(i) for i in indices]
        for i in self.indices:
            if not 0 <= i < len(dataset):
                raise IndexError(f"Subset: index {i} out of range for a dataset of {len(dataset)}")
        _carry_classes(dataset, self)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        return self.dataset[self.indices[index]]


class TransformedDataset(Dataset):
    """``dataset`` with ``transform`` applied to the image of each sample.

    ``dataset[i]`` is ``(image, label, ...)``; this yields ``(transform(image), label, ...)``.
    Use it to give one dataset's splits different transforms (augmentation for training,
    only ``Normalize`` for testing) without changing the dataset. ``classes`` is carried over.
    """

    def __init__(self, dataset: Dataset, transform: Callable):
        if not callable(transform):
            raise TypeError(
                f"TransformedDataset: transform must be callable, got {type(transform).__name__}"
            )
        self.dataset, self.transform = dataset, transform
        _carry_classes(dataset, self)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        image, *rest = self.dataset[index]
        return (self.transform(image), *rest)


def _carry_classes(source, wrapper) -> None:
    """A wrapper of a dataset with class names has the same ``classes``."""
    if hasattr(source, "classes"):
        wrapper.classes = source.classes
