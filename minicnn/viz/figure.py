"""What every figure of the "inside a CNN" modules shares: a new matplotlib ``Figure``
(no pyplot state, so nothing to close), its atomic save, and showing a ``(C, H, W)`` image.

Each plotting function there returns its ``Figure`` (a notebook shows it) and, given
``path``, also writes it: to a temporary file renamed over ``path``, so an interrupted save
never leaves half a PNG.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from minicnn.serialization import atomic_write

__all__ = ["new_figure", "save_figure"]

_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg", ".jpg": "jpg", ".jpeg": "jpg"}


def new_figure(width: float, height: float):
    """A matplotlib ``Figure`` of ``width`` x ``height`` inches, outside pyplot."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write ``fig`` to ``path`` atomically; the format comes from the suffix (``.png``,
    ``.pdf``, ``.svg``, ``.jpg``). Raises ValueError for another suffix."""
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"save_figure: path {str(path)!r} has suffix {path.suffix!r}; "
                         f"expected one of {sorted(_FORMATS)}")
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi))


def finish(fig, path: str | os.PathLike | None, dpi: int = 100):
    """Save ``fig`` when ``path`` is given (atomically), and return it."""
    if path is not None:
        save_figure(fig, path, dpi=dpi)
    return fig


def as_picture(image: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` (C = 1 or 3) or ``(H, W)`` -> what ``imshow`` shows, in [0, 1]:
    ``(H, W)`` or ``(H, W, 3)``, min-max stretched when outside [0, 1]."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3:
        if image.shape[0] not in (1, 3):
            raise ValueError(f"image must be (1 or 3, H, W) or (H, W), got shape {image.shape}")
        image = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    elif image.ndim != 2:
        raise ValueError(f"image must be (1 or 3, H, W) or (H, W), got shape {image.shape}")
    if image.size and (image.min() < 0 or image.max() > 1):
        image = (image - image.min()) / max(float(image.max() - image.min()), 1e-12)
    return image


def show(ax, image: np.ndarray, title: str | None = None, **kwargs) -> None:
    """Draw a ``(C, H, W)`` or ``(H, W)`` image on ``ax`` (grey for one channel), no axes."""
    picture = as_picture(image)
    kwargs.setdefault("interpolation", "nearest")
    if picture.ndim == 2:
        kwargs.setdefault("cmap", "gray")
    ax.imshow(picture, **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=8)
