"""``minicnn train --task superres``, ``eval``, ``predict`` and ``upscale`` on
super-resolution runs: the run folder, PSNR recomputed with scikit-image, the enlarged files
against PyTorch's bicubic and scikit-image's YCbCr, and one-line errors. The runs use the
recipe's own ``srcnn`` on few small patches and small test crops (the recipe's patch
settings are shrunk here; the model and the command line are not)."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("skimage")
from skimage.metrics import peak_signal_noise_ratio  # noqa: E402

import minicnn  # noqa: E402
from minicnn.cli import main  # noqa: E402
from minicnn.data.photos import photo_names  # noqa: E402
from minicnn.models import load_weights  # noqa: E402
from minicnn.train import superres  # noqa: E402
from tests.helpers import cli_error  # noqa: E402

QUICK = ["--task", "superres", "--batch-size", "8", "--no-progress"]
FILES = ("config.json", "metrics.csv", "metrics.json", "figures/curves.png",
         "figures/superres.png")


@pytest.fixture(scope="module")
def small():
    """The recipe's patches shrunk: 16 patches of 15x15 per epoch, test crops of 24x24."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(superres.DEFAULTS, "num_patches", 16)
        mp.setitem(superres.DEFAULTS, "patch_size", 15)
        mp.setitem(superres.DEFAULTS, "test_crop", 24)
        yield


@pytest.fixture(scope="module")
def base_run(small, tmp_path_factory):
    """A finished 2-epoch x3 super-resolution run of srcnn (tests use a copy: run2)."""
    out = tmp_path_factory.mktemp("sr") / "run"
    assert main(["train", *QUICK, "--epochs", "2", "--scale", "3", "--out", str(out)]) == 0
    return out


def _model(run):
    model = superres.build_superres_model("srcnn")
    load_weights(model, run / "checkpoints" / "epoch_002" / "model.safetensors")
    return model.eval()


def _png(path, pixels):
    Image.fromarray(pixels).save(path)
    return path


