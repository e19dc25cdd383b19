"""The foundation kernels on every backend: index_add, pad, pad_backward, softmax and
log_softmax (with their backwards).

Each backend must give the reference (numpy) result on several shapes, dtypes and
non-contiguous inputs; the reference is checked against numpy.pad / np.add.at and PyTorch.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from minicnn.backend import get_backend, reference, to_device
from tests.helpers import tol

# every test twice: Numba's prange kernels serial and threaded (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("numba_builds")

DTYPES = [np.float32, np.float64]


@pytest.fixture
def kernels(backend):
    """The ``backend`` fixture's Backend, and a function moving a NumPy array onto its device."""
    b = get_backend(backend)
    return b, (lambda a: b.xp.asarray(a)) if b.device == "cuda" else (lambda a: a)


def _cpu(a):
    return to_device(a, "cpu")


def _layout(a: np.ndarray, layout: str) -> np.ndarray:
    """``a``'s values in a non-contiguous array (transposed buffer or every other element)."""
    if layout == "contiguous" or a.ndim == 0:
        return a
    if layout == "transposed":
        out = np.empty(a.shape[::-1], dtype=a.dtype).T
    else:
        out = np.empty(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)[..., ::2]
    out[...] = a
    return out


# ---------------------------------------------------------------- index_add

INDEX_CASES = [
    ((5,), np.array([0, 0, 4, 0])),  # repeats on a 1-D target
    ((5, 3), np.array([1, 1, 1, 2])),  # rows, repeated
    ((5, 3), np.array([-1, 0, -1, -5])),  # negative indices
    ((4, 2, 3), np.array([3, 0, 3])),  # 3-D target, rows are (2, 3) blocks
    ((5, 3), np.array([], dtype=np.int64)),  # nothing to add
    ((0, 3), np.array([], dtype=np.int64)),
    ((5, 3), np.array([2, 2], dtype=np.int32)),  # int32 indices
    ((5, 3), (np.array([0, 0, 4]), np.array([1, 1, 2]))),  # a tuple of arrays: single elements
    ((5, 3), (slice(None), np.array([2, 2, 0]))),  # columns
    ((6, 3), np.array([[0, 1], [1, 5]])),  # a 2-D index array
]


def _values_for(target_shape, index, dtype, rng):
    shape = np.zeros(target_shape)[index].shape
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(len(INDEX_CASES)))
def test_index_add_matches_np_add_at(kernels, case, dtype):
    backend, dev = kernels
    shape, index = INDEX_CASES[case]
    rng = np.random.default_rng(case)
    values = _values_for(shape, index, dtype, rng)
    start = rng.standard_normal(shape).astype(dtype)
    expected = start.copy()
    np.add.at(expected, index, values)
    target = dev(start.copy())
    dev_index = (
        tuple(dev(k) if isinstance(k, np.ndarray) else k for k in index)
        if isinstance(index, tuple)
        else dev(index)
    )
    backend.index_add(target, dev_index, dev(values))
    np.testing.assert_allclose(_cpu(target), expected, **tol(dtype))


@pytest.mark.parametrize("layout", ["transposed", "strided"])
def test_index_add_non_contiguous_target_and_values(kernels, layout):
    """The target is written in place whatever its layout; values may be non-contiguous too."""
    backend, dev = kernels
    rng = np.random.default_rng(3)
    index = np.array([0, 3, 3, 1, 3])
    start = rng.standard_normal((4, 6)).astype(np.float32)
    values = _layout(rng.standard_normal((5, 6)).astype(np.float32), layout)
    expected = start.copy()
    np.add.at(expected, index, values)
    if backend.device == "cpu":
        target = _layout(start, layout)
        backend.index_add(target, index, values)
        np.testing.assert_allclose(target, expected, **tol(np.float32))
    target = dev(start.copy())
    backend.index_add(target, dev(index), dev(values))
    np.testing.assert_allclose(_cpu(target), expected, **tol(np.float32))


def test_index_add_broadcast_values_and_mixed_dtypes(kernels):
    backend, dev = kernels
    index = np.array([1, 1, 0])
    target = dev(np.zeros((3, 4), dtype=np.float32))
    backend.index_add(target, dev(index), dev(np.arange(4.0)))  # one row for every index, float64
    expected = np.zeros((3, 4), dtype=np.float32)
    np.add.at(expected, index, np.arange(4.0))
    np.testing.assert_array_equal(_cpu(target), expected)
    assert target.dtype == np.float32


