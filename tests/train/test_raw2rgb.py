"""The RAW-to-RGB recipe with a tiny PyNET (base width 2): the pyramid loss against
PyTorch's average pooling and MSE, PSNR/SSIM per epoch against scikit-image's on the test
photographs, the bilinear baseline, the tiled inference, and the run's figures."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("skimage")
torch = pytest.importorskip("torch")
from skimage.metrics import peak_signal_noise_ratio, structural_similarity  # noqa: E402

import minicnn  # noqa: E402
from minicnn import optim  # noqa: E402
from minicnn.autograd import tensor  # noqa: E402
from minicnn.baselines import bilinear_raw_to_rgb  # noqa: E402
from minicnn.data import DataLoader  # noqa: E402
from minicnn.data.raw import demosaic_bilinear, unpack_bayer  # noqa: E402
from minicnn.models.restoration import PyNET  # noqa: E402
from minicnn.train.raw2rgb import (  # noqa: E402
    DEFAULTS,
    Raw2RGBTrainer,
    build_raw2rgb,
    raw2rgb_data,
    raw2rgb_image,
    raw_noise,
    simulate_file_raw,
)


def tiny_pynet(instance_norm: bool = True) -> PyNET:
    return PyNET(0, width=2, instance_norm=instance_norm, instance_norm_level_1=instance_norm)


def srgb(x):  # IEC 61966-2-1, written out here
    x = np.clip(x, 0, 1)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def test_pyramid_loss_equals_torch():
    minicnn.manual_seed(0)
    model = tiny_pynet()
    rng = np.random.default_rng(0)
    raw = rng.random((2, 4, 32, 32)).astype(np.float32)
    rgb = rng.random((2, 3, 64, 64)).astype(np.float32)
    weights = {0: 1.0, 1: 0.5, 3: 2.0, 5: 0.25}
    trainer = Raw2RGBTrainer(model, None, level_weights=weights, progress=False)
    loss, sums = trainer.training_step(*trainer._batch(raw, rgb))
    images = {k: torch.from_numpy(v.detach().numpy()) for k, v in
              model.pyramid(tensor(raw)).items()}
    target = torch.from_numpy(rgb)
    expected = sum(w * torch.nn.functional.mse_loss(
        images[k], torch.nn.functional.avg_pool2d(target, 2 ** k) if k else target)
        for k, w in weights.items())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    level0 = torch.nn.functional.mse_loss(images[0], target).item()
    assert sums["mse"] == pytest.approx(2 * level0, rel=1e-5)  # summed over the batch
    loss.backward()  # every level's output convolution gets a gradient
    for name in ("conv_l5_out", "conv_l3_out", "conv_l0_d1"):
        assert np.abs(getattr(model, name).conv2d.weight.grad.numpy()).sum() > 0


def test_a_model_without_a_pyramid_is_trained_on_its_output():
    from minicnn import nn
    from minicnn.nn import functional as F

    class Shuffle(nn.Module):  # packed RAW -> RGB by one convolution and a pixel shuffle
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 12, 3, padding=1)

        def forward(self, x):
            return F.pixel_shuffle(self.conv(x), 2).sigmoid()

    minicnn.manual_seed(0)
    model = Shuffle()
    rng = np.random.default_rng(3)
    raw = rng.random((2, 4, 8, 8)).astype(np.float32)
    rgb = rng.random((2, 3, 16, 16)).astype(np.float32)
    trainer = Raw2RGBTrainer(model, None, progress=False)  # the default weights of 6 levels
    loss, sums = trainer.training_step(*trainer._batch(raw, rgb))
    out = torch.from_numpy(model(tensor(raw)).detach().numpy())
    expected = torch.nn.functional.mse_loss(out, torch.from_numpy(rgb)).item()
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert sums["mse"] == pytest.approx(2 * expected, rel=1e-5)


@pytest.mark.slow
def test_recipe_trains_and_measures_like_scikit_image(tmp_path):
    minicnn.manual_seed(0)
    train, test = raw2rgb_data(patch_size=64, num_patches=8, test_crop=64)
    assert len(test) == 4 and test[0][0].shape == (4, 32, 32)
    model = tiny_pynet()
    trainer = Raw2RGBTrainer(model, optim.Adam(model.parameters(), 1e-2), linear=True,
                             run_dir=tmp_path / "run", progress=False)
    history = trainer.fit(DataLoader(train, 4, shuffle=True), DataLoader(test, 1), epochs=2)
    assert [h["epoch"] for h in history] == [1, 2]
    last = history[-1]
    ours_p, ours_s, base_p, base_s = [], [], [], []
    for raw, rgb in test:
        out = trainer.denoise(raw[None])[0]
        ours_p.append(peak_signal_noise_ratio(rgb, out, data_range=1))
        ours_s.append(structural_similarity(rgb, out, data_range=1, channel_axis=0,
                                            gaussian_weights=True, use_sample_covariance=False))
        base = srgb(demosaic_bilinear(unpack_bayer(raw)))  # the same noisy RAW
        base_p.append(peak_signal_noise_ratio(rgb, base, data_range=1))
        base_s.append(structural_similarity(rgb, base, data_range=1, channel_axis=0,
                                            gaussian_weights=True, use_sample_covariance=False))
    assert last["val_psnr"] == pytest.approx(np.mean(ours_p), abs=1e-4)
    assert last["val_ssim"] == pytest.approx(np.mean(ours_s), abs=1e-4)
    assert last["baseline_psnr"] == pytest.approx(np.mean(base_p), abs=1e-4)
    assert last["baseline_ssim"] == pytest.approx(np.mean(base_s), abs=1e-4)
    assert history[0]["baseline_psnr"] == last["baseline_psnr"]  # computed once
    assert "train_mse" in last and last["train_loss"] >= last["train_mse"]
    figures = tmp_path / "run" / "figures"
    assert (figures / "curves.png").stat().st_size > 0
    assert (figures / "raw2rgb.png").stat().st_size > 0


def test_bilinear_baseline_and_file_simulation():
    rng = np.random.default_rng(1)
    raw = rng.random((4, 8, 10)).astype(np.float32)
    np.testing.assert_allclose(bilinear_raw_to_rgb(raw, linear=True),
                               srgb(demosaic_bilinear(unpack_bayer(raw))), atol=1e-6)
    np.testing.assert_allclose(bilinear_raw_to_rgb(raw, linear=False),
                               np.clip(demosaic_bilinear(unpack_bayer(raw)), 0, 1))
    rgb = rng.random((3, 9, 12)).astype(np.float32)  # an odd height: one row is dropped
    a = simulate_file_raw(rgb, [1e-3, 1e-5], linear=True, seed=5)
    assert a.shape == (4, 4, 6)
    np.testing.assert_array_equal(a, simulate_file_raw(rgb, [1e-3, 1e-5], True, seed=5))
    clean = simulate_file_raw(rgb, None, linear=False)
    np.testing.assert_array_equal(unpack_bayer(clean)[0, 0::2, 0::2], rgb[0, 0:8:2, 0::2])


def test_raw2rgb_image_tiles_and_pads():
    minicnn.manual_seed(0)
    model = tiny_pynet()
    model.eval()
    raw = np.random.default_rng(2).random((4, 40, 36)).astype(np.float32)
    whole = raw2rgb_image(model, raw, tile=64)  # one tile, padded to 48x48 and cropped back
    assert whole.shape == (3, 80, 72)
    padded = np.pad(raw, ((0, 0), (0, 8), (0, 12)), mode="reflect")
    direct = model(tensor(padded[None])).detach().numpy()[0, :, :80, :72]
    np.testing.assert_allclose(whole, direct, atol=1e-6)
    tiled = raw2rgb_image(model, raw, tile=16, margin=0)  # the first tile is its own pass
    first = model(tensor(np.pad(raw[:, :16, :16], ((0, 0), (0, 16), (0, 16)),
                                mode="symmetric")[None])).detach().numpy()[0, :, :32, :32]
    np.testing.assert_allclose(tiled[:, :32, :32], first, atol=1e-6)
    assert tiled.shape == whole.shape and 0 <= tiled.min() and tiled.max() <= 1
    with pytest.raises(ValueError, match="packed RAW"):
        raw2rgb_image(model, raw[:3])
    with pytest.raises(ValueError, match="tile"):
        raw2rgb_image(model, raw, tile=0)


def test_models_and_noise_settings():
    assert build_raw2rgb("pynet_narrow").width == 8
    with pytest.raises(ValueError, match="unknown RAW-to-RGB model 'unet'"):
        build_raw2rgb("unet")
    assert raw_noise(None) is None and raw_noise([0, 0]) is None
    assert raw_noise(DEFAULTS["raw_noise"]).a == (1e-2, 1e-2)
    with pytest.raises(ValueError, match="a, b >= 0"):
        raw_noise([-1, 0])
    with pytest.raises(ValueError, match="shot noise"):
        raw_noise([0, 1e-4])
