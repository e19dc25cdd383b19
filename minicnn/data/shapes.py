"""``shapes``: procedural scenes of coloured shapes on textured backgrounds.

Every scene is drawn from its own seed, ``(seed, index)``, so a dataset of any size is
reproducible without storing it. One scene gives everything the course needs:

* ``image``     float32 ``(3, H, W)`` in [0, 1]
* ``labels``    int64 ``(K,)``: the class of each object (index into ``SHAPE_CLASSES``)
* ``boxes``     float32 ``(K, 4)``: ``(x1, y1, x2, y2)`` in pixels, tight around the mask
* ``masks``     bool ``(K, H, W)``: the visible pixels of each object (later objects occlude)
* ``keypoints`` float32 ``(K, 5, 2)``: ``(x, y)`` of the centre and the top, right, bottom
  and left extreme points of the object's visible mask

:func:`shapes` makes the classification dataset (one object per scene, label = its
class); :func:`make_scene` makes one scene with any number of objects, and
:func:`shape_scenes` the detection dataset of such scenes (torchvision's targets, labels
1..4 after ``"__background__"``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from minicnn.data.canvas import boxes_from_masks, bright_colour, textured_background
from minicnn.data.dataset import Dataset
from minicnn.data.detection import BACKGROUND, SceneDataset

SHAPE_CLASSES = ["circle", "square", "triangle", "cross"]
# the keypoints in a horizontally flipped scene: the centre, top and bottom stay, the right
# and left extreme points swap (joint_transforms.RandomHorizontalFlip's keypoint_flip)
SHAPE_KEYPOINT_FLIP = [0, 1, 4, 3, 2]


def _shape_mask(kind: int, cx: float, cy: float, r: float, angle: float, size: int) -> np.ndarray:
    """Boolean mask of one shape of radius ``r`` centred at ``(cx, cy)``, rotated by ``angle``."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    dx, dy = xx - cx, yy - cy
    u = dx * np.cos(angle) + dy * np.sin(angle)  # coordinates in the shape's own frame
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    name = SHAPE_CLASSES[kind]
    if name == "circle":
        return dx**2 + dy**2 <= r**2
    if name == "square":
        half = r / np.sqrt(2)
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    if name == "triangle":  # equilateral: inside all three half-planes
        inside = np.ones_like(u, dtype=bool)
        for k in range(3):
            a = angle + np.pi / 2 + k * 2 * np.pi / 3
            nx, ny = np.cos(a), np.sin(a)
            inside &= dx * nx + dy * ny <= r / 2
        return inside
    if name == "cross":
        arm = r * 0.33
        return ((np.abs(u) <= r) & (np.abs(v) <= arm)) | ((np.abs(v) <= r) & (np.abs(u) <= arm))
    raise ValueError(f"unknown shape class {kind}")


def _keypoints(mask: np.ndarray) -> np.ndarray:
    """Centre and top/right/bottom/left extreme points of a mask, as ``(5, 2)`` (x, y)."""
    ys, xs = np.nonzero(mask)
    pts = [(xs.mean(), ys.mean())]
    for sel in (ys == ys.min(), xs == xs.max(), ys == ys.max(), xs == xs.min()):
        pts.append((xs[sel].mean(), ys[sel].mean()))
    return np.asarray(pts, dtype=np.float32) + 0.5


def make_scene(
    seed, size: int = 32, num_objects: int = 1, classes: list[int] | None = None
) -> dict:
    """Draw one scene from ``seed`` (an int or a tuple of ints). See the module docstring.

    ``classes``, if given, fixes the class of each object (length ``num_objects``).
    """
    if size < 16:
        raise ValueError(f"make_scene: size must be at least 16 pixels, got {size}")
    rng = np.random.default_rng(seed)
    image = textured_background(rng, size)
    owner = np.full((size, size), -1)
    kinds = []
    for k in range(num_objects):
        kind = int(classes[k]) if classes is not None else int(rng.integers(len(SHAPE_CLASSES)))
        r = rng.uniform(0.22, 0.38) * size / (1 + 0.35 * (num_objects - 1))
        cx, cy = rng.uniform(r, size - r, 2)
        mask = _shape_mask(kind, cx, cy, r, rng.uniform(0, 2 * np.pi), size)
        colour = bright_colour(rng)
        shade = 1 - 0.25 * (np.mgrid[0:size, 0:size][0] / size)  # a little shading
        image[:, mask] = (colour[:, None] * shade[mask][None]).astype(np.float32)
        owner[mask] = k
        kinds.append(kind)
    masks = (
        np.stack([owner == k for k in range(num_objects)])
        if num_objects
        else np.zeros((0, size, size), bool)
    )
    visible = [k for k in range(num_objects) if masks[k].any()]
    masks = masks[visible]
    boxes = boxes_from_masks(masks)
    return {
        "image": np.clip(image, 0, 1),
        "labels": np.asarray([kinds[k] for k in visible], dtype=np.int64),
        "boxes": boxes,
        "masks": masks,
        "keypoints": np.stack([_keypoints(m) for m in masks])
        if len(masks)
        else np.zeros((0, 5, 2), np.float32),
    }


