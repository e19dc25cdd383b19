"""Weight initialisation (``minicnn.nn.init``), as in ``torch.nn.init``.

Every function fills ``tensor`` in place and returns it. Random numbers come from
minicnn's one generator (``minicnn.manual_seed``), drawn on the CPU in float64 and then
cast and moved to the tensor's dtype and device; nothing is recorded for autograd.

The scaled initialisations keep the variance of activations roughly constant from layer
to layer. For a weight with ``fan_in`` inputs per output:

* Xavier/Glorot (2010):  std = gain * sqrt(2 / (fan_in + fan_out))
* Kaiming/He (2015):     std = gain / sqrt(fan)      (fan = fan_in or fan_out)

and a uniform distribution on ``[-bound, bound]`` with ``bound = sqrt(3) * std`` has that
standard deviation.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from minicnn import random as _random
from minicnn.autograd.grad_mode import no_grad
from minicnn.autograd.tensor import Tensor
from minicnn.backend import to_device

__all__ = [
    "calculate_gain", "constant_", "default_init_", "dirac_", "eye_", "kaiming_normal_",
    "kaiming_uniform_",
    "normal_", "ones_", "orthogonal_", "trunc_normal_", "uniform_", "xavier_normal_",
    "xavier_uniform_", "zeros_",
]

_LINEAR_FNS = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
               "conv_transpose3d")
_NONLINEARITIES = (*_LINEAR_FNS, "sigmoid", "tanh", "relu", "leaky_relu", "selu")
_MODES = ("fan_in", "fan_out")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for ``nonlinearity`` (``param``: leaky_relu's negative slope).

    linear / conv* / sigmoid: 1, tanh: 5/3, relu: sqrt(2),
    leaky_relu: sqrt(2 / (1 + negative_slope**2)) (slope 0.01 by default), selu: 3/4.
    """
    if nonlinearity in _LINEAR_FNS or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(
                f"calculate_gain(param): negative_slope {param!r} is not a valid number"
            )
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(
        f"calculate_gain(nonlinearity): unsupported nonlinearity {nonlinearity!r}; "
        f"expected one of {list(_NONLINEARITIES)}"
    )


