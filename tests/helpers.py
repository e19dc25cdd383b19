"""Helpers for the tests: comparing minicnn with PyTorch, and reading the command line's errors."""

from __future__ import annotations

import numpy as np
import torch

import minicnn

# Tolerances used across the suite, per dtype: (rtol, atol).
TOL = {
    np.dtype("float32"): (1e-4, 1e-5),
    np.dtype("float64"): (1e-10, 1e-12),
}


def tol(dtype) -> dict:
    rtol, atol = TOL[np.dtype(dtype)]
    return {"rtol": rtol, "atol": atol}


def to_numpy(x) -> np.ndarray:
    """A minicnn Tensor, torch tensor or array as a NumPy array (on the CPU)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, minicnn.Tensor):
        return minicnn.backend.to_device(x.array, "cpu")
    return np.asarray(x)


def max_rel_err(actual, expected) -> float:
    """``max |actual - expected| / max(1, max |expected|)`` in float64: the error relative to
    the reference's scale (absolute below 1). Tensors, torch tensors or arrays of one shape."""
    a, e = to_numpy(actual).astype(np.float64), to_numpy(expected).astype(np.float64)
    assert a.shape == e.shape, f"shape {a.shape} != {e.shape}"
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - e)) / max(1.0, float(np.max(np.abs(e)))))


def pair(array: np.ndarray, requires_grad: bool = True, device: str = "cpu"):
    """The same data as a minicnn tensor and a torch tensor, both leaves."""
    m = minicnn.tensor(array.copy(), device=device, requires_grad=requires_grad)
    t = torch.tensor(array.copy(), requires_grad=requires_grad)
    return m, t


def assert_close(actual, expected, dtype=None, rtol=None, atol=None, msg="") -> None:
    """``np.testing.assert_allclose`` with the suite's per-dtype tolerances."""
    a, e = to_numpy(actual), to_numpy(expected)
    d = tol(dtype or (a.dtype if a.dtype.kind == "f" else np.float64))
    np.testing.assert_allclose(
        a,
        e,
        rtol=d["rtol"] if rtol is None else rtol,
        atol=d["atol"] if atol is None else atol,
        err_msg=msg,
    )


def cli_error(capsys) -> str:
    """The one error line ``minicnn.cli.main`` printed (and nothing that looks like a
    traceback), from pytest's ``capsys``."""
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("minicnn")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]
