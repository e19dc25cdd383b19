"""Indexing ``x[key]`` against PyTorch, forward and backward, on every backend.

Keys: ints (negative too), slices with steps, None, Ellipsis, integer arrays (with
repeats, whose gradients must add up: a scatter-add), boolean masks, and Tensors as
indices. The backward of advanced keys runs the backend's ``index_add`` kernel, so
these tests take the ``backend`` fixture.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minicnn
from tests.autograd.opcheck import check, gradcheck_op, make_array
from tests.conftest import device_of

DTYPES = [np.float32, np.float64]

I = np.array  # noqa: E741  (short for the index arrays below)

# name: (input shape, key); numpy arrays in keys become torch tensors for torch
KEYS = {
    "int": ((4, 3), 1),
    "int_negative": ((4, 3), -1),
    "two_ints": ((4, 3), (2, -2)),
    "int_to_0d": ((4,), 2),
    "slice": ((6, 3), slice(1, 4)),
    "slice_step": ((7, 3), slice(None, None, 2)),
    "slice_step_offset": ((7, 5), (slice(1, None, 3), slice(0, 5, 2))),
    "slice_negative_bounds": ((6, 3), slice(-4, -1)),
    "slice_empty": ((6, 3), slice(4, 2)),
    "none_front": ((3, 4), None),
    "none_middle": ((3, 4), (slice(None), None)),
    "ellipsis_last": ((2, 3, 4), (Ellipsis, 1)),
    "ellipsis_first": ((2, 3, 4), (0, Ellipsis)),
    "ellipsis_none": ((2, 3, 4), (Ellipsis, None)),
    "int_array": ((5, 3), I([4, 0, 2])),
    "int_array_repeats": ((5, 3), I([0, 0, 2, 0])),
    "int_list_repeats": ((5, 3), [1, 1, 1]),
    "int_array_negative": ((5, 3), I([-1, 0, -1, -5])),
    "int_array_2d": ((5, 3), I([[0, 1], [1, 4]])),
    "int_array_second_dim": ((3, 5), (slice(None), I([4, 4, 0]))),
    "int_arrays_paired": ((4, 5), (I([0, 1, 1, 3]), I([2, 2, 2, 0]))),
    "int_arrays_broadcast": ((4, 5), (I([[0], [3]]), I([1, 1, 4]))),
    "int_array_and_slice": ((4, 5), (I([3, 0, 3]), slice(1, 4))),
    "int_array_and_int": ((4, 5), (1, I([0, 0, 3]))),
    "int_array_ellipsis": ((2, 3, 4), (Ellipsis, I([0, 0, 3]))),
    "int_array_none": ((4, 3), (None, I([1, 1]))),
    "empty_int_array": ((4, 3), I([], dtype=np.int64)),
    "bool_mask_rows": ((4, 3), I([True, False, True, True])),
    "bool_mask_cols": ((4, 3), (slice(None), I([False, True, True]))),
    "bool_mask_full": (
        (3, 4),
        I([[True, False, True, False], [False, False, True, True], [True, True, True, False]]),
    ),
    "bool_mask_none_true": ((4, 3), I([False, False, False, False])),
    "bool_mask_with_int": ((3, 4), (1, I([True, False, True, True]))),
    "zero_d_empty_tuple": ((), ()),
    "zero_d_none": ((), None),
    "zero_d_ellipsis": ((), Ellipsis),
}


def _torch_key(key):
    if isinstance(key, tuple):
        return tuple(_torch_key(k) for k in key)
    if isinstance(key, np.ndarray):
        return torch.from_numpy(key)
    return key


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(KEYS))
def test_indexing_matches_torch(backend, name, dtype):
    shape, key = KEYS[name]
    tkey = _torch_key(key)
    check(
        lambda x: x[key], lambda x: x[tkey], [make_array(shape, dtype)], device=device_of(backend)
    )


@pytest.mark.parametrize("name", sorted(KEYS))
def test_indexing_non_contiguous_input_and_gradcheck(backend, name):
    shape, key = KEYS[name]
    tkey = _torch_key(key)
    device = device_of(backend)
    if len(shape) >= 2:
        for layout in ("transposed", "strided"):
            check(
                lambda x: x[key],
                lambda x: x[tkey],
                [make_array(shape, np.float32, layout=layout)],
                device=device,
            )
    if device == "cpu":
        gradcheck_op(lambda x: x[key], [make_array(shape, np.float64, layout="transposed")])


def test_tensors_as_indices(backend):
    device = device_of(backend)
    x = make_array((5, 3), np.float64)
    rows = np.array([3, 3, 0])
    mask = np.array([True, False, True, False, True])
    cases = [
        (lambda a: a[minicnn.tensor(rows, device=device)], lambda a: a[torch.from_numpy(rows)]),
        (lambda a: a[minicnn.tensor(mask, device=device)], lambda a: a[torch.from_numpy(mask)]),
        (lambda a: a[minicnn.tensor(2, device=device)], lambda a: a[torch.tensor(2)]),
        (
            lambda a: a[
                minicnn.tensor(rows, device=device), minicnn.tensor([0, 2, 2], device=device)
            ],
            lambda a: a[torch.from_numpy(rows), torch.tensor([0, 2, 2])],
        ),
        (lambda a: a[a[:, 0] > 0], lambda a: a[a[:, 0] > 0]),  # a mask computed from the data
        (lambda a: a[minicnn.argmax(a, 0)], lambda a: a[torch.argmax(a, 0)]),
    ]
    for m_fn, t_fn in cases:
        check(m_fn, t_fn, [x], device=device)


def test_negative_step_slice_reverses_the_gradient():
    """PyTorch has no negative steps; numpy's meaning: the gradient comes back reversed."""
    x = minicnn.tensor(make_array((5, 2), np.float64), requires_grad=True)
    y = x[::-2]
    np.testing.assert_array_equal(y.detach().numpy(), x.detach().numpy()[::-2])
    w = np.arange(6.0).reshape(3, 2)
    y.backward(w)
    expected = np.zeros((5, 2))
    expected[::-2] = w
    np.testing.assert_array_equal(x.grad.numpy(), expected)


