"""Saving and loading: safetensors (or ``.npz``) for arrays, JSON for the rest.

``save``/``load`` are ``minicnn.save``/``minicnn.load`` (any nesting of dicts, lists and
tuples of tensors and plain values); ``save_arrays``/``load_arrays`` handle a flat
``{name: array}`` dict (checkpoints, weight files) and ``save_json``/``load_json`` text.

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
from minicnn.backend import is_array, normalize_device, to_device
from minicnn.errors import DataFileError, reading


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
        value = value.array
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
        return _read_npz(path)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of a ``.npz`` file, each member's header checked before its data is read."""
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


# ---------------------------------------------------------------- minicnn.save / minicnn.load
_OBJECT_KEY = "minicnn.object"  # safetensors metadata entry (or .npz member) holding the JSON
_NPZ_OBJECT = "__minicnn_object__"
_FORMAT_VERSION = 1
_TAGS = ("tensor", "array", "scalar", "tuple", "dict")


def _encode(obj, where: str, arrays: dict, keys: dict):
    """``obj`` as JSON, its arrays moved into ``arrays`` (named after where they sit).

    None, bools, ints, floats, strings and lists are JSON themselves; the rest is a
    one-key object: {"tensor": name, "requires_grad": b}, {"array": name},
    {"scalar": value, "dtype": d} (a NumPy scalar), {"tuple": [...]} and
    {"dict": [[key, value], ...]} (keys of any of these kinds, in order).
    """
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, Tensor):
        node = {"tensor": _store(obj.array, where, arrays, keys)}
        if obj.requires_grad:
            node["requires_grad"] = True
        return node
    if is_array(obj):
        return {"array": _store(obj, where, arrays, keys)}
    if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
        return {"scalar": obj.item(), "dtype": obj.dtype.str}
    if isinstance(obj, list):
        return [_encode(v, f"{where}.{i}", arrays, keys) for i, v in enumerate(obj)]
    if isinstance(obj, tuple):
        return {"tuple": [_encode(v, f"{where}.{i}", arrays, keys) for i, v in enumerate(obj)]}
    if isinstance(obj, Mapping):
        items = []
        for k, v in obj.items():
            if isinstance(k, (Tensor, list, Mapping)) or is_array(k):
                raise TypeError(f"save: {where} has a key of type {type(k).__name__}; "
                                "expected str, int, float, bool, None or a tuple of those")
            items.append([_encode(k, where, arrays, keys),
                          _encode(v, f"{where}.{k}" if where else str(k), arrays, keys)])
        return {"dict": items}
    raise TypeError(
        f"save: cannot save {type(obj).__name__} at {where or 'the top'}; expected Tensors, "
        "arrays, dicts, lists, tuples, str, int, float, bool or None (save a model's "
        "state_dict(), not the model)"
    )


def _store(array, where: str, arrays: dict, keys: dict) -> str:
    """Put ``array`` in ``arrays`` under a unique name; the same array object is stored once."""
    if id(array) in keys:
        return keys[id(array)]
    if array.dtype.kind not in "biuf":
        raise TypeError(f"save: the array at {where} has dtype {array.dtype}; expected a "
                        "numeric dtype (bool, int, uint, float)")
    name = where or "tensor"
    if name in arrays or name == _NPZ_OBJECT:
        name = next(f"{name}#{i}" for i in range(1, len(arrays) + 2) if f"{name}#{i}" not in arrays)
    arrays[name] = _to_numpy(array)
    keys[id(array)] = name
    return name


def _decode(node, arrays: dict, made: dict):
    """The inverse of :func:`_encode` (the same stored array gives the same object)."""
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [_decode(v, arrays, made) for v in node]
    if not isinstance(node, dict) or not any(t in node for t in _TAGS):
        raise ValueError(f"unexpected entry {str(node)[:60]!r}")
    if "tensor" in node or "array" in node:
        name = node.get("tensor", node.get("array"))
        key = (name, "tensor" in node)
        if key not in made:
            if name not in arrays:
                raise ValueError(f"refers to an array {name!r} that the file does not hold")
            made[key] = Tensor._wrap(arrays[name]) if "tensor" in node else arrays[name]
            if node.get("requires_grad"):
                made[key].requires_grad_(True)
        return made[key]
    if "scalar" in node:
        return np.dtype(node["dtype"]).type(node["scalar"])
    if "tuple" in node:
        return tuple(_decode(v, arrays, made) for v in node["tuple"])
    return {_freeze(_decode(k, arrays, made)): _decode(v, arrays, made) for k, v in node["dict"]}


