"""Activation functions: element-wise non-linearities, forward and backward side by side.

Every function here maps ``x: (*) -> (*)`` (any shape, same dtype) and follows PyTorch's
formula, defaults and gradient at the kinks (the points where the derivative jumps):

===============  ==========================================  ============================
function         forward                                     derivative at the kinks
===============  ==========================================  ============================
leaky_relu       ``x if x > 0 else slope * x``               ``slope`` at 0
hardtanh/relu6   ``clip(x, lo, hi)``                         0 at ``lo`` and ``hi``
elu              ``x if x > 0 else alpha * (e^x - 1)``       ``alpha`` at 0
hardsigmoid      ``clip(x + 3, 0, 6) / 6``                   0 at -3 and 3
hardswish        ``x * clip(x + 3, 0, 6) / 6``               0 at -3, 1 at 3
softplus         ``log(1 + e^(beta x)) / beta``              (x where beta x > threshold)
gelu, silu       smooth                                      --
===============  ==========================================  ============================

``inplace=True`` is accepted for PyTorch compatibility, but minicnn always returns a new
tensor (autograd here has no in-place operations on tensors that require grad).
"""

from __future__ import annotations

import math

from minicnn.autograd.function import Function
from minicnn.autograd.ops.elementwise import stable_sigmoid
from minicnn.autograd.tensor import Tensor
from minicnn.backend import array_module, backend_of


def stable_softplus(z):
    """``log(1 + e^z)`` on a raw array, as ``max(z, 0) + log1p(e^-|z|)``: no overflow."""
    xp = array_module(z)
    return xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))


class LeakyReLU(Function):
    """``x if x > 0 else slope * x``; the derivative is 1 or ``slope`` (``slope`` at 0)."""

    @staticmethod
    def forward(ctx, x, negative_slope):
        positive = x > 0
        ctx.save_for_backward(positive)
        ctx.slope = negative_slope
        return backend_of(x).where(positive, x, x * negative_slope)

    @staticmethod
    def backward(ctx, grad):
        (positive,) = ctx.saved_tensors
        return backend_of(grad).where(positive, grad, grad * ctx.slope)


class Hardtanh(Function):
    """``clip(x, lo, hi)``; the gradient passes strictly inside ``(lo, hi)`` (PyTorch)."""

    @staticmethod
    def forward(ctx, x, min_val, max_val):
        ctx.save_for_backward((x > min_val) & (x < max_val))
        return array_module(x).clip(x, min_val, max_val)

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside


class ELU(Function):
    """``x if x > 0 else alpha (e^x - 1)``; derivative 1, or ``alpha e^x`` for ``x <= 0``."""

    @staticmethod
    def forward(ctx, x, alpha):
        xp = array_module(x)
        negative = alpha * xp.expm1(xp.minimum(x, 0))  # minimum: no overflow where unused
        ctx.save_for_backward(x, negative)
        ctx.alpha = alpha
        return backend_of(x).where(x > 0, x, negative)

    @staticmethod
    def backward(ctx, grad):
        x, negative = ctx.saved_tensors
        # alpha e^x = alpha (e^x - 1) + alpha: reuse the forward's value
        return backend_of(grad).where(x > 0, grad, grad * (negative + ctx.alpha))


_SQRT_HALF = math.sqrt(0.5)
_ONE_OVER_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_TANH_COEF = 0.044715


class GELU(Function):
    """``x * Phi(x)`` with ``Phi`` the standard normal CDF, ``0.5 (1 + erf(x / sqrt 2))``.

    Derivative: ``Phi(x) + x * phi(x)`` with the density ``phi(x) = e^(-x^2/2) / sqrt(2 pi)``.
    ``approximate="tanh"`` replaces ``Phi(x)`` by ``0.5 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.
    """

    @staticmethod
    def forward(ctx, x, approximate):
        xp = array_module(x)
        ctx.approximate = approximate
        if approximate == "tanh":
            t = xp.tanh(_SQRT_2_OVER_PI * (x + _GELU_TANH_COEF * x * x * x))
            ctx.save_for_backward(x, t)
            return 0.5 * x * (1 + t)
        cdf = 0.5 * (1 + backend_of(x).erf(x * _SQRT_HALF))
        ctx.save_for_backward(x, cdf)
        return x * cdf

    @staticmethod
    def backward(ctx, grad):
        x, saved = ctx.saved_tensors
        xp = array_module(x)
        if ctx.approximate == "tanh":
            t = saved
            inner_grad = _SQRT_2_OVER_PI * (1 + 3 * _GELU_TANH_COEF * x * x)
            return grad * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * inner_grad)
        pdf = _ONE_OVER_SQRT_2PI * xp.exp(-0.5 * x * x)
        return grad * (saved + x * pdf)


