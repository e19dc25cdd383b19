"""Figures of segmentation: class masks laid over their images, and the loss, mIoU and Dice
per epoch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from minicnn.viz.detection import _as_hwc
from minicnn.viz.figure import save_figure
from minicnn.viz.training import _pyplot, _text

__all__ = ["mask_colours", "overlay_mask", "plot_segmentation_curves", "plot_segmentations",
           "save_segmentation"]

IGNORE_COLOUR = (1.0, 1.0, 1.0)  # pixels of the ignore index (255)


def mask_colours(num_classes: int) -> np.ndarray:
    """``(num_classes, 3)`` RGB colours in [0, 1], one per class: class 0 (the background)
    black, the others from matplotlib's ``tab10``/``tab20`` palettes."""
    plt = _pyplot()
    palette = plt.get_cmap("tab10" if num_classes <= 11 else "tab20")
    colours = [(0.0, 0.0, 0.0)] + [palette(i % palette.N)[:3] for i in range(num_classes - 1)]
    return np.asarray(colours, dtype=np.float32)


def overlay_mask(image: np.ndarray, mask: np.ndarray, num_classes: int,
                 alpha: float = 0.75) -> np.ndarray:
    """The class mask ``(H, W)`` laid over the image ``(C, H, W)``: ``(H, W, 3)`` in [0, 1].
    The image is shown in dimmed grey (so the class colours, not the scene's own, stand
    out); class ``c > 0`` is mixed with its colour of :func:`mask_colours` at ``alpha``;
    the ignore index (255) is white."""
    picture = _as_hwc(image)
    mask = np.asarray(mask)
    if mask.shape != picture.shape[:2]:
        raise ValueError(f"overlay_mask: mask is {mask.shape}, expected the image's size "
                         f"{picture.shape[:2]}")
    grey = picture if picture.ndim == 2 else picture.mean(axis=2)
    base = np.repeat(0.6 * grey[..., None], 3, axis=2)
    colours = mask_colours(num_classes)
    out = base.copy()
    objects = (mask > 0) & (mask < num_classes)
    out[objects] = (1 - alpha) * base[objects] + alpha * colours[mask[objects]]
    out[mask == 255] = IGNORE_COLOUR
    return np.clip(out, 0, 1)


def _legend(fig, classes: Sequence[str]) -> None:
    from matplotlib.patches import Patch

    colours = mask_colours(len(classes))
    handles = [Patch(color=colours[c], label=_text(classes[c])) for c in range(1, len(classes))]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8,
               frameon=False)


def plot_segmentations(images: np.ndarray, truths: np.ndarray, preds: np.ndarray,
                       classes: Sequence[str], path, max_images: int = 6) -> None:
    """Rows of image / true mask / predicted mask (each mask over its image), for images
    ``(N, C, H, W)`` and masks ``(N, H, W)`` of class indices into ``classes``; a colour
    legend below."""
    plt = _pyplot()
    n = min(len(images), max_images)
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.5 * n + 0.4), squeeze=False)
    for i in range(n):
        shown = (_as_hwc(images[i]), overlay_mask(images[i], truths[i], len(classes)),
                 overlay_mask(images[i], preds[i], len(classes)))
        for ax, picture, title in zip(axes[i], shown, ("image", "truth", "prediction"),
                                      strict=True):
            ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None,
                      interpolation="nearest")
            ax.axis("off")
            if i == 0:
                ax.set_title(title)
    _legend(fig, classes)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    save_figure(fig, path)
    plt.close(fig)


def save_segmentation(image: np.ndarray, mask: np.ndarray, classes: Sequence[str],
                      path) -> None:
    """One image ``(C, H, W)`` with its class mask ``(H, W)`` laid over it, saved to
    ``path`` at least 512 pixels on the long side, with a colour legend."""
    plt = _pyplot()
    h, w = np.shape(image)[1:]
    scale = max(4.0, 512 / max(h, w)) / 100
    fig = plt.figure(figsize=(w * scale, h * scale + 0.5))
    ax = fig.add_axes((0, 0.5 / (h * scale + 0.5), 1, h * scale / (h * scale + 0.5)))
    ax.axis("off")
    ax.imshow(overlay_mask(image, mask, len(classes)), interpolation="nearest")
    _legend(fig, classes)
    save_figure(fig, path)
    plt.close(fig)


def plot_segmentation_curves(history: Sequence[dict], path) -> None:
    """Per epoch: the training and test loss (left), the test mIoU, mean Dice and pixel
    accuracy (right)."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("train_loss", "train"), ("val_loss", "test")):
        if any(key in h for h in history):
            ax_loss.plot(epochs, [h.get(key, np.nan) for h in history], "o-", label=label)
    for key, label in (("val_miou", "mIoU"), ("val_dice", "mean Dice"),
                       ("val_pixel_acc", "pixel accuracy")):
        if any(key in h for h in history):
            ax_score.plot(epochs, [h.get(key, np.nan) for h in history], "o-", label=label)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Per-pixel loss")
    ax_score.set(xlabel="epoch", ylabel="score", title="Test scenes", ylim=(0, 1))
    for ax in (ax_loss, ax_score):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if epochs:
            ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
