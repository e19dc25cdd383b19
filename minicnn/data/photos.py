"""Real photographs for image restoration: the pictures that ship with scikit-image and
scikit-learn, split by whole image into train and test. Nothing is downloaded.

=======================  ======  ============  =====  =====================================
name                     split   size (HxW)    kind   what
=======================  ======  ============  =====  =====================================
chelsea (alias ``cat``)  train   300x451       RGB    a cat (scikit-image's ``cat`` is her)
rocket                   train   427x640       RGB    a rocket launch
hubble_deep_field        train   872x1000      RGB    galaxies (astronomy)
retina                   train   1411x1411     RGB    MEDICAL: a fundus photograph
china                    train   427x640       RGB    a temple (scikit-learn)
moon                     train   512x512       grey   the Moon's surface
brick, grass, gravel     train   512x512       grey   textures
horse                    train   328x400       grey   a binary silhouette (0 or 1)
clock                    train   300x400       grey   a clock, with motion blur
page, text               train   191x384 ...   grey   printed text (documents)
camera                   test    512x512       grey   the cameraman
coins                    test    303x384       grey   coins
astronaut                test    512x512       RGB    a portrait (Eileen Collins)
coffee                   test    400x600       RGB    a cup of coffee
immunohistochemistry     test    512x512       RGB    MEDICAL: a stained tissue micrograph
flower                   test    427x640       RGB    a flower (scikit-learn)
=======================  ======  ============  =====  =====================================

The split is fixed: 13 training and 6 test photographs. The test set holds two classic
grey test pictures (camera, coins), three colour ones and one of the two medical images,
so every restoration task (grey or colour) has held-out pictures of its kind; no test
photograph ever gives a training patch. Images are float32 ``(C, H, W)`` in [0, 1] in
one of two views: ``"grey"`` (C = 1; colour photographs through BT.601 luma,
:func:`minicnn.data.color.rgb_to_grey`) and ``"rgb"`` (C = 3; grey ones repeated over
the channels), or ``"native"`` (each photograph as it is stored).

Needs scikit-image and scikit-learn (``pip install "minicnn[data]"``), imported when a
photograph is first read.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minicnn.data.color import rgb_to_grey
from minicnn.data.datasets import load_image

__all__ = ["MODES", "PHOTOS", "PHOTO_ALIASES", "Photo", "center_crop", "load_photo",
           "load_photos", "photo_names"]

MODES = ("grey", "rgb", "native")


@dataclass(frozen=True)
class Photo:
    """One photograph of the catalog: where it comes from and what it shows."""

    source: str  # "skimage" (skimage.data.<name>) or "sklearn" (load_sample_images)
    split: str  # "train" or "test"
    colour: bool  # stored in colour (RGB) or grey
    kind: str  # natural, texture, document, astronomy, medical, silhouette
    description: str


PHOTOS: dict[str, Photo] = {
    "chelsea": Photo("skimage", "train", True, "natural", "a cat"),
    "rocket": Photo("skimage", "train", True, "natural", "a rocket launch"),
    "hubble_deep_field": Photo("skimage", "train", True, "astronomy", "galaxies"),
    "retina": Photo("skimage", "train", True, "medical", "a fundus photograph of a retina"),
    "china": Photo("sklearn", "train", True, "natural", "a temple in China"),
    "moon": Photo("skimage", "train", False, "natural", "the Moon's surface"),
    "brick": Photo("skimage", "train", False, "texture", "a brick wall"),
    "grass": Photo("skimage", "train", False, "texture", "grass"),
    "gravel": Photo("skimage", "train", False, "texture", "gravel"),
    "horse": Photo("skimage", "train", False, "silhouette", "a horse's binary silhouette"),
    "clock": Photo("skimage", "train", False, "natural", "a clock, with motion blur"),
    "page": Photo("skimage", "train", False, "document", "a scanned page of a book"),
    "text": Photo("skimage", "train", False, "document", "text on a photograph"),
    "camera": Photo("skimage", "test", False, "natural", "the cameraman"),
    "coins": Photo("skimage", "test", False, "natural", "Greek coins"),
    "astronaut": Photo("skimage", "test", True, "natural", "a portrait of Eileen Collins"),
    "coffee": Photo("skimage", "test", True, "natural", "a cup of coffee"),
    "immunohistochemistry": Photo("skimage", "test", True, "medical",
                                  "an immunohistochemistry-stained tissue micrograph"),
    "flower": Photo("sklearn", "test", True, "natural", "a flower"),
}
# other names of the same picture (scikit-image's ``cat()`` returns chelsea)
PHOTO_ALIASES = {"cat": "chelsea"}


def _needs(package: str) -> None:
    raise RuntimeError(f'the photographs need {package}: pip install "minicnn[data]"')


@functools.cache
def _read(name: str) -> np.ndarray:
    """The stored photograph ``name`` as float32 ``(C, H, W)`` in [0, 1], read once
    (a read-only array shared by every caller)."""
    photo = PHOTOS[name]
    if photo.source == "sklearn":
        try:
            from sklearn.datasets import load_sample_image
        except ImportError:
            _needs("scikit-learn")
        raw = load_sample_image(f"{name}.jpg")
    else:
        try:
            from skimage import data as skdata
        except ImportError:
            _needs("scikit-image")
        raw = getattr(skdata, name)()
    image = np.asarray(raw, dtype=np.float32)
    if raw.dtype == np.uint8:
        image /= 255.0
    image = image[None] if image.ndim == 2 else np.ascontiguousarray(image.transpose(2, 0, 1))
    image.setflags(write=False)
    return image


def photo_names(split: str | None = None, colour: bool | None = None,
                kind: str | None = None) -> list[str]:
    """The catalog's names (in the table's order), optionally only those of one ``split``
    ("train" or "test"), stored in colour or grey (``colour``), or of one ``kind``."""
    if split not in (None, "train", "test"):
        raise ValueError(f"photo_names: split must be 'train', 'test' or None, got {split!r}")
    return [n for n, p in PHOTOS.items()
            if (split is None or p.split == split) and (colour is None or p.colour == colour)
            and (kind is None or p.kind == kind)]


def _view(image: np.ndarray, mode: str) -> np.ndarray:
    if mode == "native":
        return image
    if mode == "grey":
        return rgb_to_grey(image) if image.shape[0] == 3 else image
    return np.repeat(image, 3, axis=0) if image.shape[0] == 1 else image


def load_photo(name: str | os.PathLike, mode: str = "rgb") -> np.ndarray:
    """A photograph of the catalog (or an image file) as float32 ``(C, H, W)`` in [0, 1].

    ``name``: a name of :data:`PHOTOS` (or :data:`PHOTO_ALIASES`), or the path of a
    PNG/JPEG file. ``mode``: ``"grey"`` (C = 1), ``"rgb"`` (C = 3) or ``"native"``
    (as stored). A file that is not an image raises :class:`minicnn.errors.DataFileError`
    (an ``OSError``) naming it. The returned array is a fresh copy.
    """
    if mode not in MODES:
        raise ValueError(f"load_photo: mode must be one of {MODES}, got {mode!r}")
    key = PHOTO_ALIASES.get(str(name), str(name))
    if key in PHOTOS:
        image = _read(key)
    elif isinstance(name, os.PathLike) or Path(key).suffix or os.sep in key:
        image = load_image(Path(name))
        if np.ptp(image, axis=0).max() == 0:  # a grey picture stored as RGB
            image = image[:1]
    else:
        raise ValueError(f"load_photo: unknown photograph {str(name)!r}; expected one of "
                         f"{list(PHOTOS) + list(PHOTO_ALIASES)} or an image file's path")
    return np.array(_view(image, mode), dtype=np.float32)


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central ``size`` x ``size`` window of ``(C, H, W)`` (a side shorter than
    ``size`` is kept whole)."""
    h, w = image.shape[-2:]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return image[..., top:top + size, left:left + size]


def load_photos(split: str = "train", mode: str = "rgb", colour_only: bool = False,
                crop: int | None = None) -> list[np.ndarray]:
    """The photographs of ``split`` ("train", "test" or "all") in the view ``mode``, each
    float32 ``(C, H, W)`` in [0, 1] (their sizes differ, so a list). ``colour_only`` keeps
    the photographs stored in colour (for RAW-to-RGB); ``crop`` takes the central
    ``crop`` x ``crop`` window of each (to keep a test set's evaluation short)."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"load_photos: split must be 'train', 'test' or 'all', got {split!r}")
    if crop is not None and (isinstance(crop, bool) or not isinstance(crop, int) or crop < 1):
        raise ValueError(f"load_photos: crop must be a positive int or None, got {crop!r}")
    names = photo_names(None if split == "all" else split, True if colour_only else None)
    images = [load_photo(n, mode) for n in names]
    return [np.ascontiguousarray(center_crop(im, crop)) for im in images] if crop else images
