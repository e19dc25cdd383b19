"""Checkpoints: resume is bit-exact, an interrupted save loses nothing, nothing is unpickled."""

import json

import numpy as np
import pytest

import minicnn
from minicnn import nn, optim, serialization
from minicnn.data import DataLoader, TensorDataset
from minicnn.train import Trainer, find_checkpoint, load_checkpoint, save_checkpoint


def _setup():
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 3)
    )
    opt = optim.Adam(model.parameters(), lr=0.01)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=4 * 5)
    rng = np.random.default_rng(0)
    ds = TensorDataset(
        rng.standard_normal((40, 1, 4, 4)).astype(np.float32), rng.integers(0, 3, 40)
    )
    return model, opt, sched, DataLoader(ds, 10, shuffle=True, prefetch=1)


def _weights(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def test_kill_and_resume_equals_uninterrupted_run(tmp_path):
    minicnn.manual_seed(0)
    model, opt, sched, loader = _setup()
    Trainer(model, opt, scheduler=sched, progress=False, run_dir=tmp_path / "a").fit(
        loader, epochs=5
    )
    straight = _weights(model)

    minicnn.manual_seed(0)
    model, opt, sched, loader = _setup()
    Trainer(model, opt, scheduler=sched, progress=False, run_dir=tmp_path / "b").fit(
        loader, epochs=2
    )
    # "kill": throw everything away, rebuild from scratch with another seed, resume from disk
    minicnn.manual_seed(999)
    model, opt, sched, loader = _setup()
    trainer = Trainer(model, opt, scheduler=sched, progress=False, run_dir=tmp_path / "b")
    history = trainer.fit(loader, epochs=5, resume=tmp_path / "b")
    resumed = _weights(model)

    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]
    for k in straight:
        np.testing.assert_array_equal(resumed[k], straight[k], err_msg=k)


def test_interrupted_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    model, opt, sched, _ = _setup()
    first = save_checkpoint(tmp_path, model, opt, sched, epoch=1)
    before = _weights(model)
    for p in model.parameters():
        p.array += 1.0

    calls = {"n": 0}
    real_save_json = serialization.save_json

    def dying_save_json(obj, path):  # dies after the weights were written
        calls["n"] += 1
        raise KeyboardInterrupt("killed during save")

    monkeypatch.setattr("minicnn.train.checkpoint.save_json", dying_save_json)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, model, opt, sched, epoch=2)
    monkeypatch.setattr("minicnn.train.checkpoint.save_json", real_save_json)

    assert calls["n"] == 1
    assert find_checkpoint(tmp_path) == first
    assert not (tmp_path / "checkpoints" / "epoch_002").exists()
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]
    fresh, opt2, sched2, _ = _setup()
    state = load_checkpoint(tmp_path, fresh, opt2, sched2)
    assert state["epoch"] == 1
    for k, v in _weights(fresh).items():
        np.testing.assert_array_equal(v, before[k])


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "w.safetensors"
    serialization.save_arrays({"a": np.ones(3, np.float32)}, path)

    def boom(tmp):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        serialization.atomic_write(path, boom)
    np.testing.assert_array_equal(serialization.load_arrays(path)["a"], np.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


def test_loading_never_unpickles(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        serialization.load_arrays(path)
    (tmp_path / "x.pt").write_bytes(b"a pickle would be here")
    with pytest.raises(ValueError, match="must end in .safetensors or .npz"):
        serialization.load_arrays(tmp_path / "x.pt")


def test_checkpoint_files_are_safetensors_and_json(tmp_path):
    model, opt, sched, loader = _setup()
    Trainer(model, opt, scheduler=sched, progress=False, run_dir=tmp_path).fit(loader, epochs=1)
    folder = find_checkpoint(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == [
        "model.safetensors",
        "optimizer.safetensors",
        "state.json",
    ]
    state = json.loads((folder / "state.json").read_text())
    assert state["epoch"] == 1 and "rng" in state and state["optimizer"]["param_groups"]


def test_generated_run_folders_are_unique_and_a_used_out_is_refused(tmp_path):
    from minicnn.train import RunDirError, RunLock, claim_run_dir, create_run_dir

    base = tmp_path / "runs" / "m-d-20260101-000000"
    made = [create_run_dir(base, generated=True) for _ in range(3)]
    assert [p.name for p in made] == [base.name, base.name + "-2", base.name + "-3"]
    (made[0] / "config.json").write_text("{}")
    with pytest.raises(RunDirError, match="exists and is not empty"):
        create_run_dir(made[0])
    assert create_run_dir(made[1]) == made[1]  # an empty folder may be used
    lock = claim_run_dir(tmp_path / "new")
    with pytest.raises(RunDirError, match="another minicnn process is training"):
        RunLock(tmp_path / "new").acquire()
    lock.release()
    RunLock(tmp_path / "new").acquire().release()  # free again once released


def test_latest_json_outside_the_run_folder_is_refused(tmp_path):
    from minicnn.train import CheckpointError

    model, opt, sched, _ = _setup()
    save_checkpoint(tmp_path / "run", model, opt, sched, epoch=1)
    save_checkpoint(tmp_path, model, opt, sched, epoch=7)  # a checkpoint outside the run
    latest = tmp_path / "run" / "checkpoints" / "latest.json"
    for target in ("../../checkpoints/epoch_007", str(tmp_path / "checkpoints" / "epoch_007")):
        latest.write_text(json.dumps({"latest": target, "epoch": 7}))
        with pytest.raises(CheckpointError, match="must name a checkpoint folder inside"):
            load_checkpoint(tmp_path / "run", model, opt, sched)


def test_save_removes_stale_temporary_checkpoints(tmp_path):
    model, opt, sched, _ = _setup()
    save_checkpoint(tmp_path, model, opt, sched, epoch=1)
    stale = tmp_path / "checkpoints" / ".epoch_002.abc123"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half a file")
    save_checkpoint(tmp_path, model, opt, sched, epoch=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["epoch_001", "epoch_002", "latest.json"]
