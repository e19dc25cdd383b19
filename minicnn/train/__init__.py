"""``minicnn.train``: the training loop, metrics and checkpoints, and the task recipes
(classification: :class:`Trainer`; detection: :mod:`minicnn.train.detect`; segmentation:
:mod:`minicnn.train.segment`; landmarks: :mod:`minicnn.train.landmarks`)."""

from minicnn.train.checkpoint import (
    CheckpointError,
    find_checkpoint,
    load_checkpoint,
    read_state,
    save_checkpoint,
)
from minicnn.train.detect import DetectionTrainer
from minicnn.train.landmarks import LandmarkTrainer
from minicnn.train.metrics import RunningMean, confusion_matrix, topk_correct
from minicnn.train.run_dir import (
    RunDirError,
    RunLock,
    claim_run_dir,
    create_run_dir,
    remove_stale_temp,
)
from minicnn.train.segment import SegmentationTrainer
from minicnn.train.trainer import NonFiniteLossError, Trainer, fit

__all__ = [
    "CheckpointError",
    "DetectionTrainer",
    "LandmarkTrainer",
    "NonFiniteLossError",
    "RunDirError",
    "RunLock",
    "RunningMean",
    "SegmentationTrainer",
    "Trainer",
    "claim_run_dir",
    "confusion_matrix",
    "create_run_dir",
    "find_checkpoint",
    "fit",
    "load_checkpoint",
    "read_state",
    "remove_stale_temp",
    "save_checkpoint",
    "topk_correct",
]
