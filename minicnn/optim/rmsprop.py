"""RMSprop: divide the gradient by a running root-mean-square of recent gradients.

For each parameter theta with gradient g (``torch.optim.RMSprop``)::

    g = -g                                   if maximize
    g = g + weight_decay * theta             if weight_decay != 0
    v = alpha * v + (1 - alpha) * g * g      moving average of g^2
    if centered:                             subtract the squared mean: a variance estimate
        g_avg = alpha * g_avg + (1 - alpha) * g
        avg = sqrt(v - g_avg * g_avg) + eps
    else:
        avg = sqrt(v) + eps
    if momentum > 0:
        b = momentum * b + g / avg
        theta = theta - lr * b
    else:
        theta = theta - lr * g / avg
"""

from __future__ import annotations

from typing import Any

from minicnn.backend import array_module
from minicnn.optim.optimizer import Optimizer, ParamsT, _is_number, lerp_


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e), with optional momentum and centering.

    Args:
        params: the tensors to optimize, or parameter groups (dicts).
        lr: learning rate.
        alpha: smoothing constant of the squared-gradient average.
        eps: added to the denominator for numerical stability.
        weight_decay: L2 penalty added to the gradient.
        momentum: momentum factor (0 = none).
        centered: normalize by an estimate of the gradient's variance instead of its
            second moment.
        maximize: maximize the objective instead of minimizing it.

    State per parameter: ``step``, ``square_avg`` (and ``momentum_buffer``, ``grad_avg``).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "maximize": maximize,
        }
        self._check_options(defaults)
        super().__init__(params, defaults)

    def _check_options(self, group: dict[str, Any]) -> None:
        super()._check_options(group)
        for name in ("eps", "momentum", "weight_decay", "alpha"):
            value = group[name]
            if not _is_number(value):
                raise TypeError(f"{name} must be a number, got {type(value).__name__}")
            if not value >= 0.0:
                raise ValueError(f"Invalid {name} value: {name}={value}, expected {name} >= 0")

    def _update(self, param, grad, state: dict[str, Any], group: dict[str, Any]) -> None:
        """One RMSprop step for one parameter (see the module docstring for the formulas)."""
        xp = array_module(param)
        lr, alpha, eps, momentum = group["lr"], group["alpha"], group["eps"], group["momentum"]
        if not state:
            state["step"] = 0.0
            state["square_avg"] = xp.zeros_like(param)
        # created when first needed: a scheduler (OneCycleLR) may switch momentum on later
        if momentum > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = xp.zeros_like(param)
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = xp.zeros_like(param)
        state["step"] += 1

        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param

        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad

        if group["centered"]:
            grad_avg = lerp_(state["grad_avg"], grad, 1 - alpha)
            avg = xp.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = xp.sqrt(square_avg)
        avg += eps

        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += grad / avg
            param -= lr * buf
        else:
            param -= lr * grad / avg
