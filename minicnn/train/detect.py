"""The detection recipe: the detectors the command line trains, their data and
augmentation, and :class:`DetectionTrainer`, the training loop for detectors.

A task recipe is one module of ``minicnn.train`` that says, for one task, which models it
takes, how its data is loaded and augmented, what a training step computes, what an
evaluation measures and which figures a run folder gets; the loop around it (epochs,
schedules, checkpoints, resume, ``metrics.csv``) is :class:`~minicnn.train.Trainer`'s.
Classification is the trainer itself; detection (this module) overrides the step, the
evaluation and the figures. A detector follows torchvision's calling convention::

    model.train(); losses = model(images, targets)   # a dict of loss Tensors; summed
    model.eval();  preds = model(images)             # one {"boxes", "scores", "labels"} per image

Each epoch records the mean of every loss term (``train_<term>``) and their sum
(``train_loss``), and on the test scenes COCO's mAP from
:class:`minicnn.metrics.MeanAveragePrecision`: ``val_map`` (IoU 0.5:0.95), ``val_map_50``
and ``val_map_75``. The run folder gets ``figures/curves.png`` (loss terms and mAP),
``figures/detections.png`` (predicted boxes against the ground truth) and
``figures/precision_recall.png``. :func:`build_detector` builds a detector with the
recipe's options (:data:`DETECTOR_OPTIONS`: the small YOLO's cross-entropy class term).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from minicnn.autograd import no_grad, tensor
from minicnn.backend import to_device
from minicnn.data import joint_transforms as J
from minicnn.data import load_data
from minicnn.metrics import MeanAveragePrecision
from minicnn.serialization import save_json
from minicnn.train.trainer import Trainer

__all__ = [
    "DEFAULTS",
    "DETECTORS",
    "DETECTOR_OPTIONS",
    "DetectionTrainer",
    "build_detector",
    "default_image_size",
    "detection_data",
    "detector_constructor",
    "predictions_to_numpy",
]

# the detectors of minicnn.models.detection the command line trains, and whether their
# num_classes counts the background (torchvision's SSD: C + 1) or not (YOLO v1: C)
DETECTORS: dict[str, bool] = {
    "yolo_v1_small": False,
    "yolo_v1": False,
    "ssd300_vgg16": True,
    "ssdlite320_mobilenet_v3_large": True,
    "yolov5n": False,
    "fasterrcnn_small": True,  # torchvision's Faster R-CNN, CPU-sized (64 x 64 scenes)
}
DEFAULT_DETECTOR = "yolo_v1_small"
# the recipe's options for a detector's constructor, beyond num_classes and image_size. The
# small YOLO trains with the cross-entropy class term (``class_loss="ce"``; the deck's squared
# error of a softmax learns the classes slowly: its gradient vanishes where the network is
# confidently wrong) and starts every box at confidence sigmoid(-4) = 0.018
# (``confidence_bias``: almost every box is empty, so the no-object term does not dominate
# the first updates)
DETECTOR_OPTIONS: dict[str, dict] = {
    "yolo_v1_small": {"class_loss": "ce", "confidence_bias": -4.0},
}
# yolov5n trains with the release's COCO class gain 0.5 itself, not scaled by C / 80 as the
# release's train.py does (0.0625 for 10 digits): with the scaled gain the class term had
# hardly left its prior after 3 of the recipe's 10 epochs (mAP@0.5 0.13); with 0.5 it
# falls from the fourth epoch on, and the default job ends at mAP@0.5 0.845
DETECTOR_OPTIONS["yolov5n"] = {"cls_gain": 0.5}
# the recipe's settings where the command line has no value of its own for detection
DEFAULTS = {
    "epochs": 10,
    "batch_size": 16,
    "lr": 3e-3,
    "weight_decay": 5e-4,
    "optimizer": "adam",
    "scheduler": "onecycle",
}
DATA_IMAGE_SIZE = 64  # for a detector without an input size of its own
# the recipe's scene size for a detector, where it is fixed here: the small YOLO trains on
# 64x64 scenes (its own default: 8 x 8 cells of 8 pixels, so two digits rarely share a cell)
RECIPE_IMAGE_SIZE = {"yolo_v1_small": 64}
# YOLOv5n (release anchors, strides 8/16/32) on the 64x64 scenes: 8x8, 4x4 and 2x2 cells
RECIPE_IMAGE_SIZE["yolov5n"] = 64
# the score threshold while measuring mAP (a detector's own, e.g. YOLO's 0.3 from the deck,
# is for showing boxes; mAP integrates over every threshold, so it needs the low scores
# too: torchvision's SSD keeps scores above 0.01)
EVAL_SCORE_THRESH = 0.01


@contextmanager
def eval_score_threshold(model) -> Iterator[None]:
    """Lower ``model``'s score threshold to :data:`EVAL_SCORE_THRESH` inside the ``with``
    block and restore it after. The one-stage detectors keep ``score_thresh`` themselves,
    the two-stage ones (Faster / Mask R-CNN) on their ``roi_heads``; a model with neither
    is left as it is."""
    owner = model if hasattr(model, "score_thresh") else getattr(model, "roi_heads", None)
    own_thresh = getattr(owner, "score_thresh", None)
    if own_thresh is None:
        yield
        return
    owner.score_thresh = min(own_thresh, EVAL_SCORE_THRESH)
    try:
        yield
    finally:
        owner.score_thresh = own_thresh

# a random zoom: a window of this fraction of the side, resized back to the full size.
# None (the default): the procedural scenes are varied enough, and under a 10-minute budget
# the detector learns faster without it
ZOOM: float | None = None
COLOR_JITTER = 0.3


def detector_constructor(name: str) -> Callable:
    """``minicnn.models.detection.<name>``; ValueError for a name that is not a detector of
    :data:`DETECTORS` or not in this installation."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; expected one of {', '.join(DETECTORS)}")
    try:
        from minicnn.models import detection
    except ImportError:
        detection = None
    ctor = getattr(detection, name, None)
    if ctor is None:
        raise ValueError(f"detector {name!r} is not available in this installation of minicnn "
                         f"(minicnn.models.detection has no {name})")
    return ctor


