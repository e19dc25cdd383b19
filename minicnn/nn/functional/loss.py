"""Loss functions, named, shaped and reduced as in PyTorch.

Every loss takes ``reduction``: "none" (one loss per element), "mean" (their average;
for class-index targets with ``weight``, the weighted average, see :func:`nll_loss`) or
"sum". The deprecated ``size_average`` and ``reduce`` arguments are understood too.

* Classification: :func:`cross_entropy` = :func:`nll_loss` of ``log_softmax`` (with class
  indices or class probabilities as targets, and label smoothing).
* Regression: :func:`mse_loss`, :func:`l1_loss`, :func:`smooth_l1_loss`, :func:`huber_loss`.
* Binary: :func:`binary_cross_entropy` (on probabilities) and
  :func:`binary_cross_entropy_with_logits` (on logits: the stable one, use it).
* Segmentation: per pixel, :func:`binary_cross_entropy_with_logits` on ``(N, 1, H, W)`` for
  one class and :func:`cross_entropy` on ``(N, C, H, W)`` for ``C`` classes (averaged over
  every pixel), and :func:`dice_loss` (soft Dice per class, over the whole region).

Class weights, ``weight`` and ``pos_weight`` are constants: no gradient flows into them.
"""

from __future__ import annotations

import numpy as np

from minicnn.autograd import ops
from minicnn.autograd.function import Function
from minicnn.autograd.tensor import Tensor
from minicnn.backend import array_module, to_device
from minicnn.nn.functional.activation import stable_sigmoid, stable_softplus

_REDUCTIONS = ("none", "mean", "sum")


# ---------------------------------------------------------------- shared helpers


def _reduction(name: str, reduction: str, size_average=None, reduce=None) -> str:
    """The reduction to use, from ``reduction`` or PyTorch's legacy two flags."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "none" if not reduce else "mean" if size_average else "sum"
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    return reduction


def _reduce(loss, reduction: str):
    """Per-element ``loss`` reduced as asked (the mean of nothing is NaN, as in PyTorch)."""
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    if loss.size == 0:
        return array_module(loss).full((), np.nan, dtype=loss.dtype)
    return total / loss.size


def _spread(grad, like, reduction: str):
    """The gradient of a reduced loss, as the gradient of each element of ``like``."""
    return grad / max(like.size, 1) if reduction == "mean" else grad


def _as_tensor(x, like: Tensor, name: str, what: str) -> Tensor:
    """``x`` as a Tensor on ``like``'s device (a Python number or array is accepted)."""
    if not isinstance(x, Tensor):
        x = Tensor(to_device(np.asarray(x, dtype=like.dtype), like.device))
    if x.device != like.device:
        raise ValueError(f"{name}: {what} is on {x.device} but input is on {like.device}")
    return x


def _float_input(input, name: str) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
    if input.dtype.kind != "f":
        raise TypeError(f"{name}: input must be a floating-point tensor, got dtype {input.dtype}")


def _same_shape_target(input: Tensor, target, name: str) -> Tensor:
    """A float target of exactly the input's shape (converted to the input's dtype)."""
    _float_input(input, name)
    target = _as_tensor(target, input, name, "target")
    if target.shape != input.shape:
        raise ValueError(
            f"{name}: target shape {target.shape} must equal input shape {input.shape}"
        )
    if target.dtype != input.dtype:
        target = target.to(input.dtype)  # differentiable cast: a float target keeps its grad
    return target


def _constant(x, input: Tensor, name: str, what: str):
    """A constant tensor argument (weight) as a raw array in the input's dtype, or None."""
    if x is None:
        return None
    data = _as_tensor(x, input, name, what).array
    return data.astype(input.dtype, copy=False)


# ---------------------------------------------------------------- regression losses


