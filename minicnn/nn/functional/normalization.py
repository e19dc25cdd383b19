"""Normalization: batch, instance, group and layer norm, and local response norm (LRN).

The first four subtract a mean and divide by a standard deviation, then scale and shift:
``y = (x - mean) / sqrt(var + eps) * weight + bias`` with the *biased* variance (divide by
the count ``M``). They differ only in which elements share a mean (``x: (N, C, H, W)``):

* batch norm (Ioffe and Szegedy, 2015): per channel, over the batch and the pixels;
  running averages of the statistics replace them in eval mode;
* instance norm (Ulyanov et al., 2016): per sample and channel, over the pixels;
* group norm (Wu and He, 2018): per sample and group of channels;
* layer norm (Ba et al., 2016): per sample, over the last ``len(normalized_shape)`` dims.

Each is computed by the same backend kernels on ``x`` viewed as ``(A, B, L)``, one mean
per B (see ``reference.py``, "normalization"). With ``xhat = (x - mean) * invstd`` and
``dxhat = dy * weight``, the gradient through the statistics is the compact formula

    dx = invstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))     (means over M)

and ``dweight = sum(dy * xhat)``, ``dbias = sum(dy)``.

LRN (Krizhevsky et al., 2012) divides each activation by a power of the mean square of
its neighbouring channels: ``b_c = a_c / (k + alpha/n * sum a_c'^2) ** beta`` where the
sum runs over ``c' = c - n//2 .. c + (n-1)//2`` (PyTorch's window; channels outside count
as 0).
"""

from __future__ import annotations

import math
from numbers import Integral, Real

from minicnn.autograd import ops
from minicnn.autograd.function import Function
from minicnn.autograd.tensor import Tensor
from minicnn.backend import array_module, backend_of

__all__ = ["batch_norm", "group_norm", "instance_norm", "layer_norm", "local_response_norm",
           "normalize"]


def _check_tensor(x, name: str, fn: str, shape: tuple[int, ...] | None = None) -> None:
    if x is None:
        return
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}: {name} must be a Tensor or None, got {type(x).__name__}")
    if shape is not None and x.shape != tuple(shape):
        raise ValueError(f"{fn}: {name} must have shape {tuple(shape)}, got {x.shape}")


def _check_input(input, fn: str, min_ndim: int, what: str) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"{fn}: input must be a Tensor, got {type(input).__name__}")
    if input.ndim < min_ndim:
        raise ValueError(f"{fn}: input must be {what}, got shape {input.shape}")
    if input.dtype.kind != "f":
        raise TypeError(f"{fn}: input must be floating point, got dtype {input.dtype}")


def _invstd(var, eps: float):
    return 1.0 / array_module(var).sqrt(var + eps)


def _cast(a, dtype):
    return None if a is None else a.astype(dtype, copy=False)


# ---------------------------------------------------------------- batch and instance norm


def _norm_forward(ctx, x3, weight, bias, running_mean, running_var, training, momentum, eps):
    """Batch norm of ``x3: (A, B, L)`` per B (the core of batch and instance norm).

    Training: batch statistics, and the running ones (if given) move towards them in
    place by ``momentum``, with the *unbiased* variance, as PyTorch does. Eval: the running
    statistics. Saves what :func:`_norm_backward` needs on ``ctx``.
    """
    bk = backend_of(x3)
    if training:
        mean, var = bk.batch_norm_stats(x3)
        if running_mean is not None:
            running_mean[...] = momentum * mean + (1 - momentum) * running_mean
        if running_var is not None:
            m = x3.shape[0] * x3.shape[2]
            running_var[...] = momentum * var * (m / (m - 1)) + (1 - momentum) * running_var
    else:
        mean, var = running_mean.astype(x3.dtype), running_var.astype(x3.dtype)
    invstd = _invstd(var, eps)
    ctx.save_for_backward(x3, weight, mean, invstd)
    ctx.training = training
    return bk.batch_norm_elemt(x3, mean, invstd, weight, bias)


def _norm_backward(ctx, g3):
    """Gradients of :func:`_norm_forward`: ``(dx3, dweight, dbias)`` (None where unneeded)."""
    x3, weight, mean, invstd = ctx.saved_tensors
    bk = backend_of(g3)
    need_x, need_w, need_b = ctx.needs_input_grad[:3]
    sum_dy = sum_dy_xhat = dx = None
    if need_w or need_b or (need_x and ctx.training):
        sum_dy, sum_dy_xhat = bk.batch_norm_backward_reduce(g3, x3, mean, invstd)
    if need_x and ctx.training:
        dx = bk.batch_norm_backward_elemt(g3, x3, mean, invstd, weight, sum_dy, sum_dy_xhat)
    elif need_x:  # eval: the statistics are constants, normalizing is an affine map
        scale = invstd if weight is None else invstd * weight
        dx = g3 * scale[None, :, None]
    return dx, (sum_dy_xhat if need_w else None), (sum_dy if need_b else None)


