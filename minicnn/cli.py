"""The ``minicnn`` command.

    minicnn train [--model small_resnet] [--data digits] [--epochs 12] ...
    minicnn train --task detect [--model yolo_v1_small] [--data digit_scenes|shapes] ...
    minicnn train --task segment [--model unet|resunet|deconvnet] [--data shapes|digit_scenes] ...
    minicnn train --task instance [--model maskrcnn_small] [--data shapes|digit_scenes] ...
    minicnn train --task denoise [--model dncnn|dncnn_s|noise_aware] [--noise 25] ...
    minicnn train --task superres [--model srcnn] [--scale 3] ...
    minicnn train --task raw2rgb [--model pynet_narrow|pynet] ...
    minicnn train --task landmarks [--model landmark_unet|landmark_regressor] ...
    minicnn eval RUN_DIR
    minicnn predict RUN_DIR IMAGE [IMAGE ...] [--invert auto|yes|no]
    minicnn summary MODEL [--input-size C H W] [--num-classes K]
    minicnn models
    minicnn export-torchvision MODEL OUT [--weights FILE.pth]
    minicnn compress RUN_DIR [--prune 0.9] [--bits 6] [--finetune-epochs N]
    minicnn homework build OUT [--format py|ipynb] | minicnn homework grade SUBMISSION_DIR
    minicnn denoise IN OUT --run RUN_DIR [--noise SIGMA]
    minicnn upscale IN OUT --run RUN_DIR [--scale N]

``minicnn train`` with no arguments trains the default small residual CNN on the real
handwritten digits bundled with scikit-learn, with Adam and a one-cycle learning-rate
schedule, and leaves a run folder with metrics, figures and a checkpoint behind.
``--task detect`` (implied by a detector's name, or by detection-only data) trains the
small YOLO v1 on scenes of those digits and reports COCO mAP. ``--task segment`` (implied
by a segmenter's name) trains a U-Net on scenes of shapes and reports mIoU and Dice.
``--task instance`` (implied by ``--model maskrcnn_small``) trains a CPU-sized Mask R-CNN on
scenes of shapes and reports box and mask mAP.
``--task landmarks`` trains the heatmap U-Net (or the L2-regression baseline) on the 5
landmarks of ``shapes`` scenes and reports the mean landmark error in pixels, on clean and
on occluded test scenes.
``--task denoise`` (implied by a denoiser's name) trains a DnCNN on noisy patches of the
training photographs and reports PSNR/SSIM on the test photographs beside scikit-image's
denoisers (``--model noise_aware``: one network for every noise level, told the noise);
``minicnn denoise`` applies such a run to an image file.
``--task superres`` (implied by ``--model srcnn``) trains SRCNN on bicubic-degraded patches of
the training photographs' luminance and reports PSNR/SSIM on the test photographs beside
bicubic; ``minicnn upscale`` enlarges an image file with such a run.
``--task raw2rgb`` trains PyNET on RAW images simulated from the colour photographs and
reports PSNR/SSIM beside bilinear demosaicing.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import inspect
import json
import os
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minicnn.data import TransformedDataset, channel_stats
from minicnn.data.catalog import DATASET_NAMES, DATASETS_NEEDING_ROOT

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULERS = ("onecycle", "cosine", "step", "none")
DEFAULT_EPOCHS = 12
INVERT_MODES = ("auto", "yes", "no")


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


# ---------------------------------------------------------------- data


def load_data(name: str, data_dir: str | None, subset: int | None, image_size: int = 32,
              task: str = "classify"):
    """``minicnn.data.load_data`` with the command's own words for a missing ``--data-dir``."""
    from minicnn.data import load_data as load_named

    if name in DATASETS_NEEDING_ROOT and not data_dir:
        raise CLIError(f"--data {name} needs --data-dir pointing at the downloaded files")
    if data_dir and not Path(data_dir).is_dir():
        raise CLIError(f"--data-dir {data_dir}: no such directory")
    if subset is not None and subset < 1:
        raise CLIError(f"--subset must be at least 1, got {subset}")
    try:
        return load_named(name, data_dir, subset, image_size, task)
    except ValueError as e:
        raise CLIError(f"--data {name}: {str(e).removeprefix('load_data: ')}") from None


def prepare_image(img: np.ndarray, invert: str, dark_background: bool) -> tuple[np.ndarray, bool]:
    """An image file's pixels ``(C, H, W)`` in [0, 1], made to look like the training images.

    ``invert``: ``"yes"`` inverts (``1 - img``); ``"auto"`` inverts a grayscale image whose
    background (the median of its border pixels) is light (> 0.5) when the training images
    are light on dark (``dark_background``), or dark when they are dark on light; colour
    images are kept. Except with ``"no"``, a grayscale image is then stretched to the full
    [0, 1] range (a scan's paper is rarely white, its ink rarely black).
    Returns ``(image, inverted)``.
    """
    from minicnn.data.transforms import border_median

    gray = img.shape[0] == 1
    light_background = border_median(img) > 0.5
    inverted = invert == "yes" or (
        invert == "auto" and gray and light_background == dark_background
    )
    if inverted:
        img = 1 - img
    if invert != "no" and gray and img.max() - img.min() > 1e-6:
        img = (img - img.min()) / (img.max() - img.min())
    return img, inverted


# ---------------------------------------------------------------- building blocks


def _recipe_models() -> dict[str, str]:
    """The models the task recipes of :data:`RECIPES` train (detectors, segmenters ...):
    name -> task."""
    found: dict[str, str] = {}
    for task, recipe in RECIPES.items():
        module = importlib.import_module(f"minicnn.train.{recipe.module}")
        found.update(dict.fromkeys(getattr(module, recipe.models), task))
    return found


def _unknown_model(name: str, detectors: bool = False) -> str | None:
    """None for a name of ``minicnn.models.MODELS`` (or, with ``detectors``, of a task
    recipe's models: detectors, segmenters), else the one-line complaint."""
    from minicnn.models import MODELS

    known = [*MODELS, *_recipe_models()] if detectors else list(MODELS)
    if name in known:
        return None
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"unknown model {name!r}{hint}; 'minicnn models' lists the {len(MODELS)} models"


def _model_name(name: str) -> str:
    """The argparse type of MODEL arguments: a name of ``minicnn.models.MODELS``."""
    problem = _unknown_model(name)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return name


def _train_model_name(name: str) -> str:
    """The argparse type of ``train --model``: a classifier or a model of a task recipe (a
    detector, a segmenter, a landmark model)."""
    problem = _unknown_model(name, detectors=True)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return name


def build_model(name: str, num_classes: int | None = None, in_channels: int | None = None):
    """``minicnn.models.<name>()``; ``num_classes``/``in_channels`` only where given (else the
    model's own defaults)."""
    from minicnn.models import MODELS

    problem = _unknown_model(name)
    if problem:
        raise CLIError(problem)
    kwargs = {"num_classes": num_classes, "in_channels": in_channels}
    return MODELS[name](**{k: v for k, v in kwargs.items() if v is not None})


def natural_input_size(name: str) -> tuple[int, int, int]:
    """``(C, H, W)`` the model ``name`` is made for: its default ``in_channels``, and 32x32 for
    the 10-class CIFAR and course networks, 299x299 for Inception-v3, EfficientNet-Bk's own
    resolution, 224x224 for the other ImageNet networks."""
    from minicnn.models import EFFICIENTNET_RESOLUTION, MODELS

    defaults = {
        k: p.default for k, p in inspect.signature(MODELS[name]).parameters.items()
    }
    if defaults.get("num_classes") == 10:
        side = 32
    elif name == "inception_v3":
        side = 299
    else:
        side = EFFICIENTNET_RESOLUTION.get(name, 224)
    return defaults.get("in_channels", 3), side, side


def build_optimizer(name: str, params, lr: float, weight_decay: float):
    from minicnn import optim

    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    return optim.RMSprop(params, lr=lr, weight_decay=weight_decay)


