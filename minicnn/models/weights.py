"""Weights interchange with torchvision: export a torchvision model's ``state_dict`` to
safetensors (on a machine with PyTorch), load it into the matching minicnn model
(anywhere, no PyTorch needed).

    # with PyTorch installed (the command line: minicnn export-torchvision resnet18 r18.safetensors
    #                          [--weights resnet18-f37072fd.pth])
    export_torchvision("resnet18", "r18.safetensors")              # fresh random init
    export_torchvision("resnet18", "r18.safetensors", "DEFAULT")   # pretrained, if cached
    export_torchvision("resnet18", "r18.safetensors", weights_file="resnet18-f37072fd.pth")

    # anywhere
    model = minicnn.models.resnet18()
    load_weights(model, "r18.safetensors")

minicnn's models use torchvision's attribute names, so the keys and shapes of the two
state dicts are the same and the file loads as it is. Nothing is ever unpickled on the
minicnn side: files are safetensors (or ``.npz`` read with ``allow_pickle=False``).
"""

from __future__ import annotations

import os
from pathlib import Path

from minicnn.serialization import array_shapes, load_arrays, save_arrays

__all__ = ["export_torchvision", "load_weights"]


def load_weights(model, path: str | os.PathLike, strict: bool = True):
    """Load the arrays of a ``.safetensors`` or ``.npz`` file into ``model``, in place.

    ``strict=True``: every key of the model must be in the file and every key of the file
    in the model. A key whose shape differs is always an error. Errors (a ValueError)
    name the file and the offending keys with both shapes. The keys and shapes are read
    from the file's headers first, so a file that does not fit costs no memory. A file
    that is not a valid ``.safetensors``/``.npz`` raises
    :class:`~minicnn.errors.DataFileError` (a ValueError) naming it. Returns
    ``(missing_keys, unexpected_keys)`` (both empty when strict).
    """
    path = Path(path)
    shapes = array_shapes(path)  # FileNotFoundError / DataFileError for a bad file
    expected = model.state_dict()
    mismatched = [
        f"{key}: file has shape {shapes[key]}, the model expects {value.shape}"
        for key, value in expected.items()
        if key in shapes and not _same_shape(shapes[key], value.shape)
    ]
    missing = [k for k in expected if k not in shapes]
    unexpected = [k for k in shapes if k not in expected]
    problems = [f"shape mismatch for {m}" for m in mismatched]
    if strict:
        problems += [f"missing key {k!r} (the model has it, the file does not)" for k in missing]
        problems += [f"unexpected key {k!r} (in the file, not in the model)" for k in unexpected]
    if problems:
        shown = problems[:10] + ([f"... and {len(problems) - 10} more"] if len(problems) > 10
                                 else [])
        raise ValueError(f"load_weights: {path} does not fit {type(model).__name__}:\n  "
                         + "\n  ".join(shown))
    return model.load_state_dict(load_arrays(path), strict=strict)


def _same_shape(file_shape, model_shape) -> bool:
    """Equal shapes; a scalar saved as shape (1,) (older files) also fits a scalar."""
    file_shape, model_shape = tuple(file_shape), tuple(model_shape)
    return file_shape == model_shape or (model_shape == () and file_shape == (1,))


def _cached_weights_file(weights_enum):
    """The local file torchvision would download ``weights_enum`` to; None if it is not there."""
    import torch

    filename = os.path.basename(weights_enum.url.split("?")[0])
    path = Path(torch.hub.get_dir()) / "checkpoints" / filename
    return path if path.is_file() else None


def _read_torch_state_dict(path: str | os.PathLike) -> dict:
    """The ``state_dict`` in a file written by ``torch.save``, read with ``weights_only=True``
    (no arbitrary unpickling). A checkpoint ``{"state_dict": ...}`` and the ``module.``
    prefix of ``nn.DataParallel`` are unwrapped. OSError / ValueError name the file."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"export_torchvision: weights file {str(path)!r} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for these
        # torch's own text advises weights_only=False: keep only the unpickler's reason
        detail = str(e).split("WeightsUnpickler error:")[-1].strip().split("\n\n")[0]
        raise ValueError(
            f"export_torchvision: {str(path)!r} is not a weight file torch.load(weights_only=True) "
            f"can read ({type(e).__name__}: {detail.splitlines()[0] if detail else '-'}); "
            f"expected a state_dict saved with torch.save(model.state_dict(), path)"
        ) from e
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not (isinstance(obj, dict) and obj
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())):
        raise ValueError(f"export_torchvision: {str(path)!r} holds a {type(obj).__name__}, "
                         f"expected a state_dict (a dict of parameter names to tensors)")
    if all(k.startswith("module.") for k in obj):
        obj = {k.removeprefix("module."): v for k, v in obj.items()}
    return obj


def _num_classes_in(model, state_dict: dict, default: int = 1000) -> int | None:
    """The class count of a fine-tuned ``state_dict`` whose output layers differ from those of
    ``model`` (built with ``default`` classes) only in their first dimension; None when
    no shape differs or another one does."""
    expected = model.state_dict()
    mismatched = [(tuple(v.shape), tuple(expected[k].shape)) for k, v in state_dict.items()
                  if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
    if not mismatched or any(m[0] != default or f[1:] != m[1:] for f, m in mismatched):
        return None
    counts = {f[0] for f, _ in mismatched}
    return counts.pop() if len(counts) == 1 else None


def _load_torch_state_dict(model, state_dict: dict, name: str, source: str) -> None:
    """``model.load_state_dict(state_dict)``; torch's multi-line error becomes one ValueError."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()] or [str(e)]
        detail = "; ".join(lines)
        detail = detail if len(detail) <= 400 else detail[:400] + " ..."
        raise ValueError(f"export_torchvision: {source} does not fit torchvision.models.{name}(): "
                         f"{detail}") from e


