"""The ``minicnn`` command end to end, and its errors (one line, non-zero exit)."""

import argparse
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
        (["train", "--model", "nope"], "unknown model 'nope'; 'minicnn models' lists"),
        (["train", "--model", "resnet_18"], "(did you mean resnet18"),
        (["train", "--epochs", "0"], "--epochs must be at least 1, got 0"),
        (["train", "--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
        (["train", "--data", "mnist"], "--data mnist needs --data-dir"),
        (["train", "--data", "cifar10", "--data-dir", "/does/not/exist"], "no such directory"),
        (["eval", "/does/not/exist"], "not a run folder"),
        (["train", "--resume", "/does/not/exist"], "not a run folder"),
        (["summary", "vgg_nope"], "unknown model 'vgg_nope'"),
        (["summary", "lenet", "--num-classes", "0"], "--num-classes must be at least 1, got 0"),
        (["export-torchvision", "nope", "/tmp/x.safetensors"], "unknown torchvision"),
    ],
)
def test_bad_arguments_exit_nonzero_with_one_line(args, message):
    result = _run(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len([ln for ln in result.stderr.splitlines() if ln.startswith("minicnn")]) == 1


def test_export_torchvision_random_init(tmp_path, capsys):
    import torch
    import torchvision

    from minicnn.models import load_weights, squeezenet1_1

    torch.manual_seed(0)
    out = tmp_path / "sq.safetensors"
    assert main(["export-torchvision", "squeezenet1_1", str(out)]) == 0
    torch.manual_seed(0)
    reference = torchvision.models.squeezenet1_1()
    model = squeezenet1_1()
    load_weights(model, out)
    for k, v in reference.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k].numpy(), v.numpy(), err_msg=k)


def _outputs_match(minicnn_model, torch_model, shape=(2, 3, 40, 40)):
    """The eval-mode outputs of the two models on the same random input."""
    import torch

    from minicnn.autograd import no_grad, tensor

    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    minicnn_model.eval()
    torch_model.eval()
    with no_grad():
        got = minicnn_model(tensor(x)).numpy()
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_export_torchvision_weights_file(tmp_path, capsys):
    """A torchvision weight file (torch.save of a state_dict) converts; the minicnn model
    with the converted weights computes torchvision's outputs."""
    import torch
    import torchvision

    from minicnn.models import load_weights, resnet18

    torch.manual_seed(1)
    reference = torchvision.models.resnet18()
    with torch.no_grad():  # non-trivial running statistics, so eval mode uses them
        for m in reference.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    pth = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), pth)
    out = tmp_path / "r18.safetensors"
    assert main(["export-torchvision", "resnet18", str(out), "--weights", str(pth)]) == 0
    assert "minicnn.models.resnet18()" in capsys.readouterr().out
    model = resnet18()
    load_weights(model, out)
    _outputs_match(model, reference)

    # a fine-tuned 7-class classifier converts too, and the message says how to build it
    tuned = torchvision.models.resnet18(num_classes=7)
    torch.save({"state_dict": tuned.state_dict()}, pth)  # a checkpoint dict is unwrapped
    assert main(["export-torchvision", "resnet18", str(out), "--weights", str(pth)]) == 0
    assert "minicnn.models.resnet18(num_classes=7)" in capsys.readouterr().out
    model = resnet18(num_classes=7)
    load_weights(model, out)
    _outputs_match(model, tuned)


