"""Adam and AdamW: gradient steps scaled by running estimates of the gradient's moments.

For each parameter theta with gradient g, at step t = 1, 2, ... (``torch.optim.Adam``)::

    g = -g                                  if maximize
    theta = theta * (1 - lr * weight_decay)  if decoupled (AdamW)
    g = g + weight_decay * theta             otherwise, if weight_decay != 0 (Adam's L2)
    m = beta1 * m + (1 - beta1) * g          first moment (a moving average of g)
    v = beta2 * v + (1 - beta2) * g * g      second moment (a moving average of g^2)
    v_max = max(v_max, v)                    if amsgrad; then v_max replaces v below
    m_hat = m / (1 - beta1^t)                bias corrections: m and v start at 0
    v_hat = v / (1 - beta2^t)
    theta = theta - lr * m_hat / (sqrt(v_hat) + eps)

The last line is computed as PyTorch does, so that results agree to rounding:
``denom = sqrt(v) / sqrt(1 - beta2^t) + eps`` and
``theta -= (lr / (1 - beta1^t)) * m / denom``.
"""

from __future__ import annotations

from typing import Any

from minicnn.backend import array_module
from minicnn.optim.optimizer import Optimizer, ParamsT, _is_number, lerp_


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), with optional AMSGrad and decoupled weight decay.

    Args:
        params: the tensors to optimize, or parameter groups (dicts).
        lr: learning rate.
        betas: (beta1, beta2), the decay rates of the first and second moment averages.
        eps: added to the denominator for numerical stability.
        weight_decay: L2 penalty (added to the gradient, or decoupled: see below).
        amsgrad: use the maximum of the second moments seen so far (AMSGrad).
        maximize: maximize the objective instead of minimizing it.
        decoupled_weight_decay: shrink the weights directly, as AdamW does.

    State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq`` (and ``max_exp_avg_sq``).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        self._check_options(defaults)
        defaults["betas"] = tuple(float(b) for b in betas)
        super().__init__(params, defaults)

    def _check_options(self, group: dict[str, Any]) -> None:
        super()._check_options(group)
        for name in ("eps", "weight_decay"):
            if not _is_number(group[name]):
                raise TypeError(f"{name} must be a number, got {type(group[name]).__name__}")
        if not group["eps"] >= 0.0:
            raise ValueError(f"Invalid epsilon value: eps={group['eps']}, expected eps >= 0")
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            if not _is_number(beta):
                raise TypeError(f"betas[{i}] must be a number, got {type(beta).__name__}")
            if not 0.0 <= beta < 1.0:
                raise ValueError(
                    f"Invalid beta parameter at index {i}: betas[{i}]={beta}, expected "
                    f"0 <= betas[{i}] < 1"
                )
        if not group["weight_decay"] >= 0.0:
            raise ValueError(
                f"Invalid weight_decay value: weight_decay={group['weight_decay']}, expected >= 0"
            )

    def _update(self, param, grad, state: dict[str, Any], group: dict[str, Any]) -> None:
        """One Adam step for one parameter (see the module docstring for the formulas)."""
        xp = array_module(param)
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        if not state:
            state["step"] = 0.0
            state["exp_avg"] = xp.zeros_like(param)
            state["exp_avg_sq"] = xp.zeros_like(param)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(param)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        state["step"] += 1
        step = state["step"]

        if group["maximize"]:
            grad = -grad
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                param *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * param

        lerp_(exp_avg, grad, 1 - beta1)  # m = beta1 * m + (1 - beta1) * g
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad

        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        step_size = lr / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5

        if group["amsgrad"]:
            max_exp_avg_sq = state["max_exp_avg_sq"]
            xp.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
            denom = xp.sqrt(max_exp_avg_sq) / bias_correction2_sqrt + eps
        else:
            denom = xp.sqrt(exp_avg_sq) / bias_correction2_sqrt + eps
        param -= step_size * exp_avg / denom


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay.

    The weights shrink by ``lr * weight_decay`` of themselves each step, outside the
    moment estimates, instead of an L2 term being added to the gradient. Same arguments
    as :class:`Adam`, but ``weight_decay`` defaults to 1e-2.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params, lr, betas, eps, weight_decay, amsgrad,
            maximize=maximize, decoupled_weight_decay=True,
        )

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
