"""``gradcheck``: compare autograd's gradients with central finite differences in float64.

For each input ``x`` that requires grad and each element ``i``::

    numeric[i] = (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)          # error O(eps^2)

where ``f`` is the sum of every output weighted by a fixed random ``v`` (so one backward
gives ``v . J``, the quantity compared). Central differences have O(eps^2) truncation
error against O(eps) for one-sided ones: that is why they are used (lesson 02).

``mode="directional"`` checks one random direction ``d`` over all inputs at once, as
Chainer's ``check_backward`` does: ``(f(x + eps d) - f(x - eps d)) / 2 eps`` against
``grad . d`` -- two evaluations however large the inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from minicnn.autograd.grad_mode import enable_grad, no_grad
from minicnn.autograd.tensor import Tensor
from minicnn.backend import to_device


class GradcheckError(AssertionError):
    """Raised when analytic and numeric gradients disagree; the message says where."""


def _outputs(fn, inputs) -> list[Tensor]:
    out = fn(*inputs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    return [o for o in outs if isinstance(o, Tensor) and o.dtype.kind == "f"]


def _weighted_sum(outs, weights) -> float:
    return float(sum(float((to_device(o.array, "cpu").astype(np.float64) * w).sum())
                     for o, w in zip(outs, weights, strict=True)))


def gradcheck(
    fn: Callable,
    inputs: Sequence,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    mode: str = "full",
    seed: int = 0,
) -> bool:
    """Check the gradients ``fn`` computes for every input that requires grad.

    Args:
        fn: takes ``*inputs`` and returns a Tensor (or a tuple of Tensors).
        inputs: Tensors (the ones with ``requires_grad=True`` are checked) and other values.
            Checked tensors must be float64: float32 rounding swamps the differences.
        eps: finite-difference step.
        atol, rtol: the check passes where ``|analytic - numeric| <= atol + rtol * |numeric|``.
        mode: "full" checks every element of every input; "directional" one random direction.
        seed: seed of the output weights and the direction.

    Returns True, or raises ``GradcheckError`` naming the input, the element, the analytic
    and the numeric value.
    """
    if mode not in ("full", "directional"):
        raise ValueError(f"gradcheck: mode must be 'full' or 'directional', got {mode!r}")
    inputs = list(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(
                f"gradcheck: input {i} has dtype {inputs[i].dtype}; use float64 inputs "
                "(float32 rounding error is larger than the differences being measured)"
            )
    rng = np.random.default_rng(seed)
    saved_grads = {i: inputs[i].grad for i in checked}
    try:
        analytic, weights = _analytic(fn, inputs, checked, rng)
    finally:
        for i in checked:  # leave the inputs' .grad as they were
            inputs[i].grad = saved_grads[i]

    def f() -> float:
        with no_grad():  # the numeric side needs values only, no graph
            return _weighted_sum(_outputs(fn, inputs), weights)

    if mode == "directional":
        return _check_direction(f, inputs, checked, analytic, eps, atol, rtol, rng)
    for i in checked:
        data = inputs[i].array  # perturbed in place, element by element: any memory layout
        for element in np.ndindex(*data.shape):
            old = data[element].item()
            data[element] = old + eps
            plus = f()
            data[element] = old - eps
            minus = f()
            data[element] = old
            numeric = (plus - minus) / (2 * eps)
            got = analytic[i][element]
            if not abs(got - numeric) <= atol + rtol * abs(numeric):
                raise GradcheckError(
                    f"gradcheck failed for input {i} (shape {tuple(data.shape)}) at element "
                    f"{tuple(int(e) for e in element)}: analytic {got:.8g}, numeric {numeric:.8g}, "
                    f"difference {abs(got - numeric):.3g} > atol {atol} + rtol {rtol} * |numeric|"
                )
    return True


def _analytic(fn, inputs, checked, rng) -> tuple[dict, list]:
    """One backward of ``sum(output * random weights)``: its gradient for each checked input."""
    with enable_grad():
        for i in checked:
            inputs[i].grad = None
            if not inputs[i].is_leaf:
                inputs[i].retain_grad()
        outs = _outputs(fn, inputs)
        if not outs:
            raise ValueError("gradcheck: fn returned no floating-point tensor")
        weights = [rng.standard_normal(o.shape) for o in outs]
        total = None
        for o, w in zip(outs, weights, strict=True):
            if o.requires_grad:
                term = (o * Tensor(to_device(w.astype(o.dtype), o.device))).sum()
                total = term if total is None else total + term
        if total is not None:
            total.backward()
    analytic = {
        i: np.zeros(inputs[i].shape) if inputs[i].grad is None
        else to_device(inputs[i].grad.array, "cpu").astype(np.float64)
        for i in checked
    }
    return analytic, weights


def _check_direction(f, inputs, checked, analytic, eps, atol, rtol, rng) -> bool:
    directions = {i: rng.standard_normal(inputs[i].shape) for i in checked}
    originals = {i: inputs[i].array.copy() for i in checked}

    def shifted(sign: float) -> float:
        for i in checked:
            step = to_device(sign * eps * directions[i], inputs[i].device)
            inputs[i].array[...] = originals[i] + step
        return f()

    plus, minus = shifted(1.0), shifted(-1.0)
    for i in checked:
        inputs[i].array[...] = originals[i]
    numeric = (plus - minus) / (2 * eps)
    got = float(sum((analytic[i] * directions[i]).sum() for i in checked))
    if not abs(got - numeric) <= atol + rtol * abs(numeric):
        raise GradcheckError(
            f"gradcheck (directional) failed for inputs {checked}: analytic directional "
            f"derivative {got:.8g}, numeric {numeric:.8g}, difference {abs(got - numeric):.3g}"
        )
    return True
