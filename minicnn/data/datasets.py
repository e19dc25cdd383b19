"""Built-in and user-downloaded image-classification datasets (NumPy only; nothing downloads).

* :func:`digits` -- the real handwritten digits bundled with scikit-learn (1,797 images,
  8×8, 10 classes), resized to 32×32: the default data of ``minicnn train``.
* :func:`mnist` -- MNIST / Fashion-MNIST from the IDX files you downloaded.
* :func:`cifar` -- CIFAR-10 / CIFAR-100 from the "binary version" files you downloaded.
* :class:`ImageFolder` -- PNG/JPEG files, one sub-folder per class.

Every dataset yields ``(image, label)`` with ``image`` float32 ``(C, H, W)`` in [0, 1].
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from minicnn.data.dataset import Dataset, TensorDataset
from minicnn.data.transforms import resize
from minicnn.errors import DataFileError, reading


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


@functools.lru_cache(maxsize=1)
def sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 handwritten digits, read once: float32 ``(1797, 8, 8)`` in [0, 1]
    and their int64 classes ``(1797,)`` (read-only arrays, shared by every caller)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise RuntimeError('digits needs scikit-learn: pip install "minicnn[data]"') from e
    raw = load_digits()
    images = (raw.images / 16.0).astype(np.float32)
    targets = raw.target.astype(np.int64)
    images.setflags(write=False)
    targets.setflags(write=False)
    return images, targets


def digits_split(train: bool) -> np.ndarray:
    """The indices of scikit-learn's digits (its sample numbers) in the train or test split:
    a permutation with seed 0, the last 360 are the test set. ``digits`` and
    ``digit_scenes`` share it, so no test image or scene uses a training scan."""
    order = np.random.default_rng(0).permutation(len(sklearn_digits()[0]))
    return order[:-DIGITS_TEST_SIZE] if train else order[-DIGITS_TEST_SIZE:]


def digits(train: bool = True, size: int = 32, transform: Callable | None = None) -> ImageDataset:
    """scikit-learn's handwritten digits, resized to ``size``×``size``, one channel.

    The split is fixed (:func:`digits_split`): a permutation with seed 0, the last 360
    images are the test set (1,437 train / 360 test). Needs scikit-learn
    (``pip install "minicnn[data]"``).
    """
    all_images, targets = sklearn_digits()
    images = all_images[:, None]  # (1797, 1, 8, 8) in [0, 1]
    if size != 8:
        images = np.stack([resize(img, (size, size)) for img in images])
    idx = digits_split(train)
    return ImageDataset(
        np.clip(images[idx], 0, 1), targets[idx], [str(i) for i in range(10)], transform
    )


# ---------------------------------------------------------------- MNIST IDX files


IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (MNIST's format; ``.gz`` allowed) into an array.

    Header: two zero bytes, a type code (0x08 = uint8), the number of dimensions, then one
    big-endian int32 per dimension. A file that does not follow it (truncated, a ``.gz``
    that is not gzip, a directory...) raises :class:`~minicnn.errors.DataFileError`
    naming the file; a missing file, ``FileNotFoundError``.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with reading(path, "IDX file" + (" (gzip)" if path.suffix == ".gz" else "")):
        with opener(path, "rb") as f:
            # The header first: it says how many bytes the body has, so no more than that
            # is ever read (a gzip bomb cannot make us decompress gigabytes).
            magic = f.read(4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0:
                raise DataFileError(path, "not an IDX file (bad magic number)")
            if magic[2] not in IDX_DTYPES:
                raise DataFileError(path, f"unknown IDX type code {magic[2]:#x}")
            dtype, ndim = np.dtype(IDX_DTYPES[magic[2]]), magic[3]
            dims = f.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise DataFileError(path, f"truncated IDX header: {ndim} dimensions need "
                                          f"{4 + 4 * ndim} bytes, the file has "
                                          f"{4 + len(dims)}")
            shape = tuple(int(n) for n in np.frombuffer(dims, ">i4", count=ndim))
            if min(shape, default=0) < 0:
                raise DataFileError(path, f"negative size in the IDX header's shape {shape}")
            expected = math.prod(shape) * dtype.itemsize
            data = f.read(expected + 1)  # one byte more tells a too-long file
    if len(data) != expected:
        held = f"{len(data)} bytes" if len(data) <= expected else "more bytes"
        raise DataFileError(path, f"header says shape {shape} ({math.prod(shape)} values of "
                                  f"{dtype.itemsize} bytes), the file holds {held}")
    values = np.frombuffer(data, dtype)
    return values.reshape(shape).astype(dtype.newbyteorder("="))


def _check_labels(path: Path, labels: np.ndarray, num_classes: int) -> None:
    """Labels must be class indices ``0 .. num_classes-1``."""
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.size:
        raise DataFileError(path, f"label {int(bad[0])} is not a class index 0..{num_classes - 1}"
                                  f" ({bad.size} such labels)")


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
    images_path, labels_path = _find(root, images_file), _find(root, labels_file)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise DataFileError(images_path, f"expected images (N, H, W), got shape {images.shape}")
    if labels.shape != (images.shape[0],):
        raise DataFileError(labels_path, f"expected {images.shape[0]} labels (one per image of "
                                         f"{images_path.name}), got shape {labels.shape}")
    classes = FASHION_CLASSES if fashion else [str(i) for i in range(10)]
    _check_labels(labels_path, labels, len(classes))
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
    with reading(path, "CIFAR binary file"):
        raw = np.fromfile(path, dtype=np.uint8)
    record = label_bytes + 3072
    if raw.size == 0 or raw.size % record:
        raise DataFileError(
            path, f"size {raw.size} is not a multiple of the {record}-byte CIFAR record"
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
    for f, (_, labels) in zip(files, parts, strict=True):
        _check_labels(f, labels, len(classes))
    images = np.concatenate([p[0] for p in parts]).astype(np.float32) / 255.0
    labels = np.concatenate([p[1] for p in parts])
    return ImageDataset(images, labels, classes, transform)


# ---------------------------------------------------------------- image folder

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


class ImageFolder(Dataset):
    """``root/<class>/<image>.png|jpg``: one sub-folder per class.

    Images are read (with Pillow) when indexed, converted to RGB (or kept grayscale with
    ``grayscale=True``) and returned as float32 ``(C, H, W)`` in [0, 1], then ``transform``.

    ``classes``: the class names in label order. By default the sub-folders of ``root``,
    sorted by name. Give the training split's list to every other split,
    ``ImageFolder(root / "test", classes=train.classes)``, so that a label means the same
    class in both: a sub-folder not in the list is then an error naming it, and a class of
    the list without a folder simply has no images. ``class_to_idx`` maps names to labels
    (as torchvision's). A class folder without images is an error (as in torchvision); a
    single class gives a warning (a classifier of one class is trivially 100% right).

    ``check_headers=True`` opens every image's header once when the dataset is built (about
    0.2 ms a file), so that a file that is not an image, an empty file or a decompression
    bomb fails at once rather than in the middle of an epoch; a file truncated after its
    header fails when it is read. Either way the error is a
    :class:`~minicnn.errors.DataFileError` naming the file.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        transform: Callable | None = None,
        grayscale: bool = False,
        classes: Sequence[str] | None = None,
        check_headers: bool = True,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"ImageFolder: {self.root} is not a directory")
        folders = sorted(d.name for d in self.root.iterdir() if d.is_dir())
        if classes is None:
            self.classes = folders
        else:
            if isinstance(classes, str) or len(set(classes)) != len(classes):
                raise ValueError(f"ImageFolder: classes must be a list of distinct class names, "
                                 f"got {classes!r}")
            self.classes = [str(c) for c in classes]
            unknown = [f for f in folders if f not in self.classes]
            if unknown:
                raise ValueError(
                    f"ImageFolder: {self.root} has class folder(s) {unknown} that are not among "
                    f"the given classes {self.classes} (the training split's classes)"
                )
        if not self.classes:
            raise ValueError(f"ImageFolder: {self.root} has no class sub-folders")
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.samples = []
        empty = []
        for name in folders:
            files = [p for p in sorted((self.root / name).iterdir())
                     if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir()]
            if not files:
                empty.append(name)
            self.samples += [(p, self.class_to_idx[name]) for p in files]
        if empty:
            raise ValueError(
                f"ImageFolder: found no {'/'.join(sorted(IMAGE_SUFFIXES))} file for the "
                f"class(es) {empty} in {self.root}: remove the folder(s) or add images"
            )
        if check_headers:  # fail now, not an epoch later: not an image, empty, a bomb
            for p, _ in self.samples:
                with _open_image(p):
                    pass
        if len(self.classes) == 1:
            warnings.warn(
                f"ImageFolder: {self.root} has a single class ({self.classes[0]!r}): "
                f"a classifier of one class is 100% accurate without learning anything",
                UserWarning, stacklevel=2,
            )
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


