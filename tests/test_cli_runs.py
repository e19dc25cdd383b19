"""``minicnn train``'s run folders: one run per folder, resume with the saved settings,
NaN runs stop, bad run files and file-system failures give one line (never a traceback)."""

import errno
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from minicnn.cli import main
from minicnn.serialization import load_arrays
from tests.helpers import cli_error

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--model", "lenet", "--subset", "96", "--batch-size", "32", "--no-progress"]


def _cli(*args, cwd=None, **popen):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "minicnn.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


@pytest.fixture(scope="module")
def run2(tmp_path_factory):
    """A finished 2-epoch OneCycle run (copy it before changing it)."""
    out = tmp_path_factory.mktemp("base") / "run"
    assert main(["train", *TINY, "--epochs", "2", "--out", str(out)]) == 0
    return out


def _copy(run, tmp_path, name="copy") -> Path:
    dest = tmp_path / name
    shutil.copytree(run, dest)
    return dest


def _kill_after_epoch_1(run: Path) -> None:
    """Make ``run`` look like a run killed after its first checkpoint."""
    shutil.rmtree(run / "checkpoints" / "epoch_002")
    (run / "checkpoints" / "latest.json").write_text(json.dumps({"latest": "epoch_001"}))
    shutil.rmtree(run / "figures")


# ---------------------------------------------------------------- one run per folder


def test_reused_out_is_refused_and_the_run_is_untouched(run2, tmp_path, capsys):
    run = _copy(run2, tmp_path)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert main(["train", *TINY, "--epochs", "1", "--out", str(run)]) == 2
    line = cli_error(capsys)
    assert "exists and is not empty" in line and f"--resume {run}" in line
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    (tmp_path / "file").write_text("x")
    assert main(["train", *TINY, "--out", str(tmp_path / "file")]) == 2
    assert "exists and is not a folder" in cli_error(capsys)


