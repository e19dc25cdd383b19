"""Feature maps of any named layer, caught with forward hooks.

``model.register_forward_hook(hook)`` calls ``hook(module, args, output)`` after the
module's forward (PyTorch's semantics); :func:`feature_maps` puts one such hook on each
layer asked for, runs the model once and hands back what the layers computed. The helpers
here (finding a layer by name, running the model up to a layer with its graph, without
touching the parameters' gradients) serve the other "inside a CNN" modules too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from minicnn.autograd import Tensor, enable_grad, no_grad, tensor
from minicnn.nn import Module
from minicnn.viz.figure import finish, new_figure, show

__all__ = ["feature_maps", "get_layer", "plot_feature_maps"]


def get_layer(model: Module, name: str) -> Module:
    """The sub-module of ``model`` called ``name`` (a ``named_modules`` name such as
    ``"features.3"`` or ``"layer2.0.conv1"``). Raises ValueError naming the known layers."""
    modules = dict(model.named_modules())
    if not isinstance(name, str) or name not in modules:
        known = [n for n in modules if n]
        shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
        raise ValueError(f"layer {name!r} is not a layer of {type(model).__name__}; "
                         f"expected one of its named_modules(): {shown}")
    return modules[name]


def as_input(x) -> Tensor:
    """Images ``(N, C, H, W)`` (array or Tensor) as a float32 Tensor on its own, detached."""
    array = x.numpy() if isinstance(x, Tensor) else np.asarray(x)
    if array.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {array.shape}")
    return tensor(np.ascontiguousarray(array, dtype=np.float32))


@contextmanager
def inspecting(model: Module) -> Iterator[None]:
    """Evaluation mode, and no parameter takes part in the graph (so looking inside a model
    leaves its ``.grad`` untouched); both restored on exit."""
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    was_training = model.training
    model.eval()
    for p in params:
        p.requires_grad = False
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad = flag
        model.train(was_training)


def _output(value) -> Tensor:
    if isinstance(value, tuple | list):
        value = value[0]
    if not isinstance(value, Tensor):
        raise TypeError(f"the layer returned {type(value).__name__}, expected a Tensor")
    return value


class _Reached(Exception):
    """Raised by a hook to stop the forward pass once the wanted layer has run."""


def run_with_outputs(model: Module, x: Tensor, layers: Sequence[str],
                     stop: bool = False) -> tuple[Tensor | None, dict[str, Tensor]]:
    """Run ``model(x)`` with forward hooks on ``layers``: ``(model output, {name: layer
    output})``. With ``stop``, the pass ends as soon as every layer has run (the model
    output is then None). The graph is recorded as far as ``x`` requires grad."""
    caught: dict[str, Tensor] = {}
    handles = []

    def hook_for(name):
        def hook(module, args, output):
            caught[name] = _output(output)
            if stop and len(caught) == len(layers):
                raise _Reached
        return hook

    for name in layers:
        handles.append(get_layer(model, name).register_forward_hook(hook_for(name)))
    out = None
    try:
        out = model(x)
    except _Reached:
        pass
    finally:
        for handle in handles:
            handle.remove()
    missing = [n for n in layers if n not in caught]
    if missing:
        raise ValueError(f"layer(s) {missing} never ran in {type(model).__name__}'s forward")
    return out, caught


def feature_maps(model: Module, images, layers: str | Sequence[str]) -> dict[str, np.ndarray]:
    """What the named layers output for ``images`` ``(N, C, H, W)``: ``{name: array}``,
    e.g. ``(N, C_l, H_l, W_l)`` for a convolution, caught with forward hooks in evaluation
    mode, without gradients. ``layers``: one ``named_modules`` name or a list of them."""
    names = [layers] if isinstance(layers, str) else list(layers)
    x = as_input(images)
    with inspecting(model), no_grad():
        _, caught = run_with_outputs(model, x, names, stop=True)
    return {name: caught[name].numpy().copy() for name in names}


def plot_feature_maps(maps: np.ndarray, path: str | os.PathLike | None = None,
                      image: np.ndarray | None = None, max_channels: int = 32,
                      title: str | None = None):
    """A grid of one image's feature maps ``(C, H, W)`` (the first ``max_channels``), each
    stretched to its own range (bright = strong), optionally with the input ``image``
    ``(C_in, H_in, W_in)`` first. Returns the Figure; saves it when ``path`` is given."""
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"maps must be one image's feature maps (C, H, W), got {maps.shape}")
    n = min(len(maps), max_channels) + (image is not None)
    cols = min(8, n)
    rows = -(-n // cols)
    fig = new_figure(1.3 * cols, 1.3 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes:
        ax.axis("off")
    k = 0
    if image is not None:
        show(axes[0], image, "input")
        k = 1
    for c in range(n - k):
        m = maps[c].astype(np.float32)
        m = (m - m.min()) / max(float(m.max() - m.min()), 1e-12)
        show(axes[k + c], m, f"{c}", cmap="viridis", vmin=0, vmax=1)
    fig.suptitle(title or f"{len(maps)} feature maps of {maps.shape[1]}x{maps.shape[2]}",
                 fontsize=10)
    fig.tight_layout()
    return finish(fig, path)


def with_grad(model: Module, x: Tensor, layers: Sequence[str], stop: bool):
    """``run_with_outputs`` with the graph recorded from ``x`` (which gets requires_grad)."""
    x.requires_grad = True
    with enable_grad():
        return run_with_outputs(model, x, layers, stop=stop)
