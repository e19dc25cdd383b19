"""Datasets for image restoration: random training patches with noise drawn on the fly,
and whole held-out images with noise drawn once (the same every epoch).

    noise = GaussianNoise(25)
    train, test = noisy_photos(noise, mode="grey")     # the photographs' own split
    noisy, clean = train[0]                            # (1, 40, 40) each, a new patch per call
    noisy, clean = test[0]                             # a whole test photograph

A training sample is a ``patch_size`` square cut at a random place of a random training
photograph (every photograph equally often, whatever its size), turned by one of the 8
flips/rotations (``augment``), with fresh noise; ``len(train)`` is ``num_patches``, the
patches of one epoch. Randomness comes from :func:`minicnn.data.rng.current` (the
DataLoader's per-batch generator, or ``minicnn.manual_seed``'s), so a seeded run repeats.
Test images draw their noise from a generator seeded by ``(seed, index)``.
Samples are ``(noisy, clean)``, or ``(noisy, clean, noise_map)`` with
``return_noise_map=True``; see :mod:`minicnn.data.noise` for the models and their maps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from minicnn.data import rng as data_rng
from minicnn.data.dataset import Dataset
from minicnn.data.photos import MODES, load_photos

__all__ = ["NoiseMapInput", "NoisyImages", "NoisyPatches", "dihedral", "noisy_photos",
           "random_patch"]

NoiseModel = Callable[[np.ndarray, np.random.Generator], tuple]


def dihedral(image: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 flips and quarter turns of ``(C, H, W)``: ``k`` in 0..7 turns ``k % 4``
    quarters, then flips left-right if ``k >= 4`` (DnCNN's augmentation)."""
    out = np.rot90(image, k % 4, axes=(-2, -1))
    return out[..., ::-1] if k >= 4 else out


def random_patch(images: Sequence[np.ndarray], size: int, rng: np.random.Generator,
                 augment: bool = True, weights: np.ndarray | None = None) -> np.ndarray:
    """A ``size`` x ``size`` window ``(C, size, size)`` of a random image of ``images``
    (each ``(C, H, W)``, chosen equally often, or with the probabilities ``weights``, one
    per image, summing to 1), at a random place, turned by a random :func:`dihedral` when
    ``augment``. Returns a contiguous copy."""
    if weights is None:
        image = images[int(rng.integers(len(images)))]
    else:
        image = images[int(rng.choice(len(images), p=weights))]
    h, w = image.shape[-2:]
    top, left = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
    patch = image[..., top:top + size, left:left + size]
    if augment:
        patch = dihedral(patch, int(rng.integers(8)))
    return np.ascontiguousarray(patch, dtype=np.float32)


def _check_images(images, size: int, cls: str) -> list[np.ndarray]:
    images = [np.asarray(im, dtype=np.float32) for im in images]
    if not images:
        raise ValueError(f"{cls}: no images")
    for i, im in enumerate(images):
        if im.ndim != 3 or im.shape[0] != images[0].shape[0]:
            raise ValueError(f"{cls}: images must be (C, H, W) with the same C, image {i} has "
                             f"shape {im.shape}")
        if min(im.shape[1:]) < size:
            raise ValueError(f"{cls}: patch_size {size} is larger than image {i} of shape "
                             f"{im.shape}")
    return images


def _sample(noise: NoiseModel, clean: np.ndarray, rng: np.random.Generator,
            return_noise_map: bool) -> tuple:
    noisy, target, noise_map = noise(clean, rng)
    return (noisy, target, noise_map) if return_noise_map else (noisy, target)


class NoisyPatches(Dataset):
    """Random ``patch_size`` squares of ``images`` (each ``(C, H, W)`` float32 in [0, 1])
    with noise from ``noise`` (a model of :mod:`minicnn.data.noise`) drawn per sample.

    ``num_patches`` samples per epoch; ``augment``: random flips and quarter turns.
    A sample: ``(noisy, clean)`` each ``(C, patch_size, patch_size)``, plus the noise map
    with ``return_noise_map``.
    """

    def __init__(self, images: Sequence[np.ndarray], noise: NoiseModel, patch_size: int = 40,
                 num_patches: int = 3200, augment: bool = True,
                 return_noise_map: bool = False):
        if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
            raise ValueError(f"NoisyPatches: patch_size must be a positive int, got "
                             f"{patch_size!r}")
        if isinstance(num_patches, bool) or not isinstance(num_patches, int) or num_patches < 1:
            raise ValueError(f"NoisyPatches: num_patches must be a positive int, got "
                             f"{num_patches!r}")
        self.images = _check_images(images, patch_size, "NoisyPatches")
        self.noise, self.patch_size, self.num_patches = noise, patch_size, num_patches
        self.augment, self.return_noise_map = augment, return_noise_map

    def __len__(self) -> int:
        return self.num_patches

    def __getitem__(self, index: int):
        if not -self.num_patches <= index < self.num_patches:
            raise IndexError(f"NoisyPatches: index {index} out of range for {self.num_patches}")
        rng = data_rng.current()
        clean = random_patch(self.images, self.patch_size, rng, self.augment)
        return _sample(self.noise, clean, rng, self.return_noise_map)


class NoisyImages(Dataset):
    """Whole ``images`` with noise drawn once per image from a generator seeded by
    ``(seed, index)``: the same noisy test set every epoch and every run."""

    def __init__(self, images: Sequence[np.ndarray], noise: NoiseModel, seed: int = 0,
                 return_noise_map: bool = False):
        self.images = _check_images(images, 1, "NoisyImages")
        self.noise, self.seed, self.return_noise_map = noise, seed, return_noise_map

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        rng = np.random.default_rng((self.seed, index % len(self.images)))
        return _sample(self.noise, self.images[index], rng, self.return_noise_map)


class NoiseMapInput(Dataset):
    """The samples ``(noisy, clean, noise_map)`` of ``dataset`` (made with
    ``return_noise_map=True``) as ``((noisy, noise_map[:1]), clean)``: the inputs of a
    noise-aware denoiser, ``model(noisy, noise_map)``, with a one-channel map
    ``(1, H, W)`` (the maps of Gaussian and MRI noise are the same in every channel), and
    its target."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        sample = self.dataset[index]
        if len(sample) != 3:
            raise ValueError(f"NoiseMapInput: the samples must be (noisy, clean, noise_map) "
                             f"(a dataset with return_noise_map=True), got {len(sample)} items")
        noisy, clean, noise_map = sample
        return (noisy, noise_map[:1]), clean


def noisy_photos(noise: NoiseModel, mode: str = "grey", patch_size: int = 40,
                 num_patches: int = 3200, test_crop: int | None = None, seed: int = 0,
                 augment: bool = True,
                 return_noise_map: bool = False) -> tuple[NoisyPatches, NoisyImages]:
    """``(train, test)`` for denoising the photographs of :mod:`minicnn.data.photos` in the
    view ``mode`` (``"grey"`` or ``"rgb"``): random noisy patches of the training
    photographs, and the test photographs (the central ``test_crop`` square of each, if
    given) with noise fixed by ``seed``."""
    if mode not in MODES[:2]:
        raise ValueError(f"noisy_photos: mode must be 'grey' or 'rgb', got {mode!r}")
    train = NoisyPatches(load_photos("train", mode), noise, patch_size, num_patches, augment,
                         return_noise_map)
    test = NoisyImages(load_photos("test", mode, crop=test_crop), noise, seed,
                       return_noise_map)
    return train, test
