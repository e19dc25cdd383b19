"""Classification metrics on NumPy arrays: top-k accuracy, confusion matrix, running mean."""

from __future__ import annotations

import numpy as np


def topk_correct(logits: np.ndarray, targets: np.ndarray, k: int = 1) -> int:
    """How many rows of ``logits (N, C)`` have their target among the ``k`` largest scores."""
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return int((top == targets[:, None]).any(axis=1).sum())


def confusion_matrix(predictions: np.ndarray, targets: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C, C)`` counts: row = true class, column = predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (targets, predictions), 1)
    return cm


class RunningMean:
    """A sample-weighted running average (of the loss over an epoch)."""

    def __init__(self):
        self.total, self.count = 0.0, 0

    def update(self, value: float, n: int = 1) -> None:
        self.total += value * n
        self.count += n

    @property
    def mean(self) -> float:
        return self.total / max(self.count, 1)
