"""Super-resolution data: a high-resolution (HR) image, shrunk by the scale and enlarged back
by bicubic interpolation, is the input SRCNN learns to sharpen.

    train, test = superres_photos(scale=3)   # the photographs' own split, Y channel
    blurry, sharp = train[0]                 # (1, 33, 33) each: a random aligned patch pair
    blurry, sharp = test[0]                  # a whole test photograph

The degradation (:func:`degrade`) follows SRCNN's recipe: crop the HR image to a multiple of
the scale ("modcrop"), shrink it by antialiased bicubic interpolation to ``1 / scale`` of its
size, then enlarge it by bicubic back to the HR size; the network's input is that blurry
image, its target the HR image, both on the luminance (Y of BT.601 YCbCr,
:func:`minicnn.data.color.rgb_to_y`), the channel super-resolution is measured on. Each
resize is clipped to [0, 1] (bicubic overshoots at edges; images stay images).

The resizes are PyTorch's. Enlarging: ``F.interpolate(mode="bicubic", align_corners=False)``
(cubic convolution with ``A = -0.75``, four taps): :func:`bicubic_resize` uses the same
weight table as minicnn's ``F.interpolate`` (:mod:`minicnn.backend.geometry`), so a model's
input here and a bicubic layer inside a network agree. Shrinking: ``antialias=True``
(PyTorch's and Pillow's antialiased bicubic, ``A = -0.5``, the kernel stretched by the
scale, so it averages ``4 * scale`` pixels: a low-pass filter before the sampling), as
MATLAB's ``imresize``, with which the SRCNN paper made its data, shrinks. Without the
antialiasing the small image is a nearly plain sample of every ``scale``-th pixel: fine
detail *aliases* into false coarse patterns that no filter can tell from real ones (on the
test photographs at x3 the best linear 9x9 correction of the enlarged image then gains
0.0 dB over bicubic, against 0.6 dB with the antialiased shrink). PSNR figures are
comparable within minicnn, not digit for digit with the paper's (MATLAB's kernels differ
in detail).

Training images are degraded once, whole (so patches have no border artefacts of their
own), and a training sample is the same random window of the blurry and the sharp image,
turned by the same random flip/rotation. Every window of every training image is equally
likely (``by_area``: an image is chosen in proportion to its number of windows, as the
paper's training set holds every 33x33 sub-image of its 91 images at a stride of 14),
not every image equally often (as the denoising patches): the photographs differ in area
27-fold (the 191x384 ``page`` to the 1411x1411 ``retina``), and a small document or
silhouette drawn as often as a large natural photograph teaches more of its kind than the
test photographs have (measured at x3, 10 epochs of 1,600 patches: +0.76 dB over bicubic
by area, +0.61 dB image by image). Randomness comes from
:func:`minicnn.data.rng.current`, as for the denoising patches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from minicnn.backend.geometry import cubic_source_weights
from minicnn.data import rng as data_rng
from minicnn.data.color import rgb_to_y
from minicnn.data.dataset import Dataset
from minicnn.data.photos import center_crop, load_photos
from minicnn.data.restoration import random_patch

__all__ = ["SuperResImages", "SuperResPatches", "bicubic_resize", "check_scale", "degrade",
           "modcrop", "superres_photos"]


def check_scale(scale, where: str) -> int:
    """``scale`` as an int >= 2, or a ValueError naming ``where``."""
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 2:
        raise ValueError(f"{where}: scale must be an integer >= 2 (the upscaling factor), "
                         f"got {scale!r}")
    return int(scale)


def _resize_last_axis(x: np.ndarray, n_out: int) -> np.ndarray:
    """Bicubic along the last axis: each output mixes four inputs (borders clamped)."""
    index, weight = cubic_source_weights(x.shape[-1], n_out, None, False, x.dtype)
    return np.einsum("...ok,ok->...o", x[..., index], weight)  # (..., n_out, 4) -> (..., n_out)


def _antialias_matrix(n_in: int, n_out: int, dtype) -> np.ndarray:
    """The ``(n_out, n_in)`` matrix of PyTorch's antialiased bicubic along one axis
    (``interpolate(mode="bicubic", antialias=True, align_corners=False)``, as Pillow's
    resize): output ``i`` is centred at ``c = ratio * (i + 0.5)`` (``ratio = n_in / n_out``)
    and averages the inputs within ``2 * max(ratio, 1)`` of it, weighted by Keys' cubic
    (``A = -0.5``) of their distance divided by ``max(ratio, 1)``, normalised to sum 1."""
    ratio = n_in / n_out
    stretch = max(ratio, 1.0)
    support = 2.0 * stretch
    a = np.zeros((n_out, n_in), np.float64)
    for i in range(n_out):
        centre = ratio * (i + 0.5)
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), n_in)
        x = np.abs((np.arange(lo, hi) - centre + 0.5) / stretch)
        w = np.where(x < 1, (1.5 * x - 2.5) * x * x + 1,
                     np.where(x < 2, ((-0.5 * x + 2.5) * x - 4) * x + 2, 0.0))
        a[i, lo:hi] = w / w.sum() if w.sum() != 0 else w
    return a.astype(dtype)


def bicubic_resize(image: np.ndarray, size: tuple[int, int],
                   antialias: bool = False) -> np.ndarray:
    """Resize ``image`` ``(..., H, W)`` to ``(..., *size)`` by PyTorch's bicubic
    (``align_corners=False``), not clipped; float32 stays float32.

    Equals ``F.interpolate(x, size=size, mode="bicubic", antialias=antialias)`` of PyTorch
    (and, without ``antialias``, minicnn's ``F.interpolate``). ``antialias=True`` is for
    shrinking (see the module docstring); it is computed in NumPy only.
    """
    image = np.asarray(image)
    if image.dtype.kind != "f":
        raise TypeError(f"bicubic_resize: image must be a float array, got dtype {image.dtype}")
    if image.ndim < 2 or min(image.shape[-2:]) < 1:
        raise ValueError(f"bicubic_resize: image must be (..., H, W) with H, W >= 1, got shape "
                         f"{image.shape}")
    h, w = (int(s) for s in size)
    if h < 1 or w < 1:
        raise ValueError(f"bicubic_resize: size must be positive, got {tuple(size)}")
    if antialias:
        rows = _antialias_matrix(image.shape[-2], h, image.dtype)
        cols = _antialias_matrix(image.shape[-1], w, image.dtype)
        return np.ascontiguousarray(rows @ image @ cols.T)
    out = _resize_last_axis(image, w)
    out = _resize_last_axis(np.swapaxes(out, -1, -2), h)
    return np.ascontiguousarray(np.swapaxes(out, -1, -2))


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """``image`` ``(..., H, W)`` cropped (bottom and right) to ``H`` and ``W`` multiples of
    ``scale``."""
    scale = check_scale(scale, "modcrop")
    h, w = image.shape[-2:]
    return image[..., :h - h % scale, :w - w % scale]


def degrade(hr: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """``(blurry, sharp)`` from an HR image ``(C, H, W)`` in [0, 1]: ``sharp`` is the image
    cropped to multiples of ``scale`` ``(C, H', W')``; ``blurry`` is ``sharp`` shrunk by
    antialiased bicubic to ``(H' / scale, W' / scale)`` and enlarged by bicubic back to
    ``(H', W')``, each step clipped to [0, 1]. float32."""
    scale = check_scale(scale, "degrade")
    hr = np.asarray(hr, dtype=np.float32)
    if hr.ndim != 3 or min(hr.shape[1:]) < scale:
        raise ValueError(f"degrade: the image must be (C, H, W) with H, W >= scale {scale}, "
                         f"got shape {hr.shape}")
    sharp = np.ascontiguousarray(modcrop(hr, scale))
    h, w = sharp.shape[1:]
    small = np.clip(bicubic_resize(sharp, (h // scale, w // scale), antialias=True), 0, 1)
    blurry = np.clip(bicubic_resize(small, (h, w)), 0, 1)
    return blurry.astype(np.float32), sharp


class SuperResPatches(Dataset):
    """Random aligned ``patch_size`` windows of degraded ``images`` (each ``(C, H, W)`` in
    [0, 1]): samples ``(blurry, sharp)``, each ``(C, patch_size, patch_size)``.

    The images are degraded once (:func:`degrade`); ``num_patches`` samples per epoch;
    ``augment``: the same random flip/quarter turn of both; ``by_area``: every window of
    every image equally likely (an image chosen in proportion to its number of windows),
    else every image equally often.
    """

    def __init__(self, images: Sequence[np.ndarray], scale: int, patch_size: int = 33,
                 num_patches: int = 3200, augment: bool = True, by_area: bool = True):
        self.scale = check_scale(scale, "SuperResPatches")
        for arg, value in (("patch_size", patch_size), ("num_patches", num_patches)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SuperResPatches: {arg} must be a positive int, got {value!r}")
        if not images:
            raise ValueError("SuperResPatches: no images")
        pairs = [degrade(im, self.scale) for im in images]
        for i, (_, sharp) in enumerate(pairs):
            if min(sharp.shape[1:]) < patch_size:
                raise ValueError(f"SuperResPatches: patch_size {patch_size} is larger than "
                                 f"image {i} of shape {sharp.shape}")
        self.channels = pairs[0][1].shape[0]
        self.stacked = [np.concatenate(pair, axis=0) for pair in pairs]  # (2C, H, W)
        self.patch_size, self.num_patches, self.augment = patch_size, num_patches, augment
        windows = np.array([(s.shape[1] - patch_size + 1) * (s.shape[2] - patch_size + 1)
                            for _, s in pairs], dtype=np.float64)
        self.weights = windows / windows.sum() if by_area else None

    def __len__(self) -> int:
        return self.num_patches

    def __getitem__(self, index: int):
        if not -self.num_patches <= index < self.num_patches:
            raise IndexError(f"SuperResPatches: index {index} out of range for "
                             f"{self.num_patches}")
        both = random_patch(self.stacked, self.patch_size, data_rng.current(), self.augment,
                            self.weights)
        return both[:self.channels], both[self.channels:]


class SuperResImages(Dataset):
    """Whole degraded ``images``: samples ``(blurry, sharp)``, each ``(C, H', W')`` (the
    image cropped to multiples of ``scale``)."""

    def __init__(self, images: Sequence[np.ndarray], scale: int):
        self.scale = check_scale(scale, "SuperResImages")
        if not images:
            raise ValueError("SuperResImages: no images")
        self.pairs = [degrade(im, self.scale) for im in images]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int):
        return self.pairs[index]


def superres_photos(scale: int = 3, patch_size: int = 33, num_patches: int = 3200,
                    test_crop: int | None = None,
                    augment: bool = True) -> tuple[SuperResPatches, SuperResImages]:
    """``(train, test)`` for super-resolution of the photographs of
    :mod:`minicnn.data.photos` on their Y channel: random aligned patches of the degraded
    training photographs, and the whole test photographs (their central ``test_crop``
    square, if given). Samples are ``(blurry, sharp)``, each ``(1, h, w)`` in [0, 1]."""
    check_scale(scale, "superres_photos")
    train = [rgb_to_y(im) for im in load_photos("train", "rgb")]
    test = [rgb_to_y(im) for im in load_photos("test", "rgb")]
    if test_crop is not None:
        test = [np.ascontiguousarray(center_crop(im, test_crop)) for im in test]
    return (SuperResPatches(train, scale, patch_size, num_patches, augment),
            SuperResImages(test, scale))
