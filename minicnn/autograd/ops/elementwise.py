"""Element-wise operations with NumPy broadcasting: each public function (``add``, ``exp``,
``where`` ...) beside the Function that computes its forward and backward.

Backward returns gradients of the broadcast shape; the engine's ``unbroadcast`` sums
them back to each input's shape. Operands are first promoted to one dtype by PyTorch's
rules (``promotion.py``).
"""

from __future__ import annotations

import contextlib

import numpy as np

from minicnn.autograd.function import Function
from minicnn.autograd.ops.promotion import check_broadcast, is_number, promoted
from minicnn.autograd.tensor import Tensor
from minicnn.backend import array_module, backend_of


def _quiet(xp):
    """Silence NumPy's floating-point warnings for values a ``where`` then discards."""
    if not hasattr(xp, "errstate"):  # CuPy does not warn
        return contextlib.nullcontext()
    return xp.errstate(divide="ignore", invalid="ignore", over="ignore")


def _binary(fn, a, b, true_divide: bool = False):
    a, b = promoted(a, b, true_divide=true_divide)
    try:
        return fn.apply(a, b)
    except ValueError:  # name the shapes if that was the problem, else re-raise as it is
        check_broadcast(fn.__name__.lower(), a, b)
        raise


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


def add(input, other, *, alpha=1):
    """``input + alpha * other`` with broadcasting."""
    return _binary(Add, input, other if alpha == 1 else mul(other, alpha))


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, grad):
        return grad, -grad


def sub(input, other, *, alpha=1):
    """``input - alpha * other`` with broadcasting."""
    return _binary(Sub, input, other if alpha == 1 else mul(other, alpha))


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        ga, gb = ctx.needs_input_grad
        return (grad * b if ga else None), (grad * a if gb else None)


def mul(input, other):
    return _binary(Mul, input, other)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        ga, gb = ctx.needs_input_grad
        return (grad / b if ga else None), (-grad * a / (b * b) if gb else None)


def div(input, other):
    """``input / other`` (true division: integer inputs give a float32 result)."""
    return _binary(Div, input, other, true_divide=True)


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, grad):
        return -grad


def neg(input):
    return Neg.apply(input)


class Pow(Function):
    """``a ** b``: d/da = b a^(b-1), d/db = a^b log(a).

    PyTorch's conventions where the formulas break down: d/da is 0 where ``b == 0``
    (not ``0 * 0^-1 = NaN``), and d/db is 0 where ``a == 0`` and ``b >= 0``. Elsewhere
    a negative base gives d/db = NaN (log of a negative number), as in PyTorch.
    """

    @staticmethod
    def forward(ctx, a, b):
        out = a**b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_tensors
        ga, gb = ctx.needs_input_grad
        xp = array_module(grad)
        zero = grad.dtype.type(0)
        grad_a = grad_b = None
        with _quiet(xp):
            if ga:
                grad_a = grad * xp.where(b == 0, zero, b * a ** (b - 1))
            if gb:
                base = xp.asarray(a, dtype=out.dtype)  # a Python number keeps out's precision
                grad_b = grad * xp.where((base == 0) & (b >= 0), zero, out * xp.log(base))
        return grad_a, grad_b


def pow(input, exponent):
    """``input ** exponent``; either may be a tensor or a number."""
    return _binary(Pow, input, exponent)


class Exp(Function):
    @staticmethod
    def forward(ctx, a):
        out = array_module(a).exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out


