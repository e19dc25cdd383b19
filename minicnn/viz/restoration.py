"""Figures of restoration runs: images side by side (noisy / network / baseline / clean)
and the PSNR curve against the classical baseline's level."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from minicnn.viz.figure import save_figure
from minicnn.viz.training import _pyplot

__all__ = ["plot_restoration", "plot_restoration_curves"]


def _show(ax, image: np.ndarray) -> None:
    """Draw a ``(C, H, W)`` image in [0, 1] (clipped; grey for one channel)."""
    image = np.clip(np.asarray(image, dtype=np.float32), 0, 1)
    if image.shape[0] == 1:
        ax.imshow(image[0], cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(image.transpose(1, 2, 0))
    ax.axis("off")


def plot_restoration(panels: Sequence[tuple[str, np.ndarray]], path,
                     title: str | None = None) -> None:
    """One row of labelled images: ``panels`` is a list of ``(label, image (C, H, W))``
    (e.g. noisy, network, baseline, clean crops, their PSNR in the labels)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.3), squeeze=False)
    for ax, (label, image) in zip(axes[0], panels):
        _show(ax, image)
        ax.set_title(label, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_restoration_curves(history: Sequence[dict], path) -> None:
    """Training loss and test PSNR per epoch, the baseline's PSNR as a dashed line."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.semilogy(epochs, [h.get("train_loss", np.nan) for h in history], "o-")
    ax_loss.set(xlabel="epoch", ylabel="MSE", title="Training loss")
    if any("val_psnr" in h for h in history):
        ax_psnr.plot(epochs, [h.get("val_psnr", np.nan) for h in history], "o-",
                     label="network")
    if any("baseline_psnr" in h for h in history):
        ax_psnr.plot(epochs, [h.get("baseline_psnr", np.nan) for h in history], "--",
                     label="best classical")
    ax_psnr.set(xlabel="epoch", ylabel="PSNR (dB)", title="Test PSNR")
    for ax in (ax_loss, ax_psnr):
        ax.grid(alpha=0.3)
    ax_psnr.legend()
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
