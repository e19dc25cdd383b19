"""Checkpoints: everything needed to continue a run exactly, written atomically.

A checkpoint is a folder ``checkpoints/epoch_NNN/`` holding

* ``model.safetensors`` -- the model's ``state_dict`` (weights and buffers)
* ``optimizer.safetensors`` -- the arrays of the optimizer's state (momentum buffers ...)
* ``state.json`` -- epoch, history, optimizer and scheduler settings, the RNG state

The folder is written under a temporary name and renamed when complete, and
``checkpoints/latest.json`` (which names the newest) is replaced atomically after it: a
run killed at any moment leaves every earlier checkpoint intact. Nothing is pickled.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from minicnn import random as _random
from minicnn.backend import is_array, to_device
from minicnn.serialization import load_arrays, load_json, save_arrays, save_json


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
    final = root / f"epoch_{epoch:03d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
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
        if (root / "latest.json").exists():
            return root / load_json(root / "latest.json")["latest"]
    if (path / "state.json").exists():
        return path
    raise FileNotFoundError(f"no checkpoint found in {path} (expected checkpoints/latest.json)")


def load_checkpoint(path, model, optimizer=None, scheduler=None) -> dict:
    """Restore model, optimizer, scheduler and RNG from a checkpoint; returns ``state.json``."""
    folder = find_checkpoint(path)
    model.load_state_dict(load_arrays(folder / "model.safetensors"))
    state = load_json(folder / "state.json")
    arrays = load_arrays(folder / "optimizer.safetensors")
    if optimizer is not None and state["optimizer"] is not None:
        optimizer.load_state_dict(_int_keys(_join_arrays(state["optimizer"], arrays)))
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(_join_arrays(state["scheduler"], arrays))
    _random.set_state(state["rng"])
    return state
