"""Reductions and softmax against PyTorch: forward and backward, float32 and float64.

sum, mean, max/min (whole tensor, and along a dim with indices), amax/amin, var, std,
logsumexp, argmax/argmin, softmax, log_softmax; dims None/int/negative/tuple/empty,
keepdim, 0-d tensors, non-contiguous inputs; how ties and NaNs share the gradient.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minicnn
from minicnn.autograd import ops
from tests.autograd.opcheck import check, gradcheck_op, make_array

DTYPES = [np.float32, np.float64]

# (shape, dim) pairs; dim None reduces everything
CASES = [
    ((), None),
    ((), 0),
    ((), -1),
    ((5,), None),
    ((5,), 0),
    ((3, 4), None),
    ((3, 4), 0),
    ((3, 4), -1),
    ((3, 4), (0, 1)),
    ((2, 3, 4), 1),
    ((2, 3, 4), (0, 2)),
    ((2, 3, 4), (-1, 0)),
    ((2, 3, 4), ()),
]

# name: (minicnn fn(x, dim, keepdim), torch fn(x, dim, keepdim))
REDUCTIONS = {
    "sum": (lambda x, d, k: minicnn.sum(x, d, k), lambda x, d, k: torch.sum(x, d, k)),
    "sum_method": (
        lambda x, d, k: x.sum(dim=d, keepdim=k),
        lambda x, d, k: x.sum(dim=d, keepdim=k),
    ),
    "mean": (lambda x, d, k: minicnn.mean(x, d, k), lambda x, d, k: torch.mean(x, d, k)),
    "amax": (lambda x, d, k: ops.amax(x, d, k), lambda x, d, k: torch.amax(x, d, k)),
    "amin": (lambda x, d, k: x.amin(d, k), lambda x, d, k: x.amin(d, k)),
    "logsumexp": (
        lambda x, d, k: minicnn.logsumexp(x, d, k),
        lambda x, d, k: torch.logsumexp(x, d, k),
    ),
    "var": (
        lambda x, d, k: minicnn.var(x, d, keepdim=k),
        lambda x, d, k: torch.var(x, d, keepdim=k),
    ),
    "var_biased": (
        lambda x, d, k: x.var(d, unbiased=False, keepdim=k),
        lambda x, d, k: x.var(d, unbiased=False, keepdim=k),
    ),
    "var_correction2": (
        lambda x, d, k: x.var(d, keepdim=k, correction=2),
        lambda x, d, k: x.var(d, keepdim=k, correction=2),
    ),
    "std": (
        lambda x, d, k: minicnn.std(x, d, keepdim=k),
        lambda x, d, k: torch.std(x, d, keepdim=k),
    ),
    "std_correction0": (
        lambda x, d, k: x.std(d, keepdim=k, correction=0),
        lambda x, d, k: x.std(d, keepdim=k, correction=0),
    ),
}


def _torch_dim(name, dim):
    """The same dims for torch: amax/amin spell "all" as (), the others as None.

    ``dim=()`` means "all" in PyTorch too, but torch's var/std backward then divides by
    n = 1 (a PyTorch bug), so those compare against ``dim=None``.
    """
    if dim is None and name.startswith(("amax", "amin")):
        return ()
    if dim == () and name.startswith(("var", "std")):
        return None
    return list(dim) if isinstance(dim, tuple) else dim


def _reduced_count(shape, dim) -> int:
    if dim is None or dim == () or not shape:
        return int(np.prod(shape))
    return int(np.prod([shape[d] for d in ((dim,) if isinstance(dim, int) else dim)]))


def _comparable(name, shape, dim) -> bool:
    """Cases torch can be compared on: torch.logsumexp needs a dim (minicnn's "all" is tested
    below), and var/std with n - correction <= 0 give NaN/inf (tested separately)."""
    if name == "logsumexp" and (dim is None or dim == ()):
        return False
    if name.startswith(("var", "std")):
        return _reduced_count(shape, dim) > (2 if name == "var_correction2" else 1)
    return True


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "name,shape,dim",
    [(n, s, d) for n in sorted(REDUCTIONS) for s, d in CASES if _comparable(n, s, d)],
    ids=str,
)
def test_reduction_matches_torch(name, shape, dim, dtype, keepdim):
    m_fn, t_fn = REDUCTIONS[name]
    x = make_array(shape, dtype)
    td = _torch_dim(name, dim)
    check(lambda a: m_fn(a, dim, keepdim), lambda a: t_fn(a, td, keepdim), [x])


def test_logsumexp_over_all_dims():
    x = make_array((3, 4), np.float64)
    check(lambda a: minicnn.logsumexp(a, None), lambda a: torch.logsumexp(a, (0, 1)), [x])
    check(lambda a: minicnn.logsumexp(a, ()), lambda a: torch.logsumexp(a, (0, 1)), [x])


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reduction_non_contiguous_and_gradcheck(name):
    m_fn, t_fn = REDUCTIONS[name]
    for layout in ("transposed", "strided"):
        x = make_array((4, 3), np.float32, layout=layout)
        check(lambda a: m_fn(a, 0, False), lambda a: t_fn(a, 0, False), [x])
        check(lambda a: m_fn(a, (0, 1), True), lambda a: t_fn(a, [0, 1], True), [x])
    x64 = make_array((3, 4), np.float64, layout="transposed")
    gradcheck_op(lambda a: m_fn(a, 1, False), [x64])
    gradcheck_op(lambda a: m_fn(a, (0, 1), True), [x64])


# ---------------------------------------------------------------- max/min with dim, argmax


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape,dim", [((5,), 0), ((3, 4), 0), ((3, 4), -1), ((2, 3, 4), 1), ((), 0)], ids=str
)
@pytest.mark.parametrize("which", ["max", "min"])
def test_max_min_along_dim_give_values_and_indices(which, shape, dim, dtype, keepdim):
    x = make_array(shape, dtype)
    m_out, _ = check(
        lambda a: getattr(minicnn, which)(a, dim, keepdim),
        lambda a: getattr(torch, which)(a, dim, keepdim),
        [x],
    )
    values, indices = m_out
    assert indices.dtype == np.int64 and not indices.requires_grad
    named = getattr(minicnn, which)(minicnn.tensor(x), dim, keepdim)
    assert named.values.shape == named.indices.shape  # a (values, indices) named tuple


@pytest.mark.parametrize("which", ["max", "min"])
def test_max_min_whole_tensor(which):
    for shape in [(), (5,), (3, 4)]:
        for dtype in DTYPES:
            x = make_array(shape, dtype)
            check(getattr(minicnn, which), getattr(torch, which), [x])
            check(lambda a: getattr(a, which)(), lambda a: getattr(a, which)(), [x])
    gradcheck_op(getattr(minicnn, which), [make_array((3, 4), np.float64, layout="transposed")])
    gradcheck_op(lambda a: getattr(minicnn, which)(a, 1).values, [make_array((3, 4), np.float64)])


TIES = np.array([[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 5.0, -1.0], [0.0, -2.0, -2.0, 0.0]])


@pytest.mark.parametrize(
    "name,m_fn,t_fn",
    [
        ("max()", lambda a: a.max(), lambda a: a.max()),
        ("min()", lambda a: a.min(), lambda a: a.min()),
        ("amax()", lambda a: ops.amax(a), lambda a: torch.amax(a)),
        ("amax(dim)", lambda a: ops.amax(a, 1), lambda a: torch.amax(a, 1)),
        ("amin(dims)", lambda a: ops.amin(a, (0, 1), True), lambda a: torch.amin(a, (0, 1), True)),
        ("max(dim)", lambda a: a.max(1).values, lambda a: a.max(1).values),
        ("max(dim)indices", lambda a: a.max(1).indices.float() * a.sum(), None),
        ("min(dim)", lambda a: a.min(0)[0], lambda a: a.min(0)[0]),
    ],
)
def test_ties_share_the_gradient_like_torch(name, m_fn, t_fn):
    """Whole-tensor max/min and amax/amin split ties evenly; max(dim) gives all to the index."""
    if t_fn is None:  # indices of ties: the first occurrence, as PyTorch on the CPU
        np.testing.assert_array_equal(
            minicnn.tensor(TIES).max(1).indices.numpy(), torch.tensor(TIES).max(1).indices.numpy()
        )
        np.testing.assert_array_equal(
            minicnn.tensor(TIES).min(1).indices.numpy(), torch.tensor(TIES).min(1).indices.numpy()
        )
        return
    check(m_fn, t_fn, [TIES])
    check(m_fn, t_fn, [TIES.astype(np.float32)])


@pytest.mark.parametrize(
    "m_fn,t_fn",
    [
        (lambda a: a.max(), lambda a: a.max()),
        (lambda a: ops.amax(a), lambda a: torch.amax(a)),
        (lambda a: a.max(0).values, lambda a: a.max(0).values),
        (lambda a: ops.amin(a, 0), lambda a: torch.amin(a, 0)),
    ],
)
def test_nan_propagates_like_torch(m_fn, t_fn):
    x = np.array([np.nan, 1.0, np.nan, 3.0])
    m, t = minicnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    mo, to = m_fn(m), t_fn(t)
    mo.backward(np.ones(mo.shape))
    to.backward(torch.ones(to.shape, dtype=to.dtype))
    np.testing.assert_array_equal(mo.detach().numpy(), to.detach().numpy())
    np.testing.assert_array_equal(m.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("fn", ["argmax", "argmin"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_argmax_argmin(fn, keepdim):
    for shape, dim in [
        ((5,), None),
        ((5,), 0),
        ((3, 4), None),
        ((3, 4), 1),
        ((3, 4), -2),
        ((2, 3, 4), 1),
        ((), None),
        ((), 0),
    ]:
        x = make_array(shape, np.float32)
        got = getattr(minicnn, fn)(minicnn.tensor(x), dim, keepdim)
        expected = getattr(torch, fn)(torch.tensor(x), dim, keepdim)
        assert got.shape == tuple(expected.shape), (shape, dim)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got.numpy(), expected.numpy())
        np.testing.assert_array_equal(
            getattr(minicnn.tensor(x), fn)(dim, keepdim).numpy(), expected.numpy()
        )
    ties = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    np.testing.assert_array_equal(
        getattr(minicnn, fn)(minicnn.tensor(ties), 1).numpy(),
        getattr(torch, fn)(torch.tensor(ties), 1).numpy(),
    )


def test_argmax_is_not_differentiable():
    x = minicnn.randn(3, 4, requires_grad=True)
    assert not minicnn.argmax(x, 1).requires_grad


# ---------------------------------------------------------------- var/std corner cases


@pytest.mark.parametrize("which", ["var", "std"])
def test_var_std_degenerate_counts_match_torch(which):
    import warnings

    for x, kwargs in [
        (np.array([1.5]), {}),
        (np.array([2.0, 2.0, 2.0]), {}),
        (np.array([2.0, 2.0, 2.0]), {"correction": 0}),
    ]:
        m, t = minicnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mo = getattr(m, which)(**kwargs)
            mo.backward()
            to = getattr(t, which)(**kwargs)
            to.backward()
        np.testing.assert_array_equal(mo.detach().numpy(), to.detach().numpy(), err_msg=str(kwargs))
        np.testing.assert_array_equal(m.grad.numpy(), t.grad.numpy(), err_msg=str(kwargs))


def test_std_of_constant_has_zero_gradient():
    x = minicnn.full((2, 3), 4.0, requires_grad=True)
    minicnn.std(x, 1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((2, 3)))


def test_var_unbiased_positional_and_correction_conflict():
    x = make_array((4, 5), np.float64)
    np.testing.assert_allclose(
        minicnn.tensor(x).var(1, False).numpy(), torch.tensor(x).var(1, False).numpy(), rtol=1e-12
    )
    np.testing.assert_allclose(
        minicnn.tensor(x).std(False).numpy(), torch.tensor(x).std(False).numpy(), rtol=1e-12
    )
    with pytest.raises(ValueError, match="unbiased or correction"):
        minicnn.var(minicnn.tensor(x), 0, unbiased=True, correction=0)


def test_var_large_offset_is_accurate_in_float32():
    """Two-pass variance: an offset of 1e4 must not swamp a spread of 1 in float32."""
    x = (make_array((1000,), np.float64) + 1e4).astype(np.float32)
    check(lambda a: a.var(), lambda a: a.var(), [x], rtol=1e-3, atol=1e-4)


# ---------------------------------------------------------------- logsumexp


@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_large_and_infinite_values(dtype):
    x = np.array(
        [[1000.0, 1000.0, -1000.0], [-np.inf, -np.inf, -np.inf], [-np.inf, 0.0, 1.0]], dtype=dtype
    )
    m, t = minicnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    mo, to = minicnn.logsumexp(m, 1), torch.logsumexp(t, 1)
    np.testing.assert_allclose(mo.detach().numpy(), to.detach().numpy(), rtol=1e-6)
    w = np.array([1.0, 0.0, 1.0], dtype=dtype)
    mo.backward(w)
    to.backward(torch.tensor(w))
    np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), rtol=1e-6, equal_nan=True)


# ---------------------------------------------------------------- softmax family (kernels)


SOFTMAX_CASES = [((5,), 0), ((3, 4), -1), ((3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), -1), ((), 0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,dim", SOFTMAX_CASES, ids=str)
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_family_matches_torch(backend, fn, shape, dim, dtype):
    from tests.conftest import device_of

    x = make_array(shape, dtype, -5, 5)
    check(
        lambda a: getattr(ops, fn)(a, dim),
        lambda a: getattr(torch, fn)(a, dim),
        [x],
        device=device_of(backend),
    )
    check(
        lambda a: getattr(a, fn)(dim), lambda a: getattr(a, fn)(dim), [x], device=device_of(backend)
    )


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_family_non_contiguous_extremes_and_gradcheck(backend, fn):
    from tests.conftest import device_of

    device = device_of(backend)
    for layout in ("transposed", "strided"):
        x = make_array((4, 6), np.float32, -5, 5, layout)
        check(
            lambda a: getattr(ops, fn)(a, -1),
            lambda a: getattr(torch, fn)(a, -1),
            [x],
            device=device,
        )
        check(
            lambda a: getattr(ops, fn)(a, 0), lambda a: getattr(torch, fn)(a, 0), [x], device=device
        )
    big = np.array([[1000.0, 0.0, -1000.0], [50.0, 50.0, 50.0]], dtype=np.float32)
    check(
        lambda a: getattr(ops, fn)(a, 1), lambda a: getattr(torch, fn)(a, 1), [big], device=device
    )
    check(
        lambda a: getattr(ops, fn)(a, 1, dtype=np.float64),
        lambda a: getattr(torch, fn)(a, 1, dtype=torch.float64),
        [big],
        device=device,
    )
    if device == "cpu":
        gradcheck_op(lambda a: getattr(ops, fn)(a, 1), [make_array((3, 4), np.float64, -3, 3)])


def test_softmax_needs_dim():
    with pytest.raises(TypeError, match="dim is required"):
        ops.softmax(minicnn.ones(3), None)


# ---------------------------------------------------------------- errors


def test_dim_out_of_range_is_an_index_error_naming_the_range():
    x = minicnn.ones(2, 3)
    with pytest.raises(IndexError, match=r"dim 2 out of range.*\[-2, 1\]"):
        minicnn.sum(x, 2)
    with pytest.raises(IndexError, match="dim -3"):
        minicnn.mean(x, -3)
    with pytest.raises(ValueError, match="repeats a dimension"):
        minicnn.sum(x, (0, -2))
    with pytest.raises(TypeError, match="dim must be an int"):
        minicnn.sum(x, 0.5)


def test_mean_and_var_need_floating_point():
    with pytest.raises(TypeError, match="mean: input must be floating point, got dtype int64"):
        minicnn.mean(minicnn.tensor([1, 2]))
    with pytest.raises(TypeError, match="var: input must be floating point"):
        minicnn.var(minicnn.tensor([1, 2]))


def test_max_of_empty_is_an_error():
    with pytest.raises(ValueError, match=r"size 0.*\(0, 3\)"):
        minicnn.max(minicnn.zeros(0, 3))
    with pytest.raises(ValueError, match="amax: cannot reduce over a dimension of size 0"):
        ops.amax(minicnn.zeros(0, 3), 0)


def test_integer_and_bool_sums_are_int64():
    for data in ([1, 2, 3], [True, False, True]):
        got, expected = minicnn.sum(minicnn.tensor(data)), torch.sum(torch.tensor(data))
        assert got.dtype == np.int64 and expected.dtype == torch.int64
        assert got.item() == expected.item()
    got = minicnn.tensor(np.array([1, 2], dtype=np.int32)).sum()
    assert got.dtype == np.int64


@pytest.mark.parametrize(
    "m_fn,t_fn",
    [
        (lambda a: a.sum(0), lambda a: a.sum(0)),
        (lambda a: a.sum(), lambda a: a.sum()),
        (lambda a: a.mean(1), lambda a: a.mean(1)),
        (lambda a: a.max(1).values, lambda a: a.max(1).values),
        (lambda a: a.logsumexp(0), lambda a: a.logsumexp(0)),
        (lambda a: a.logsumexp(1), lambda a: a.logsumexp(1)),
        (lambda a: ops.softmax(a, 0), lambda a: torch.softmax(a, 0)),
        (lambda a: ops.log_softmax(a, 0), lambda a: torch.log_softmax(a, 0)),
        (lambda a: ops.log_softmax(a, 1), lambda a: torch.log_softmax(a, 1)),
    ],
)
def test_zero_size_inputs_match_torch(backend, m_fn, t_fn):
    """A (0, 3) input: empty sums are 0, empty logsumexps -inf, softmaxes stay empty."""
    from tests.conftest import device_of

    check(m_fn, t_fn, [np.zeros((0, 3), np.float32)], device=device_of(backend))
