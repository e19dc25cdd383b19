"""Grader of assignment 03 (pooling, batch norm, LRN): forwards against
``minicnn.nn.functional``, running statistics against ``F.batch_norm``'s, backwards by
``minicnn.gradcheck`` (float64)."""

import numpy as np
import pytest

import minicnn
import minicnn.nn.functional as F
from minicnn.homework import assert_close, load_submission, points

sub = load_submission("pool_norm")
POOLS = {"k2_s2": (2, 2), "k3_s2": (3, 2), "k2_s1": (2, 1)}


def t(*shape, seed=0, requires_grad=True):
    data = np.random.default_rng(seed + sum(shape)).standard_normal(shape)
    return minicnn.tensor(data, requires_grad=requires_grad)



def close(name, got, want, tol=1e-7):
    assert_close(name, got, want, tol)


def value(x):
    return x.detach().numpy()


@points(1)
@pytest.mark.parametrize("case", POOLS)
def test_max_pool_forward(case):
    k, s = POOLS[case]
    x = t(2, 3, 7, 6)
    close("MaxPool2d", value(sub.MaxPool2d.apply(x, k=k, stride=s)), value(F.max_pool2d(x, k, s)))


@points(2)
@pytest.mark.parametrize("case", POOLS)
def test_max_pool_backward(case):
    k, s = POOLS[case]
    minicnn.gradcheck(lambda a: sub.MaxPool2d.apply(a, k=k, stride=s), [t(2, 2, 5, 6, seed=1)])


@points(1)
@pytest.mark.parametrize("case", POOLS)
def test_avg_pool_forward(case):
    k, s = POOLS[case]
    x = t(2, 3, 7, 6)
    close("AvgPool2d", value(sub.AvgPool2d.apply(x, k=k, stride=s)), value(F.avg_pool2d(x, k, s)))


@points(2)
@pytest.mark.parametrize("case", POOLS)
def test_avg_pool_backward(case):
    k, s = POOLS[case]
    minicnn.gradcheck(lambda a: sub.AvgPool2d.apply(a, k=k, stride=s), [t(2, 2, 5, 6, seed=2)])


@points(2)
def test_batch_norm_train_forward():
    x, gamma, beta = t(4, 3, 3, 2), t(3, seed=1), t(3, seed=2)
    want = F.batch_norm(x, None, None, gamma, beta, training=True, eps=1e-5)
    close("BatchNorm2dTrain", value(sub.BatchNorm2dTrain.apply(x, gamma, beta, eps=1e-5)),
          value(want))


@points(3)
def test_batch_norm_backward():
    inputs = [t(3, 2, 2, 3, seed=3), t(2, seed=4), t(2, seed=5)]
    minicnn.gradcheck(lambda *a: sub.BatchNorm2dTrain.apply(*a, eps=1e-5), inputs)


@points(2)
def test_batch_norm_running_statistics():
    """Three training steps update the running mean and (unbiased) variance as F.batch_norm."""
    gamma, beta = t(3, seed=1), t(3, seed=2)
    mean, var = np.zeros(3), np.ones(3)
    ref_mean = minicnn.zeros(3, dtype=minicnn.float64)
    ref_var = minicnn.ones(3, dtype=minicnn.float64)
    for step in range(3):
        x = minicnn.tensor(np.random.default_rng(step).standard_normal((4, 3, 2, 2)) * 2 + step)
        got = sub.batch_norm(x, gamma, beta, mean, var, training=True, momentum=0.2)
        want = F.batch_norm(x, ref_mean, ref_var, gamma, beta, training=True, momentum=0.2)
        close(f"batch_norm(training=True) step {step}", value(got), value(want))
    close("running_mean", mean, ref_mean.numpy())
    close("running_var", var, ref_var.numpy())


@points(2)
def test_batch_norm_eval():
    gamma, beta = t(3, seed=1), t(3, seed=2)
    mean, var = np.array([0.5, -1.0, 2.0]), np.array([0.25, 4.0, 1.5])
    x = t(2, 3, 4, 4, seed=6)
    got = sub.batch_norm(x, gamma, beta, mean.copy(), var.copy(), training=False)
    want = F.batch_norm(x, minicnn.tensor(mean), minicnn.tensor(var), gamma, beta,
                        training=False)
    close("batch_norm(training=False)", value(got), value(want))
    minicnn.gradcheck(lambda a, g, b: sub.batch_norm(a, g, b, mean.copy(), var.copy(),
                                                     training=False), [x, gamma, beta])


@points(2)
@pytest.mark.parametrize("size", [3, 5])
def test_lrn_forward(size):
    x = t(2, 7, 3, 3, seed=7)
    close("LRN", value(sub.LRN.apply(x, size=size, alpha=0.3, beta=0.75, k=2.0)),
          value(F.local_response_norm(x, size, alpha=0.3, beta=0.75, k=2.0)))


@points(3)
@pytest.mark.parametrize("size", [3, 5])
def test_lrn_backward(size):
    minicnn.gradcheck(lambda a: sub.LRN.apply(a, size=size, alpha=0.3, beta=0.75, k=2.0),
                      [t(1, 6, 2, 3, seed=8)])


### BEGIN HIDDEN TESTS
@points(2)
def test_lrn_even_size():
    x = t(2, 6, 2, 2, seed=9)
    close("LRN (size 4)", value(sub.LRN.apply(x, size=4, alpha=0.3, beta=0.75, k=2.0)),
          value(F.local_response_norm(x, 4, alpha=0.3, beta=0.75, k=2.0)))
    minicnn.gradcheck(lambda a: sub.LRN.apply(a, size=4, alpha=0.3, beta=0.75, k=2.0), [x])
### END HIDDEN TESTS
