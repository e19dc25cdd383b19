"""The filters of a convolution layer as a grid of small images.

A ``Conv2d``'s weight ``(C_out, C_in / groups, k_h, k_w)`` is ``C_out`` filters; each is a
little image with ``C_in / groups`` channels. Filters on RGB input are shown in colour
(as Zeiler & Fergus's Figure 2 shows the first layer), others one input channel at a time
(or averaged over the input channels) on a red-blue scale centred at zero.
"""

from __future__ import annotations

import os

import numpy as np

from minicnn.autograd import Tensor
from minicnn.nn import Conv2d, ConvTranspose2d, Module
from minicnn.viz.figure import finish, new_figure

__all__ = ["filter_images", "plot_filters"]


def _weight(layer) -> np.ndarray:
    if isinstance(layer, Conv2d | ConvTranspose2d):
        weight = layer.weight.detach().numpy()
        if isinstance(layer, ConvTranspose2d):  # (C_in, C_out / groups, kh, kw)
            weight = weight.transpose(1, 0, 2, 3)
    elif isinstance(layer, Tensor):
        weight = layer.detach().numpy()
    elif isinstance(layer, Module):
        raise TypeError(f"plot_filters: layer is a {type(layer).__name__}; expected a Conv2d, "
                        "a ConvTranspose2d or a weight (C_out, C_in, k_h, k_w)")
    else:
        weight = np.asarray(layer)
    if weight.ndim != 4:
        raise ValueError(f"filters must be a weight (C_out, C_in, k_h, k_w), got shape "
                         f"{weight.shape}")
    return np.asarray(weight, dtype=np.float32)


def filter_images(layer, channel: int | None = None) -> np.ndarray:
    """The filters of ``layer`` (a ``Conv2d``, ``ConvTranspose2d`` or a weight array/Tensor
    ``(C_out, C_in, k_h, k_w)``) as images: ``(C_out, k_h, k_w, 3)`` in [0, 1] when
    ``C_in == 3`` and ``channel`` is None (each filter stretched to its own range, as
    Zeiler & Fergus show layer 1), else ``(C_out, k_h, k_w)`` raw weights of input channel
    ``channel`` (the mean over input channels when None)."""
    weight = _weight(layer)
    if channel is not None:
        if not 0 <= channel < weight.shape[1]:
            raise ValueError(f"filter_images: channel {channel} out of range; the filters "
                             f"have {weight.shape[1]} input channels")
        return weight[:, channel].copy()
    if weight.shape[1] == 3:
        lo = weight.min(axis=(1, 2, 3), keepdims=True)
        hi = weight.max(axis=(1, 2, 3), keepdims=True)
        return ((weight - lo) / np.maximum(hi - lo, 1e-12)).transpose(0, 2, 3, 1)
    return weight.mean(axis=1)


def plot_filters(layer, path: str | os.PathLike | None = None, channel: int | None = None,
                 max_filters: int = 64, title: str | None = None):
    """A grid of the first ``max_filters`` filters of ``layer`` (see :func:`filter_images`):
    colour for RGB filters, otherwise red positive, blue negative on one shared scale (with
    a colour bar).
    Returns the Figure; saves it when ``path`` is given."""
    images = filter_images(layer, channel)[:max_filters]
    n = len(images)
    cols = min(16, n)
    rows = -(-n // cols)
    cell = 1.2 if n <= 16 else 0.75  # inches per filter: a few filters drawn larger
    fig = new_figure(max(cell * cols + 0.3, 4.0), cell * rows + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    bound = float(np.abs(images).max()) or 1.0
    for ax in axes:
        ax.axis("off")
    shown = None
    for ax, image in zip(axes, images, strict=False):
        if image.ndim == 3:
            ax.imshow(image, interpolation="nearest")
        else:
            shown = ax.imshow(image, cmap="RdBu_r", vmin=-bound, vmax=bound,
                              interpolation="nearest")
    weight_shape = _weight(layer).shape
    what = ("RGB" if images.ndim == 4 else
            f"input channel {channel}" if channel is not None else
            "one input channel" if weight_shape[1] == 1 else "mean over input channels")
    fig.suptitle(title or f"{weight_shape[0]} filters {weight_shape[2]}x{weight_shape[3]} "
                 f"({what})", fontsize=10)
    fig.tight_layout()
    if shown is not None:  # the weights' scale, shared by all filters
        fig.colorbar(shown, ax=list(axes), fraction=0.03, pad=0.02)
    return finish(fig, path)
