"""Colour conversions for images in [0, 1], channel-first: RGB <-> YCbCr and grey.

The YCbCr here is ITU-R BT.601 in its "studio swing" form, the one MATLAB's ``rgb2ycbcr``
computes and SRCNN (Dong et al., 2014) measures on: for R, G, B in [0, 1],

    Y  = ( 16 +  65.481 R + 128.553 G +  24.966 B) / 255      in [16/255, 235/255]
    Cb = (128 -  37.797 R -  74.203 G + 112.000 B) / 255      in [16/255, 240/255]
    Cr = (128 + 112.000 R -  93.786 G -  18.214 B) / 255

This is ``skimage.color.rgb2ycbcr`` divided by 255 (scikit-image returns the 0-255 scale).
:func:`rgb_to_grey` is BT.601's luma without the studio offset and scale,
``0.299 R + 0.587 G + 0.114 B`` (Pillow's ``convert("L")``, as
:func:`minicnn.data.load_image` with ``grayscale=True`` reads a file).

Channels are on axis ``channel_axis`` (default ``-3``: ``(3, H, W)`` or ``(N, 3, H, W)``).
NumPy only; the metrics use these functions too.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RGB_TO_YCBCR", "YCBCR_OFFSET", "rgb_to_grey", "rgb_to_y", "rgb_to_ycbcr",
           "ycbcr_to_rgb"]

# rows: Y, Cb, Cr; columns: R, G, B (ITU-R BT.601 studio swing, on the 0-255 scale)
RGB_TO_YCBCR = np.array([[65.481, 128.553, 24.966],
                         [-37.797, -74.203, 112.0],
                         [112.0, -93.786, -18.214]]) / 255.0
YCBCR_OFFSET = np.array([16.0, 128.0, 128.0]) / 255.0
GREY_WEIGHTS = np.array([0.299, 0.587, 0.114])


def _channels_last(image, fn: str, channel_axis: int) -> tuple[np.ndarray, np.dtype]:
    """``image`` with its 3 channels moved to the last axis, and the dtype to return."""
    image = np.asarray(image)
    if image.dtype.kind not in "fiub":
        raise TypeError(f"{fn}: image must hold numbers, got dtype {image.dtype}")
    if image.ndim < 1 or not -image.ndim <= channel_axis < image.ndim \
            or image.shape[channel_axis] != 3:
        raise ValueError(f"{fn}: image must have 3 channels on axis {channel_axis}, "
                         f"got shape {image.shape}")
    out_dtype = image.dtype if image.dtype.kind == "f" else np.float32
    return np.moveaxis(image, channel_axis, -1), out_dtype


def _apply(matrix: np.ndarray, offset: np.ndarray, image, fn: str,
           channel_axis: int) -> np.ndarray:
    x, dtype = _channels_last(image, fn, channel_axis)
    out = x.astype(np.float64) @ matrix.T + offset
    return np.moveaxis(out, -1, channel_axis).astype(dtype, copy=False)


def rgb_to_ycbcr(image, channel_axis: int = -3) -> np.ndarray:
    """RGB in [0, 1] -> BT.601 YCbCr in [0, 1] (studio swing: Y in [16, 235] / 255).

    ``image``: ``(..., 3, H, W)`` (channels on ``channel_axis``) -> the same shape, in the
    input's float dtype (float32 for an integer input, whose values must be in [0, 1]
    too: convert uint8 images with ``/ 255`` first).
    """
    return _apply(RGB_TO_YCBCR, YCBCR_OFFSET, image, "rgb_to_ycbcr", channel_axis)


def ycbcr_to_rgb(image, channel_axis: int = -3) -> np.ndarray:
    """BT.601 YCbCr in [0, 1] (as :func:`rgb_to_ycbcr` gives) -> RGB, not clipped.

    ``image``: ``(..., 3, H, W)`` -> the same shape.
    """
    inverse = np.linalg.inv(RGB_TO_YCBCR)
    return _apply(inverse, -inverse @ YCBCR_OFFSET, image, "ycbcr_to_rgb", channel_axis)


def rgb_to_y(image, channel_axis: int = -3) -> np.ndarray:
    """The Y channel of :func:`rgb_to_ycbcr`, keeping a channel axis of size 1:
    ``(..., 3, H, W) -> (..., 1, H, W)`` (what SRCNN reads and is measured on)."""
    ycbcr = rgb_to_ycbcr(image, channel_axis)
    return np.take(ycbcr, [0], axis=channel_axis)


def rgb_to_grey(image, channel_axis: int = -3) -> np.ndarray:
    """Luma ``0.299 R + 0.587 G + 0.114 B`` (BT.601, full range, as Pillow's ``"L"``):
    ``(..., 3, H, W) -> (..., 1, H, W)``."""
    x, dtype = _channels_last(image, "rgb_to_grey", channel_axis)
    grey = (x.astype(np.float64) @ GREY_WEIGHTS)[..., None]
    return np.moveaxis(grey, -1, channel_axis).astype(dtype, copy=False)
