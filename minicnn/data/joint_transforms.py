"""Joint transforms: an image and its target move together (torchvision.transforms.v2's
behaviour, on NumPy arrays).

Every transform is a callable ``(image, target) -> (image, target)``:

* ``image``  float ``(C, H, W)``
* ``target`` a detection dict (:mod:`minicnn.data.detection`) whose spatial entries move
  with the image -- ``boxes`` ``(K, 4)``, ``masks`` ``(K, H, W)`` (one per object),
  ``mask`` ``(H, W)`` (a class per pixel, for semantic segmentation), ``keypoints``
  ``(K, P, 2)`` or ``(K, P, 3)`` -- while ``labels``, ``iscrowd``, ``image_id`` ride along
  and ``area`` is recomputed; a landmark dict ``{"keypoints": (P, 2) or (P, 3)}`` (no
  boxes: the points of one object, :mod:`minicnn.data.landmarks`); or a bare ``(H, W)``
  array, a segmentation mask.

Geometry: the transforms flip, resize and crop boxes, masks and keypoints exactly as
``torchvision.transforms.v2`` does boxes and masks (masks resized with nearest neighbour).
Coordinates are continuous: pixel ``(row y, column x)`` covers ``[x, x + 1) x [y, y + 1)``,
so a box around it is ``(x, y, x + 1, y + 1)`` and its centre is ``(x + 0.5, y + 0.5)``.
Keypoints use the same coordinates as boxes (v2's keypoint flip takes pixel centres at
integers instead: ``W - 1 - x`` where this gives ``W - x``). A crop clamps boxes to the
window and drops the objects whose box is left less than ``min_size`` wide or high, with
their labels, masks and keypoints (v2's crop followed by ``SanitizeBoundingBoxes``);
keypoints that leave the window get visibility 0.

Photometric transforms (:class:`ColorJitter`) change the image only. Random transforms
draw from :func:`minicnn.data.rng.current` (seeded per batch by the DataLoader).

    train_tf = Compose([RandomHorizontalFlip(), RandomCrop(56), Resize(64),
                        ColorJitter(0.3, 0.3, 0.3)])
    dataset = digit_scenes(transforms=train_tf)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from minicnn.data import rng as data_rng
from minicnn.data.detection import INSTANCE_KEYS, check_target
from minicnn.data.transforms import _check_chw, _pair
from minicnn.data.transforms import resize as resize_image

__all__ = [
    "ColorJitter",
    "Compose",
    "ImageOnly",
    "RandomCrop",
    "RandomHorizontalFlip",
    "Resize",
    "SanitizeBoundingBoxes",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_saturation",
    "crop",
    "hflip",
    "resize",
    "resize_nearest",
    "sanitize",
]


# ---------------------------------------------------------------- checks and helpers


def _checked(image, target, name: str) -> tuple[np.ndarray, dict, bool]:
    """(image, target as a dict, whether the target was a bare (H, W) mask)."""
    image = _check_chw(image, name)
    size = image.shape[1:]
    if isinstance(target, np.ndarray):
        if target.shape != size:
            raise ValueError(f"{name}: the mask target is {target.shape}, expected the image's "
                             f"size {size}")
        return image, {"mask": target}, True
    if not isinstance(target, dict):
        raise TypeError(f"{name}: target must be a dict (detection) or an (H, W) array (a "
                        f"segmentation mask), got {type(target).__name__}")
    if any(key in target for key in INSTANCE_KEYS if key != "keypoints") or (
            "keypoints" in target and np.ndim(target["keypoints"]) != 2):
        check_target(target, size, name)  # per-object entries need their boxes
    elif "keypoints" in target and np.shape(target["keypoints"])[-1] not in (2, 3):
        raise ValueError(f"{name}: landmark 'keypoints' must be (P, 2) or (P, 3) (x, y[, "
                         f"visibility]), got shape {np.shape(target['keypoints'])}")
    if "mask" in target and np.shape(target["mask"]) != size:
        raise ValueError(f"{name}: 'mask' is {np.shape(target['mask'])}, expected the image's "
                         f"size {size}")
    return image, dict(target), False


def _out(image: np.ndarray, target: dict, bare: bool):
    return image, (target["mask"] if bare else target)


def _with_area(target: dict) -> dict:
    """``area`` recomputed after a geometric change: the mask's pixels, else the box's area."""
    if "area" in target:
        if "masks" in target:
            area = np.asarray(target["masks"]).sum(axis=(1, 2))
        else:
            b = np.asarray(target["boxes"])
            area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        target["area"] = np.asarray(area, dtype=np.float32)
    return target


def resize_nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of the last two axes of ``(..., H, W)`` to ``size``: output
    pixel ``i`` takes input pixel ``floor(i * H / H_out)`` (``F.interpolate(mode="nearest")``,
    what v2 uses for masks); any dtype."""
    array = np.asarray(array)
    out_h, out_w = size
    h, w = array.shape[-2:]
    rows = np.minimum((np.arange(out_h) * (h / out_h)).astype(np.int64), h - 1)
    cols = np.minimum((np.arange(out_w) * (w / out_w)).astype(np.int64), w - 1)
    return array[..., rows[:, None], cols[None, :]]


