"""``Optimizer``: the base class every optimizer builds on, as in ``torch.optim.Optimizer``.

An optimizer holds

    param_groups  a list of dicts: ``{"params": [Tensor, ...], "lr": ..., ...}``; each group
                  has its own options (a learning rate per group, for example)
    defaults      the options a group gets when it does not set them itself
    state         per-parameter state (momentum buffers, moving averages, a step count),
                  a dict keyed by the parameter tensor

``step()`` walks every parameter that has a gradient and calls ``_update``, the one
method a subclass writes: the update formula for a single parameter, on raw arrays,
in place. The arrays are NumPy or CuPy arrays; the formulas use operators and
``xp = array_module(param)`` functions only, so they run unchanged on either.

``state_dict()`` uses PyTorch's layout: parameters are replaced by their position
(0, 1, 2, ... over all groups in order), state values are NumPy arrays or Python
numbers, so a checkpoint can be written as safetensors (arrays) plus JSON (the rest).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from minicnn.autograd.grad_mode import enable_grad, no_grad
from minicnn.autograd.tensor import Tensor
from minicnn.backend import array_module, is_array, to_device

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]] | Iterable[tuple[str, Tensor]]


class Optimizer:
    """Base class for optimizers.

    Args:
        params: an iterable of Tensors (e.g. ``model.parameters()``), of
            ``(name, Tensor)`` pairs (``model.named_parameters()``), or of dicts
            ``{"params": [...], "lr": ...}`` giving each parameter group its own options.
        defaults: the default value of every option of this optimizer.
    """

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        self._opt_called = False  # set by step(); a scheduler warns when it steps first

        if isinstance(params, Tensor):
            raise TypeError(
                "params must be an iterable of Tensors or dicts, got a single Tensor; "
                "wrap it in a list: [tensor]"
            )
        if isinstance(params, dict):
            raise TypeError(
                "params must be an iterable of Tensors or dicts, got a single dict; "
                "wrap it in a list: [{'params': ...}]"
            )
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError(
                "params is empty: the optimizer got an empty parameter list (a generator "
                "such as model.parameters() can only be consumed once)"
            )
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # ------------------------------------------------------------ options
    def _check_options(self, group: dict[str, Any]) -> None:
        """Raise ValueError for an invalid option value in ``group`` (subclasses extend)."""
        lr = group.get("lr", 0.0)
        if not _is_number(lr):
            raise TypeError(f"lr must be a number, got {type(lr).__name__}")
        if not lr >= 0.0:
            raise ValueError(f"Invalid learning rate: lr={lr}, expected lr >= 0")

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own options (missing ones come from ``defaults``).

        Useful when fine-tuning: unfreeze layers and hand them to the optimizer with a
        smaller learning rate.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("param_group must have a 'params' entry (the tensors to optimize)")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "params must be an ordered collection (list, tuple, generator), got a set: "
                "the order of a set changes between runs"
            )
        params = list(params)

        names = [p[0] for p in params if isinstance(p, tuple)]
        tensors = [p[1] if isinstance(p, tuple) else p for p in params]
        if names and len(names) != len(tensors):
            raise ValueError(
                "params mixes (name, tensor) pairs and bare tensors; give names to all or none"
            )
        for i, p in enumerate(tensors):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"optimizer can only optimize Tensors, but params[{i}] is a "
                    f"{type(p).__module__}.{type(p).__name__}"
                )
            if not p.is_leaf:
                raise ValueError(
                    f"can't optimize a non-leaf Tensor: params[{i}] was computed by an "
                    "operation; pass the leaf tensors (e.g. model.parameters())"
                )
        group["params"] = tensors
        if names:
            group["param_names"] = names

        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._check_options(group)

        if len({id(p) for p in tensors}) != len(tensors):
            raise ValueError("a parameter group holds the same parameter more than once")
        for other in self.param_groups:
            if ("param_names" in other) != ("param_names" in group):
                raise ValueError(
                    "all param groups must be either with names or without names"
                )
            if {id(p) for p in other["params"]} & {id(p) for p in tensors}:
                raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    # ------------------------------------------------------------ the update
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter: to None (default) or to zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    def step(self, closure: Callable[[], Any] | None = None):
        """Update every parameter that has a gradient; parameters whose ``grad`` is None
        are skipped. ``closure`` (optional) re-evaluates the model and returns the loss,
        which ``step`` returns.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    self._update(p.array, p.grad.array, self.state[p], group)
                    p._bump_version()  # an in-place change: a graph that saved p sees it
        self._opt_called = True
        return loss

    def _update(self, param, grad, state: dict[str, Any], group: dict[str, Any]) -> None:
        """Update one parameter in place.

        ``param`` and ``grad`` are arrays of the same shape (NumPy or CuPy), ``state``
        is this parameter's state dict (empty before its first update), ``group`` its
        parameter group (the options). Subclasses implement the update formula here.
        """
        raise NotImplementedError

    # ------------------------------------------------------------ saving and loading
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state, in PyTorch's layout::

            {"state": {0: {"step": 3.0, "exp_avg": ndarray, ...}, 1: {...}},
             "param_groups": [{"lr": 0.01, ..., "params": [0, 1]}, ...]}

        Parameters are numbered in order across the groups. Arrays are NumPy copies
        (also for parameters on the GPU), the rest are Python numbers, tuples, None.
        Unlike PyTorch, nothing aliases the live state: later steps don't change it.
        """
        index: dict[int, int] = {}
        param_groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            param_groups.append(packed)
        state = {}
        for p, s in self.state.items():
            if s and id(p) in index:
                state[index[id(p)]] = {k: _export(v) for k, v in s.items()}
        return {"state": state, "param_groups": param_groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state from :meth:`state_dict` (or from ``torch.optim`` of the same
        class: tensors are converted). The parameters must be grouped the same way.

        State arrays are copied to each parameter's device and, when floating point,
        cast to its dtype; ``"step"`` becomes a Python float. Call this after creating
        any learning-rate scheduler, which would otherwise overwrite the loaded ``lr``.
        """
        groups = self.param_groups
        saved_groups = state_dict["param_groups"]
        if len(groups) != len(saved_groups):
            raise ValueError(
                f"state_dict has {len(saved_groups)} parameter groups, the optimizer has "
                f"{len(groups)}"
            )
        for i, (g, s) in enumerate(zip(groups, saved_groups, strict=True)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(
                    f"state_dict's parameter group {i} has {len(s['params'])} parameters, "
                    f"the optimizer's has {len(g['params'])}"
                )
        id_map = {}
        for g, s in zip(groups, saved_groups, strict=True):
            for p, key in zip(g["params"], s["params"], strict=True):
                id_map[int(key)] = p

        state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for key, values in state_dict["state"].items():
            key = int(key)  # JSON turns the integer keys into strings
            if key not in id_map:
                raise ValueError(f"state_dict has state for parameter {key}, which no group holds")
            p = id_map[key]
            state[p] = {k: _import(k, v, p.array) for k, v in values.items()}

        new_groups = []
        for g, s in zip(groups, saved_groups, strict=True):
            new = {}
            for k, v in s.items():
                if k == "params":
                    continue
                v = copy.deepcopy(v)
                if isinstance(v, list) and k != "param_names":
                    v = tuple(v)  # JSON turns tuples (betas) into lists
                new[k] = v
            new["params"] = g["params"]
            if "param_names" in g and "param_names" not in new:
                new["param_names"] = g["param_names"]
            new_groups.append(new)
        self.state = state
        self.param_groups = new_groups

    def __repr__(self) -> str:
        lines = [self.__class__.__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key not in ("params", "param_names"):
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


# ---------------------------------------------------------------- helpers
def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _export(value):
    """A state value as saved in a state dict: arrays become NumPy copies."""
    if is_array(value):
        return np.array(to_device(value, "cpu"), copy=True)
    return copy.deepcopy(value)


def _import(key: str, value, like):
    """A saved state value back on the device (and floating dtype) of ``like``."""
    if key == "step":
        return float(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    arr = to_device(value, "cpu") if is_array(value) else np.asarray(value)
    if arr.dtype.kind == "f":
        arr = arr.astype(like.dtype)
    xp = array_module(like)
    return arr.copy() if xp is np else xp.asarray(arr)


def lerp_(start, end, weight: float):
    """``start += weight * (end - start)`` in place, computed the way PyTorch's ``lerp_`` is.

    PyTorch uses ``start + weight * (end - start)`` for ``|weight| < 0.5`` and
    ``end - (end - start) * (1 - weight)`` otherwise, so that ``weight=1`` gives ``end``
    exactly. The moving averages of Adam and RMSprop are lerps toward the gradient:
    ``m = beta * m + (1 - beta) * g`` is ``lerp_(m, g, 1 - beta)``.
    """
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1.0 - weight)
    return start