def _optimization(config: dict, model, steps_per_epoch: int):
    """(optimizer, scheduler, interval) of a run, from its config's optimizer, lr, weight
    decay, scheduler and epochs: one place for every task's train function."""
    optimizer = build_optimizer(
        config["optimizer"], model.parameters(), config["lr"], config["weight_decay"]
    )
    scheduler, interval = build_scheduler(
        config["scheduler"], optimizer, config["lr"], config["epochs"], steps_per_epoch
    )
    return optimizer, scheduler, interval


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
    "task",
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
# a detection run records these (no crop padding; --image-size instead)
DETECT_RUN_OPTIONS = tuple(k for k in RUN_OPTIONS if k != "crop_padding") + ("image_size",)
# Every key cmd_train writes to config.json, with its type: eval, predict and --resume
# check a config.json against it (a missing key or a wrong type names the file). A
# config.json without "task" (written before detection) is a classification run.
CONFIG_KEYS: dict[str, type | tuple] = {
    "model": str,
    "task": str,
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
DETECT_CONFIG_KEYS = {k: v for k, v in CONFIG_KEYS.items()
                      if k not in ("crop_padding", "mean", "std")}
# a segmentation run records what a detection run does
SEGMENT_RUN_OPTIONS, SEGMENT_CONFIG_KEYS = DETECT_RUN_OPTIONS, DETECT_CONFIG_KEYS
RUN_FILES = (
    "metrics.csv",
    "metrics.json",
    "figures/curves.png",
    "figures/confusion.png",
    "figures/predictions.png",
)
DETECT_RUN_FILES = (
    "metrics.csv",
    "metrics.json",
    "figures/curves.png",
    "figures/detections.png",
    "figures/precision_recall.png",
)


SEGMENT_RUN_FILES = (
    "metrics.csv",
    "metrics.json",
    "figures/curves.png",
    "figures/segmentations.png",
)
# an instance segmentation run records what a detection run does
INSTANCE_RUN_OPTIONS, INSTANCE_CONFIG_KEYS = DETECT_RUN_OPTIONS, DETECT_CONFIG_KEYS
INSTANCE_RUN_FILES = (
    "metrics.csv",
    "metrics.json",
    "figures/curves.png",
    "figures/instance.png",
)
# a landmark run: no --hflip (the recipe always flips, and occludes), no classes, the names
# of its landmarks instead
LANDMARK_RUN_OPTIONS = tuple(k for k in DETECT_RUN_OPTIONS if k != "hflip")
LANDMARK_CONFIG_KEYS = {**{k: v for k, v in DETECT_CONFIG_KEYS.items()
                           if k not in ("hflip", "num_classes", "classes")}, "landmarks": list}
LANDMARK_RUN_FILES = ("metrics.csv", "metrics.json", "figures/curves.png",
                      "figures/landmarks.png")


def _task_tables(task: str) -> tuple[tuple, dict, tuple]:
    """(run options, config keys, run files) of a task's runs."""
    if task == "classify":
        return RUN_OPTIONS, CONFIG_KEYS, RUN_FILES
    recipe = RECIPES[task]
    return recipe.run_options, recipe.config_keys, recipe.run_files


def _read_config(run_dir: Path) -> dict:
    """The run's checked config.json (one-line errors naming the file)."""
    from minicnn.train import CheckpointError
    from minicnn.train.checkpoint import read_json_file

    path = run_dir / "config.json"
    raw = read_json_file(path)
    task = raw.get("task", "classify")  # runs from before detection are classification runs
    if task not in TASKS:
        raise CheckpointError(f"{path}: 'task' must be one of {', '.join(TASKS)}, got "
                              f"{json.dumps(task)[:60]}")
    keys = {k: v for k, v in _task_tables(task)[1].items() if k != "task" or "task" in raw}
    config = read_json_file(path, keys)
    config["task"] = task
    data_names = (RECIPES[task].default_data,) if task in RECIPES and \
        RECIPES[task].default_data not in DATASET_NAMES else DATASET_NAMES
    checks = (("optimizer", OPTIMIZERS), ("scheduler", SCHEDULERS), ("data", data_names))
    for key, choices in checks:
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
    options, _, run_files = _task_tables(config["task"])
    every = {name for task in TASKS for name in _task_tables(task)[0]}
    for name in sorted((every - set(options)) & given):
        raise CLIError(f"{_option(name)} is not an option of this run ({run_dir} is a "
                       f"--task {config['task']} run)")
    for name in options:
        if name not in given:
            continue
        value, saved = getattr(args, name), config.get(name)
        if name == "data_dir" and value is not None:
            value = str(Path(value).resolve())
        if name == "image_size" and value is not None:
            value = [value, value]
        if name == "backend" and saved is None:  # a run from before the backend was saved
            config["backend"] = value
            continue
        if value != saved:
            if name == "image_size":  # saved as [H, W], given as N
                value, saved = value[0], saved[0] if isinstance(saved, list) else saved
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
    if epochs == done and all((run_dir / name).exists() for name in run_files):
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
    inputs = sample if isinstance(sample, tuple) else (sample,)  # (noisy, noise_map)
    try:
        with no_grad():
            model(*(tensor(x[None], device=device) for x in inputs))
    except (ValueError, IndexError, RuntimeError) as e:
        raise CLIError(
            f"--model {config['model']} cannot take the images of --data {config['data']} "
            f"(shape {list(inputs[0].shape)}): {e}"
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
    if args.image_size is not None and args.image_size < 16:
        raise CLIError(f"--image-size must be at least 16 (pixels), got {args.image_size}")
    given = getattr(args, "given", None)
    if given is None:  # called without main(): everything counts as given
        given = {k for k, v in vars(args).items() if v is not None}
    if not args.resume:
        task = _resolve_task(args, given)
        if task in RECIPES:
            _recipe_defaults(task, args, given)
        elif "image_size" in given:
            raise CLIError("--image-size is for --task detect and segment (classification "
                           "images keep the data's size)")
        _refuse_other_options(task, given)
        config = {k: getattr(args, k) for k in (*_task_tables(task)[0], "device")}
        config["task"] = task
        config["epochs"] = args.epochs or DEFAULT_EPOCHS
        config["backend"] = args.backend or current_backend().name
        if config.get("data_dir"):
            config["data_dir"] = str(Path(config["data_dir"]).resolve())
        with use_backend(config["backend"]):
            train = RECIPES[task].train if task in RECIPES else _train
            return train(args, config, None, done=0, rewrite_config=True)
    run_dir = Path(args.resume)
    if not (run_dir / "config.json").is_file():
        raise CLIError(f"--resume {run_dir}: not a run folder (no config.json)")
    with RunLock(run_dir) as lock:
        config, done, rewrite = _resume_config(args, given, run_dir)
        if "device" in given:
            config["device"] = args.device
        with use_backend(config.get("backend") or current_backend().name):
            train = RECIPES[config["task"]].train if config["task"] in RECIPES else _train
            return train(args, config, lock, done=done, rewrite_config=rewrite)


def _resolve_task(args, given: set[str]) -> str:
    """The task of a new run: --task, else the model's (a detector, a segmenter or a
    classifier), else the data's (digit_scenes: detect), else classify. Refuses a model or
    data of another task."""
    from minicnn.data.catalog import DATASET_TASKS

    recipe_models = _recipe_models()
    model_task = recipe_models.get(args.model, "classify") if "model" in given else None
    if args.task is not None and model_task is not None and model_task != args.task:
        kinds = {"classify": "a classification model",
                 **{task: recipe.kind for task, recipe in RECIPES.items()}}
        if args.task == "classify":
            needs = "a classification model ('minicnn models' lists them)"
        else:
            needs = (f"{kinds.get(args.task, 'a model of its recipe')}: "
                     + ", ".join(n for n, t in recipe_models.items() if t == args.task))
        kind = kinds.get(model_task, f"a --task {model_task} model")
        raise CLIError(f"--model {args.model} is {kind}; --task {args.task} needs {needs}")
    if args.task is not None:
        task = args.task
    elif model_task is not None:
        task = model_task
    elif "data" in given:
        task = DATASET_TASKS[args.data][0]
    else:
        task = "classify"
    if "data" in given and task not in DATASET_TASKS[args.data]:
        others = [name for name, tasks in DATASET_TASKS.items() if task in tasks]
        if not others:  # a recipe with data of its own (denoise: the photographs)
            raise CLIError(f"--data is not an option of --task {task} (it trains on its own "
                           f"data: {RECIPES[task].default_data})")
        raise CLIError(f"--data {args.data} has no {task} targets (it is for "
                       f"{', '.join(DATASET_TASKS[args.data])}); data for --task {task}: "
                       f"{', '.join(others)}")
    return task


def _refuse_other_options(task: str, given: set[str]) -> None:
    """Refuse an option that only the runs of other tasks take (--noise for classification,
    --hflip for denoising)."""
    every = {name for t in TASKS for name in _task_tables(t)[0]}
    for name in sorted((every - set(_task_tables(task)[0])) & given):
        takes = [t for t in TASKS if name in _task_tables(t)[0]]
        raise CLIError(f"{_option(name)} is for --task {', '.join(takes)}, not --task {task}")


def _recipe_defaults(task: str, args, given: set[str]) -> None:
    """A task recipe's settings for the options not given (model, data, batch size,
    learning rate ...); classification-only options are refused."""
    table = RECIPES[task]
    recipe = importlib.import_module(f"minicnn.train.{table.module}")
    if "crop_padding" in given and "hflip" in table.run_options:  # detect, segment
        raise CLIError(f"--crop-padding is for classification; --task {task} training "
                       f"augments with colour jitter (and flips with --hflip)")
    if "model" not in given:
        args.model = getattr(recipe, table.default_model)
    if "data" not in given:
        args.data = table.default_data
    # the recipe's settings, with those of its MODEL_DEFAULTS for this model over them
    model_defaults = getattr(recipe, "MODEL_DEFAULTS", {}).get(args.model, {})
    for key, value in {**recipe.DEFAULTS, **model_defaults}.items():
        if key not in given:
            setattr(args, key, value)


def _classify_loaders(config: dict, train_set, test_set):
    """(training loader: random crops, flips with --hflip, normalised and shuffled; test
    loader: normalised) of a classification run's ``config``."""
    from minicnn import data

    normalize = data.transforms.Normalize(config["mean"], config["std"])
    train_tf = data.transforms.Compose(
        [data.transforms.RandomCrop(train_set[0][0].shape[1:], padding=config["crop_padding"]),
         normalize]
    )
    if config["hflip"]:
        train_tf.transforms.insert(1, data.transforms.RandomHorizontalFlip())
    train_loader = data.DataLoader(
        TransformedDataset(train_set, train_tf), config["batch_size"], shuffle=True, prefetch=2
    )
    return train_loader, data.DataLoader(TransformedDataset(test_set, normalize), 256)


def _train(args, config: dict, lock, done: int, rewrite_config: bool) -> int:
    """Train a new run (``lock`` None: the folder is created here) or resume a locked one."""
    from minicnn import data
    from minicnn.backend import current_backend
    from minicnn.random import manual_seed
    from minicnn.train import Trainer

    manual_seed(config["seed"])
    train_set, test_set = load_data(config["data"], config["data_dir"], config["subset"])
    sample = train_set[0][0]
    in_channels, num_classes = sample.shape[0], len(train_set.classes)
    if "mean" not in config:
        config["mean"], config["std"] = channel_stats(train_set)
    normalize = data.transforms.Normalize(config["mean"], config["std"])
    train_loader, test_loader = _classify_loaders(config, train_set, test_set)
    config.update(
        in_channels=int(in_channels),
        num_classes=num_classes,
        image_size=list(sample.shape[1:]),
        classes=list(train_set.classes),
    )

    model = build_model(config["model"], num_classes, in_channels)
    _check_device_and_model(model, config["device"], normalize(sample), config)
    optimizer, scheduler, interval = _optimization(config, model, len(train_loader))
    n_params = sum(p.numel() for p in model.parameters())
    header = (
        f"minicnn train: {config['model']} ({n_params:,} parameters) on "
        f"{config['data']} ({len(train_set)} train / {len(test_set)} test images, "
        f"{num_classes} classes), {config['optimizer']} + {config['scheduler']}, "
        f"backend {current_backend().name}, device {config['device']}"
    )

    def make_trainer(run_dir):
        return Trainer(
            model,
            optimizer,
            scheduler=scheduler,
            scheduler_interval=interval,
            device=config["device"],
            run_dir=run_dir,
            classes=train_set.classes,
            progress=not args.no_progress,
        )

    history, run_dir, seconds = _fit_in_run_folder(
        args, config, lock, done, rewrite_config, header, make_trainer, train_loader, test_loader
    )
    last = history[-1]
    top5 = f" (top-5 {100 * last['val_top5']:.2f}%)" if "val_top5" in last else ""
    print(
        f"done in {seconds:.1f} s: test accuracy {100 * last['val_acc']:.2f}%"
        f"{top5}, test loss {last['val_loss']:.4f}"
    )
    _print_written(run_dir, RUN_FILES)
    return 0


def _fit_in_run_folder(args, config, lock, done, rewrite_config, header, make_trainer,
                       train_loader, test_loader):
    """Claim the run folder (a new run; a resumed one is locked already), write its
    config.json, print ``header`` and train with ``make_trainer(run_dir)``; returns
    ``(history, run_dir, seconds)``. A failed write is one line naming the folder."""
    from minicnn import serialization
    from minicnn.train import RunDirError, claim_run_dir

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
            print(header)
            print(f"run folder: {run_dir}")
            trainer = make_trainer(run_dir)
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
    return history, run_dir, time.perf_counter() - start


def _print_written(run_dir: Path, run_files) -> None:
    written = [name for name in ("config.json", *run_files) if (run_dir / name).exists()]
    print(f"wrote in {run_dir}: {', '.join(written)}, checkpoints/")


def _recipe_header(config: dict, model, n_train: int, n_test: int, what: str) -> str:
    """The first line a task recipe's training prints: the model and its size, the data
    (``what``: the classes, the landmarks ...), the optimization, backend and device."""
    from minicnn.backend import current_backend

    n_params = sum(p.numel() for p in model.parameters())
    h, w = config["image_size"]
    return (
        f"minicnn train --task {config['task']}: {config['model']} ({n_params:,} parameters) "
        f"on {config['data']} ({n_train} train / {n_test} test scenes of {h}x{w}, {what}), "
        f"{config['optimizer']} + {config['scheduler']}, backend {current_backend().name}, "
        f"device {config['device']}"
    )


def _fit_recipe(args, config: dict, lock, done: int, rewrite_config: bool, header: str, model,
                train_loader, test_loader, trainer_cls, **trainer_kwargs):
    """Train a task recipe's ``model`` in its run folder: the optimizer and schedule of
    ``config``, the recipe's Trainer class (``trainer_cls``, given ``trainer_kwargs`` besides
    the common arguments), then :func:`_fit_in_run_folder`. Returns ``(last epoch's record,
    run folder, seconds)``."""
    optimizer, scheduler, interval = _optimization(config, model, len(train_loader))

    def make_trainer(run_dir):
        return trainer_cls(model, optimizer, scheduler=scheduler, scheduler_interval=interval,
                           device=config["device"], run_dir=run_dir,
                           progress=not args.no_progress, **trainer_kwargs)

    history, run_dir, seconds = _fit_in_run_folder(
        args, config, lock, done, rewrite_config, header, make_trainer, train_loader, test_loader
    )
    return history[-1], run_dir, seconds


def _fit_patch_recipe(args, config: dict, lock, done: int, rewrite_config: bool, *,
                      defaults: dict, keys: tuple, make_sets, build, describe, trainer_cls,
                      **trainer_kwargs):
    """Train an image-restoration recipe (denoise, superres, raw2rgb): random patches of
    the training photographs, the test photographs whole, one at a time. Seeds, fills
    ``config``'s missing ``keys`` from the recipe's ``defaults``, makes the sets
    (``make_sets(config)``), the model (``build(config)``), checks the device, prints the
    header (``describe(config, n_train)``: what the patches are) and trains (see
    :func:`_fit_recipe`). Returns ``(last epoch's record, run folder, seconds)``."""
    from minicnn import data
    from minicnn.backend import current_backend
    from minicnn.random import manual_seed

    manual_seed(config["seed"])
    for key in keys:
        config.setdefault(key, defaults[key])
    config.update(data=RECIPES[config["task"]].default_data)
    train_set, test_set = make_sets(config)
    model = build(config)
    _check_device_and_model(model, config["device"], test_set[0][0], config)
    train_loader = data.DataLoader(train_set, config["batch_size"], shuffle=True, prefetch=2)
    test_loader = data.DataLoader(test_set, 1)
    n_params = sum(p.numel() for p in model.parameters())
    header = (
        f"minicnn train --task {config['task']}: {config['model']} ({n_params:,} parameters) "
        f"{describe(config, len(train_set))}; {len(test_set)} test photographs; "
        f"{config['optimizer']} + {config['scheduler']}, backend {current_backend().name}, "
        f"device {config['device']}"
    )
    return _fit_recipe(args, config, lock, done, rewrite_config, header, model, train_loader,
                       test_loader, trainer_cls, **trainer_kwargs)


def _fit_scene_recipe(args, config: dict, lock, done: int, rewrite_config: bool, *, size,
                      make_sets, background_counts: bool, build, collate, eval_batch: int,
                      what, trainer_cls):
    """Train a recipe on labelled scenes (detect, segment, instance): seeds, makes the sets
    at ``size`` (an int or ``[h, w]``) with ``make_sets(data, data_dir, subset, size,
    hflip)``, records their classes in ``config`` (``num_classes`` counting the background
    if ``background_counts``), builds the model (``build(config)``), checks the device, makes
    the loaders (``collate``; the test set in batches of ``eval_batch``), prints the header
    (``what(config)``: the classes) and trains (see :func:`_fit_recipe`; the trainer gets
    the classes). Returns ``(last epoch's record, run folder, seconds)``."""
    from minicnn import data
    from minicnn.random import manual_seed

    manual_seed(config["seed"])
    if isinstance(size, int):
        size = [size, size]
    try:
        train_set, test_set = make_sets(config["data"], config["data_dir"], config["subset"],
                                        size[0], config["hflip"])
    except ValueError as e:
        raise CLIError(f"--data {config['data']}: {str(e).removeprefix('load_data: ')}") from None
    num_classes = len(train_set.classes) - (0 if background_counts else 1)
    config.update(in_channels=3, num_classes=num_classes, image_size=list(size),
                  classes=list(train_set.classes))
    model = build(config)
    _check_device_and_model(model, config["device"], test_set[0][0], config)
    train_loader = data.DataLoader(train_set, config["batch_size"], shuffle=True,
                                   collate_fn=collate, prefetch=2)
    test_loader = data.DataLoader(test_set, eval_batch, collate_fn=collate)
    header = _recipe_header(config, model, len(train_set), len(test_set), what(config))
    return _fit_recipe(args, config, lock, done, rewrite_config, header, model, train_loader,
                       test_loader, trainer_cls, classes=train_set.classes)


def _train_detect(args, config: dict, lock, done: int, rewrite_config: bool) -> int:
    """The detection recipe (:mod:`minicnn.train.detect`): a new run or a locked resumed one."""
    from minicnn import data
    from minicnn.train import detect

    size = config.get("image_size")  # a list on resume, an int or None for a new run
    if size is None:
        try:
            size = detect.default_image_size(config["model"])
        except ValueError as e:
            raise CLIError(f"--model {config['model']}: {e}") from None
    if config["data"] in DATASETS_NEEDING_ROOT:  # (no downloaded data has boxes yet)
        raise CLIError(f"--data {config['data']} has no detection targets")
    last, run_dir, seconds = _fit_scene_recipe(
        args, config, lock, done, rewrite_config, size=size, make_sets=detect.detection_data,
        background_counts=False, build=_build_detector, collate=data.detection_collate,
        eval_batch=64, what=lambda config: f"{config['num_classes']} classes",
        trainer_cls=detect.DetectionTrainer,
    )
    print(f"done in {seconds:.1f} s: test mAP@0.5 {last['val_map_50']:.4f}, "
          f"mAP@0.5:0.95 {last['val_map']:.4f}, train loss {last['train_loss']:.4f}")
    _print_written(run_dir, DETECT_RUN_FILES)
    return 0


def _build_detector(config: dict):
    from minicnn.train import detect

    try:
        return detect.build_detector(config["model"], config["num_classes"],
                                     config["image_size"][0])
    except ValueError as e:
        raise CLIError(f"--model {config['model']}: {e}") from None


def _train_segment(args, config: dict, lock, done: int, rewrite_config: bool) -> int:
    """The segmentation recipe (:mod:`minicnn.train.segment`): a new run or a locked resumed
    one."""
    from minicnn import data
    from minicnn.train import segment

    last, run_dir, seconds = _fit_scene_recipe(
        args, config, lock, done, rewrite_config,
        size=config.get("image_size") or data.catalog.DEFAULT_IMAGE_SIZE["segment"],
        make_sets=segment.segmentation_data, background_counts=True, build=_build_segmenter,
        collate=data.segmentation_collate, eval_batch=segment.EVAL_BATCH,
        what=lambda config: f"{config['num_classes']} classes with the background",
        trainer_cls=segment.SegmentationTrainer,
    )
    print(f"done in {seconds:.1f} s: test mIoU {last['val_miou']:.4f}, Dice "
          f"{last['val_dice']:.4f}, pixel accuracy {100 * last['val_pixel_acc']:.2f}%")
    _print_written(run_dir, SEGMENT_RUN_FILES)
    return 0


def _build_segmenter(config: dict):
    from minicnn.train import segment

    try:
        return segment.build_segmenter(config["model"], config["num_classes"],
                                       config["in_channels"])
    except ValueError as e:
        raise CLIError(f"--model {config['model']}: {e}") from None


def _train_instance(args, config: dict, lock, done: int, rewrite_config: bool) -> int:
    """The instance segmentation recipe (:mod:`minicnn.train.instance`): a new run or a
    locked resumed one."""
    from minicnn import data
    from minicnn.train import instance

    last, run_dir, seconds = _fit_scene_recipe(
        args, config, lock, done, rewrite_config,
        size=config.get("image_size") or instance.IMAGE_SIZE,
        make_sets=instance.instance_data, background_counts=True, build=_build_instance,
        collate=data.detection_collate, eval_batch=instance.EVAL_BATCH,
        what=lambda config: f"{config['num_classes'] - 1} classes",
        trainer_cls=instance.InstanceTrainer,
    )
    print(f"done in {seconds:.1f} s: test box mAP@0.5 {last['val_map_50']:.4f} (@0.5:0.95 "
          f"{last['val_map']:.4f}), mask mAP@0.5 {last['val_mask_map_50']:.4f} (@0.5:0.95 "
          f"{last['val_mask_map']:.4f}), train loss {last['train_loss']:.4f}")
    _print_written(run_dir, INSTANCE_RUN_FILES)
    return 0


def _build_instance(config: dict):
    from minicnn.train import instance

    try:
        return instance.build_instance_model(config["model"], config["num_classes"])
    except ValueError as e:
        raise CLIError(f"--model {config['model']}: {e}") from None


def _landmark_loaders(config: dict, batch_size: int | None = None):
    """(train loader or None, test loader, occluded test loader) of a landmark run."""
    from minicnn import data
    from minicnn.train import landmarks

    try:
        train_set, test_set, occluded = landmarks.landmark_data(config["subset"],
                                                                config["image_size"][0])
    except ValueError as e:
        raise CLIError(f"--data {config['data']}: {e}") from None
    train_loader = None if batch_size is None else data.DataLoader(
        train_set, batch_size, shuffle=True, prefetch=2)
    test_loader = data.DataLoader(test_set, landmarks.EVAL_BATCH)
    return train_loader, test_loader, data.DataLoader(occluded, landmarks.EVAL_BATCH)


def _train_landmarks(args, config: dict, lock, done: int, rewrite_config: bool) -> int:
    """The landmark recipe (:mod:`minicnn.train.landmarks`): a new run or a locked resumed
    one."""
    from minicnn import data
    from minicnn.data.landmarks import LANDMARK_NAMES
    from minicnn.random import manual_seed
    from minicnn.train import landmarks

    if config["data_dir"]:
        raise CLIError(f"--data-dir {config['data_dir']}: --task landmarks reads no files (its "
                       f"shapes scenes are drawn in memory)")
    manual_seed(config["seed"])
    size = config.get("image_size") or data.catalog.DEFAULT_IMAGE_SIZE["landmarks"]
    if isinstance(size, int):
        size = [size, size]
    config.update(in_channels=3, image_size=list(size), landmarks=list(LANDMARK_NAMES))
    train_loader, test_loader, occluded_loader = _landmark_loaders(config, config["batch_size"])
    model = _build_landmarks(config)
    _check_device_and_model(model, config["device"], test_loader.dataset[0][0], config)
    header = _recipe_header(config, model, len(train_loader.dataset), len(test_loader.dataset),
                            f"{len(LANDMARK_NAMES)} landmarks")
    last, run_dir, seconds = _fit_recipe(
        args, config, lock, done, rewrite_config, header, model, train_loader, test_loader,
        landmarks.LandmarkTrainer, occluded_loader=occluded_loader,
    )
    print(f"done in {seconds:.1f} s: mean landmark error {last['val_error']:.3f} px on the "
          f"test scenes, {last['val_error_occluded']:.3f} px on the occluded ones")
    _print_written(run_dir, LANDMARK_RUN_FILES)
    return 0


def _build_landmarks(config: dict):
    from minicnn.train import landmarks

    try:
        return landmarks.build_landmark_model(config["model"], config["image_size"][0])
    except ValueError as e:
        raise CLIError(f"--model {config['model']}: {e}") from None


def _eval_landmarks(args, config: dict, model) -> int:
    """The mean landmark error of a landmark run on its test scenes, clean and occluded, and
    per landmark."""
    from minicnn.train import landmarks

    _, test_loader, occluded_loader = _landmark_loaders(config)
    trainer = landmarks.LandmarkTrainer(model, None, occluded_loader=occluded_loader,
                                        device=args.device, progress=False)
    result = trainer.evaluate(test_loader)
    print(f"{args.run}: mean landmark error {result['val_error']:.3f} px on "
          f"{result['images']} test scenes, {result['val_error_occluded']:.3f} px on the "
          f"same scenes occluded")
    for suffix, words in (("", "clean"), ("_occluded", "occluded")):
        per = ", ".join(f"{name} {err:.3f}" for name, err in
                        zip(config["landmarks"], result[f"per_landmark{suffix}"], strict=True))
        print(f"per landmark ({words}, px): {per}")
    return 0


def _predict_landmarks(args, config: dict, model) -> int:
    """Find the landmarks in image files: print them (in the file's pixels) and draw them,
    with the heatmaps, on a copy of each (IMAGE-landmarks.png in --out-dir)."""
    from minicnn import viz
    from minicnn.data import load_image
    from minicnn.data.transforms import resize
    from minicnn.train import landmarks

    out_dir = Path(args.out_dir) if args.out_dir else Path(args.run) / "predictions"
    out_dir.mkdir(parents=True, exist_ok=True)
    size = tuple(config["image_size"])
    trainer = landmarks.LandmarkTrainer(model, None, progress=False)
    for path in args.images:
        if not Path(path).is_file():
            raise CLIError(f"{path}: no such file")
        img = load_image(path)
        if img.shape[0] == 1:
            img = np.repeat(img, 3, axis=0)
        h, w = img.shape[1:]
        small = resize(img, size)
        points, heatmaps = trainer.predict(small[None])
        out = out_dir / (Path(path).stem + "-landmarks.png")
        viz.plot_landmarks(small[None], points, points, out, heatmaps,
                           title=f"{Path(path).name}: predicted landmarks")
        # back to the file's pixels: the model saw the image resized to its input size
        points = points[0] * np.array([w / size[1], h / size[0]])
        found = ", ".join(f"{name} ({x:.1f}, {y:.1f})"
                          for name, (x, y) in zip(config["landmarks"], points, strict=True))
        print(f"{path}: {found}; drawn in {out}")
    return 0


# a denoising run (minicnn.train.denoise): Gaussian noise of --noise on the photographs of
# minicnn.data.photos (no --data); the recipe's patch settings are recorded for eval. A
# noise-aware run (model(noisy, noise_map)) trains on levels drawn in its "noise_range" and
# is tested at --noise.
DENOISE_RUN_OPTIONS = ("model", "task", "batch_size", "lr", "weight_decay", "optimizer",
                       "scheduler", "backend", "seed", "noise")
DENOISE_CONFIG_KEYS = {**{k: CONFIG_KEYS[k] for k in (
    "model", "task", "data", "epochs", "batch_size", "lr", "weight_decay", "optimizer",
    "scheduler", "device", "seed", "in_channels")}, "noise": (int, float), "patch_size": int,
    "num_patches": int, "test_crop": int}
DENOISE_RUN_FILES = ("metrics.csv", "metrics.json", "figures/curves.png",
                     "figures/denoising.png")


def _check_sigma(option: str, sigma: float) -> None:
    if not 0 < sigma <= 255:
        raise CLIError(f"{option} must be in (0, 255] (sigma on the 0-255 scale), got "
                       f"{sigma:g}")


def _denoise_sets(config: dict, train: bool = True, noise: float | None = None):
    """(train, test) of a denoising run: its noise on the photographs (grey); the test
    photographs at ``noise`` if given, else at the run's --noise."""
    from minicnn.train import denoise

    aware = denoise.takes_noise_map(config["model"])
    return denoise.denoise_data(
        config["noise"] if noise is None else noise, "grey", config["patch_size"],
        config["num_patches"] if train else 1, config["test_crop"],
        train_sigma=tuple(config["noise_range"]) if aware else None, noise_map=aware)


def _train_denoise(args, config: dict, lock, done: int, rewrite_config: bool) -> int:
    """The denoising recipe (:mod:`minicnn.train.denoise`): a new run or a locked resumed
    one."""
    from minicnn.train import denoise

    _check_sigma("--noise", config["noise"])
    config["in_channels"] = 1
    if denoise.takes_noise_map(config["model"]):
        config.setdefault("noise_range", list(denoise.NOISE_RANGE))

    def describe(config: dict, n_train: int) -> str:
        size, sigma = config["patch_size"], config["noise"]
        noise = (f"Gaussian noise of sigma drawn in {config['noise_range']} per patch (the "
                 f"noise map given), tested at sigma {sigma:g}" if "noise_range" in config
                 else f"Gaussian noise sigma {sigma:g}")
        return (f"on {n_train} random {size}x{size} patches per epoch of the training "
                f"photographs (grey), {noise}")

    last, run_dir, seconds = _fit_patch_recipe(
        args, config, lock, done, rewrite_config, defaults=denoise.DEFAULTS,
        keys=("patch_size", "num_patches", "test_crop"), make_sets=_denoise_sets,
        build=_build_denoise, describe=describe, trainer_cls=denoise.DenoiseTrainer,
        sigma=config["noise"],
    )
    print(f"done in {seconds:.1f} s: test PSNR {last['val_psnr']:.2f} dB, SSIM "
          f"{last['val_ssim']:.4f} (best classical denoiser {last['baseline_psnr']:.2f} dB, "
          f"{last['baseline_ssim']:.4f})")
    _print_written(run_dir, DENOISE_RUN_FILES)
    return 0


def _build_denoise(config: dict):
    from minicnn.train import denoise

    try:
        return denoise.build_denoiser(config["model"], config["in_channels"])
    except ValueError as e:
        raise CLIError(f"--model {config['model']}: {e}") from None


def _eval_denoise(args, config: dict, model) -> int:
    """PSNR and SSIM of a denoising run on the test photographs, beside the best classical
    denoiser, per photograph; at the run's noise level or at ``--noise``."""
    from minicnn import data
    from minicnn.data.photos import photo_names
    from minicnn.train import denoise

    sigma = config["noise"] if getattr(args, "noise", None) is None else args.noise
    _check_sigma("--noise", sigma)
    _, test_set = _denoise_sets(config, train=False, noise=sigma)
    trainer = denoise.DenoiseTrainer(model, None, sigma=sigma, device=args.device,
                                     progress=False)
    result = trainer.evaluate(data.DataLoader(test_set, 1))
    trained = (f"trained on sigma in {config['noise_range']}" if "noise_range" in config
               else f"trained at sigma {config['noise']:g}")
    print(f"{args.run}: test PSNR {result['val_psnr']:.2f} dB, SSIM {result['val_ssim']:.4f} "
          f"(best classical denoiser {result['baseline_psnr']:.2f} dB, "
          f"{result['baseline_ssim']:.4f}) on {len(test_set)} photographs (central "
          f"{config['test_crop']}x{config['test_crop']}), noise sigma {sigma:g} ({trained})")
    for name, row in zip(photo_names("test"), result["per_image"], strict=True):
        print(f"  {name}: {row['psnr']:.2f} dB ({row['baseline']} {row['baseline_psnr']:.2f} "
              f"dB)")
    return 0


def _denoise_file(config: dict, model, path, sigma: float | None):
    """``(noisy, denoised, sigma used, how it was found)`` for the image file ``path``, both
    ``(C, H, W)`` in [0, 1] in the run's channels. A noise-aware run is told ``sigma`` (0-255
    scale), or scikit-image's estimate of it (``estimate_sigma``) when None; a DnCNN run
    removes the noise it was trained for (a different ``sigma`` is refused). A colour image
    for a grey model is refused (a grey image for a colour model is repeated over RGB)."""
    from minicnn.data.photos import load_photo
    from minicnn.errors import DataFileError
    from minicnn.train.denoise import denoise_image, takes_noise_map

    path = Path(path)
    if not path.is_file():
        raise CLIError(f"{path}: no such file")
    try:
        image = load_photo(path, "native")
    except DataFileError as e:
        raise CLIError(str(e)) from None
    channels = config["in_channels"]
    if image.shape[0] == 3 and channels == 1:
        raise CLIError(f"{path}: a colour image (3 channels); the run's {config['model']} "
                       f"denoises grey images (1 channel): convert it to grey first")
    if image.shape[0] != channels:
        image = np.repeat(image, channels, axis=0)
    if not takes_noise_map(config["model"]):
        if sigma is not None and sigma != config["noise"]:
            raise CLIError(f"--noise {sigma:g}: the run's {config['model']} removes the noise "
                           f"it was trained for (sigma {config['noise']:g}); --noise is for "
                           f"noise-aware runs (--model noise_aware)")
        return image, denoise_image(model, image), config["noise"], "the run's"
    how = "given"
    if sigma is None:
        try:
            from skimage.restoration import estimate_sigma
        except ImportError:
            raise CLIError("--noise: not given, and estimating it needs scikit-image "
                           '(pip install "minicnn[data]")') from None
        sigma = 255 * float(estimate_sigma(image[0]))
        how = "estimated"
        if sigma <= 0:
            raise CLIError(f"{path}: no noise found in the image (estimated sigma 0); give "
                           f"--noise")
    return image, denoise_image(model, image, noise_level=sigma / 255), sigma, how


def _write_image(path, image: np.ndarray) -> None:
    """Write ``(C, H, W)`` in [0, 1] as an 8-bit image file, its format from ``path``'s
    suffix, atomically."""
    from PIL import Image

    from minicnn.serialization import atomic_write

    formats = Image.registered_extensions()
    fmt = formats.get(Path(path).suffix.lower())
    if fmt is None:
        raise CLIError(f"{path}: unknown image format {Path(path).suffix!r}; expected a "
                       f"suffix such as .png, .jpg, .tif or .bmp")
    pixels = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    pixels = pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)
    atomic_write(path, lambda tmp: Image.fromarray(pixels).save(tmp, fmt))


def _predict_denoise(args, config: dict, model) -> int:
    """Denoise image files (read in the run's channels, assumed to carry noise like the
    run's; a noise-aware run estimates it) and write each as IMAGE-denoised.png; prints the
    noise removed."""
    out_dir = Path(args.out_dir) if args.out_dir else Path(args.run) / "predictions"
    out_dir.mkdir(parents=True, exist_ok=True)
    mode = "grey" if config["in_channels"] == 1 else "rgb"
    for path in args.images:
        noisy, clean, sigma, how = _denoise_file(config, model, path, None)
        out = out_dir / (Path(path).stem + "-denoised.png")
        _write_image(out, clean)
        removed = 255 * float(np.std(noisy - clean))
        print(f"{path}: {noisy.shape[2]}x{noisy.shape[1]} {mode}, removed noise of standard "
              f"deviation {removed:.1f} (noise sigma {sigma:g}, {how}); written to {out}")
    return 0


def cmd_denoise(args) -> int:
    """``minicnn denoise IN OUT --run RUN [--noise S]``: denoise one image file with a
    trained denoising run and write the result to OUT (format from its suffix)."""
    config, model = _load_run(args.run)
    if config["task"] != "denoise":
        raise CLIError(f"--run {args.run}: a {_run_noun(config['task'])} run; minicnn denoise "
                       f"needs a denoising run (minicnn train --task denoise)")
    if args.noise is not None:
        _check_sigma("--noise", args.noise)
    noisy, clean, sigma, how = _denoise_file(config, model, args.input, args.noise)
    _write_image(args.output, clean)
    kind = "grey" if noisy.shape[0] == 1 else "colour"
    print(f"{args.input}: {noisy.shape[2]}x{noisy.shape[1]} {kind}, noise sigma {sigma:g} "
          f"({how}), denoised by {config['model']} of {args.run}; written to {args.output}")
    return 0


def _add_denoise_parser(command) -> None:
    d = command(
        "denoise",
        "denoise an image file with a trained denoising run",
        "Denoise the image file IN with the network of a denoising run (minicnn train --task "
        "denoise) and write it to OUT (PNG, JPEG, TIFF ...: the format of OUT's suffix; "
        "8 bits, written atomically). The recipe's runs are grey: a colour IN is refused "
        "(convert it to grey first). A DnCNN run removes the noise it was trained for; a "
        "noise-aware run (--model noise_aware) is told the noise's sigma with --noise, or "
        "estimates it (scikit-image's estimate_sigma).",
    )
    d.add_argument("input", metavar="IN", help="the noisy image file (PNG/JPEG ...)")
    d.add_argument("output", metavar="OUT", help="where the denoised image goes")
    d.add_argument("--run", required=True, metavar="RUN_DIR",
                   help="a denoising run folder written by minicnn train --task denoise")
    d.add_argument("--noise", type=float, default=None, metavar="SIGMA",
                   help="noise-aware runs: the noise's standard deviation on the 0-255 scale "
                   "(default: estimated from the image); a DnCNN run takes only its own")
    d.set_defaults(func=cmd_denoise)


# a super-resolution run (minicnn.train.superres): the photographs of minicnn.data.photos
# shrunk --scale times by bicubic and enlarged back (no --data); the patch settings are
# recorded for eval
SUPERRES_RUN_OPTIONS = ("model", "task", "batch_size", "lr", "weight_decay", "optimizer",
                        "scheduler", "backend", "seed", "scale")
SUPERRES_CONFIG_KEYS = {**{k: CONFIG_KEYS[k] for k in (
    "model", "task", "data", "epochs", "batch_size", "lr", "weight_decay", "optimizer",
    "scheduler", "device", "seed", "in_channels")}, "scale": int, "patch_size": int,
    "num_patches": int, "test_crop": int}
SUPERRES_RUN_FILES = ("metrics.csv", "metrics.json", "figures/curves.png",
                      "figures/superres.png")
SUPERRES_SCALES = range(2, 9)  # the upscaling factors --scale takes


def _check_superres_scale(scale) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale not in SUPERRES_SCALES:
        raise CLIError(f"--scale must be an integer from {SUPERRES_SCALES[0]} to "
                       f"{SUPERRES_SCALES[-1]} (the upscaling factor), got {scale}")
    return scale


def _superres_sets(config: dict, train: bool = True):
    """(train, test) of a super-resolution run: the photographs' Y channel at its scale."""
    from minicnn.train import superres

    return superres.superres_data(config["scale"], config["patch_size"],
                                  config["num_patches"] if train else 1, config["test_crop"])


def _train_superres(args, config: dict, lock, done: int, rewrite_config: bool) -> int:
    """The super-resolution recipe (:mod:`minicnn.train.superres`): a new run or a locked
    resumed one."""
    from minicnn.train import superres

    _check_superres_scale(config["scale"])
    config["in_channels"] = 1

    def describe(config: dict, n_train: int) -> str:
        size = config["patch_size"]
        return (f"x{config['scale']} on {n_train} random {size}x{size} patches per epoch of "
                f"the training photographs (Y channel, bicubic down and up)")

    last, run_dir, seconds = _fit_patch_recipe(
        args, config, lock, done, rewrite_config, defaults=superres.DEFAULTS,
        keys=("patch_size", "num_patches", "test_crop"), make_sets=_superres_sets,
        build=_build_superres, describe=describe, trainer_cls=superres.SuperResTrainer,
        scale=config["scale"],
    )
    print(f"done in {seconds:.1f} s: test PSNR {last['val_psnr']:.2f} dB, SSIM "
          f"{last['val_ssim']:.4f} on the Y channel (bicubic {last['bicubic_psnr']:.2f} dB, "
          f"{last['bicubic_ssim']:.4f}; {last['val_psnr'] - last['bicubic_psnr']:+.2f} dB)")
    _print_written(run_dir, SUPERRES_RUN_FILES)
    return 0


def _build_superres(config: dict):
    from minicnn.train import superres

    try:
        return superres.build_superres_model(config["model"], config["in_channels"])
    except ValueError as e:
        raise CLIError(f"--model {config['model']}: {e}") from None


def _eval_superres(args, config: dict, model) -> int:
    """PSNR and SSIM of a super-resolution run on the test photographs' Y channel, beside
    bicubic, per photograph."""
    from minicnn import data
    from minicnn.data.photos import photo_names
    from minicnn.train import superres

    _, test_set = _superres_sets(config, train=False)
    trainer = superres.SuperResTrainer(model, None, scale=config["scale"], device=args.device,
                                       progress=False)
    result = trainer.evaluate(data.DataLoader(test_set, 1))
    print(f"{args.run}: x{config['scale']} test PSNR {result['val_psnr']:.2f} dB, SSIM "
          f"{result['val_ssim']:.4f} on the Y channel (bicubic {result['bicubic_psnr']:.2f} dB, "
          f"{result['bicubic_ssim']:.4f}) on {len(test_set)} photographs (central "
          f"{config['test_crop']}x{config['test_crop']})")
    for name, row in zip(photo_names("test"), result["per_image"], strict=True):
        print(f"  {name}: {row['psnr']:.2f} dB (bicubic {row['bicubic_psnr']:.2f} dB)")
    return 0


def _upscale_file(model, config: dict, path: Path, out: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read the image file ``path``, enlarge it with a super-resolution run's ``model``
    and write it to ``out`` atomically (its format from its suffix); returns (in, out)."""
    from PIL import Image

    from minicnn.data.photos import load_photo
    from minicnn.serialization import atomic_write
    from minicnn.train.superres import upscale_image

    if not path.is_file():
        raise CLIError(f"{path}: no such file")
    fmt = Image.registered_extensions().get(out.suffix.lower())
    if fmt not in Image.SAVE:
        raise CLIError(f"{out}: unknown image format {out.suffix!r} (write .png, .jpg, .tif "
                       f"or another format Pillow saves)")
    image = load_photo(path, "native")  # (3, H, W), or (1, H, W) for a grey picture
    big = upscale_image(model, image, config["scale"])
    pixels = np.round(big * 255).astype(np.uint8)
    pixels = pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)
    atomic_write(out, lambda tmp: Image.fromarray(pixels).save(tmp, fmt))
    return image, big


def _predict_superres(args, config: dict, model) -> int:
    """Enlarge image files ``scale`` times (network on Y, bicubic on CbCr) and write each
    as IMAGE-upscaled.png."""
    out_dir = Path(args.out_dir) if args.out_dir else Path(args.run) / "predictions"
    for path in args.images:
        out = out_dir / (Path(path).stem + "-upscaled.png")
        small, big = _upscale_file(model, config, Path(path), out)
        print(f"{path}: {small.shape[2]}x{small.shape[1]} -> {big.shape[2]}x{big.shape[1]} "
              f"(x{config['scale']}); written to {out}")
    return 0


def cmd_upscale(args) -> int:
    """Enlarge one image file with a trained super-resolution run."""
    config, model = _load_run(args.run)
    if config["task"] != "superres":
        raise CLIError(f"--run {args.run} is a {_run_noun(config['task'])} run; upscale needs "
                       f"a super-resolution run (minicnn train --task superres)")
    if args.scale is not None:
        _check_superres_scale(args.scale)
        if args.scale != config["scale"]:
            raise CLIError(f"--scale {args.scale}: the run {args.run} was trained for x"
                           f"{config['scale']} (its network sharpens that scale's blur); train "
                           f"a run with --scale {args.scale} to enlarge {args.scale} times")
    small, big = _upscale_file(model, config, Path(args.input), Path(args.output))
    print(f"{args.input}: {small.shape[2]}x{small.shape[1]} -> {big.shape[2]}x{big.shape[1]} "
          f"(x{config['scale']}, {config['model']} on Y, bicubic on CbCr); written to "
          f"{args.output}")
    return 0


# a RAW-to-RGB run (minicnn.train.raw2rgb): PyNET on RAW simulated from the colour
# photographs of minicnn.data.photos (no --data); the recipe's simulation and patch settings
# are recorded for eval and predict
RAW2RGB_RUN_OPTIONS = ("model", "task", "batch_size", "lr", "weight_decay", "optimizer",
                       "scheduler", "backend", "seed")
RAW2RGB_CONFIG_KEYS = {**{k: CONFIG_KEYS[k] for k in (
    "model", "task", "data", "epochs", "batch_size", "lr", "weight_decay", "optimizer",
    "scheduler", "device", "seed")}, "patch_size": int, "num_patches": int, "test_crop": int,
    "raw_noise": list, "linear": bool}
RAW2RGB_RUN_FILES = ("metrics.csv", "metrics.json", "figures/curves.png",
                     "figures/raw2rgb.png")


def _raw2rgb_sets(config: dict, train: bool = True):
    """(train, test) of a RAW-to-RGB run: its simulated RAW of the colour photographs."""
    from minicnn.train import raw2rgb

    try:
        return raw2rgb.raw2rgb_data(config["raw_noise"], config["patch_size"],
                                    config["num_patches"] if train else 1, config["test_crop"],
                                    config["linear"])
    except ValueError as e:
        raise CLIError(f"--task raw2rgb: {e}") from None


def _train_raw2rgb(args, config: dict, lock, done: int, rewrite_config: bool) -> int:
    """The RAW-to-RGB recipe (:mod:`minicnn.train.raw2rgb`): a new run or a locked resumed
    one."""
    from minicnn.train import raw2rgb

    linear = config.setdefault("linear", raw2rgb.DEFAULTS["linear"])

    def describe(config: dict, n_train: int) -> str:
        size, (a, b) = config["patch_size"], config["raw_noise"]
        light = "linear light, " if config["linear"] else ""
        return (f"on {n_train} random {size}x{size} patches per epoch of the colour training "
                f"photographs, as RGGB RAW ({light}Poisson-Gaussian noise a={a:g}, b={b:g})")

    last, run_dir, seconds = _fit_patch_recipe(
        args, config, lock, done, rewrite_config, defaults=raw2rgb.DEFAULTS,
        keys=("patch_size", "num_patches", "test_crop", "raw_noise", "linear"),
        make_sets=_raw2rgb_sets, build=_build_raw2rgb, describe=describe,
        trainer_cls=raw2rgb.Raw2RGBTrainer, linear=linear,
    )
    print(f"done in {seconds:.1f} s: test PSNR {last['val_psnr']:.2f} dB, SSIM "
          f"{last['val_ssim']:.4f} (bilinear demosaic {last['baseline_psnr']:.2f} dB, "
          f"{last['baseline_ssim']:.4f})")
    _print_written(run_dir, RAW2RGB_RUN_FILES)
    return 0


def _build_raw2rgb(config: dict):
    from minicnn.train import raw2rgb

    try:
        return raw2rgb.build_raw2rgb(config["model"], config.get("linear", True))
    except ValueError as e:
        raise CLIError(f"--model {config['model']}: {e}") from None


def _eval_raw2rgb(args, config: dict, model) -> int:
    """PSNR and SSIM of a RAW-to-RGB run on the test photographs, beside bilinear
    demosaicing, per photograph."""
    from minicnn import data
    from minicnn.data.photos import photo_names
    from minicnn.train import raw2rgb

    _, test_set = _raw2rgb_sets(config, train=False)
    trainer = raw2rgb.Raw2RGBTrainer(model, None, linear=config["linear"], device=args.device,
                                     progress=False)
    result = trainer.evaluate(data.DataLoader(test_set, 1))
    print(f"{args.run}: test PSNR {result['val_psnr']:.2f} dB, SSIM {result['val_ssim']:.4f} "
          f"(bilinear demosaic {result['baseline_psnr']:.2f} dB, "
          f"{result['baseline_ssim']:.4f}) on {len(test_set)} colour photographs (central "
          f"{config['test_crop']}x{config['test_crop']})")
    for name, row in zip(photo_names("test", colour=True), result["per_image"], strict=True):
        print(f"  {name}: {row['psnr']:.2f} dB (bilinear {row['baseline_psnr']:.2f} dB)")
    return 0


def _save_rgb_png(image: np.ndarray, path: Path) -> None:
    """Write ``(3, H, W)`` in [0, 1] as an 8-bit PNG, atomically."""
    from PIL import Image

    from minicnn.serialization import atomic_write

    pixels = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
    atomic_write(path, lambda tmp: Image.fromarray(pixels).save(tmp, "PNG"))


def _predict_raw2rgb(args, config: dict, model) -> int:
    """Photograph RGB image files with the run's simulated camera (RGGB mosaic and noise,
    seeded by the run's seed), develop the RAW with the network and write it as
    IMAGE-raw2rgb.png (and the bilinear demosaic as IMAGE-bilinear.png); prints the PSNR
    of both against the file."""
    from minicnn.baselines import bilinear_raw_to_rgb
    from minicnn.data.photos import load_photo
    from minicnn.metrics.image_quality import psnr
    from minicnn.train import raw2rgb

    out_dir = Path(args.out_dir) if args.out_dir else Path(args.run) / "predictions"
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in args.images:
        if not Path(path).is_file():
            raise CLIError(f"{path}: no such file")
        rgb = load_photo(Path(path), "rgb")
        if min(rgb.shape[1:]) < 2:
            raise CLIError(f"{path}: an image of {rgb.shape[2]}x{rgb.shape[1]} pixels has no "
                           f"2x2 Bayer cell; expected at least 2x2")
        raw = raw2rgb.simulate_file_raw(rgb, config["raw_noise"], config["linear"],
                                        config["seed"])
        truth = rgb[:, :2 * raw.shape[1], :2 * raw.shape[2]]
        scores = []
        bilinear = bilinear_raw_to_rgb(raw, linear=config["linear"])
        for suffix, image in (("raw2rgb", raw2rgb.raw2rgb_image(model, raw)),
                              ("bilinear", bilinear)):
            out = out_dir / f"{Path(path).stem}-{suffix}.png"
            _save_rgb_png(image, out)
            scores.append((psnr(truth, image, 1.0), out))
        (net, out), (base, base_out) = scores
        print(f"{path}: {truth.shape[2]}x{truth.shape[1]}, simulated RAW developed by the "
              f"network: PSNR {net:.2f} dB against the file (bilinear demosaic {base:.2f} dB); "
              f"written to {out} and {base_out}")
    return 0


def _describe_os_error(e: OSError) -> str:
    """``[Errno 28] No space left on device`` -> ``No space left on device: FILE``."""
    text = e.strerror or str(e)
    return f"{text}: {e.filename}" if e.filename else text


def _load_run(run: str):
    from minicnn.random import manual_seed
    from minicnn.train import load_checkpoint

    run_dir = Path(run)
    if not (run_dir / "config.json").exists():
        raise CLIError(
            f"{run_dir}: not a run folder (no config.json); pass the --out of minicnn train"
        )
    config = _read_config(run_dir)
    manual_seed(config["seed"])
    if config["task"] in RECIPES:
        model = RECIPES[config["task"]].build(config)
    else:
        model = build_model(config["model"], config["num_classes"], config["in_channels"])
    load_checkpoint(run_dir, model)
    model.eval()
    return config, model


def cmd_eval(args) -> int:
    from minicnn import data
    from minicnn.train import Trainer

    config, model = _load_run(args.run)
    if getattr(args, "noise", None) is not None and config["task"] != "denoise":
        raise CLIError(f"--noise is for denoising runs ({args.run} is a "
                       f"{_run_noun(config['task'])} run)")
    if config["task"] in RECIPES:
        return RECIPES[config["task"]].eval(args, config, model)
    _, test_set = load_data(config["data"], config["data_dir"], config["subset"])
    loader = data.DataLoader(
        TransformedDataset(test_set, data.transforms.Normalize(config["mean"], config["std"])), 256
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


def _eval_detect(args, config: dict, model) -> int:
    """COCO mAP of a detection run on its test scenes, overall and per class."""
    from minicnn import data
    from minicnn.train import detect

    _, test_set = detect.detection_data(config["data"], config["data_dir"], config["subset"],
                                        config["image_size"][0])
    loader = data.DataLoader(test_set, 64, collate_fn=data.detection_collate)
    trainer = detect.DetectionTrainer(model, None, device=args.device, progress=False)
    result = trainer.evaluate(loader)
    print(f"{args.run}: test mAP@0.5:0.95 {result['val_map']:.4f}, mAP@0.5 "
          f"{result['val_map_50']:.4f}, mAP@0.75 {result['val_map_75']:.4f} on "
          f"{result['images']} scenes")
    classes = config["classes"]
    per_class = ", ".join(f"{classes[k] if 0 <= k < len(classes) else k} {ap:.3f}"
                          for k, ap in sorted(result["per_class"].items()))
    print(f"AP@0.5:0.95 per class: {per_class}")
    return 0


def _eval_segment(args, config: dict, model) -> int:
    """mIoU, Dice and pixel accuracy of a segmentation run on its test scenes, and the IoU
    of each class."""
    from minicnn import data
    from minicnn.train import segment

    _, test_set = segment.segmentation_data(config["data"], config["data_dir"],
                                            config["subset"], config["image_size"][0])
    loader = data.DataLoader(test_set, segment.EVAL_BATCH, collate_fn=data.segmentation_collate)
    trainer = segment.SegmentationTrainer(model, None, device=args.device, progress=False,
                                          classes=config["classes"])
    result = trainer.evaluate(loader)
    print(f"{args.run}: test mIoU {result['val_miou']:.4f}, Dice {result['val_dice']:.4f}, "
          f"pixel accuracy {100 * result['val_pixel_acc']:.2f}%, loss {result['val_loss']:.4f} "
          f"on {result['images']} scenes")
    per_class = ", ".join(f"{name} {iou:.3f}" for name, iou in zip(config["classes"],
                                                                   result["iou"]))
    print(f"IoU per class: {per_class}")
    return 0


def _eval_instance(args, config: dict, model) -> int:
    """Box and mask mAP of an instance segmentation run on its test scenes, and the mask AP
    of each class."""
    from minicnn import data
    from minicnn.train import instance

    _, test_set = instance.instance_data(config["data"], config["data_dir"], config["subset"],
                                         config["image_size"][0])
    loader = data.DataLoader(test_set, instance.EVAL_BATCH, collate_fn=data.detection_collate)
    trainer = instance.InstanceTrainer(model, None, device=args.device, progress=False)
    result = trainer.evaluate(loader)
    print(f"{args.run}: test box mAP@0.5 {result['val_map_50']:.4f}, mAP@0.5:0.95 "
          f"{result['val_map']:.4f}; mask mAP@0.5 {result['val_mask_map_50']:.4f}, "
          f"mAP@0.5:0.95 {result['val_mask_map']:.4f} on {result['images']} scenes")
    classes = config["classes"]
    per_class = ", ".join(f"{classes[k] if 0 <= k < len(classes) else k} {ap:.3f}"
                          for k, ap in sorted(result["per_class"].items()))
    print(f"mask AP@0.5:0.95 per class: {per_class}")
    return 0


def _predict_instance(args, config: dict, model) -> int:
    """Find the objects of image files: print each (class, score, box, mask pixels) and draw
    the masks and boxes over a copy of each image."""
    from minicnn import viz
    from minicnn.autograd import no_grad, tensor
    from minicnn.data import load_image
    from minicnn.data.joint_transforms import resize_nearest
    from minicnn.data.transforms import resize
    from minicnn.train.detect import predictions_to_numpy
    from minicnn.train.instance import mask_predictions

    if args.min_score is not None and not 0 <= args.min_score <= 1:
        raise CLIError(f"--min-score must be in [0, 1], got {args.min_score}")
    min_score = 0.5 if args.min_score is None else args.min_score
    out_dir = Path(args.out_dir) if args.out_dir else Path(args.run) / "predictions"
    out_dir.mkdir(parents=True, exist_ok=True)
    size = tuple(config["image_size"])
    for path in args.images:
        if not Path(path).is_file():
            raise CLIError(f"{path}: no such file")
        img = load_image(path)
        if img.shape[0] == 1:
            img = np.repeat(img, 3, axis=0)
        h, w = img.shape[1:]
        with no_grad():
            pred = predictions_to_numpy(model(tensor(resize(img, size)[None])))
        pred = mask_predictions(pred)[0]
        keep = pred["scores"] >= min_score
        pred = {k: v[keep] for k, v in pred.items()}
        # back to the file's pixels: the model saw the image resized to its input size
        pred["boxes"] = pred["boxes"] * np.array([w / size[1], h / size[0]] * 2, np.float32)
        pred["masks"] = resize_nearest(pred["masks"], (h, w))
        out = out_dir / (Path(path).stem + "-instances.png")
        viz.save_instances(img, pred, config["classes"], out, min_score=min_score)
        found = "; ".join(
            f"{config['classes'][int(c)]} {s:.2f} at [{', '.join(f'{v:.0f}' for v in b)}], "
            f"{int(m.sum())} pixels"
            for b, c, s, m in zip(pred["boxes"], pred["labels"], pred["scores"], pred["masks"])
        )
        print(f"{path}: {len(pred['scores'])} objects (score >= {min_score})"
              + (f": {found}" if found else "") + f"; drawn in {out}")
    return 0


def _predict_segment(args, config: dict, model) -> int:
    """Segment image files: print the pixels of each class found and draw the mask over a
    copy of each image."""
    from minicnn import viz
    from minicnn.data import load_image
    from minicnn.data.joint_transforms import resize_nearest
    from minicnn.data.transforms import resize
    from minicnn.train.segment import predict_masks

    out_dir = Path(args.out_dir) if args.out_dir else Path(args.run) / "predictions"
    out_dir.mkdir(parents=True, exist_ok=True)
    size = tuple(config["image_size"])
    classes = config["classes"]
    for path in args.images:
        if not Path(path).is_file():
            raise CLIError(f"{path}: no such file")
        img = load_image(path)
        if img.shape[0] == 1:
            img = np.repeat(img, 3, axis=0)
        mask = predict_masks(model, resize(img, size)[None])[0]
        mask = resize_nearest(mask, img.shape[1:])  # back to the file's pixels
        out = out_dir / (Path(path).stem + "-segmentation.png")
        viz.save_segmentation(img, mask, classes, out)
        counts = np.bincount(mask.ravel(), minlength=len(classes))
        found = ", ".join(f"{classes[c]} {100 * counts[c] / mask.size:.1f}%"
                          for c in range(1, len(classes)) if counts[c])
        print(f"{path}: {found or 'background only'} of the pixels; drawn in {out}")
    return 0


def _predict_detect(args, config: dict, model) -> int:
    """Detect objects in image files: print them and draw them (class and score) on a copy."""
    from minicnn import viz
    from minicnn.autograd import no_grad, tensor
    from minicnn.data import load_image
    from minicnn.data.transforms import resize
    from minicnn.train.detect import predictions_to_numpy

    if args.min_score is not None and not 0 <= args.min_score <= 1:
        raise CLIError(f"--min-score must be in [0, 1], got {args.min_score}")
    min_score = 0.3 if args.min_score is None else args.min_score
    out_dir = Path(args.out_dir) if args.out_dir else Path(args.run) / "predictions"
    out_dir.mkdir(parents=True, exist_ok=True)
    size = tuple(config["image_size"])
    for path in args.images:
        if not Path(path).is_file():
            raise CLIError(f"{path}: no such file")
        img = load_image(path)
        if img.shape[0] == 1:
            img = np.repeat(img, 3, axis=0)
        h, w = img.shape[1:]
        with no_grad():
            pred = predictions_to_numpy(model(tensor(resize(img, size)[None])))[0]
        keep = pred["scores"] >= min_score
        pred = {k: v[keep] for k, v in pred.items()}
        # back to the file's pixels: the model saw the image resized to its input size
        pred["boxes"] = pred["boxes"] * np.array([w / size[1], h / size[0]] * 2, np.float32)
        out = out_dir / (Path(path).stem + "-detections.png")
        viz.save_detections(img, pred, config["classes"], out, min_score=min_score)
        found = "; ".join(
            f"{config['classes'][int(c)]} {s:.2f} at [{', '.join(f'{v:.0f}' for v in b)}]"
            for b, c, s in zip(pred["boxes"], pred["labels"], pred["scores"])
        )
        print(f"{path}: {len(pred['scores'])} objects (score >= {min_score})"
              + (f": {found}" if found else "") + f"; drawn in {out}")
    return 0


def cmd_predict(args) -> int:
    from minicnn.autograd import no_grad, tensor
    from minicnn.data import load_image
    from minicnn.data.transforms import Normalize, resize
    from minicnn.nn.functional import softmax

    config, model = _load_run(args.run)
    given = getattr(args, "given", set())
    task = config["task"]
    for name in sorted({"invert", *PREDICT_OPTIONS} & given):
        takes = [t for t in TASKS if name in _predict_options(t)]
        if task not in takes:
            raise CLIError(f"{_option(name)} is for {' and '.join(map(_run_noun, takes))} runs "
                           f"({args.run} is a {_run_noun(task)} run)")
    if task in RECIPES:
        return RECIPES[task].predict(args, config, model)
    size = tuple(config["image_size"])
    normalize = Normalize(config["mean"], config["std"])
    dark_background = float(np.mean(config["mean"])) < 0.5  # the training images' look
    for path in args.images:
        if not Path(path).is_file():
            raise CLIError(f"{path}: no such file")
        img = load_image(path, grayscale=config["in_channels"] == 1)
        img, inverted = prepare_image(img, args.invert, dark_background)
        img = normalize(resize(img, size))
        with no_grad():
            probs = softmax(model(tensor(img[None])), 1).numpy()[0]
        top = np.argsort(-probs)[:3]
        guesses = ", ".join(f"{config['classes'][i]} ({100 * probs[i]:.1f}%)" for i in top)
        print(f"{path}: {guesses}" + (" [inverted]" if inverted else ""))
    return 0


def cmd_compress(args) -> int:
    """Prune (and fine-tune), share weights, and report accuracy and size before/after."""
    from minicnn import compress
    from minicnn.compress.weight_sharing import MAX_BITS
    from minicnn.random import manual_seed
    from minicnn.serialization import save_json
    from minicnn.train import RunLock, Trainer

    if args.prune is None and args.bits is None:
        raise CLIError("give --prune FRACTION, --bits N or both (e.g. --prune 0.9 --bits 6)")
    if args.prune is not None and not 0 <= args.prune < 1:
        raise CLIError(f"--prune must be the fraction of the weights to remove, in [0, 1) "
                       f"(0.9: 90%), got {args.prune:g}")
    if args.bits is not None and not 1 <= args.bits <= MAX_BITS:
        raise CLIError(f"--bits must be in 1..{MAX_BITS} (2^bits shared values per layer), "
                       f"got {args.bits}")
    if args.finetune_epochs < 0:
        raise CLIError(f"--finetune-epochs must be 0 or more, got {args.finetune_epochs}")
    if args.finetune_epochs and args.prune is None:
        raise CLIError("--finetune-epochs fine-tunes a pruned model; give --prune too")
    config, model = _load_run(args.run)
    if config["task"] != "classify":
        raise CLIError(f"{args.run}: compress takes a classification run, this is a "
                       f"{_run_noun(config['task'])} run")
    run_dir = Path(args.run)
    tag = "-".join(part for part in (
        f"prune{args.prune:g}" if args.prune is not None else "",
        f"ft{args.finetune_epochs}" if args.finetune_epochs else "",
        f"bits{args.bits}" if args.bits is not None else "") if part)
    out = run_dir / "compressed" / f"{tag}.safetensors"
    with RunLock(run_dir):  # no training may change the weights meanwhile
        train_set, test_set = load_data(config["data"], config["data_dir"], config["subset"])
        train_loader, test_loader = _classify_loaders(config, train_set, test_set)
        trainer = Trainer(model, optimizer=None, device=args.device, progress=False)
        n_params = sum(p.numel() for p in model.parameters())
        print(f"minicnn compress: {config['model']} ({n_params:,} parameters) of {run_dir}, "
              f"test set of {len(test_set)} images")
        steps = []

        def report(step: str, size: int) -> None:
            acc = trainer.evaluate(test_loader)["val_acc"]
            steps.append({"step": step, "test_acc": acc, "bytes": size})
            print(f"{step}: test accuracy {100 * acc:.2f}%, {size / compress.MB:.4f} MB")

        report("baseline (float32, dense)", compress.dense_bytes(model))
        if args.prune is not None:
            compress.prune_(model, args.prune, scope=args.scope)
            report(f"pruned {100 * args.prune:g}% ({args.scope})", compress.compressed_bytes(model))
            if args.finetune_epochs:
                manual_seed(config["seed"])
                optimizer = build_optimizer(config["optimizer"], model.parameters(),
                                            config["lr"] / 10, config["weight_decay"])
                trainer.optimizer = optimizer
                for _ in range(args.finetune_epochs):
                    trainer.train_epoch(train_loader)
                report(f"fine-tuned {args.finetune_epochs} epochs (lr {config['lr'] / 10:g})",
                       compress.compressed_bytes(model))
            compress.remove_pruning(model)
        if args.bits is not None:
            compress.share_weights_(model, args.bits)
            report(f"{args.bits}-bit weight sharing", compress.compressed_bytes(model))
        compress.save_compressed(model, out)
        summary = {"prune": args.prune, "scope": args.scope, "bits": args.bits,
                   "finetune_epochs": args.finetune_epochs, "steps": steps,
                   "layers": compress.describe(model)}
        save_json(summary, out.with_suffix(".json"))
    ratio = steps[0]["bytes"] / out.stat().st_size
    print(f"{100 * steps[0]['test_acc']:.2f}% -> {100 * steps[-1]['test_acc']:.2f}% test "
          f"accuracy, {steps[0]['bytes'] / compress.MB:.4f} -> "
          f"{out.stat().st_size / compress.MB:.4f} MB ({ratio:.1f}x smaller)")
    print(f"wrote {out} and {out.with_suffix('.json').name} (checkpoints untouched; load with "
          f"model.load_state_dict(minicnn.compress.load_compressed(path)))")
    return 0


def cmd_export_torchvision(args) -> int:
    from minicnn.models import export_torchvision

    path = export_torchvision(args.model, args.out, weights_file=args.weights)
    source = f"the weights of {args.weights}" if args.weights else "a random initialisation"
    build = ""
    if path.suffix == ".safetensors":  # a fine-tuned classifier's class count, in the metadata
        from safetensors import safe_open

        with safe_open(str(path), "numpy") as f:
            classes = (f.metadata() or {}).get("num_classes")
        build = f"num_classes={classes}" if classes else ""
    print(
        f"wrote torchvision.models.{args.model}'s state_dict ({source}) to {path}; load it with "
        f"minicnn.models.load_weights(minicnn.models.{args.model}({build}), {str(path)!r})"
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
    if args.input_size is not None and min(args.input_size) < 1:
        raise CLIError(f"--input-size must be three positive numbers, got {args.input_size}")
    size = tuple(args.input_size) if args.input_size else natural_input_size(args.model)
    in_channels = args.input_size[0] if args.input_size else None
    model = build_model(args.model, args.num_classes, in_channels)
    _check_summary_memory(model, args.model, size)
    print(summary(model, size))
    return 0


def cmd_models(args) -> int:
    from minicnn.models import MODELS

    families: dict[str, list[str]] = {}
    for name, ctor in MODELS.items():
        families.setdefault(ctor.__module__.rsplit(".", 1)[-1], []).append(name)
    print(f"{len(MODELS)} models (minicnn.models.<name>), by file of minicnn/models/:")
    for family, names in families.items():
        print(f"\n{family}.py:")
        print(textwrap.fill(", ".join(names), width=96, initial_indent="  ",
                            subsequent_indent="  "))
    print("\n'minicnn summary MODEL' shows one's layers at the input size it is made for.")
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


# ---------------------------------------------------------------- tasks


@dataclass(frozen=True)
class TaskRecipe:
    """How the command line runs one ``--task`` besides classification: the recipe module
    ``minicnn.train.<module>`` (its ``DEFAULTS`` and its models), what its runs record, and
    the functions that train, rebuild, evaluate and predict with its runs. Adding a task is
    its recipe module, those functions and one entry of :data:`RECIPES`."""

    module: str  # minicnn.train.<module>
    models: str  # the module's dict of the models it trains (name -> constructor)
    default_model: str  # the module's attribute naming the model used without --model
    default_data: str  # the data used without --data
    kind: str  # what its models are called, for errors ("a detector")
    noun: str  # what its runs are called, for errors ("detection")
    run_options: tuple  # the options config.json records (--resume keeps them)
    config_keys: dict  # every key of its config.json, with its type
    run_files: tuple  # the files of a finished run
    train: Callable  # (args, config, lock, done, rewrite_config) -> exit status
    build: Callable  # config -> the model of a saved run
    eval: Callable  # (args, config, model) -> exit status
    predict: Callable  # (args, config, model) -> exit status
    predict_options: tuple = ("out_dir",)  # the options of predict it takes


RECIPES: dict[str, TaskRecipe] = {
    "detect": TaskRecipe(
        "detect", "DETECTORS", "DEFAULT_DETECTOR", "digit_scenes", "a detector", "detection",
        DETECT_RUN_OPTIONS, DETECT_CONFIG_KEYS, DETECT_RUN_FILES,
        _train_detect, _build_detector, _eval_detect, _predict_detect, ("min_score", "out_dir"),
    ),
    "segment": TaskRecipe(
        "segment", "SEGMENTERS", "DEFAULT_SEGMENTER", "shapes", "a segmenter", "segmentation",
        SEGMENT_RUN_OPTIONS, SEGMENT_CONFIG_KEYS, SEGMENT_RUN_FILES,
        _train_segment, _build_segmenter, _eval_segment, _predict_segment,
    ),
    "instance": TaskRecipe(
        "instance", "INSTANCE_MODELS", "DEFAULT_MODEL", "shapes", "an instance segmentation model",
        "instance segmentation", INSTANCE_RUN_OPTIONS, INSTANCE_CONFIG_KEYS, INSTANCE_RUN_FILES,
        _train_instance, _build_instance, _eval_instance, _predict_instance,
        ("min_score", "out_dir"),
    ),
    "landmarks": TaskRecipe(
        "landmarks", "LANDMARK_MODELS", "DEFAULT_MODEL", "shapes", "a landmark model",
        "landmark", LANDMARK_RUN_OPTIONS, LANDMARK_CONFIG_KEYS, LANDMARK_RUN_FILES,
        _train_landmarks, _build_landmarks, _eval_landmarks, _predict_landmarks,
    ),
    "denoise": TaskRecipe(
        "denoise", "DENOISERS", "DEFAULT_DENOISER", "photos", "a denoiser", "denoising",
        DENOISE_RUN_OPTIONS, DENOISE_CONFIG_KEYS, DENOISE_RUN_FILES,
        _train_denoise, _build_denoise, _eval_denoise, _predict_denoise,
    ),
    "superres": TaskRecipe(
        "superres", "SUPERRES_MODELS", "DEFAULT_MODEL", "photos", "a super-resolution model",
        "super-resolution", SUPERRES_RUN_OPTIONS, SUPERRES_CONFIG_KEYS, SUPERRES_RUN_FILES,
        _train_superres, _build_superres, _eval_superres, _predict_superres,
    ),
    "raw2rgb": TaskRecipe(
        "raw2rgb", "RAW2RGB_MODELS", "DEFAULT_RAW2RGB", "photos", "a RAW-to-RGB network",
        "RAW-to-RGB", RAW2RGB_RUN_OPTIONS, RAW2RGB_CONFIG_KEYS, RAW2RGB_RUN_FILES,
        _train_raw2rgb, _build_raw2rgb, _eval_raw2rgb, _predict_raw2rgb,
    ),
}
TASKS = ("classify", *RECIPES)
# the options of predict that only some tasks take; classification takes --invert
PREDICT_OPTIONS = ("min_score", "out_dir")


def _predict_options(task: str) -> tuple:
    return ("invert",) if task == "classify" else RECIPES[task].predict_options


def _run_noun(task: str) -> str:
    return "classification" if task == "classify" else RECIPES[task].noun


# ---------------------------------------------------------------- parser


def cmd_homework_build(args) -> int:
    from minicnn.homework import build

    written = build(args.out, fmt=args.format, source=args.source)
    print(f"wrote {len(written)} files to {args.out}/student (solutions stripped, hidden tests "
          f"removed) and {args.out}/instructor")
    return 0


def cmd_homework_grade(args) -> int:
    from minicnn.homework import format_report, grade

    if args.timeout <= 0:
        raise CLIError(f"--timeout must be positive (seconds), got {args.timeout}")
    print(format_report(grade(args.submission, source=args.source, only=args.assignment,
                              timeout=args.timeout)), end="")
    return 0


def _add_homework_parser(command) -> None:
    h = command(
        "homework",
        "build the course's assignments (student and instructor versions) or grade a submission",
        "Course homework from lessons/assignments/NN_topic/: 'build' writes each assignment's "
        "student version (nbgrader's solution regions replaced by raise NotImplementedError, "
        "hidden tests removed) and instructor version; 'grade' runs the assignments' graders "
        "against a student's files and prints the score of every test.",
    )
    hsub = h.add_subparsers(title="actions", dest="action", metavar="ACTION", required=True,
                            help="build or grade")
    b = hsub.add_parser("build", help="write OUT/student and OUT/instructor",
                        formatter_class=_HelpFormatter)
    b.add_argument("out", metavar="OUT", help="a new or empty folder")
    b.add_argument("--format", default="py", choices=("py", "ipynb"),
                   help="py: Jupytext percent scripts; ipynb: notebooks for nbgrader "
                   '(needs pip install "minicnn[notebook]")')
    b.set_defaults(func=cmd_homework_build)
    g = hsub.add_parser("grade", help="grade a student's files and print the score table",
                        formatter_class=_HelpFormatter)
    g.add_argument("submission", metavar="SUBMISSION_DIR",
                   help="a folder with the student's files (autograd.py, convolution.ipynb, ...; "
                   "directly or in NN_topic/ folders)")
    g.add_argument("--assignment", action="append", default=None, metavar="NN",
                   help="grade only this assignment (01 or 01_autograd; repeatable)")
    g.add_argument("--timeout", type=float, default=1800.0,
                   help="seconds allowed per assignment (default: 1800; assignment 07 trains a "
                   "network: about 7 min of CPU on a quiet machine)")
    g.set_defaults(func=cmd_homework_grade)
    for p in (b, g):
        p.add_argument("--source", default=None, metavar="DIR",
                       help="the assignments folder (default: lessons/assignments of this "
                       "checkout)")


class _HelpFormatter(argparse.HelpFormatter):
    """Each option's help, then its default once: "(default: X)" is added unless the help
    already says it or there is nothing to say (no default, a flag)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        if action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return f"{text} (default: %(default)s)"
        return text


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minicnn",
        description="minicnn: train, evaluate and inspect CNNs built from scratch.",
        epilog="Run 'minicnn COMMAND --help' for the options of a command.",
        formatter_class=_HelpFormatter,
    )
    sub = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")

    def command(name: str, help: str, description: str | None = None):
        return sub.add_parser(
            name, help=help, description=description or help[0].upper() + help[1:] + ".",
            formatter_class=_HelpFormatter,
        )

    t = command(
        "train",
        "train a model on built-in or downloaded data",
        "Train a CNN; writes metrics, figures and checkpoints to a run folder.",
    )
    t.add_argument(
        "--task", default=None, choices=TASKS, metavar="TASK",
        help="classify, detect, segment, instance, landmarks, denoise, superres or raw2rgb "
        "(default: the model's task: detect for a detector (yolo_v1_small, ssd300_vgg16, ...), "
        "segment for a segmenter (unet, resunet, deconvnet), instance for maskrcnn_small, "
        "landmarks for landmark_unet and "
        "landmark_regressor, denoise for a denoiser (dncnn, dncnn_s, noise_aware), superres "
        "for srcnn, raw2rgb for pynet_narrow and pynet, else the data's, else classify)",
    )
    t.add_argument(
        "--model", default="small_resnet", type=_train_model_name, metavar="MODEL",
        help="architecture: a name of minicnn.models ('minicnn models' lists them) "
        "(default: small_resnet); --task detect takes a detector: yolo_v1_small (used when "
        "--model is not given), yolo_v1, ssd300_vgg16, ssdlite320_mobilenet_v3_large, yolov5n, "
        "fasterrcnn_small (CPU-sized Faster R-CNN); --task instance: maskrcnn_small (a "
        "CPU-sized Mask R-CNN; used when --model is not given); "
        "--task segment a segmenter, CPU-sized: unet (used when --model is not given; same "
        "padding, 16 -> 128 channels), resunet, deconvnet; --task landmarks: landmark_unet "
        "(heatmaps; used when --model is not given) or landmark_regressor (the L2-regression "
        "baseline on the same encoder); --task denoise a denoiser: dncnn (used when --model "
        "is not given; CPU-sized), dncnn_s (the paper's DnCNN-S) or noise_aware (told the "
        "noise map, in SNR units; trained on sigma drawn in [5, 55], tested at --noise); "
        "--task superres: srcnn (9-1-5, on the Y channel, with global residual learning); "
        "--task raw2rgb: pynet_narrow (used when --model is not given; base width 8) or "
        "pynet (as published)",
    )
    t.add_argument(
        "--data",
        default="digits",
        choices=DATASET_NAMES,
        metavar="DATA",
        help="dataset: digits, shapes, digit_scenes (built in) or, reading --data-dir, mnist, "
        "fashion-mnist, cifar10, cifar100, folder (default: digits); --task detect takes "
        "digit_scenes (used when --data is not given) or shapes; --task segment shapes "
        "(used when --data is not given) or digit_scenes; --task instance takes shapes (used when "
        "--data is not given) or digit_scenes; --task landmarks shapes",
    )
    t.add_argument(
        "--data-dir",
        default=None,
        help="folder with downloaded MNIST/CIFAR files or an image folder "
        "(train/<class>/, test/<class>/)",
    )
    t.add_argument(
        "--epochs", type=int, default=None,
        help=f"epochs (default: {DEFAULT_EPOCHS}; --task detect: 10; --task "
        "segment: 10; --task instance: 10 of 1000 scenes; --task landmarks: 4, --model "
        "landmark_regressor: 10 (about the same CPU time); --task denoise: "
        "10 of 3200 patches, --model noise_aware: 20; --task superres: 20 of 3200 patches; "
        "--task raw2rgb: 8 of 640 patches; with --resume: the run's own)",
    )
    t.add_argument("--batch-size", type=int, default=64,
                   help="images per training batch (default: 64; --task detect, segment, "
                   "landmarks, denoise: 16; --task instance: 8; --task raw2rgb: 8; --task "
                   "superres: 32)")
    t.add_argument("--lr", type=float, default=0.01,
                   help="learning rate, OneCycle: the peak rate (default: 0.01; --task "
                   "detect, segment: 0.003; --task landmarks: 0.02, --model "
                   "landmark_regressor: 0.003; --task instance: 0.006; --task denoise: "
                   "0.01; --task raw2rgb: 0.002; --task superres: 0.002)")
    t.add_argument("--weight-decay", type=float, default=5e-4, help="L2 weight decay")
    t.add_argument("--optimizer", default="adam", choices=OPTIMIZERS, help="optimizer")
    t.add_argument(
        "--scheduler", default="onecycle", choices=SCHEDULERS, help="learning-rate schedule"
    )
    t.add_argument(
        "--crop-padding", type=int, default=2, help="random-crop augmentation padding (0: none)"
    )
    t.add_argument("--hflip", action="store_true", help="random horizontal flips (not for digits)")
    t.add_argument(
        "--image-size", type=int, default=None, metavar="N",
        help="--task detect: scenes of NxN pixels (default: 64 for yolo_v1_small, else the "
        "detector's own input size; 64 for SSD, which resizes its input itself; --task "
        "segment, instance: 64; --task landmarks: 32; landmark_regressor takes multiples of 8)",
    )
    t.add_argument(
        "--noise", type=float, default=None, metavar="SIGMA",
        help="--task denoise: Gaussian noise of standard deviation SIGMA on the 0-255 scale "
        "(default: 25)",
    )
    t.add_argument(
        "--scale", type=int, default=None, metavar="N",
        help="--task superres: the upscaling factor, 2 to 8 (default: 3): the photographs are "
        "shrunk N times by bicubic and enlarged back, the network learns to sharpen them",
    )
    t.add_argument("--device", default="cpu", help="cpu or cuda")
    t.add_argument(
        "--backend", default=None, choices=("numba", "numpy"),
        help="CPU kernels (default: numba when it imports, else numpy)",
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
    t.add_argument("--seed", type=int, default=0, help="random seed (same seed, same run)")
    t.add_argument(
        "--subset", type=int, default=None,
        help="use only the first N train and test images (default: all)",
    )
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    t.set_defaults(func=cmd_train)

    e = command("eval", "evaluate a trained run on its test set")
    e.add_argument("run", metavar="RUN_DIR", help="a run folder written by minicnn train")
    e.add_argument("--device", default="cpu", help="cpu or cuda")
    e.add_argument("--noise", type=float, default=None, metavar="SIGMA",
                   help="denoising runs: test at this noise level (0-255 scale) instead of "
                   "the run's own")
    e.set_defaults(func=cmd_eval)

    p = command(
        "predict",
        "classify image files, detect objects in them, segment them, find their landmarks or "
        "denoise them, with a trained run",
        "Print the top-3 classes of each image file. Images are read in the run's channels "
        "(grayscale or RGB), resized to its image size and normalised with its statistics. "
        "For a detection run: print the objects found and draw their boxes, class and score "
        "on a copy of each image (IMAGE-detections.png in --out-dir). For a segmentation "
        "run: print the share of the pixels of each class found and draw the predicted "
        "mask over a copy of each image (IMAGE-segmentation.png in --out-dir). For an instance "
        "segmentation run: print each object found (class, score, box, mask pixels) and draw "
        "its mask and box over a copy of each image (IMAGE-instances.png in --out-dir). For a "
        "landmark "
        "run: print the landmarks found (in the file's pixels) and draw them, with the "
        "heatmaps, on a copy of each image (IMAGE-landmarks.png in --out-dir). For a "
        "denoising run: denoise each image (assumed noisy like the run's training noise) and "
        "write it as IMAGE-denoised.png in --out-dir. For a super-resolution run: enlarge "
        "each image by the run's scale (as minicnn upscale) and write it as "
        "IMAGE-upscaled.png in --out-dir. For a RAW-to-RGB run: each (RGB) image "
        "is photographed by the run's simulated camera (Bayer mosaic and noise) and developed "
        "by the network (IMAGE-raw2rgb.png, and the bilinear demosaic IMAGE-bilinear.png, in "
        "--out-dir); prints the PSNR of both against the image.",
    )
    p.add_argument("run", metavar="RUN_DIR", help="a run folder written by minicnn train")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG/JPEG files")
    p.add_argument(
        "--invert", choices=INVERT_MODES, default="auto",
        help="auto: invert a grayscale image whose background (its border) is light when the "
        "training images are light on dark (digits, MNIST), or dark when they are dark on "
        "light; colour images are kept. yes/no: always/never invert. Except with no, "
        "grayscale images are also stretched to the full [0, 1] range",
    )
    p.add_argument("--min-score", type=float, default=None,
                   help="detection and instance segmentation runs: show objects scoring at least "
                   "this (default: 0.3; instance segmentation runs: 0.5)")
    p.add_argument("--out-dir", default=None,
                   help="detection, segmentation, landmark, denoising and super-resolution "
                   "runs: where the drawn, denoised or enlarged images go (default: "
                   "RUN_DIR/predictions)")
    p.set_defaults(func=cmd_predict)

    u = command(
        "upscale",
        "enlarge an image file with a trained super-resolution run",
        "Enlarge the image file IN by the run's scale and write OUT (its format from its "
        "suffix; written atomically): as SRCNN's paper, the image goes to YCbCr, all three "
        "channels are enlarged by bicubic interpolation, the run's network sharpens the "
        "luminance Y, Cb and Cr stay bicubic. A grey image stays grey.",
    )
    u.add_argument("input", metavar="IN", help="a PNG/JPEG file")
    u.add_argument("output", metavar="OUT", help="the enlarged image file (.png, .jpg, ...)")
    u.add_argument("--run", required=True, metavar="RUN_DIR",
                   help="a run folder written by minicnn train --task superres")
    u.add_argument("--scale", type=int, default=None, metavar="N",
                   help="the factor to enlarge by: must be the run's own (default: the run's)")
    u.set_defaults(func=cmd_upscale)

    s = command("summary", "per-layer output shapes, parameters and multiply-adds")
    s.add_argument("model", type=_model_name, metavar="MODEL", help="a name of 'minicnn models'")
    s.add_argument(
        "--input-size", type=int, nargs=3, default=None, metavar=("C", "H", "W"),
        help="input image size (default: the model's own channels and the size it is made "
        "for: 32x32 for the CIFAR and course networks, 299x299 for inception_v3, "
        "EfficientNet-Bk's resolution, 224x224 for the other ImageNet networks)",
    )
    s.add_argument(
        "--num-classes", type=int, default=None,
        help="classes of the output layer (default: the model's own, as minicnn.models.MODEL())",
    )
    s.set_defaults(func=cmd_summary)

    m = command("models", "list the architectures of minicnn.models, by family")
    m.set_defaults(func=cmd_models)

    x = command(
        "export-torchvision",
        "write a torchvision model's weights to safetensors (needs PyTorch)",
        "Build torchvision.models.MODEL(), optionally load a weight file you have into it, "
        "and save its state_dict as safetensors, ready for minicnn.models.load_weights. "
        "Nothing is downloaded.",
    )
    x.add_argument("model", metavar="MODEL", help="a torchvision model name, e.g. resnet18")
    x.add_argument("out", metavar="OUT", help="output file (.safetensors or .npz)")
    x.add_argument(
        "--weights", default=None, metavar="FILE",
        help="a torchvision weight file (.pth, a state_dict saved with torch.save; read with "
        "torch.load(weights_only=True)) to convert (default: a random initialisation)",
    )
    x.set_defaults(func=cmd_export_torchvision)

    c = command(
        "compress",
        "prune, fine-tune and weight-share a trained classification run; report accuracy "
        "and size",
        "Magnitude pruning (--prune), optional fine-tuning with the pruned weights held at "
        "zero (--finetune-epochs), then k-means weight sharing with 2^bits values per layer "
        "(--bits), as in Deep Compression; prints the test accuracy and the stored size in MB "
        "after each step and writes RUN_DIR/compressed/TAG.safetensors (sparse and shared "
        "weights packed; see minicnn.compress.size) and TAG.json. The run's checkpoints are "
        "not changed.",
    )
    c.add_argument("run", metavar="RUN_DIR", help="a classification run written by minicnn "
                   "train")
    c.add_argument("--prune", type=float, default=None, metavar="FRACTION",
                   help="fraction of the conv and linear weights to remove, in [0, 1)")
    c.add_argument("--scope", choices=("global", "layer"), default="global",
                   help="global: one magnitude threshold for the whole network; layer: each "
                   "layer loses FRACTION of its weights")
    c.add_argument("--bits", type=int, default=None, metavar="N",
                   help="weight sharing: 2^N values per layer (1..8)")
    c.add_argument("--finetune-epochs", type=int, default=0, metavar="E",
                   help="epochs of fine-tuning after pruning (default: 0, none; the run's "
                   "optimizer at a tenth of its learning rate)")
    c.add_argument("--device", default="cpu", help="cpu or cuda")
    c.set_defaults(func=cmd_compress)
    _add_homework_parser(command)
    _add_denoise_parser(command)
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
    except BrokenPipeError:  # the reader left (`minicnn models | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
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
