"""The super-resolution recipe: SuperResTrainer's metrics against scikit-image on the same
pixels, an untrained residual SRCNN equal to bicubic, a short training that lowers the loss
and writes the run folder's files. (Whether SRCNN beats bicubic on the photographs is a
measurement of the training job, not a unit test.)"""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import minicnn
from minicnn import optim
from minicnn.data import DataLoader
from minicnn.data.superres import SuperResImages
from minicnn.train.superres import SuperResTrainer, build_superres_model, upscale_image


def _stripes(n: int, size: int = 48, seed: int = 0) -> list[np.ndarray]:
    """Smooth random sinusoid images with sharp-ish detail bicubic blurs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        f = rng.uniform(3, 7, 2)
        phase = rng.uniform(0, 2 * np.pi, 2)
        img = 0.5 + 0.4 * np.sin(2 * np.pi * f[0] * xx + phase[0]) * np.cos(
            2 * np.pi * f[1] * yy + phase[1])
        out.append(img[None].astype(np.float32))
    return out


def _scores(sharp, image, b):
    s, i = sharp[0, b:-b, b:-b].astype(np.float64), image[0, b:-b, b:-b].astype(np.float64)
    return (peak_signal_noise_ratio(s, i, data_range=1),
            structural_similarity(s, i, data_range=1, gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False))


def test_evaluate_matches_skimage():
    minicnn.manual_seed(0)
    model = build_superres_model("srcnn")
    trainer = SuperResTrainer(model, optim.Adam(model.parameters(), 1e-3), scale=3,
                              progress=False)
    test = SuperResImages(_stripes(3, seed=1), 3)
    ev = trainer.evaluate(DataLoader(test, 2))
    assert ev["images"] == 3
    with minicnn.no_grad():
        outs = [np.clip(model.eval()(minicnn.tensor(b[None])).numpy()[0], 0, 1)
                for b, _ in test]
    net = np.mean([_scores(s, o, 3) for (_, s), o in zip(test, outs, strict=True)], axis=0)
    bic = np.mean([_scores(s, b, 3) for b, s in test], axis=0)
    np.testing.assert_allclose([ev["val_psnr"], ev["val_ssim"]], net, rtol=1e-5)
    np.testing.assert_allclose([ev["bicubic_psnr"], ev["bicubic_ssim"]], bic, rtol=1e-5)


def test_untrained_residual_srcnn_is_bicubic():
    minicnn.manual_seed(0)
    model = build_superres_model("srcnn")
    trainer = SuperResTrainer(model, optim.Adam(model.parameters()), scale=3, progress=False)
    ev = trainer.evaluate(DataLoader(SuperResImages(_stripes(2), 3), 1))
    assert ev["val_psnr"] == pytest.approx(ev["bicubic_psnr"], abs=1e-4)  # last layer zero
    assert ev["val_ssim"] == pytest.approx(ev["bicubic_ssim"], abs=1e-5)


@pytest.mark.slow
def test_short_training_lowers_the_loss(tmp_path):
    minicnn.manual_seed(1)
    model = build_superres_model("srcnn")
    opt = optim.Adam(model.parameters(), 1e-3)
    train = SuperResImages(_stripes(4, size=30), 3)  # fixed images: a comparable loss
    test = SuperResImages(_stripes(2, seed=5), 3)
    trainer = SuperResTrainer(model, opt, scale=3, run_dir=tmp_path, progress=False)
    history = trainer.fit(DataLoader(train, 1), DataLoader(test, 1), epochs=8)
    last = history[-1]
    assert last["train_loss"] < history[0]["train_loss"]
    final = json.loads((tmp_path / "metrics.json").read_text())["final"]
    assert final["val_psnr"] == pytest.approx(last["val_psnr"])
    assert (tmp_path / "figures" / "curves.png").is_file()


def test_bad_arguments():
    model = build_superres_model()
    with pytest.raises(ValueError, match="unknown super-resolution model 'vdsr'"):
        build_superres_model("vdsr")
    with pytest.raises(ValueError, match="SuperResTrainer: scale must be an integer >= 2"):
        SuperResTrainer(model, optim.Adam(model.parameters()), scale=1)


def _torch_bicubic(image: np.ndarray, scale: int) -> np.ndarray:
    """PyTorch's bicubic enlargement of ``(C, H, W)`` (the reference)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
    return torch.nn.functional.interpolate(x, scale_factor=scale, mode="bicubic",
                                           align_corners=False)[0].numpy()


def test_untrained_upscale_is_bicubic_for_a_grey_image():
    """A residual SRCNN starts as the identity: upscale_image is then PyTorch's bicubic (Y is
    an affine map of a grey value, bicubic weights sum to 1)."""
    minicnn.manual_seed(0)
    model = build_superres_model().eval()
    grey = np.random.default_rng(0).uniform(0.1, 0.9, (1, 11, 14)).astype(np.float32)
    big = upscale_image(model, grey, 3)
    assert big.shape == (1, 33, 42) and big.dtype == np.float32
    np.testing.assert_allclose(big, np.clip(_torch_bicubic(grey, 3), 0, 1), atol=1e-5)


def test_upscale_colour_network_on_y_bicubic_on_cbcr():
    """RGB -> YCbCr (scikit-image), bicubic (PyTorch), the network on Y, back to RGB."""
    from skimage.color import rgb2ycbcr, ycbcr2rgb

    minicnn.manual_seed(0)
    model = build_superres_model().eval()
    for p in model.parameters():  # a network that changes Y
        p.data.numpy()[:] = np.random.default_rng(1).standard_normal(p.shape) * 0.05
    rgb = np.random.default_rng(2).uniform(0, 1, (3, 9, 10)).astype(np.float32)
    ycbcr = rgb2ycbcr(rgb.transpose(1, 2, 0)).transpose(2, 0, 1) / 255
    up = np.clip(_torch_bicubic(ycbcr, 2), 0, 1)
    with minicnn.no_grad():
        y = model(minicnn.tensor(up[None, :1].astype(np.float32))).numpy()[0]
    want = ycbcr2rgb((np.concatenate([np.clip(y, 0, 1), up[1:]]) * 255).transpose(1, 2, 0))
    big = upscale_image(model, rgb, 2)
    assert big.shape == (3, 18, 20)
    np.testing.assert_allclose(big, np.clip(want.transpose(2, 0, 1), 0, 1), atol=1e-5)
    assert np.abs(y - up[:1]).max() > 0.01  # the network did change Y
    with pytest.raises(ValueError, match=r"image must be \(C, H, W\) with C = 1 or 3"):
        upscale_image(model, rgb[:2], 2)
    with pytest.raises(ValueError, match="upscale_image: scale must be an integer >= 2"):
        upscale_image(model, rgb, 1)


def test_train_help_gives_the_recipe_defaults(capsys):
    """minicnn train --help states the recipe's defaults (its text is written out, not
    imported: this keeps them in step)."""
    from minicnn.cli import main as cli_main
    from minicnn.train import superres

    with pytest.raises(SystemExit):
        cli_main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    d = superres.DEFAULTS
    assert f"--task superres: {d['epochs']} of {d['num_patches']} patches" in text
    assert f"--task superres: {d['batch_size']})" in text
    assert f"superres: {d['lr']:g})" in text
    assert "--scale N" in text