def export_torchvision(name: str, out_path: str | os.PathLike, weights: str | None = None, *,
                       model=None, weights_file: str | os.PathLike | None = None) -> Path:
    """Write the ``state_dict`` of ``torchvision.models.<name>()`` to ``out_path`` (safetensors).

    ``weights=None`` exports a freshly initialised model (seed it with
    ``torch.manual_seed``). ``weights="DEFAULT"`` (or a name like ``"IMAGENET1K_V1"``)
    exports the pretrained weights -- only if torchvision has them cached already
    (``torch.hub.get_dir()/checkpoints``): this function never downloads.
    ``weights_file``, a weight file you have (a ``state_dict`` saved with ``torch.save``,
    e.g. torchvision's ``resnet18-f37072fd.pth`` or your fine-tuned model's), is read with
    ``torch.load(weights_only=True)``, checked against the architecture and exported; a
    classifier with another number of classes is recognised (build the minicnn model with
    that ``num_classes``). ``model``, an already built torch module (say, one you
    fine-tuned), is exported instead of a new one. Give at most one of ``weights``,
    ``weights_file`` and ``model``. Needs PyTorch and torchvision (imported here, not by
    minicnn). Returns the path.
    """
    out_path = Path(out_path)
    if out_path.suffix not in (".safetensors", ".npz"):
        raise ValueError(f"export_torchvision: out_path must end in .safetensors or .npz, "
                         f"got {str(out_path)!r}")
    sources = {"weights": weights, "weights_file": weights_file, "model": model}
    given = [k for k, v in sources.items() if v is not None]
    if len(given) > 1:
        raise ValueError(f"export_torchvision: give at most one of weights, weights_file and "
                         f"model, got {' and '.join(given)}")
    try:
        import torch
        import torchvision
    except ImportError as e:
        raise ImportError(
            "export_torchvision needs PyTorch and torchvision: pip install torch torchvision "
            f"(only for the export; loading the file into minicnn does not need them). ({e})"
        ) from e
    kwargs: dict = {}  # torchvision.models.get_model's, for a new model
    if model is None:
        available = torchvision.models.list_models(module=torchvision.models)
        if name not in available:
            raise ValueError(f"export_torchvision: unknown torchvision classification model "
                             f"{name!r}; available: {', '.join(sorted(available))}")
        state_dict = None
        if weights is not None:
            enum = torchvision.models.get_model_weights(name)
            try:
                entry = enum[weights] if isinstance(weights, str) else enum(weights)
            except (KeyError, ValueError) as e:
                raise ValueError(f"export_torchvision: weights must be None or one of "
                                 f"{['DEFAULT', *enum.__members__]} for {name}, got {weights!r}"
                                 ) from e
            cached = _cached_weights_file(entry)
            if cached is None:
                raise FileNotFoundError(
                    f"export_torchvision: the weights {entry} are not in the local torch cache "
                    f"({torch.hub.get_dir()}/checkpoints); this function never downloads. "
                    f"Download them once with torchvision (e.g. "
                    f"torchvision.models.{name}(weights={str(entry)!r})) and run it again."
                )
            state_dict = _read_torch_state_dict(cached)
            weights = str(entry)
            kwargs = {"num_classes": len(entry.meta["categories"])}
        elif weights_file is not None:
            state_dict = _read_torch_state_dict(weights_file)
            weights = str(weights_file)
        model = torchvision.models.get_model(name, weights=None, **kwargs)
        if weights_file is not None:
            num_classes = _num_classes_in(model, state_dict)
            if num_classes is not None:  # a fine-tuned classifier
                kwargs = {"num_classes": num_classes}
                model = torchvision.models.get_model(name, weights=None, **kwargs)
        if state_dict is not None:
            _load_torch_state_dict(model, state_dict, name, repr(weights))
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"export_torchvision(model=...) expects a torch.nn.Module, "
                        f"got {type(model).__name__}")
    arrays = {k: v.detach().cpu().contiguous().numpy() for k, v in model.state_dict().items()}
    metadata = {"source": "torchvision", "model": name, "weights": str(weights),
                "torchvision_version": torchvision.__version__}
    if kwargs.get("num_classes", 1000) != 1000:
        metadata["num_classes"] = str(kwargs["num_classes"])
    return save_arrays(arrays, out_path, metadata=metadata)  # .npz files keep no metadata
