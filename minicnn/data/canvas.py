"""Drawing helpers shared by the procedural scenes (``shapes``, ``digit_scenes``).

* :func:`textured_background` -- a canvas of smooth noise and faint stripes in two dark
  colours, so that a detector must learn the objects, not "anything that is not flat".
* :func:`bright_colour` -- an object colour that stands out against that canvas.
* :func:`boxes_from_masks` -- the box tight around each mask's pixels.
"""

from __future__ import annotations

import numpy as np


def textured_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth noise plus faint stripes in two random colours: float32 ``(3, size, size)``,
    every value in [0, 0.6]."""
    coarse = rng.random((4, 4))
    ys = np.linspace(0, 3, size)
    # bilinear upsampling of the 4x4 noise, separable
    i0 = np.minimum(ys.astype(int), 2)
    f = ys - i0
    rows = coarse[i0] * (1 - f)[:, None] + coarse[i0 + 1] * f[:, None]
    noise = rows[:, i0] * (1 - f)[None, :] + rows[:, i0 + 1] * f[None, :]
    angle = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:size, 0:size]
    stripes = 0.5 + 0.5 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * rng.uniform(0.3, 1.2))
    t = 0.7 * noise + 0.3 * stripes
    c0, c1 = rng.uniform(0.0, 0.6, 3), rng.uniform(0.0, 0.6, 3)
    return (c0[:, None, None] * (1 - t) + c1[:, None, None] * t).astype(np.float32)


def bright_colour(rng: np.random.Generator) -> np.ndarray:
    """An RGB colour ``(3,)`` with at least one channel in [0.75, 1]: brighter than the
    background of :func:`textured_background` in that channel."""
    colour = rng.uniform(0.45, 1.0, 3) * (rng.random(3) < 0.7)
    colour[rng.integers(3)] = rng.uniform(0.75, 1.0)
    return colour


def boxes_from_masks(masks: np.ndarray) -> np.ndarray:
    """``(K, H, W)`` masks -> float32 ``(K, 4)`` boxes ``(x1, y1, x2, y2)`` tight around each
    mask's pixels: pixel ``(row y, column x)`` covers ``[x, x + 1) x [y, y + 1)``, so
    ``x2 = last column + 1`` (torchvision's ``masks_to_boxes`` gives the last column itself).
    Every mask must have a pixel."""
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3:
        raise ValueError(f"boxes_from_masks: masks must be (K, H, W), got shape {masks.shape}")
    boxes = np.zeros((len(masks), 4), np.float32)
    for k, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        if not len(xs):
            raise ValueError(f"boxes_from_masks: mask {k} is empty; a box needs a pixel")
        boxes[k] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    return boxes
