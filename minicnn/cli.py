"""The ``minicnn`` command.

    minicnn train [--model small_resnet] [--data digits] [--epochs 12] ...
    minicnn eval RUN_DIR
    minicnn predict RUN_DIR IMAGE [IMAGE ...]
    minicnn summary MODEL [--input-size 1 32 32]
    minicnn export-torchvision MODEL OUT

``minicnn train`` with no arguments trains the default small residual CNN on the real
handwritten digits bundled with scikit-learn, with Adam and a one-cycle learning-rate
schedule, and leaves a run folder with metrics, figures and a checkpoint behind.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULERS = ("onecycle", "cosine", "step", "none")
DATASETS = ("digits", "shapes", "mnist", "fashion-mnist", "cifar10", "cifar100", "folder")
DEFAULT_EPOCHS = 12
NEEDS_DIR = ("mnist", "fashion-mnist", "cifar10", "cifar100", "folder")


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


# ---------------------------------------------------------------- data


def load_data(name: str, data_dir: str | None, subset: int | None, image_size: int = 32):
    """(train, test) datasets without transforms; images float32 (C, H, W) in [0, 1]."""
    from minicnn import data

    if name in NEEDS_DIR and not data_dir:
        raise CLIError(f"--data {name} needs --data-dir pointing at the downloaded files")
    if data_dir and not Path(data_dir).is_dir():
        raise CLIError(f"--data-dir {data_dir}: no such directory")
    if name == "digits":
        train, test = data.digits(True, size=image_size), data.digits(False, size=image_size)
    elif name == "shapes":
        train, test = data.shapes(True, size=image_size), data.shapes(False, size=image_size)
    elif name in ("mnist", "fashion-mnist"):
        fashion = name == "fashion-mnist"
        train, test = data.mnist(data_dir, True, fashion), data.mnist(data_dir, False, fashion)
    elif name in ("cifar10", "cifar100"):
        k = 10 if name == "cifar10" else 100
        train, test = data.cifar(data_dir, True, k), data.cifar(data_dir, False, k)
    else:  # folder: data_dir/train/<class>/..., data_dir/test/<class>/...
        root = Path(data_dir)
        if not (root / "train").is_dir() or not (root / "test").is_dir():
            raise CLIError(f"--data folder expects {root}/train/<class>/ and {root}/test/<class>/")
        tf = data.transforms.Resize(image_size)
        train = data.ImageFolder(root / "train", transform=tf)
        test = data.ImageFolder(root / "test", transform=tf, classes=train.classes)
    if subset:
        classes = train.classes
        train = data.Subset(train, range(min(subset, len(train))))
        test = data.Subset(test, range(min(subset, len(test))))
        train.classes = test.classes = classes
    return train, test


def channel_stats(dataset, limit: int = 2000) -> tuple[list[float], list[float]]:
    """Per-channel mean and std over (up to ``limit``) training images, for ``Normalize``."""
    images = np.stack([dataset[i][0] for i in range(min(limit, len(dataset)))])
    return images.mean(axis=(0, 2, 3)).tolist(), (images.std(axis=(0, 2, 3)) + 1e-6).tolist()


class _Transformed:
    """A dataset with a transform applied to its images."""

    def __init__(self, dataset, transform):
        self.dataset, self.transform = dataset, transform
        self.classes = dataset.classes

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        img, label = self.dataset[i]
        return self.transform(img), label


# ---------------------------------------------------------------- building blocks


def build_model(name: str, num_classes: int, in_channels: int):
    from minicnn.models import MODELS

    if name not in MODELS:
        raise CLIError(f"unknown model {name!r}; choose from: {', '.join(sorted(MODELS))}")
    return MODELS[name](num_classes=num_classes, in_channels=in_channels)


def build_optimizer(name: str, params, lr: float, weight_decay: float):
    from minicnn import optim

    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    return optim.RMSprop(params, lr=lr, weight_decay=weight_decay)


def build_scheduler(name: str, optimizer, lr: float, epochs: int, steps_per_epoch: int):
    """(scheduler, interval): OneCycle and cosine step per batch, StepLR per epoch."""
    from minicnn.optim import lr_scheduler

    if name == "onecycle":
        return lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, epochs=epochs, steps_per_epoch=steps_per_epoch
        ), "batch"
    if name == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch), "batch"
    if name == "step":
        return lr_scheduler.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1), "epoch"
    return None, "batch"


# ---------------------------------------------------------------- commands


def cmd_train(args) -> int:
    from minicnn import data, serialization
    from minicnn.backend import current_backend
    from minicnn.random import manual_seed
    from minicnn.train import Trainer

    if args.epochs is not None and args.epochs < 1:
        raise CLIError(f"--epochs must be at least 1, got {args.epochs}")
    if args.batch_size < 1:
        raise CLIError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.lr <= 0:
        raise CLIError(f"--lr must be positive, got {args.lr}")
    config = vars(args).copy()
    config.pop("func", None)
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "config.json").exists():
            raise CLIError(f"--resume {run_dir}: not a run folder (no config.json)")
        saved = serialization.load_json(run_dir / "config.json")
        # A resume continues the planned run. Only a schedule that does not depend on the
        # total length (step, none) may be extended with a larger --epochs.
        if args.epochs is not None and args.epochs != saved["epochs"]:
            if saved["scheduler"] in ("onecycle", "cosine"):
                raise CLIError(
                    f"--epochs {args.epochs}: this run's {saved['scheduler']} schedule was planned "
                    f"for {saved['epochs']} epochs and cannot be extended; resume without --epochs"
                )
            saved["epochs"] = args.epochs
        config = saved
        config = saved
    else:
        config["epochs"] = args.epochs or DEFAULT_EPOCHS
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = Path(args.out) if args.out else Path("runs") / f"{args.model}-{args.data}-{stamp}"
    manual_seed(config["seed"])
    train_set, test_set = load_data(config["data"], config["data_dir"], config["subset"])
    sample = train_set[0][0]
    in_channels, num_classes = sample.shape[0], len(train_set.classes)
    if "mean" not in config:
        config["mean"], config["std"] = channel_stats(train_set)
    normalize = data.transforms.Normalize(config["mean"], config["std"])
    train_tf = data.transforms.Compose(
        [data.transforms.RandomCrop(sample.shape[1:], padding=config["crop_padding"]), normalize]
    )
    if config["hflip"]:
        train_tf.transforms.insert(1, data.transforms.RandomHorizontalFlip())
    train_loader = data.DataLoader(
        _Transformed(train_set, train_tf), config["batch_size"], shuffle=True, prefetch=2
    )
    test_loader = data.DataLoader(_Transformed(test_set, normalize), 256)
    config.update(
        in_channels=int(in_channels),
        num_classes=num_classes,
        image_size=list(sample.shape[1:]),
        classes=list(train_set.classes),
    )

    model = build_model(config["model"], num_classes, in_channels)
    optimizer = build_optimizer(
        config["optimizer"], model.parameters(), config["lr"], config["weight_decay"]
    )
    scheduler, interval = build_scheduler(
        config["scheduler"], optimizer, config["lr"], config["epochs"], len(train_loader)
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    serialization.save_json(config, run_dir / "config.json")
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"minicnn train: {config['model']} ({n_params:,} parameters) on {config['data']} "
        f"({len(train_set)} train / {len(test_set)} test images, {num_classes} classes), "
        f"{config['optimizer']} + {config['scheduler']}, backend "
        f"{current_backend().name}, device {config['device']}"
    )
    print(f"run folder: {run_dir}")
    trainer = Trainer(
        model,
        optimizer,
        scheduler=scheduler,
        scheduler_interval=interval,
        device=config["device"],
        run_dir=run_dir,
        classes=train_set.classes,
        progress=not args.no_progress,
    )
    start = time.perf_counter()
    history = trainer.fit(
        train_loader, test_loader, config["epochs"], resume=run_dir if args.resume else None
    )
    last = history[-1]
    print(
        f"done in {time.perf_counter() - start:.1f} s: test accuracy {100 * last['val_acc']:.2f}% "
        f"(top-5 {100 * last['val_top5']:.2f}%), test loss {last['val_loss']:.4f}"
    )
    print(
        f"wrote {run_dir}/metrics.csv, metrics.json, figures/curves.png, figures/confusion.png, "
        f"figures/predictions.png, checkpoints/"
    )
    return 0


def _load_run(run: str):
    from minicnn import serialization
    from minicnn.random import manual_seed
    from minicnn.train import load_checkpoint

    run_dir = Path(run)
    if not (run_dir / "config.json").exists():
        raise CLIError(
            f"{run_dir}: not a run folder (no config.json); pass the --out of minicnn train"
        )
    config = serialization.load_json(run_dir / "config.json")
    manual_seed(config["seed"])
    model = build_model(config["model"], config["num_classes"], config["in_channels"])
    load_checkpoint(run_dir, model)
    model.eval()
    return config, model


def cmd_eval(args) -> int:
    from minicnn import data
    from minicnn.train import Trainer

    config, model = _load_run(args.run)
    _, test_set = load_data(config["data"], config["data_dir"], config["subset"])
    loader = data.DataLoader(
        _Transformed(test_set, data.transforms.Normalize(config["mean"], config["std"])), 256
    )
    result = Trainer(model, optimizer=None, device=args.device, progress=False).evaluate(loader)
    print(
        f"{args.run}: test loss {result['val_loss']:.4f}, top-1 {100 * result['val_acc']:.2f}%, "
        f"top-5 {100 * result['val_top5']:.2f}% on {len(test_set)} images"
    )
    print("confusion matrix (rows: true, columns: predicted):")
    print(result["confusion"])
    return 0


def cmd_predict(args) -> int:
    from minicnn import data
    from minicnn.autograd import no_grad, tensor
    from minicnn.autograd.ops import softmax

    config, model = _load_run(args.run)
    size = tuple(config["image_size"])
    normalize = data.transforms.Normalize(config["mean"], config["std"])
    for path in args.images:
        if not Path(path).exists():
            raise CLIError(f"{path}: no such file")
        img = data.load_image(path, grayscale=config["in_channels"] == 1)
        if config["data"] == "digits":
            img = img.max() - img  # digits are light strokes on black: invert a dark-on-light scan
            img = img / max(img.max(), 1e-8)
        img = normalize(data.transforms.resize(img, size))
        with no_grad():
            probs = softmax(model(tensor(img[None])), 1).numpy()[0]
        top = np.argsort(-probs)[:3]
        guesses = ", ".join(f"{config['classes'][i]} ({100 * probs[i]:.1f}%)" for i in top)
        print(f"{path}: {guesses}")
    return 0


def cmd_export_torchvision(args) -> int:
    from minicnn.models import export_torchvision

    path = export_torchvision(args.model, args.out)
    print(
        f"wrote the state_dict of torchvision.models.{args.model}() to {path}; load it with "
        f"minicnn.models.load_weights(minicnn.models.{args.model}(), {str(path)!r})"
    )
    return 0


def cmd_summary(args) -> int:
    from minicnn.summary import summary

    model = build_model(args.model, args.num_classes, args.input_size[0])
    print(summary(model, tuple(args.input_size)))
    return 0


# ---------------------------------------------------------------- parser


def make_parser() -> argparse.ArgumentParser:
    from minicnn.models import MODELS

    parser = argparse.ArgumentParser(
        prog="minicnn",
        description="minicnn: train, evaluate and inspect CNNs built from scratch.",
        epilog="Run 'minicnn COMMAND --help' for the options of a command.",
    )
    sub = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")

    t = sub.add_parser(
        "train",
        help="train a model on built-in or downloaded data",
        description="Train a CNN; writes metrics, figures and checkpoints to a run folder.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    t.add_argument("--model", default="small_resnet", choices=sorted(MODELS), help="architecture")
    t.add_argument(
        "--data",
        default="digits",
        choices=DATASETS,
        help="dataset: digits/shapes are built in; the others read --data-dir",
    )
    t.add_argument(
        "--data-dir",
        default=None,
        help="folder with downloaded MNIST/CIFAR files or an image folder",
    )
    t.add_argument("--epochs", type=int, default=None, help=f"epochs (default {DEFAULT_EPOCHS})")
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=0.01, help="learning rate (OneCycle: the peak rate)")
    t.add_argument("--weight-decay", type=float, default=5e-4)
    t.add_argument("--optimizer", default="adam", choices=OPTIMIZERS)
    t.add_argument("--scheduler", default="onecycle", choices=SCHEDULERS)
    t.add_argument(
        "--crop-padding", type=int, default=2, help="random-crop augmentation padding (0: none)"
    )
    t.add_argument("--hflip", action="store_true", help="random horizontal flips (not for digits)")
    t.add_argument("--device", default="cpu", help="cpu or cuda")
    t.add_argument(
        "--backend", default=None, choices=("numba", "numpy"), help="CPU kernels (default: numba)"
    )
    t.add_argument("--out", default=None, help="run folder (default: runs/MODEL-DATA-TIME)")
    t.add_argument(
        "--resume", default=None, metavar="RUN_DIR", help="continue a run from its last checkpoint"
    )
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--subset", type=int, default=None, help="use only the first N train and test images"
    )
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="evaluate a trained run on its test set")
    e.add_argument("run", metavar="RUN_DIR")
    e.add_argument("--device", default="cpu")
    e.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="classify image files with a trained run")
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_predict)

    s = sub.add_parser("summary", help="per-layer output shapes, parameters and multiply-adds")
    s.add_argument("model", choices=sorted(MODELS))
    s.add_argument("--input-size", type=int, nargs=3, default=[1, 32, 32], metavar=("C", "H", "W"))
    s.add_argument("--num-classes", type=int, default=10)
    s.set_defaults(func=cmd_summary)

    x = sub.add_parser(
        "export-torchvision",
        help="write a torchvision model's weights to safetensors (needs PyTorch)",
        description="Build torchvision.models.MODEL() and save its state_dict as safetensors, "
        "ready for minicnn.models.load_weights. Nothing is downloaded.",
    )
    x.add_argument("model", metavar="MODEL", help="a torchvision model name, e.g. resnet18")
    x.add_argument("out", metavar="OUT", help="output file (.safetensors or .npz)")
    x.set_defaults(func=cmd_export_torchvision)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if getattr(args, "backend", None):
            from minicnn.backend import set_backend

            set_backend(args.backend)
        return args.func(args)
    except CLIError as e:
        print(f"minicnn: error: {e}", file=sys.stderr)
    except (FileNotFoundError, ImportError, ValueError, RuntimeError) as e:
        print(f"minicnn: error: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        print(
            "minicnn: interrupted (the last checkpoint is intact; continue with --resume)",
            file=sys.stderr,
        )
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