@pytest.mark.slow
def test_generated_run_names_in_the_same_second_are_unique(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20260101-000000")
    for _ in range(2):
        assert main(["train", *TINY, "--epochs", "1"]) == 0
    names = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert names == ["lenet-digits-20260101-000000", "lenet-digits-20260101-000000-2"]
    for name in names:
        assert json.loads((tmp_path / "runs" / name / "metrics.json").read_text())["history"]


def test_second_run_on_a_folder_in_use_is_refused(tmp_path):
    """Two processes: while one trains in a folder, a --resume of it is refused and the
    first is undisturbed (a new run on the same --out: the test after this one)."""
    out = tmp_path / "run"
    first = _cli("train", *TINY, "--epochs", "200", "--scheduler", "step", "--out", str(out))
    try:
        for line in first.stdout:  # "run folder: ..." is printed once the lock is held
            if line.startswith("run folder:"):
                break
        assert first.poll() is None
        second = _cli("train", "--resume", str(out), "--no-progress")
        _, err = second.communicate(timeout=300)
        assert first.poll() is None  # still training: the second was refused while it ran
    finally:
        first.kill()
        first.communicate()
    assert second.returncode != 0 and "another minicnn process is training" in err, err
    assert "Traceback" not in err


@pytest.mark.slow
def test_two_runs_started_together_on_one_out_one_is_refused(tmp_path):
    out = tmp_path / "run"
    runs = [_cli("train", *TINY, "--epochs", "1", "--out", str(out)) for _ in range(2)]
    results = [(r.wait(timeout=300), r.stderr.read()) for r in runs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    err = next(e for code, e in results if code == 2)
    assert ("not empty" in err or "another" in err) and "Traceback" not in err


# ---------------------------------------------------------------- resume


def test_resume_refuses_conflicting_arguments_and_keeps_the_config(run2, tmp_path, capsys):
    run = _copy(run2, tmp_path)
    _kill_after_epoch_1(run)
    config = (run / "config.json").read_bytes()
    cases = [
        (["--lr", "0.5"], "--lr 0.5: this run was trained with --lr 0.01"),
        (["--model", "resnet20"], "--model resnet20: this run was trained with --model lenet"),
        (["--batch-size", "64"], "--batch-size 64: this run was trained with --batch-size 32"),
        (["--backend", "numpy"], "--backend numpy: this run was trained with --backend"),
        (["--out", str(tmp_path / "x")], "--out cannot be combined with --resume"),
        (["--epochs", "3"], "onecycle schedule was planned for 2 epochs"),
    ]
    for extra, message in cases:
        assert main(["train", "--resume", str(run), "--no-progress", *extra]) == 2, extra
        assert message in cli_error(capsys), extra
    assert (run / "config.json").read_bytes() == config
    # the saved value itself is fine
    assert main(["train", "--resume", str(run), "--no-progress", "--lr", "0.01"]) == 0


def test_resume_with_fewer_epochs_than_done_is_refused(run2, tmp_path, capsys):
    run = _copy(run2, tmp_path)
    config = (run / "config.json").read_bytes()
    assert main(["train", "--resume", str(run), "--epochs", "1", "--no-progress"]) == 2
    assert "already has 2 epochs" in cli_error(capsys)
    assert main(["train", "--resume", str(run), "--no-progress"]) == 2
    assert "already has all its 2 epochs; nothing to do" in cli_error(capsys)
    assert (run / "config.json").read_bytes() == config


@pytest.mark.slow
def test_resume_uses_the_saved_backend_and_is_bit_exact(tmp_path, capsys):
    args = [*TINY, "--epochs", "2", "--backend", "numpy", "--scheduler", "step"]
    assert main(["train", *args, "--out", str(tmp_path / "straight")]) == 0
    killed = _copy(tmp_path / "straight", tmp_path, "killed")
    _kill_after_epoch_1(killed)
    capsys.readouterr()
    assert main(["train", "--resume", str(killed), "--no-progress"]) == 0  # no --backend
    assert "backend numpy" in capsys.readouterr().out
    resumed = load_arrays(killed / "checkpoints" / "epoch_002" / "model.safetensors")
    straight = load_arrays(tmp_path / "straight/checkpoints/epoch_002/model.safetensors")
    for k in straight:
        np.testing.assert_array_equal(resumed[k], straight[k], err_msg=k)
    assert main(["train", "--resume", str(killed), "--backend", "numba", "--no-progress"]) == 2
    assert "this run was trained with --backend numpy" in cli_error(capsys)


@pytest.mark.slow
def test_extending_a_step_schedule_run_equals_a_longer_run(tmp_path):
    args = [*TINY, "--scheduler", "step"]
    assert main(["train", *args, "--epochs", "2", "--out", str(tmp_path / "short")]) == 0
    assert main(["train", "--resume", str(tmp_path / "short"), "--epochs", "3"]) == 0
    config = json.loads((tmp_path / "short" / "config.json").read_text())
    assert config["epochs"] == 3
    history = json.loads((tmp_path / "short" / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    # StepLR keeps the step size of the 2-epoch plan (step_size = max(1, 2 // 3) = 1)
    assert [h["lr"] for h in history] == pytest.approx([0.01, 0.001, 0.0001])


@pytest.mark.slow
def test_readme_resume_example_works_exactly(tmp_path):
    readme = (ROOT / "README.md").read_text()
    block = readme.split("Extending a run, for example:")[1].split("```bash")[1].split("```")[0]
    commands = [ln.split("#")[0].strip() for ln in block.strip().splitlines()]
    assert len(commands) == 2 and "--resume" in commands[1]
    for command in commands:
        words = shlex.split(command)
        assert words[0] == "minicnn"
        proc = _cli(*words[1:], "--no-progress", cwd=tmp_path)
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    run = tmp_path / re.search(r"--resume (\S+)", commands[1]).group(1)
    history = json.loads((run / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == list(range(1, 9))
    assert (run / "figures" / "curves.png").exists()


def test_resume_after_a_kill_before_the_figures_writes_them(run2, tmp_path, capsys):
    run = _copy(run2, tmp_path)
    shutil.rmtree(run / "figures")
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    for name in ("curves.png", "confusion.png", "predictions.png"):
        assert (run / "figures" / name).stat().st_size > 1000
        assert f"figures/{name}" in out


def test_resume_removes_temporary_files_of_killed_writes(run2, tmp_path):
    run = _copy(run2, tmp_path)
    _kill_after_epoch_1(run)
    stale = [
        run / ".config.json.k2j3h4.tmp",
        run / "checkpoints" / ".latest.json.abc.tmp",
        run / "checkpoints" / ".epoch_002.x8y7z6",
    ]
    stale[0].write_text("{")
    stale[1].write_text("{")
    stale[2].mkdir()
    (stale[2] / "model.safetensors").write_bytes(b"half")
    mine = run / "notes.tmp"  # not a minicnn temporary name: kept
    mine.write_text("keep")
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert not any(p.exists() for p in stale) and mine.exists()


def test_run_files_follow_the_umask_and_data_dir_is_stored_resolved(tmp_path, monkeypatch):
    from PIL import Image

    for split in ("train", "test"):
        for k, cls in enumerate(("a", "b")):
            (tmp_path / "imgs" / split / cls).mkdir(parents=True)
            for i in range(4):
                img = np.full((8, 8), 60 * k + 10 * i, np.uint8)
                Image.fromarray(img).save(tmp_path / "imgs" / split / cls / f"{i}.png")
    monkeypatch.chdir(tmp_path)
    old = os.umask(0o022)
    try:
        args = ["--model", "lenet", "--data", "folder", "--data-dir", "imgs", "--epochs", "1"]
        assert main(["train", *args, "--out", "run", "--no-progress"]) == 0
    finally:
        os.umask(old)
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text())["data_dir"] == str(tmp_path / "imgs")
    for path in run.rglob("*"):
        if path.name == ".lock":
            continue
        mode = path.stat().st_mode & 0o777
        assert mode == (0o755 if path.is_dir() else 0o644), (path, oct(mode))


# ---------------------------------------------------------------- NaN, validation first


def test_lr_inf_stops_naming_epoch_and_batch_and_exits_nonzero(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "2", "--lr", "inf", "--out", str(out)]) == 2
    err = cli_error(capsys)
    assert re.search(r"epoch 1, batch 2: the training loss is nan", err), err
    assert "no checkpoint was saved" in err
    assert not (out / "checkpoints" / "latest.json").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--device", "garbage"], "--device garbage: device must be 'cpu' or 'cuda'"),
        (["--model", "alexnet"], "--model alexnet cannot take the images of --data digits"),
    ],
)
def test_errors_come_before_the_run_folder_is_created(tmp_path, capsys, extra, message):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out), *extra]) == 2
    assert message in cli_error(capsys)
    assert not out.exists()


