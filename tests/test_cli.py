"""The ``minicnn`` command end to end, and its errors (one line, non-zero exit)."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from minicnn.cli import main
from minicnn.serialization import load_arrays


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "minicnn.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_train_eval_predict_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--epochs", "2", "--subset", "96", "--batch-size", "32", "--model", "lenet"]
    code = main([*args, "--out", str(out), "--no-progress"])
    assert code == 0
    for name in (
        "config.json",
        "metrics.csv",
        "metrics.json",
        "figures/curves.png",
        "figures/confusion.png",
        "figures/predictions.png",
        "checkpoints/latest.json",
    ):
        assert (out / name).exists(), name
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2] and 0 <= history[1]["val_acc"] <= 1

    # a run killed after epoch 1: its folder as it was then, resumed, ends bit-exact
    killed = tmp_path / "killed"
    shutil.copytree(out, killed)
    shutil.rmtree(killed / "checkpoints" / "epoch_002")
    (killed / "checkpoints" / "latest.json").write_text(
        json.dumps({"latest": "epoch_001", "epoch": 1})
    )
    assert main(["train", "--resume", str(killed), "--no-progress"]) == 0
    resumed = load_arrays(killed / "checkpoints" / "epoch_002" / "model.safetensors")
    straight = load_arrays(out / "checkpoints" / "epoch_002" / "model.safetensors")
    assert resumed.keys() == straight.keys()
    for k in straight:
        np.testing.assert_array_equal(resumed[k], straight[k], err_msg=k)
    resumed_history = json.loads((killed / "metrics.json").read_text())["history"]

    def untimed(rows):
        return [
            {
                k: v
                for k, v in r.items()
                if not k.startswith("train_images") and k != "train_seconds"
            }
            for r in rows
        ]

    assert untimed(resumed_history) == untimed(history)

    capsys.readouterr()
    assert main(["eval", str(out)]) == 0
    printed = capsys.readouterr().out
    acc = float(printed.split("top-1 ")[1].split("%")[0])
    assert abs(acc - 100 * history[-1]["val_acc"]) < 0.01

    from PIL import Image

    img = (np.random.default_rng(0).random((40, 40)) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "digit.png")
    assert main(["predict", str(out), str(tmp_path / "digit.png")]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(str(tmp_path / "digit.png")) and line.count("%") == 3


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--model", "nope"], "invalid choice: 'nope' (choose from"),
        (["train", "--epochs", "0"], "--epochs must be at least 1, got 0"),
        (["train", "--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
        (["train", "--data", "mnist"], "--data mnist needs --data-dir"),
        (["train", "--data", "cifar10", "--data-dir", "/does/not/exist"], "no such directory"),
        (["eval", "/does/not/exist"], "not a run folder"),
        (["train", "--resume", "/does/not/exist"], "not a run folder"),
        (["summary", "vgg_nope"], "invalid choice"),
        (["export-torchvision", "nope", "/tmp/x.safetensors"], "unknown torchvision"),
    ],
)
def test_bad_arguments_exit_nonzero_with_one_line(args, message):
    result = _run(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len([ln for ln in result.stderr.splitlines() if ln.startswith("minicnn")]) == 1


def test_summary_and_export_torchvision(tmp_path, capsys):
    import torch
    import torchvision

    from minicnn.models import load_weights, squeezenet1_1

    assert main(["summary", "small_resnet"]) == 0
    table = capsys.readouterr().out
    from minicnn.models import small_resnet

    n_params = sum(p.numel() for p in small_resnet().parameters())
    assert f"Total params: {n_params:,}" in table and "Conv2d" in table

    torch.manual_seed(0)
    out = tmp_path / "sq.safetensors"
    assert main(["export-torchvision", "squeezenet1_1", str(out)]) == 0
    torch.manual_seed(0)
    reference = torchvision.models.squeezenet1_1()
    model = squeezenet1_1()
    load_weights(model, out)
    for k, v in reference.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k].numpy(), v.numpy(), err_msg=k)


def test_help_lists_commands():
    result = _run("--help")
    assert result.returncode == 0
    for cmd in ("train", "eval", "predict", "summary", "export-torchvision"):
        assert cmd in result.stdout