def _as_3d(x):
    """``(N, C, *) -> (N, C, L)``, also for ``N = 0`` (where ``reshape(N, C, -1)`` fails)."""
    return x.reshape(x.shape[0], x.shape[1], math.prod(x.shape[2:]))


class BatchNorm(Function):
    """Batch norm over ``x: (N, C, *)`` per channel; running statistics updated in place."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean=None, running_var=None, training=False,
                momentum=0.1, eps=1e-5):
        x3 = _as_3d(x)
        y = _norm_forward(ctx, x3, _cast(weight, x.dtype), _cast(bias, x.dtype), running_mean,
                          running_var, training, momentum, eps)
        ctx.shape = x.shape
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        dx, dw, db = _norm_backward(ctx, _as_3d(grad))
        return (None if dx is None else dx.reshape(ctx.shape)), dw, db


def _data(t):
    return None if t is None else t.array


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalization. ``input: (N, C) or (N, C, L) or (N, C, H, W) -> same shape``.

    ``training=True`` normalizes with the batch's mean and biased variance per channel and
    updates ``running_mean``/``running_var`` (if given) in place:
    ``running = (1 - momentum) * running + momentum * batch_statistic``, using the unbiased
    variance for ``running_var``. ``training=False`` normalizes with the running statistics.
    """
    fn = "batch_norm"
    _check_input(input, fn, 2, "(N, C, *) with at least 2 dims")
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_tensor(t, name, fn, (c,))
    if not training and (running_mean is None or running_var is None):
        raise ValueError(f"{fn}: running_mean and running_var are needed when training=False "
                         f"(they replace the batch statistics)")
    if training and input.numel() // max(c, 1) <= 1:
        raise ValueError(f"{fn}: expected more than 1 value per channel when training, got "
                         f"input of shape {input.shape}")
    if not isinstance(momentum, Real):
        raise TypeError(f"{fn}: momentum must be a float, got {momentum!r}")
    return BatchNorm.apply(input, weight, bias, running_mean=_data(running_mean),
                           running_var=_data(running_var), training=bool(training),
                           momentum=float(momentum), eps=float(eps))


class InstanceNorm(Function):
    """Instance norm: batch norm of ``x: (N, C, *)`` viewed as one sample of ``N*C``
    channels; running statistics are averaged over the batch, as PyTorch does."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean=None, running_var=None,
                use_input_stats=True, momentum=0.1, eps=1e-5):
        xp = array_module(x)
        n, c = x.shape[:2]
        x3 = x.reshape(1, n * c, -1)
        tile = lambda a: None if a is None else xp.tile(a.astype(x.dtype, copy=False), n)  # noqa: E731
        rm, rv = tile(running_mean), tile(running_var)
        y = _norm_forward(ctx, x3, tile(weight), tile(bias), rm, rv, use_input_stats, momentum,
                          eps)
        if use_input_stats and running_mean is not None:
            running_mean[...] = rm.reshape(n, c).mean(axis=0)
        if use_input_stats and running_var is not None:
            running_var[...] = rv.reshape(n, c).mean(axis=0)
        ctx.shape = x.shape
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        n, c = ctx.shape[:2]
        dx, dw, db = _norm_backward(ctx, grad.reshape(1, n * c, -1))
        fold = lambda a: None if a is None else a.reshape(n, c).sum(axis=0)  # noqa: E731
        return (None if dx is None else dx.reshape(ctx.shape)), fold(dw), fold(db)


def instance_norm(input: Tensor, running_mean: Tensor | None = None,
                  running_var: Tensor | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Instance normalization: each (sample, channel) plane normalized by its own mean and
    variance. ``input: (N, C, *spatial) -> same shape``. ``use_input_stats=False`` uses
    the running statistics instead (which must then be given)."""
    fn = "instance_norm"
    _check_input(input, fn, 3, "(N, C, *spatial) with at least 3 dims")
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_tensor(t, name, fn, (c,))
    if not use_input_stats and (running_mean is None or running_var is None):
        raise ValueError(f"{fn}: running_mean and running_var are needed when "
                         f"use_input_stats=False")
    if use_input_stats and input.numel() // max(input.shape[0] * c, 1) <= 1:
        raise ValueError(f"{fn}: expected more than 1 spatial element when training, got "
                         f"input of shape {input.shape}")
    return InstanceNorm.apply(input, weight, bias, running_mean=_data(running_mean),
                              running_var=_data(running_var),
                              use_input_stats=bool(use_input_stats), momentum=float(momentum),
                              eps=float(eps))


