"""The instance segmentation recipe: the CPU-sized Mask R-CNN the command line trains, its
data (scenes whose objects have masks) and :class:`InstanceTrainer`.

A task recipe (see :mod:`minicnn.train.detect`) says which models a task takes, how its
data is loaded and augmented, what a training step computes, what an evaluation measures
and which figures a run folder gets; the loop (epochs, schedules, checkpoints, resume,
``metrics.csv``) is :class:`~minicnn.train.Trainer`'s. Instance segmentation finds every
object, its class, its box and its own mask (two touching squares are two masks, where
semantic segmentation paints one "square" region). Mask R-CNN follows torchvision's calling
convention::

    model.train(); losses = model(images, targets)  # targets: boxes, labels, masks (K, H, W)
    model.eval();  preds = model(images)            # boxes, labels, scores, masks (D, 1, H, W)

Each epoch records the mean of every loss term (``train_loss_classifier``,
``train_loss_box_reg``, ``train_loss_mask``, ``train_loss_objectness``,
``train_loss_rpn_box_reg``) and their sum (``train_loss``), and on the test scenes COCO's
mAP from :class:`minicnn.metrics.MeanAveragePrecision` twice: of the boxes
(``iou_type="bbox"``: ``val_map``, ``val_map_50``, ``val_map_75``) and of the masks
(``iou_type="segm"``, the predicted probabilities thresholded at 0.5: ``val_mask_map``,
``val_mask_map_50``, ``val_mask_map_75``). The run folder gets ``figures/curves.png``
(loss terms, box and mask mAP) and ``figures/instance.png`` (image, predicted masks and
boxes, truth).

The recipe trains on :data:`TRAIN_SCENES` scenes and tests on :data:`TEST_SCENES` (fewer
than the datasets' 2,000 / 400: the default job is sized for 15 minutes of two CPU cores;
``--subset N`` takes fewer still).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from minicnn.autograd import tensor
from minicnn.data import joint_transforms as J
from minicnn.data import load_data
from minicnn.data.dataset import Subset
from minicnn.metrics import MeanAveragePrecision
from minicnn.serialization import save_json
from minicnn.train.detect import DetectionTrainer, eval_score_threshold

__all__ = [
    "DEFAULTS",
    "DEFAULT_MODEL",
    "INSTANCE_MODELS",
    "InstanceTrainer",
    "build_instance_model",
    "instance_data",
    "mask_predictions",
]


def _maskrcnn_small(num_classes: int):
    from minicnn.models.detection import maskrcnn_small

    return maskrcnn_small(num_classes=num_classes)


# the instance segmenters the command line trains (num_classes counts the background)
INSTANCE_MODELS: dict[str, Callable] = {"maskrcnn_small": _maskrcnn_small}
DEFAULT_MODEL = "maskrcnn_small"
# the recipe's settings where the command line has no value of its own
DEFAULTS = {
    "epochs": 10,
    "batch_size": 8,
    "lr": 6e-3,
    "weight_decay": 1e-4,
    "optimizer": "adam",
    "scheduler": "onecycle",
}
IMAGE_SIZE = 64  # the scenes' side; maskrcnn_small does not resize them
TRAIN_SCENES = 1000
TEST_SCENES = 200
EVAL_BATCH = 50
COLOR_JITTER = 0.3
MASK_THRESHOLD = 0.5  # a pixel belongs to a predicted object where its probability >= this


def build_instance_model(name: str, num_classes: int):
    """The model ``name`` of :data:`INSTANCE_MODELS` for ``num_classes`` classes (with the
    background); ValueError for another name."""
    if name not in INSTANCE_MODELS:
        raise ValueError(f"unknown instance segmentation model {name!r}; expected one of "
                         f"{', '.join(INSTANCE_MODELS)}")
    return INSTANCE_MODELS[name](num_classes)


def instance_data(name: str, root=None, subset: int | None = None,
                  image_size: int = IMAGE_SIZE, hflip: bool = False):
    """``(train, test)`` scenes called ``name`` (``shapes`` or ``digit_scenes``) with
    per-object masks, drawn at ``image_size``: the first :data:`TRAIN_SCENES` and
    :data:`TEST_SCENES` (``subset``: at most that many of each), the training set augmented
    jointly (image, boxes, masks): colour jitter and, with ``hflip``, horizontal flips (not
    for digits). ValueError for data without masks."""
    train, test = load_data(name, root, None, image_size, task="instance")
    image, target = test[0]
    if "masks" not in target:
        raise ValueError(f"load_data: {name!r} has no per-object masks (its targets have "
                         f"{', '.join(target)}); instance segmentation needs 'masks'")
    n_train, n_test = min(TRAIN_SCENES, len(train)), min(TEST_SCENES, len(test))
    if subset is not None:
        n_train, n_test = min(subset, n_train), min(subset, n_test)
    steps = [J.ColorJitter(COLOR_JITTER, COLOR_JITTER, COLOR_JITTER)]
    if hflip:
        steps.insert(0, J.RandomHorizontalFlip())
    train.transforms = J.Compose(steps)
    return Subset(train, range(n_train)), Subset(test, range(n_test))


def mask_predictions(preds: list[dict]) -> list[dict]:
    """Mask R-CNN's NumPy predictions with ``masks (D, 1, H, W)`` probabilities -> the same
    with binary ``masks (D, H, W)`` (probability >= :data:`MASK_THRESHOLD`), as
    ``MeanAveragePrecision(iou_type="segm")`` takes them."""
    out = []
    for p in preds:
        masks = np.asarray(p["masks"])
        masks = masks[:, 0] if masks.ndim == 4 else masks
        out.append({**p, "masks": masks >= MASK_THRESHOLD})
    return out


class InstanceTrainer(DetectionTrainer):
    """:class:`~minicnn.train.detect.DetectionTrainer` for instance segmenters (see the
    module docstring): the targets carry ``masks (K, H, W)`` uint8, and the evaluation
    measures box and mask mAP."""

    def _batch(self, images, targets):
        x = tensor(np.asarray(images, dtype=np.float32), device=self.device)
        for i, tg in enumerate(targets):
            if "masks" not in tg:
                raise ValueError(f"InstanceTrainer: target {i} has no 'masks' ((K, H, W) "
                                 f"uint8, one per object); instance segmentation needs them")
        t = [{"boxes": tensor(np.asarray(tg["boxes"], np.float32), device=self.device),
              "labels": tensor(np.asarray(tg["labels"], np.int64), device=self.device),
              "masks": tensor(np.asarray(tg["masks"], np.uint8), device=self.device)}
             for tg in targets]
        return x, t

    def evaluate(self, loader, num_classes: int | None = None) -> dict:
        """COCO mAP of the boxes (``val_map``, ``val_map_50``, ``val_map_75``) and of the
        masks (``val_mask_map``, ...) on ``loader``, the mask AP@0.5:0.95 per class
        (``per_class``), and the first batch (``examples``: images, truth, predictions
        with binary masks) for figures. The model's score threshold is lowered to
        :data:`~minicnn.train.detect.EVAL_SCORE_THRESH` meanwhile (mAP integrates over every
        threshold)."""
        boxes = MeanAveragePrecision(iou_type="bbox")
        masks = MeanAveragePrecision(iou_type="segm", class_metrics=True)
        examples, seen = None, 0
        for images, targets in loader:
            with eval_score_threshold(self.model):
                preds = mask_predictions(self.predict(images))
            truth = [{k: np.asarray(t[k]) for k in ("boxes", "labels", "masks", "iscrowd")
                      if k in t} for t in targets]
            for t in truth:
                t["masks"] = t["masks"].astype(bool)
            boxes.update(preds, truth)
            masks.update(preds, truth)
            if examples is None:
                examples = (np.asarray(images), truth, preds)
            seen += len(targets)
        if seen == 0:
            raise ValueError("evaluate: the loader yielded no images, expected at least one "
                             "(an empty test set?)")
        box_result, mask_result = boxes.compute(), masks.compute()
        labels = mask_result["classes"].numpy().astype(np.int64).reshape(-1)
        per_class = mask_result["map_per_class"].numpy().reshape(-1)
        out = {f"val_{kind}{key}": float(result[key].item())
               for kind, result in (("", box_result), ("mask_", mask_result))
               for key in ("map", "map_50", "map_75")}
        out.update(per_class={int(k): float(v) for k, v in zip(labels, per_class)}
                   if len(per_class) == len(labels) else {},
                   labels=labels, examples=examples, images=seen)
        return out

    def _val_row(self, evaluation: dict) -> dict:
        return {k: evaluation[k] for k in ("val_map", "val_map_50", "val_map_75", "val_mask_map",
                                           "val_mask_map_50", "val_mask_map_75")}

    def _val_message(self, row: dict) -> str:
        return (f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}, box mAP@0.5 "
                f"{row['val_map_50']:.4f} (@0.5:0.95 {row['val_map']:.4f}), mask mAP@0.5 "
                f"{row['val_mask_map_50']:.4f} (@0.5:0.95 {row['val_mask_map']:.4f})")

    def _write_figures(self, val_loader, evaluation) -> None:
        from minicnn import viz

        figures = self.run_dir / "figures"
        figures.mkdir(parents=True, exist_ok=True)
        viz.plot_instance_curves(self.history, figures / "curves.png")
        if evaluation is None:
            return
        classes = self.classes or ["__background__"] + [str(k) for k in evaluation["labels"]]
        images, truth, preds = evaluation["examples"]
        viz.plot_instances(images, preds, truth, classes, figures / "instance.png")
        final = {k: evaluation[k] for k in ("val_map", "val_map_50", "val_map_75",
                                            "val_mask_map", "val_mask_map_50",
                                            "val_mask_map_75", "images")}
        final["mask_ap_per_class"] = {classes[k] if 0 <= k < len(classes) else str(k): v
                                      for k, v in evaluation["per_class"].items()}
        save_json({"history": self.history, "final": final}, self.run_dir / "metrics.json")