# ---------------------------------------------------------------- functions


def hflip(image, target, keypoint_flip: Sequence[int] | None = None):
    """Mirror left-right: ``x -> W - x`` for boxes (their x1 and x2 swap) and keypoints, the
    columns of masks reversed. ``keypoint_flip`` reorders each object's keypoints (a
    "left eye" becomes the "right eye"; e.g. ``shapes.SHAPE_KEYPOINT_FLIP``)."""
    image, target, bare = _checked(image, target, "hflip")
    width = image.shape[2]
    image = image[:, :, ::-1].copy()
    if "boxes" in target:
        boxes = np.asarray(target["boxes"])
        target["boxes"] = np.stack(
            [width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], 1
        ).astype(boxes.dtype)
    for key in ("masks", "mask"):
        if key in target:
            target[key] = np.asarray(target[key])[..., ::-1].copy()
    if "keypoints" in target:
        kp = np.array(target["keypoints"])
        kp[..., 0] = width - kp[..., 0]
        if keypoint_flip is not None:
            if len(keypoint_flip) != kp.shape[-2]:
                raise ValueError(f"hflip: keypoint_flip has {len(keypoint_flip)} entries, the "
                                 f"objects have {kp.shape[-2]} keypoints")
            kp = kp[..., list(keypoint_flip), :]
        target["keypoints"] = kp
    return _out(image, target, bare)


def resize(image, target, size):
    """Resize to ``size`` ``(H, W)`` (an int: a square): the image bilinear (without v2's
    antialiasing, which only matters when shrinking), masks nearest, boxes and keypoints
    scaled by ``W_out / W`` and ``H_out / H`` (as v2)."""
    size = _pair(size, "resize")
    image, target, bare = _checked(image, target, "resize")
    (h, w), (out_h, out_w) = image.shape[1:], size
    image = resize_image(image, size)
    sx, sy = out_w / w, out_h / h
    if "boxes" in target:
        boxes = np.asarray(target["boxes"])
        target["boxes"] = (boxes * np.array([sx, sy, sx, sy])).astype(boxes.dtype)
    for key in ("masks", "mask"):
        if key in target:
            target[key] = resize_nearest(target[key], size)
    if "keypoints" in target:
        kp = np.array(target["keypoints"])
        kp[..., 0] *= sx
        kp[..., 1] *= sy
        target["keypoints"] = kp
    return _out(image, _with_area(target), bare)


def sanitize(target: dict, image_size: tuple[int, int], min_size: float = 1.0,
             min_area: float = 1.0) -> dict:
    """Drop the objects whose box is narrower or lower than ``min_size``, smaller than
    ``min_area``, or not inside the ``(H, W)`` image, with their rows of every per-object
    entry (``labels``, ``masks``, ``keypoints``, ``area``, ``iscrowd``): v2's
    ``SanitizeBoundingBoxes``."""
    boxes = np.asarray(target["boxes"])
    h, w = image_size
    ws, hs = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    keep = (ws >= min_size) & (hs >= min_size) & (ws * hs >= min_area) & (boxes >= 0).all(1)
    keep &= (boxes[:, 0] <= w) & (boxes[:, 2] <= w) & (boxes[:, 1] <= h) & (boxes[:, 3] <= h)
    if keep.all():
        return target
    return {k: (np.asarray(v)[keep] if k in INSTANCE_KEYS else v) for k, v in target.items()}