def test_index_add_out_of_range_is_an_index_error(kernels):
    backend, dev = kernels
    if backend.device == "cuda":
        pytest.skip("cupyx.scatter_add does not check bounds")
    for bad in (np.array([0, 5]), np.array([-6])):
        with pytest.raises(IndexError):
            backend.index_add(np.zeros((5, 2)), bad, np.ones((bad.size, 2)))


def test_index_add_many_rows_agrees_with_reference(kernels):
    backend, dev = kernels
    rng = np.random.default_rng(4)
    index = rng.integers(-100, 100, size=2000)
    values = rng.standard_normal((2000, 16))
    expected = np.zeros((100, 16))
    reference.index_add(expected, index, values)
    target = dev(np.zeros((100, 16)))
    backend.index_add(target, dev(index), dev(values))
    np.testing.assert_allclose(_cpu(target), expected, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- pad

NUMPY_MODE = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
PAD_CASES = [
    ((5,), ((2, 3),)),
    ((3, 4), ((1, 2), (0, 3))),
    ((2, 3, 4, 5), ((0, 0), (0, 0), (1, 1), (2, 0))),
    ((2, 3, 4), ((0, 0), (1, 0), (0, 2))),
    ((4, 3), ((6, 9), (2, 2))),  # wider than the axis: reflect bounces back and forth
    ((3, 4), ((0, 0), (0, 0))),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", sorted(NUMPY_MODE))
@pytest.mark.parametrize("case", range(len(PAD_CASES)))
def test_pad_matches_numpy_pad(kernels, case, mode, dtype):
    backend, dev = kernels
    shape, width = PAD_CASES[case]
    rng = np.random.default_rng(case)
    for layout in ("contiguous", "transposed", "strided"):
        x = _layout(rng.standard_normal(shape).astype(dtype), layout)
        kwargs = {"constant_values": 1.5} if mode == "constant" else {}
        expected = np.pad(x, width, mode=NUMPY_MODE[mode], **kwargs)
        value = {"value": 1.5} if mode == "constant" else {}
        got = backend.pad(dev(x), width, mode, **value)
        assert got.dtype == dtype
        np.testing.assert_array_equal(_cpu(got), expected, err_msg=f"{mode} {layout}")


def test_pad_rejects_unknown_modes(kernels):
    backend, dev = kernels
    with pytest.raises(ValueError, match="pad mode must be .*got 'mirror'"):
        backend.pad(dev(np.zeros(3)), ((1, 1),), "mirror")


# pad_backward against torch: F.pad pads the last dims, (left, right, top, bottom, ...)
TORCH_PAD_CASES = [
    ((2, 3, 6), (2, 3)),
    ((2, 3, 4, 5), (1, 2, 3, 1)),
    ((1, 2, 3, 4, 5), (1, 1, 0, 2, 2, 1)),
    ((2, 3, 4, 5), (0, 0, 0, 0)),
]


def _numpy_width(ndim, torch_pad):
    width = [(0, 0)] * ndim
    for k in range(len(torch_pad) // 2):
        width[ndim - 1 - k] = (torch_pad[2 * k], torch_pad[2 * k + 1])
    return tuple(width)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("case", range(len(TORCH_PAD_CASES)))
def test_pad_and_pad_backward_match_torch(kernels, case, mode, dtype):
    backend, dev = kernels
    shape, torch_pad = TORCH_PAD_CASES[case]
    rng = np.random.default_rng(case + 10)
    x = rng.standard_normal(shape).astype(dtype)
    width = _numpy_width(len(shape), torch_pad)
    t = torch.tensor(x, requires_grad=True)
    out = F.pad(t, torch_pad, mode=mode)
    grad = _layout(rng.standard_normal(tuple(out.shape)).astype(dtype), "transposed")
    out.backward(torch.tensor(np.ascontiguousarray(grad)))
    np.testing.assert_allclose(
        _cpu(backend.pad(dev(x), width, mode)), out.detach().numpy(), **tol(dtype)
    )
    got = backend.pad_backward(dev(grad), shape, width, mode)
    assert got.shape == shape and got.dtype == dtype
    np.testing.assert_allclose(_cpu(got), t.grad.numpy(), **tol(dtype))


# ---------------------------------------------------------------- softmax family

SOFTMAX_CASES = [
    ((5,), 0),
    ((4, 7), -1),
    ((4, 7), 1),
    ((4, 7), 0),
    ((2, 3, 5), 1),
    ((2, 3, 5), 2),
    ((3, 1), 1),
    ((6, 300), -1),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("case", range(len(SOFTMAX_CASES)))
def test_softmax_family_matches_reference_and_torch(kernels, case, fn, dtype):
    backend, dev = kernels
    shape, axis = SOFTMAX_CASES[case]
    rng = np.random.default_rng(case)
    torch_fn = getattr(torch, fn)
    for layout in ("contiguous", "transposed", "strided"):
        x = _layout((rng.standard_normal(shape) * 4).astype(dtype), layout)
        ref = getattr(reference, fn)(x, axis)
        got = getattr(backend, fn)(dev(x), axis)
        assert got.dtype == dtype and got.shape == shape
        np.testing.assert_allclose(_cpu(got), ref, **tol(dtype), err_msg=layout)
        t = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
        out = torch_fn(t, axis)
        np.testing.assert_allclose(ref, out.detach().numpy(), **tol(dtype))
        grad = _layout(rng.standard_normal(shape).astype(dtype), layout)
        out.backward(torch.tensor(np.ascontiguousarray(grad)))
        back = getattr(backend, fn + "_backward")(dev(grad), got, axis)
        assert back.dtype == dtype
        np.testing.assert_allclose(_cpu(back), t.grad.numpy(), **tol(dtype), err_msg=layout)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_family_extreme_rows(kernels, fn, dtype):
    """Huge logits, -inf entries (masking) and a constant row; all agree with torch."""
    backend, dev = kernels
    x = np.array([[1000.0, 0.0, -1000.0], [-np.inf, 2.0, 1.0], [7.0, 7.0, 7.0]], dtype=dtype)
    got = _cpu(getattr(backend, fn)(dev(x), -1))
    expected = getattr(torch, fn)(torch.tensor(x), -1).numpy()
    np.testing.assert_allclose(got, expected, **tol(dtype))
    assert np.isfinite(got[0]).all() or fn == "log_softmax"


def test_softmax_family_empty_and_integer_like_shapes(kernels):
    backend, dev = kernels
    for fn in ("softmax", "log_softmax"):
        got = getattr(backend, fn)(dev(np.zeros((0, 4), dtype=np.float32)), -1)
        assert got.shape == (0, 4)


# ---------------------------------------------------------------- where (select)

BIG = (64, 33, 40)  # 84,480 elements: above the Numba kernel's size threshold


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided"])
@pytest.mark.parametrize("operands", ["arrays", "python-scalar", "same-dtype-scalar",
                                      "wider-scalar", "scalar-first", "zero-d-array"])
@pytest.mark.parametrize("shape", [BIG, (3, 4)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_where_matches_numpy(kernels, dtype, shape, operands, layout):
    """Values and dtype of np.where (NumPy's promotion included), on a random mask."""
    b, on = kernels
    rng = np.random.default_rng(0)
    x = _layout(rng.standard_normal(shape).astype(dtype), layout)
    y = rng.standard_normal(shape).astype(dtype)
    a, other = {
        "arrays": (x, y),
        "python-scalar": (x, 0.25),
        "same-dtype-scalar": (x, np.dtype(dtype).type(0.25)),
        "wider-scalar": (x, np.float64(0.25)),
        "scalar-first": (-1.5, x),
        "zero-d-array": (x, np.zeros((), dtype)),
    }[operands]
    cond = x > 0
    expected = np.where(cond, a, other)
    got = b.where(on(cond), on(a) if np.ndim(a) else a, on(other) if np.ndim(other) else other)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(_cpu(got), expected)


def test_where_broadcasts_and_takes_non_bool_conditions(kernels):
    b, on = kernels
    rng = np.random.default_rng(1)
    x = rng.standard_normal(BIG).astype(np.float32)
    row = rng.standard_normal(BIG[-1]).astype(np.float32)
    np.testing.assert_array_equal(_cpu(b.where(on(x > 0), on(x), on(row))),
                                  np.where(x > 0, x, row))
    np.testing.assert_array_equal(_cpu(b.where(on((x > 0).astype(np.float32)), on(x), 0.0)),
                                  np.where((x > 0).astype(np.float32), x, 0.0))


# ---------------------------------------------------------------- relu


@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
@pytest.mark.parametrize("shape", [BIG, (3, 4)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_and_its_gradient_match_torch(kernels, dtype, shape, layout):
    """relu and relu_backward (from the output) against torch.relu, with NaN, -inf, zeros."""
    b, on = kernels
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(dtype)
    x.reshape(-1)[:4] = [np.nan, -np.inf, 0.0, -0.0]
    x = _layout(x, layout)
    t = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
    expected = torch.relu(t)
    grad = rng.standard_normal(shape).astype(dtype)
    expected.backward(torch.tensor(grad))
    out = b.relu(on(x))
    assert out.dtype == dtype
    np.testing.assert_array_equal(_cpu(out), expected.detach().numpy())
    dx = b.relu_backward(on(grad), out)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(_cpu(dx), t.grad.numpy())