def test_repeated_index_gradients_add_up_exactly(backend):
    device = device_of(backend)
    x = minicnn.zeros(3, 2, dtype=np.float64, device=device, requires_grad=True)
    idx = np.array([2, 0, 2, 2, -1])
    (x[idx] * minicnn.tensor(np.arange(10.0).reshape(5, 2), device=device)).sum().backward()
    expected = np.zeros((3, 2))
    np.add.at(expected, idx, np.arange(10.0).reshape(5, 2))
    np.testing.assert_array_equal(minicnn.backend.to_device(x.grad.array, "cpu"), expected)


def test_large_gather_and_scatter_match_torch(backend):
    """The embedding-style x[idx] with many repeats (the numba kernel's fast path)."""
    rng = np.random.default_rng(11)
    x = make_array((50, 8), np.float32, rng=rng)
    idx = rng.integers(-50, 50, size=400)
    check(
        lambda a: a[idx],
        lambda a: a[torch.from_numpy(idx)],
        [x],
        device=device_of(backend),
        rtol=1e-5,
        atol=1e-5,
    )  # up to ~16 float32 additions per row, in a different order


def test_index_result_is_in_the_graph_and_shares_the_source():
    x = minicnn.tensor(make_array((4, 3), np.float32), requires_grad=True)
    y = x[1:3]
    assert y.requires_grad and not y.is_leaf
    z = x[[0, 0]]
    assert z.requires_grad


def test_index_errors_name_the_shape():
    x = minicnn.ones(4, 3)
    with pytest.raises(IndexError, match=r"index 5 is invalid for a tensor of shape \(4, 3\)"):
        x[5]
    with pytest.raises(IndexError, match=r"shape \(4, 3\)"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match=r"shape \(4, 3\)"):
        x[np.array([True, False])]
    with pytest.raises(IndexError, match=r"shape \(4, 3\)"):
        x[[0, 7]]


def test_setitem_outside_the_graph():
    x = minicnn.zeros(3, 2)
    x[1] = 5.0
    x[minicnn.tensor([0, 0])] = minicnn.tensor([1.0, 2.0])
    np.testing.assert_array_equal(x.numpy(), [[1.0, 2.0], [5.0, 5.0], [0.0, 0.0]])
    w = minicnn.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad .* in-place"):
        w[0] = 1.0


def test_iterating_over_a_tensor():
    x = minicnn.tensor(make_array((3, 2), np.float64), requires_grad=True)
    rows = list(x)
    assert len(rows) == 3 and all(r.shape == (2,) for r in rows)
    sum(r * (i + 1) for i, r in enumerate(rows)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 1], [2, 2], [3, 3]])
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        list(minicnn.tensor(1.0))


def test_single_integer_array_reaches_the_kernel_bare(monkeypatch):
    """x[idx] hands ``idx`` itself (not a 1-tuple) to ``index_add``: the numba fast path."""
    backend = minicnn.backend.current_backend()
    seen = []
    original = backend.kernels["index_add"]

    def recording(target, index, values):
        seen.append(index)
        return original(target, index, values)

    monkeypatch.setitem(backend.kernels, "index_add", recording)
    x = minicnn.ones(4, 2, requires_grad=True)
    x[np.array([1, 1, 3])].sum().backward()
    x[np.array([True, False, True, False])].sum().backward()
    assert all(isinstance(k, np.ndarray) and k.ndim == 1 for k in seen) and len(seen) == 2
    np.testing.assert_array_equal(x.grad.numpy()[:, 0], [1, 2, 1, 1])
