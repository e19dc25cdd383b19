"""``minicnn train --task raw2rgb``, ``eval`` and ``predict`` on RAW-to-RGB runs: the run
folder, PSNR recomputed with scikit-image, resume checks and one-line errors. The runs use
the recipe's own ``pynet_narrow`` on a few patches and small test crops (the recipe's
patch settings are shrunk here; the model and the command line are not)."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("skimage")
from skimage.metrics import peak_signal_noise_ratio  # noqa: E402

from minicnn.baselines import bilinear_raw_to_rgb  # noqa: E402
from minicnn.cli import main  # noqa: E402
from minicnn.data.photos import photo_names  # noqa: E402
from minicnn.models import load_weights  # noqa: E402
from minicnn.train import raw2rgb  # noqa: E402
from tests.helpers import cli_error  # noqa: E402

QUICK = ["--task", "raw2rgb", "--batch-size", "2", "--no-progress"]
FILES = ("config.json", "metrics.csv", "metrics.json", "figures/curves.png",
         "figures/raw2rgb.png")


@pytest.fixture(scope="module")
def small():
    """The recipe's patches shrunk: 4 patches of 64x64 per epoch, test crops of 64x64."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(raw2rgb.DEFAULTS, "num_patches", 4)
        mp.setitem(raw2rgb.DEFAULTS, "test_crop", 64)
        yield


@pytest.fixture(scope="module")
def base_run(small, tmp_path_factory):
    """A finished 1-epoch RAW-to-RGB run of pynet_narrow (tests use a copy)."""
    out = tmp_path_factory.mktemp("raw") / "run"
    assert main(["train", *QUICK, "--epochs", "1", "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_raw2rgb_run_folder_eval_and_predict(run2, tmp_path, capsys):
    run = run2
    for name in FILES:
        assert (run / name).stat().st_size > 0, name
    config = json.loads((run / "config.json").read_text())
    assert (config["task"], config["model"], config["data"]) == ("raw2rgb", "pynet_narrow",
                                                                 "photos")
    assert (config["patch_size"], config["num_patches"], config["test_crop"]) == (64, 4, 64)
    assert config["raw_noise"] == raw2rgb.DEFAULTS["raw_noise"] and config["linear"] is True
    assert config["lr"] == raw2rgb.DEFAULTS["lr"]  # the recipe's default, not classification's
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1"]
    # the run's PSNR is scikit-image's, of the saved weights on the same noisy test RAW
    model = raw2rgb.build_raw2rgb("pynet_narrow")
    load_weights(model, run / "checkpoints" / "epoch_001" / "model.safetensors")
    model.eval()
    _, test = raw2rgb.raw2rgb_data(num_patches=1, test_crop=64)
    trainer = raw2rgb.Raw2RGBTrainer(model, None, progress=False)
    outs = [trainer.denoise(test[i][0][None])[0] for i in range(len(test))]
    expected = np.mean([peak_signal_noise_ratio(test[i][1], out, data_range=1)
                        for i, out in enumerate(outs)])
    bilinear = np.mean([peak_signal_noise_ratio(
        test[i][1], bilinear_raw_to_rgb(test[i][0], linear=True), data_range=1)
        for i in range(len(test))])
    assert float(rows[-1]["val_psnr"]) == pytest.approx(expected, abs=1e-3)
    assert float(rows[-1]["baseline_psnr"]) == pytest.approx(bilinear, abs=1e-3)
    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"test PSNR {expected:.2f} dB" in out and f"bilinear demosaic {bilinear:.2f}" in out
    for name in photo_names("test", colour=True):
        assert f"  {name}: " in out
    # predict: the file is photographed by the run's camera and developed by the network
    rgb = np.random.default_rng(0).random((30, 45, 3))
    path = tmp_path / "photo.png"
    Image.fromarray(np.round(rgb * 255).astype(np.uint8)).save(path)
    assert main(["predict", str(run), str(path), "--out-dir", str(tmp_path / "out")]) == 0
    line = capsys.readouterr().out
    assert line.startswith(f"{path}: 44x30, simulated RAW developed by the network: PSNR")
    written = np.asarray(Image.open(tmp_path / "out" / "photo-raw2rgb.png"))
    assert written.shape == (30, 44, 3)  # the even part of the file
    truth = np.asarray(Image.open(path), dtype=np.float32).transpose(2, 0, 1) / 255
    raw = raw2rgb.simulate_file_raw(truth, config["raw_noise"], True, config["seed"])
    want = raw2rgb.raw2rgb_image(model, raw)
    assert np.abs(written.astype(np.float32) - np.round(want.transpose(1, 2, 0) * 255)).max() <= 1
    psnr_net = peak_signal_noise_ratio(truth[:, :, :44], want, data_range=1)
    assert f"PSNR {psnr_net:.2f} dB against the file" in line
    base = np.asarray(Image.open(tmp_path / "out" / "photo-bilinear.png"))
    assert base.shape == (30, 44, 3)
    # resume keeps the saved settings; other tasks' options are refused
    assert main(["train", "--resume", str(run), "--lr", "0.1"]) == 2
    assert "--lr 0.1: this run was trained with --lr 0.002" in cli_error(capsys)
    assert main(["train", "--resume", str(run), "--noise", "25"]) == 2
    assert "--noise is not an option of this run" in cli_error(capsys)
    assert main(["train", "--resume", str(run)]) == 2
    assert "already has all its 1 epochs" in cli_error(capsys)
    assert main(["predict", str(run), str(path), "--min-score", "0.5"]) == 2
    assert "--min-score is for detection and instance segmentation runs" in cli_error(capsys)
    (tmp_path / "text.png").write_text("not an image")
    assert main(["predict", str(run), str(tmp_path / "text.png")]) == 2
    assert "text.png" in cli_error(capsys)
    Image.fromarray(np.zeros((1, 5, 3), np.uint8)).save(tmp_path / "line.png")
    assert main(["predict", str(run), str(tmp_path / "line.png")]) == 2
    assert "line.png: an image of 5x1 pixels has no 2x2 Bayer cell" in cli_error(capsys)


@pytest.mark.parametrize("args, message", [
    (["--task", "raw2rgb", "--model", "dncnn"],
     "--model dncnn is a denoiser; --task raw2rgb needs a RAW-to-RGB network: pynet_narrow, "
     "pynet"),
    (["--model", "pynet_narrow", "--task", "denoise"],
     "--model pynet_narrow is a RAW-to-RGB network"),
    (["--task", "raw2rgb", "--data", "digits"], "--data is not an option of --task raw2rgb"),
    (["--model", "pynet_narrow", "--noise", "25"], "--noise is for --task denoise, not --task "
                                                   "raw2rgb"),
    (["--model", "pynet_narrow", "--hflip"], "--hflip is for --task classify, detect"),
])
def test_bad_raw2rgb_arguments_give_one_line(small, tmp_path, capsys, args, message):
    assert main(["train", *args, "--no-progress", "--out", str(tmp_path / "x")]) == 2
    assert message in cli_error(capsys)
    assert not (tmp_path / "x").exists()


def test_raw2rgb_is_a_task_with_its_models():
    from minicnn.cli import RECIPES, TASKS, _recipe_models

    assert "raw2rgb" in TASKS and RECIPES["raw2rgb"].default_data == "photos"
    models = _recipe_models()
    assert models["pynet_narrow"] == models["pynet"] == "raw2rgb"