class Shapes(Dataset):
    """``n`` scenes of ``num_objects`` shapes, scene ``i`` drawn from seed ``(seed, i)``.

    ``task="classify"`` (one object per scene) yields ``(image, label)``; ``task="scene"``
    yields the full scene dict of :func:`make_scene`. Classes are balanced: scene ``i``'s
    first object has class ``i % 4``.
    """

    def __init__(
        self,
        n: int = 1000,
        size: int = 32,
        seed: int = 0,
        num_objects: int = 1,
        task: str = "classify",
        transform: Callable | None = None,
    ):
        if task not in ("classify", "scene"):
            raise ValueError(f"Shapes: task must be 'classify' or 'scene', got {task!r}")
        if task == "classify" and num_objects != 1:
            raise ValueError(f"Shapes: task='classify' needs num_objects=1, got {num_objects}")
        if n < 1:
            raise ValueError(f"Shapes: n must be positive, got {n}")
        self.n, self.size, self.seed, self.num_objects = n, size, seed, num_objects
        self.task, self.transform = task, transform
        self.classes = list(SHAPE_CLASSES)

    def __len__(self) -> int:
        return self.n

    def scene(self, index: int) -> dict:
        if not 0 <= index < self.n:
            raise IndexError(f"Shapes: index {index} out of range for {self.n} scenes")
        first = index % len(SHAPE_CLASSES)
        rng_classes = np.random.default_rng((self.seed, index, 1)).integers(
            len(SHAPE_CLASSES), size=self.num_objects
        )
        rng_classes[0] = first
        return make_scene((self.seed, index), self.size, self.num_objects, list(rng_classes))

    def __getitem__(self, index: int):
        scene = self.scene(index)
        image = scene["image"] if self.transform is None else self.transform(scene["image"])
        if self.task == "classify":
            return image, int(scene["labels"][0])
        scene["image"] = image
        return scene


def shapes(
    train: bool = True, n: int | None = None, size: int = 32, transform: Callable | None = None
) -> Shapes:
    """The classification split: 2,000 train scenes (seed 0) or 500 test scenes (seed 1)."""
    if n is None:
        n = 2000 if train else 500
    return Shapes(n=n, size=size, seed=0 if train else 1, transform=transform)


class ShapeScenes(SceneDataset):
    """``n`` scenes of 1 to ``max_objects`` shapes for detection; scene ``i`` is
    :func:`make_scene` drawn from the seed ``(seed, i)``. ``dataset[i]`` is ``(image (3, size,
    size), target)``: torchvision's detection target (:mod:`minicnn.data.detection`) with
    labels 1..4 (``classes = ["__background__", *SHAPE_CLASSES]``), ``masks`` and
    ``keypoints`` ``(K, 5, 3)`` (the centre, top, right, bottom, left extreme points,
    visibility 1)."""

    def __init__(
        self,
        n: int = 1000,
        size: int = 64,
        seed: int = 0,
        max_objects: int = 4,
        transforms: Callable | None = None,
    ):
        super().__init__(n, size, seed, transforms)
        if max_objects < 1:
            raise ValueError(f"ShapeScenes: max_objects must be at least 1, got {max_objects}")
        self.max_objects = max_objects
        self.classes = [BACKGROUND, *SHAPE_CLASSES]

    def scene(self, index: int) -> dict:
        index = self._check_index(index)
        count = int(np.random.default_rng((self.seed, index, 1)).integers(1, self.max_objects + 1))
        return make_scene((self.seed, index), self.size, count)


def shape_scenes(
    train: bool = True,
    n: int | None = None,
    size: int = 64,
    max_objects: int = 4,
    transforms: Callable | None = None,
) -> ShapeScenes:
    """The detection split of ``shapes``: 2,000 train scenes (seed 2) or 400 test scenes
    (seed 3); the seeds differ from the classification split's (0 and 1)."""
    if n is None:
        n = 2000 if train else 400
    return ShapeScenes(n, size, seed=2 if train else 3, max_objects=max_objects,
                       transforms=transforms)
