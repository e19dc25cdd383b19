"""``Trainer``: the training loop of the course, with progress bars, evaluation,
checkpoints, resume, and a run folder of metrics and figures.

The loop itself is the one every lesson writes by hand::

    for images, labels in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        scheduler.step()          # per batch (OneCycle) or per epoch (StepLR)

A run folder holds ``metrics.csv`` and ``metrics.json`` (one row per epoch),
``figures/curves.png``, ``figures/confusion.png``, ``figures/predictions.png`` and
``checkpoints/`` (see :mod:`minicnn.train.checkpoint`). The ``lr`` column is the rate the
epoch trained with (for a per-batch schedule, the rate of its first batch), as PyTorch's
``scheduler.get_last_lr()`` reads before the epoch's steps. Top-5 accuracy is recorded
only for more than 5 classes.

A loss that is not finite (NaN or infinity: too high a learning rate, a NaN in the data)
stops training with :class:`NonFiniteLossError` naming the epoch and batch, before the
update; the run folder keeps its last (finite) checkpoint.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from minicnn.autograd import no_grad, tensor
from minicnn.backend import to_device
from minicnn.nn import functional as F
from minicnn.serialization import atomic_write, save_json
from minicnn.train.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from minicnn.train.metrics import RunningMean, confusion_matrix, topk_correct
from minicnn.train.run_dir import remove_stale_temp

SCHEDULER_INTERVALS = ("batch", "epoch")
TOP_K = 5  # the second accuracy recorded, when there are more than TOP_K classes


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; names the epoch and batch."""