class SiLU(Function):
    """``x * sigmoid(x)`` (swish); derivative ``s (1 + x (1 - s))`` with ``s = sigmoid(x)``."""

    @staticmethod
    def forward(ctx, x):
        s = stable_sigmoid(x)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, grad):
        x, s = ctx.saved_tensors
        return grad * s * (1 + x * (1 - s))


class Hardsigmoid(Function):
    """``clip(x + 3, 0, 6) / 6``; derivative 1/6 strictly inside ``(-3, 3)``, else 0."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward((x > -3) & (x < 3))
        return array_module(x).clip(x + 3, 0, 6) / 6

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside / 6


class Hardswish(Function):
    """``x * clip(x + 3, 0, 6) / 6``; slope 0 for ``x <= -3``, ``x/3 + 1/2`` below 3, else 1."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * array_module(x).clip(x + 3, 0, 6) / 6

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        where = backend_of(x).where
        slope = where(x <= -3, 0, where(x < 3, x / 3 + 0.5, 1))
        return grad * slope


class Softplus(Function):
    """``log(1 + e^(beta x)) / beta``, and just ``x`` where ``beta x > threshold``.

    Derivative: ``sigmoid(beta x)`` (1 past the threshold).
    """

    @staticmethod
    def forward(ctx, x, beta, threshold):
        z = x * beta
        linear = z > threshold
        ctx.save_for_backward(z, linear)
        return backend_of(x).where(linear, x, stable_softplus(z) / beta)

    @staticmethod
    def backward(ctx, grad):
        z, linear = ctx.saved_tensors
        return backend_of(grad).where(linear, grad, grad * stable_sigmoid(z))


# ---------------------------------------------------------------- public functions


def _check_tensor(input, name: str) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
    if input.dtype.kind != "f":
        raise TypeError(f"{name}: input must be a floating-point tensor, got dtype {input.dtype}")


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``max(0, x) + negative_slope * min(0, x)``. ``x: (*) -> (*)``."""
    _check_tensor(input, "leaky_relu")
    return LeakyReLU.apply(input, float(negative_slope))


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """``clip(x, min_val, max_val)``. ``x: (*) -> (*)``."""
    _check_tensor(input, "hardtanh")
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
    return Hardtanh.apply(input, float(min_val), float(max_val))


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """``min(max(0, x), 6)`` (MobileNet's activation). ``x: (*) -> (*)``."""
    _check_tensor(input, "relu6")
    return Hardtanh.apply(input, 0.0, 6.0)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``x if x > 0 else alpha * (exp(x) - 1)``. ``x: (*) -> (*)``."""
    _check_tensor(input, "elu")
    return ELU.apply(input, float(alpha))


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """``x * Phi(x)``, Phi the standard normal CDF (exact, by erf) or its tanh approximation.

    ``approximate``: "none" (default) or "tanh". ``x: (*) -> (*)``.
    """
    _check_tensor(input, "gelu")
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(input, approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * sigmoid(x)`` (swish). ``x: (*) -> (*)``."""
    _check_tensor(input, "silu")
    return SiLU.apply(input)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """``clip(x + 3, 0, 6) / 6``, a piecewise-linear sigmoid. ``x: (*) -> (*)``."""
    _check_tensor(input, "hardsigmoid")
    return Hardsigmoid.apply(input)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * hardsigmoid(x)`` (MobileNetV3). ``x: (*) -> (*)``."""
    _check_tensor(input, "hardswish")
    return Hardswish.apply(input)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta * x)) / beta``, just ``x`` where ``beta * x > threshold``.

    ``x: (*) -> (*)``.
    """
    _check_tensor(input, "softplus")
    if beta == 0:
        raise ValueError("softplus: beta must be non-zero, got 0")
    return Softplus.apply(input, float(beta), float(threshold))
