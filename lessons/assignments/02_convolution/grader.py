"""Grader of assignment 02 (convolution): forward against ``minicnn.nn.functional.conv2d``,
the loop backward against autograd's gradients of ``F.conv2d``, col2im as im2col's adjoint,
the im2col Function's backward by ``minicnn.gradcheck`` (float64)."""

import numpy as np
import pytest

import minicnn
import minicnn.nn.functional as F
from minicnn.homework import assert_close, load_submission, points

sub = load_submission("convolution")
CASES = {"stride1_pad0": (1, 0), "stride2_pad1": (2, 1)}


def data(n=2, c=3, h=7, w=6, k=4, kh=3, kw=3, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, c, h, w)), rng.standard_normal((k, c, kh, kw)),
            rng.standard_normal(k))


def reference(x, w, b, stride, padding, grad=None):
    """F.conv2d's output and, given grad, autograd's (dx, dw, db)."""
    xt, wt, bt = (minicnn.tensor(a, requires_grad=True) for a in (x, w, b))
    out = F.conv2d(xt, wt, bt, stride=stride, padding=padding)
    if grad is None:
        return out.detach().numpy()
    out.backward(minicnn.tensor(grad))
    return xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()



def close(name, got, want, tol=1e-8):
    assert_close(name, got, want, tol)


@points(2)
@pytest.mark.parametrize("case", CASES)
def test_loops_forward(case):
    stride, padding = CASES[case]
    x, w, b = data()
    close("conv2d_loops", sub.conv2d_loops(x, w, b, stride, padding),
          reference(x, w, b, stride, padding))


@points(3)
@pytest.mark.parametrize("case", CASES)
def test_loops_backward(case):
    stride, padding = CASES[case]
    x, w, b = data(seed=1)
    grad = np.random.default_rng(2).standard_normal(reference(x, w, b, stride, padding).shape)
    got = sub.conv2d_loops_backward(grad, x, w, stride, padding)
    for name, g, want in zip(("dx", "dw", "db"), got, reference(x, w, b, stride, padding, grad)):
        close(f"conv2d_loops_backward {name}", g, want)


@points(2)
@pytest.mark.parametrize("case", CASES)
def test_im2col_gives_the_convolution(case):
    stride, padding = CASES[case]
    x, w, b = data(seed=3)
    cols = np.asarray(sub.im2col(x, 3, 3, stride, padding))
    want = reference(x, w, b, stride, padding)
    n, k, oh, ow = want.shape
    assert cols.shape == (n, 27, oh * ow), \
        f"im2col: shape {cols.shape}, expected {(n, 27, oh * ow)}"
    out = (w.reshape(k, -1) @ cols + b[None, :, None]).reshape(want.shape)
    close("w.reshape(K, -1) @ im2col(x)", out, want)


@points(2)
@pytest.mark.parametrize("case", CASES)
def test_col2im_is_the_adjoint(case):
    """<im2col(x), c> = <x, col2im(c)> for every x and c: what the backward relies on."""
    stride, padding = CASES[case]
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 7, 6))
    cols = np.asarray(sub.im2col(x, 3, 3, stride, padding))
    c = rng.standard_normal(cols.shape)
    back = np.asarray(sub.col2im(c, x.shape, 3, 3, stride, padding))
    assert back.shape == x.shape, f"col2im: shape {back.shape}, expected {x.shape}"
    lhs, rhs = float((cols * c).sum()), float((x * back).sum())
    assert abs(lhs - rhs) <= 1e-8 * max(1.0, abs(lhs)), \
        f"col2im is not im2col's adjoint: <im2col(x), c> = {lhs:.10g}, <x, col2im(c)> = {rhs:.10g}"


@points(2)
@pytest.mark.parametrize("case", CASES)
def test_function_forward(case):
    stride, padding = CASES[case]
    x, w, b = data(seed=5)
    out = sub.Conv2d.apply(minicnn.tensor(x), minicnn.tensor(w), minicnn.tensor(b),
                           stride=stride, padding=padding)
    close("Conv2d forward", out.numpy(), reference(x, w, b, stride, padding))


@points(3)
@pytest.mark.parametrize("case", CASES)
def test_function_gradcheck(case):
    stride, padding = CASES[case]
    x, w, b = data(n=2, c=2, h=5, w=5, k=2, seed=6)
    inputs = [minicnn.tensor(a, requires_grad=True) for a in (x, w, b)]
    minicnn.gradcheck(lambda *a: sub.Conv2d.apply(*a, stride=stride, padding=padding), inputs)


### BEGIN HIDDEN TESTS
@points(2)
def test_function_rectangular_kernel():
    x, w, b = data(n=1, c=2, h=6, w=5, k=3, kh=2, kw=3, seed=7)
    inputs = [minicnn.tensor(a, requires_grad=True) for a in (x, w, b)]
    close("Conv2d forward (2x3 kernel)",
          sub.Conv2d.apply(*inputs, stride=2, padding=1).detach().numpy(),
          reference(x, w, b, 2, 1))
    minicnn.gradcheck(lambda *a: sub.Conv2d.apply(*a, stride=2, padding=1), inputs)
### END HIDDEN TESTS
