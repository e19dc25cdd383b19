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
    assert config["lr"] == denoise.DEFAULTS["lr"]
    # the recipe's defaults, not classification's (5e-4; its lr is 0.01 too)
    assert config["weight_decay"] == denoise.DEFAULTS["weight_decay"] == 0.0
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
    # a noise-aware model on 2x2 pixel-unshuffled input: strips aligned to its blocks
    aware = denoise.build_denoiser("noise_aware").eval()
    for p in aware.parameters():  # the last convolution starts at zero: give it weights
        p.data[...] = np.random.default_rng(2).normal(0, 0.05, p.shape)
    whole = denoise.denoise_image(aware, image, rows=1000, noise_level=0.1)
    with minicnn.no_grad():
        direct = np.clip(aware(minicnn.tensor(image[None]), 0.1).numpy()[0], 0, 1)
    np.testing.assert_allclose(whole, direct, atol=1e-6)
    assert np.abs(whole - np.clip(image, 0, 1)).max() > 1e-3
    np.testing.assert_allclose(denoise.denoise_image(aware, image, rows=7, noise_level=0.1),
                               whole, atol=1e-5)
    with pytest.raises(ValueError, match="noise_level must be a positive number"):
        denoise.denoise_image(aware, image, noise_level=0.0)


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


# ---------------------------------------------------------------- minicnn denoise


def _noisy_png(path, sigma: float, colour: bool = False, seed: int = 0) -> np.ndarray:
    """A smooth ramp with Gaussian noise of ``sigma`` (0-255) written as an 8-bit PNG;
    returns what a reader gets back, (C, H, W) in [0, 1]."""
    rng = np.random.default_rng(seed)
    clean = np.tile(np.linspace(0.2, 0.8, 37, dtype=np.float32), (29, 1))
    shape = (*clean.shape, 3) if colour else clean.shape
    clean = clean[..., None] * np.array([1.0, 0.8, 0.6]) if colour else clean
    noisy = np.round(np.clip(clean + rng.standard_normal(shape) * sigma / 255, 0, 1) * 255)
    Image.fromarray(noisy.astype(np.uint8)).save(path)
    pixels = noisy.astype(np.float32) / 255
    return pixels.transpose(2, 0, 1) if colour else pixels[None]


def _network(model, noisy: np.ndarray, *noise_map) -> np.ndarray:
    """The model's output on (C, H, W), by one direct pass, clipped and as 8 bits."""
    import minicnn

    model.eval()
    with minicnn.no_grad():
        out = model(minicnn.tensor(noisy[None]), *noise_map).numpy()[0]
    return np.round(np.clip(out, 0, 1) * 255)


@pytest.mark.slow
def test_denoise_command_applies_the_run(run, tmp_path, capsys):
    """`minicnn denoise IN OUT --run RUN` writes the network's output (equal to one direct
    pass of the saved weights) in OUT's format, atomically; bad input gives one line."""
    model = denoise.build_denoiser("dncnn")
    load_weights(model, run / "checkpoints" / "epoch_002" / "model.safetensors")
    noisy = _noisy_png(tmp_path / "in.png", 30)
    for name in ("out.png", "out.tif"):
        assert main(["denoise", str(tmp_path / "in.png"), str(tmp_path / name),
                     "--run", str(run)]) == 0
        line = capsys.readouterr().out
        assert line.startswith(f"{tmp_path / 'in.png'}: 37x29 grey, noise sigma 30 (the run's)")
        written = np.asarray(Image.open(tmp_path / name))
        assert written.shape == (29, 37)
        assert np.abs(written - _network(model, noisy)[0]).max() <= 1
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind
    # errors: one line naming the file or the option
    _noisy_png(tmp_path / "colour.png", 30, colour=True)
    (tmp_path / "text.png").write_text("not an image")
    cases = [
        (["colour.png", "o.png"], "colour.png: a colour image (3 channels); the run's dncnn "
                                  "denoises grey images (1 channel)"),
        (["text.png", "o.png"], "text.png"),
        (["missing.png", "o.png"], "missing.png: no such file"),
        (["in.png", "o.unknown"], "o.unknown: unknown image format '.unknown'"),
        (["in.png", "o.png", "--noise", "50"], "--noise 50: the run's dncnn removes the noise it "
                                               "was trained for (sigma 30)"),
        (["in.png", "o.png", "--noise", "0"], "--noise must be in (0, 255]"),
    ]
    for argv, message in cases:
        files = [str(tmp_path / a) for a in argv[:2]]
        assert main(["denoise", *files, "--run", str(run), *argv[2:]]) == 2, argv
        assert message in cli_error(capsys), argv
        assert not (tmp_path / "o.png").exists()
    assert main(["denoise", files[0], files[1], "--run", str(tmp_path)]) == 2
    assert "not a run folder" in cli_error(capsys)


