"""Stochastic gradient descent, with momentum, Nesterov momentum and weight decay.

For each parameter theta with gradient g (``torch.optim.SGD``'s algorithm)::

    g = -g                              if maximize
    g = g + weight_decay * theta        if weight_decay != 0   (L2 penalty)
    if momentum != 0:
        b = g                           on the first step
        b = momentum * b + (1 - dampening) * g    afterwards
        g = g + momentum * b            if nesterov
        g = b                           otherwise
    theta = theta - lr * g
"""

from __future__ import annotations

from typing import Any

from minicnn.optim.optimizer import Optimizer, ParamsT, _is_number


class SGD(Optimizer):
    """Stochastic gradient descent (optionally with momentum).

    Args:
        params: the tensors to optimize, or parameter groups (dicts).
        lr: learning rate.
        momentum: momentum factor (0 = plain SGD).
        dampening: dampening of the gradient's contribution to the momentum buffer.
        weight_decay: L2 penalty added to the gradient.
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening = 0).
        maximize: maximize the objective instead of minimizing it.

    State per parameter (only with momentum): ``momentum_buffer``.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
        }
        self._check_options(defaults)
        super().__init__(params, defaults)

    def _check_options(self, group: dict[str, Any]) -> None:
        super()._check_options(group)
        for name in ("momentum", "dampening", "weight_decay"):
            if not _is_number(group[name]):
                raise TypeError(f"{name} must be a number, got {type(group[name]).__name__}")
        if not group["momentum"] >= 0.0:
            raise ValueError(f"Invalid momentum value: momentum={group['momentum']}, expected >= 0")
        if not group["weight_decay"] >= 0.0:
            raise ValueError(
                f"Invalid weight_decay value: weight_decay={group['weight_decay']}, expected >= 0"
            )
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                "nesterov=True requires a momentum > 0 and dampening = 0, got "
                f"momentum={group['momentum']} and dampening={group['dampening']}"
            )

    def _update(self, param, grad, state: dict[str, Any], group: dict[str, Any]) -> None:
        """theta <- theta - lr * (the gradient, possibly with weight decay and momentum)."""
        momentum, dampening = group["momentum"], group["dampening"]
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = grad.copy()
                state["momentum_buffer"] = buf
            else:
                buf *= momentum
                buf += (1 - dampening) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        param -= group["lr"] * grad
