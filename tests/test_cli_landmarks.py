"""``minicnn train --task landmarks``, ``eval`` and ``predict`` on landmark runs: the run
folder, its metrics against the landmark error recomputed from the saved weights, resume,
and one-line errors. The plumbing runs with the regression baseline (the fast one) on a
few scenes; the heatmap U-Net's recipe is tested in tests/train/test_landmarks.py."""

import csv
import json
import shutil

import numpy as np
import pytest
from PIL import Image

import minicnn
from minicnn.cli import main
from minicnn.serialization import load_arrays
from minicnn.train import landmarks
from tests.helpers import cli_error

TINY = ["--task", "landmarks", "--model", "landmark_regressor", "--subset", "16",
        "--batch-size", "8", "--no-progress"]
FILES = ("config.json", "metrics.csv", "metrics.json", "figures/curves.png",
         "figures/landmarks.png")


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lm") / "run"
    assert main(["train", *TINY, "--epochs", "2", "--out", str(out)]) == 0
    return out


def test_landmark_run_folder_metrics_eval_and_predict(run2, tmp_path, capsys):
    for name in FILES:
        assert (run2 / name).is_file(), name
    config = json.loads((run2 / "config.json").read_text())
    assert (config["task"], config["data"], config["model"]) == ("landmarks", "shapes",
                                                                 "landmark_regressor")
    assert config["image_size"] == [32, 32] and config["lr"] == landmarks.MODEL_DEFAULTS[
        "landmark_regressor"]["lr"] != landmarks.DEFAULTS["lr"]
    assert config["landmarks"] == ["centre", "top", "right", "bottom", "left"]
    rows = list(csv.DictReader((run2 / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"] and "train_acc" not in rows[0]
    # the recorded error is the mean distance of the saved model's predictions
    from minicnn.cli import _load_run

    _, model = _load_run(str(run2))
    _, test, occluded = landmarks.landmark_data(16)
    for data, key in ((test, "val_error"), (occluded, "val_error_occluded")):
        images = np.stack([data[i][0] for i in range(16)])
        true = np.stack([data[i][1] for i in range(16)])
        with minicnn.no_grad():
            pred = model(minicnn.tensor(images)).numpy()
        errors = np.sqrt(((pred - true) ** 2).sum(-1))
        assert float(rows[-1][key]) == pytest.approx(errors.mean(), rel=1e-4)
    capsys.readouterr()
    assert main(["eval", str(run2)]) == 0
    out = capsys.readouterr().out
    assert f"mean landmark error {float(rows[-1]['val_error']):.3f} px on 16 test scenes" in out
    assert f"{float(rows[-1]['val_error_occluded']):.3f} px on the same scenes occluded" in out
    assert "per landmark (occluded, px): centre" in out
    # predict: the landmarks in the file's pixels, drawn on a copy
    image, _ = test[0]
    path = tmp_path / "scene.png"
    Image.fromarray((image.transpose(1, 2, 0) * 255).astype(np.uint8)).resize((64, 64)).save(path)
    assert main(["predict", str(run2), str(path), "--out-dir", str(tmp_path / "drawn")]) == 0
    line = capsys.readouterr().out
    assert line.startswith(f"{path}: centre (") and "left (" in line
    assert (tmp_path / "drawn" / "scene-landmarks.png").is_file()
    assert main(["predict", str(run2), str(path), "--invert", "yes"]) == 2
    assert "--invert is for classification runs" in cli_error(capsys)


def test_landmark_resume_after_a_kill_equals_the_uninterrupted_run(run2, tmp_path, capsys):
    run = tmp_path / "killed"
    shutil.copytree(run2, run)
    shutil.rmtree(run / "checkpoints" / "epoch_002")
    (run / "checkpoints" / "latest.json").write_text(json.dumps({"latest": "epoch_001"}))
    shutil.rmtree(run / "figures")
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    a = load_arrays(run2 / "checkpoints" / "epoch_002" / "model.safetensors")
    b = load_arrays(run / "checkpoints" / "epoch_002" / "model.safetensors")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    for name in FILES:
        assert (run / name).is_file(), name
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--hflip"]) == 2
    assert "--hflip is not an option of this run" in cli_error(capsys)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "landmarks", "--model", "lenet"],
         "--model lenet is a classification model; --task landmarks needs a landmark model: "
         "landmark_unet, landmark_regressor"),
        (["--task", "detect", "--model", "landmark_unet"],
         "--model landmark_unet is a landmark model; --task detect needs a detector"),
        (["--task", "landmarks", "--data", "digits"], "--data digits has no landmarks targets"),
        (["--task", "landmarks", "--hflip"],
         "--hflip is for --task classify, detect, segment, instance, not --task landmarks"),
        (["--task", "landmarks", "--crop-padding", "1"],
         "--crop-padding is for --task classify, not --task landmarks"),
        (["--model", "landmark_regressor", "--image-size", "36"],
         "image_size must be a positive multiple of 2 ** depth = 8, got 36"),
        (["--model", "landmark_unett"], "did you mean landmark_unet"),
        (["--task", "landmarks", "--data-dir", "."], "--task landmarks reads no files"),
    ],
)
def test_bad_landmark_arguments_give_one_line(tmp_path, capsys, args, message):
    out = tmp_path / "never"
    code = None
    try:
        code = main(["train", *args, "--out", str(out), "--no-progress"])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    assert code == 2
    assert message in cli_error(capsys)
    assert not out.exists()


def test_the_regressor_trains_at_its_own_default_rate_and_epochs():
    """--model landmark_regressor takes the recipe's MODEL_DEFAULTS over DEFAULTS (its own
    best peak rate, the epochs of about the U-Net's CPU time), the help says so, and an
    --lr or --epochs given still wins."""
    from minicnn.cli import _given_options, _recipe_defaults, make_parser

    own = landmarks.MODEL_DEFAULTS["landmark_regressor"]
    assert own["lr"] != landmarks.DEFAULTS["lr"] and own["epochs"] != landmarks.DEFAULTS["epochs"]
    for argv, expected in (
            (["train", "--model", "landmark_regressor"], (own["lr"], own["epochs"])),
            (["train", "--task", "landmarks"],
             (landmarks.DEFAULTS["lr"], landmarks.DEFAULTS["epochs"])),
            (["train", "--model", "landmark_regressor", "--lr", "0.5", "--epochs", "3"],
             (0.5, 3))):
        args = make_parser().parse_args(argv)
        _recipe_defaults("landmarks", args, _given_options(argv))
        assert (args.lr, args.epochs) == expected, argv
    train = next(a for a in make_parser()._actions if a.dest == "command").choices["train"]
    help_text = " ".join(train.format_help().split())
    assert f"--task landmarks: {landmarks.DEFAULTS['lr']:g}, --model landmark_regressor: " \
           f"{own['lr']:g};" in help_text
    assert f"--task landmarks: {landmarks.DEFAULTS['epochs']}, --model landmark_regressor: " \
           f"{own['epochs']} " in help_text