def _freeze(key):
    return tuple(_freeze(k) for k in key) if isinstance(key, list) else key


def save(obj, path: str | os.PathLike) -> Path:
    """Save ``obj`` to ``path`` as ``torch.save`` does, without pickle, atomically.

    ``obj`` may be a Tensor, an array, or dicts, lists and tuples of those and of str,
    int, float, bool and None: a model's ``state_dict()``, an optimizer's, or a dict of
    several (``{"model": ..., "optimizer": ..., "epoch": 3}``). Any file name works
    (``.pt``, ``.pth``, ``.safetensors`` ...): the file is safetensors, its arrays named
    after where they sit (``"model.fc.weight"``) and the structure as JSON in its
    metadata, so other safetensors tools can read the arrays. A name ending in ``.npz``
    gives a NumPy ``.npz`` archive instead, the structure in a text member. GPU tensors
    are saved from (and loaded to) the CPU.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"save: path must be a str or os.PathLike, got {type(path).__name__}")
    arrays: dict[str, np.ndarray] = {}
    structure = _encode(obj, "", arrays, {})
    text = json.dumps({"format": "minicnn", "version": _FORMAT_VERSION, "object": structure})
    if Path(path).suffix == ".npz":

        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, **arrays, **{_NPZ_OBJECT: np.asarray(text)})

        return atomic_write(path, write)
    from safetensors.numpy import save_file

    return atomic_write(path, lambda tmp: save_file(arrays, tmp, metadata={_OBJECT_KEY: text}))


def load(path: str | os.PathLike, map_location=None, *, weights_only: bool = True):
    """Load what :func:`save` wrote, as ``torch.load(path, weights_only=True)`` does.

    Tensors come back as Tensors (on the CPU, or on ``map_location`` when given,
    ``requires_grad`` as saved), arrays as NumPy arrays, tuples as tuples, integer dict
    keys as ints. A plain safetensors or ``.npz`` file of arrays (older minicnn weights, a
    torchvision export) gives ``{name: Tensor}``: feed it to ``model.load_state_dict``.
    Never unpickles: ``weights_only`` is accepted for PyTorch code and is always true.
    """
    obj = _load(Path(path))
    return obj if map_location is None else _moved(obj, normalize_device(map_location))


def _moved(obj, device: str):
    """``obj`` with every Tensor in it moved to ``device``."""
    if isinstance(obj, Tensor):
        return obj.to(device)
    if isinstance(obj, list | tuple):
        return type(obj)(_moved(v, device) for v in obj)
    if isinstance(obj, dict):
        return {k: _moved(v, device) for k, v in obj.items()}
    return obj


def _load(path: Path):
    if not path.exists():
        raise FileNotFoundError(f"load: no such file: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"load: {path} is a directory, expected a file saved by save()")
    try:
        arrays, text = _read_arrays_and_structure(path)
    except OSError:
        raise  # permissions, I/O errors: they name the file
    except Exception as e:  # a damaged zip or safetensors header, bad JSON ...
        raise DataFileError(
            path, f"not a file saved by minicnn.save (or a safetensors/.npz file of arrays): "
            f"{type(e).__name__}: {e}"
        ) from None
    if text is None:  # a flat file of arrays: older minicnn weights, exports
        return {k: Tensor._wrap(v) for k, v in arrays.items()}
    try:
        saved = json.loads(text)
        if not isinstance(saved, dict) or saved.get("format") != "minicnn":
            raise ValueError("its structure entry is not minicnn's")
        return _decode(saved["object"], arrays, {})
    except (ValueError, KeyError, TypeError) as e:
        raise DataFileError(path, f"the saved structure is damaged: {e}") from None


def _read_arrays_and_structure(path: Path) -> tuple[dict, str | None]:
    """All arrays of the file and its JSON structure (None for a plain file of arrays)."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic.startswith(b"PK"):  # a zip archive: .npz
        arrays = _read_npz(path)
        text = arrays.pop(_NPZ_OBJECT, None)
        return arrays, None if text is None else str(text)
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        text = (f.metadata() or {}).get(_OBJECT_KEY)
        return {k: f.get_tensor(k) for k in f.keys()}, text  # noqa: SIM118
