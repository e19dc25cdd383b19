"""Figures of a training run, each saved to a PNG file (matplotlib's Agg backend)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from minicnn.viz.figure import save_figure


def _pyplot():
    import matplotlib

    if os.environ.get("MPLBACKEND") is None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _text(label) -> str:
    """``label`` as plain text: matplotlib reads ``$...$`` as math (and fails on a class
    folder named, say, ``$\\undefined$``), so dollar signs are escaped."""
    return str(label).replace("$", r"\$")


def plot_curves(history: Sequence[dict], path) -> None:
    """Loss and accuracy per epoch, train and validation, side by side.

    The x axis has whole-epoch ticks, and every epoch is a marker (so one epoch is a point).
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        if any(key in h for h in history):
            ax_loss.plot(epochs, [h.get(key, np.nan) for h in history], "o-", label=label)
    for key, label in (("train_acc", "train"), ("val_acc", "validation")):
        if any(key in h for h in history):
            ax_acc.plot(epochs, [100 * h.get(key, np.nan) for h in history], "o-", label=label)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Top-1 accuracy")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if epochs:
            ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_confusion(cm: np.ndarray, classes: Sequence[str], path) -> None:
    """The confusion matrix: rows are true classes, columns predicted, counts in the cells."""
    plt = _pyplot()
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1 + 0.5 * n, 1 + 0.5 * n))
    ax.imshow(cm, cmap="Blues")
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(
                    j,
                    i,
                    str(cm[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if cm[i, j] > cm.max() / 2 else "black",
                )
    labels = [_text(c) for c in classes]
    ax.set_xticks(range(n), labels, rotation=90 if n > 10 else 0)
    ax.set_yticks(range(n), labels)
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_predictions(
    images: np.ndarray,
    targets: np.ndarray,
    predictions: np.ndarray,
    classes: Sequence[str],
    path,
    max_images: int = 32,
) -> None:
    """A grid of images ``(N, C, H, W)`` titled with the predicted class (red when wrong)."""
    plt = _pyplot()
    n = min(len(images), max_images)
    cols = min(8, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.5 * cols, 1.7 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        img = images[i]
        img = (img - img.min()) / max(img.max() - img.min(), 1e-8)  # undo any normalisation
        ax = axes.ravel()[i]
        ax.imshow(
            img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0),
            cmap="gray" if img.shape[0] == 1 else None,
        )
        ok = predictions[i] == targets[i]
        ax.set_title(_text(classes[predictions[i]]), color="green" if ok else "red", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