def crop(image, target, top: int, left: int, height: int, width: int, min_size: float = 1.0):
    """Cut the window of ``height`` x ``width`` pixels at ``(top, left)`` (inside the
    image). Boxes and keypoints shift by ``(-left, -top)``; boxes are clamped to the window
    and the objects left smaller than ``min_size`` are dropped (:func:`sanitize`);
    keypoints outside the window get visibility 0 (when they have a visibility column)."""
    image, target, bare = _checked(image, target, "crop")
    _, h, w = image.shape
    if not (0 <= top and 0 <= left and height >= 1 and width >= 1
            and top + height <= h and left + width <= w):
        raise ValueError(f"crop: window top={top}, left={left}, height={height}, width={width} "
                         f"is not inside the {h}x{w} image")
    rows, cols = slice(top, top + height), slice(left, left + width)
    image = image[:, rows, cols].copy()
    for key in ("masks", "mask"):
        if key in target:
            target[key] = np.asarray(target[key])[..., rows, cols].copy()
    if "keypoints" in target:
        kp = np.array(target["keypoints"])
        kp[..., 0] -= left
        kp[..., 1] -= top
        if kp.shape[-1] == 3:
            outside = (kp[..., 0] < 0) | (kp[..., 0] > width) | (kp[..., 1] < 0) | (
                kp[..., 1] > height)
            kp[..., 2][outside] = 0
        target["keypoints"] = kp
    if "boxes" in target:
        boxes = np.asarray(target["boxes"])
        shifted = boxes - np.array([left, top, left, top], dtype=boxes.dtype)
        shifted[:, 0::2] = np.clip(shifted[:, 0::2], 0, width)
        shifted[:, 1::2] = np.clip(shifted[:, 1::2], 0, height)
        target["boxes"] = shifted.astype(boxes.dtype)
        target = sanitize(target, (height, width), min_size)
    return _out(image, _with_area(target), bare)


def _blend(image: np.ndarray, other, ratio: float) -> np.ndarray:
    return np.clip(ratio * image + (1 - ratio) * other, 0, 1).astype(image.dtype)


