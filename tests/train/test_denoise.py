"""The denoising recipe with a small residual network: it trains, its PSNR/SSIM per epoch
are scikit-image's on the test photographs, the baseline is the best of scikit-image's
denoisers, and the run folder gets its figures."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("skimage")
pytest.importorskip("pywt")
from skimage.metrics import peak_signal_noise_ratio, structural_similarity  # noqa: E402
from skimage.restoration import denoise_nl_means, denoise_tv_chambolle  # noqa: E402

import minicnn  # noqa: E402
from minicnn import nn, optim  # noqa: E402
from minicnn.data import DataLoader  # noqa: E402
from minicnn.train.denoise import DenoiseTrainer, build_denoiser, denoise_data  # noqa: E402


class TinyResidual(nn.Module):
    """y -> y - conv(relu(conv(y))): a two-layer noise estimator."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 1, 3, padding=1)

    def forward(self, y):
        return y - self.c2(self.c1(y).relu())


@pytest.mark.slow
def test_recipe_trains_and_measures_like_scikit_image(tmp_path):
    minicnn.manual_seed(0)
    train, test = denoise_data(sigma=25, patch_size=16, num_patches=256, test_crop=32)
    model = TinyResidual()
    trainer = DenoiseTrainer(model, optim.Adam(model.parameters(), 1e-2), sigma=25,
                             run_dir=tmp_path / "run", progress=False)
    history = trainer.fit(DataLoader(train, 16, shuffle=True), DataLoader(test, 1), epochs=2)
    assert [h["epoch"] for h in history] == [1, 2]
    last = history[-1]
    # the network's PSNR and SSIM, recomputed with scikit-image
    ours_p, ours_s, noisy_p, base_p = [], [], [], []
    for i in range(len(test)):
        noisy, clean = test[i]
        out = trainer.denoise(noisy[None])[0]
        ours_p.append(peak_signal_noise_ratio(clean, out, data_range=1))
        ours_s.append(structural_similarity(clean, out, data_range=1, channel_axis=0,
                                            gaussian_weights=True, use_sample_covariance=False))
        noisy_p.append(peak_signal_noise_ratio(clean, noisy, data_range=1))
        s = 25 / 255
        candidates = [denoise_nl_means(noisy[0], h=0.6 * s, sigma=s, fast_mode=True,
                                       patch_size=5, patch_distance=6),
                      denoise_tv_chambolle(noisy[0], weight=s)]
        base_p.append(max(peak_signal_noise_ratio(clean[0], c, data_range=1)
                          for c in candidates))
    assert last["val_psnr"] == pytest.approx(np.mean(ours_p), abs=1e-4)
    assert last["val_ssim"] == pytest.approx(np.mean(ours_s), abs=1e-4)
    assert last["val_psnr"] > np.mean(noisy_p) + 1  # it learned to denoise
    # the baseline is the best of three; two of them recomputed bound it from below
    assert last["baseline_psnr"] >= np.mean(base_p) - 1e-4
    assert history[0]["baseline_psnr"] == last["baseline_psnr"]  # computed once
    figures = tmp_path / "run" / "figures"
    assert (figures / "curves.png").stat().st_size > 0
    assert (figures / "denoising.png").stat().st_size > 0
    assert (tmp_path / "run" / "metrics.csv").read_text().startswith("epoch,")


def test_build_denoiser_bad_name():
    with pytest.raises(ValueError, match="unknown denoiser 'bm3d'"):
        build_denoiser("bm3d")


class TinyNoiseAware(nn.Module):
    """(y, map) -> y - conv([y, map]): told the noise level at every pixel."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 3, padding=1)

    def forward(self, y, noise_map):
        return y - self.conv(minicnn.cat([y, noise_map], 1))


def test_noise_aware_models_get_the_noise_map():
    from minicnn.data.noise import MRINoise
    from minicnn.data.restoration import NoiseMapInput, NoisyImages, NoisyPatches

    images = [np.random.default_rng(0).random((1, 24, 24)).astype(np.float32)]
    noise = MRINoise(5, g_max=2)
    train = NoiseMapInput(NoisyPatches(images, noise, 8, 8, return_noise_map=True))
    test = NoiseMapInput(NoisyImages(images, noise, return_noise_map=True))
    (noisy, noise_map), clean = test[0]
    assert noisy.shape == clean.shape == (1, 24, 24) and noise_map.shape == (1, 24, 24)
    assert noise_map.min() >= 1 and noise_map.max() <= 2
    minicnn.manual_seed(0)
    model = TinyNoiseAware()
    trainer = DenoiseTrainer(model, optim.Adam(model.parameters(), 1e-3), progress=False)
    history = trainer.fit(DataLoader(train, 4), DataLoader(test, 1), epochs=1)
    out = trainer.denoise((noisy[None], noise_map[None]))[0]
    assert history[0]["val_psnr"] == pytest.approx(
        peak_signal_noise_ratio(clean, out, data_range=1), abs=1e-6)
    with pytest.raises(ValueError, match="return_noise_map=True"):
        NoiseMapInput(NoisyImages(images, noise))[0]