class Trainer:
    """Train ``model`` with ``optimizer`` on classification data.

    Args:
        model: a ``minicnn.nn.Module`` mapping images ``(N, C, H, W)`` to logits ``(N, classes)``.
        optimizer: a ``minicnn.optim`` optimizer over ``model.parameters()``.
        loss_fn: ``loss_fn(logits, targets)``; default ``F.cross_entropy``.
        scheduler: an optional learning-rate scheduler.
        scheduler_interval: "batch" (step after every batch, as OneCycleLR wants) or "epoch".
        device: "cpu" or "cuda".
        run_dir: where metrics, figures and checkpoints go (None: nowhere).
        classes: class names, for the figures.
        progress: show tqdm progress bars.
    """

    def __init__(
        self,
        model,
        optimizer,
        loss_fn: Callable | None = None,
        scheduler=None,
        scheduler_interval: str = "batch",
        device: str = "cpu",
        run_dir=None,
        classes=None,
        progress: bool = True,
    ):
        if scheduler_interval not in SCHEDULER_INTERVALS:
            raise ValueError(
                f"scheduler_interval must be one of {SCHEDULER_INTERVALS}, "
                f"got {scheduler_interval!r}"
            )
        self.model = model.to(device)
        self.optimizer = optimizer
        self.loss_fn = loss_fn or F.cross_entropy
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval
        self.device = device
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.classes = classes
        self.progress = progress
        self.history: list[dict] = []
        self.epoch = 0

    def _batch(self, images, targets):
        return (
            tensor(images, device=self.device),
            tensor(np.asarray(targets, dtype=np.int64), device=self.device),
        )

    def training_step(self, x, y) -> tuple:
        """One batch's forward pass: ``(loss, sums)``, the loss Tensor to minimise and the
        values to log, each summed over the batch's samples (here ``acc``: the number of
        correct top-1 predictions). The epoch reports ``train_<name>`` = their total over
        the samples seen. Task recipes override this (and :meth:`_batch`) for their models
        and losses; the loop around it stays :meth:`train_epoch`'s."""
        logits = self.model(x)
        loss = self.loss_fn(logits, y)
        return loss, {"acc": topk_correct(to_device(logits.array, "cpu"),
                                          to_device(y.array, "cpu"), 1)}

    def _nonfinite_detail(self, sums: dict, n: int) -> str:
        """What the error for a non-finite loss adds after the loss (a recipe names its
        loss terms); nothing here."""
        return ""

    def train_epoch(self, loader, epochs: int | None = None) -> dict:
        """One pass over ``loader`` with updates (:meth:`training_step` per batch); returns
        ``{"train_loss", "train_<name>" for each logged sum, "train_images_per_s",
        "train_seconds"}`` (classification: ``train_acc``)."""
        self.model.train()
        loss_avg, totals, seen = RunningMean(), {}, 0
        start = time.perf_counter()
        desc = f"epoch {self.epoch + 1}" + (f"/{epochs}" if epochs else "")
        bar = tqdm(
            loader,
            desc=desc,
            unit="batch",
            leave=True,
            disable=not self.progress,
            dynamic_ncols=True,
        )
        for batch, (images, targets) in enumerate(bar, 1):
            x, y = self._batch(images, targets)
            self.optimizer.zero_grad()
            try:
                loss, sums = self.training_step(x, y)
            except Exception:
                bar.close()
                raise
            value = loss.item()
            n = len(targets)
            if not math.isfinite(value):
                bar.close()
                raise NonFiniteLossError(
                    f"epoch {self.epoch + 1}, batch {batch}: the training loss is {value}"
                    f"{self._nonfinite_detail(sums, n)}; training stopped before this update "
                    f"(try a lower learning rate, and check the data for NaN or infinite values)"
                )
            loss.backward()
            self.optimizer.step()
            if self.scheduler is not None and self.scheduler_interval == "batch":
                self.scheduler.step()
            loss_avg.update(value, n)
            for key, total in sums.items():
                totals[key] = totals.get(key, 0) + total
            seen += n
            postfix = {"loss": f"{loss_avg.mean:.4f}"}
            if "acc" in totals:
                postfix["acc"] = f"{100 * totals['acc'] / seen:.1f}%"
            postfix["img_s"] = f"{seen / (time.perf_counter() - start):.0f}"
            bar.set_postfix(**postfix)
        if seen == 0:
            raise ValueError("train_epoch: the loader yielded no batches, expected at least one "
                             "(an empty dataset, or drop_last with fewer images than a batch?)")
        if self.scheduler is not None and self.scheduler_interval == "epoch":
            self.scheduler.step()
        seconds = time.perf_counter() - start
        return {
            "train_loss": loss_avg.mean,
            **{f"train_{key}": total / seen for key, total in totals.items()},
            "train_images_per_s": seen / seconds,
            "train_seconds": seconds,
        }

    def evaluate(self, loader, num_classes: int | None = None) -> dict:
        """Loss, top-1 accuracy, the confusion matrix on ``loader`` (no updates) and, with more
        than 5 classes, top-5 accuracy (``val_top5``)."""
        self.model.eval()
        loss_avg, top1, top5 = RunningMean(), 0, 0
        preds, trues, logits_all = [], [], []
        with no_grad():
            for images, targets in loader:
                x, y = self._batch(images, targets)
                logits = self.model(x)
                loss_avg.update(self.loss_fn(logits, y).item(), len(targets))
                out = to_device(logits.array, "cpu")
                t = np.asarray(targets)
                top1 += topk_correct(out, t, 1)
                top5 += topk_correct(out, t, 5)
                preds.append(out.argmax(1))
                trues.append(t)
                logits_all.append(out)
        if not trues or sum(len(t) for t in trues) == 0:
            raise ValueError("evaluate: the loader yielded no images, expected at least one "
                             "(an empty test set?)")
        preds, trues = np.concatenate(preds), np.concatenate(trues)
        num_classes = num_classes or logits_all[0].shape[1]
        result = {"val_loss": loss_avg.mean, "val_acc": top1 / len(trues)}
        if logits_all[0].shape[1] > TOP_K:
            result["val_top5"] = top5 / len(trues)
        return {
            **result,
            "confusion": confusion_matrix(preds, trues, num_classes),
            "predictions": preds,
            "targets": trues,
        }

    def fit(
        self, train_loader, val_loader=None, epochs: int = 1, resume=None, checkpoint_every: int = 1
    ) -> list[dict]:
        """Train for ``epochs`` epochs (counting those done before a resume); returns the history.

        ``resume``: a run folder or checkpoint to continue from: model, optimizer,
        scheduler, RNG and history are restored, and training continues at the next epoch
        exactly as if it had never stopped.
        """
        if resume is not None:
            if self.run_dir is not None:
                remove_stale_temp(self.run_dir)  # the temporary files of a killed write
            state = load_checkpoint(resume, self.model, self.optimizer, self.scheduler)
            self.epoch = state["epoch"]
            self.history = state["extra"].get("history", [])
        evaluation = None
        while self.epoch < epochs:
            lr = self.optimizer.param_groups[0]["lr"]  # the rate this epoch trains with
            try:
                row = {"epoch": self.epoch + 1, **self.train_epoch(train_loader, epochs)}
            except NonFiniteLossError as e:
                raise NonFiniteLossError(f"{e}; {self._kept_checkpoint()}") from None
            row["lr"] = lr
            if val_loader is not None:
                evaluation = self.evaluate(val_loader)
                row.update(self._val_row(evaluation))
                if self.progress:
                    tqdm.write(self._val_message(row))
            self.epoch += 1
            self.history.append(row)
            if self.run_dir is not None:
                self._write_metrics()
                if checkpoint_every and (
                    self.epoch % checkpoint_every == 0 or self.epoch == epochs
                ):
                    save_checkpoint(
                        self.run_dir,
                        self.model,
                        self.optimizer,
                        self.scheduler,
                        self.epoch,
                        {"history": self.history},
                    )
        if self.run_dir is not None and self.history:
            if evaluation is None and val_loader is not None:
                # nothing left to train (a resume after the last checkpoint was written):
                # the final evaluation, for the figures a kill may have prevented
                evaluation = self.evaluate(val_loader)
            self._write_figures(val_loader, evaluation)
        return self.history

    def _val_row(self, evaluation: dict) -> dict:
        """The numbers of an evaluation that go into the epoch's row of metrics.csv."""
        return {k: evaluation[k] for k in ("val_loss", "val_acc", "val_top5") if k in evaluation}

    def _val_message(self, row: dict) -> str:
        """The line printed after each epoch's evaluation."""
        top5 = f", top-5 {100 * row['val_top5']:.2f}%" if "val_top5" in row else ""
        return (f"epoch {row['epoch']}: val loss {row['val_loss']:.4f}, "
                f"top-1 {100 * row['val_acc']:.2f}%{top5}")

    def _kept_checkpoint(self) -> str:
        try:
            return f"the last checkpoint, {find_checkpoint(self.run_dir)}, is kept"
        except (FileNotFoundError, TypeError, ValueError):
            return "no checkpoint was saved"

    def _write_metrics(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        keys = list(dict.fromkeys(k for row in self.history for k in row))

        def write(tmp):
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=keys)
                writer.writeheader()
                writer.writerows(self.history)

        atomic_write(self.run_dir / "metrics.csv", write)
        save_json({"history": self.history}, self.run_dir / "metrics.json")

    def _write_figures(self, val_loader, evaluation) -> None:
        from minicnn import viz

        figures = self.run_dir / "figures"
        figures.mkdir(parents=True, exist_ok=True)
        viz.plot_curves(self.history, figures / "curves.png")
        if evaluation is None:
            return
        classes = self.classes or [str(i) for i in range(evaluation["confusion"].shape[0])]
        viz.plot_confusion(evaluation["confusion"], classes, figures / "confusion.png")
        images, targets = next(iter(val_loader))
        n = min(32, len(targets))
        if np.ndim(images) == 4:  # a grid of predictions only makes sense for images
            viz.plot_predictions(
                np.asarray(images)[:n],
                np.asarray(targets)[:n],
                evaluation["predictions"][:n],
                classes,
                figures / "predictions.png",
            )
        final = {k: v for k, v in evaluation.items() if k not in ("predictions", "targets")}
        save_json({"history": self.history, "final": final}, self.run_dir / "metrics.json")


def fit(model, optimizer, train_loader, val_loader=None, epochs: int = 1, **kwargs) -> list[dict]:
    """Shortcut: ``Trainer(model, optimizer, **kwargs).fit(train_loader, val_loader, epochs)``."""
    return Trainer(model, optimizer, **kwargs).fit(train_loader, val_loader, epochs)