def default_image_size(name: str) -> int:
    """The scene size the recipe trains the detector ``name`` on: :data:`RECIPE_IMAGE_SIZE`,
    else the input size it is built for (its constructor's ``image_size`` default), else
    :data:`DATA_IMAGE_SIZE` (detectors that resize their input themselves, like SSD)."""
    if name in RECIPE_IMAGE_SIZE:
        detector_constructor(name)  # (the detector must exist)
        return RECIPE_IMAGE_SIZE[name]
    param = inspect.signature(detector_constructor(name)).parameters.get("image_size")
    if param is None or param.default is inspect.Parameter.empty:
        return DATA_IMAGE_SIZE
    return int(param.default)


def build_detector(name: str, num_object_classes: int, image_size: int | None = None):
    """The detector ``name`` for ``num_object_classes`` object classes (labels 1..C):
    ``num_classes`` C + 1 for detectors with a background class (SSD), C for YOLO v1;
    ``image_size`` for detectors that take one; the recipe's options
    (:data:`DETECTOR_OPTIONS`)."""
    ctor = detector_constructor(name)
    kwargs = {"num_classes": num_object_classes + int(DETECTORS[name]),
              **DETECTOR_OPTIONS.get(name, {})}
    if image_size is not None and "image_size" in inspect.signature(ctor).parameters:
        kwargs["image_size"] = image_size
    return ctor(**kwargs)


def detection_data(name: str, root=None, subset: int | None = None, image_size: int = 64,
                   hflip: bool = False):
    """``(train, test)`` detection datasets called ``name`` drawn at ``image_size``, the
    training set augmented: colour jitter, a random zoom when :data:`ZOOM` is set (a window
    of that fraction of the side at a random place, resized back; objects that leave it are
    dropped) and, with ``hflip``, horizontal flips (not for digits: a mirrored 2 is no
    digit)."""
    train, test = load_data(name, root, subset, image_size, task="detect")
    steps = [J.ColorJitter(COLOR_JITTER, COLOR_JITTER, COLOR_JITTER)]
    if ZOOM is not None and ZOOM < 1:
        steps[:0] = [J.RandomCrop(max(1, round(ZOOM * image_size))), J.Resize(image_size)]
    if hflip:
        steps.insert(0, J.RandomHorizontalFlip())
    _set_transforms(train, J.Compose(steps))
    return train, test


def _set_transforms(dataset, transforms) -> None:
    """Give a scene dataset (or the dataset a ``Subset`` wraps) its joint transforms."""
    inner = getattr(dataset, "dataset", dataset)
    inner.transforms = transforms


def predictions_to_numpy(preds: list[dict]) -> list[dict]:
    """A detector's eval output (dicts of Tensors, maybe on a GPU) as dicts of NumPy arrays."""
    return [{k: np.asarray(to_device(v.array, "cpu")) if hasattr(v, "array") else np.asarray(v)
             for k, v in p.items()} for p in preds]


