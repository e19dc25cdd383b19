"""``minicnn train --task segment``, ``eval`` and ``predict`` on segmentation runs: the run
folder, the metrics against scikit-learn, resume, and one-line errors. The plumbing runs
with a tiny U-Net (registered for these tests only) on a few small scenes."""

import csv
import json
import shutil

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import jaccard_score

from minicnn.cli import main
from minicnn.models.segmentation import unet
from minicnn.serialization import load_arrays
from minicnn.train import segment
from tests.helpers import cli_error

TINY = ["--model", "tiny_unet", "--subset", "12", "--batch-size", "6", "--image-size", "32",
        "--no-progress"]
FILES = ("config.json", "metrics.csv", "metrics.json", "figures/curves.png",
         "figures/segmentations.png")


def tiny_unet(num_classes: int, in_channels: int):
    return unet(in_channels, num_classes, base_width=4, depth=2, padding="same",
                batch_norm=True)


@pytest.fixture(scope="module")
def tiny():
    """Make ``--model tiny_unet`` a segmenter of the recipe for this module's tests."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(segment.SEGMENTERS, "tiny_unet", tiny_unet)
        yield


@pytest.fixture(scope="module")
def base_run(tiny, tmp_path_factory):
    """A finished 2-epoch segmentation run (tests use a copy)."""
    out = tmp_path_factory.mktemp("seg") / "run"
    assert main(["train", *TINY, "--epochs", "2", "--out", str(out)]) == 0
    return out


def test_segment_run_folder_metrics_eval_and_predict(run2, tmp_path, capsys):
    for name in FILES:
        assert (run2 / name).is_file(), name
    config = json.loads((run2 / "config.json").read_text())
    assert (config["task"], config["data"]) == ("segment", "shapes")
    assert config["classes"] == ["__background__", "circle", "square", "triangle", "cross"]
    assert config["num_classes"] == 5 and config["image_size"] == [32, 32]
    assert config["lr"] == segment.DEFAULTS["lr"]  # the recipe's default, not classification's
    rows = list(csv.DictReader((run2 / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    for r in rows:
        assert 0 <= float(r["val_miou"]) <= float(r["val_dice"]) <= 1  # Dice >= IoU per class
    final = json.loads((run2 / "metrics.json").read_text())["final"]
    assert final["val_miou"] == pytest.approx(float(rows[-1]["val_miou"]))
    # the run's mIoU is scikit-learn's over the classes present in truth or prediction
    from minicnn.data import load_data
    from minicnn.models import load_weights

    _, test = load_data("shapes", subset=12, image_size=32, task="segment")
    model = tiny_unet(5, 3)
    load_weights(model, run2 / "checkpoints" / "epoch_002" / "model.safetensors")
    images = np.stack([test[i][0] for i in range(len(test))])
    truth = np.stack([test[i][1] for i in range(len(test))]).ravel()
    pred = segment.predict_masks(model, images).ravel()
    present = np.union1d(truth, pred)
    expected = jaccard_score(truth, pred, labels=present, average=None).mean()
    assert final["val_miou"] == pytest.approx(expected, rel=1e-9)
    capsys.readouterr()
    # eval measures the same on the same test scenes with the saved weights
    assert main(["eval", str(run2)]) == 0
    out = capsys.readouterr().out
    assert f"test mIoU {expected:.4f}" in out and "on 12 scenes" in out
    assert "IoU per class: __background__" in out
    # predict lays the mask over a copy of each image, at the file's size
    from minicnn.data import shape_scenes

    image, _ = shape_scenes(False, n=1, size=48)[0]
    path = tmp_path / "scene.png"
    Image.fromarray((image.transpose(1, 2, 0) * 255).astype(np.uint8)).save(path)
    assert main(["predict", str(run2), str(path), "--out-dir", str(tmp_path / "drawn")]) == 0
    line = capsys.readouterr().out
    assert line.startswith(f"{path}: ") and "of the pixels; drawn in" in line
    drawn = Image.open(tmp_path / "drawn" / "scene-segmentation.png")
    assert min(drawn.size) >= 48


@pytest.mark.slow
def test_segment_resume_after_a_kill_equals_the_uninterrupted_run(run2, tmp_path, capsys):
    run = tmp_path / "killed"
    shutil.copytree(run2, run)
    shutil.rmtree(run / "checkpoints" / "epoch_002")
    (run / "checkpoints" / "latest.json").write_text(json.dumps({"latest": "epoch_001"}))
    shutil.rmtree(run / "figures")
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    a = load_arrays(run2 / "checkpoints" / "epoch_002" / "model.safetensors")
    b = load_arrays(run / "checkpoints" / "epoch_002" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    for name in FILES:
        assert (run / name).is_file(), name
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 2
    assert "already has all its 2 epochs" in cli_error(capsys)
    assert main(["train", "--resume", str(run), "--image-size", "48"]) == 2
    assert "--image-size 48: this run was trained with --image-size 32" in cli_error(capsys)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "segment", "--model", "lenet"],
         "--model lenet is a classification model; --task segment needs a segmenter: unet"),
        (["--task", "detect", "--model", "unet"],
         "--model unet is a segmenter; --task detect needs a detector"),
        (["--task", "classify", "--model", "resunet"],
         "--model resunet is a segmenter; --task classify needs a classification model"),
        (["--task", "segment", "--data", "digits"], "--data digits has no segment targets"),
        (["--task", "segment", "--crop-padding", "1"], "--crop-padding is for classification"),
        (["--task", "segment", "--image-size", "8"], "--image-size must be at least 16"),
        (["--model", "unet", "--data", "digit_scenes", "--image-size", "16"],
         "--data digit_scenes: DigitScenes: digits enlarged up to 3.0x"),
        (["--model", "deconvnet", "--image-size", "48"],
         "--model deconvnet cannot take the images of --data shapes (shape [3, 48, 48])"),
    ],
)
def test_bad_segment_arguments_give_one_line(tiny, tmp_path, capsys, args, message):
    out = tmp_path / "never"
    code = None
    try:
        code = main(["train", *args, "--out", str(out), "--no-progress", "--subset", "2"])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    assert code == 2
    assert message in cli_error(capsys)
    assert not out.exists()


def test_segment_predict_refuses_the_options_of_other_tasks(run2, tmp_path, capsys):
    path = tmp_path / "x.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(path)
    capsys.readouterr()
    assert main(["predict", str(run2), str(path), "--invert", "yes"]) == 2
    assert "--invert is for classification runs" in cli_error(capsys)
    assert main(["predict", str(run2), str(path), "--min-score", "0.5"]) == 2
    assert "--min-score is for detection and instance segmentation runs" in cli_error(capsys)


@pytest.mark.slow
def test_default_segmenter_and_data_follow_from_the_task(monkeypatch, tmp_path, capsys):
    """--task segment alone trains the recipe's unet on shapes (a tiny run: its width is
    shrunk here, the recipe and the command line are not)."""
    monkeypatch.setitem(segment.SEGMENTERS, "unet", tiny_unet)
    out = tmp_path / "unet"
    assert main(["train", "--task", "segment", "--subset", "4", "--batch-size", "4", "--epochs",
                 "1", "--image-size", "16", "--no-progress", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["model"], config["data"], config["task"]) == ("unet", "shapes", "segment")
    assert config["epochs"] == 1 and config["batch_size"] == 4
    assert "test mIoU" in capsys.readouterr().out