@pytest.mark.slow
def test_noise_aware_run_eval_at_other_levels_and_denoise(small, tmp_path, capsys):
    """A noise-aware run trains on a range of levels, is evaluated at any --noise (PSNR
    recomputed with scikit-image), and `minicnn denoise` tells it the given or estimated
    sigma."""
    from skimage.restoration import estimate_sigma

    import minicnn

    run = tmp_path / "aware"
    assert main(["train", *QUICK, "--model", "noise_aware", "--epochs", "1", "--out",
                 str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["noise_range"] == list(denoise.NOISE_RANGE) and config["noise"] == 25
    model = denoise.build_denoiser("noise_aware")
    load_weights(model, run / "checkpoints" / "epoch_001" / "model.safetensors")
    model.eval()
    capsys.readouterr()
    assert main(["eval", str(run), "--noise", "10"]) == 0
    out = capsys.readouterr().out
    _, test = denoise.denoise_data(10, patch_size=16, num_patches=1, test_crop=24,
                                   noise_map=True)
    scores = []
    for (noisy, noise_map), clean in (test[i] for i in range(len(test))):
        assert np.allclose(noise_map, 10 / 255)
        with minicnn.no_grad():
            den = model(minicnn.tensor(noisy[None]), minicnn.tensor(noise_map[None])).numpy()
        scores.append(peak_signal_noise_ratio(clean, den[0], data_range=1))
    assert f"test PSNR {np.mean(scores):.2f} dB" in out
    assert "noise sigma 10 (trained on sigma in [5.0, 55.0])" in out
    noisy = _noisy_png(tmp_path / "in.png", 20)
    assert main(["denoise", str(tmp_path / "in.png"), str(tmp_path / "o.png"), "--run",
                 str(run), "--noise", "20"]) == 0
    assert "noise sigma 20 (given)" in capsys.readouterr().out
    written = np.asarray(Image.open(tmp_path / "o.png"))
    assert np.abs(written - _network(model, noisy, 20 / 255)[0]).max() <= 1
    assert main(["denoise", str(tmp_path / "in.png"), str(tmp_path / "o.png"), "--run",
                 str(run)]) == 0
    sigma = 255 * estimate_sigma(noisy[0])
    assert f"noise sigma {sigma:g} (estimated)" in capsys.readouterr().out
    written = np.asarray(Image.open(tmp_path / "o.png"))
    assert np.abs(written - _network(model, noisy, sigma / 255)[0]).max() <= 1
    assert main(["eval", str(run), "--noise", "300"]) == 2
    assert "--noise must be in (0, 255]" in cli_error(capsys)


def test_noise_aware_trains_its_own_default_epochs():
    """--model noise_aware takes the recipe's MODEL_DEFAULTS over DEFAULTS (its epochs), the
    help says so, and an --epochs given still wins."""
    from minicnn.cli import _given_options, _recipe_defaults, make_parser

    epochs = denoise.MODEL_DEFAULTS["noise_aware"]["epochs"]
    assert epochs != denoise.DEFAULTS["epochs"]
    for argv, expected in ((["train", "--model", "noise_aware"], epochs),
                           (["train", "--model", "dncnn"], denoise.DEFAULTS["epochs"]),
                           (["train", "--model", "noise_aware", "--epochs", "3"], 3)):
        args = make_parser().parse_args(argv)
        _recipe_defaults("denoise", args, _given_options(argv))
        assert args.epochs == expected, argv
    train = next(a for a in make_parser()._actions if a.dest == "command").choices["train"]
    assert f"--model noise_aware: {epochs};" in " ".join(train.format_help().split())
