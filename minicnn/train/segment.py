"""The segmentation recipe: the per-pixel classifiers the command line trains, their data
and augmentation, and :class:`SegmentationTrainer`.

A task recipe (see :mod:`minicnn.train.detect`) says which models a task takes, how its
data is loaded and augmented, what a training step computes, what an evaluation measures
and which figures a run folder gets; the loop (epochs, schedules, checkpoints, resume,
``metrics.csv``) is :class:`~minicnn.train.Trainer`'s. A segmenter maps images ``(N, 3, H,
W)`` to logits ``(N, C, H, W)``, ``C`` counting the background (class 0); the loss is the
per-pixel cross-entropy averaged over ``N * H * W`` (pixels labelled
:data:`~minicnn.data.segmentation.IGNORE_INDEX` count in neither sum).

Each epoch records the training loss and, on the held-out test scenes (drawn from other
seeds than the training scenes), the loss, the mean IoU (``val_miou``), the mean Dice
(``val_dice``) and the pixel accuracy (``val_pixel_acc``) of
:class:`minicnn.metrics.ConfusionMatrix` (the IoU of the summed confusion matrix, averaged
over the classes). The run folder gets ``figures/curves.png`` and
``figures/segmentations.png`` (image / truth / prediction).

The networks are built CPU-sized (:data:`SEGMENTERS`): the papers' widths (U-Net's 64 ->
1024 channels, DeconvNet's VGG-16 with 4096-wide fc6/fc7) would take hours per epoch on 64 x 64
scenes on a CPU; the recipe keeps each architecture and shrinks its width and depth.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from minicnn.autograd import no_grad, tensor
from minicnn.backend import to_device
from minicnn.data import joint_transforms as J
from minicnn.data import load_data
from minicnn.data.segmentation import IGNORE_INDEX, check_mask
from minicnn.metrics import ConfusionMatrix
from minicnn.nn import functional as F
from minicnn.serialization import save_json
from minicnn.train.metrics import RunningMean
from minicnn.train.trainer import Trainer

__all__ = [
    "DEFAULTS",
    "DEFAULT_SEGMENTER",
    "SEGMENTERS",
    "SegmentationTrainer",
    "build_segmenter",
    "predict_masks",
    "segmentation_data",
]


def _unet(num_classes: int, in_channels: int):
    from minicnn.models.segmentation import unet

    return unet(in_channels, num_classes, base_width=16, depth=3, padding="same",
                batch_norm=True)


def _resunet(num_classes: int, in_channels: int):
    from minicnn.models.segmentation import resunet

    return resunet(in_channels, num_classes, base_width=16, depth=3)


def _deconvnet(num_classes: int, in_channels: int):
    from minicnn.models.segmentation import DeconvNet

    # VGG's pattern (two 3x3 convolutions and a pool with switches per stage), three
    # stages of 16, 32, 64 channels, fc6/fc7 128 wide: inputs of at least 7 * 2**3 = 56
    return DeconvNet([16, 16, "M", 32, 32, "M", 64, 64, "M"], num_classes, in_channels,
                     fc_channels=128, encoder_batch_norm=True)


# the segmenters the command line trains, each built CPU-sized from the network of
# minicnn.models.segmentation: unet (same padding, 16 -> 128 channels over 3 levels, batch
# norm), resunet (16 -> 128 channels) and deconvnet (above)
SEGMENTERS: dict[str, Callable] = {"unet": _unet, "resunet": _resunet, "deconvnet": _deconvnet}
DEFAULT_SEGMENTER = "unet"
# the recipe's settings where the command line has no value of its own for segmentation
DEFAULTS = {
    "epochs": 10,
    "batch_size": 16,
    "lr": 3e-3,
    "weight_decay": 1e-4,
    "optimizer": "adam",
    "scheduler": "onecycle",
}
COLOR_JITTER = 0.3
EVAL_BATCH = 32


def build_segmenter(name: str, num_classes: int, in_channels: int = 3):
    """The segmenter ``name`` of :data:`SEGMENTERS` for ``num_classes`` classes (with the
    background); ValueError for another name."""
    if name not in SEGMENTERS:
        raise ValueError(f"unknown segmenter {name!r}; expected one of {', '.join(SEGMENTERS)}")
    return SEGMENTERS[name](num_classes, in_channels)


def segmentation_data(name: str, root=None, subset: int | None = None, image_size: int = 64,
                      hflip: bool = False):
    """``(train, test)`` segmentation datasets called ``name`` (``shapes`` or
    ``digit_scenes``) drawn at ``image_size``, the training set augmented jointly (image
    and mask): colour jitter and, with ``hflip``, horizontal flips (not for digits: a
    mirrored 2 is no digit)."""
    train, test = load_data(name, root, subset, image_size, task="segment")
    steps = [J.ColorJitter(COLOR_JITTER, COLOR_JITTER, COLOR_JITTER)]
    if hflip:
        steps.insert(0, J.RandomHorizontalFlip())
    getattr(train, "dataset", train).transforms = J.Compose(steps)  # (under a Subset)
    return train, test


def predict_masks(model, images, device: str = "cpu") -> np.ndarray:
    """The class of each pixel, ``(N, H, W)`` int64, for images ``(N, C, H, W)``: the
    argmax of the logits over the classes."""
    model.eval()
    with no_grad():
        logits = model(tensor(np.asarray(images, np.float32), device=device))
    return to_device(logits.array, "cpu").argmax(1).astype(np.int64)


class SegmentationTrainer(Trainer):
    """:class:`~minicnn.train.Trainer` for per-pixel classifiers (see the module docstring).

    The loaders yield ``(images (N, 3, H, W), masks (N, H, W) int64)``
    (``collate_fn=minicnn.data.segmentation_collate``). ``classes``: the class names,
    ``"__background__"`` first. ``loss_fn(logits, masks)``: default the per-pixel
    cross-entropy ignoring :data:`~minicnn.data.segmentation.IGNORE_INDEX`.
    """

    def __init__(self, model, optimizer, loss_fn: Callable | None = None, classes=None,
                 **kwargs):
        super().__init__(model, optimizer, loss_fn=loss_fn or _pixel_cross_entropy,
                         classes=classes, **kwargs)

    def _num_classes(self) -> int | None:
        return getattr(self.model, "num_classes", None) or (len(self.classes)
                                                            if self.classes else None)

    def _batch(self, images, targets):
        images = np.asarray(images, dtype=np.float32)
        masks = check_mask(targets, images.shape[2:], self._num_classes(), IGNORE_INDEX,
                           where="the batch's masks")
        return tensor(images, device=self.device), tensor(masks, device=self.device)

    def training_step(self, x, y) -> tuple:
        """The per-pixel loss of one batch; nothing else is logged (the metrics are the
        test set's)."""
        return self.loss_fn(self.model(x), y), {}

    def evaluate(self, loader, num_classes: int | None = None) -> dict:
        """On ``loader`` (no updates): ``val_loss``, ``val_miou``, ``val_dice``,
        ``val_pixel_acc``, the per-class ``iou`` and ``dice`` ``(C,)``, the confusion
        matrix, the number of images, and the first batch (``examples``: images, truth,
        prediction) for figures."""
        num_classes = num_classes or self._num_classes()
        metric = ConfusionMatrix(num_classes, IGNORE_INDEX)
        loss_avg, examples, seen = RunningMean(), None, 0
        self.model.eval()
        with no_grad():
            for images, targets in loader:
                x, y = self._batch(images, targets)
                logits = self.model(x)
                loss_avg.update(self.loss_fn(logits, y).item(), len(targets))
                out = to_device(logits.array, "cpu")
                pred = out.argmax(1)
                truth = np.asarray(targets)
                metric.update(pred, truth)
                if examples is None:
                    examples = (np.asarray(images), truth, pred)
                seen += len(targets)
        if seen == 0:
            raise ValueError("evaluate: the loader yielded no images, expected at least one "
                             "(an empty test set?)")
        scores = metric.compute()
        return {"val_loss": loss_avg.mean, "val_miou": scores["mean_iou"],
                "val_dice": scores["mean_dice"], "val_pixel_acc": scores["pixel_accuracy"],
                "iou": scores["iou"], "dice": scores["dice"], "confusion": metric.matrix.copy(),
                "examples": examples, "images": seen}

    def _val_row(self, evaluation: dict) -> dict:
        return {k: evaluation[k] for k in ("val_loss", "val_miou", "val_dice", "val_pixel_acc")}

    def _val_message(self, row: dict) -> str:
        return (f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}, test loss "
                f"{row['val_loss']:.4f}, mIoU {row['val_miou']:.4f}, Dice {row['val_dice']:.4f}, "
                f"pixel accuracy {100 * row['val_pixel_acc']:.2f}%")

    def _write_figures(self, val_loader, evaluation) -> None:
        from minicnn import viz

        figures = self.run_dir / "figures"
        figures.mkdir(parents=True, exist_ok=True)
        viz.plot_segmentation_curves(self.history, figures / "curves.png")
        if evaluation is None:
            return
        classes = self.classes or [str(c) for c in range(len(evaluation["iou"]))]
        viz.plot_segmentations(*evaluation["examples"], classes, figures / "segmentations.png")
        final = {k: evaluation[k] for k in ("val_loss", "val_miou", "val_dice", "val_pixel_acc",
                                            "images")}
        final["iou_per_class"] = {_name(classes, c): _finite(v)
                                  for c, v in enumerate(evaluation["iou"])}
        final["dice_per_class"] = {_name(classes, c): _finite(v)
                                   for c, v in enumerate(evaluation["dice"])}
        final["confusion"] = evaluation["confusion"].tolist()
        save_json({"history": self.history, "final": final}, self.run_dir / "metrics.json")


def _name(classes, c: int) -> str:
    return str(classes[c]) if c < len(classes) else str(c)


def _finite(value: float) -> float | None:
    """A per-class score for JSON: None for NaN (a class in neither truth nor prediction)."""
    return None if np.isnan(value) else float(value)


def _pixel_cross_entropy(logits, masks):
    """Per-pixel cross-entropy averaged over the pixels, ignoring IGNORE_INDEX."""
    return F.cross_entropy(logits, masks, ignore_index=IGNORE_INDEX)
