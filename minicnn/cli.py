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
import os
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
        test = data.ImageFolder(root / "test", transform=tf)
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


# The options a run's config.json records. ``--resume`` continues with the saved values;
# giving one of these explicitly with a different value is an error. --device,
# --no-progress and (for a step or none schedule) --epochs may change on resume.
RUN_OPTIONS = (
    "model",
    "data",
    "data_dir",
    "subset",
    "batch_size",
    "lr",
    "weight_decay",
    "optimizer",
    "scheduler",
    "crop_padding",
    "hflip",
    "backend",
    "seed",
)
# Every key cmd_train writes to config.json, with its type: eval, predict and --resume
# check a config.json against it (a missing key or a wrong type names the file).
CONFIG_KEYS: dict[str, type | tuple] = {
    "model": str,
    "data": str,
    "data_dir": (str, type(None)),
    "subset": (int, type(None)),
    "epochs": int,
    "batch_size": int,
    "lr": (int, float),
    "weight_decay": (int, float),
    "optimizer": str,
    "scheduler": str,
    "crop_padding": int,
    "hflip": bool,
    "device": str,
    "seed": int,
    "mean": list,
    "std": list,
    "in_channels": int,
    "num_classes": int,
    "image_size": list,
    "classes": list,
}
RUN_FILES = (
    "metrics.csv",
    "metrics.json",
    "figures/curves.png",
    "figures/confusion.png",
    "figures/predictions.png",
)


def _read_config(run_dir: Path) -> dict:
    """The run's checked config.json (one-line errors naming the file)."""
    from minicnn.train import CheckpointError
    from minicnn.train.checkpoint import read_json_file

    config = read_json_file(run_dir / "config.json", CONFIG_KEYS)
    for key, choices in (("optimizer", OPTIMIZERS), ("scheduler", SCHEDULERS), ("data", DATASETS)):
        if config[key] not in choices:
            raise CheckpointError(
                f"{run_dir / 'config.json'}: {key!r} must be one of {', '.join(choices)}, "
                f"got {config[key]!r}"
            )
    if config["epochs"] < 1:
        raise CheckpointError(f"{run_dir / 'config.json'}: 'epochs' must be at least 1")
    return config


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _resume_config(args, given: set[str], run_dir: Path) -> tuple[dict, int, bool]:
    """(saved config, epochs already done, whether config.json must be rewritten).

    Refuses explicit arguments that differ from the saved configuration, and an --epochs
    that the run cannot take (fewer than done; a changed onecycle/cosine plan).
    """
    from minicnn.train import read_state

    config = _read_config(run_dir)
    if "out" in given:
        raise CLIError(f"--out cannot be combined with --resume (the run folder is {run_dir})")
    for name in RUN_OPTIONS:
        if name not in given:
            continue
        value, saved = getattr(args, name), config.get(name)
        if name == "data_dir" and value is not None:
            value = str(Path(value).resolve())
        if name == "backend" and saved is None:  # a run from before the backend was saved
            config["backend"] = value
            continue
        if value != saved:
            raise CLIError(
                f"{_option(name)} {value}: this run was trained with {_option(name)} {saved}; "
                f"--resume continues a run with its saved configuration (start a new run "
                f"with --out to change it)"
            )
    try:
        done = read_state(run_dir)["epoch"]
    except FileNotFoundError:  # killed before its first checkpoint: start from epoch 0
        done = 0
    planned = config["epochs"]
    epochs = args.epochs if "epochs" in given else planned
    if epochs < done:
        raise CLIError(
            f"--epochs {epochs}: the run {run_dir} already has {done} epochs; give --epochs "
            f"{done} or more"
        )
    if epochs != planned and config["scheduler"] in ("onecycle", "cosine"):
        raise CLIError(
            f"--epochs {epochs}: this run's {config['scheduler']} schedule was planned for "
            f"{planned} epochs and cannot be extended or shortened; resume without --epochs "
            f"(only --scheduler step or none runs can change their number of epochs)"
        )
    if epochs == done and all((run_dir / name).exists() for name in RUN_FILES):
        raise CLIError(
            f"--resume {run_dir}: the run already has all its {done} epochs; nothing to do"
            + (
                ""
                if config["scheduler"] in ("onecycle", "cosine")
                else f" (give --epochs N with N > {done} to train it further)"
            )
        )
    config["epochs"] = epochs
    return config, done, epochs != planned