# ---------------------------------------------------------------- group and layer norm


def _group_forward(bk, x3, eps):
    """``xhat`` of ``x3: (1, B, L)`` normalized per B, with its mean and invstd."""
    mean, var = bk.batch_norm_stats(x3)
    invstd = _invstd(var, eps)
    return bk.batch_norm_elemt(x3, mean, invstd), mean, invstd


def _group_backward(bk, dxhat3, x3, mean, invstd):
    """Gradient through the per-B statistics of :func:`_group_forward` (compact formula)."""
    sum_dy, sum_dy_xhat = bk.batch_norm_backward_reduce(dxhat3, x3, mean, invstd)
    return bk.batch_norm_backward_elemt(dxhat3, x3, mean, invstd, None, sum_dy, sum_dy_xhat)


class GroupNorm(Function):
    """Group norm of ``x: (N, C, *)``: statistics per (sample, group), affine per channel."""

    @staticmethod
    def forward(ctx, x, weight, bias, num_groups=1, eps=1e-5):
        bk = backend_of(x)
        n, c = x.shape[:2]
        x3 = x.reshape(1, n * num_groups, -1)
        xhat3, mean, invstd = _group_forward(bk, x3, eps)
        xhat = xhat3.reshape(n, c, -1)
        ctx.save_for_backward(x3, xhat, weight, mean, invstd)
        ctx.shape = x.shape
        y = xhat if weight is None else xhat * weight.astype(x.dtype)[:, None]
        y = y if bias is None else y + bias.astype(x.dtype)[:, None]
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        x3, xhat, weight, mean, invstd = ctx.saved_tensors
        g = grad.reshape(xhat.shape)
        need_x, need_w, need_b = ctx.needs_input_grad
        dw = (g * xhat).sum(axis=(0, 2)) if need_w else None
        db = g.sum(axis=(0, 2)) if need_b else None
        dx = None
        if need_x:
            dxhat = g if weight is None else g * weight.astype(g.dtype)[:, None]
            dx = _group_backward(backend_of(g), dxhat.reshape(x3.shape), x3, mean, invstd)
            dx = dx.reshape(ctx.shape)
        return dx, dw, db


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Group normalization: ``input: (N, C, *) -> same shape``; the C channels form
    ``num_groups`` groups, each normalized per sample; ``weight``/``bias``: ``(C,)``."""
    fn = "group_norm"
    _check_input(input, fn, 2, "(N, C, *) with at least 2 dims")
    c = input.shape[1]
    if not isinstance(num_groups, Integral) or num_groups <= 0 or c % num_groups:
        raise ValueError(f"{fn}: num_groups must be a positive int dividing the {c} channels, "
                         f"got num_groups={num_groups!r} for input of shape {input.shape}")
    if input.numel() // num_groups == 1:  # PyTorch's check: one value per group
        raise ValueError(f"{fn}: expected more than 1 value per group, got input of shape "
                         f"{input.shape} with num_groups={num_groups}")
    _check_tensor(weight, "weight", fn, (c,))
    _check_tensor(bias, "bias", fn, (c,))
    return GroupNorm.apply(input, weight, bias, num_groups=int(num_groups), eps=float(eps))


class LayerNorm(Function):
    """Layer norm: statistics per sample over the last dims, element-wise affine there."""

    @staticmethod
    def forward(ctx, x, weight, bias, normalized_shape=(), eps=1e-5):
        bk = backend_of(x)
        d = 1
        for s in normalized_shape:
            d *= s
        x3 = x.reshape(1, -1, d)
        xhat3, mean, invstd = _group_forward(bk, x3, eps)
        ctx.save_for_backward(x3, xhat3, weight, mean, invstd)
        ctx.shape, ctx.normalized_shape = x.shape, tuple(normalized_shape)
        y = xhat3 if weight is None else xhat3 * weight.astype(x.dtype).reshape(-1)
        y = y if bias is None else y + bias.astype(x.dtype).reshape(-1)
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        x3, xhat3, weight, mean, invstd = ctx.saved_tensors
        g = grad.reshape(x3.shape)
        need_x, need_w, need_b = ctx.needs_input_grad
        shape = ctx.normalized_shape
        dw = (g * xhat3).sum(axis=(0, 1)).reshape(shape) if need_w else None
        db = g.sum(axis=(0, 1)).reshape(shape) if need_b else None
        dx = None
        if need_x:
            dxhat = g if weight is None else g * weight.astype(g.dtype).reshape(-1)
            dx = _group_backward(backend_of(g), dxhat, x3, mean, invstd).reshape(ctx.shape)
        return dx, dw, db


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Layer normalization over the last ``len(normalized_shape)`` dims:
    ``input: (*, *normalized_shape) -> same shape``; ``weight``/``bias``: ``normalized_shape``."""
    fn = "layer_norm"
    shape = (normalized_shape,) if isinstance(normalized_shape, Integral) else \
        tuple(normalized_shape)
    if not shape or not all(isinstance(s, Integral) and s > 0 for s in shape):
        raise ValueError(f"{fn}: normalized_shape must be a positive int or a non-empty "
                         f"sequence of them, got {normalized_shape!r}")
    _check_input(input, fn, len(shape), f"(*, {', '.join(map(str, shape))})")
    if input.shape[input.ndim - len(shape):] != shape:
        raise ValueError(f"{fn}: given normalized_shape={list(shape)}, expected input of shape "
                         f"[*, {', '.join(map(str, shape))}], got {input.shape}")
    _check_tensor(weight, "weight", fn, shape)
    _check_tensor(bias, "bias", fn, shape)
    return LayerNorm.apply(input, weight, bias, normalized_shape=shape, eps=float(eps))


