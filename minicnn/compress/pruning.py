"""Magnitude pruning: remove the weights of smallest absolute value (Han et al. 2015,
"Learning both Weights and Connections for Efficient Neural Networks").

The weights of every ``Conv2d`` and ``Linear`` layer can be pruned; biases and batch-norm
parameters are kept (they are few). Two ways to choose which weights go:

* **per layer** (``scope="layer"``): each layer loses the fraction ``amount`` of its own
  weights, the smallest ``|w|`` in that layer;
* **global** (``scope="global"``): one threshold for the whole network; the fraction
  ``amount`` of all prunable weights goes, so layers with many small weights (the big
  fully connected ones) lose more than the others.

Exactly ``round(amount * n)`` weights are removed (``n``: the weights considered), as
PyTorch's ``torch.nn.utils.prune.l1_unstructured`` / ``global_unstructured`` do.

**The mask during fine-tuning.** A pruned network is fine-tuned to win its accuracy back,
and the pruned weights must stay exactly zero. :func:`prune_` does what
``torch.nn.utils.prune`` does (the same names, so a PyTorch user recognises the state
dict): the layer's parameter becomes ``weight_orig``, the 0/1 mask is the buffer
``weight_mask``, and a forward pre-hook recomputes ``weight = weight_orig * weight_mask``
before every forward. Whatever an optimizer step does to ``weight_orig``, the weight the
layer uses is zero where the mask is, and the gradient that reaches ``weight_orig`` there
is zero too (the product's backward multiplies it by the mask). :func:`remove_pruning`
makes the pruning permanent: ``weight`` is a plain parameter again, with its zeros.

    masks = prune_(model, 0.9)                 # 90% of the conv and linear weights -> 0
    ... fine-tune model (its parameters() now hold weight_orig) ...
    remove_pruning(model)                      # weight = weight_orig * weight_mask
    sparsity(model)                            # {"features.0.weight": 0.61, ...}
"""

from __future__ import annotations

import numpy as np

from minicnn.autograd.grad_mode import no_grad
from minicnn.autograd.tensor import Tensor
from minicnn.nn.modules.conv import Conv2d
from minicnn.nn.modules.linear import Linear
from minicnn.nn.modules.module import Module
from minicnn.nn.modules.parameter import Parameter

__all__ = ["PRUNABLE", "magnitude_masks", "prunable_layers", "prune_", "remove_pruning",
           "sparsity"]

PRUNABLE = (Conv2d, Linear)  # the layers whose weights are pruned and shared
SCOPES = ("global", "layer")


def prunable_layers(model: Module) -> dict[str, Module]:
    """``{"name.weight": layer}`` for every ``Conv2d`` and ``Linear`` of ``model``."""
    return {f"{name}.weight" if name else "weight": m for name, m in model.named_modules()
            if isinstance(m, PRUNABLE)}


def weight_of(layer: Module) -> np.ndarray:
    """The weight the layer computes with, as a NumPy array (masked if pruned)."""
    if hasattr(layer, "weight_mask"):
        return layer.weight_orig.detach().numpy() * layer.weight_mask.numpy()
    return layer.weight.detach().numpy()


def _smallest(values: np.ndarray, count: int) -> np.ndarray:
    """A boolean array marking the ``count`` entries of ``values`` of smallest magnitude."""
    drop = np.zeros(values.size, dtype=bool)
    if count > 0:
        drop[np.argpartition(np.abs(values).ravel(), count - 1)[:count]] = True
    return drop.reshape(values.shape)


def _check_amount(amount: float) -> None:
    if isinstance(amount, bool) or not isinstance(amount, (int, float, np.floating)) \
            or not 0 <= amount < 1:
        raise ValueError(f"prune: amount must be a fraction in [0, 1) of the weights to remove, "
                         f"got {amount!r}")


