"""``minicnn train --task denoise``, ``eval`` and ``predict`` on denoising runs: the run
folder, PSNR recomputed with scikit-image, resume checks and one-line errors. The runs use
the recipe's own ``dncnn`` on few small patches and small test crops (the recipe's patch
settings are shrunk here; the model and the command line are not)."""

import csv
import json
import shutil

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("skimage")
pytest.importorskip("pywt")
from skimage.metrics import peak_signal_noise_ratio  # noqa: E402

from minicnn.cli import main  # noqa: E402
from minicnn.data.photos import photo_names  # noqa: E402
from minicnn.models import load_weights  # noqa: E402
from minicnn.train import denoise  # noqa: E402
from tests.helpers import cli_error  # noqa: E402

QUICK = ["--task", "denoise", "--batch-size", "8", "--no-progress"]
FILES = ("config.json", "metrics.csv", "metrics.json", "figures/curves.png",
         "figures/denoising.png")


@pytest.fixture(scope="module")
def small():
    """The recipe's patches shrunk: 16 patches of 16x16 per epoch, test crops of 24x24."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(denoise.DEFAULTS, "num_patches", 16)
        mp.setitem(denoise.DEFAULTS, "patch_size", 16)
        mp.setitem(denoise.DEFAULTS, "test_crop", 24)
        yield


@pytest.fixture(scope="module")
def base_run(small, tmp_path_factory):
    """A finished 2-epoch denoising run of dncnn at sigma 30 (tests use a copy)."""
    out = tmp_path_factory.mktemp("den") / "run"
    assert main(["train", *QUICK, "--epochs", "2", "--noise", "30", "--out", str(out)]) == 0
    return out


@pytest.fixture
def run(base_run, tmp_path):
    shutil.copytree(base_run, tmp_path / "run")
    return tmp_path / "run"


@pytest.mark.slow
def test_denoise_run_folder_eval_and_predict(run, tmp_path, capsys):
    for name in FILES:
        assert (run / name).stat().st_size > 0, name
    config = json.loads((run / "config.json").read_text())
    assert (config["task"], config["model"], config["data"]) == ("denoise", "dncnn", "photos")
    assert config["noise"] == 30 and config["in_channels"] == 1
    assert (config["patch_size"], config["num_patches"], config["test_crop"]) == (16, 16, 24)
    assert config["lr"] == denoise.DEFAULTS["lr"]  # the recipe's default, not classification's
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    # the run's PSNR is scikit-image's, of the saved weights on the same noisy test crops
    model = denoise.build_denoiser("dncnn")
    load_weights(model, run / "checkpoints" / "epoch_002" / "model.safetensors")
    model.eval()
    _, test = denoise.denoise_data(30, patch_size=16, num_patches=1, test_crop=24)
    trainer = denoise.DenoiseTrainer(model, None, progress=False)
    expected = np.mean([peak_signal_noise_ratio(test[i][1], trainer.denoise(test[i][0][None])[0],
                                                data_range=1) for i in range(len(test))])
    assert float(rows[-1]["val_psnr"]) == pytest.approx(expected, abs=1e-3)
    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"test PSNR {expected:.2f} dB" in out and "noise sigma 30" in out
    for name in photo_names("test"):
        assert f"  {name}: " in out
    # predict writes the denoised image at the file's size, equal to the model's output
    rng = np.random.default_rng(0)
    clean = np.tile(np.linspace(0.2, 0.8, 37, dtype=np.float32), (29, 1))
    noisy = np.clip(clean + rng.standard_normal(clean.shape) * 30 / 255, 0, 1)
    path = tmp_path / "noisy.png"
    Image.fromarray(np.round(noisy * 255).astype(np.uint8)).save(path)
    assert main(["predict", str(run), str(path), "--out-dir", str(tmp_path / "out")]) == 0
    line = capsys.readouterr().out
    assert line.startswith(f"{path}: 37x29 grey, removed noise of standard deviation")
    written = np.asarray(Image.open(tmp_path / "out" / "noisy-denoised.png"))
    assert written.shape == (29, 37)
    read = np.round(noisy * 255).astype(np.float32)[None, None] / 255
    want = np.clip(trainer.denoise(read)[0, 0], 0, 1)
    assert np.abs(written.astype(np.float32) - np.round(want * 255)).max() <= 1
    # resume keeps the saved settings; other tasks' options are refused
    assert main(["train", "--resume", str(run), "--noise", "50"]) == 2
    assert "--noise 50.0: this run was trained with --noise 30.0" in cli_error(capsys)
    assert main(["train", "--resume", str(run), "--hflip"]) == 2
    assert "--hflip is not an option of this run" in cli_error(capsys)
    assert main(["train", "--resume", str(run)]) == 2
    assert "already has all its 2 epochs" in cli_error(capsys)
    assert main(["predict", str(run), str(path), "--invert", "yes"]) == 2
    assert "--invert is for classification runs" in cli_error(capsys)
    (tmp_path / "text.png").write_text("not an image")
    assert main(["predict", str(run), str(tmp_path / "text.png")]) == 2
    assert "text.png" in cli_error(capsys)


def test_denoise_image_in_strips_equals_one_pass():
    """A tall image goes through the model in strips with context: the same result."""
    import minicnn

    minicnn.manual_seed(0)
    model = denoise.build_denoiser("dncnn").eval()
    image = np.random.default_rng(1).random((1, 45, 20), dtype=np.float32)
    whole = denoise.denoise_image(model, image, rows=1000)
    with minicnn.no_grad():
        direct = np.clip(model(minicnn.tensor(image[None])).numpy()[0], 0, 1)
    np.testing.assert_allclose(whole, direct, atol=1e-6)
    np.testing.assert_allclose(denoise.denoise_image(model, image, rows=7), whole, atol=1e-5)
    with pytest.raises(ValueError, match=r"image must be \(C, H, W\)"):
        denoise.denoise_image(model, image[0])


@pytest.mark.parametrize("args, message", [
    (["--task", "denoise", "--model", "small_resnet"],
     "--model small_resnet is a classification model; --task denoise needs a denoiser: dncnn"),
    (["--model", "dncnn", "--task", "classify"], "--model dncnn is a denoiser"),
    (["--task", "denoise", "--data", "digits"], "--data is not an option of --task denoise"),
    (["--model", "dncnn", "--hflip"], "--hflip is for --task classify, detect, segment"),
    (["--model", "dncnn", "--subset", "3"], "--subset is for --task classify"),
    (["--model", "dncnn", "--noise", "0"], "--noise must be in (0, 255]"),
    (["--model", "small_resnet", "--noise", "25"], "--noise is for --task denoise, not --task "
                                                   "classify"),
    (["--task", "segment", "--noise", "25"], "--noise is for --task denoise"),
])
def test_bad_denoise_arguments_give_one_line(small, tmp_path, capsys, args, message):
    assert main(["train", *args, "--no-progress", "--out", str(tmp_path / "x")]) == 2
    assert message in cli_error(capsys)
    assert not (tmp_path / "x").exists()
