"""Noise models for denoising, drawn on the fly: each is called on a clean image and a
NumPy generator and returns ``(noisy, clean, noise_map)``, all float32 of the clean
image's shape ``(C, H, W)``.

* :class:`GaussianNoise` -- additive white Gaussian noise, ``sigma`` on the 0-255 scale
  (DnCNN's setting): ``noisy = clean + (sigma / 255) n``, ``n ~ N(0, 1)``, not clipped.
  ``noise_map``: ``sigma / 255`` everywhere.
* :class:`PoissonGaussianNoise` -- a camera sensor (Foi et al., 2008): photon shot noise
  plus read noise, ``noisy = a Poisson(clean / a) + sqrt(b) n``, so that
  ``E[noisy] = clean`` and ``Var[noisy] = a clean + b``. ``noise_map``:
  ``sqrt(a clean + b)``.
* :class:`MRINoise` -- magnitude MR images: the clean image becomes a complex image
  (magnitude ``snr * clean``, a smooth phase), complex Gaussian noise of standard
  deviation ``g`` is added to its real and imaginary parts, and the magnitude is taken:
  Rician noise, whose mean is biased upwards where the signal is low
  (:func:`rician_mean`). Images are in SNR units (noise standard deviation 1 where
  ``g = 1``): ``clean`` is returned as ``snr * clean``. With ``g_max`` the noise varies
  in space by a smooth g-factor map ``g`` in ``[1, g_max]`` (parallel imaging's noise
  amplification, :func:`g_factor_map`); ``noise_map`` is ``g``.

``sigma``, ``a``, ``b``, ``snr`` may be a number or a range ``(low, high)`` from which
each call draws one value uniformly (one network for all noise levels). NumPy only.
"""

from __future__ import annotations

import numpy as np

from minicnn.data.transforms import resize

__all__ = ["GaussianNoise", "MRINoise", "PoissonGaussianNoise", "g_factor_map",
           "rician_mean", "rician_variance"]

Level = float | tuple[float, float]


def _level(value, name: str, cls: str, positive: bool = False) -> tuple[float, float]:
    """A level or a ``(low, high)`` range, checked, as a range."""
    bad = ValueError(f"{cls}: {name} must be a finite number {'> 0' if positive else '>= 0'} "
                     f"or a (low, high) range of them, got {value!r}")
    try:
        lo, hi = (value, value) if np.ndim(value) == 0 else value
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        raise bad from None
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi or lo < 0 or (positive and lo <= 0):
        raise bad
    return lo, hi


def _draw(level: tuple[float, float], rng: np.random.Generator) -> float:
    lo, hi = level
    return lo if lo == hi else float(rng.uniform(lo, hi))


def _check_image(clean, cls: str) -> np.ndarray:
    clean = np.asarray(clean)
    if clean.ndim != 3 or clean.dtype.kind != "f":
        raise ValueError(f"{cls}: the clean image must be float (C, H, W), got "
                         f"{clean.dtype} {clean.shape}")
    return clean


class GaussianNoise:
    """Additive white Gaussian noise of standard deviation ``sigma / 255`` (``sigma`` on the
    0-255 scale, e.g. 25; or a range ``(0, 55)`` as DnCNN-B's blind training)."""

    def __init__(self, sigma: Level):
        self.sigma = _level(sigma, "sigma", "GaussianNoise")

    def __call__(self, clean: np.ndarray, rng: np.random.Generator):
        clean = _check_image(clean, "GaussianNoise")
        std = _draw(self.sigma, rng) / 255.0
        noisy = clean + std * rng.standard_normal(clean.shape)
        return (noisy.astype(np.float32), clean.astype(np.float32),
                np.full(clean.shape, std, dtype=np.float32))

    def __repr__(self) -> str:
        return f"GaussianNoise(sigma={self.sigma})"


class PoissonGaussianNoise:
    """Shot plus read noise: ``a Poisson(clean / a) + N(0, b)`` (``Var = a clean + b``,
    images in [0, 1]; ``a`` is the variance per unit of signal, ``b`` the read noise's
    variance). E.g. ``a=0.01, b=1e-4``: about 100 photons at full scale, read noise 0.01."""

    def __init__(self, a: Level, b: Level = 0.0):
        self.a = _level(a, "a", "PoissonGaussianNoise", positive=True)
        self.b = _level(b, "b", "PoissonGaussianNoise")

    def __call__(self, clean: np.ndarray, rng: np.random.Generator):
        clean = _check_image(clean, "PoissonGaussianNoise")
        if clean.min() < 0:
            raise ValueError(f"PoissonGaussianNoise: the clean image must be >= 0 (a photon "
                             f"count), got a minimum of {clean.min()}")
        a, b = _draw(self.a, rng), _draw(self.b, rng)
        shot = a * rng.poisson(clean.astype(np.float64) / a)
        noisy = shot + np.sqrt(b) * rng.standard_normal(clean.shape)
        return (noisy.astype(np.float32), clean.astype(np.float32),
                np.sqrt(a * clean + b).astype(np.float32))

    def __repr__(self) -> str:
        return f"PoissonGaussianNoise(a={self.a}, b={self.b})"


