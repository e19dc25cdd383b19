"""Saving and loading arrays: safetensors (or ``.npz``) for tensors, JSON for the rest.

No pickle, ever: ``.npz`` files are read with ``allow_pickle=False`` and safetensors holds
only raw arrays. Every save writes a temporary file in the same folder, flushes it to disk
and renames it over the target (``os.replace`` is atomic), so an interrupted save leaves
the previous file intact, never a half-written one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from minicnn.autograd.tensor import Tensor
from minicnn.backend import to_device


def umask_mode(mode: int = 0o666) -> int:
    """``mode`` less the process's umask: what ``open`` (0o666) or ``mkdir`` (0o777) would give."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` then rename ``tmp_path`` to ``path`` atomically.

    The file gets the permissions a plain ``open(path, "w")`` would (0o666 less the umask),
    not the 0o600 of a temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, umask_mode())  # after writing: a writer may replace the file
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _to_numpy(value) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.data
    # np.asarray(order="C"), not np.ascontiguousarray: the latter turns a 0-d array (BatchNorm's
    # num_batches_tracked) into shape (1,)
    return np.asarray(to_device(value, "cpu"), order="C")


def save_arrays(
    arrays: Mapping, path: str | os.PathLike, metadata: dict[str, str] | None = None
) -> Path:
    """Save ``{name: Tensor or array}`` to ``path`` (``.safetensors`` or ``.npz``), atomically."""
    arrays = {k: _to_numpy(v) for k, v in arrays.items()}
    suffix = Path(path).suffix
    if suffix == ".safetensors":
        from safetensors.numpy import save_file

        return atomic_write(path, lambda tmp: save_file(arrays, tmp, metadata=metadata))
    if suffix == ".npz":

        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)

        return atomic_write(path, write)
    raise ValueError(f"save: path must end in .safetensors or .npz, got {str(path)!r}")


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load ``{name: array}`` from a ``.safetensors`` or ``.npz`` file (never unpickles)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        return dict(load_file(str(path)))
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    raise ValueError(f"load: path must end in .safetensors or .npz, got {str(path)!r}")


def save_json(obj, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(obj, indent=2, default=_json_default)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot write {type(o).__name__} to JSON")


def load_json(path: str | os.PathLike):
    return json.loads(Path(path).read_text())


def save(state_dict: Mapping, path: str | os.PathLike) -> Path:
    """Save a model's ``state_dict()`` (``minicnn.save(model.state_dict(), "w.safetensors")``)."""
    return save_arrays(state_dict, path)


def load(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load a state dict saved by :func:`save` (or a torchvision export); feed it to
    ``model.load_state_dict``."""
    return load_arrays(path)