class MSELoss(Function):
    """``(x - y)^2``; d/dx = ``2 (x - y)`` and d/dy = ``-2 (x - y)``."""

    @staticmethod
    def forward(ctx, input, target, reduction):
        diff = input - target
        ctx.save_for_backward(diff)
        ctx.reduction = reduction
        return _reduce(diff * diff, reduction)

    @staticmethod
    def backward(ctx, grad):
        (diff,) = ctx.saved_tensors
        g = _spread(grad, diff, ctx.reduction) * 2 * diff
        return g, -g


class L1Loss(Function):
    """``|x - y|``; d/dx = ``sign(x - y)`` (0 where they are equal, as in PyTorch)."""

    @staticmethod
    def forward(ctx, input, target, reduction):
        diff = input - target
        ctx.save_for_backward(diff)
        ctx.reduction = reduction
        return _reduce(array_module(diff).abs(diff), reduction)

    @staticmethod
    def backward(ctx, grad):
        (diff,) = ctx.saved_tensors
        g = _spread(grad, diff, ctx.reduction) * array_module(diff).sign(diff)
        return g, -g


class SmoothL1Loss(Function):
    """``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (``d = x - y``).

    d/dx = ``d / beta`` inside, ``sign(d)`` outside: the gradient of L1 with the kink rounded.
    """

    @staticmethod
    def forward(ctx, input, target, reduction, beta):
        xp = array_module(input, target)
        diff = input - target
        size = xp.abs(diff)
        ctx.save_for_backward(diff, size < beta)
        ctx.reduction, ctx.beta = reduction, beta
        loss = xp.where(size < beta, 0.5 * diff * diff / beta, size - 0.5 * beta)
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, grad):
        diff, inside = ctx.saved_tensors
        xp = array_module(diff)
        g = _spread(grad, diff, ctx.reduction) * xp.where(inside, diff / ctx.beta, xp.sign(diff))
        return g, -g


class HuberLoss(Function):
    """``0.5 d^2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)`` (= delta * smooth L1).

    d/dx = ``d`` inside, ``delta sign(d)`` outside.
    """

    @staticmethod
    def forward(ctx, input, target, reduction, delta):
        xp = array_module(input, target)
        diff = input - target
        size = xp.abs(diff)
        ctx.save_for_backward(diff, size < delta)
        ctx.reduction, ctx.delta = reduction, delta
        loss = xp.where(size < delta, 0.5 * diff * diff, delta * (size - 0.5 * delta))
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, grad):
        diff, inside = ctx.saved_tensors
        xp = array_module(diff)
        g = _spread(grad, diff, ctx.reduction) * xp.where(inside, diff, ctx.delta * xp.sign(diff))
        return g, -g


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean") -> Tensor:
    """Mean squared error ``(input - target)^2``. ``input, target: (*)``; "none" keeps ``(*)``."""
    reduction = _reduction("mse_loss", reduction, size_average, reduce)
    target = _same_shape_target(input, target, "mse_loss")
    return MSELoss.apply(input, target, reduction)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean") -> Tensor:
    """Mean absolute error ``|input - target|``. ``input, target: (*)``; "none" keeps ``(*)``."""
    reduction = _reduction("l1_loss", reduction, size_average, reduce)
    target = _same_shape_target(input, target, "l1_loss")
    return L1Loss.apply(input, target, reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """Quadratic for ``|input - target| < beta``, linear beyond (Fast R-CNN's box loss).

    ``input, target: (*)``; "none" keeps ``(*)``. ``beta=0`` is the L1 loss.
    """
    reduction = _reduction("smooth_l1_loss", reduction, size_average, reduce)
    target = _same_shape_target(input, target, "smooth_l1_loss")
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    if beta == 0:
        return L1Loss.apply(input, target, reduction)
    return SmoothL1Loss.apply(input, target, reduction, float(beta))


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean",
               delta: float = 1.0) -> Tensor:
    """Quadratic for ``|input - target| < delta``, then linear with slope ``delta``.

    ``input, target: (*)``; "none" keeps ``(*)``.
    """
    reduction = _reduction("huber_loss", reduction)
    target = _same_shape_target(input, target, "huber_loss")
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta}")
    return HuberLoss.apply(input, target, reduction, float(delta))


