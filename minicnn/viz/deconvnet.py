"""Zeiler & Fergus's deconvnet projection, and guided backpropagation beside it.

Zeiler & Fergus (2014), "Visualizing and Understanding Convolutional Networks", Section 2.1:
to see what one activation in a layer responds to, set every other activation of that
layer to zero and run the layer's feature maps back down to the pixels through a
"deconvnet" attached to each layer, which undoes the layer in reverse order:

* **unpooling**: the max pool recorded where each maximum came from (the *switches*); the
  signal goes back to those positions, zeros elsewhere;
* **rectification**: the signal goes through a ReLU (the reconstruction is kept positive,
  whatever the forward pass's sign was);
* **filtering**: the transposed filters of the convolution (its weights flipped), i.e. a
  transposed convolution with the same weights, no bias.

The first and third steps are exactly what backpropagation does through a max pool and a
convolution (the gradient of a max pool puts the gradient at the switches; the gradient
of a convolution with respect to its input is the transposed convolution). Only the ReLU
differs: backpropagation keeps the gradient where the *forward input* was positive, the
deconvnet where the *backward signal* is positive. Guided backpropagation (Springenberg et
al. 2015, "Striving for Simplicity") keeps it where both are positive. So the three are one
backward pass with a different rule at each ReLU; here the forward pass records the graph
and, before the backward pass, every ReLU node of it gets the chosen rule. Other layers
(batch norm, LRN, additions) pass the signal back through their gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from minicnn.autograd import Tensor, no_grad
from minicnn.autograd.ops.elementwise import ReLU
from minicnn.backend import array_module
from minicnn.nn import Module
from minicnn.viz.features import as_input, inspecting, run_with_outputs, with_grad
from minicnn.viz.graph import graph_functions

__all__ = ["Strongest", "deconvnet_projection", "guided_backprop", "project_activation",
           "top_activations"]


class _DeconvReLU(ReLU):
    """A ReLU whose backward is Zeiler & Fergus's rectification: relu(signal)."""

    @staticmethod
    def backward(ctx, grad):
        return array_module(grad).maximum(grad, 0)


class _GuidedReLU(ReLU):
    """A ReLU whose backward is guided backpropagation's: relu(signal) where the input > 0."""

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors  # ReLU keeps its output: > 0 exactly where the input is
        return array_module(grad).maximum(grad, 0) * (out > 0)


RULES = {"deconvnet": _DeconvReLU, "guided": _GuidedReLU, "gradient": ReLU}


def _seed(out: Tensor, channel) -> tuple[np.ndarray, np.ndarray]:
    """The backward signal that keeps one activation per image, and where it is.

    A map ``(N, C, H, W)``: channel ``channel``'s strongest position in each image, with
    its activation as the value (Zeiler & Fergus pass the activation itself). A vector
    ``(N, K)`` (class scores, fully connected units): unit ``channel`` (one per image when a
    sequence), with 1 (the gradient of that score)."""
    a = out.detach().numpy()
    n = a.shape[0]
    units = np.broadcast_to(np.asarray(channel, dtype=np.int64), (n,))
    if np.any(units < 0) or np.any(units >= a.shape[1]):
        raise ValueError(f"channel {channel} out of range for a layer output of shape "
                         f"{a.shape} (channels on axis 1)")
    seed = np.zeros_like(a)
    rows = np.arange(n)
    if a.ndim == 4:
        flat = a[rows, units].reshape(n, -1).argmax(axis=1)
        i, j = np.unravel_index(flat, a.shape[2:])
        seed[rows, units, i, j] = a[rows, units, i, j]
        return seed, np.stack([i, j], axis=1)
    if a.ndim == 2:
        seed[rows, units] = 1.0
        return seed, np.zeros((n, 0), dtype=np.int64)
    raise ValueError(f"the layer output has shape {a.shape}; expected (N, C, H, W) or (N, K)")