def magnitude_masks(model: Module, amount: float, scope: str = "global") -> dict[str, np.ndarray]:
    """``{"name.weight": mask}``: 1.0 where a weight is kept, 0.0 where it is pruned.

    ``amount`` in [0, 1): the fraction of the weights to remove, per layer
    (``scope="layer"``) or over all prunable weights at once (``scope="global"``).
    Weights already pruned are zero, so they are the first to go again.
    """
    _check_amount(amount)
    if scope not in SCOPES:
        raise ValueError(f"prune: scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    weights = {name: weight_of(layer) for name, layer in prunable_layers(model).items()}
    if not weights:
        raise ValueError(f"prune: {type(model).__name__} has no Conv2d or Linear layer to prune")
    if scope == "layer":
        drops = {n: _smallest(w, round(amount * w.size)) for n, w in weights.items()}
    else:  # one threshold: prune the smallest of all weights together, then split by layer
        flat = np.concatenate([w.ravel() for w in weights.values()])
        drop = _smallest(flat, round(amount * flat.size))
        ends = np.cumsum([w.size for w in weights.values()])
        drops = {n: part.reshape(w.shape) for (n, w), part
                 in zip(weights.items(), np.split(drop, ends[:-1]), strict=True)}
    return {n: (~d).astype(weights[n].dtype) for n, d in drops.items()}


def _masked_weight(layer: Module, args) -> None:
    """The forward pre-hook of a pruned layer: ``weight = weight_orig * weight_mask``."""
    layer.weight = layer.weight_orig * layer.weight_mask


def prune_(model: Module, amount: float, scope: str = "global") -> dict[str, np.ndarray]:
    """Prune ``model`` in place by weight magnitude (see the module docstring); returns the
    masks of :func:`magnitude_masks` (``{"name.weight": (same shape as the weight)}``).

    Each ``Conv2d``/``Linear`` layer gets the parameter ``weight_orig`` (its weight with
    the pruned entries set to zero), the buffer ``weight_mask`` and a forward pre-hook
    that sets ``weight = weight_orig * weight_mask``. Pruning a pruned model again
    multiplies the masks. Build the optimizer for fine-tuning after this call: the
    parameter it must update is ``weight_orig``.
    """
    masks = magnitude_masks(model, amount, scope)
    for name, layer in prunable_layers(model).items():
        mask = masks[name]
        if hasattr(layer, "weight_mask"):  # pruned before: keep the old zeros too
            mask = mask * layer.weight_mask.numpy()
            with no_grad():
                layer.weight_mask.copy_(mask)
        else:
            weight = layer.weight
            del layer.weight  # the parameter moves to weight_orig
            layer.weight_orig = Parameter(weight)
            layer.register_buffer("weight_mask", Tensor(mask).to(weight.device))
            layer._prune_hook = layer.register_forward_pre_hook(_masked_weight)
        with no_grad():  # the pruned entries of the parameter itself are zero too
            layer.weight_orig.copy_(weight_of(layer))
        _masked_weight(layer, ())
        masks[name] = mask
    return masks


def remove_pruning(model: Module) -> Module:
    """Make the pruning of ``model`` permanent (``torch.nn.utils.prune.remove``): each pruned
    layer's ``weight`` becomes a plain parameter, ``weight_orig * weight_mask``; the mask,
    ``weight_orig`` and the hook go. Layers that were not pruned are left alone."""
    for layer in prunable_layers(model).values():
        if not hasattr(layer, "weight_mask"):
            continue
        weight = weight_of(layer)
        layer._prune_hook.remove()
        device = layer.weight_orig.device
        del layer._prune_hook, layer.weight_orig, layer.weight_mask
        if "weight" in layer.__dict__:
            del layer.__dict__["weight"]  # the plain attribute the hook set
        layer.weight = Parameter(Tensor(weight).to(device))
    return model


def sparsity(model: Module) -> dict[str, float]:
    """``{"name.weight": fraction of zeros}`` for every prunable layer, and ``"total"``:
    the fraction of zeros over all of them."""
    weights = {name: weight_of(layer) for name, layer in prunable_layers(model).items()}
    zeros = {name: int((w == 0).sum()) for name, w in weights.items()}
    result = {name: zeros[name] / max(w.size, 1) for name, w in weights.items()}
    result["total"] = sum(zeros.values()) / max(sum(w.size for w in weights.values()), 1)
    return result
