"""``minicnn.train``: the training loop, metrics and checkpoints."""

from minicnn.train.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from minicnn.train.metrics import RunningMean, confusion_matrix, topk_correct
from minicnn.train.trainer import Trainer, fit

__all__ = [
    "RunningMean",
    "Trainer",
    "confusion_matrix",
    "find_checkpoint",
    "fit",
    "load_checkpoint",
    "save_checkpoint",
    "topk_correct",
]
