"""Property-based sweeps: broadcasting binary ops and reductions against PyTorch.

Hypothesis draws broadcast-compatible shapes (including 0-d and size-1 dims), dtypes,
reduction dims (None, int, negative, tuples) and keepdim; each example compares forward
values and input gradients with PyTorch.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import minicnn
from minicnn.autograd import ops
from tests.autograd.opcheck import check

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)

dtypes = st.sampled_from([np.float32, np.float64])
seeds = st.integers(0, 2**31 - 1)


def _values(shape, dtype, seed, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape).astype(dtype)


def _away_from_zero(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0.5, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)).astype(dtype)


BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
    "maximum": (minicnn.maximum, torch.maximum),
    "pow": (lambda a, b: a**b, lambda a, b: a**b),
}


@SETTINGS
@given(
    name=st.sampled_from(sorted(BINARY)),
    shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4),
    dtype=dtypes,
    seed=seeds,
)
def test_broadcasting_binary_ops(name, shapes, dtype, seed):
    shape_a, shape_b = shapes.input_shapes
    a = _values(shape_a, dtype, seed, *((0.3, 2.0) if name == "pow" else (-2.0, 2.0)))
    b = (
        _away_from_zero(shape_b, dtype, seed + 1)
        if name == "div"
        else _values(shape_b, dtype, seed + 1)
    )
    m_fn, t_fn = BINARY[name]
    # float32 pow/div: a few ulps between libm and torch's kernels
    rtol = 1e-5 if dtype == np.float32 else 1e-10
    (out,), _ = check(m_fn, t_fn, [a, b], rtol=rtol)
    assert out.shape == shapes.result_shape


@st.composite
def shape_and_dim(draw):
    shape = draw(array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4))
    n = len(shape)
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none" or n == 0:
        return shape, None
    if kind == "int":
        return shape, draw(st.integers(-n, n - 1))
    axes = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    negate = draw(st.lists(st.booleans(), min_size=len(axes), max_size=len(axes)))
    return shape, tuple(ax - n if neg else ax for ax, neg in zip(axes, negate, strict=True))


REDUCTIONS = {
    "sum": (lambda x, d, k: minicnn.sum(x, d, k), lambda x, d, k: torch.sum(x, d, k)),
    "mean": (lambda x, d, k: minicnn.mean(x, d, k), lambda x, d, k: torch.mean(x, d, k)),
    "amax": (lambda x, d, k: ops.amax(x, d, k), lambda x, d, k: torch.amax(x, d, k)),
    "var": (
        lambda x, d, k: minicnn.var(x, d, keepdim=k),
        lambda x, d, k: torch.var(x, d, keepdim=k),
    ),
    "logsumexp": (
        lambda x, d, k: minicnn.logsumexp(x, d, k),
        lambda x, d, k: torch.logsumexp(x, d, k),
    ),
}


@SETTINGS
@given(
    name=st.sampled_from(sorted(REDUCTIONS)),
    shape_dim=shape_and_dim(),
    keepdim=st.booleans(),
    dtype=dtypes,
    seed=seeds,
)
def test_reductions(name, shape_dim, keepdim, dtype, seed):
    shape, dim = shape_dim
    n = len(shape)
    all_dims = tuple(range(n))
    torch_dim = dim
    if dim is None and name in ("amax", "logsumexp"):
        torch_dim = all_dims  # torch spells "all dims" as a tuple for these
        if n == 0 and name == "logsumexp":
            torch_dim = 0
    if isinstance(torch_dim, tuple):
        torch_dim = list(torch_dim)
    if name == "var":
        axes = all_dims if dim is None else (dim,) if isinstance(dim, int) else dim
        assume(int(np.prod([shape[a] for a in axes])) >= 2)  # n - 1 > 0
    x = _values(shape, dtype, seed)
    m_fn, t_fn = REDUCTIONS[name]
    check(lambda a: m_fn(a, dim, keepdim), lambda a: t_fn(a, torch_dim, keepdim), [x])
