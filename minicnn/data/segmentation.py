"""Segmentation data: semantic and binary masks from the procedural scenes, their checks,
and the batch collate.

A segmentation sample is ``(image, mask)`` as in torchvision's segmentation references:

* ``image``  float32 ``(3, H, W)`` in [0, 1]
* ``mask``   int64 ``(H, W)``: the class of each pixel, 0 the background; in a binary mask
  1 is "any object"; :data:`IGNORE_INDEX` (255) marks pixels that count in no loss or
  metric (none in the scenes here; a crop or a hand-labelled border may add them)

The masks come from the scenes' per-object masks (the visible pixels of each object,
later objects occluding earlier ones, so they never overlap): pixel ``(y, x)`` of object
``k`` gets its detection label ``labels[k]`` (1..C), so a semantic mask uses the same
classes as the detection dataset, ``classes[0] == "__background__"``.

    train = SegmentationScenes(shape_scenes(True))            # 5 classes: background + 4
    image, mask = train[0]                                    # (3, 64, 64), (64, 64) int64
    binary = SegmentationScenes(shape_scenes(True), binary=True)   # background / object

NumPy only, like the rest of ``minicnn.data``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from minicnn.data.dataset import Dataset
from minicnn.data.detection import BACKGROUND

__all__ = [
    "IGNORE_INDEX",
    "SegmentationScenes",
    "check_mask",
    "segmentation_collate",
    "semantic_mask",
]

IGNORE_INDEX = 255  # torchvision's segmentation references (VOC's border pixels)


def semantic_mask(masks, labels, binary: bool = False) -> np.ndarray:
    """The ``(H, W)`` int64 class mask of ``K`` object masks ``(K, H, W)`` with their labels
    ``(K,)`` (1..C): pixel ``(y, x)`` is ``labels[k]`` where ``masks[k, y, x]`` (a later
    object overwrites an earlier one where they overlap), 0 elsewhere; with ``binary``, 1
    for any object."""
    masks = np.asarray(masks)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if masks.ndim != 3 or len(masks) != len(labels):
        raise ValueError(f"semantic_mask: masks must be (K, H, W) with one label each, got "
                         f"masks {masks.shape} and {len(labels)} labels")
    out = np.zeros(masks.shape[1:], dtype=np.int64)
    for mask, label in zip(masks, labels, strict=True):
        out[mask.astype(bool)] = 1 if binary else label
    return out


def check_mask(mask, image_size: tuple[int, int] | None = None, num_classes: int | None = None,
               ignore_index: int | None = IGNORE_INDEX, where: str = "mask") -> np.ndarray:
    """Check a class mask and return it as an int64 array.

    ``mask``: ``(H, W)`` (or a batch ``(N, H, W)``) of integers; ``image_size`` ``(H, W)``,
    when given, is the size it must have; ``num_classes``, when given, bounds its values
    to ``0 .. num_classes - 1`` apart from ``ignore_index``. ValueError naming ``where``,
    what was received and what was expected; TypeError for a mask that is not integer.
    """
    mask = np.asarray(mask)
    if mask.dtype.kind not in "iub":
        raise TypeError(f"{where}: must hold integer class labels, got dtype {mask.dtype}")
    if mask.ndim not in (2, 3):
        raise ValueError(f"{where}: must be (H, W) or (N, H, W), got shape {mask.shape}")
    if image_size is not None and mask.shape[-2:] != tuple(image_size):
        raise ValueError(f"{where}: is {mask.shape[-2]}x{mask.shape[-1]}, expected the "
                         f"image's size {image_size[0]}x{image_size[1]}")
    mask = mask.astype(np.int64, copy=False)
    if num_classes is not None and mask.size:
        valid = (mask >= 0) & (mask < num_classes)
        if ignore_index is not None:
            valid |= mask == ignore_index
        if not valid.all():
            bad = np.unique(mask[~valid])
            allowed = f"0..{num_classes - 1}" + (f" or the ignore index {ignore_index}"
                                                 if ignore_index is not None else "")
            raise ValueError(f"{where}: has the labels {bad[:5].tolist()}, expected {allowed} "
                             f"for {num_classes} classes")
    return mask


def segmentation_collate(samples: list) -> tuple[np.ndarray, np.ndarray]:
    """Batch ``[(image (C, H, W), mask (H, W)), ...]`` into ``(images (N, C, H, W), masks
    (N, H, W) int64)``; each mask is checked against its image's size (:func:`check_mask`).
    Pass it as ``DataLoader(dataset, batch_size, collate_fn=segmentation_collate)``."""
    if not samples:
        raise ValueError("segmentation_collate: no samples, expected at least one "
                         "(image, mask)")
    images, masks = [], []
    for i, sample in enumerate(samples):
        if not isinstance(sample, tuple | list) or len(sample) != 2:
            raise ValueError(f"segmentation_collate: sample {i} must be (image, mask), got "
                             f"{type(sample).__name__}")
        image = np.asarray(sample[0])
        if image.ndim != 3:
            raise ValueError(f"segmentation_collate: sample {i}'s image must be (C, H, W), "
                             f"got shape {image.shape}")
        if images and image.shape != images[0].shape:
            raise ValueError(f"segmentation_collate: sample {i}'s image is {image.shape}, "
                             f"sample 0's is {images[0].shape}; resize them to one size")
        masks.append(check_mask(sample[1], image.shape[1:],
                                where=f"segmentation_collate: sample {i}'s mask"))
        if masks[-1].ndim != 2:
            raise ValueError(f"segmentation_collate: sample {i}'s mask must be (H, W), got "
                             f"shape {masks[-1].shape}")
        images.append(image)
    return np.stack(images), np.stack(masks)


class SegmentationScenes(Dataset):
    """Semantic (or, with ``binary``, binary) segmentation of a detection scene dataset.

    ``scenes``: a :class:`~minicnn.data.detection.SceneDataset` (``shape_scenes``,
    ``digit_scenes``) or a ``Subset`` of one. ``dataset[i]`` is ``(image (3, H, W), mask
    (H, W) int64)`` (see the module docstring), passed through ``transforms(image, mask)``
    when given: a joint transform of :mod:`minicnn.data.joint_transforms` (flips and crops
    move the mask with the image; resizes take the nearest label). ``classes``: the
    scenes' (``"__background__"`` first), or ``["__background__", "object"]`` when binary.
    """

    def __init__(self, scenes, binary: bool = False, transforms: Callable | None = None):
        if not hasattr(scenes, "classes") or not scenes.classes or scenes.classes[0] != BACKGROUND:
            raise TypeError(f"SegmentationScenes: scenes must be a detection scene dataset "
                            f"whose classes start with {BACKGROUND!r}, got "
                            f"{type(scenes).__name__}")
        if transforms is not None and not callable(transforms):
            raise TypeError(f"SegmentationScenes: transforms must be callable (image, mask) -> "
                            f"(image, mask), got {type(transforms).__name__}")
        self.scenes, self.binary, self.transforms = scenes, bool(binary), transforms
        self.classes = [BACKGROUND, "object"] if binary else list(scenes.classes)

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, index: int):
        image, target = self.scenes[index]
        mask = semantic_mask(target["masks"], target["labels"], self.binary)
        if self.transforms is not None:
            image, mask = self.transforms(image, mask)
        return image, check_mask(mask, np.shape(image)[1:], len(self.classes),
                                 where=f"{type(self).__name__}[{index}]'s mask")