def _check_device_and_model(model, device: str, sample: np.ndarray, config: dict) -> None:
    """Fail before any folder exists: a bad --device, or images the model cannot take."""
    from minicnn.autograd import no_grad, tensor
    from minicnn.backend import to_device

    try:
        to_device(np.zeros(1, np.float32), device)
    except (ValueError, ImportError, RuntimeError, OSError) as e:
        raise CLIError(f"--device {device}: {e}") from None
    model.to(device)
    model.eval()  # no statistics are updated, no randomness is drawn
    try:
        with no_grad():
            model(tensor(sample[None], device=device))
    except (ValueError, IndexError, RuntimeError) as e:
        raise CLIError(
            f"--model {config['model']} cannot take the images of --data {config['data']} "
            f"(shape {list(sample.shape)}): {e}"
        ) from None
    model.train()


def cmd_train(args) -> int:
    from minicnn.backend import current_backend, use_backend
    from minicnn.train import RunLock

    if args.epochs is not None and args.epochs < 1:
        raise CLIError(f"--epochs must be at least 1, got {args.epochs}")
    if args.batch_size < 1:
        raise CLIError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.lr <= 0:
        raise CLIError(f"--lr must be positive, got {args.lr}")
    if args.subset is not None and args.subset < 1:
        raise CLIError(f"--subset must be at least 1 (images), got {args.subset}")
    if args.crop_padding < 0:
        raise CLIError(f"--crop-padding must be 0 or more, got {args.crop_padding}")
    given = getattr(args, "given", None)
    if given is None:  # called without main(): everything counts as given
        given = {k for k, v in vars(args).items() if v is not None}
    if not args.resume:
        config = {k: getattr(args, k) for k in (*RUN_OPTIONS, "device")}
        config["epochs"] = args.epochs or DEFAULT_EPOCHS
        config["backend"] = args.backend or current_backend().name
        if config["data_dir"]:
            config["data_dir"] = str(Path(config["data_dir"]).resolve())
        with use_backend(config["backend"]):
            return _train(args, config, None, done=0, rewrite_config=True)
    run_dir = Path(args.resume)
    if not (run_dir / "config.json").is_file():
        raise CLIError(f"--resume {run_dir}: not a run folder (no config.json)")
    with RunLock(run_dir) as lock:
        config, done, rewrite = _resume_config(args, given, run_dir)
        if "device" in given:
            config["device"] = args.device
        with use_backend(config.get("backend") or current_backend().name):
            return _train(args, config, lock, done=done, rewrite_config=rewrite)


def _train(args, config: dict, lock, done: int, rewrite_config: bool) -> int:
    """Train a new run (``lock`` None: the folder is created here) or resume a locked one."""
    from minicnn import data, serialization
    from minicnn.backend import current_backend
    from minicnn.random import manual_seed
    from minicnn.train import RunDirError, Trainer, claim_run_dir

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
    _check_device_and_model(model, config["device"], normalize(sample), config)
    optimizer = build_optimizer(
        config["optimizer"], model.parameters(), config["lr"], config["weight_decay"]
    )
    scheduler, interval = build_scheduler(
        config["scheduler"], optimizer, config["lr"], config["epochs"], len(train_loader)
    )
    if lock is None:  # a new run: everything is checked, now the folder
        if args.out:
            lock = claim_run_dir(args.out)
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            lock = claim_run_dir(
                Path("runs") / f"{config['model']}-{config['data']}-{stamp}", generated=True
            )
    run_dir = lock.run_dir
    try:
        with lock:
            if rewrite_config:
                serialization.save_json(config, run_dir / "config.json")
            n_params = sum(p.numel() for p in model.parameters())
            print(
                f"minicnn train: {config['model']} ({n_params:,} parameters) on "
                f"{config['data']} ({len(train_set)} train / {len(test_set)} test images, "
                f"{num_classes} classes), {config['optimizer']} + {config['scheduler']}, "
                f"backend {current_backend().name}, device {config['device']}"
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
                train_loader, test_loader, config["epochs"], resume=run_dir if done else None
            )
    except OSError as e:
        if isinstance(e, RunDirError):
            raise
        raise CLIError(
            f"{run_dir}: writing the run failed ({_describe_os_error(e)}); "
            f"the last complete checkpoint is intact"
        ) from None
    last = history[-1]
    top5 = f" (top-5 {100 * last['val_top5']:.2f}%)" if "val_top5" in last else ""
    print(
        f"done in {time.perf_counter() - start:.1f} s: test accuracy {100 * last['val_acc']:.2f}%"
        f"{top5}, test loss {last['val_loss']:.4f}"
    )
    written = [name for name in ("config.json", *RUN_FILES) if (run_dir / name).exists()]
    print(f"wrote in {run_dir}: {', '.join(written)}, checkpoints/")
    return 0


