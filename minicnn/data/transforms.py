"""Image transforms on NumPy arrays ``(C, H, W)`` (float) -- as torchvision's, minus tensors.

Random transforms draw from :func:`minicnn.data.rng.current`, which the DataLoader seeds
per batch, so augmentation is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from minicnn.data import rng as data_rng


def _pair(size, name: str) -> tuple[int, int]:
    if isinstance(size, int | np.integer):
        size = (int(size), int(size))
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"{name}: size must be a positive int or (height, width), got {size!r}")
    return size


def _check_chw(img, name: str) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim != 3:
        raise ValueError(f"{name}: expected an image of shape (C, H, W), got shape {img.shape}")
    return img


class Compose:
    """Apply transforms one after another."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"Compose({inner}\n)"


class ToFloat:
    """An image as read from a file, ``(H, W)`` or ``(H, W, C)`` -> float32 ``(C, H, W)``, [0, 1].

    Like torchvision's ``ToTensor``: 3-d input is taken as ``(H, W, C)`` (the layout of
    PIL and of image files) and transposed. ``scale`` is the value of full intensity
    (default 255 for uint8 images, else 1; 16 for scikit-learn's digits).
    """

    def __init__(self, scale: float | None = None):
        self.scale = scale

    def __call__(self, img):
        img = np.asarray(img)
        scale = self.scale if self.scale is not None else (255.0 if img.dtype == np.uint8 else 1.0)
        if img.ndim == 2:
            img = img[None]
        elif img.ndim == 3:
            img = img.transpose(2, 0, 1)
        else:
            raise ValueError(
                f"ToFloat: expected an image (H, W) or (H, W, C), got shape {img.shape}"
            )
        return (img.astype(np.float32) / np.float32(scale)).copy()

    def __repr__(self) -> str:
        return f"ToFloat(scale={self.scale})"


class Normalize:
    """``(img - mean[c]) / std[c]`` per channel."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)
        if np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be positive, got {list(std)}")

    def __call__(self, img):
        img = _check_chw(img, "Normalize")
        if self.mean.shape[0] not in (1, img.shape[0]):
            raise ValueError(
                f"Normalize: {self.mean.shape[0]} channel means for an image with "
                f"{img.shape[0]} channels"
            )
        return ((img - self.mean) / self.std).astype(np.float32)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.ravel().tolist()}, std={self.std.ravel().tolist()})"


class RandomCrop:
    """Pad by ``padding`` (zeros) and cut a random ``size`` window (the CIFAR augmentation)."""

    def __init__(self, size, padding: int = 0):
        self.size = _pair(size, "RandomCrop")
        if padding < 0:
            raise ValueError(f"RandomCrop: padding must be >= 0, got {padding}")
        self.padding = padding

    def __call__(self, img):
        img = _check_chw(img, "RandomCrop")
        p = self.padding
        if p:
            img = np.pad(img, ((0, 0), (p, p), (p, p)))
        h, w = self.size
        if img.shape[1] < h or img.shape[2] < w:
            raise ValueError(
                f"RandomCrop: crop {self.size} is larger than the padded image {img.shape[1:]}"
            )
        rng = data_rng.current()
        top = int(rng.integers(img.shape[1] - h + 1))
        left = int(rng.integers(img.shape[2] - w + 1))
        return img[:, top : top + h, left : left + w].copy()

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror left-right with probability ``p``."""

    def __init__(self, p: float = 0.5):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = p

    def __call__(self, img):
        img = _check_chw(img, "RandomHorizontalFlip")
        if data_rng.current().random() < self.p:
            return img[:, :, ::-1].copy()
        return img

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


def resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of ``(C, H, W)`` to ``(C, *size)`` (half-pixel centres, as
    ``F.interpolate(mode="bilinear", align_corners=False)``)."""
    img = _check_chw(img, "resize").astype(np.float32, copy=False)
    out_h, out_w = _pair(size, "resize")

    def axis_weights(n_in, n_out):
        src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        src = np.clip(src, 0, n_in - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        frac = (src - lo).astype(np.float32)
        m = np.zeros((n_out, n_in), dtype=np.float32)
        m[np.arange(n_out), lo] += 1 - frac
        m[np.arange(n_out), hi] += frac
        return m

    a_h, a_w = axis_weights(img.shape[1], out_h), axis_weights(img.shape[2], out_w)
    # columns, then rows: two matrix products (einsum's path search costs more than the work)
    cols = np.tensordot(img, a_w, axes=([2], [1]))  # (C, H, out_w)
    out = np.tensordot(a_h, cols, axes=([1], [1]))  # (out_h, C, out_w)
    return np.ascontiguousarray(out.transpose(1, 0, 2), dtype=np.float32)


class Resize:
    """Bilinear resize to ``size`` (an int gives a square)."""

    def __init__(self, size):
        self.size = _pair(size, "Resize")

    def __call__(self, img):
        return resize(img, self.size)

    def __repr__(self) -> str:
        return f"Resize(size={self.size})"


class RandomResizedCrop:
    """A random crop of random area (``scale``) and aspect ratio (``ratio``), resized to ``size``
    (the ImageNet augmentation; torchvision's sampling: 10 tries, then a centre crop)."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
        self.size = _pair(size, "RandomResizedCrop")
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(
                f"RandomResizedCrop: scale must satisfy 0 < min <= max <= 1, got {scale}"
            )
        self.scale, self.ratio = tuple(scale), tuple(ratio)

    def __call__(self, img):
        img = _check_chw(img, "RandomResizedCrop")
        _, h, w = img.shape
        rng = data_rng.current()
        area = h * w
        log_ratio = np.log(self.ratio)
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = np.exp(rng.uniform(*log_ratio))
            cw = int(round(np.sqrt(target * aspect)))
            ch = int(round(np.sqrt(target / aspect)))
            if 0 < cw <= w and 0 < ch <= h:
                top = int(rng.integers(h - ch + 1))
                left = int(rng.integers(w - cw + 1))
                return resize(img[:, top : top + ch, left : left + cw], self.size)
        side = min(h, w)  # fallback: the largest centred square
        top, left = (h - side) // 2, (w - side) // 2
        return resize(img[:, top : top + side, left : left + side], self.size)

    def __repr__(self) -> str:
        return f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio})"


def border_median(img: np.ndarray) -> float:
    """The median of the pixels on the four edges of ``img`` ``(C, H, W)``, over all channels:
    the brightness of the background of an object drawn in the middle (a digit, a shape)."""
    img = _check_chw(img, "border_median")
    # the top and bottom rows, then the left and right columns between them (each pixel once)
    edges = [img[:, 0, :], img[:, -1, :], img[:, 1:-1, 0], img[:, 1:-1, -1]]
    return float(np.median(np.concatenate([e.ravel() for e in edges])))