def test_cuda_without_cupy_fails_before_the_run_folder(tmp_path, capsys, without_cupy):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out), "--device", "cuda"]) == 2
    assert "--device cuda" in cli_error(capsys) and not out.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--subset", "-1"], "--subset must be at least 1 (images), got -1"),
        (["train", "--subset", "0"], "--subset must be at least 1 (images), got 0"),
        (["summary", "lenet", "--num-classes", "0"], "--num-classes must be at least 1, got 0"),
        (
            ["summary", "lenet", "--input-size", "1", "0", "32"],
            "--input-size must be three positive numbers",
        ),
    ],
)
def test_bad_numbers_give_one_line(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    assert message in cli_error(capsys)
    assert not (tmp_path / "runs").exists()


def test_summary_refuses_an_input_that_cannot_fit_in_memory(monkeypatch, capsys):
    import minicnn.cli as cli

    monkeypatch.setattr(cli, "_available_memory", lambda: 2 * 2**30)  # a 2 GiB machine
    # the estimate (the sum of all layer outputs) against a count by hand
    assert main(["summary", "vgg11", "--input-size", "3", "2048", "2048"]) == 2
    line = cli_error(capsys)
    need = float(re.search(r"about ([\d.]+) GiB", line).group(1))
    # vgg11's feature maps on H x W: 64 HW (conv, relu), 64 HW/4 (pool), 128 HW/4 (conv,
    # relu), 128 HW/16 (pool) ...; the classifier's few thousand numbers are negligible
    hw = 2048 * 2048
    by_hand = 4 * hw * (
        64 * 2 + 64 / 4 + 128 / 4 * 2 + 128 / 16 + 256 / 16 * 4 + 256 / 64 + 512 / 64 * 4
        + 512 / 256 + 512 / 256 * 4 + 512 / 1024
    )
    assert need == pytest.approx(by_hand / 2**30, rel=0.05)


# ---------------------------------------------------------------- bad run files


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def _set_json(path: Path, **changes) -> None:
    obj = json.loads(path.read_text())
    for key, value in changes.items():
        if value is KeyError:
            del obj[key]
        else:
            obj[key] = value
    path.write_text(json.dumps(obj))


BAD_FILES = {
    "truncated model": ("checkpoints/epoch_001/model.safetensors", _truncate, "safetensors"),
    "empty model": (
        "checkpoints/epoch_001/model.safetensors",
        lambda p: p.write_bytes(b""),
        "safetensors",
    ),
    "model is a folder": (
        "checkpoints/epoch_001/optimizer.safetensors",
        lambda p: (p.unlink(), p.mkdir()),
        "a folder",
    ),
    "garbage state": ("checkpoints/epoch_001/state.json", lambda p: p.write_text("{oops"), "JSON"),
    "state without rng": (
        "checkpoints/epoch_001/state.json",
        lambda p: _set_json(p, rng=KeyError),
        "missing the key 'rng'",
    ),
    "state epoch is text": (
        "checkpoints/epoch_001/state.json",
        lambda p: _set_json(p, epoch="one"),
        "'epoch' must be int",
    ),
    "latest is a list": ("checkpoints/latest.json", lambda p: p.write_text("[1]"), "JSON object"),
    "latest leaves the folder": (
        "checkpoints/latest.json",
        lambda p: _set_json(p, latest="../../x"),
        "must name a checkpoint folder inside",
    ),
    "latest is absolute": (
        "checkpoints/latest.json",
        lambda p: _set_json(p, latest="/etc"),
        "must name a checkpoint folder inside",
    ),
    "config without model": ("config.json", lambda p: _set_json(p, model=KeyError), "'model'"),
    "config classes is text": (
        "config.json",
        lambda p: _set_json(p, num_classes="ten"),
        "'num_classes' must be int",
    ),
    "config garbage": ("config.json", lambda p: p.write_bytes(b"\xff\x00garbage"), "config.json"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_run_files_give_one_line_naming_the_file(run2, tmp_path, capsys, case):
    name, damage, message = BAD_FILES[case]
    run = _copy(run2, tmp_path)
    _kill_after_epoch_1(run)
    damage(run / name)
    capsys.readouterr()
    for command in (["eval", str(run)], ["train", "--resume", str(run), "--no-progress"]):
        assert main(command) == 2, (case, command)
        line = cli_error(capsys)
        assert message in line, (case, command, line)
        assert Path(name).name in line or "latest" in name, (case, line)


# ---------------------------------------------------------------- the file system


def test_disk_full_during_a_checkpoint_gives_one_line_and_keeps_the_last(
    tmp_path, monkeypatch, capsys
):
    import minicnn.train.checkpoint as checkpoint

    real = checkpoint.save_arrays
    calls = []

    def full_disk(arrays, path, *a, **k):
        calls.append(path)
        if len(calls) > 2:  # epoch 1's two files fit, epoch 2's do not
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(arrays, path, *a, **k)

    monkeypatch.setattr(checkpoint, "save_arrays", full_disk)
    out = tmp_path / "run"
    args = [*TINY, "--epochs", "2", "--scheduler", "step"]
    assert main(["train", *args, "--out", str(out)]) == 2
    line = cli_error(capsys)
    assert "No space left on device" in line and "last complete checkpoint is intact" in line
    monkeypatch.setattr(checkpoint, "save_arrays", real)
    assert json.loads((out / "checkpoints" / "latest.json").read_text())["latest"] == "epoch_001"
    assert not [p for p in (out / "checkpoints").iterdir() if p.name.startswith(".epoch")]
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0


def test_read_only_run_folder_gives_one_line(tmp_path, monkeypatch, capsys):
    def read_only(self, *a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    assert main(["train", *TINY, "--epochs", "1", "--out", str(tmp_path / "run")]) == 2
    assert f"Read-only file system: {tmp_path / 'run'}" in cli_error(capsys)
