"""Checkpoints: everything needed to continue a run exactly, written atomically.

A checkpoint is a folder ``checkpoints/epoch_NNN/`` holding

* ``model.safetensors`` -- the model's ``state_dict`` (weights and buffers)
* ``optimizer.safetensors`` -- the arrays of the optimizer's state (momentum buffers ...)
* ``state.json`` -- epoch, history, optimizer and scheduler settings, the RNG state

The folder is written under a temporary name and renamed when complete, and
``checkpoints/latest.json`` (which names the newest) is replaced atomically after it: a
run killed at any moment leaves every earlier checkpoint intact; the temporary folders of a
killed save are removed by the next save. Nothing is pickled.

Loading checks every file it reads: a missing, truncated or garbled file, or a JSON file
with a missing key or a wrong type, raises :class:`CheckpointError` naming the file and
what is wrong. ``latest.json`` may only name a folder inside ``checkpoints/``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from minicnn import random as _random
from minicnn.backend import is_array, to_device
from minicnn.serialization import load_arrays, load_json, save_arrays, save_json, umask_mode
from minicnn.train.run_dir import remove_stale_temp


class CheckpointError(ValueError):
    """A checkpoint or run file that cannot be read: names the file and what is wrong."""


def read_json_file(path, required: dict[str, type | tuple] | None = None) -> dict:
    """Read the JSON object in ``path``, checking that each ``required`` key has its type.

    Raises :class:`CheckpointError` naming the file for a missing or unreadable file,
    invalid JSON, a value that is not an object, a missing key or a wrong type.
    """
    path = Path(path)
    try:
        obj = load_json(path)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: cannot be read ({e})") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    for key, kind in (required or {}).items():
        if key not in obj:
            raise CheckpointError(f"{path}: missing the key {key!r}")
        value = obj[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int to Python, not to a config file
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
            raise CheckpointError(
                f"{path}: {key!r} must be {names}, got {json.dumps(value)[:60]}"
            )
    return obj


def _read_arrays(path) -> dict:
    """``load_arrays`` with every failure reported as a CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: missing" + (" (a folder)" if path.is_dir() else ""))
    try:
        return load_arrays(path)
    except Exception as e:  # safetensors' own error types are not OSError/ValueError
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None


def _split_arrays(obj, prefix: str, arrays: dict):
    """Replace every array in a nested dict/list by ``{"__array__": key}``, collecting them."""
    if hasattr(obj, "array") and is_array(getattr(obj, "array", None)):
        obj = obj.array
    if is_array(obj):
        arrays[prefix] = np.ascontiguousarray(to_device(obj, "cpu"))
        return {"__array__": prefix}
    if isinstance(obj, dict):
        return {str(k): _split_arrays(v, f"{prefix}.{k}", arrays) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_split_arrays(v, f"{prefix}.{i}", arrays) for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _join_arrays(obj, arrays: dict):
    """Undo :func:`_split_arrays`."""
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return arrays[obj["__array__"]]
        return {k: _join_arrays(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join_arrays(v, arrays) for v in obj]
    return obj


def _int_keys(d):
    """JSON turns the optimizer's integer state keys into strings; turn them back."""
    if isinstance(d, dict) and "state" in d and isinstance(d["state"], dict):
        d["state"] = {int(k) if str(k).isdigit() else k: v for k, v in d["state"].items()}
    return d


def save_checkpoint(
    run_dir, model, optimizer=None, scheduler=None, epoch: int = 0, extra: dict | None = None
) -> Path:
    """Write ``run_dir/checkpoints/epoch_NNN/`` atomically and point ``latest.json`` at it."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_temp(run_dir)
    final = root / f"epoch_{epoch:03d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        os.chmod(tmp, umask_mode(0o777))  # mkdtemp makes 0700; a folder follows the umask
        save_arrays(model.state_dict(), tmp / "model.safetensors")
        opt_arrays: dict = {}
        state = {
            "epoch": epoch,
            "optimizer": None
            if optimizer is None
            else _split_arrays(optimizer.state_dict(), "opt", opt_arrays),
            "scheduler": None
            if scheduler is None
            else _split_arrays(scheduler.state_dict(), "sched", opt_arrays),
            "rng": _random.get_state(),
            "extra": extra or {},
        }
        save_arrays(opt_arrays, tmp / "optimizer.safetensors")
        save_json(state, tmp / "state.json")
        if final.exists():  # re-saving the same epoch: move the old one aside first
            old = root / f".{final.name}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    save_json({"latest": final.name, "epoch": epoch}, root / "latest.json")
    return final


def find_checkpoint(path) -> Path:
    """A checkpoint folder from a run folder, its ``checkpoints`` folder or the folder itself."""
    path = Path(path)
    for root in (path / "checkpoints", path):
        latest = root / "latest.json"
        if latest.exists():
            name = read_json_file(latest, {"latest": str})["latest"]
            if Path(name).name != name or name in ("", ".", "..") or "\\" in name:
                raise CheckpointError(
                    f"{latest}: 'latest' must name a checkpoint folder inside {root}, "
                    f"got {name!r}"
                )
            if not (root / name).is_dir():
                raise CheckpointError(f"{latest}: names {name!r}, which is not a folder in {root}")
            return root / name
    if (path / "state.json").exists():
        return path
    raise FileNotFoundError(f"no checkpoint found in {path} (expected checkpoints/latest.json)")


STATE_KEYS = {
    "epoch": int,
    "optimizer": (dict, type(None)),
    "scheduler": (dict, type(None)),
    "rng": dict,
    "extra": dict,
}


def read_state(path) -> dict:
    """The checked ``state.json`` of the checkpoint that ``path`` leads to (see find_checkpoint)."""
    return read_json_file(find_checkpoint(path) / "state.json", STATE_KEYS)


def load_checkpoint(path, model, optimizer=None, scheduler=None) -> dict:
    """Restore model, optimizer, scheduler and RNG from a checkpoint; returns ``state.json``."""
    folder = find_checkpoint(path)
    state = read_json_file(folder / "state.json", STATE_KEYS)
    weights = _read_arrays(folder / "model.safetensors")
    arrays = _read_arrays(folder / "optimizer.safetensors")
    try:
        model.load_state_dict(weights)
    except (ValueError, TypeError, RuntimeError) as e:
        raise CheckpointError(
            f"{folder / 'model.safetensors'}: does not fit the model: {e}"
        ) from None
    try:
        if optimizer is not None and state["optimizer"] is not None:
            optimizer.load_state_dict(_int_keys(_join_arrays(state["optimizer"], arrays)))
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(_join_arrays(state["scheduler"], arrays))
        _random.set_state(state["rng"])
    except (KeyError, ValueError, TypeError, IndexError) as e:
        raise CheckpointError(
            f"{folder}: state.json and optimizer.safetensors do not fit the optimizer, "
            f"scheduler or random generator ({type(e).__name__}: {e})"
        ) from None
    return state
