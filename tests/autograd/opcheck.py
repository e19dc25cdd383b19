"""Run one op in minicnn and in PyTorch on the same data; compare forward and backward.

``check(m_fn, t_fn, arrays)`` builds a minicnn leaf and a torch leaf from each array,
runs both functions, compares every output (shape, dtype, values), then backpropagates
the same random output gradient through both and compares every input's gradient.
Arrays keep their memory layout on the minicnn side, so a transposed or strided array
tests the op on non-contiguous data.
"""

from __future__ import annotations

import numpy as np
import torch

import minicnn
from minicnn.backend import to_device
from tests.helpers import tol

LAYOUTS = ("contiguous", "transposed", "strided")


def make_array(shape, dtype, low=-2.0, high=2.0, layout="contiguous", rng=None) -> np.ndarray:
    """Uniform values in [low, high) of ``shape``; ``layout`` "transposed" or "strided" gives
    a non-contiguous array (a transposed buffer, or every other element of the last axis)."""
    rng = rng if rng is not None else np.random.default_rng(0)
    values = rng.uniform(low, high, size=shape).astype(dtype)
    if layout == "contiguous" or len(shape) == 0:
        return values
    if layout == "transposed":
        arr = np.empty(shape[::-1], dtype=dtype).T
    elif layout == "strided":
        arr = np.empty(tuple(shape[:-1]) + (2 * shape[-1],), dtype=dtype)[..., ::2]
    else:
        raise ValueError(layout)
    arr[...] = values
    return arr


def torch_dtype_to_numpy(dtype: torch.dtype) -> np.dtype:
    return torch.empty(0, dtype=dtype).numpy().dtype


def _leaf(arr, device, requires_grad):
    if isinstance(arr, np.ndarray):
        t = minicnn.from_numpy(arr) if device == "cpu" else minicnn.tensor(arr, device=device)
    else:
        t = minicnn.tensor(arr, device=device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _outputs(out) -> list:
    if isinstance(out, (tuple, list)):  # tuples, lists, (values, indices) named tuples
        return list(out)
    return [out]


def check(
    m_fn,
    t_fn,
    arrays,
    *,
    grad=None,
    device: str = "cpu",
    rtol: float | None = None,
    atol: float | None = None,
    seed: int = 1,
):
    """Compare ``m_fn(*minicnn_leaves)`` with ``t_fn(*torch_leaves)``, forward and backward.

    ``grad``: which arrays require grad (default: every floating-point one).
    Returns the minicnn outputs and inputs for further checks.
    """
    arrays = list(arrays)
    if grad is None:
        grad = [np.asarray(a).dtype.kind == "f" for a in arrays]
    m_in = [_leaf(a, device, g) for a, g in zip(arrays, grad, strict=True)]
    t_in = [
        torch.tensor(np.array(a), requires_grad=bool(g)) for a, g in zip(arrays, grad, strict=True)
    ]
    m_out, t_out = _outputs(m_fn(*m_in)), _outputs(t_fn(*t_in))
    assert len(m_out) == len(t_out), f"{len(m_out)} outputs, torch gives {len(t_out)}"
    rng = np.random.default_rng(seed)
    m_roots, m_grads, t_roots, t_grads = [], [], [], []
    for k, (m, t) in enumerate(zip(m_out, t_out, strict=True)):
        assert isinstance(m, minicnn.Tensor), f"output {k} is a {type(m).__name__}"
        assert m.shape == tuple(t.shape), f"output {k}: shape {m.shape}, torch {tuple(t.shape)}"
        expected_dtype = torch_dtype_to_numpy(t.dtype)
        assert m.dtype == expected_dtype, f"output {k}: dtype {m.dtype}, torch {expected_dtype}"
        d = tol(m.dtype) if m.dtype.kind == "f" else {"rtol": 0, "atol": 0}
        np.testing.assert_allclose(
            to_device(m.array, "cpu"),
            t.detach().numpy(),
            rtol=d["rtol"] if rtol is None else rtol,
            atol=d["atol"] if atol is None else atol,
            err_msg=f"forward output {k}",
        )
        assert m.requires_grad == t.requires_grad, f"output {k}: requires_grad {m.requires_grad}"
        if t.requires_grad:
            w = rng.standard_normal(m.shape).astype(m.dtype)
            m_roots.append(m)
            m_grads.append(minicnn.tensor(w, device=device))
            t_roots.append(t)
            t_grads.append(torch.tensor(w))
    if not t_roots:
        return m_out, m_in
    for j, (m, g) in enumerate(zip(m_roots, m_grads, strict=True)):
        m.backward(g, retain_graph=j < len(m_roots) - 1)
    torch.autograd.backward(t_roots, t_grads)
    for i, (m, t) in enumerate(zip(m_in, t_in, strict=True)):
        if not grad[i]:
            continue
        if t.grad is None:
            assert m.grad is None or not np.any(to_device(m.grad.array, "cpu")), f"input {i}"
            continue
        assert m.grad is not None, f"input {i}: no gradient, torch has one"
        assert m.grad.shape == m.shape, f"input {i}: grad shape {m.grad.shape}, expected {m.shape}"
        assert m.grad.dtype == m.dtype, f"input {i}: grad dtype {m.grad.dtype}, expected {m.dtype}"
        d = tol(m.dtype)
        np.testing.assert_allclose(
            to_device(m.grad.array, "cpu"),
            t.grad.numpy(),
            rtol=d["rtol"] if rtol is None else rtol,
            atol=d["atol"] if atol is None else atol,
            err_msg=f"gradient of input {i}",
        )
    return m_out, m_in


def gradcheck_op(m_fn, arrays, grad=None, **kwargs) -> None:
    """``minicnn.gradcheck`` of ``m_fn`` on float64 copies of ``arrays`` (keeping their layout)."""
    inputs = []
    for k, a in enumerate(arrays):
        needs = (np.asarray(a).dtype.kind == "f") if grad is None else grad[k]
        if needs:
            a64 = np.empty_like(a, dtype=np.float64)  # same strides as a
            a64[...] = a
            inputs.append(minicnn.from_numpy(a64).requires_grad_(True))
        else:
            inputs.append(minicnn.tensor(a))
    assert minicnn.gradcheck(m_fn, inputs, **kwargs)