def _describe_os_error(e: OSError) -> str:
    """``[Errno 28] No space left on device`` -> ``No space left on device: FILE``."""
    text = e.strerror or str(e)
    return f"{text}: {e.filename}" if e.filename else text


def _load_run(run: str):
    import minicnn
    from minicnn.train import load_checkpoint

    run_dir = Path(run)
    if not (run_dir / "config.json").exists():
        raise CLIError(
            f"{run_dir}: not a run folder (no config.json); pass the --out of minicnn train"
        )
    config = _read_config(run_dir)
    minicnn.manual_seed(config["seed"])
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
    top5 = f", top-5 {100 * result['val_top5']:.2f}%" if "val_top5" in result else ""
    print(
        f"{args.run}: test loss {result['val_loss']:.4f}, top-1 {100 * result['val_acc']:.2f}%"
        f"{top5} on {len(test_set)} images"
    )
    print("confusion matrix (rows: true, columns: predicted):")
    print(result["confusion"])
    return 0


def cmd_predict(args) -> int:
    import minicnn
    from minicnn import data

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
        with minicnn.no_grad():
            probs = minicnn.softmax(model(minicnn.tensor(img[None])), 1).numpy()[0]
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


def _available_memory() -> int:
    """Bytes of memory available to a new allocation (MemAvailable; else all of RAM)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not refuse


def _estimate_activation_bytes(model, input_size: tuple[int, int, int]) -> int | None:
    """float32 bytes of all layer outputs of ``model`` on one ``(C, H, W)`` image.

    Measured on a copy of the input shrunk to about 128 pixels on its longer side, then
    scaled by the ratio of areas (activations grow with H*W; the classifier's do not, so
    this overestimates a little). None when the shrunk pass fails.
    """
    from minicnn.summary import summary

    c, h, w = input_size
    scale = max(h, w) / 128
    small = (c, max(1, round(h / scale)), max(1, round(w / scale)))
    try:
        table = summary(model, small)
    except (ValueError, RuntimeError, TypeError):
        return None
    elements = sum(int(np.prod(layer.output_shape)) for layer in table.layers)
    return int(4 * elements * (h * w) / (small[1] * small[2]))


def cmd_summary(args) -> int:
    from minicnn.summary import summary

    if args.num_classes is not None and args.num_classes < 1:
        raise CLIError(f"--num-classes must be at least 1, got {args.num_classes}")
    if min(args.input_size) < 1:
        raise CLIError(f"--input-size takes C H W of at least 1 each, got {args.input_size}")
    model = build_model(args.model, args.num_classes, args.input_size[0])
    _check_summary_memory(model, args.model, args.input_size)
    print(summary(model, tuple(args.input_size)))
    return 0


def _check_summary_memory(model, name: str, input_size) -> None:
    """Refuse an input whose activations would not fit in memory (estimated cheaply first)."""
    c, h, w = input_size
    if h * w <= 512 * 512:  # small inputs always fit
        return
    need = _estimate_activation_bytes(model, (c, h, w))
    have = _available_memory()
    if need is not None and need > have // 2:
        raise CLIError(
            f"--input-size {c} {h} {w}: {name}'s activations on one image would take "
            f"about {need / 2**30:.1f} GiB, more than this machine can spare "
            f"({have / 2**30:.1f} GiB available); use a smaller --input-size"
        )


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
    t.add_argument(
        "--out", default=None, help="a new or empty run folder (default: runs/MODEL-DATA-TIME)"
    )
    t.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue a run from its last checkpoint with its saved settings (other values "
        "for them are refused; --device may change; --epochs only for --scheduler step/none)",
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


def _given_options(argv: list[str] | None) -> set[str]:
    """The options given on the command line, as ``args`` attribute names (not defaults)."""
    parser = make_parser()
    parsers = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            parsers += list(action.choices.values())
    for p in parsers:  # parse again with no defaults: only what was typed is set
        p._defaults.clear()
        for action in p._actions:
            action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    args.given = _given_options(argv)
    try:
        return args.func(args)  # train runs under its --backend (or the saved one on resume)
    except CLIError as e:
        print(f"minicnn: error: {e}", file=sys.stderr)
    except OSError as e:  # a read-only folder, a full disk, a file where a folder belongs ...
        print(f"minicnn: error: {_describe_os_error(e) if e.strerror else e}", file=sys.stderr)
    except (ImportError, ValueError, RuntimeError, FloatingPointError) as e:
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
