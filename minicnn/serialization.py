"""Saving and loading arrays: safetensors (or ``.npz``) for tensors, JSON for the rest.

No pickle, ever: ``.npz`` files are read with ``allow_pickle=False`` and safetensors holds
only raw arrays. Every save writes a temporary file in the same folder, flushes it to disk
and renames it over the target (``os.replace`` is atomic), so an interrupted save leaves
the previous file intact, never a half-written one.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from minicnn.autograd.tensor import Tensor
from minicnn.backend import to_device
from minicnn.errors import DataFileError, reading


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` then rename ``tmp_path`` to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
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


def _check_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path: an existing regular ``.safetensors`` or ``.npz`` file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.suffix not in (".safetensors", ".npz"):
        raise ValueError(f"load: path must end in .safetensors or .npz, got {str(path)!r}")
    if path.is_dir():
        raise DataFileError(path, f"is a directory, expected a {path.suffix} file")
    return path


_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}


def _npz_members(path: Path, zf: zipfile.ZipFile):
    """``(name, info, shape, dtype)`` of each ``.npy`` member of an open ``.npz`` file, from
    the member headers only (nothing of the data is read)."""
    for info in zf.infolist():
        if not info.filename.endswith(".npy"):
            raise DataFileError(path, f"member {info.filename!r} is not a .npy array")
        name = info.filename[: -len(".npy")]
        with zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version not in _NPY_HEADER_READERS:
                raise DataFileError(path, f"member {name!r}: unsupported .npy version {version}")
            shape, _, dtype = _NPY_HEADER_READERS[version](f)
            header_size = f.tell()
        if dtype.hasobject:
            raise DataFileError(path, f"member {name!r} holds Python objects, which would need "
                                      f"pickle to load; minicnn never unpickles")
        size = math.prod(shape) * dtype.itemsize
        if header_size + size != info.file_size:
            raise DataFileError(path, f"member {name!r}: header says shape {shape} of {dtype} "
                                      f"({size} bytes), the member holds "
                                      f"{info.file_size - header_size}")
        yield name, info, shape, dtype


def array_shapes(path: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """``{name: shape}`` of the arrays in a ``.safetensors`` or ``.npz`` file, read from the
    headers only: a file of huge arrays costs nothing to inspect.

    Raises :class:`~minicnn.errors.DataFileError` naming the file when it is not a valid
    file of its kind, ``FileNotFoundError`` when it does not exist.
    """
    path = _check_file(path)
    with reading(path, f"{path.suffix} file"):
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="numpy") as f:
                return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
        with zipfile.ZipFile(path) as zf:
            return {name: tuple(shape) for name, _, shape, _ in _npz_members(path, zf)}


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load ``{name: array}`` from a ``.safetensors`` or ``.npz`` file (never unpickles).

    A file that is not a valid file of its kind (empty, truncated, random bytes, a ``.npz``
    member that is not an array, a directory) raises
    :class:`~minicnn.errors.DataFileError` naming the file; a missing one,
    ``FileNotFoundError``.
    """
    path = _check_file(path)
    with reading(path, f"{path.suffix} file"):
        if path.suffix == ".safetensors":
            from safetensors.numpy import load_file

            return dict(load_file(str(path)))
        with zipfile.ZipFile(path) as zf:
            arrays = {}
            for name, info, _, _ in list(_npz_members(path, zf)):
                with zf.open(info) as f:
                    arrays[name] = np.lib.format.read_array(f, allow_pickle=False)
            return arrays


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
