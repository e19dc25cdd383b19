"""``minicnn compress RUN_DIR``: on a tiny trained run, the report, the file and its errors."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from minicnn import compress
from minicnn.cli import _classify_loaders, _load_run, load_data, main
from minicnn.train import Trainer
from tests.helpers import cli_error

TINY = ["--model", "lenet", "--subset", "96", "--batch-size", "32", "--no-progress"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("compress") / "run"
    assert main(["train", *TINY, "--epochs", "2", "--out", str(out)]) == 0
    return out


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_compress_reports_accuracy_and_size_and_writes_the_model(run, capsys):
    checkpoints = _digests(run / "checkpoints")
    capsys.readouterr()
    assert main(["compress", str(run), "--prune", "0.9", "--bits", "6",
                 "--finetune-epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "baseline (float32, dense): test accuracy" in out
    assert "pruned 90% (global)" in out and "fine-tuned 1 epochs" in out
    assert "6-bit weight sharing" in out
    assert _digests(run / "checkpoints") == checkpoints  # untouched
    path = run / "compressed" / "prune0.9-ft1-bits6.safetensors"
    report = json.loads(path.with_suffix(".json").read_text())
    assert [s["step"].split()[0] for s in report["steps"]] == ["baseline", "pruned",
                                                               "fine-tuned", "6-bit"]
    # the reported size of the last step is the file written, printed in MB
    assert report["steps"][-1]["bytes"] == path.stat().st_size
    mb = re.search(r"6-bit weight sharing: test accuracy ([\d.]+)%, ([\d.]+) MB", out)
    assert float(mb.group(2)) == pytest.approx(path.stat().st_size / 1e6, abs=5e-5)
    # the file holds a 90% sparse model with at most 2^6 values per layer ...
    config, model = _load_run(str(run))
    baseline = compress.dense_bytes(model)
    checkpoint = next((run / "checkpoints").glob("*/model.safetensors"))
    assert report["steps"][0]["bytes"] == baseline == checkpoint.stat().st_size
    model.load_state_dict(compress.load_compressed(path))
    weights = {n: compress.pruning.weight_of(m)
               for n, m in compress.prunable_layers(model).items()}
    total = sum(w.size for w in weights.values())
    assert sum(int((w == 0).sum()) for w in weights.values()) >= round(0.9 * total)
    assert all(np.unique(w).size <= 64 for w in weights.values())
    # ... whose test accuracy is the one reported
    _, test_set = load_data(config["data"], config["data_dir"], config["subset"])
    _, test_loader = _classify_loaders(config, test_set, test_set)
    acc = Trainer(model, optimizer=None, progress=False).evaluate(test_loader)["val_acc"]
    assert acc == pytest.approx(report["steps"][-1]["test_acc"])
    assert f"{100 * acc:.2f}" == mb.group(1)
    assert path.stat().st_size < baseline / 8


@pytest.mark.parametrize("args, message", [
    (["--prune", "1.0"], "--prune must be the fraction of the weights to remove, in [0, 1)"),
    (["--prune", "-0.1"], "--prune must be the fraction of the weights to remove, in [0, 1)"),
    (["--bits", "0"], "--bits must be in 1..8 (2^bits shared values per layer), got 0"),
    (["--bits", "9"], "--bits must be in 1..8 (2^bits shared values per layer), got 9"),
    ([], "give --prune FRACTION, --bits N or both"),
    (["--bits", "4", "--finetune-epochs", "2"], "--finetune-epochs fine-tunes a pruned model"),
    (["--prune", "0.5", "--finetune-epochs", "-1"], "--finetune-epochs must be 0 or more"),
])
def test_bad_arguments_give_one_line(run, capsys, args, message):
    before = _digests(run)
    assert main(["compress", str(run), *args]) == 2
    assert message in cli_error(capsys)
    assert _digests(run) == before


def test_not_a_run_folder_gives_one_line(tmp_path, capsys):
    assert main(["compress", str(tmp_path), "--bits", "6"]) == 2
    assert f"{tmp_path}: not a run folder (no config.json)" in cli_error(capsys)
