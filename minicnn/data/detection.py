"""Detection data: torchvision's target dicts, their checks, the batch collate, and the
base class of the procedural scene datasets (``shapes`` scenes, ``digit_scenes``).

A detection sample is ``(image, target)`` as in torchvision's detection references:

* ``image``     float32 ``(3, H, W)`` in [0, 1]
* ``target``    a dict of NumPy arrays, one row per object (``K`` objects):

  - ``boxes``     float32 ``(K, 4)``: ``(x1, y1, x2, y2)`` in pixels of the image
  - ``labels``    int64 ``(K,)``: 1..C for C classes; 0 is the background and never a target
  - ``masks``     uint8 ``(K, H, W)``: the object's visible pixels (optional)
  - ``keypoints`` float32 ``(K, P, 3)``: ``(x, y, visibility)`` per point (optional)
  - ``area``      float32 ``(K,)``: the object's area in pixels (its mask's, else its box's)
  - ``iscrowd``   int64 ``(K,)``: 0 (COCO's flag for a crowd region)
  - ``image_id``  int: the sample's index

and the dataset's ``classes`` starts with ``"__background__"``, so ``classes[label]`` names
a label. :func:`detection_collate` batches samples for a ``DataLoader``: the images
stacked into ``(N, 3, H, W)``, the targets a list of ``N`` dicts (their sizes differ).

NumPy only, like the rest of ``minicnn.data``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from minicnn.data.dataset import Dataset

__all__ = [
    "BACKGROUND",
    "INSTANCE_KEYS",
    "SceneDataset",
    "check_target",
    "detection_collate",
    "scene_target",
]

BACKGROUND = "__background__"
# the keys whose first axis runs over the objects: selecting objects selects their rows
INSTANCE_KEYS = ("boxes", "labels", "masks", "keypoints", "area", "iscrowd")


def _shape(value) -> tuple[int, ...]:
    return tuple(np.shape(value))


def check_target(target, image_size: tuple[int, int] | None = None, where: str = "target") -> dict:
    """Check a detection target (see the module docstring) and return it.

    ``image_size`` ``(H, W)``, when given, is the size ``masks`` must have. Raises
    ValueError naming the key, what it holds and what was expected: no ``boxes`` or
    ``labels``, boxes not ``(K, 4)`` or with ``x2 < x1`` / ``y2 < y1`` or not finite,
    a per-object array whose length is not ``K``, masks of another size than the image,
    keypoints not ``(K, P, 2)`` or ``(K, P, 3)``. TypeError for a target that is not a dict.
    """
    if not isinstance(target, dict):
        raise TypeError(f"{where}: expected a dict with 'boxes' and 'labels', got "
                        f"{type(target).__name__}")
    for key in ("boxes", "labels"):
        if key not in target:
            raise ValueError(f"{where}: no {key!r}; a detection target needs 'boxes' (K, 4) "
                             f"and 'labels' (K,), got the keys {sorted(target)}")
    boxes = np.asarray(target["boxes"])
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{where}: 'boxes' must be (K, 4) (x1, y1, x2, y2), got shape "
                         f"{boxes.shape}")
    if not np.isfinite(boxes).all():
        bad_box = boxes[~np.isfinite(boxes).all(1)][0]
        raise ValueError(f"{where}: 'boxes' must be finite, got the box {bad_box.tolist()}")
    bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bad.any():
        raise ValueError(f"{where}: 'boxes' must have x1 <= x2 and y1 <= y2, box "
                         f"{int(np.argmax(bad))} is {boxes[bad][0].tolist()}")
    k = len(boxes)
    for key in INSTANCE_KEYS[1:]:
        if key in target and (np.ndim(target[key]) == 0 or len(target[key]) != k):
            raise ValueError(f"{where}: {key!r} must have one row per box ({k} boxes), got "
                             f"shape {_shape(target[key])}")
    if np.ndim(target["labels"]) != 1:
        raise ValueError(f"{where}: 'labels' must be (K,), got shape {_shape(target['labels'])}")
    if "masks" in target:
        masks = target["masks"]
        if np.ndim(masks) != 3:
            raise ValueError(f"{where}: 'masks' must be (K, H, W), got shape {_shape(masks)}")
        if image_size is not None and _shape(masks)[1:] != tuple(image_size):
            raise ValueError(f"{where}: 'masks' are {_shape(masks)[1]}x{_shape(masks)[2]}, "
                             f"expected the image's size {image_size[0]}x{image_size[1]}")
    if "keypoints" in target:
        kp = target["keypoints"]
        if np.ndim(kp) != 3 or _shape(kp)[2] not in (2, 3):
            raise ValueError(f"{where}: 'keypoints' must be (K, P, 2) or (K, P, 3) "
                             f"(x, y[, visibility]), got shape {_shape(kp)}")
    return target


def detection_collate(samples: list) -> tuple[np.ndarray, list[dict]]:
    """Batch ``[(image (3, H, W), target dict), ...]`` into ``(images (N, 3, H, W), [target,
    ...])`` -- the images stacked, the targets kept as a list (each image has its own number
    of objects), as torchvision's detection references do. Each target is checked
    (:func:`check_target`); images of different sizes are a ValueError (resize them first).

    Pass it as ``DataLoader(dataset, batch_size, collate_fn=detection_collate)``;
    ``minicnn.utils.data.DataLoader`` gives the same batch with Tensors.
    """
    if not samples:
        raise ValueError("detection_collate: no samples, expected at least one (image, target)")
    images, targets = [], []
    for i, sample in enumerate(samples):
        if not isinstance(sample, tuple | list) or len(sample) != 2:
            raise ValueError(f"detection_collate: sample {i} must be (image, target), got "
                             f"{type(sample).__name__}")
        image = np.asarray(sample[0])
        if image.ndim != 3:
            raise ValueError(f"detection_collate: sample {i}'s image must be (C, H, W), got "
                             f"shape {image.shape}")
        if images and image.shape != images[0].shape:
            raise ValueError(f"detection_collate: sample {i}'s image is {image.shape}, sample "
                             f"0's is {images[0].shape}; resize them to one size to stack them")
        targets.append(check_target(sample[1], image.shape[1:], f"detection_collate: sample {i}"))
        images.append(image)
    return np.stack(images), targets


def scene_target(scene: dict, image_id: int) -> dict:
    """The torchvision target of a drawn scene (``boxes``, ``labels`` 0..C-1, ``masks`` bool,
    optional ``keypoints`` ``(K, P, 2)``): labels shifted to 1..C, masks as uint8,
    keypoints with a visibility column of 1, ``area`` the mask's pixel count."""
    masks = np.asarray(scene["masks"], dtype=np.uint8)
    target = {
        "boxes": np.asarray(scene["boxes"], dtype=np.float32).reshape(-1, 4),
        "labels": np.asarray(scene["labels"], dtype=np.int64) + 1,
        "masks": masks,
        "image_id": int(image_id),
        "area": masks.sum(axis=(1, 2)).astype(np.float32),
        "iscrowd": np.zeros(len(masks), dtype=np.int64),
    }
    if "keypoints" in scene:
        kp = np.asarray(scene["keypoints"], dtype=np.float32)
        target["keypoints"] = np.concatenate([kp, np.ones((*kp.shape[:2], 1), np.float32)], 2)
    return target


