"""matmul against PyTorch: 1-D, 2-D and batched shapes with broadcasting, forward and backward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minicnn
from minicnn.autograd import ops
from tests.autograd.opcheck import check, gradcheck_op, make_array

DTYPES = [np.float32, np.float64]

SHAPES = [
    ((3,), (3,)),  # dot product: a 0-d result
    ((2, 3), (3,)),  # matrix @ vector
    ((3,), (3, 4)),  # vector @ matrix
    ((2, 3), (3, 4)),
    ((5, 2, 3), (3, 4)),  # batch @ matrix: the matrix is shared by the batch
    ((2, 3), (5, 3, 4)),
    ((5, 2, 3), (5, 3, 4)),
    ((5, 1, 2, 3), (4, 3, 2)),  # batch dims broadcast: (5, 1) with (4,) -> (5, 4)
    ((3,), (5, 3, 4)),
    ((5, 2, 3), (3,)),
    ((1, 2, 3), (6, 3, 1)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_matmul_matches_torch(shapes, dtype):
    rng = np.random.default_rng(7)
    a, b = (make_array(s, dtype, rng=rng) for s in shapes)
    # float32 products of length 3 agree with torch to a few ulps
    check(minicnn.matmul, torch.matmul, [a, b])
    check(lambda x, y: x @ y, lambda x, y: x @ y, [a, b])
    check(lambda x, y: x.matmul(y), lambda x, y: x.matmul(y), [a, b], grad=[True, False])
    check(lambda x, y: x.matmul(y), lambda x, y: x.matmul(y), [a, b], grad=[False, True])


@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_matmul_gradcheck(shapes):
    rng = np.random.default_rng(8)
    a, b = (make_array(s, np.float64, rng=rng, layout="transposed") for s in shapes)
    gradcheck_op(minicnn.matmul, [a, b])


@pytest.mark.parametrize(
    "layouts",
    [("transposed", "contiguous"), ("contiguous", "transposed"), ("strided", "transposed")],
)
def test_matmul_non_contiguous(layouts):
    rng = np.random.default_rng(9)
    a = make_array((4, 5), np.float32, layout=layouts[0], rng=rng)
    b = make_array((5, 3), np.float32, layout=layouts[1], rng=rng)
    check(minicnn.matmul, torch.matmul, [a, b])
    x = make_array((2, 4, 5), np.float64, layout=layouts[0], rng=rng)
    check(minicnn.matmul, torch.matmul, [x, b.astype(np.float64)])


def test_matmul_of_a_transposed_tensor_in_the_graph():
    """x @ x.T: both operands are the same leaf, so the two gradients add up."""
    x = make_array((3, 4), np.float64)
    check(lambda a: a @ a.T, lambda a: a @ a.T, [x])
    gradcheck_op(lambda a: ops.mm(a, a.T), [x])


def test_matmul_larger_float32():
    rng = np.random.default_rng(10)
    a, b = make_array((16, 64), np.float32, rng=rng), make_array((64, 32), np.float32, rng=rng)
    # sums of 64 float32 products: BLAS orders differ, 1e-4 relative / 1e-4 absolute holds
    check(minicnn.matmul, torch.matmul, [a, b], rtol=1e-4, atol=1e-4)


def test_matmul_shape_mismatch_names_both_shapes():
    with pytest.raises(
        ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) cannot be multiplied"
    ):
        minicnn.matmul(minicnn.ones(2, 3), minicnn.ones(4, 5))
    with pytest.raises(ValueError, match=r"\(3,\) and \(4,\)"):
        minicnn.ones(3) @ minicnn.ones(4)
    with pytest.raises(
        ValueError, match=r"batch dimensions of \(2, 2, 3\) and \(3, 3, 4\) do not broadcast"
    ):
        minicnn.ones(2, 2, 3) @ minicnn.ones(3, 3, 4)
    with pytest.raises(ValueError, match=r"at least 1 dimension, got shapes \(\) and \(3,\)"):
        minicnn.matmul(minicnn.tensor(2.0), minicnn.ones(3))
