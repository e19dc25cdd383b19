"""Grader of assignment 01 (backward passes): each Function's backward against finite
differences (``minicnn.gradcheck``, float64), on shapes the assignment's own checks do not use."""

import numpy as np
import pytest

import minicnn
from minicnn.homework import load_submission, points

sub = load_submission("autograd")


def t(*shape, positive=False, seed=1):
    data = np.random.default_rng(seed + sum(shape)).standard_normal(shape)
    return minicnn.tensor(np.abs(data) + 0.5 if positive else data, requires_grad=True)


@points(2)
@pytest.mark.parametrize("grad_shape, shape", [((2, 3, 4), (3, 1)), ((5, 4), (4,)),
                                               ((2, 3), (2, 3)), ((3, 1, 2), (1,))],
                         ids=["2x3x4_to_3x1", "5x4_to_4", "2x3_to_2x3", "3x1x2_to_1"])
def test_sum_to_shape(grad_shape, shape):
    grad = np.random.default_rng(0).standard_normal(grad_shape)
    got = np.asarray(sub.sum_to_shape(grad, shape))
    want = grad
    extra = grad.ndim - len(shape)
    want = want.sum(axis=tuple(range(extra)))
    for i, n in enumerate(shape):
        if n == 1:
            want = want.sum(axis=i, keepdims=True)
    assert got.shape == tuple(shape), f"sum_to_shape gave shape {got.shape}, expected {shape}"
    np.testing.assert_allclose(got, want, err_msg="sum_to_shape: wrong values")


@points(2)
def test_mul_backward():
    minicnn.gradcheck(sub.Mul.apply, [t(4, 3), t(4, 3, seed=2)])


@points(2)
def test_mul_broadcast():
    minicnn.gradcheck(sub.Mul.apply, [t(2, 1, 3), t(4, 1, seed=2)])


@points(2)
def test_div_backward():
    minicnn.gradcheck(sub.Div.apply, [t(3, 4), t(3, 4, positive=True)])


@points(2)
def test_div_broadcast():
    minicnn.gradcheck(sub.Div.apply, [t(3, 4), t(4, positive=True)])


@points(2)
def test_tanh_backward():
    minicnn.gradcheck(sub.Tanh.apply, [t(3, 2, 2)])


@points(2)
def test_matmul_backward():
    minicnn.gradcheck(sub.MatMul.apply, [t(3, 5), t(5, 2, seed=3)])


@points(2)
def test_logsumexp_backward():
    x = t(4, 6)
    x.data.array[...] *= 20  # large values: the backward must be as stable as the forward
    minicnn.gradcheck(sub.LogSumExp.apply, [x])


### BEGIN HIDDEN TESTS
@points(2)
def test_chain_of_functions():
    """Every backward composed: a small two-layer network's loss."""
    def net(x, w1, w2):
        h = sub.Tanh.apply(sub.MatMul.apply(x, w1))
        return sub.LogSumExp.apply(sub.Div.apply(sub.MatMul.apply(h, w2), sub.Mul.apply(w2, w2)
                                                 .sum() + 1.0))
    minicnn.gradcheck(net, [t(3, 4), t(4, 5, seed=4), t(5, 2, seed=5)])
### END HIDDEN TESTS
