"""The noise models: empirical mean and variance of generated noise against the formulas
(Gaussian; Poisson-Gaussian ``Var = a x + b``; Rician magnitude noise, whose mean is
biased at low SNR, against scipy.stats.rice), the noise maps, g-factor maps, ranges of
levels, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from minicnn.data.noise import (
    GaussianNoise,
    MRINoise,
    PoissonGaussianNoise,
    g_factor_map,
    rician_mean,
    rician_variance,
)

stats = pytest.importorskip("scipy.stats")

N = 40_000  # pixels per level: the sample variance's relative standard error is sqrt(2/N) = 0.7%


def levels_image(levels) -> np.ndarray:
    """A (1, len(levels), N) image, row i constant at levels[i]."""
    return np.repeat(np.asarray(levels, dtype=np.float32)[:, None], N, axis=1)[None]


def test_gaussian_mean_and_variance():
    clean = levels_image([0.0, 0.5, 1.0])
    noisy, target, noise_map = GaussianNoise(25)(clean, np.random.default_rng(1))
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    np.testing.assert_array_equal(target, clean)
    np.testing.assert_array_equal(noise_map, np.float32(25 / 255))
    noise = (noisy - clean)[0]
    std = 25 / 255
    np.testing.assert_allclose(noise.mean(axis=1), 0, atol=4 * std / np.sqrt(N))
    np.testing.assert_allclose(noise.var(axis=1), std**2, rtol=0.03)
    assert noisy.min() < 0 and noisy.max() > 1  # not clipped


def test_gaussian_range_draws_one_level_per_call():
    model = GaussianNoise((10, 50))
    rng = np.random.default_rng(2)
    stds = []
    for _ in range(30):
        noisy, clean, noise_map = model(levels_image([0.5])[:, :, :2000], rng)
        assert np.ptp(noise_map) == 0
        stds.append(noise_map.flat[0] * 255)
        assert (noisy - clean).std() == pytest.approx(noise_map.flat[0], rel=0.1)
    assert 10 <= min(stds) < 20 and 40 < max(stds) <= 50


def test_poisson_gaussian_mean_and_variance():
    a, b = 0.01, 1e-4
    levels = [0.0, 0.05, 0.3, 0.9]
    clean = levels_image(levels)
    noisy, _, noise_map = PoissonGaussianNoise(a, b)(clean, np.random.default_rng(3))
    var = a * np.array(levels) + b
    atol = float(4 * np.sqrt(var.max() / N))
    np.testing.assert_allclose(noisy[0].mean(axis=1), levels, atol=atol)
    np.testing.assert_allclose(noisy[0].var(axis=1), var, rtol=0.04)
    np.testing.assert_allclose(noise_map[0, :, 0], np.sqrt(var), rtol=1e-6)
    # the shot noise is a multiple of a: a Poisson count scaled, with no read noise
    shot, _, _ = PoissonGaussianNoise(0.1)(clean[:, :, :100], np.random.default_rng(0))
    np.testing.assert_allclose(shot / 0.1, np.round(shot / 0.1), atol=1e-4)


@pytest.mark.parametrize("nu", [0.0, 0.5, 1.0, 2.0, 8.0])
def test_rician_formulas_equal_scipy(nu):
    ref = stats.rice(b=nu / 1.5, scale=1.5) if nu else stats.rayleigh(scale=1.5)
    assert rician_mean(nu, 1.5) == pytest.approx(ref.mean(), rel=1e-10)
    assert rician_variance(nu, 1.5) == pytest.approx(ref.var(), rel=1e-8)


def test_rician_bias_at_low_snr():
    snr = 4.0
    levels = [0.0, 0.125, 0.25, 0.5, 1.0]  # signals 0, 0.5, 1, 2, 4 in SNR units
    clean = levels_image(levels)
    noisy, target, noise_map = MRINoise(snr)(clean, np.random.default_rng(4))
    nu = snr * np.array(levels)
    np.testing.assert_allclose(target[0, :, 0], nu, rtol=1e-6)
    np.testing.assert_array_equal(noise_map, 1.0)
    mean, var = noisy[0].mean(axis=1), noisy[0].var(axis=1)
    np.testing.assert_allclose(mean, rician_mean(nu, 1.0), atol=4 * np.sqrt(2 / N))
    np.testing.assert_allclose(var, rician_variance(nu, 1.0), rtol=0.04)
    # the bias: with no signal the mean magnitude is sqrt(pi/2) = 1.2533, not 0
    assert mean[0] == pytest.approx(np.sqrt(np.pi / 2), abs=0.02)
    assert mean[1] - nu[1] > 0.7  # nu = 0.5: still mostly noise


def test_g_factor_map_scales_the_noise():
    rng = np.random.default_rng(5)
    g = g_factor_map((64, 80), 3.0, rng)
    assert g.shape == (64, 80) and g.min() >= 1 and g.max() <= 3.0 and np.ptp(g) > 0.5
    assert np.abs(np.diff(g, axis=1)).max() < 0.2  # smooth
    # no signal: magnitude / g is Rayleigh(1) everywhere, mean sqrt(pi/2), E[M^2] = 2
    noisy, _, g_map = MRINoise(0.0, g_max=3.0)(np.zeros((1, 200, 200), np.float32), rng)
    assert g_map.min() >= 1 and g_map.max() <= 3 and np.ptp(g_map) > 0.5
    ratio = noisy / g_map
    assert ratio.mean() == pytest.approx(np.sqrt(np.pi / 2), rel=0.01)
    assert (ratio**2).mean() == pytest.approx(2.0, rel=0.02)


@pytest.mark.parametrize("make,message", [
    (lambda: GaussianNoise(-1), "sigma"),
    (lambda: GaussianNoise((50, 10)), "sigma"),
    (lambda: GaussianNoise("x"), "sigma"),
    (lambda: PoissonGaussianNoise(0), "a must be"),
    (lambda: MRINoise(5, g_max=0.5), "g_max"),
])
def test_bad_levels(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_images():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"float \(C, H, W\)"):
        GaussianNoise(25)(np.zeros((8, 8), np.float32), rng)
    with pytest.raises(ValueError, match=">= 0"):
        PoissonGaussianNoise(0.01)(-np.ones((1, 4, 4), np.float32), rng)