def _grayscale(image: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma ``(1, H, W)`` of an RGB ``(3, H, W)`` image (torchvision's weights)."""
    if image.shape[0] == 1:
        return image
    r, g, b = image
    return (0.2989 * r + 0.587 * g + 0.114 * b)[None]


def adjust_brightness(image: np.ndarray, factor: float) -> np.ndarray:
    """``image * factor``, clipped to [0, 1] (torchvision's ``adjust_brightness``)."""
    return _blend(image, 0.0, factor)


def adjust_contrast(image: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the mean grey of the image: ``factor`` 0 gives flat grey, 1 the image."""
    return _blend(image, _grayscale(image).mean(dtype=np.float64), factor)


def adjust_saturation(image: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the image's grey version: ``factor`` 0 gives grey, 1 the image."""
    return image if image.shape[0] == 1 else _blend(image, _grayscale(image), factor)


# ---------------------------------------------------------------- transforms


class Compose:
    """Apply joint transforms one after another: ``(image, target) -> (image, target)``."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose: every transform must be callable, got "
                                f"{type(t).__name__}")

    def __call__(self, image, target):
        for t in self.transforms:
            image, target = t(image, target)
        return image, target

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"Compose({inner}\n)"


class ImageOnly:
    """An image transform of :mod:`minicnn.data.transforms` (``Normalize``...) in a joint
    pipeline: ``(image, target) -> (transform(image), target)``."""

    def __init__(self, transform: Callable):
        if not callable(transform):
            raise TypeError(f"ImageOnly: transform must be callable, got "
                            f"{type(transform).__name__}")
        self.transform = transform

    def __call__(self, image, target):
        return self.transform(image), target

    def __repr__(self) -> str:
        return f"ImageOnly({self.transform!r})"


class RandomHorizontalFlip:
    """:func:`hflip` with probability ``p``. Do not use it on digits (a mirrored 2 is no
    digit); ``keypoint_flip`` as in :func:`hflip`."""

    def __init__(self, p: float = 0.5, keypoint_flip: Sequence[int] | None = None):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p, self.keypoint_flip = p, keypoint_flip

    def __call__(self, image, target):
        if data_rng.current().random() < self.p:
            return hflip(image, target, self.keypoint_flip)
        return image, target

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Resize:
    """:func:`resize` to ``size`` (an int gives a square)."""

    def __init__(self, size):
        self.size = _pair(size, "Resize")

    def __call__(self, image, target):
        return resize(image, target, self.size)

    def __repr__(self) -> str:
        return f"Resize(size={self.size})"


class RandomCrop:
    """A window of ``size`` (an int gives a square) at a random place (every position
    equally likely, as v2's ``RandomCrop``), via :func:`crop`: boxes clamped, objects left
    smaller than ``min_size`` dropped. Follow it with :class:`Resize` to get the input size
    back (a random zoom)."""

    def __init__(self, size, min_size: float = 1.0):
        self.size = _pair(size, "RandomCrop")
        self.min_size = min_size

    def __call__(self, image, target):
        image = _check_chw(image, "RandomCrop")
        (h, w), (ch, cw) = image.shape[1:], self.size
        if ch > h or cw > w:
            raise ValueError(f"RandomCrop: crop {self.size} is larger than the image {(h, w)}")
        rng = data_rng.current()
        top, left = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
        return crop(image, target, top, left, ch, cw, self.min_size)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size})"


class SanitizeBoundingBoxes:
    """Drop the objects whose box is smaller than ``min_size`` / ``min_area`` or leaves the
    image (:func:`sanitize`), as v2's ``SanitizeBoundingBoxes``."""

    def __init__(self, min_size: float = 1.0, min_area: float = 1.0):
        if min_size < 1 or min_area < 1:
            raise ValueError(f"SanitizeBoundingBoxes: min_size and min_area must be >= 1, got "
                             f"{min_size} and {min_area}")
        self.min_size, self.min_area = min_size, min_area

    def __call__(self, image, target):
        image, target, bare = _checked(image, target, "SanitizeBoundingBoxes")
        if "boxes" in target:
            target = sanitize(target, image.shape[1:], self.min_size, self.min_area)
        return _out(image, target, bare)

    def __repr__(self) -> str:
        return f"SanitizeBoundingBoxes(min_size={self.min_size}, min_area={self.min_area})"


def _factor_range(value: float, name: str) -> tuple[float, float]:
    if value < 0:
        raise ValueError(f"ColorJitter: {name} must be >= 0, got {value}")
    return max(0.0, 1 - value), 1 + value


class ColorJitter:
    """Random brightness, contrast and saturation, in a random order (as torchvision's
    ``ColorJitter``, without hue): each factor is drawn uniformly from
    ``[max(0, 1 - v), 1 + v]``. The image only; the target is unchanged."""

    def __init__(self, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0):
        self.ranges = {
            adjust_brightness: _factor_range(brightness, "brightness"),
            adjust_contrast: _factor_range(contrast, "contrast"),
            adjust_saturation: _factor_range(saturation, "saturation"),
        }
        self.values = (brightness, contrast, saturation)

    def __call__(self, image, target):
        image = _check_chw(image, "ColorJitter").astype(np.float32, copy=False)
        rng = data_rng.current()
        adjustments = list(self.ranges.items())
        for i in rng.permutation(len(adjustments)):
            fn, (lo, hi) = adjustments[i]
            if hi > lo:
                image = fn(image, float(rng.uniform(lo, hi)))
        return image, target

    def __repr__(self) -> str:
        b, c, s = self.values
        return f"ColorJitter(brightness={b}, contrast={c}, saturation={s})"