def exp(input):
    return Exp.apply(input)


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).log(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / a


def log(input):
    return Log.apply(input)


class Sqrt(Function):
    @staticmethod
    def forward(ctx, a):
        out = array_module(a).sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad / (2 * out)


def sqrt(input):
    return Sqrt.apply(input)


class Abs(Function):
    """|a|; the gradient at 0 is 0, as in PyTorch."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).abs(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * array_module(a).sign(a)


def abs(input):
    return Abs.apply(input)


class Clamp(Function):
    """Clip to [lo, hi] (numbers); the gradient passes only where lo < a < hi.

    That is PyTorch's convention: an element sitting exactly on a bound gets 0.
    """

    @staticmethod
    def forward(ctx, a, lo=None, hi=None):
        xp = array_module(a)
        mask = None
        out = a
        if lo is not None:
            mask = a > lo
            out = xp.maximum(out, xp.asarray(lo, dtype=a.dtype))
        if hi is not None:
            mask = a < hi if mask is None else mask & (a < hi)
            out = xp.minimum(out, xp.asarray(hi, dtype=a.dtype))
        ctx.save_for_backward(mask)
        return out

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask, None, None


def clamp(input, min=None, max=None):
    """Clip every element to ``[min, max]`` (either bound may be None, not both).

    Number bounds: the gradient passes only strictly inside ``(min, max)``, as in PyTorch.
    Tensor bounds broadcast and get gradients too: ``minimum(maximum(input, min), max)``.
    """
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor) or not (
        (min is None or is_number(min)) and (max is None or is_number(max))
    ):
        out = input if min is None else maximum(input, min)
        return out if max is None else minimum(out, max)
    input, min, max = promoted(input, min, max)
    return Clamp.apply(input, min, max)


clip = clamp


def _tie_split(grad, a, b, a_wins, b_wins):
    """Gradients of max/min(a, b): all of it to the winner, half each on a tie.

    Where neither wins nor ties (a NaN compared), both get all of it, as in PyTorch.
    """
    where = backend_of(grad).where
    half = grad * grad.dtype.type(0.5)
    zero = grad.dtype.type(0)
    tie = a == b
    return where(tie, half, where(b_wins, zero, grad)), where(tie, half, where(a_wins, zero, grad))


class Maximum(Function):
    """Element-wise max; where a == b the gradient is split half and half (PyTorch)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return array_module(a, b).maximum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return _tie_split(grad, a, b, a > b, a < b)


def maximum(input, other):
    return _binary(Maximum, input, other)


class Minimum(Function):
    """Element-wise min; where a == b the gradient is split half and half (PyTorch)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return array_module(a, b).minimum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return _tie_split(grad, a, b, a < b, a > b)


def minimum(input, other):
    return _binary(Minimum, input, other)


class Where(Function):
    """``cond ? a : b``: the gradient goes to whichever input was chosen."""

    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        return backend_of(cond, a, b).where(cond, a, b)

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved_tensors
        where = backend_of(grad).where
        zero = grad.dtype.type(0)
        return None, where(cond, grad, zero), where(cond, zero, grad)


def where(condition, input, other):
    """``input`` where ``condition`` is true, else ``other`` (broadcast together)."""
    cond = condition.array if isinstance(condition, Tensor) else np.asarray(condition)
    if cond.dtype != bool:
        raise TypeError(f"where: condition must be a bool tensor, got dtype {cond.dtype}")
    input, other = promoted(input, other)
    try:
        return Where.apply(cond, input, other)
    except ValueError:
        check_broadcast("where", cond, input, other)
        raise


def stable_sigmoid(a):
    """``1 / (1 + e^-a)`` on a raw array, without overflow for large ``|a|``; keeps the dtype.

    ``e^-|a|`` lies in (0, 1]; the sigmoid is ``1 / (1 + e)`` for ``a >= 0`` and
    ``e / (1 + e)`` below (accurate for very negative ``a``, where ``1 - 1/(1 + e)`` is 0).
    """
    xp = array_module(a)
    e = xp.exp(-xp.abs(a))
    out = backend_of(a).where(a >= 0, 1 / (1 + e), e / (1 + e))
    return out.astype(a.dtype, copy=False)


class Sigmoid(Function):
    """1 / (1 + e^-a), computed without overflow for large |a|; d/da = s (1 - s)."""

    @staticmethod
    def forward(ctx, a):
        out = stable_sigmoid(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out * (1 - out)


def sigmoid(input):
    return Sigmoid.apply(input)


class Tanh(Function):
    @staticmethod
    def forward(ctx, a):
        out = array_module(a).tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (1 - out * out)


def tanh(input):
    return Tanh.apply(input)


class Atan(Function):
    """arctan(a); the gradient is 1 / (1 + a^2)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).arctan(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / (1 + a * a)


def atan(input):
    return Atan.apply(input)


class ReLU(Function):
    """max(a, 0); the gradient at 0 is 0 (at NaN it passes, as in PyTorch). Backward reads
    the output (``out <= 0`` exactly where ``a <= 0``), so no mask is kept; the backend's
    kernels do each way in one pass."""

    @staticmethod
    def forward(ctx, a):
        out = backend_of(a).relu(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return backend_of(grad).relu_backward(grad, out)


def relu(input):
    return ReLU.apply(input)