# Pillow's decompression-bomb check warns (1x to 2x its limit) or raises (above 2x) while it
# reads the header; the lock keeps the temporary "warnings are errors" filter to one thread
_OPEN_LOCK = threading.Lock()


def _open_image(path: Path):
    """``PIL.Image.open(path)`` (which reads the header only), with its errors and a
    decompression bomb turned into a :class:`DataFileError` naming the file."""
    from PIL import Image

    if path.is_dir():
        raise DataFileError(path, "is a directory, expected an image file")
    with reading(path, "image file"), _OPEN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise DataFileError(
                path, f"image too large to decode ({e}); raise PIL.Image.MAX_IMAGE_PIXELS "
                f"if you trust the file"
            ) from e


def load_image(path: str | os.PathLike, grayscale: bool = False) -> np.ndarray:
    """Read a PNG/JPEG file as float32 ``(C, H, W)`` in [0, 1] (C = 1 or 3).

    A file Pillow cannot decode (not an image, empty, truncated), a directory, or an image
    of more pixels than ``PIL.Image.MAX_IMAGE_PIXELS`` (a "decompression bomb": a small
    file that decodes to gigabytes) raises :class:`~minicnn.errors.DataFileError` naming
    the file; a missing file, ``FileNotFoundError``.
    """
    path = Path(path)
    with _open_image(path) as im, reading(path, "image file"):
        arr = np.asarray(im.convert("L" if grayscale else "RGB"), dtype=np.float32) / 255.0
        if im.format == "PNG" and not _ends_with(path, PNG_END):
            # Pillow decodes a PNG cut within its last ~20 bytes without a word
            raise DataFileError(path, "truncated PNG (the file does not end with the "
                                      "IEND chunk)")
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1).copy()


PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk, which the PNG spec puts last


def _ends_with(path: Path, tail: bytes) -> bool:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() < len(tail):
            return False
        f.seek(-len(tail), os.SEEK_END)
        return f.read() == tail
