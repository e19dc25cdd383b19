"""Winograd F(2x2, 3x3) transform kernels: the reference against the definitions, every
backend against the reference, and each adjoint against its transform.

* the filter transform equals ``G g G^T`` written out as matrix products;
* the input transform equals ``B^T d B`` on the 4x4 tiles, cut by hand from the padded
  input; the output transform equals ``A^T M A`` laid out as 2x2 tiles and cropped;
* the adjoint identity ``<T(a), b> = <a, T*(b)>`` for the three transforms;
* numba and cupy against the reference: float32 and float64, odd sizes (half tiles),
  asymmetric padding, strided inputs.
"""

from __future__ import annotations

import numpy as np
import pytest

from minicnn.backend import get_backend, reference, to_device
from tests.conftest import AVAILABLE_BACKENDS
from tests.helpers import assert_close

# every test twice: Numba's prange kernels serial and threaded (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("numba_builds")

FAST_BACKENDS = [b for b in AVAILABLE_BACKENDS if b != "numpy"]
BT = np.array(reference.WINOGRAD_BT, dtype=np.float64)
G = np.array(reference.WINOGRAD_G, dtype=np.float64)
AT = np.array(reference.WINOGRAD_AT, dtype=np.float64)

# (x shape, ((top, bottom), (left, right))): the output is (H + t + b - 2, W + l + r - 2)
GEOMETRIES = {
    "pad1-even": ((2, 3, 6, 8), ((1, 1), (1, 1))),
    "pad1-odd": ((2, 2, 7, 5), ((1, 1), (1, 1))),
    "no-pad": ((1, 3, 5, 6), ((0, 0), (0, 0))),
    "asymmetric": ((2, 2, 4, 5), ((0, 2), (2, 1))),
    "one-pixel-out": ((3, 2, 3, 3), ((0, 0), (0, 0))),
}


def _out_hw(x_shape, pads):
    return (x_shape[2] + sum(pads[0]) - 2, x_shape[3] + sum(pads[1]) - 2)


def _rand(shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _on(backend_name, a):
    return to_device(a, "cuda" if backend_name == "cupy" else "cpu")


def _cpu(a):
    return to_device(a, "cpu")


# ---------------------------------------------------------------- the reference vs the math


def test_filter_transform_is_g_g_gt():
    w = _rand((3, 2, 3, 3))
    u = reference.winograd_filter_transform(w)
    for o in range(3):
        for c in range(2):
            assert_close(u[:, o, c].reshape(4, 4), G @ w[o, c] @ G.T, np.float64)


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
def test_input_transform_is_bt_d_b(geometry):
    x_shape, pads = GEOMETRIES[geometry]
    out_hw = _out_hw(x_shape, pads)
    x = _rand(x_shape)
    v = reference.winograd_input_transform(x, pads, out_hw)
    th, tw = reference.winograd_tiles(out_hw)
    n, c = x_shape[:2]
    canvas = np.zeros((n, c, 2 * th + 2, 2 * tw + 2))
    (pt, _), (pl, _) = pads
    canvas[:, :, pt:pt + x_shape[2], pl:pl + x_shape[3]] = x
    assert v.shape == (16, c, n * th * tw)
    for ni in range(n):
        for ty in range(th):
            for tx in range(tw):
                t = (ni * th + ty) * tw + tx
                for ci in range(c):
                    d = canvas[ni, ci, 2 * ty:2 * ty + 4, 2 * tx:2 * tx + 4]
                    assert_close(v[:, ci, t].reshape(4, 4), BT @ d @ BT.T, np.float64)


@pytest.mark.parametrize("out_hw", [(4, 6), (5, 3), (1, 1)])
def test_output_transform_is_at_m_a(out_hw):
    n, k = 2, 3
    th, tw = reference.winograd_tiles(out_hw)
    m = _rand((16, k, n * th * tw))
    y = reference.winograd_output_transform(m, n, out_hw)
    assert y.shape == (n, k, *out_hw)
    full = np.zeros((n, k, 2 * th, 2 * tw))
    for ni in range(n):
        for ty in range(th):
            for tx in range(tw):
                t = (ni * th + ty) * tw + tx
                for ki in range(k):
                    full[ni, ki, 2 * ty:2 * ty + 2, 2 * tx:2 * tx + 2] = (
                        AT @ m[:, ki, t].reshape(4, 4) @ AT.T)
    assert_close(y, full[:, :, :out_hw[0], :out_hw[1]], np.float64)


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
def test_adjoints(geometry):
    """<T(a), b> == <a, T*(b)> for the input, output and filter transforms."""
    x_shape, pads = GEOMETRIES[geometry]
    out_hw = _out_hw(x_shape, pads)
    x = _rand(x_shape, seed=1)
    v = reference.winograd_input_transform(x, pads, out_hw)
    dv = _rand(v.shape, seed=2)
    dx = reference.winograd_input_transform_backward(dv, x_shape, pads, out_hw)
    assert np.isclose(np.vdot(v, dv), np.vdot(x, dx), rtol=1e-12)

    m = _rand((16, 3, v.shape[2]), seed=3)
    y = reference.winograd_output_transform(m, x_shape[0], out_hw)
    dy = _rand(y.shape, seed=4)
    dm = reference.winograd_output_transform_backward(dy)
    assert np.isclose(np.vdot(y, dy), np.vdot(m, dm), rtol=1e-12)

    w = _rand((3, x_shape[1], 3, 3), seed=5)
    u = reference.winograd_filter_transform(w)
    du = _rand(u.shape, seed=6)
    dw = reference.winograd_filter_transform_backward(du)
    assert np.isclose(np.vdot(u, du), np.vdot(w, dw), rtol=1e-12)


# ---------------------------------------------------------------- every backend vs the reference


@pytest.mark.parametrize("backend_name", FAST_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
def test_backend_matches_reference(backend_name, dtype, geometry):
    be = get_backend(backend_name)
    x_shape, pads = GEOMETRIES[geometry]
    out_hw = _out_hw(x_shape, pads)
    x = _rand(x_shape, dtype, seed=7)
    v = reference.winograd_input_transform(x, pads, out_hw)
    assert_close(_cpu(be.winograd_input_transform(_on(backend_name, x), pads, out_hw)), v, dtype)
    strided = _rand(x_shape[:2] + x_shape[:1:-1], dtype, seed=8).transpose(0, 1, 3, 2)
    assert_close(_cpu(be.winograd_input_transform(_on(backend_name, strided), pads, out_hw)),
                 reference.winograd_input_transform(strided, pads, out_hw), dtype)
    out = np.empty(v.shape, dtype=dtype)  # the optional output buffer
    got = be.winograd_input_transform(_on(backend_name, x), pads, out_hw,
                                      out=_on(backend_name, out))
    assert_close(_cpu(got), v, dtype)

    dv = _rand(v.shape, dtype, seed=9)
    assert_close(_cpu(be.winograd_input_transform_backward(_on(backend_name, dv), x_shape, pads,
                                                           out_hw)),
                 reference.winograd_input_transform_backward(dv, x_shape, pads, out_hw), dtype)

    m = _rand((16, 5, v.shape[2]), dtype, seed=10)
    assert_close(_cpu(be.winograd_output_transform(_on(backend_name, m), x_shape[0], out_hw)),
                 reference.winograd_output_transform(m, x_shape[0], out_hw), dtype)

    dy = _rand((x_shape[0], 5, *out_hw), dtype, seed=11)
    assert_close(_cpu(be.winograd_output_transform_backward(_on(backend_name, dy))),
                 reference.winograd_output_transform_backward(dy), dtype)
