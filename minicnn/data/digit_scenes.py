"""``digit_scenes``: real handwritten digits placed on textured canvases, for detection
and instance segmentation.

Each scene holds 1 to ``max_digits`` of scikit-learn's 8x8 handwritten digits (real scans,
:func:`~minicnn.data.datasets.sklearn_digits`), each enlarged 2-3x by bilinear
interpolation, painted in a bright colour at a random place of a
:func:`~minicnn.data.canvas.textured_background`; a later digit may overlap (and hide
part of) an earlier one. A digit's *ink* is the pixels where its enlarged intensity is at
least :data:`INK_THRESHOLD` (half of full ink is painted there, more in the middle of a
stroke). Targets follow torchvision (:mod:`minicnn.data.detection`):

* ``boxes``  tight around the digit's visible ink (after occlusion by later digits)
* ``labels`` digit ``d`` -> label ``d + 1`` (``classes = ["__background__", "0", ..., "9"]``)
* ``masks``  the digit's visible ink pixels, uint8 ``(K, H, W)``

The split is by scan: training scenes draw only the scans of ``digits``' training split,
test scenes only its 360 test scans (:func:`~minicnn.data.datasets.digits_split`), so a
detector is tested on handwriting it has never seen. Scene ``i`` is drawn from the seed
``(0, i)`` (train) or ``(1, i)`` (test), like ``shapes``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from minicnn.data.canvas import boxes_from_masks, bright_colour, textured_background
from minicnn.data.datasets import digits_split, sklearn_digits
from minicnn.data.detection import BACKGROUND, SceneDataset
from minicnn.data.transforms import resize

__all__ = ["DIGIT_SCENE_CLASSES", "INK_THRESHOLD", "DigitScenes", "digit_ink",
           "digit_scenes", "make_digit_scene"]

DIGIT_SCENE_CLASSES = [BACKGROUND] + [str(d) for d in range(10)]
INK_THRESHOLD = 0.35  # enlarged intensity (0..1) from which a pixel is the digit's ink
# the paint's opacity rises linearly from 0 at intensity INK_THRESHOLD - 0.15 to 1 at
# INK_THRESHOLD + 0.15: soft edges, and opacity >= 0.5 exactly on the ink
_SOFT_EDGE = 0.15
MAX_BOX_IOU = 0.2  # two digits' ink boxes overlap at most this much (IoU)


def digit_ink(scan: np.ndarray, side: int) -> np.ndarray:
    """An 8x8 digit scan in [0, 1] enlarged to ``side`` x ``side`` (bilinear, half-pixel
    centres as ``F.interpolate(mode="bilinear", align_corners=False)``): float32 intensity."""
    return resize(np.asarray(scan, np.float32)[None], (side, side))[0]


def make_digit_scene(
    seed,
    scans: Sequence[int],
    size: int = 64,
    num_digits: int = 3,
    scale: tuple[float, float] = (2.0, 3.0),
) -> dict:
    """Draw one scene from ``seed`` with ``num_digits`` digits drawn from the scikit-learn
    sample numbers ``scans``. See the module docstring.

    Returns ``image`` float32 ``(3, size, size)``, ``labels`` int64 ``(K,)`` (the digits,
    0..9), ``boxes`` float32 ``(K, 4)``, ``masks`` bool ``(K, size, size)``, ``scans`` int64
    ``(K,)`` (each digit's sample number) and ``placements`` int64 ``(K, 3)`` (left, top and
    side of each digit's enlarged square), for the ``K <= num_digits`` digits that are
    visible. A digit whose ink box would overlap an earlier one's by more than
    :data:`MAX_BOX_IOU` is moved (20 tries, then left out).
    """
    if size < 16:
        raise ValueError(f"make_digit_scene: size must be at least 16 pixels, got {size}")
    if not 1 <= scale[0] <= scale[1] or 8 * scale[1] > size:
        raise ValueError(f"make_digit_scene: scale must be (low, high) with 1 <= low <= high "
                         f"and 8 * high <= size ({size}), got {scale}")
    if len(scans) == 0:
        raise ValueError("make_digit_scene: scans is empty, expected sample numbers to draw from")
    images, classes = sklearn_digits()
    rng = np.random.default_rng(seed)
    image = textured_background(rng, size)
    owner = np.full((size, size), -1)
    placed: list[tuple[int, int, int, int]] = []  # (scan, left, top, side)
    ink_boxes: list[np.ndarray] = []
    for _ in range(num_digits):
        scan = int(scans[rng.integers(len(scans))])
        side = int(round(8 * rng.uniform(*scale)))
        intensity = digit_ink(images[scan], side)
        ink = intensity >= INK_THRESHOLD
        ys, xs = np.nonzero(ink)
        own_box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)
        colour = bright_colour(rng)
        for _try in range(20):
            left, top = (int(v) for v in rng.integers(0, size - side + 1, 2))
            box = own_box + [left, top, left, top]
            if all(_iou(box, other) <= MAX_BOX_IOU for other in ink_boxes):
                break
        else:
            continue
        alpha = np.clip((intensity - INK_THRESHOLD + _SOFT_EDGE) / (2 * _SOFT_EDGE), 0, 1)
        window = image[:, top : top + side, left : left + side]
        window[:] = window * (1 - alpha) + colour[:, None, None] * alpha
        owner[top : top + side, left : left + side][ink] = len(placed)
        placed.append((scan, left, top, side))
        ink_boxes.append(box)
    masks = np.stack([owner == k for k in range(len(placed))]) if placed else (
        np.zeros((0, size, size), bool))
    visible = [k for k in range(len(placed)) if masks[k].any()]
    masks = masks[visible]
    placed_visible = np.array([placed[k] for k in visible], dtype=np.int64).reshape(-1, 4)
    return {
        "image": np.clip(image, 0, 1).astype(np.float32),
        "labels": classes[placed_visible[:, 0]].astype(np.int64),
        "boxes": boxes_from_masks(masks),
        "masks": masks,
        "scans": placed_visible[:, 0],
        "placements": placed_visible[:, 1:],
    }


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boxes (x1, y1, x2, y2)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union)


class DigitScenes(SceneDataset):
    """``n`` digit scenes of ``size`` x ``size`` pixels, each with 1 to ``max_digits``
    digits drawn from the scikit-learn sample numbers ``scans``; scene ``i`` from the seed
    ``(seed, i)``. ``dataset[i]`` is ``(image (3, size, size), target)`` (torchvision's
    detection target, see :mod:`minicnn.data.detection`); ``scene(i)`` is the full scene
    of :func:`make_digit_scene`.
    """

    def __init__(
        self,
        scans: Sequence[int],
        n: int = 1000,
        size: int = 64,
        seed: int = 0,
        max_digits: int = 5,
        scale: tuple[float, float] = (2.0, 3.0),
        transforms: Callable | None = None,
    ):
        super().__init__(n, size, seed, transforms)
        if max_digits < 1:
            raise ValueError(f"DigitScenes: max_digits must be at least 1, got {max_digits}")
        if 8 * scale[1] > size:
            raise ValueError(f"DigitScenes: digits enlarged up to {scale[1]}x (8 * "
                             f"{scale[1]} pixels) do not fit a {size}x{size} canvas")
        self.scans = np.asarray(scans, dtype=np.int64)
        self.max_digits, self.scale = max_digits, tuple(scale)
        self.classes = list(DIGIT_SCENE_CLASSES)

    def scene(self, index: int) -> dict:
        index = self._check_index(index)
        count = int(np.random.default_rng((self.seed, index, 1)).integers(1, self.max_digits + 1))
        return make_digit_scene((self.seed, index), self.scans, self.size, count, self.scale)


def digit_scenes(
    train: bool = True,
    n: int | None = None,
    size: int = 64,
    max_digits: int = 5,
    transforms: Callable | None = None,
) -> DigitScenes:
    """The detection split: 2,000 train scenes (seed 0, the 1,437 training scans of
    ``digits``) or 400 test scenes (seed 1, the 360 test scans). Needs scikit-learn."""
    if n is None:
        n = 2000 if train else 400
    return DigitScenes(digits_split(train), n=n, size=size, seed=0 if train else 1,
                       max_digits=max_digits, transforms=transforms)