def test_export_torchvision_bad_weights_file(tmp_path, capsys):
    import torch

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a weight file")
    not_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], not_dict)
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv1.weight": torch.zeros(3, 3)}, wrong)
    out = str(tmp_path / "x.safetensors")
    for path, message in [
        (tmp_path / "missing.pth", "missing.pth' does not exist"),
        (garbage, "garbage.pth' is not a weight file torch.load(weights_only=True) can read"),
        (not_dict, "list.pth' holds a list, expected a state_dict"),
        (wrong, "does not fit torchvision.models.resnet18()"),
    ]:
        capsys.readouterr()
        assert main(["export-torchvision", "resnet18", out, "--weights", str(path)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert "weights_only=False" not in err  # torch's advice to unpickle is not passed on
    assert not (tmp_path / "x.safetensors").exists()


@pytest.mark.parametrize("name", ["resnet18", "resnet20", "lenet"])
def test_summary_defaults_are_the_models(name, capsys):
    """No options: the model as minicnn.models.<name>() builds it, at the size it is made for."""
    from minicnn import models

    assert main(["summary", name]) == 0
    table = capsys.readouterr().out
    n_params = sum(p.numel() for p in getattr(models, name)().parameters())
    assert f"Total params: {n_params:,}" in table and "Conv2d" in table
    expected_size = {"resnet18": [3, 224, 224], "resnet20": [3, 32, 32], "lenet": [1, 32, 32]}
    assert f"Input size: {expected_size[name]}" in table


def test_summary_options_build_that_model(capsys):
    from minicnn.models import resnet18

    args = ["summary", "resnet18", "--num-classes", "10", "--input-size", "1", "64", "64"]
    assert main(args) == 0
    table = capsys.readouterr().out
    n_params = sum(p.numel() for p in resnet18(num_classes=10, in_channels=1).parameters())
    assert f"Total params: {n_params:,}" in table and "Input size: [1, 64, 64]" in table


def test_models_lists_every_model_once_by_file(capsys):
    from minicnn.models import MODELS

    assert main(["models"]) == 0
    printed = capsys.readouterr().out
    listed = [n for line in printed.splitlines() if line.startswith("  ")
              for n in line.replace(",", " ").split()]
    assert sorted(listed) == sorted(MODELS)
    headers = [line for line in printed.splitlines() if line.endswith(".py:")]
    assert {h.removesuffix(".py:") for h in headers} == {
        ctor.__module__.rsplit(".", 1)[-1] for ctor in MODELS.values()
    }
    # each model is listed under the file that defines it
    section = None
    for line in printed.splitlines():
        if line.endswith(".py:"):
            section = line.removesuffix(".py:")
        elif line.startswith("  "):
            for n in line.replace(",", " ").split():
                assert MODELS[n].__module__.endswith("." + section), n


def test_help_lists_commands():
    result = _run("--help")
    assert result.returncode == 0
    for cmd in ("train", "eval", "predict", "summary", "export-torchvision"):
        assert cmd in result.stdout


def test_help_gives_each_option_a_line_and_one_default():
    from minicnn.cli import _HelpFormatter, make_parser

    parser = make_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subparsers.choices) >= {"train", "eval", "predict", "summary", "models",
                                       "export-torchvision"}
    for name, sub in subparsers.choices.items():
        formatter = _HelpFormatter(prog=f"minicnn {name}")
        for action in sub._actions:
            assert action.help, f"minicnn {name}: {action.dest} has no help"
            text = formatter._expand_help(action)  # the help as printed, default included
            assert text.count("(default") <= 1, f"minicnn {name} {action.dest}: {text}"
        page = sub.format_help()
        assert "(default: None)" not in page and "(default: False)" not in page, name
        usage = page.split("\n\n")[0]
        assert "resnet18" not in usage and len(usage.splitlines()) <= 10, usage
    train_help = subparsers.choices["train"].format_help()
    assert "--model MODEL" in train_help and "(default: small_resnet)" in train_help
    assert "(default: 12;" in " ".join(train_help.split())  # --epochs: said once, not twice


# ---------------------------------------------------------------- predict: image polarity


def _save_digits(folder, indices):
    """Held-out digits (the test split) as PNG files, as they are (light on dark) and inverted
    (dark on light, like a scan); returns (labels, light-on-dark paths, dark-on-light paths)."""
    from PIL import Image

    from minicnn.data import digits

    test = digits(train=False)
    folder.mkdir(exist_ok=True)
    labels, light, dark = [], [], []
    for i in indices:
        img = np.round(test.images[i, 0] * 255).astype(np.uint8)
        labels.append(str(test.labels[i]))
        light.append(folder / f"{i}_light.png")
        dark.append(folder / f"{i}_dark.png")
        Image.fromarray(img).save(light[-1])
        Image.fromarray(255 - img).save(dark[-1])
    return labels, light, dark


def _predict(run, paths, capsys, *options):
    """{path: (top class, the whole printed line)} from minicnn predict."""
    capsys.readouterr()
    assert main(["predict", str(run), *map(str, paths), *options]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(paths)
    return {p: (line.split(": ")[1].split(" ")[0], line) for p, line in zip(paths, lines)}


@pytest.fixture(scope="module")
def tiny_digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "run"
    args = ["train", "--model", "lenet", "--epochs", "1", "--subset", "64", "--batch-size", "32"]
    assert main([*args, "--out", str(out), "--no-progress"]) == 0
    return out


def test_predict_auto_polarity_sees_both_polarities_alike(tiny_digits_run, tmp_path, capsys):
    labels, light, dark = _save_digits(tmp_path / "digits", range(6))
    auto_light = _predict(tiny_digits_run, light, capsys)
    auto_dark = _predict(tiny_digits_run, dark, capsys)
    for a, b in zip(light, dark):
        # the same image after inversion: the same classes and probabilities
        assert auto_light[a][1].split(": ")[1] + " [inverted]" == auto_dark[b][1].split(": ")[1]
    assert not any("[inverted]" in line for _, line in auto_light.values())
    # --invert yes on the dark-on-light files is what auto does with them
    forced = _predict(tiny_digits_run, dark, capsys, "--invert", "yes")
    assert [forced[p][1] for p in dark] == [auto_dark[p][1] for p in dark]
    # --invert no keeps the dark-on-light file as it is: what the network sees differs
    kept = _predict(tiny_digits_run, dark, capsys, "--invert", "no")
    assert [v[1] for v in kept.values()] != [v[1].replace(" [inverted]", "")
                                             for v in auto_dark.values()]


@pytest.mark.slow
def test_predict_classifies_held_out_digits_in_both_polarities(tmp_path, capsys):
    """A run trained on the digits classifies held-out digits right whichever way round they
    are drawn; without the polarity decision the dark-on-light ones fail."""
    run = tmp_path / "run"
    args = ["train", "--model", "lenet", "--epochs", "3", "--batch-size", "32", "--no-progress"]
    assert main([*args, "--out", str(run)]) == 0
    labels, light, dark = _save_digits(tmp_path / "digits", range(20))
    auto_light = _predict(run, light, capsys)
    auto_dark = _predict(run, dark, capsys)
    assert [auto_light[p][0] for p in light] == [auto_dark[p][0] for p in dark]
    correct = sum(auto_light[p][0] == y for p, y in zip(light, labels))
    assert correct >= 16, f"{correct}/20 held-out digits right"
    raw = _predict(run, dark, capsys, "--invert", "no")
    assert sum(raw[p][0] == y for p, y in zip(dark, labels)) < correct - 5


def test_output_piped_into_a_reader_that_leaves_early_ends_quietly():
    import subprocess
    import sys

    # stdout is a pipe whose reader has gone (as `minicnn models | head -1` after head quits):
    # the first line printed meets a broken pipe
    script = (
        "import os, sys; r, w = os.pipe(); os.close(r); os.dup2(w, 1); "
        "sys.stdout = open(1, 'w', buffering=1); "
        "from minicnn.cli import main; sys.exit(main(['models']))"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "error" not in err and "Traceback" not in err, err
