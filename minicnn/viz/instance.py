"""Figures of instance segmentation: each object's mask (a colour per object) and box over
its image, predicted beside the ground truth, and the loss terms, box mAP and mask mAP per
epoch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from minicnn.viz.detection import (
    _PRED_COLOUR,
    _TRUE_COLOUR,
    _as_hwc,
    draw_boxes,
    plot_detection_curves,
)
from minicnn.viz.figure import save_figure
from minicnn.viz.training import _pyplot

__all__ = ["overlay_instances", "plot_instance_curves", "plot_instances", "save_instances"]


def overlay_instances(image: np.ndarray, masks: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """Binary masks ``(K, H, W)`` laid over the image ``(C, H, W)``: ``(H, W, 3)`` in [0, 1],
    object ``k`` mixed with colour ``k`` of matplotlib's ``tab10`` at ``alpha`` (a later
    object over an earlier one where they overlap), the rest of the image in dimmed grey."""
    picture = _as_hwc(image)
    masks = np.asarray(masks, dtype=bool).reshape(-1, *picture.shape[:2])
    grey = picture if picture.ndim == 2 else picture.mean(axis=2)
    out = np.repeat(0.6 * grey[..., None], 3, axis=2)
    palette = _pyplot().get_cmap("tab10")
    for k, mask in enumerate(masks):
        colour = np.asarray(palette(k % palette.N)[:3], np.float32)
        out[mask] = (1 - alpha) * out[mask] + alpha * colour
    return np.clip(out, 0, 1)


def _kept(pred: dict, min_score: float) -> tuple:
    """(boxes, labels, scores, binary masks (D, H, W)) of the detections scoring at least
    ``min_score``; ``masks`` (D, 1, H, W) probabilities are thresholded at 0.5."""
    keep = np.asarray(pred["scores"]) >= min_score
    masks = np.asarray(pred["masks"])
    masks = (masks[:, 0] if masks.ndim == 4 else masks)[keep] > 0.5
    return (np.asarray(pred["boxes"])[keep], np.asarray(pred["labels"])[keep],
            np.asarray(pred["scores"])[keep], masks)


def plot_instances(images: np.ndarray, preds: Sequence[dict], truths: Sequence[dict],
                   classes: Sequence[str], path, max_images: int = 6,
                   min_score: float = 0.5) -> None:
    """Rows of image / prediction / truth for images ``(N, C, H, W)``: the predicted masks
    (a colour per object) and boxes (red, class and score; those scoring at least
    ``min_score``), and the true masks and boxes (green, class)."""
    plt = _pyplot()
    n = min(len(images), max_images)
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.5 * n), squeeze=False)
    for i in range(n):
        boxes, labels, scores, masks = _kept(preds[i], min_score)
        truth = truths[i]
        shown = ((_as_hwc(images[i]), None),
                 (overlay_instances(images[i], masks), (boxes, labels, scores, _PRED_COLOUR)),
                 (overlay_instances(images[i], truth["masks"]),
                  (truth["boxes"], truth["labels"], None, _TRUE_COLOUR)))
        for ax, (picture, drawn), title in zip(axes[i], shown,
                                               ("image", "prediction", "truth"), strict=True):
            ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None,
                      interpolation="nearest")
            if drawn is not None:
                draw_boxes(ax, drawn[0], drawn[1], classes, drawn[2], colour=drawn[3],
                           fontsize=6)
            ax.axis("off")
            if i == 0:
                ax.set_title(title)
    fig.suptitle(f"instance masks and boxes (predictions scoring >= {min_score:g})")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def save_instances(image: np.ndarray, pred: dict, classes: Sequence[str], path,
                   min_score: float = 0.5) -> None:
    """One image ``(C, H, W)`` with its detections scoring at least ``min_score``: masks (a
    colour per object), boxes, class and score, saved to ``path``."""
    plt = _pyplot()
    h, w = np.shape(image)[1:]
    scale = max(4.0, 512 / max(h, w)) / 100  # at least 512 pixels on the long side
    fig = plt.figure(figsize=(w * scale, h * scale))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.axis("off")
    boxes, labels, scores, masks = _kept(pred, min_score)
    ax.imshow(overlay_instances(image, masks), interpolation="nearest")
    draw_boxes(ax, boxes, labels, classes, scores, fontsize=10)
    save_figure(fig, path)
    plt.close(fig)


# the mAP curves of an instance segmentation run: (history key, legend label, line style)
INSTANCE_MAPS = (("val_map_50", "box mAP@0.5", "o-"), ("val_map", "box mAP@0.5:0.95", "o--"),
                 ("val_mask_map_50", "mask mAP@0.5", "s-"),
                 ("val_mask_map", "mask mAP@0.5:0.95", "s--"))


def plot_instance_curves(history: Sequence[dict], path) -> None:
    """Per epoch: the training loss and each of its terms (left); box and mask mAP@0.5 and
    mAP@0.5:0.95 on the test set (right)."""
    plot_detection_curves(history, path, INSTANCE_MAPS, "Test mAP: boxes and masks")
