"""The classical methods a restoration network is measured against, as plain functions
that a training recipe, a lesson or a script calls on NumPy images ``(C, H, W)``.

Denoising (scikit-image's denoisers, told the noise's standard deviation ``sigma`` in the
image's units, e.g. ``25 / 255`` for images in [0, 1]):

* ``"nl_means"`` -- non-local means (Buades et al., 2005): ``denoise_nl_means`` with
  5x5 patches searched within 6 pixels, ``h = 0.6 sigma``, ``fast_mode=True`` and
  ``sigma`` given (scikit-image's recommended settings when the noise level is known).
* ``"tv"`` -- total-variation denoising (Chambolle, 2004): ``denoise_tv_chambolle`` with
  ``weight = sigma`` (near the best weight for sigma = 25 on the test photographs; the
  optimal weight grows in proportion to sigma).
* ``"wavelet"`` -- wavelet shrinkage: ``denoise_wavelet`` with BayesShrink, soft
  thresholds, ``sigma`` given (colour images through YCbCr, scikit-image's option).

:func:`best_denoiser` runs them all and keeps, per image, the one closest to the clean
image (by PSNR): an oracle choice no real user could make, so a network that beats it
beats every one of them. Colour images are denoised with the channels together.

RAW-to-RGB: :func:`bilinear_raw_to_rgb`, the plain bilinear demosaic
(:func:`minicnn.data.raw.demosaic_bilinear`) of a Bayer mosaic or packed RAW.

Needs scikit-image (and PyWavelets for ``"wavelet"``): ``pip install "minicnn[data]"``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from minicnn.data.raw import demosaic_bilinear, linear_to_srgb, unpack_bayer
from minicnn.metrics.image_quality import psnr

__all__ = ["DENOISERS", "BaselineResult", "best_denoiser", "bilinear_raw_to_rgb", "denoise",
           "denoise_baselines", "demosaic_bilinear"]


def _restoration():
    try:
        from skimage import restoration
    except ImportError as e:
        raise RuntimeError('the denoising baselines need scikit-image: '
                           'pip install "minicnn[data]"') from e
    return restoration


def _nl_means(image: np.ndarray, sigma: float, channel_axis: int | None) -> np.ndarray:
    return _restoration().denoise_nl_means(image, h=0.6 * sigma, sigma=sigma, fast_mode=True,
                                           patch_size=5, patch_distance=6,
                                           channel_axis=channel_axis)


def _tv(image: np.ndarray, sigma: float, channel_axis: int | None) -> np.ndarray:
    return _restoration().denoise_tv_chambolle(image, weight=sigma, channel_axis=channel_axis)


def _wavelet(image: np.ndarray, sigma: float, channel_axis: int | None) -> np.ndarray:
    try:
        import pywt  # noqa: F401  (scikit-image's wavelet denoiser needs it)
    except ImportError as e:
        raise RuntimeError('the wavelet baseline needs PyWavelets: pip install "minicnn[data]"'
                           ) from e
    return _restoration().denoise_wavelet(image, sigma=sigma, method="BayesShrink",
                                          mode="soft", rescale_sigma=True,
                                          channel_axis=channel_axis,
                                          convert2ycbcr=channel_axis is not None)


_DENOISERS: dict[str, Callable] = {"nl_means": _nl_means, "tv": _tv, "wavelet": _wavelet}
DENOISERS = tuple(_DENOISERS)


def denoise(noisy: np.ndarray, sigma: float, method: str = "nl_means") -> np.ndarray:
    """Denoise ``noisy`` ``(C, H, W)`` (C = 1 or 3) or ``(H, W)`` with one of
    :data:`DENOISERS`, given the noise's standard deviation ``sigma`` in the image's units.
    Returns float32 of the input's shape (not clipped)."""
    if method not in _DENOISERS:
        raise ValueError(f"denoise: method must be one of {DENOISERS}, got {method!r}")
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.number)) \
            or not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"denoise: sigma must be a positive number (the noise's standard "
                         f"deviation in the image's units), got {sigma!r}")
    image = np.asarray(noisy, dtype=np.float32)
    if image.ndim == 2:
        return denoise(image[None], sigma, method)[0]
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"denoise: noisy must be (C, H, W) with C = 1 or 3, or (H, W), got "
                         f"shape {image.shape}")
    if image.shape[0] == 1:
        out = _DENOISERS[method](image[0], float(sigma), None)[None]
    else:
        out = _DENOISERS[method](image, float(sigma), 0)
    return np.asarray(out, dtype=np.float32)


@dataclass
class BaselineResult:
    """A baseline's output ``image`` ``(C, H, W)`` and its ``psnr`` (dB) against the clean
    image, by ``method``."""

    method: str
    image: np.ndarray
    psnr: float


def denoise_baselines(noisy: np.ndarray, clean: np.ndarray, sigma: float,
                      methods: Sequence[str] = DENOISERS,
                      data_range: float = 1.0) -> dict[str, BaselineResult]:
    """Every method of ``methods`` on ``noisy``, scored by PSNR against ``clean`` (both
    ``(C, H, W)``): ``{method: BaselineResult}``."""
    if np.shape(noisy) != np.shape(clean):
        raise ValueError(f"denoise_baselines: noisy and clean must have the same shape, got "
                         f"{np.shape(noisy)} and {np.shape(clean)}")
    results = {}
    for method in methods:
        image = denoise(noisy, sigma, method)
        results[method] = BaselineResult(method, image, psnr(clean, image, data_range))
    return results


def best_denoiser(noisy: np.ndarray, clean: np.ndarray, sigma: float,
                  methods: Sequence[str] = DENOISERS, data_range: float = 1.0) -> BaselineResult:
    """The best of :func:`denoise_baselines` for this image (highest PSNR against
    ``clean``; the oracle choice, see the module's docstring)."""
    results = denoise_baselines(noisy, clean, sigma, methods, data_range)
    return max(results.values(), key=lambda r: r.psnr)


def bilinear_raw_to_rgb(raw: np.ndarray, pattern: str = "RGGB",
                        linear: bool = False) -> np.ndarray:
    """The plain RAW-to-RGB baseline: bilinear demosaicing of a Bayer mosaic ``(1, H, W)``
    or packed RAW ``(4, H/2, W/2)`` -> RGB ``(3, H, W)`` clipped to [0, 1]; with ``linear``
    (RAW recorded in linear light) the sRGB curve is applied afterwards."""
    raw = np.asarray(raw)
    mosaic = unpack_bayer(raw) if raw.ndim == 3 and raw.shape[0] == 4 else raw
    rgb = demosaic_bilinear(mosaic, pattern)
    return linear_to_srgb(rgb) if linear else np.clip(rgb, 0.0, 1.0)
