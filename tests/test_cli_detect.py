"""``minicnn train --task detect``, ``eval`` and ``predict`` on detection runs: the run
folder, resume, and one-line errors. The plumbing runs with a tiny test-only detector
(tests/train/tiny_detector.py) on a few small scenes; one run uses the default detector."""

import csv
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from minicnn.cli import main
from minicnn.serialization import load_arrays
from minicnn.train import detect
from tests.helpers import cli_error
from tests.train.tiny_detector import tiny_detector

TINY = ["--model", "tiny_detector", "--subset", "16", "--batch-size", "8", "--image-size", "32",
        "--no-progress"]
FILES = ("config.json", "metrics.csv", "metrics.json", "figures/curves.png",
         "figures/detections.png", "figures/precision_recall.png")


@pytest.fixture(scope="module")
def tiny():
    """Make ``--model tiny_detector`` a detector of the recipe for this module's tests."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(detect.DETECTORS, "tiny_detector", False)
        real = detect.detector_constructor
        mp.setattr(detect, "detector_constructor",
                   lambda name: tiny_detector if name == "tiny_detector" else real(name))
        yield


@pytest.fixture(scope="module")
def base_run(tiny, tmp_path_factory):
    """A finished 2-epoch detection run (tests use a copy)."""
    out = tmp_path_factory.mktemp("det") / "run"
    assert main(["train", *TINY, "--epochs", "2", "--out", str(out)]) == 0
    return out


def test_detect_run_folder_metrics_eval_and_predict(run2, tmp_path, capsys):
    for name in FILES:
        assert (run2 / name).is_file(), name
    config = json.loads((run2 / "config.json").read_text())
    assert config["task"] == "detect" and config["data"] == "digit_scenes"
    assert config["classes"][0] == "__background__" and config["num_classes"] == 10
    assert config["image_size"] == [32, 32] and config["batch_size"] == 8
    assert config["lr"] == detect.DEFAULTS["lr"]  # the recipe's default, not classification's
    rows = list(csv.DictReader((run2 / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    for r in rows:
        terms = [float(r[f"train_{k}"]) for k in ("objectness", "classification",
                                                   "box_regression")]
        assert float(r["train_loss"]) == pytest.approx(sum(terms), rel=1e-5)
        assert 0 <= float(r["val_map"]) <= float(r["val_map_50"]) <= 1
    final = json.loads((run2 / "metrics.json").read_text())["final"]
    assert final["val_map"] == pytest.approx(float(rows[-1]["val_map"]))
    assert set(final["ap_per_class"]) <= set(config["classes"][1:])
    capsys.readouterr()
    # eval measures the same mAP on the same test scenes with the saved weights
    assert main(["eval", str(run2)]) == 0
    out = capsys.readouterr().out
    assert f"mAP@0.5:0.95 {float(rows[-1]['val_map']):.4f}" in out
    assert f"mAP@0.5 {float(rows[-1]['val_map_50']):.4f}" in out and "on 16 scenes" in out
    # predict draws the boxes on a copy of each image
    from minicnn.data import digit_scenes

    image, _ = digit_scenes(False, n=1, size=48)[0]
    path = tmp_path / "scene.png"
    Image.fromarray((image.transpose(1, 2, 0) * 255).astype(np.uint8)).save(path)
    assert main(["predict", str(run2), str(path), "--min-score", "0",
                 "--out-dir", str(tmp_path / "drawn")]) == 0
    line = capsys.readouterr().out
    assert line.startswith(f"{path}: ") and "objects (score >= 0" in line
    drawn = Image.open(tmp_path / "drawn" / "scene-detections.png")
    assert min(drawn.size) >= 48


def test_detect_resume_after_a_kill_equals_the_uninterrupted_run(run2, tmp_path, capsys):
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
    assert main(["train", "--resume", str(run), "--crop-padding", "1"]) == 2
    assert "is not an option of this run" in cli_error(capsys)


def test_recipe_options_reach_the_detector():
    """build_detector (the CLI's train, eval and predict) applies DETECTOR_OPTIONS: the small
    YOLO with the cross-entropy class term and confidences starting at sigmoid(-4)."""
    model = detect.build_detector("yolo_v1_small", 10, 64)
    options = detect.DETECTOR_OPTIONS["yolo_v1_small"]
    assert model.class_loss == options["class_loss"] == "ce"
    bias = model.head[-1].bias.detach().numpy()
    assert bias[4] == bias[9] == options["confidence_bias"]
    assert (model.num_classes, model.image_size, model.grid_size) == (10, 64, 8)


def test_default_detector_and_data_follow_from_the_task(tmp_path, capsys):
    """--task detect alone trains yolo_v1_small on digit_scenes (a tiny run)."""
    out = tmp_path / "yolo"
    assert main(["train", "--task", "detect", "--subset", "8", "--batch-size", "8", "--epochs",
                 "1", "--image-size", "32", "--no-progress", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["model"], config["data"], config["task"]) == ("yolo_v1_small",
                                                                 "digit_scenes", "detect")
    assert "mAP@0.5" in capsys.readouterr().out
    # the task follows from the detector's name too (so digits, classification data, is refused)
    assert main(["train", "--model", "yolo_v1_small", "--data", "digits"]) == 2
    assert "--data digits has no detect targets" in cli_error(capsys)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "detect", "--model", "lenet"],
         "--model lenet is a classification model; --task detect needs a detector"),
        (["--task", "classify", "--model", "tiny_detector"],
         "--model tiny_detector is a detector; --task classify needs a classification model"),
        (["--task", "detect", "--data", "digits"], "--data digits has no detect targets"),
        (["--model", "lenet", "--data", "digit_scenes"],
         "--data digit_scenes has no classify targets"),
        (["--task", "detect", "--crop-padding", "1"], "--crop-padding is for classification"),
        (["--model", "lenet", "--image-size", "48"], "--image-size is for --task detect"),
        (["--task", "detect", "--image-size", "8"], "--image-size must be at least 16"),
        (["--task", "pose"], "invalid choice: 'pose'"),
        (["--model", "yolo_v1_smal"], "did you mean yolo_v1_small"),
    ],
)
def test_bad_detect_arguments_give_one_line(tiny, tmp_path, capsys, args, message):
    out = tmp_path / "never"
    code = None
    try:
        code = main(["train", *args, "--out", str(out), "--no-progress"])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    assert code == 2
    assert message in cli_error(capsys)
    assert not out.exists()


def test_predict_options_belong_to_their_task(run2, tmp_path, capsys):
    path = tmp_path / "x.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(path)
    capsys.readouterr()
    assert main(["predict", str(run2), str(path), "--invert", "yes"]) == 2
    assert "--invert is for classification runs" in cli_error(capsys)
    assert main(["predict", str(run2), str(path), "--min-score", "2"]) == 2
    assert "--min-score must be in [0, 1], got 2" in cli_error(capsys)
    config = json.loads((run2 / "config.json").read_text())
    config["task"] = "pose"
    (run2 / "config.json").write_text(json.dumps(config))
    assert main(["eval", str(run2)]) == 2
    assert "'task' must be one of classify, detect" in cli_error(capsys)
