"""minicnn.gradcheck: passes on correct ops, catches a wrong backward (naming the input,
the element, the analytic and the numeric value), in full and directional mode."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn
from minicnn.autograd import Function


class ScaledWrong(Function):
    """x * y with d/dy off by a factor 1.5 (a deliberate bug)."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        return grad * y, grad * x * 1.5


def _inputs(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [minicnn.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]


@pytest.mark.parametrize("mode", ["full", "directional"])
def test_correct_ops_pass(mode):
    x, y = _inputs((3, 4), (4,))
    assert minicnn.gradcheck(
        lambda a, b: (a * b).exp().sum(1) / (1 + b.abs().sum()), [x, y], mode=mode
    )
    assert minicnn.gradcheck(lambda a: (a.tanh(), a.sigmoid() * 2), [x], mode=mode)  # tuple output
    assert minicnn.gradcheck(
        lambda a, n: a * n, [x, 3.0], mode=mode
    )  # non-tensor inputs pass through


def test_wrong_backward_names_input_element_and_values():
    x, y = _inputs((2, 3), (2, 3))
    with pytest.raises(minicnn.GradcheckError) as info:
        minicnn.gradcheck(ScaledWrong.apply, [x, y])
    msg = str(info.value)
    assert "input 1 (shape (2, 3))" in msg and "at element (0, 0)" in msg
    analytic = float(msg.split("analytic ")[1].split(",")[0])
    numeric = float(msg.split("numeric ")[1].split(",")[0])
    np.testing.assert_allclose(analytic, 1.5 * numeric, rtol=1e-5)


def test_the_first_input_passes_when_only_the_second_is_wrong():
    x, y = _inputs((2, 3), (2, 3))
    y.requires_grad_(False)
    assert minicnn.gradcheck(ScaledWrong.apply, [x, y])


def test_directional_mode_catches_the_same_bug():
    x, y = _inputs((2, 3), (2, 3))
    with pytest.raises(
        minicnn.GradcheckError, match=r"directional.*inputs \[0, 1\].*analytic.*numeric"
    ):
        minicnn.gradcheck(ScaledWrong.apply, [x, y], mode="directional")


def test_inputs_keep_their_values_and_grads():
    x, y = _inputs((2, 3), (3,))
    before = x.array.copy()
    x.grad = minicnn.ones(2, 3, dtype=np.float64)
    minicnn.gradcheck(lambda a, b: a * b, [x, y])
    minicnn.gradcheck(lambda a, b: a * b, [x, y], mode="directional")
    np.testing.assert_array_equal(x.array, before)
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((2, 3)))
    assert y.grad is None


def test_non_contiguous_input():
    base = np.random.default_rng(1).standard_normal((4, 3))
    x = minicnn.from_numpy(base.T).requires_grad_()  # a transposed view
    assert not x.array.flags.c_contiguous
    assert minicnn.gradcheck(lambda a: (a @ a.T).sum(0), [x])
    with pytest.raises(minicnn.GradcheckError):
        minicnn.gradcheck(lambda a: ScaledWrong.apply(a, a), [x])


def test_non_leaf_input():
    (x,) = _inputs((3,))
    y = x * 2  # a non-leaf that requires grad
    assert minicnn.gradcheck(lambda a: a.exp(), [y])


def test_float32_inputs_are_a_type_error():
    x = minicnn.randn(3, requires_grad=True)
    with pytest.raises(TypeError, match="gradcheck: input 0 has dtype float32; use float64"):
        minicnn.gradcheck(lambda a: a * 2, [x])


def test_no_input_requiring_grad_is_a_value_error():
    with pytest.raises(ValueError, match="no input has requires_grad=True"):
        minicnn.gradcheck(lambda a: a * 2, [minicnn.randn(3, dtype=np.float64)])


def test_bad_mode():
    (x,) = _inputs((3,))
    with pytest.raises(ValueError, match="mode must be 'full' or 'directional', got 'fast'"):
        minicnn.gradcheck(lambda a: a * 2, [x], mode="fast")
