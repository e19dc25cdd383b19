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
