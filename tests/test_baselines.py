"""The classical baselines: each denoiser is scikit-image's with the documented settings,
helps on a real photograph, the best of them is the one with the highest PSNR
(scikit-image's), colour and grey shapes, the bilinear RAW baseline, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("skimage")
pytest.importorskip("pywt")
from skimage import restoration  # noqa: E402
from skimage.metrics import peak_signal_noise_ratio  # noqa: E402

from minicnn.baselines import (  # noqa: E402
    DENOISERS,
    best_denoiser,
    bilinear_raw_to_rgb,
    denoise,
    denoise_baselines,
)
from minicnn.data import load_photo  # noqa: E402
from minicnn.data.noise import GaussianNoise  # noqa: E402
from minicnn.data.raw import bayer_mosaic, demosaic_bilinear, pack_bayer  # noqa: E402

SIGMA = 25 / 255


def noisy_crop(name: str, mode: str, size: int = 96):
    clean = load_photo(name, mode)[:, 150:150 + size, 150:150 + size]
    noisy, clean, _ = GaussianNoise(25)(clean, np.random.default_rng(0))
    return noisy, clean


def test_settings_are_scikit_images():
    noisy, _ = noisy_crop("camera", "grey", 48)
    np.testing.assert_allclose(denoise(noisy, SIGMA, "nl_means")[0], restoration.denoise_nl_means(
        noisy[0], h=0.6 * SIGMA, sigma=SIGMA, fast_mode=True, patch_size=5, patch_distance=6),
        atol=1e-6)
    np.testing.assert_allclose(denoise(noisy[0], SIGMA, "tv"),
                               restoration.denoise_tv_chambolle(noisy[0], weight=SIGMA),
                               atol=1e-6)


def test_denoisers_help_and_the_best_is_the_highest_psnr():
    noisy, clean = noisy_crop("camera", "grey")
    before = peak_signal_noise_ratio(clean, noisy, data_range=1)
    results = denoise_baselines(noisy, clean, SIGMA)
    assert set(results) == set(DENOISERS)
    for r in results.values():
        assert r.image.shape == clean.shape and r.image.dtype == np.float32
        assert r.psnr == pytest.approx(peak_signal_noise_ratio(clean, r.image, data_range=1))
        assert r.psnr > before + 5, r.method
    best = best_denoiser(noisy, clean, SIGMA)
    assert best.psnr == max(r.psnr for r in results.values())


def test_colour():
    noisy, clean = noisy_crop("astronaut", "rgb", 64)
    for method in DENOISERS:
        out = denoise(noisy, SIGMA, method)
        assert out.shape == (3, 64, 64)
        assert peak_signal_noise_ratio(clean, out, data_range=1) > \
            peak_signal_noise_ratio(clean, noisy, data_range=1) + 3


def test_bilinear_raw_baseline():
    rgb = load_photo("coffee")[:, 100:164, 200:264]
    mosaic = bayer_mosaic(rgb)
    out = bilinear_raw_to_rgb(pack_bayer(mosaic))
    np.testing.assert_allclose(out, np.clip(demosaic_bilinear(mosaic), 0, 1))
    np.testing.assert_array_equal(bilinear_raw_to_rgb(mosaic), out)
    assert peak_signal_noise_ratio(rgb, out, data_range=1) > 25


@pytest.mark.parametrize("call,message", [
    (lambda: denoise(np.zeros((8, 8)), SIGMA, "bm3d"), "method must be one of"),
    (lambda: denoise(np.zeros((8, 8)), 0), "sigma must be a positive"),
    (lambda: denoise(np.zeros((2, 8, 8)), SIGMA), "C = 1 or 3"),
    (lambda: denoise_baselines(np.zeros((8, 8)), np.zeros((8, 9)), SIGMA), "same shape"),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