# ---------------------------------------------------------------- binary cross-entropy


def _clamped_log(x, upper: bool):
    """``max(log(x), -100)`` (``upper``: ``max(log(1 - x), -100)``), with no log(0) warning."""
    xp = array_module(x)
    if upper:
        ok = x < 1
        return xp.where(ok, xp.maximum(xp.log1p(-xp.where(ok, x, 0)), -100), -100)
    ok = x > 0
    return xp.where(ok, xp.maximum(xp.log(xp.where(ok, x, 1)), -100), -100)


class BinaryCrossEntropy(Function):
    """``-w (y log x + (1 - y) log(1 - x))`` with each log clamped to ``>= -100`` (PyTorch).

    d/dx = ``w (x - y) / max(x (1 - x), 1e-12)``; d/dy = ``w (log(1 - x) - log x)`` (the
    clamped logs: finite even at ``x`` = 0 or 1, where PyTorch's is infinite).
    """

    @staticmethod
    def forward(ctx, input, target, weight, reduction):
        log_x, log_1mx = _clamped_log(input, False), _clamped_log(input, True)
        loss = -(target * log_x + (1 - target) * log_1mx)
        if weight is not None:
            loss = loss * weight
        ctx.save_for_backward(input, target, weight, log_x, log_1mx)
        ctx.reduction = reduction
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, grad):
        input, target, weight, log_x, log_1mx = ctx.saved_tensors
        xp = array_module(input)
        g = _spread(grad, input, ctx.reduction)
        if weight is not None:
            g = g * weight
        grad_input = grad_target = None
        if ctx.needs_input_grad[0]:
            grad_input = g * (input - target) / xp.maximum(input * (1 - input), 1e-12)
        if ctx.needs_input_grad[1]:
            grad_target = g * (log_1mx - log_x)
        return grad_input, grad_target, None


class BCEWithLogits(Function):
    """``w ((1 - y) x + l softplus(-x))`` with ``l = 1 + (pos_weight - 1) y`` (1 without it).

    ``softplus(-x) = -log sigmoid(x)`` is computed as ``max(-x, 0) + log1p(e^-|x|)``: no
    overflow even for ``x = +-1000``. d/dx = ``w ((1 - y) - l (1 - sigmoid(x)))`` (=
    ``w (sigmoid(x) - y)`` without pos_weight); d/dy = ``w (-x + (pos_weight - 1) softplus(-x))``.
    """

    @staticmethod
    def forward(ctx, input, target, weight, pos_weight, reduction):
        softplus_neg = stable_softplus(-input)
        scale = 1 if pos_weight is None else 1 + (pos_weight - 1) * target
        loss = (1 - target) * input + scale * softplus_neg
        if weight is not None:
            loss = loss * weight
        ctx.save_for_backward(input, target, weight, pos_weight, softplus_neg)
        ctx.reduction = reduction
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, grad):
        input, target, weight, pos_weight, softplus_neg = ctx.saved_tensors
        g = _spread(grad, input, ctx.reduction)
        if weight is not None:
            g = g * weight
        grad_input = grad_target = None
        if ctx.needs_input_grad[0]:
            s = stable_sigmoid(input)
            if pos_weight is None:
                grad_input = g * (s - target)
            else:
                grad_input = g * ((1 - target) - (1 + (pos_weight - 1) * target) * (1 - s))
        if ctx.needs_input_grad[1]:
            slope = -input if pos_weight is None else -input + (pos_weight - 1) * softplus_neg
            grad_target = g * slope
        return grad_input, grad_target, None, None