class DetectionTrainer(Trainer):
    """:class:`~minicnn.train.Trainer` for detectors (see the module docstring).

    The loaders yield ``(images (N, 3, H, W), targets)`` with ``targets`` a list of
    torchvision target dicts (``collate_fn=minicnn.data.detection_collate``). ``classes``
    are the dataset's class names, ``"__background__"`` first.
    """

    def __init__(self, model, optimizer, classes=None, **kwargs):
        super().__init__(model, optimizer, loss_fn=_no_loss_fn, classes=classes, **kwargs)

    def _batch(self, images, targets):
        x = tensor(np.asarray(images, dtype=np.float32), device=self.device)
        t = [{"boxes": tensor(np.asarray(tg["boxes"], np.float32), device=self.device),
              "labels": tensor(np.asarray(tg["labels"], np.int64), device=self.device)}
             for tg in targets]
        return x, t

    def training_step(self, x, y) -> tuple:
        """The detector's loss terms on one batch: ``(their sum, {term: value * batch
        size})``, so each epoch records every term's mean (``train_<term>``) and their sum
        (``train_loss``)."""
        losses = self.model(x, y)
        if not isinstance(losses, dict) or not losses:
            raise TypeError(f"{type(self.model).__name__} in train mode must return a dict "
                            f"of loss Tensors for model(images, targets), got "
                            f"{type(losses).__name__}")
        n = len(y)
        return sum(losses.values()), {k: v.item() * n for k, v in losses.items()}

    def _nonfinite_detail(self, sums: dict, n: int) -> str:
        return f" ({', '.join(f'{k} {v / n:.4g}' for k, v in sums.items())})"

    def predict(self, images) -> list[dict]:
        """The model's detections on ``images (N, 3, H, W)``, as NumPy dicts."""
        self.model.eval()
        with no_grad():
            return predictions_to_numpy(self.model(tensor(np.asarray(images, np.float32),
                                                          device=self.device)))

    def evaluate(self, loader, num_classes: int | None = None) -> dict:
        """COCO mAP on ``loader``: ``val_map``, ``val_map_50``, ``val_map_75``, per-class
        AP (``per_class``: label -> AP at 0.5:0.95), the precision table ``precision (T, R,
        K, A, M)`` with its ``labels`` (K,), and the first batch (``examples``) for figures.
        The model's score threshold is lowered to :data:`EVAL_SCORE_THRESH` meanwhile
        (:func:`eval_score_threshold`)."""
        metric = MeanAveragePrecision(class_metrics=True, extended_summary=True)
        examples, seen = None, 0
        for images, targets in loader:
            with eval_score_threshold(self.model):
                preds = self.predict(images)
            truth = [{k: np.asarray(t[k]) for k in ("boxes", "labels", "iscrowd", "area")
                      if k in t} for t in targets]
            metric.update(preds, truth)
            if examples is None:
                examples = (np.asarray(images), truth, preds)
            seen += len(targets)
        if seen == 0:
            raise ValueError("evaluate: the loader yielded no images, expected at least one "
                             "(an empty test set?)")
        result = metric.compute()
        labels = result["classes"].numpy().astype(np.int64)
        per_class = result["map_per_class"].numpy().reshape(-1)
        return {
            "val_map": float(result["map"].item()),
            "val_map_50": float(result["map_50"].item()),
            "val_map_75": float(result["map_75"].item()),
            "per_class": {int(k): float(v) for k, v in zip(labels, per_class)}
            if len(per_class) == len(labels) else {},
            "precision": result["precision"].numpy(),
            "labels": labels,
            "examples": examples,
            "images": seen,
        }

    def _val_row(self, evaluation: dict) -> dict:
        return {k: evaluation[k] for k in ("val_map", "val_map_50", "val_map_75")}

    def _val_message(self, row: dict) -> str:
        return (f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}, "
                f"mAP@0.5 {row['val_map_50']:.4f}, mAP@0.5:0.95 {row['val_map']:.4f}")

    def _write_figures(self, val_loader, evaluation) -> None:
        from minicnn import viz

        figures = self.run_dir / "figures"
        figures.mkdir(parents=True, exist_ok=True)
        viz.plot_detection_curves(self.history, figures / "curves.png")
        if evaluation is None:
            return
        classes = self.classes or ["__background__"] + [str(k) for k in evaluation["labels"]]
        images, truth, preds = evaluation["examples"]
        viz.plot_detections(images, preds, classes, figures / "detections.png", targets=truth)
        viz.plot_precision_recall(evaluation["precision"], evaluation["labels"], classes,
                                  figures / "precision_recall.png")
        final = {k: evaluation[k] for k in ("val_map", "val_map_50", "val_map_75", "images")}
        final["ap_per_class"] = {classes[k] if 0 <= k < len(classes) else str(k): v
                                 for k, v in evaluation["per_class"].items()}
        save_json({"history": self.history, "final": final}, self.run_dir / "metrics.json")


def _no_loss_fn(*_):
    raise TypeError("a detector computes its own losses: model(images, targets)")
