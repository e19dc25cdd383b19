"""RAW simulation for RAW-to-RGB: a camera's Bayer mosaic, simulated from RGB photographs,
and the plain bilinear demosaic a network is measured against.

A Bayer sensor records one colour per pixel through a 2x2 pattern of filters; ``"RGGB"``
(the default) means::

    row 0:  R G R G ...
    row 1:  G B G B ...

* :func:`bayer_mosaic` keeps, of an RGB image ``(3, H, W)``, the colour each pixel's filter
  passes: ``(1, H, W)``.
* :func:`pack_bayer` / :func:`unpack_bayer`: the mosaic as 4 half-resolution planes
  ``(4, H/2, W/2)`` in the pattern's reading order (R, G, G, B for RGGB) -- the input of
  PyNET -- and back.
* :func:`demosaic_bilinear`: every missing colour is the mean of its nearest recorded
  neighbours of that colour (the 4 edge neighbours for green; the 2 or 4 nearest for red
  and blue), i.e. the classic kernels ``[[0,1,0],[1,4,1],[0,1,0]] / 4`` and
  ``[[1,2,1],[2,4,2],[1,2,1]] / 4`` inside the image; at the border, the mean of the
  neighbours that exist (normalised convolution).
* :func:`simulate_raw`: what a camera would record of an RGB image: the Bayer mosaic of
  the image (of its linear light with ``linear=True``), plus sensor noise.
* :class:`RawPatches`: random patches of photographs as ``(packed RAW, RGB)`` pairs, with
  sensor noise (:class:`~minicnn.data.noise.PoissonGaussianNoise` by default) added to
  the mosaic; ``linear=True`` first undoes the sRGB gamma, as a real sensor records light
  linearly. :class:`RawImages`: whole images the same way, the noise fixed by a seed (a
  test set); :func:`raw_photos`: both, of the colour photographs of
  :mod:`minicnn.data.photos`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from minicnn.data import rng as data_rng
from minicnn.data.dataset import Dataset
from minicnn.data.noise import PoissonGaussianNoise
from minicnn.data.photos import load_photos
from minicnn.data.restoration import NoiseModel, _check_images, random_patch

__all__ = ["BAYER_PATTERNS", "RawImages", "RawPatches", "bayer_masks", "bayer_mosaic",
           "demosaic_bilinear", "linear_to_srgb", "pack_bayer", "raw_photos", "simulate_raw",
           "srgb_to_linear", "unpack_bayer"]

BAYER_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
_CHANNEL = {"R": 0, "G": 1, "B": 2}


def _check_pattern(pattern: str, fn: str) -> str:
    if pattern not in BAYER_PATTERNS:
        raise ValueError(f"{fn}: pattern must be one of {BAYER_PATTERNS}, got {pattern!r}")
    return pattern


def _check_even(shape: tuple, fn: str, what: str) -> None:
    if shape[-1] % 2 or shape[-2] % 2:
        raise ValueError(f"{fn}: {what} needs an even height and width, got shape {shape}")


def bayer_masks(shape: tuple[int, int], pattern: str = "RGGB") -> np.ndarray:
    """``(3, H, W)`` booleans: which pixels record red, green, blue."""
    _check_pattern(pattern, "bayer_masks")
    h, w = shape
    masks = np.zeros((3, h, w), dtype=bool)
    for k, colour in enumerate(pattern):
        dy, dx = divmod(k, 2)
        masks[_CHANNEL[colour], dy::2, dx::2] = True
    return masks


def bayer_mosaic(rgb: np.ndarray, pattern: str = "RGGB") -> np.ndarray:
    """The Bayer mosaic of an RGB image: ``(3, H, W) -> (1, H, W)``, each pixel keeping the
    colour its filter passes (H, W even)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[0] != 3:
        raise ValueError(f"bayer_mosaic: rgb must be (3, H, W), got shape {rgb.shape}")
    _check_even(rgb.shape, "bayer_mosaic", "a Bayer mosaic")
    masks = bayer_masks(rgb.shape[1:], pattern)
    return (rgb * masks).sum(axis=0, keepdims=True).astype(rgb.dtype)


def pack_bayer(mosaic: np.ndarray) -> np.ndarray:
    """``(1, H, W) -> (4, H/2, W/2)``: the pixels at offsets (0,0), (0,1), (1,0), (1,1) of
    every 2x2 cell (R, G, G, B for RGGB)."""
    mosaic = np.asarray(mosaic)
    if mosaic.ndim != 3 or mosaic.shape[0] != 1:
        raise ValueError(f"pack_bayer: mosaic must be (1, H, W), got shape {mosaic.shape}")
    _check_even(mosaic.shape, "pack_bayer", "packing")
    return np.stack([mosaic[0, dy::2, dx::2] for dy in (0, 1) for dx in (0, 1)])