def _broadcast_constant(x, input: Tensor, name: str, what: str):
    data = _constant(x, input, name, what)
    if data is None:
        return None
    try:
        np.broadcast_shapes(data.shape, input.shape)
    except ValueError:
        raise ValueError(
            f"{name}: {what} of shape {tuple(data.shape)} does not broadcast to the input "
            f"shape {input.shape}"
        ) from None
    return data


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """``-w (y log x + (1 - y) log(1 - x))`` for probabilities ``x`` in [0, 1].

    ``input, target: (*)`` (same shape); ``weight`` broadcasts to it. Each log is clamped to
    ``>= -100`` so that ``x = 0`` or ``1`` gives a finite loss, as in PyTorch. Prefer
    :func:`binary_cross_entropy_with_logits` on raw scores: it is stabler.
    """
    name = "binary_cross_entropy"
    reduction = _reduction(name, reduction, size_average, reduce)
    target = _same_shape_target(input, target, name)
    x = input.array
    xp = array_module(x)
    if input.numel() and bool(xp.any((x < 0) | (x > 1) | xp.isnan(x))):
        lo, hi = float(x.min()), float(x.max())
        raise ValueError(
            f"{name}: every element of input must be a probability in [0, 1], got values in "
            f"[{lo}, {hi}]; for raw scores use binary_cross_entropy_with_logits"
        )
    weight = _broadcast_constant(weight, input, name, "weight")
    return BinaryCrossEntropy.apply(input, target, weight, reduction)


def binary_cross_entropy_with_logits(
    input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
    reduce=None, reduction: str = "mean", pos_weight: Tensor | None = None,
) -> Tensor:
    """``binary_cross_entropy(sigmoid(input), target)``, computed stably from the logits.

    ``input, target: (*)`` (same shape). ``weight`` broadcasts to the input; ``pos_weight``
    (e.g. ``(C,)`` for input ``(N, C)``) multiplies the positive term ``-y log sigmoid(x)``
    per class: > 1 raises recall, < 1 precision.
    """
    name = "binary_cross_entropy_with_logits"
    reduction = _reduction(name, reduction, size_average, reduce)
    target = _same_shape_target(input, target, name)
    weight = _broadcast_constant(weight, input, name, "weight")
    pos_weight = _broadcast_constant(pos_weight, input, name, "pos_weight")
    return BCEWithLogits.apply(input, target, weight, pos_weight, reduction)


# ---------------------------------------------------------------- negative log-likelihood


class NLLLoss(Function):
    """``-weight[y] * logp[y]`` per sample, for class-index targets ``y``.

    ``logp: (N, C, *d)``, ``target: (N, *d)`` of class indices; elements whose target is
    ``ignore_index`` count 0 and weigh 0. "mean" divides by the sum of the weights of the
    counted elements. The gradient is ``-weight[y] * grad`` at class ``y``, 0 elsewhere.
    """

    @staticmethod
    def forward(ctx, logp, target, weight, ignore_index, reduction):
        xp = array_module(logp)
        keep = target != ignore_index
        safe = xp.where(keep, target, 0)  # any valid class: its weight is zeroed below
        picked = xp.take_along_axis(logp, safe[:, None], axis=1)[:, 0]
        w = keep.astype(logp.dtype) if weight is None else weight[safe] * keep
        loss = -w * picked
        ctx.save_for_backward(safe, w)
        ctx.reduction, ctx.n_classes = reduction, logp.shape[1]
        if reduction == "none":
            return loss
        if reduction == "sum":
            return loss.sum()
        total_weight = w.sum()
        ctx.total_weight = xp.where(total_weight == 0, 1, total_weight)
        # every element ignored: 0 / 0 is NaN, as in PyTorch (without a division warning)
        return xp.where(total_weight == 0, xp.nan, loss.sum() / ctx.total_weight).astype(
            logp.dtype
        )

    @staticmethod
    def backward(ctx, grad):
        safe, w = ctx.saved_tensors
        xp = array_module(w)
        coef = -w * grad
        if ctx.reduction == "mean":
            coef = coef / ctx.total_weight
        classes = xp.arange(ctx.n_classes).reshape((1, -1) + (1,) * (safe.ndim - 1))
        return (safe[:, None] == classes) * coef[:, None], None, None