def _check_tensor(tensor, fn: str) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{fn}(tensor) expects a minicnn Tensor, got {type(tensor).__name__}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight.

    Linear weight ``(out, in)``: (in, out). Conv weight ``(out, in/groups, kh, kw)``:
    (in/groups * kh * kw, out * kh * kw) -- every output sees ``in/groups * kh * kw`` inputs.
    """
    if tensor.ndim < 2:
        raise ValueError(
            f"fan in and fan out can not be computed for a tensor with fewer than 2 dimensions, "
            f"got shape {tensor.shape}"
        )
    receptive_field = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower() if isinstance(mode, str) else mode
    if mode not in _MODES:
        raise ValueError(f"mode {mode!r} not supported, please use one of {list(_MODES)}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _fill(tensor: Tensor, values: np.ndarray) -> Tensor:
    """Copy CPU ``values`` into ``tensor.array`` (casting to its dtype, moving to its device)."""
    with no_grad():
        values = np.asarray(values).astype(tensor.dtype, copy=False)
        tensor.array[...] = to_device(values, tensor.device)
    tensor._bump_version()
    return tensor


_DRAW_CHUNK = 1 << 20  # samples per draw when filling a big tensor


def _fill_drawn(tensor: Tensor, draw) -> Tensor:
    """Fill ``tensor`` with ``draw(k)`` (float64 samples, k at a time, in order).

    The generator hands out the same sequence however it is cut, so the values equal one
    draw of the whole tensor; drawing in pieces straight into a CPU tensor skips the
    float64 copy of it (800 MB for VGG's first classifier layer, 4x slower to build).
    """
    n = tensor.numel()
    if tensor.device != "cpu" or not tensor.array.flags.c_contiguous:
        return _fill(tensor, draw(n).reshape(tensor.shape))
    flat = tensor.array.reshape(-1)
    with no_grad():
        for start in range(0, n, _DRAW_CHUNK):
            flat[start:start + _DRAW_CHUNK] = draw(min(_DRAW_CHUNK, n - start))
    tensor._bump_version()
    return tensor


def _gen(generator: np.random.Generator | None) -> np.random.Generator:
    return _random.generator() if generator is None else generator


def _no_op_if_empty(tensor: Tensor) -> bool:
    if tensor.numel() == 0:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return True
    return False


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0,
             generator: np.random.Generator | None = None) -> Tensor:
    """Fill with samples of U(a, b)."""
    _check_tensor(tensor, "uniform_")
    gen = _gen(generator)
    return _fill_drawn(tensor, lambda k: gen.uniform(a, b, size=k))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0,
            generator: np.random.Generator | None = None) -> Tensor:
    """Fill with samples of N(mean, std**2)."""
    _check_tensor(tensor, "normal_")
    gen = _gen(generator)
    return _fill_drawn(tensor, lambda k: gen.normal(mean, std, size=k))


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator: np.random.Generator | None = None) -> Tensor:
    """Fill with N(mean, std**2) samples conditioned on lying in ``[a, b]`` (absolute bounds).

    Rejection sampling: draw normals and redraw the ones that fall outside ``[a, b]``.
    """
    _check_tensor(tensor, "trunc_normal_")
    if not a < b:
        raise ValueError(f"trunc_normal_: expected a < b, got a={a}, b={b}")
    if std <= 0:
        raise ValueError(f"trunc_normal_: std must be positive, got {std}")

    def cdf(x: float) -> float:
        return 0.5 * (1.0 + math.erf((x - mean) / (std * math.sqrt(2.0))))

    accept = cdf(b) - cdf(a)
    if accept < 1e-4:
        raise ValueError(
            f"trunc_normal_: [a, b] = [{a}, {b}] holds only {accept:.2e} of N({mean}, {std}**2); "
            f"expected bounds near the mean"
        )
    gen = _gen(generator)
    n = tensor.numel()
    out = np.empty(0)
    while out.size < n:
        need = n - out.size
        draw = gen.normal(mean, std, size=int(need / accept * 1.1) + 16)
        out = np.concatenate([out, draw[(draw >= a) & (draw <= b)][:need]])
    return _fill(tensor, out.reshape(tensor.shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with the value ``val``."""
    _check_tensor(tensor, "constant_")
    with no_grad():
        tensor.array[...] = val
    tensor._bump_version()
    return tensor


def ones_(tensor: Tensor) -> Tensor:
    """Fill with ones."""
    return constant_(tensor, 1.0)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with zeros."""
    return constant_(tensor, 0.0)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity matrix (ones on the diagonal)."""
    _check_tensor(tensor, "eye_")
    if tensor.ndim != 2:
        raise ValueError(f"eye_ only supports 2-D tensors, got shape {tensor.shape}")
    return _fill(tensor, np.eye(*tensor.shape))


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """Fill a conv weight ``(out, in, *k)`` so the convolution is the identity (per group):
    a 1 at the kernel centre linking output channel ``d`` to input channel ``d``."""
    _check_tensor(tensor, "dirac_")
    if tensor.ndim not in (3, 4, 5):
        raise ValueError(f"dirac_ only supports 3, 4 or 5-D tensors, got shape {tensor.shape}")
    if tensor.shape[0] % groups != 0:
        raise ValueError(f"dirac_: dim 0 ({tensor.shape[0]}) must be divisible by groups={groups}")
    out_per_group = tensor.shape[0] // groups
    values = np.zeros(tensor.shape)
    centre = tuple(k // 2 for k in tensor.shape[2:])
    for g in range(groups):
        for d in range(min(out_per_group, tensor.shape[1])):
            values[(g * out_per_group + d, d, *centre)] = 1
    return _fill(tensor, values)


def orthogonal_(tensor: Tensor, gain: float = 1.0,
                generator: np.random.Generator | None = None) -> Tensor:
    """Fill with a (semi-)orthogonal matrix times ``gain``; dims after the first are flattened.

    QR-decompose a Gaussian matrix and fix the signs so Q is uniformly distributed.
    """
    _check_tensor(tensor, "orthogonal_")
    if tensor.ndim < 2:
        raise ValueError(
            f"orthogonal_ only supports tensors with 2 or more dimensions, got shape {tensor.shape}"
        )
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = _gen(generator).standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, gain * q.reshape(tensor.shape))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0,
                    generator: np.random.Generator | None = None) -> Tensor:
    """Glorot uniform: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    _check_tensor(tensor, "xavier_uniform_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0,
                   generator: np.random.Generator | None = None) -> Tensor:
    """Glorot normal: N(0, std**2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    _check_tensor(tensor, "xavier_normal_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu",
                     generator: np.random.Generator | None = None) -> Tensor:
    """He uniform: U(-b, b), b = sqrt(3) * gain / sqrt(fan), gain = calculate_gain(nonlinearity, a).

    ``mode="fan_in"`` keeps the forward activations' variance, ``"fan_out"`` the gradients'.
    """
    _check_tensor(tensor, "kaiming_uniform_")
    if _no_op_if_empty(tensor):
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu",
                    generator: np.random.Generator | None = None) -> Tensor:
    """He normal: N(0, std**2), std = gain / sqrt(fan), gain = calculate_gain(nonlinearity, a)."""
    _check_tensor(tensor, "kaiming_normal_")
    if _no_op_if_empty(tensor):
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator)


def default_init_(weight: Tensor, bias: Tensor | None = None) -> None:
    """PyTorch's default initialisation of ``Linear`` and ``Conv*d``: ``weight`` by
    ``kaiming_uniform_(a=sqrt(5))``, i.e. uniform(+-1/sqrt(fan_in)), and ``bias`` uniform in
    (+-1/sqrt(fan_in)) too (zeros when fan_in is 0)."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = _calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        uniform_(bias, -bound, bound)