class SceneDataset(Dataset):
    """Base of the procedural detection datasets: scene ``i`` is drawn by :meth:`scene` from
    the seed ``(seed, i)``, so any number of scenes is reproducible without storing them.

    ``dataset[i]`` is ``(image (3, H, W), target)`` (see the module docstring), passed
    through ``transforms(image, target)`` when given (a joint transform of
    :mod:`minicnn.data.joint_transforms`). ``classes`` starts with ``"__background__"``.
    Subclasses set ``classes`` and implement ``scene(index) -> dict`` with ``image``,
    ``boxes``, ``labels`` (0-based), ``masks`` and optionally ``keypoints``.
    """

    classes: list[str]

    def __init__(self, n: int, size: int, seed: int, transforms: Callable | None = None):
        name = type(self).__name__
        if not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"{name}: n must be a positive int (scenes), got {n!r}")
        if not isinstance(size, int | np.integer) or size < 16:
            raise ValueError(f"{name}: size must be an int of at least 16 pixels, got {size!r}")
        if transforms is not None and not callable(transforms):
            raise TypeError(f"{name}: transforms must be callable (image, target) -> "
                            f"(image, target), got {type(transforms).__name__}")
        self.n, self.size, self.seed, self.transforms = int(n), int(size), seed, transforms

    def __len__(self) -> int:
        return self.n

    def _check_index(self, index: int) -> int:
        if not -self.n <= index < self.n:
            raise IndexError(f"{type(self).__name__}: index {index} out of range for "
                             f"{self.n} scenes")
        return index % self.n

    def scene(self, index: int) -> dict:
        raise NotImplementedError

    def __getitem__(self, index: int):
        index = self._check_index(index)
        scene = self.scene(index)
        image, target = scene["image"], scene_target(scene, index)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target