def _class_dim_input(input, name: str) -> None:
    _float_input(input, name)
    if input.ndim == 0:
        raise ValueError(f"{name}: input must have a class dimension: (C,), (N, C) or "
                         f"(N, C, d1, ...), got a 0-d tensor")


def _class_targets(input: Tensor, target, ignore_index: int, name: str):
    """Check class-index targets against ``input: (N, C, *d)`` or ``(C,)``; the raw array."""
    if not isinstance(target, Tensor):
        target = Tensor(np.asarray(target))
    if target.dtype.kind not in "iu":
        raise TypeError(
            f"{name}: target of class indices must have an integer dtype (int64), got "
            f"{target.dtype}; for class probabilities give a float target of the input's "
            f"shape {input.shape}"
        )
    expected = () if input.ndim == 1 else input.shape[:1] + input.shape[2:]
    if target.shape != expected:
        raise ValueError(
            f"{name}: target shape {target.shape} does not match input shape {input.shape}: "
            f"expected target shape {expected} (input (N, C, d1, ...) takes target (N, d1, ...))"
        )
    data = to_device(target.array, input.device).astype(np.int64, copy=False)
    n_classes = input.shape[0 if input.ndim == 1 else 1]
    bad = (data != ignore_index) & ((data < 0) | (data >= n_classes))
    if bool(bad.any()):
        value = int(data[bad].reshape(-1)[0])
        raise ValueError(
            f"{name}: target holds class index {value}, out of range for C = {n_classes} "
            f"classes (expected 0 <= target < {n_classes}, or ignore_index {ignore_index})"
        )
    return data


def _class_weight(weight, input: Tensor, name: str):
    data = _constant(weight, input, name, "weight")
    n_classes = input.shape[0 if input.ndim == 1 else 1]
    if data is not None and data.shape != (n_classes,):
        raise ValueError(
            f"{name}: weight must have shape (C,) = ({n_classes},), got {tuple(data.shape)}"
        )
    return data