@pytest.mark.slow
def test_superres_run_folder_eval_and_predict(run2, tmp_path, capsys):
    run = run2
    for name in FILES:
        assert (run / name).stat().st_size > 0, name
    config = json.loads((run / "config.json").read_text())
    assert (config["task"], config["model"], config["data"]) == ("superres", "srcnn", "photos")
    assert config["scale"] == 3 and config["in_channels"] == 1
    assert (config["patch_size"], config["num_patches"], config["test_crop"]) == (15, 16, 24)
    assert config["lr"] == superres.DEFAULTS["lr"]  # the recipe's default
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    # the run's PSNR is scikit-image's, of the saved weights on the test crops' Y channel,
    # without a border of 3 pixels; bicubic's too
    model = _model(run)
    _, test = superres.superres_data(3, 15, 1, 24)
    net, bic = [], []
    for blurry, sharp in test:
        with minicnn.no_grad():
            out = np.clip(model(minicnn.tensor(blurry[None])).numpy()[0], 0, 1)
        inner = (0, slice(3, -3), slice(3, -3))
        net.append(peak_signal_noise_ratio(sharp[inner], out[inner], data_range=1))
        bic.append(peak_signal_noise_ratio(sharp[inner], blurry[inner], data_range=1))
    assert float(rows[-1]["val_psnr"]) == pytest.approx(np.mean(net), abs=1e-3)
    assert float(rows[-1]["bicubic_psnr"]) == pytest.approx(np.mean(bic), abs=1e-3)
    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"x3 test PSNR {np.mean(net):.2f} dB" in out and f"bicubic {np.mean(bic):.2f}" in out
    for name in photo_names("test"):
        assert f"  {name}: " in out
    # predict enlarges a grey file 3 times, as the library function does
    rng = np.random.default_rng(0)
    grey = rng.integers(30, 220, (13, 17), dtype=np.uint8)
    path = _png(tmp_path / "small.png", grey)
    assert main(["predict", str(run), str(path), "--out-dir", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: 17x13 -> 51x39 (x3)")
    written = np.asarray(Image.open(tmp_path / "out" / "small-upscaled.png"))
    want = superres.upscale_image(model, grey[None].astype(np.float32) / 255, 3)[0]
    assert written.shape == (39, 51)
    assert np.abs(written.astype(np.float32) - np.round(want * 255)).max() <= 1
    # resume keeps the saved settings; other tasks' options are refused
    assert main(["train", "--resume", str(run), "--scale", "2"]) == 2
    assert "--scale 2: this run was trained with --scale 3" in cli_error(capsys)
    assert main(["train", "--resume", str(run), "--noise", "25"]) == 2
    assert "--noise is not an option of this run" in cli_error(capsys)
    assert main(["train", "--resume", str(run)]) == 2
    assert "already has all its 2 epochs" in cli_error(capsys)


@pytest.mark.slow
def test_upscale_command(run2, tmp_path, capsys):
    """minicnn upscale: a colour file, the network on Y, bicubic on CbCr (scikit-image's
    YCbCr, PyTorch's bicubic); a grey file stays grey; one-line errors."""
    import torch
    from skimage.color import rgb2ycbcr, ycbcr2rgb

    run = run2
    rgb = np.random.default_rng(1).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    src = _png(tmp_path / "photo.png", rgb)
    dst = tmp_path / "big" / "photo-x3.png"
    capsys.readouterr()
    assert main(["upscale", str(src), str(dst), "--run", str(run)]) == 0
    assert capsys.readouterr().out.startswith(f"{src}: 12x10 -> 36x30 (x3, srcnn on Y")
    written = np.asarray(Image.open(dst)).astype(np.float32)
    assert written.shape == (30, 36, 3)
    ycbcr = torch.from_numpy(rgb2ycbcr(rgb).transpose(2, 0, 1)[None].astype(np.float32) / 255)
    up = torch.nn.functional.interpolate(ycbcr, scale_factor=3, mode="bicubic")[0].numpy()
    up = np.clip(up, 0, 1)
    with minicnn.no_grad():
        y = np.clip(_model(run)(minicnn.tensor(up[None, :1])).numpy()[0], 0, 1)
    want = ycbcr2rgb((np.concatenate([y, up[1:]]) * 255).transpose(1, 2, 0))
    assert np.abs(written - np.round(np.clip(want, 0, 1) * 255)).max() <= 1
    # a grey file stays grey; another format by the suffix
    grey = _png(tmp_path / "grey.png", rgb[..., 0])
    assert main(["upscale", str(grey), str(tmp_path / "grey.jpg"), "--run", str(run),
                 "--scale", "3"]) == 0
    with Image.open(tmp_path / "grey.jpg") as im:
        assert (im.format, im.mode, im.size) == ("JPEG", "L", (36, 30))
    # bad input: one line naming the argument or the file; nothing is written
    (tmp_path / "text.png").write_text("not an image")
    cases = [
        (["upscale", str(tmp_path / "text.png"), str(tmp_path / "o.png"), "--run", str(run)],
         "text.png"),
        (["upscale", str(tmp_path / "none.png"), str(tmp_path / "o.png"), "--run", str(run)],
         "none.png: no such file"),
        (["upscale", str(src), str(tmp_path / "o.png"), "--run", str(run), "--scale", "0"],
         "--scale must be an integer from 2 to 8 (the upscaling factor), got 0"),
        (["upscale", str(src), str(tmp_path / "o.png"), "--run", str(run), "--scale", "2"],
         f"--scale 2: the run {run} was trained for x3"),
        (["upscale", str(src), str(tmp_path / "o.xyz"), "--run", str(run)],
         "o.xyz: unknown image format '.xyz'"),
        (["upscale", str(src), str(tmp_path / "o.png"), "--run", str(tmp_path)],
         "not a run folder"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in cli_error(capsys)
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "o.xyz").exists()


@pytest.mark.parametrize("args, message", [
    (["--task", "superres", "--model", "dncnn"],
     "--model dncnn is a denoiser; --task superres needs a super-resolution model: srcnn"),
    (["--model", "srcnn", "--task", "classify"], "--model srcnn is a super-resolution model"),
    (["--task", "superres", "--data", "digits"], "--data is not an option of --task superres"),
    (["--model", "srcnn", "--scale", "1"], "--scale must be an integer from 2 to 8"),
    (["--model", "srcnn", "--scale", "9"], "--scale must be an integer from 2 to 8"),
    (["--model", "srcnn", "--noise", "25"], "--noise is for --task denoise, not --task superres"),
    (["--task", "denoise", "--scale", "3"], "--scale is for --task superres, not --task denoise"),
])
def test_bad_superres_arguments_give_one_line(small, tmp_path, capsys, args, message):
    assert main(["train", *args, "--no-progress", "--out", str(tmp_path / "x")]) == 2
    assert message in cli_error(capsys)
    assert not (tmp_path / "x").exists()

