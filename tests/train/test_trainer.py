"""The Trainer: the loss falls, metrics are right, the run folder is complete."""

import csv
import json

import numpy as np

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
    assert [h["lr"] for h in history] == [0.1, 0.05, 0.05, 0.025]
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
