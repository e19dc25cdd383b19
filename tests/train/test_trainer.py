"""The Trainer: the loss falls, metrics are right, the run folder is complete."""

import csv
import json

import numpy as np
import pytest

import minicnn
from minicnn import nn, optim
from minicnn.data import DataLoader, TensorDataset
from minicnn.train import Trainer, confusion_matrix, topk_correct


def test_topk_and_confusion_by_hand():
    logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.05, 0.15], [0.2, 0.3, 0.5]])
    targets = np.array([1, 2, 0])
    assert topk_correct(logits, targets, 1) == 1
    assert topk_correct(logits, targets, 2) == 2
    cm = confusion_matrix(logits.argmax(1), targets, 3)
    np.testing.assert_array_equal(cm, [[0, 0, 1], [0, 1, 0], [1, 0, 0]])


def test_fit_lowers_loss_and_writes_run_folder(tmp_path):
    minicnn.manual_seed(0)
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((3, 8)) * 3
    labels = rng.integers(0, 3, 120)
    x = (centers[labels] + rng.standard_normal((120, 8))).astype(np.float32)
    train = DataLoader(TensorDataset(x[:90], labels[:90]), 16, shuffle=True)
    val = DataLoader(TensorDataset(x[90:], labels[90:]), 64)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    trainer = Trainer(
        model,
        opt,
        scheduler=sched,
        scheduler_interval="epoch",
        run_dir=tmp_path,
        progress=False,
        classes=["a", "b", "c"],
    )
    history = trainer.fit(train, val, epochs=4)

    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_acc"] > 0.9
    # the lr column is the rate each epoch trained with: PyTorch's get_last_lr() before stepping
    import torch

    t_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    t_sched = torch.optim.lr_scheduler.StepLR(t_opt, step_size=2, gamma=0.5)
    expected = []
    for _ in range(4):
        expected.append(t_sched.get_last_lr()[0])
        t_opt.step()
        t_sched.step()
    assert [h["lr"] for h in history] == expected == [0.1, 0.1, 0.05, 0.05]
    assert "val_top5" not in history[-1]  # 3 classes: top-5 would always be 100%
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert len(rows) == 4 and float(rows[-1]["val_acc"]) == history[-1]["val_acc"]
    final = json.loads((tmp_path / "metrics.json").read_text())["final"]
    assert np.asarray(final["confusion"]).sum() == 30
    for name in ("curves.png", "confusion.png"):
        assert (tmp_path / "figures" / name).stat().st_size > 1000
    assert not (tmp_path / "figures" / "predictions.png").exists()  # vectors, not images
    # evaluate agrees with a hand count
    result = trainer.evaluate(val)
    with minicnn.no_grad():
        preds = model(minicnn.tensor(x[90:])).numpy().argmax(1)
    assert result["val_acc"] == (preds == labels[90:]).mean()


def _blobs(n=60, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    x = (rng.standard_normal((classes, 8))[labels] * 3 + rng.standard_normal((n, 8)))
    return x.astype(np.float32), labels


def test_lr_column_of_a_per_batch_schedule_is_the_epochs_first_batch_rate(tmp_path):
    import torch

    x, labels = _blobs()
    loader = DataLoader(TensorDataset(x, labels), 20)  # 3 batches per epoch
    model = nn.Sequential(nn.Linear(8, 3))
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=3, steps_per_epoch=3)
    history = Trainer(model, opt, scheduler=sched, progress=False).fit(loader, epochs=3)

    t_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    t_sched = torch.optim.lr_scheduler.OneCycleLR(t_opt, max_lr=0.1, epochs=3, steps_per_epoch=3)
    expected = []
    for _ in range(3):
        expected.append(t_sched.get_last_lr()[0])
        for _ in range(3):
            t_opt.step()
            t_sched.step()
    np.testing.assert_allclose([h["lr"] for h in history], expected, rtol=1e-12)


def test_top5_is_recorded_only_with_more_than_five_classes():
    for classes, has_top5 in ((4, False), (5, False), (6, True)):
        x, labels = _blobs(n=60, classes=classes)
        model = nn.Sequential(nn.Linear(8, classes))
        result = Trainer(model, None, progress=False).evaluate(
            DataLoader(TensorDataset(x, labels), 32)
        )
        assert ("val_top5" in result) == has_top5, classes


def test_nan_input_stops_training_naming_epoch_and_batch_and_keeps_last_checkpoint(tmp_path):
    import pytest

    from minicnn.train import NonFiniteLossError, find_checkpoint

    minicnn.manual_seed(0)
    x, labels = _blobs(n=40)
    model = nn.Sequential(nn.Linear(8, 3))
    opt = optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer(model, opt, run_dir=tmp_path, progress=False)
    trainer.fit(DataLoader(TensorDataset(x, labels), 10), epochs=1)
    good = {k: v.numpy().copy() for k, v in model.state_dict().items()}

    bad = x.copy()
    bad[25, 3] = np.nan  # one NaN value: the third batch of 10
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, batch 3: the training loss is nan"):
        trainer.fit(DataLoader(TensorDataset(bad, labels), 10), epochs=2)
    # the NaN never reached the weights (the update was skipped), and nothing NaN was saved
    assert find_checkpoint(tmp_path).name == "epoch_001"
    saved = json.loads((tmp_path / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in saved] == [1]
    for k, v in model.state_dict().items():
        assert np.isfinite(v.numpy()).all(), k
    assert good.keys() == model.state_dict().keys()


def test_curves_have_integer_epoch_ticks_and_a_marker_for_one_epoch(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from minicnn.viz import plot_curves

    figures = []
    real_savefig = Figure.savefig
    monkeypatch.setattr(
        Figure, "savefig", lambda self, *a, **k: (figures.append(self), real_savefig(self, *a, **k))
    )
    plot_curves([{"epoch": 1, "train_loss": 0.5, "train_acc": 0.8}], tmp_path / "c.png")
    (ax_loss, ax_acc) = figures[0].axes
    for ax in (ax_loss, ax_acc):
        lo, hi = ax.get_xlim()
        visible = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert visible == [1.0]  # one whole-epoch tick, not 0.96 ... 1.04
        (line,) = ax.get_lines()
        assert line.get_marker() == "o" and list(line.get_xdata()) == [1]


def test_empty_loaders_are_refused_with_a_clear_error():
    x, labels = _blobs(n=0, classes=3)
    model = nn.Sequential(nn.Linear(8, 3))
    empty = DataLoader(TensorDataset(x, labels), 32)
    with pytest.raises(ValueError, match="evaluate: the loader yielded no images"):
        Trainer(model, None, progress=False).evaluate(empty)
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), progress=False)
    with pytest.raises(ValueError, match="train_epoch: the loader yielded no batches"):
        trainer.train_epoch(empty)
