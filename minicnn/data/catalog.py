"""Datasets by name, and the statistics ``Normalize`` needs: what ``minicnn train`` uses,
for lessons and scripts too.

    train, test = load_data("digits")                       # built in
    train, test = load_data("cifar10", root="~/data/cifar-10-batches-bin", subset=1000)
    train, test = load_data("digit_scenes")                 # detection: (image, target)
    train, test = load_data("shapes", task="detect")
    train, test = load_data("shapes", task="segment")        # (image, mask (H, W) int64)
    mean, std = channel_stats(train)                        # one value per channel
    train = TransformedDataset(train, transforms.Normalize(mean, std))

NumPy only, like the rest of ``minicnn.data``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from minicnn.data.dataset import Dataset, Subset
from minicnn.data.datasets import ImageFolder, cifar, digits, mnist
from minicnn.data.digit_scenes import digit_scenes
from minicnn.data.landmarks import shape_landmarks
from minicnn.data.segmentation import SegmentationScenes
from minicnn.data.shapes import shape_scenes, shapes
from minicnn.data.transforms import Resize

__all__ = ["DATASET_NAMES", "DATASETS_NEEDING_ROOT", "DATASET_TASKS", "DEFAULT_IMAGE_SIZE",
           "channel_stats", "load_data"]

DATASET_NAMES = (
    "digits", "shapes", "digit_scenes", "mnist", "fashion-mnist", "cifar10", "cifar100", "folder"
)
# the datasets read from files you downloaded (``root``); the others are built in
DATASETS_NEEDING_ROOT = ("mnist", "fashion-mnist", "cifar10", "cifar100", "folder")
# what each dataset's samples are for; the first task is the default. "classify": (image,
# label); "detect": (image, target dict) as torchvision's detection datasets; "segment":
# (image, mask (H, W) int64) of the same scenes, a class per pixel
DATASET_TASKS = {name: ("classify",) for name in DATASET_NAMES}
DATASET_TASKS.update(shapes=("classify", "detect", "segment"),
                     digit_scenes=("detect", "segment"))
# the image side when ``image_size`` is not given: classification 32, detection and
# segmentation scenes 64
DEFAULT_IMAGE_SIZE = {"classify": 32, "detect": 64, "segment": 64}
DATASET_TASKS["shapes"] += ("landmarks",)  # 5 landmarks per scene (minicnn.data.landmarks)
DEFAULT_IMAGE_SIZE["landmarks"] = 32
# "instance": the detection scenes (image, target with per-object masks) for instance
# segmentation (minicnn.train.instance)
DATASET_TASKS["shapes"] += ("instance",)
DATASET_TASKS["digit_scenes"] += ("instance",)
DEFAULT_IMAGE_SIZE["instance"] = 64


def load_data(
    name: str,
    root: str | os.PathLike | None = None,
    subset: int | None = None,
    image_size: int | None = None,
    task: str | None = None,
) -> tuple[Dataset, Dataset]:
    """The ``(train, test)`` datasets called ``name``, without transforms.

    ``name`` is one of :data:`DATASET_NAMES`: ``digits``, ``shapes`` and ``digit_scenes``
    are built in (resized or drawn at ``image_size``); ``mnist``, ``fashion-mnist`` (the
    IDX files), ``cifar10``, ``cifar100`` (the binary version) and ``folder``
    (``root/train/<class>/*.png`` and ``root/test/<class>/*.png``, resized to
    ``image_size``) read ``root``. ``subset`` keeps the first ``subset`` images of each split.

    ``task`` (one of the dataset's :data:`DATASET_TASKS`; default its first) says what the
    samples are: ``"classify"``: ``(image, label)``; ``"detect"``: ``(image, target)`` with
    torchvision's target dict (``boxes``, ``labels`` 1..C, ``masks``...; see
    :mod:`minicnn.data.detection`) -- ``digit_scenes`` and ``shapes`` scenes;
    ``"instance"``: the same samples, for instance segmentation (their ``masks``);
    ``"segment"``: ``(image, mask)`` of the same scenes, ``mask`` ``(H, W)`` int64 with the
    class of each pixel, 0 the background (:mod:`minicnn.data.segmentation`);
    ``"landmarks"``: ``(image, keypoints (5, 2))`` (:mod:`minicnn.data.landmarks`) -- ``shapes``
    scenes of one shape. Images are
    float32 ``(C, H, W)`` in [0, 1], ``image_size`` on a side (default: 32 for
    classification and landmarks, 64 for detection and segmentation); classification,
    detection and segmentation datasets have ``classes``, the class names (for detection
    and segmentation starting with ``"__background__"``).
    Raises ValueError for an unknown name, a task the dataset has not or a missing
    ``root``, FileNotFoundError for a ``root`` that is not a folder (or lacks the files).
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"load_data: unknown dataset {name!r}; expected one of {DATASET_NAMES}")
    tasks = DATASET_TASKS[name]
    task = tasks[0] if task is None else task
    if task not in tasks:
        others = [n for n, t in DATASET_TASKS.items() if task in t]
        raise ValueError(f"load_data: dataset {name!r} is for {' or '.join(tasks)}, not "
                         f"{task!r}" + (f" (data for {task!r}: {', '.join(others)})"
                                        if others else ""))
    if image_size is None:
        image_size = DEFAULT_IMAGE_SIZE[task]
    if subset is not None and subset < 1:
        raise ValueError(f"load_data: subset must be at least 1 (or None for all), got {subset}")
    if name in DATASETS_NEEDING_ROOT:
        if root is None:
            raise ValueError(
                f"load_data: {name!r} needs root, the folder with the downloaded files"
            )
        if not Path(root).expanduser().is_dir():
            raise FileNotFoundError(f"load_data: root {str(root)!r} is not a directory")
        root = Path(root).expanduser()
    if name == "digits":
        train, test = digits(True, size=image_size), digits(False, size=image_size)
    elif name == "shapes" and task == "landmarks":
        train = shape_landmarks(True, size=image_size)
        test = shape_landmarks(False, size=image_size)
    elif name == "shapes" and task in ("detect", "segment", "instance"):
        train, test = shape_scenes(True, size=image_size), shape_scenes(False, size=image_size)
    elif name == "shapes":
        train, test = shapes(True, size=image_size), shapes(False, size=image_size)
    elif name == "digit_scenes":
        train, test = digit_scenes(True, size=image_size), digit_scenes(False, size=image_size)
    elif name in ("mnist", "fashion-mnist"):
        fashion = name == "fashion-mnist"
        train, test = mnist(root, True, fashion), mnist(root, False, fashion)
    elif name in ("cifar10", "cifar100"):
        k = 10 if name == "cifar10" else 100
        train, test = cifar(root, True, k), cifar(root, False, k)
    else:  # folder
        if not (root / "train").is_dir() or not (root / "test").is_dir():
            raise FileNotFoundError(
                f"load_data: 'folder' expects {root}/train/<class>/ and {root}/test/<class>/"
            )
        resize = Resize(image_size)
        train = ImageFolder(root / "train", transform=resize)
        test = ImageFolder(root / "test", transform=resize, classes=train.classes)
    if task == "segment":  # the masks of the detection scenes
        train, test = SegmentationScenes(train), SegmentationScenes(test)
    if subset:
        train = Subset(train, range(min(subset, len(train))))
        test = Subset(test, range(min(subset, len(test))))
    return train, test


def channel_stats(dataset: Dataset, limit: int = 2000) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of the images, for ``Normalize(mean, std)``.

    Reads the images ``dataset[i][0]``, each ``(C, H, W)``, of the first ``limit`` samples
    (all of them when the dataset is smaller) and averages over images and pixels. The std
    has 1e-6 added, so a constant channel does not divide by zero. Returns two lists of
    ``C`` floats.
    """
    n = min(limit, len(dataset))
    if n < 1:
        raise ValueError(f"channel_stats: the dataset is empty (limit={limit}, len={len(dataset)})")
    images = np.stack([np.asarray(dataset[i][0]) for i in range(n)])
    if images.ndim != 4:
        raise ValueError(
            f"channel_stats: images must be (C, H, W), got shape {tuple(images.shape[1:])}"
        )
    images = images.astype(np.float64)  # float64 sums: the result does not depend on n's size
    return images.mean(axis=(0, 2, 3)).tolist(), (images.std(axis=(0, 2, 3)) + 1e-6).tolist()
