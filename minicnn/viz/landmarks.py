"""Figures of landmark detection: predicted and true points over the images (and the
heatmaps beside them), the loss and the landmark error per epoch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from minicnn.viz.detection import _PRED_COLOUR, _TRUE_COLOUR, _as_hwc
from minicnn.viz.figure import save_figure
from minicnn.viz.training import _pyplot

__all__ = ["draw_landmarks", "plot_landmark_curves", "plot_landmarks"]


def draw_landmarks(ax, image, pred=None, true=None) -> None:
    """Show ``image (C, H, W)`` on ``ax`` with the true landmarks ``(K, 2)`` as green circles
    and the predicted ones as red crosses, joined by a line per landmark. Coordinates are
    pixels (pixel ``j`` spans ``[j, j + 1)``; ``imshow`` centres it at ``j``, hence the
    half-pixel shift)."""
    ax.imshow(_as_hwc(image), interpolation="nearest")
    if true is not None and pred is not None:
        for (x0, y0), (x1, y1) in zip(np.asarray(true), np.asarray(pred), strict=True):
            ax.plot([x0 - 0.5, x1 - 0.5], [y0 - 0.5, y1 - 0.5], "-", color="white", lw=0.6)
    if true is not None:
        t = np.asarray(true)
        ax.plot(t[:, 0] - 0.5, t[:, 1] - 0.5, "o", mfc="none", mec=_TRUE_COLOUR, ms=6, mew=1.2)
    if pred is not None:
        p = np.asarray(pred)
        ax.plot(p[:, 0] - 0.5, p[:, 1] - 0.5, "x", color=_PRED_COLOUR, ms=5, mew=1.2)
    h, w = np.shape(image)[1:]
    ax.set_xlim(-0.5, w - 0.5)  # points outside the image do not shrink it
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_axis_off()


def plot_landmarks(images, pred, true, path, heatmaps=None, max_images: int = 8,
                   title: str | None = None) -> None:
    """A row per image (at most ``max_images``): the image ``(N, C, H, W)`` with predicted
    ``(N, K, 2)`` (red x) and true ``(N, K, 2)`` (green o) landmarks, and with ``heatmaps
    (N, K, H, W)`` the maximum over the K heatmaps beside it."""
    plt = _pyplot()
    n = min(max_images, len(images))
    cols = 2 if heatmaps is not None else 1
    fig, axes = plt.subplots(cols, n, figsize=(1.6 * n, 1.7 * cols), squeeze=False)
    for i in range(n):
        draw_landmarks(axes[0, i], images[i], pred[i], true[i])
        if heatmaps is not None:
            axes[1, i].imshow(np.asarray(heatmaps[i]).max(0), cmap="magma",
                              interpolation="nearest")
            p = np.asarray(pred[i])
            axes[1, i].plot(p[:, 0] - 0.5, p[:, 1] - 0.5, "x", color="cyan", ms=4)
            axes[1, i].set_xlim(axes[0, i].get_xlim())
            axes[1, i].set_ylim(axes[0, i].get_ylim())
            axes[1, i].set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_landmark_curves(history: Sequence[dict], path) -> None:
    """Per epoch: the training loss (left) and the mean landmark error in pixels on the test
    scenes, clean and occluded (right)."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h.get("train_loss", np.nan) for h in history], "o-", label="train")
    for key, label in (("val_error", "test"), ("val_error_occluded", "test, occluded")):
        if any(key in h for h in history):
            ax_err.plot(epochs, [h.get(key, np.nan) for h in history], "o-", label=label)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Training loss", yscale="log")
    ax_err.set(xlabel="epoch", ylabel="mean error (pixels)", title="Landmark error")
    for ax in (ax_loss, ax_err):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