def g_factor_map(shape: tuple[int, int], g_max: float, rng: np.random.Generator,
                 grid: int = 4) -> np.ndarray:
    """A smooth random g-factor map ``(H, W)`` with values in ``[1, g_max]``: a ``grid`` x
    ``grid`` array of uniform draws, bilinearly enlarged (a stand-in for the noise
    amplification of parallel imaging, which varies smoothly over the field of view)."""
    coarse = rng.uniform(1.0, g_max, (1, grid, grid)).astype(np.float32)
    return resize(coarse, shape)[0]


class MRINoise:
    """Rician magnitude noise in SNR units (see the module's docstring).

    ``snr``: the signal-to-noise ratio of a pixel of value 1 (the clean image is scaled to
    ``snr * clean``; noise standard deviation ``g`` per real and imaginary part).
    ``g_max``: if given, a new smooth g-factor map in ``[1, g_max]`` per call
    (:func:`g_factor_map`); else ``g = 1``. ``phase``: a smooth random phase on the complex
    image (it does not change the magnitude's statistics; it makes the complex image real).
    """

    def __init__(self, snr: Level, g_max: float | None = None, phase: bool = True):
        self.snr = _level(snr, "snr", "MRINoise")
        if g_max is not None and (not np.isfinite(g_max) or g_max < 1):
            raise ValueError(f"MRINoise: g_max must be >= 1 (or None), got {g_max!r}")
        self.g_max = g_max
        self.phase = phase

    def __call__(self, clean: np.ndarray, rng: np.random.Generator):
        clean = _check_image(clean, "MRINoise")
        c, h, w = clean.shape
        signal = _draw(self.snr, rng) * clean.astype(np.float64)
        g = (np.ones((h, w)) if self.g_max is None
             else g_factor_map((h, w), self.g_max, rng).astype(np.float64))
        phi = (2 * np.pi * g_factor_map((h, w), 2.0, rng, grid=3) if self.phase
               else np.zeros((h, w)))
        real = signal * np.cos(phi) + g * rng.standard_normal(clean.shape)
        imag = signal * np.sin(phi) + g * rng.standard_normal(clean.shape)
        noisy = np.hypot(real, imag)
        return (noisy.astype(np.float32), signal.astype(np.float32),
                np.broadcast_to(g, clean.shape).astype(np.float32))

    def __repr__(self) -> str:
        return f"MRINoise(snr={self.snr}, g_max={self.g_max})"


def _bessel_terms(nu, sigma):
    try:
        from scipy.special import i0e, i1e
    except ImportError as e:
        raise RuntimeError('rician_mean needs SciPy: pip install "minicnn[data]"') from e
    t = np.asarray(nu, dtype=np.float64) ** 2 / (4.0 * np.asarray(sigma, dtype=np.float64) ** 2)
    # L_{1/2}(-2t) = e^{-t} [(1 + 2t) I0(t) + 2t I1(t)], with the exponentially scaled Bessels
    return (1 + 2 * t) * i0e(t) + 2 * t * i1e(t)


def rician_mean(nu, sigma):
    """The mean of the magnitude ``|nu + sigma (n1 + i n2)|`` of a signal ``nu`` in complex
    Gaussian noise: ``sigma sqrt(pi/2) L_{1/2}(-nu^2 / (2 sigma^2))`` (Laguerre
    polynomial; ``sigma sqrt(pi/2)`` for no signal, about ``sqrt(nu^2 + sigma^2)`` for a
    strong one). Arrays broadcast."""
    return np.asarray(sigma, dtype=np.float64) * np.sqrt(np.pi / 2) * _bessel_terms(nu, sigma)


def rician_variance(nu, sigma):
    """The variance of that magnitude: ``2 sigma^2 + nu^2 - rician_mean(nu, sigma)^2``."""
    nu, sigma = np.asarray(nu, dtype=np.float64), np.asarray(sigma, dtype=np.float64)
    return 2 * sigma**2 + nu**2 - rician_mean(nu, sigma) ** 2