# ---------------------------------------------------------------- local response norm


class LocalResponseNorm(Function):
    """LRN across channels of ``x: (N, C, *)``; see the module docstring."""

    @staticmethod
    def forward(ctx, x, size=5, alpha=1e-4, beta=0.75, k=1.0):
        out, scale = backend_of(x).local_response_norm(x, size, alpha, beta, k)
        ctx.save_for_backward(x, out, scale)
        ctx.params = (size, alpha, beta)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out, scale = ctx.saved_tensors
        return backend_of(grad).local_response_norm_backward(grad, x, out, scale, *ctx.params)


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """Local response normalization across channels (AlexNet's "brightness normalization").

    ``input: (N, C, *) -> same shape``; ``b_c = a_c / (k + alpha/size * sum a_c'^2) ** beta``
    over the ``size`` channels ``c - size//2 .. c + (size-1)//2``. AlexNet used
    ``size=5, alpha=1e-4, beta=0.75, k=2``.
    """
    fn = "local_response_norm"
    _check_input(input, fn, 3, "(N, C, *) with at least 3 dims")
    if not isinstance(size, Integral) or isinstance(size, bool) or size <= 0:
        raise ValueError(f"{fn}: size must be a positive int (channels in the window), "
                         f"got {size!r}")
    return LocalResponseNorm.apply(input, size=int(size), alpha=float(alpha), beta=float(beta),
                                   k=float(k))


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """Divide ``input`` by its ``p``-norm along ``dim``: ``x / max(||x||_p, eps)``.

    ``x: (N, C, H, W) -> (N, C, H, W)``; with the default ``dim=1`` each pixel's channel
    vector gets length 1 (SSD's L2 normalisation of conv4_3, ParseNet's). Built from
    differentiable operations. The norm is computed as ``max(sum |x|^p, eps^p) ^ (1/p)``,
    which equals ``max(||x||_p, eps)`` and keeps the gradient finite (0 through the norm,
    as in PyTorch) where ``||x||_p < eps``.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"normalize: input must be a Tensor, got {type(input).__name__}")
    if not isinstance(p, Real) or isinstance(p, bool) or not p > 0 or math.isinf(p):
        raise ValueError(f"normalize: p must be a positive finite number, got {p!r}")
    if input.ndim == 0 or not -input.ndim <= dim < input.ndim:
        raise ValueError(f"normalize: dim must be in [-{input.ndim}, {input.ndim}) for an "
                         f"input of shape {tuple(input.shape)}, got {dim}")
    powered = input * input if p == 2 else ops.abs(input) ** p
    total = ops.clamp(powered.sum(dim=dim, keepdim=True), min=eps ** p)
    norm = ops.sqrt(total) if p == 2 else total ** (1.0 / p)
    return input / norm
