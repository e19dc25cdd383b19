"""Figures of detection: boxes on images, the loss terms and mAP per epoch, and
precision-recall curves from ``MeanAveragePrecision``'s precision table."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from minicnn.viz.figure import save_figure
from minicnn.viz.training import _pyplot, _text

__all__ = ["draw_boxes", "plot_detection_curves", "plot_detections", "plot_precision_recall",
           "save_detections"]

_PRED_COLOUR, _TRUE_COLOUR = "#ff3030", "#30ff60"


def _as_hwc(image: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` -> what ``imshow`` shows: ``(H, W, 3)`` in [0, 1], or ``(H, W)``."""
    image = np.asarray(image, dtype=np.float32)
    if image.min() < 0 or image.max() > 1:  # normalised: stretch back to [0, 1]
        image = (image - image.min()) / max(float(image.max() - image.min()), 1e-8)
    return image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)


def draw_boxes(ax, boxes, labels, classes: Sequence[str], scores=None, colour=_PRED_COLOUR,
               dashed: bool = False, fontsize: float = 7, tags: bool = True) -> None:
    """Draw boxes ``(K, 4)`` ``(x1, y1, x2, y2)`` in pixel coordinates (pixel ``(x, y)``
    covers ``[x, x + 1)``; ``imshow`` centres it at ``x``, hence the half-pixel shift) on
    ``ax``, each tagged (unless ``tags`` is False) with its class name and, when ``scores``
    is given, its score."""
    from matplotlib.patches import Rectangle

    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    labels = np.asarray(labels).reshape(-1)
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False,
                               edgecolor=colour, linewidth=1.2,
                               linestyle="--" if dashed else "-"))
        if not tags:
            continue
        label = int(labels[k])
        name = _text(classes[label]) if 0 <= label < len(classes) else str(label)
        text = name if scores is None else f"{name} {float(np.asarray(scores)[k]):.2f}"
        ax.text(x1 - 0.5, y1 - 1, text, color="black", fontsize=fontsize, va="bottom",
                bbox={"facecolor": colour, "alpha": 0.75, "pad": 0.5, "linewidth": 0})


def plot_detections(images: np.ndarray, preds: Sequence[dict], classes: Sequence[str], path,
                    targets: Sequence[dict] | None = None, max_images: int = 16,
                    min_score: float = 0.3) -> None:
    """A grid of images ``(N, C, H, W)`` with their predicted boxes (solid, class and score;
    those scoring at least ``min_score``) and, when ``targets`` is given, the ground truth
    (dashed, green)."""
    plt = _pyplot()
    n = min(len(images), max_images)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        ax = axes.ravel()[i]
        ax.imshow(_as_hwc(images[i]), cmap="gray" if np.shape(images[i])[0] == 1 else None)
        if targets is not None:
            draw_boxes(ax, targets[i]["boxes"], targets[i]["labels"], classes,
                       colour=_TRUE_COLOUR, dashed=True, tags=False)
        keep = np.asarray(preds[i]["scores"]) >= min_score
        draw_boxes(ax, np.asarray(preds[i]["boxes"])[keep], np.asarray(preds[i]["labels"])[keep],
                   classes, np.asarray(preds[i]["scores"])[keep])
    title = "predicted (red: class, score)" + (" vs ground truth (green, dashed)"
                                               if targets is not None else "")
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def save_detections(image: np.ndarray, pred: dict, classes: Sequence[str], path,
                    min_score: float = 0.3) -> None:
    """One image ``(C, H, W)`` with its detections scoring at least ``min_score`` (class and
    score on each box), saved to ``path``."""
    plt = _pyplot()
    h, w = np.shape(image)[1:]
    scale = max(4.0, 512 / max(h, w)) / 100  # at least 512 pixels on the long side
    fig = plt.figure(figsize=(w * scale, h * scale))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.axis("off")
    ax.imshow(_as_hwc(image), cmap="gray" if np.shape(image)[0] == 1 else None)
    keep = np.asarray(pred["scores"]) >= min_score
    draw_boxes(ax, np.asarray(pred["boxes"])[keep], np.asarray(pred["labels"])[keep], classes,
               np.asarray(pred["scores"])[keep], fontsize=10)
    save_figure(fig, path)
    plt.close(fig)


# the mAP curves of a detection run: (history key, legend label, line style)
DETECTION_MAPS = (("val_map_50", "mAP@0.5", "o-"), ("val_map", "mAP@0.5:0.95", "o-"))


def plot_detection_curves(history: Sequence[dict], path, maps=DETECTION_MAPS,
                          title: str = "Test mAP") -> None:
    """Per epoch: the training loss and each of its terms (left), the test mAPs ``maps``
    (``(key, label, style)``: mAP@0.5 and mAP@0.5:0.95 by default) on the right."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_map) = plt.subplots(1, 2, figsize=(10, 4))
    skip = {"train_loss", "train_images_per_s", "train_seconds"}
    terms = [k for k in dict.fromkeys(k for h in history for k in h)
             if k.startswith("train_") and k not in skip]
    ax_loss.plot(epochs, [h.get("train_loss", np.nan) for h in history], "o-", label="total",
                 linewidth=2)
    for key in terms:
        ax_loss.plot(epochs, [h.get(key, np.nan) for h in history], ".--",
                     label=key.removeprefix("train_"))
    for key, label, style in maps:
        if any(key in h for h in history):
            ax_map.plot(epochs, [h.get(key, np.nan) for h in history], style, label=label)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Training loss and its terms")
    ax_map.set(xlabel="epoch", ylabel="mAP", title=title, ylim=(0, 1))
    for ax in (ax_loss, ax_map):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if epochs:
            ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_precision_recall(precision: np.ndarray, labels: Sequence[int], classes: Sequence[str],
                          path, rec_thresholds: np.ndarray | None = None) -> None:
    """Precision against recall at IoU 0.5, one curve per class and their mean, plus the
    mean over IoU 0.5:0.95; from ``MeanAveragePrecision(extended_summary=True)``'s
    ``precision (T, R, K, A, M)`` (all areas, the largest detection limit; -1: no value)."""
    plt = _pyplot()
    precision = np.asarray(precision, dtype=np.float64)[:, :, :, 0, -1]  # (T, R, K)
    recall = (np.linspace(0, 1, precision.shape[1]) if rec_thresholds is None
              else np.asarray(rec_thresholds))
    fig, ax = plt.subplots(figsize=(6, 5))
    cmap = plt.get_cmap("tab10")
    for k, label in enumerate(labels):
        curve = precision[0, :, k]
        if (curve > -1).any():
            name = _text(classes[label]) if 0 <= label < len(classes) else str(label)
            ax.plot(recall, np.where(curve > -1, curve, np.nan), color=cmap(k % 10),
                    linewidth=0.8, alpha=0.7, label=name)

    def mean_over_classes(p):
        masked = np.where(p > -1, p, np.nan)
        with np.errstate(all="ignore"):
            return np.nanmean(masked, axis=-1) if masked.size else masked

    if precision.shape[2]:
        ax.plot(recall, mean_over_classes(precision[0]), "k-", linewidth=2.5,
                label="mean, IoU 0.5")
        ax.plot(recall, mean_over_classes(precision).mean(0), "k--", linewidth=2,
                label="mean, IoU 0.5:0.95")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (test set)",
           xlim=(0, 1), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
