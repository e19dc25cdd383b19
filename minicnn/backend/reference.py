"""Reference kernels: every kernel of minicnn, written once against the array module ``xp``.

These are the readable versions a student reads first, and the oracle the Numba and
CuPy kernels are tested against. Each takes and returns raw arrays (NumPy or CuPy):
no autograd here. A kernel finds its array module with ``array_module(x)``, so the
same code runs on CuPy arrays too.

The table ``KERNELS`` at the bottom is what the backend registry reads.
"""

from __future__ import annotations

from minicnn.backend.xp import array_module

# ---------------------------------------------------------------- scatter-add


def index_add(target, index, values) -> None:
    """In place: ``target[index] += values``, adding once per occurrence of a repeated index.

    Plain ``target[index] += values`` adds only once for a repeated index; this is the
    backward of indexing (``x[idx]``), where each use of an element must add its gradient.
    """
    xp = array_module(target)
    xp.add.at(target, index, values)


# ---------------------------------------------------------------- padding


def _pad_source_index(n_in: int, before: int, after: int, mode: str, xp):
    """For each output position along one axis, the input position it copies from."""
    pos = xp.arange(-before, n_in + after)
    if mode == "replicate":
        return xp.clip(pos, 0, n_in - 1)
    # reflect (mirror without repeating the edge): -1 -> 1, n -> n-2
    period = 2 * (n_in - 1)
    pos = xp.abs(pos) % period
    return xp.where(pos >= n_in, period - pos, pos)


def pad(x, pad_width: tuple[tuple[int, int], ...], mode: str = "constant", value: float = 0.0):
    """Pad ``x`` by ``pad_width`` ((before, after) per axis).

    ``mode``: "constant" fills with ``value``; "reflect" mirrors without the edge
    (``[1 2 3] -> 2 [1 2 3] 2``); "replicate" repeats the edge (``1 [1 2 3] 3``).
    """
    xp = array_module(x)
    if mode == "constant":
        return xp.pad(x, pad_width, mode="constant", constant_values=value)
    if mode in ("reflect", "replicate"):
        out = x
        for axis, (before, after) in enumerate(pad_width):
            if before or after:
                idx = _pad_source_index(x.shape[axis], before, after, mode, xp)
                out = xp.take(out, idx, axis=axis)
        return out
    raise ValueError(f"pad mode must be 'constant', 'reflect' or 'replicate', got {mode!r}")


def pad_backward(grad, x_shape: tuple[int, ...], pad_width, mode: str = "constant"):
    """Gradient of :func:`pad` with respect to its input: ``grad`` has the padded shape.

    Constant padding just crops. Reflect and replicate padding copied some input
    elements several times, so their gradients are summed back (scatter-add per axis).
    """
    xp = array_module(grad)
    if mode == "constant":
        crop = tuple(slice(b, b + n) for (b, _), n in zip(pad_width, x_shape))
        return grad[crop]
    out = grad
    for axis, (before, after) in enumerate(pad_width):
        if before or after:
            idx = _pad_source_index(x_shape[axis], before, after, mode, xp)
            shape = list(out.shape)
            shape[axis] = x_shape[axis]
            summed = xp.zeros(shape, dtype=grad.dtype)
            index_add(xp.moveaxis(summed, axis, 0), idx, xp.moveaxis(out, axis, 0))
            out = summed
    return out


# ---------------------------------------------------------------- softmax family


def log_softmax(x, axis: int):
    """``x - logsumexp(x, axis)``, computed stably by subtracting the maximum first."""
    xp = array_module(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def log_softmax_backward(grad, out, axis: int):
    """Gradient of ``out = log_softmax(x)``: ``grad - softmax(x) * sum(grad)``."""
    xp = array_module(grad)
    return grad - xp.exp(out) * grad.sum(axis=axis, keepdims=True)


def softmax(x, axis: int):
    """``exp(x) / sum(exp(x))`` along ``axis``, stable: the maximum is subtracted first."""
    xp = array_module(x)
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_backward(grad, out, axis: int):
    """Gradient of ``out = softmax(x)``: ``out * (grad - sum(grad * out))``."""
    return out * (grad - (grad * out).sum(axis=axis, keepdims=True))


KERNELS = {
    "index_add": index_add,
    "pad": pad,
    "pad_backward": pad_backward,
    "log_softmax": log_softmax,
    "log_softmax_backward": log_softmax_backward,
    "softmax": softmax,
    "softmax_backward": softmax_backward,
}
