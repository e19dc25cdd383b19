"""Built-in and user-downloaded image-classification datasets (NumPy only; nothing downloads).

* :func:`digits` -- the real handwritten digits bundled with scikit-learn (1,797 images,
  8×8, 10 classes), resized to 32×32: the default data of ``minicnn train``.
* :func:`mnist` -- MNIST / Fashion-MNIST from the IDX files you downloaded.
* :func:`cifar` -- CIFAR-10 / CIFAR-100 from the "binary version" files you downloaded.
* :class:`ImageFolder` -- PNG/JPEG files, one sub-folder per class.

Every dataset yields ``(image, label)`` with ``image`` float32 ``(C, H, W)`` in [0, 1].
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from minicnn.data.dataset import Dataset, TensorDataset
from minicnn.data.transforms import resize


class ImageDataset(TensorDataset):
    """Images ``(N, C, H, W)`` float32 and labels ``(N,)`` int64 in memory, with class names."""

    def __init__(self, images, labels, classes, transform: Callable | None = None):
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4:
            raise ValueError(f"ImageDataset: images must be (N, C, H, W), got shape {images.shape}")
        super().__init__(images, np.asarray(labels, dtype=np.int64), transform=transform)
        self.classes = list(classes)

    @property
    def images(self) -> np.ndarray:
        return self.arrays[0]

    @property
    def labels(self) -> np.ndarray:
        return self.arrays[1]


DIGITS_TEST_SIZE = 360  # 20% of 1,797, a fixed split (seed 0)


def digits(train: bool = True, size: int = 32, transform: Callable | None = None) -> ImageDataset:
    """scikit-learn's handwritten digits, resized to ``size``×``size``, one channel.

    The split is fixed: a permutation with seed 0, the last 360 images are the test set
    (1,437 train / 360 test). Needs scikit-learn (``pip install "minicnn[data]"``).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise RuntimeError('digits needs scikit-learn: pip install "minicnn[data]"') from e
    raw = load_digits()
    images = raw.images.astype(np.float32)[:, None] / 16.0  # (1797, 1, 8, 8) in [0, 1]
    if size != 8:
        images = np.stack([resize(img, (size, size)) for img in images])
    order = np.random.default_rng(0).permutation(len(images))
    idx = order[:-DIGITS_TEST_SIZE] if train else order[-DIGITS_TEST_SIZE:]
    return ImageDataset(
        np.clip(images[idx], 0, 1), raw.target[idx], [str(i) for i in range(10)], transform
    )


# ---------------------------------------------------------------- MNIST IDX files


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (MNIST's format; ``.gz`` allowed) into an array.

    Header: two zero bytes, a type code (0x08 = uint8), the number of dimensions, then one
    big-endian int32 per dimension.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise ValueError(f"{path}: unknown IDX type code {data[2]:#x}")
    ndim = data[3]
    shape = tuple(int(n) for n in np.frombuffer(data, ">i4", count=ndim, offset=4))
    body = np.frombuffer(data, dtypes[data[2]], offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape}, file holds {body.size} values")
    return body.reshape(shape).astype(dtypes[data[2]][1:])


MNIST_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def _find(root: Path, name: str) -> Path:
    for candidate in (root / name, root / (name + ".gz")):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{root}: expected {name} or {name}.gz (the MNIST IDX files)")


def mnist(
    root: str | os.PathLike,
    train: bool = True,
    fashion: bool = False,
    transform: Callable | None = None,
) -> ImageDataset:
    """MNIST (or Fashion-MNIST, same format) from IDX files in ``root``: 28×28, one channel."""
    root = Path(root)
    images_file, labels_file = MNIST_FILES[train]
    images = read_idx(_find(root, images_file))
    labels = read_idx(_find(root, labels_file))
    if images.ndim != 3 or labels.shape != (images.shape[0],):
        raise ValueError(f"{root}: images {images.shape} and labels {labels.shape} do not match")
    classes = FASHION_CLASSES if fashion else [str(i) for i in range(10)]
    return ImageDataset(images[:, None].astype(np.float32) / 255.0, labels, classes, transform)


# ---------------------------------------------------------------- CIFAR binary files

CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def read_cifar_bin(path: str | os.PathLike, label_bytes: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR binary file: records of ``label_bytes`` label bytes + 3072 pixel bytes
    (1024 red, 1024 green, 1024 blue, row-major 32×32). Returns uint8 ``(N, 3, 32, 32)``
    and the last label byte of each record (CIFAR-100's fine label)."""
    raw = np.fromfile(path, dtype=np.uint8)
    record = label_bytes + 3072
    if raw.size == 0 or raw.size % record:
        raise ValueError(
            f"{path}: size {raw.size} is not a multiple of the {record}-byte CIFAR record"
        )
    raw = raw.reshape(-1, record)
    return raw[:, label_bytes:].reshape(-1, 3, 32, 32), raw[:, label_bytes - 1].astype(np.int64)


def cifar(
    root: str | os.PathLike,
    train: bool = True,
    num_classes: int = 10,
    transform: Callable | None = None,
) -> ImageDataset:
    """CIFAR-10 (``data_batch_1..5.bin``, ``test_batch.bin``) or CIFAR-100 (``train.bin``,
    ``test.bin``; fine labels) from the binary version extracted into ``root``."""
    root = Path(root)
    if num_classes == 10:
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] if train else ["test_batch.bin"]
        label_bytes, classes = 1, CIFAR10_CLASSES
    elif num_classes == 100:
        names = ["train.bin"] if train else ["test.bin"]
        label_bytes, classes = 2, [str(i) for i in range(100)]
    else:
        raise ValueError(f"cifar: num_classes must be 10 or 100, got {num_classes}")
    files = [root / n for n in names]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise FileNotFoundError(f"cifar: missing {', '.join(missing)} (the CIFAR binary version)")
    parts = [read_cifar_bin(f, label_bytes) for f in files]
    images = np.concatenate([p[0] for p in parts]).astype(np.float32) / 255.0
    labels = np.concatenate([p[1] for p in parts])
    return ImageDataset(images, labels, classes, transform)


# ---------------------------------------------------------------- image folder

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


class ImageFolder(Dataset):
    """``root/<class>/<image>.png|jpg``: one sub-folder per class, sorted by name.

    Images are read (with Pillow) when indexed, converted to RGB (or kept grayscale with
    ``grayscale=True``) and returned as float32 ``(C, H, W)`` in [0, 1], then ``transform``.
    """

    def __init__(
        self, root: str | os.PathLike, transform: Callable | None = None, grayscale: bool = False
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"ImageFolder: {self.root} is not a directory")
        self.classes = sorted(d.name for d in self.root.iterdir() if d.is_dir())
        if not self.classes:
            raise ValueError(f"ImageFolder: {self.root} has no class sub-folders")
        self.samples = [
            (p, label)
            for label, name in enumerate(self.classes)
            for p in sorted((self.root / name).iterdir())
            if p.suffix.lower() in IMAGE_SUFFIXES
        ]
        if not self.samples:
            raise ValueError(f"ImageFolder: no {sorted(IMAGE_SUFFIXES)} files under {self.root}")
        self.transform = transform
        self.grayscale = grayscale

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        img = load_image(path, self.grayscale)
        if self.transform is not None:
            img = self.transform(img)
        return img, label


def load_image(path: str | os.PathLike, grayscale: bool = False) -> np.ndarray:
    """Read a PNG/JPEG file as float32 ``(C, H, W)`` in [0, 1] (C = 1 or 3)."""
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im.convert("L" if grayscale else "RGB"), dtype=np.float32) / 255.0
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1).copy()