def project_activation(model: Module, images, layer: str | None, channel: int | Sequence[int],
                       rule: str = "deconvnet") -> np.ndarray:
    """Project one activation per image back to pixel space: ``images (N, C, H, W) ->
    (N, C, H, W)``.

    ``layer``: a ``named_modules`` name (its output is the feature maps), or None for the
    model's output (class scores). ``channel``: the channel (a map's strongest position is
    projected) or unit (one per image when a sequence). ``rule`` at every ReLU:
    ``"deconvnet"`` (Zeiler & Fergus), ``"guided"`` (guided backpropagation) or
    ``"gradient"`` (plain backpropagation: the saliency). Runs in evaluation mode; the
    parameters' ``.grad`` are left untouched."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {sorted(RULES)}, got {rule!r}")
    x = as_input(images)
    with inspecting(model):
        scores, caught = with_grad(model, x, [] if layer is None else [layer],
                                   stop=layer is not None)
        out = caught[layer] if layer is not None else (
            scores[0] if isinstance(scores, tuple | list) else scores)
        if out.grad_fn is None:
            raise ValueError(f"layer {layer!r}'s output does not depend on the input")
        for node in graph_functions(out):
            if issubclass(node.function, ReLU):
                node.function = RULES[rule]
        seed, _ = _seed(out, channel)
        out.backward(Tensor(seed))
    return x.grad.numpy()


def deconvnet_projection(model: Module, images, layer: str, channel: int) -> np.ndarray:
    """Zeiler & Fergus's deconvnet: each image's strongest activation of ``channel`` in
    ``layer``, alone, projected to the pixels through unpooling (switches), rectification
    and transposed filters. ``images (N, C, H, W) -> (N, C, H, W)``. See the module
    docstring and :func:`project_activation`."""
    return project_activation(model, images, layer, channel, rule="deconvnet")


def guided_backprop(model: Module, images, layer: str | None = None,
                    channel: int | Sequence[int] | None = None) -> np.ndarray:
    """Guided backpropagation (Springenberg et al. 2015): like the deconvnet, but each ReLU
    passes the signal only where it is positive *and* the forward input was.
    ``images (N, C, H, W) -> (N, C, H, W)``. With ``layer`` None it explains a class score:
    ``channel`` is the class (one per image when a sequence; default the predicted one)."""
    if channel is None:
        if layer is not None:
            raise ValueError("guided_backprop: give the channel of the layer to project")
        x = as_input(images)
        with inspecting(model), no_grad():
            channel = model(x).numpy().argmax(axis=1)
    return project_activation(model, images, layer, channel, rule="guided")


class Strongest(NamedTuple):
    """The images where a channel responds most: indices into the images, the position
    ``(row, col)`` of the maximum in the layer's map and its value, strongest first."""

    indices: np.ndarray
    positions: np.ndarray
    values: np.ndarray


def top_activations(model: Module, images, layer: str, channel: int, k: int = 9,
                    batch_size: int = 64) -> Strongest:
    """The ``k`` images of ``images (N, C, H, W)`` where ``channel`` of ``layer`` has its
    largest activations (one per image: its maximum over the map), as Zeiler & Fergus pick
    the top 9 of the validation set for each feature map."""
    images = np.asarray(images.numpy() if isinstance(images, Tensor) else images)
    best, where = [], []
    with inspecting(model), no_grad():
        for start in range(0, len(images), batch_size):
            x = as_input(images[start:start + batch_size])
            _, caught = run_with_outputs(model, x, [layer], stop=True)
            a = caught[layer].numpy()
            if a.ndim != 4 or not 0 <= channel < a.shape[1]:
                raise ValueError(f"top_activations: layer {layer!r} outputs {a.shape}; "
                                 f"expected (N, C, H, W) with channel {channel} < C")
            maps = a[:, channel].reshape(len(a), -1)
            flat = maps.argmax(axis=1)
            best.append(maps[np.arange(len(a)), flat])
            where.append(np.stack(np.unravel_index(flat, a.shape[2:]), axis=1))
    values, positions = np.concatenate(best), np.concatenate(where)
    order = np.argsort(-values, kind="stable")[:k]
    return Strongest(order, positions[order], values[order])