def unpack_bayer(packed: np.ndarray) -> np.ndarray:
    """``(4, H/2, W/2) -> (1, H, W)``, the inverse of :func:`pack_bayer`."""
    packed = np.asarray(packed)
    if packed.ndim != 3 or packed.shape[0] != 4:
        raise ValueError(f"unpack_bayer: packed must be (4, H/2, W/2), got shape {packed.shape}")
    _, h, w = packed.shape
    mosaic = np.empty((1, 2 * h, 2 * w), dtype=packed.dtype)
    for k in range(4):
        dy, dx = divmod(k, 2)
        mosaic[0, dy::2, dx::2] = packed[k]
    return mosaic


def _box3(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate ``(C, H, W)`` with a 3x3 ``kernel``, zeros outside the image."""
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    h, w = x.shape[-2:]
    return sum(kernel[i, j] * padded[:, i:i + h, j:j + w]
               for i in range(3) for j in range(3) if kernel[i, j])


_GREEN_KERNEL = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], dtype=np.float64)
_RED_BLUE_KERNEL = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float64)


def demosaic_bilinear(mosaic: np.ndarray, pattern: str = "RGGB") -> np.ndarray:
    """Bilinear demosaicing: ``(1, H, W)`` (or ``(H, W)``) Bayer mosaic -> ``(3, H, W)``
    RGB (see the module's docstring). Recorded values are kept as they are."""
    mosaic = np.asarray(mosaic)
    if mosaic.ndim == 2:
        mosaic = mosaic[None]
    if mosaic.ndim != 3 or mosaic.shape[0] != 1:
        raise ValueError(f"demosaic_bilinear: mosaic must be (1, H, W), got shape "
                         f"{mosaic.shape}")
    _check_even(mosaic.shape, "demosaic_bilinear", "a Bayer mosaic")
    masks = bayer_masks(mosaic.shape[1:], pattern).astype(np.float64)
    kernels = (_RED_BLUE_KERNEL, _GREEN_KERNEL, _RED_BLUE_KERNEL)
    out = np.empty(masks.shape, dtype=np.float64)
    for c, kernel in enumerate(kernels):
        samples = mosaic[0] * masks[c]
        out[c] = _box3(samples[None], kernel)[0] / _box3(masks[c][None], kernel)[0]
    dtype = mosaic.dtype if mosaic.dtype.kind == "f" else np.float32
    return out.astype(dtype)


def srgb_to_linear(image: np.ndarray) -> np.ndarray:
    """Undo the sRGB gamma (IEC 61966-2-1): values in [0, 1] to linear light."""
    image = np.asarray(image)
    return np.where(image <= 0.04045, image / 12.92,
                    ((np.maximum(image, 0.04045) + 0.055) / 1.055) ** 2.4).astype(image.dtype)


def linear_to_srgb(image: np.ndarray) -> np.ndarray:
    """Apply the sRGB gamma to linear values (clipped to [0, 1] first)."""
    image = np.clip(np.asarray(image), 0.0, 1.0)
    return np.where(image <= 0.0031308, image * 12.92,
                    1.055 * np.maximum(image, 0.0031308) ** (1 / 2.4) - 0.055).astype(image.dtype)


def simulate_raw(rgb: np.ndarray, noise: NoiseModel | None, rng: np.random.Generator,
                 pattern: str = "RGGB", linear: bool = False,
                 packed: bool = True) -> np.ndarray:
    """The RAW image a Bayer camera records of ``rgb`` ``(3, H, W)`` in [0, 1] (H, W even):
    the :func:`bayer_mosaic` (of :func:`srgb_to_linear` of it when ``linear``), plus
    ``noise(mosaic, rng)`` unless ``noise`` is None. Returns the packed ``(4, H/2, W/2)``
    (:func:`pack_bayer`) or, with ``packed=False``, the mosaic ``(1, H, W)``; float32,
    not clipped."""
    mosaic = bayer_mosaic(srgb_to_linear(rgb) if linear else rgb, pattern)
    if noise is not None:
        mosaic = noise(mosaic, rng)[0]
    mosaic = np.asarray(mosaic, dtype=np.float32)
    return pack_bayer(mosaic) if packed else mosaic


def _default_noise(noise):
    return PoissonGaussianNoise(0.01, 1e-4) if isinstance(noise, str) and noise == "default" \
        else noise


class RawPatches(Dataset):
    """Random ``patch_size`` squares of RGB ``images`` (each ``(3, H, W)`` in [0, 1]) as
    ``(raw, rgb)``: ``raw`` the packed noisy Bayer mosaic ``(4, p/2, p/2)`` (or
    ``(1, p, p)`` with ``packed=False``), ``rgb`` the clean patch ``(3, p, p)``.

    ``noise``: added to the mosaic (default ``PoissonGaussianNoise(a=0.01, b=1e-4)``;
    ``None`` for none). ``linear``: the mosaic records linear light (the sRGB gamma
    undone), so a network learns demosaicing, denoising and the tone curve.
    ``num_patches`` samples per epoch; with ``seed`` the samples are fixed (a test set:
    sample ``i`` from a generator seeded by ``(seed, i)``), otherwise drawn from
    :func:`minicnn.data.rng.current`.
    """

    def __init__(self, images: Sequence[np.ndarray], patch_size: int = 64,
                 num_patches: int = 3200, noise: NoiseModel | None = "default",
                 pattern: str = "RGGB", linear: bool = False, packed: bool = True,
                 augment: bool = True, seed: int | None = None):
        if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 2 \
                or patch_size % 2:
            raise ValueError(f"RawPatches: patch_size must be an even int >= 2, got "
                             f"{patch_size!r}")
        self.images = _check_images(images, patch_size, "RawPatches")
        if self.images[0].shape[0] != 3:
            raise ValueError(f"RawPatches: images must be RGB (3, H, W), got "
                             f"{self.images[0].shape}")
        self.noise = _default_noise(noise)
        self.pattern = _check_pattern(pattern, "RawPatches")
        self.patch_size, self.num_patches, self.seed = patch_size, num_patches, seed
        self.linear, self.packed, self.augment = linear, packed, augment

    def __len__(self) -> int:
        return self.num_patches

    def __getitem__(self, index: int):
        if not -self.num_patches <= index < self.num_patches:
            raise IndexError(f"RawPatches: index {index} out of range for {self.num_patches}")
        rng = (data_rng.current() if self.seed is None
               else np.random.default_rng((self.seed, index % self.num_patches)))
        rgb = random_patch(self.images, self.patch_size, rng, self.augment)
        return simulate_raw(rgb, self.noise, rng, self.pattern, self.linear, self.packed), rgb


class RawImages(Dataset):
    """Whole RGB ``images`` (each ``(3, H, W)`` in [0, 1]) as ``(raw, rgb)`` pairs, as
    :class:`RawPatches` makes them (same ``noise``, ``pattern``, ``linear``, ``packed``),
    the noise of image ``i`` drawn from a generator seeded by ``(seed, i)``: the same test
    set every epoch and every run. ``multiple``: each image is first cropped (centrally)
    to a multiple of it in height and width (2 for the Bayer cells; PyNET needs 32)."""

    def __init__(self, images: Sequence[np.ndarray], noise: NoiseModel | None = "default",
                 pattern: str = "RGGB", linear: bool = False, packed: bool = True,
                 seed: int = 0, multiple: int = 2):
        if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 2 \
                or multiple % 2:
            raise ValueError(f"RawImages: multiple must be an even int >= 2, got {multiple!r}")
        images = _check_images(images, multiple, "RawImages")
        if images[0].shape[0] != 3:
            raise ValueError(f"RawImages: images must be RGB (3, H, W), got {images[0].shape}")
        self.images = [_crop_to_multiple(im, multiple) for im in images]
        self.noise = _default_noise(noise)
        self.pattern = _check_pattern(pattern, "RawImages")
        self.linear, self.packed, self.seed = linear, packed, seed

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        rgb = self.images[index]
        rng = np.random.default_rng((self.seed, index % len(self.images)))
        return simulate_raw(rgb, self.noise, rng, self.pattern, self.linear, self.packed), rgb


def _crop_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """The central window of ``(C, H, W)`` whose sides are the largest multiples of
    ``multiple``."""
    h, w = image.shape[-2:]
    hh, ww = h - h % multiple, w - w % multiple
    top, left = (h - hh) // 2, (w - ww) // 2
    return np.ascontiguousarray(image[..., top:top + hh, left:left + ww])


def raw_photos(noise: NoiseModel | None = "default", patch_size: int = 64,
               num_patches: int = 3200, test_crop: int | None = None, linear: bool = False,
               seed: int = 0, multiple: int = 2) -> tuple[RawPatches, RawImages]:
    """``(train, test)`` for RAW-to-RGB on the photographs stored in colour
    (:mod:`minicnn.data.photos`; grey ones would teach nothing about colour): random
    :class:`RawPatches` of the training photographs, and the test photographs (the central
    ``test_crop`` square of each, if given) as :class:`RawImages` with noise fixed by
    ``seed``, cropped to a ``multiple`` of pixels."""
    train = RawPatches(load_photos("train", "rgb", colour_only=True), patch_size, num_patches,
                       noise, linear=linear)
    test = RawImages(load_photos("test", "rgb", colour_only=True, crop=test_crop), noise,
                     linear=linear, seed=seed, multiple=multiple)
    return train, test