def _nll(logp: Tensor, target, weight, ignore_index: int, reduction: str) -> Tensor:
    """NLLLoss on checked raw arguments; an unbatched ``(C,)`` input is treated as ``(1, C)``."""
    if logp.ndim == 1:
        loss = NLLLoss.apply(ops.reshape(logp, 1, -1), target.reshape(1), weight,
                             ignore_index=ignore_index, reduction=reduction)
        return ops.reshape(loss, ()) if reduction == "none" else loss
    return NLLLoss.apply(logp, target, weight, ignore_index=ignore_index, reduction=reduction)


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of the target classes: ``-weight[y] * input[y]``.

    ``input``: log-probabilities ``(N, C)``, ``(N, C, d1, ...)`` or unbatched ``(C,)``;
    ``target``: class indices ``(N,)``, ``(N, d1, ...)`` or ``()``. ``weight: (C,)`` rescales
    each class. Targets equal to ``ignore_index`` contribute nothing. "mean" divides by the
    sum of ``weight[y]`` over the targets not ignored (their count without ``weight``).
    """
    reduction = _reduction("nll_loss", reduction, size_average, reduce)
    _class_dim_input(input, "nll_loss")
    target = _class_targets(input, target, ignore_index, "nll_loss")
    weight = _class_weight(weight, input, "nll_loss")
    return _nll(input, target, weight, ignore_index, reduction)


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy between the softmax of ``input`` (logits) and ``target``.

    ``input``: logits ``(N, C)``, ``(N, C, d1, ...)`` (e.g. per-pixel ``(N, C, H, W)``) or
    unbatched ``(C,)``. ``target`` is either

    * class indices (integer) ``(N,)`` / ``(N, d1, ...)`` / ``()``: ``nll_loss(log_softmax(input))``
      with ``weight`` and ``ignore_index`` as in :func:`nll_loss`; or
    * class probabilities (float), the input's shape: ``-sum_c weight_c y_c log_softmax(x)_c``;
      "mean" divides by the number of samples ``N * d1 * ...``.

    ``label_smoothing`` ``eps`` mixes the target with the uniform distribution:
    ``(1 - eps) * target + eps / C``. With class indices and "mean" the smoothing term is
    divided by the same (weighted) count as the NLL term, exactly as PyTorch does.
    """
    name = "cross_entropy"
    reduction = _reduction(name, reduction, size_average, reduce)
    _class_dim_input(input, name)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{name}: label_smoothing must be in [0, 1], got {label_smoothing}")
    weight = _class_weight(weight, input, name)
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    logp = ops.log_softmax(input, class_dim)
    weight_shape = (n_classes,) + (1,) * (input.ndim - class_dim - 1)
    weight_b = None if weight is None else Tensor._wrap(weight.reshape(weight_shape))

    if not isinstance(target, Tensor):
        target = Tensor(np.asarray(target))
    if target.shape == input.shape:  # class probabilities
        if target.dtype.kind != "f":
            raise TypeError(f"{name}: a target of the input's shape {input.shape} holds class "
                            f"probabilities and must be floating point, got {target.dtype}")
        target = _same_shape_target(input, target, name)
        if label_smoothing > 0:
            target = target * (1 - label_smoothing) + label_smoothing / n_classes
        terms = logp * target if weight_b is None else logp * target * weight_b
        loss = -ops.sum(terms, class_dim)
        if reduction == "none":
            return loss
        total = ops.sum(loss)
        if reduction == "sum":
            return total
        return total / (input.numel() // n_classes) if input.numel() else total * np.nan

    target = _class_targets(input, target, ignore_index, name)
    nll = _nll(logp, target, weight, ignore_index, reduction)
    if label_smoothing == 0:
        return nll
    # the smoothing term: -sum_c weight_c log p_c per element, 0 where the target is ignored
    terms = logp if weight_b is None else logp * weight_b
    keep = target != ignore_index
    smooth = ops.where(Tensor._wrap(keep), -ops.sum(terms, class_dim), 0.0)
    if reduction == "sum":
        smooth = ops.sum(smooth)
    elif reduction == "mean":
        xp = array_module(keep)
        count = keep.sum() if weight is None else (weight[xp.where(keep, target, 0)] * keep).sum()
        count = xp.maximum(count, xp.finfo(input.dtype).tiny).astype(input.dtype)
        smooth = ops.sum(smooth) / Tensor._wrap(count)  # count 0: the NLL term is NaN already
    return nll * (1 - label_smoothing) + smooth * (label_smoothing / n_classes)


# ---------------------------------------------------------------- Dice (segmentation)


def _dice_target(input: Tensor, target, ignore_index: int, name: str):
    """``(t, keep)``: the target as raw per-class values shaped like ``input`` (one-hot for
    class indices) and the mask ``(N, 1, *d)`` of pixels that count (None: all)."""
    xp = array_module(input.array)
    n_classes = input.shape[1]
    if not isinstance(target, Tensor):
        target = Tensor(np.asarray(target))
    pixels = input.shape[:1] + input.shape[2:]
    if target.dtype.kind == "f" or target.dtype.kind == "b":  # probabilities / a binary mask
        data = to_device(target.detach().array, input.device).astype(input.dtype)
        if n_classes == 1 and data.shape == pixels:
            data = data[:, None]
        if data.shape != input.shape:
            expected = f"{input.shape}" + (f" or {pixels}" if n_classes == 1 else "")
            raise ValueError(f"{name}: target of probabilities has shape {target.shape}, "
                             f"expected the input's shape {expected}")
        return data, None
    if n_classes > 1:
        labels = _class_targets(input, target, ignore_index, name)
    else:  # C = 1: a mask of 0/1 labels, (N, *d) or (N, 1, *d)
        labels = to_device(target.array, input.device).astype(np.int64)
        if labels.shape == input.shape:
            labels = labels[:, 0]
        if labels.shape != pixels:
            raise ValueError(f"{name}: target shape {target.shape} does not match input shape "
                             f"{input.shape}: expected {pixels} or {input.shape}")
        bad = (labels != ignore_index) & (labels != 0) & (labels != 1)
        if bool(bad.any()):
            raise ValueError(f"{name}: a binary (C = 1) target must hold 0 or 1 (or ignore_index "
                             f"{ignore_index}), got {int(labels[bad].reshape(-1)[0])}")
    keep = (labels != ignore_index)[:, None]
    classes = xp.arange(n_classes).reshape((1, -1) + (1,) * (input.ndim - 2))
    onehot = (xp.where(keep, labels[:, None], -1) == classes) if n_classes > 1 \
        else (labels[:, None] == 1) & keep
    return onehot.astype(input.dtype), (None if bool(keep.all()) else keep.astype(input.dtype))


def dice_loss(input: Tensor, target, weight: Tensor | None = None, smooth: float = 1.0,
              ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Soft Dice loss per class: ``1 - (2 sum(p t) + smooth) / (sum(p) + sum(t) + smooth)``.

    ``input``: logits ``(N, C, *d)`` (e.g. ``(N, C, H, W)``). For ``C = 1`` (one target,
    no background class) ``p = sigmoid(input)``; for ``C > 1`` ``p = softmax(input, 1)``
    (the background is one of the classes). ``target``: class indices ``(N, *d)``
    (integers; for ``C = 1`` the values 0 and 1, also ``(N, 1, *d)``) or floating-point
    per-class probabilities of the input's shape (a constant: no gradient flows into it).

    The sums run over the batch and every pixel, so each class gets one Dice score for
    the whole batch (a class absent from the batch scores ``smooth / (sum(p) + smooth)``:
    the loss pushes its probabilities to 0). ``smooth`` (>= 0) keeps the ratio defined
    and the gradient finite for empty masks. Pixels whose index target equals
    ``ignore_index`` count in neither sum. ``reduction``: "none" gives the ``(C,)``
    per-class losses; "mean" their mean, weighted by ``weight: (C,)`` if given
    (``sum_c w_c L_c / sum_c w_c``); "sum" the (weighted) sum.
    """
    name = "dice_loss"
    reduction = _reduction(name, reduction)
    _class_dim_input(input, name)
    if input.ndim < 2:
        raise ValueError(f"{name}: input must be (N, C, *d) logits, got shape {input.shape}")
    if not smooth >= 0:
        raise ValueError(f"{name}: smooth must be >= 0, got {smooth}")
    weight = _class_weight(weight, input, name)
    t, keep = _dice_target(input, target, ignore_index, name)
    p = ops.sigmoid(input) if input.shape[1] == 1 else ops.softmax(input, 1)
    if keep is not None:
        p = p * Tensor._wrap(keep)
    dims = (0, *range(2, input.ndim))
    intersection = ops.sum(p * Tensor._wrap(t), dims)
    total = ops.sum(p, dims) + Tensor._wrap(t.sum(axis=dims))
    loss = 1 - (2 * intersection + smooth) / (total + smooth)
    if reduction == "none":
        return loss
    if weight is not None:
        loss = loss * Tensor._wrap(weight)
    total_loss = ops.sum(loss)
    if reduction == "sum":
        return total_loss
    count = input.shape[1] if weight is None else weight.sum()
    return total_loss / Tensor._wrap(array_module(t).asarray(count, dtype=input.dtype))
