"""Element-wise ops against PyTorch: forward and backward, float32 and float64, gradcheck.

Covers add, sub, mul, div, neg, pow (tensor and number exponents, number base), exp,
log, sqrt, abs, clamp, maximum, minimum, where, sigmoid, tanh, atan, relu; broadcasting, 0-d
tensors and non-contiguous inputs; the gradient conventions at kinks and ties; dtype
promotion with Python numbers and mixed dtypes.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import minicnn
from minicnn.autograd import ops
from tests.autograd.opcheck import LAYOUTS, check, gradcheck_op, make_array

DTYPES = [np.float32, np.float64]

# name: (minicnn fn, torch fn, (low, high) of the values)
UNARY = {
    "neg": (lambda x: -x, lambda x: -x, (-2, 2)),
    "neg_fn": (ops.neg, torch.neg, (-2, 2)),
    "exp": (minicnn.exp, torch.exp, (-2, 2)),
    "log": (minicnn.log, torch.log, (0.2, 3)),
    "sqrt": (minicnn.sqrt, torch.sqrt, (0.2, 3)),
    "abs": (minicnn.abs, torch.abs, (-2, 2)),
    "sigmoid": (minicnn.sigmoid, torch.sigmoid, (-4, 4)),
    "tanh": (minicnn.tanh, torch.tanh, (-3, 3)),
    "atan": (ops.atan, torch.atan, (-3, 3)),
    "relu": (ops.relu, torch.relu, (-2, 2)),
    "clamp_both": (
        lambda x: minicnn.clamp(x, -0.5, 0.7),
        lambda x: torch.clamp(x, -0.5, 0.7),
        (-2, 2),
    ),
    "clamp_min": (lambda x: x.clamp(min=-0.3), lambda x: x.clamp(min=-0.3), (-2, 2)),
    "clamp_max": (lambda x: x.clamp(max=0.4), lambda x: x.clamp(max=0.4), (-2, 2)),
    "clip_int_bounds": (lambda x: x.clip(-1, 1), lambda x: x.clip(-1, 1), (-2, 2)),
    "pow_2": (lambda x: x**2, lambda x: x**2, (-2, 2)),
    "pow_3_int": (lambda x: x.pow(3), lambda x: x.pow(3), (-2, 2)),
    "pow_half": (lambda x: x**0.5, lambda x: x**0.5, (0.2, 3)),
    "pow_neg": (lambda x: x**-1.5, lambda x: x**-1.5, (0.2, 3)),
    "rpow_2": (lambda x: 2**x, lambda x: 2**x, (-2, 2)),
    "rpow_float": (lambda x: 1.7**x, lambda x: 1.7**x, (-2, 2)),
    "rpow_fn": (lambda x: ops.pow(0.5, x), lambda x: torch.pow(0.5, x), (-2, 2)),
    "add_number": (lambda x: x + 2, lambda x: x + 2, (-2, 2)),
    "radd_number": (lambda x: 2.5 + x, lambda x: 2.5 + x, (-2, 2)),
    "rsub_number": (lambda x: 1 - x, lambda x: 1 - x, (-2, 2)),
    "mul_number": (lambda x: x * 3, lambda x: x * 3, (-2, 2)),
    "div_number": (lambda x: x / 3, lambda x: x / 3, (-2, 2)),
    "rdiv_number": (lambda x: 2 / x, lambda x: 2 / x, (0.5, 3)),
}

SHAPES = [(), (5,), (3, 4), (2, 3, 4)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_matches_torch(name, shape, dtype):
    m_fn, t_fn, (lo, hi) = UNARY[name]
    x = make_array(shape, dtype, lo, hi)
    check(m_fn, t_fn, [x])


@pytest.mark.parametrize("layout", LAYOUTS[1:])
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_non_contiguous(name, layout):
    m_fn, t_fn, (lo, hi) = UNARY[name]
    check(m_fn, t_fn, [make_array((3, 4), np.float32, lo, hi, layout)])


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_gradcheck(name):
    m_fn, _, (lo, hi) = UNARY[name]
    gradcheck_op(m_fn, [make_array((2, 3), np.float64, lo, hi, "transposed")])


BINARY = {
    "add": (ops.add, torch.add, (-2, 2), (-2, 2)),
    "add_op": (lambda a, b: a + b, lambda a, b: a + b, (-2, 2), (-2, 2)),
    "add_alpha": (
        lambda a, b: ops.add(a, b, alpha=2.5),
        lambda a, b: torch.add(a, b, alpha=2.5),
        (-2, 2),
        (-2, 2),
    ),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, (-2, 2), (-2, 2)),
    "sub_alpha": (
        lambda a, b: a.sub(b, alpha=-3),
        lambda a, b: a.sub(b, alpha=-3),
        (-2, 2),
        (-2, 2),
    ),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, (-2, 2), (-2, 2)),
    "div": (lambda a, b: a / b, lambda a, b: a / b, (-2, 2), (0.5, 2)),
    "div_neg": (ops.div, torch.div, (-2, 2), (-2, -0.5)),
    "pow": (lambda a, b: a**b, lambda a, b: a**b, (0.3, 2), (-2, 2)),
    "maximum": (minicnn.maximum, torch.maximum, (-2, 2), (-2, 2)),
    "minimum": (minicnn.minimum, torch.minimum, (-2, 2), (-2, 2)),
    "max_other": (minicnn.max, torch.max, (-2, 2), (-2, 2)),
    "min_other": (lambda a, b: a.min(b), lambda a, b: a.min(b), (-2, 2), (-2, 2)),
    "where": (
        lambda a, b: minicnn.where(a > 0, a, b),
        lambda a, b: torch.where(a > 0, a, b),
        (-2, 2),
        (-2, 2),
    ),
}

BROADCAST_PAIRS = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),
    ((4,), (3, 4)),
    ((2, 1, 4), (3, 1)),
    ((3, 1), (1, 5)),
    ((), (3,)),
    ((2, 3), ()),
    ((), ()),
    ((1,), (2, 3)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", BROADCAST_PAIRS, ids=str)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_matches_torch(name, shapes, dtype):
    m_fn, t_fn, (lo_a, hi_a), (lo_b, hi_b) = BINARY[name]
    rng = np.random.default_rng(3)
    a = make_array(shapes[0], dtype, lo_a, hi_a, rng=rng)
    b = make_array(shapes[1], dtype, lo_b, hi_b, rng=rng)
    check(m_fn, t_fn, [a, b])


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_non_contiguous_and_gradcheck(name):
    m_fn, t_fn, (lo_a, hi_a), (lo_b, hi_b) = BINARY[name]
    rng = np.random.default_rng(4)
    a = make_array((3, 4), np.float32, lo_a, hi_a, "transposed", rng)
    b = make_array((3, 4), np.float32, lo_b, hi_b, "strided", rng)
    check(m_fn, t_fn, [a, b])
    a64 = make_array((2, 3), np.float64, lo_a, hi_a, "transposed", rng)
    b64 = make_array((3,), np.float64, lo_b, hi_b, rng=rng)
    gradcheck_op(m_fn, [a64, b64])


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_only_one_input_requires_grad(dtype):
    a = make_array((3, 4), dtype)
    b = make_array((4,), dtype, 0.5, 2)
    for m_fn, t_fn in [
        (lambda x, y: x / y, lambda x, y: x / y),
        (lambda x, y: x**y, lambda x, y: x**y),
    ]:
        check(m_fn, t_fn, [np.abs(a) + 0.1, b], grad=[False, True])
        check(m_fn, t_fn, [np.abs(a) + 0.1, b], grad=[True, False])


# ---------------------------------------------------------------- conventions at kinks and ties


def _grads(m_fn, t_fn, *values, dtype=np.float64):
    """Forward values and gradients of sum(fn(...)) in minicnn and torch, for exact comparison."""
    m_in = [minicnn.tensor(np.array(v, dtype=dtype), requires_grad=True) for v in values]
    t_in = [torch.tensor(np.array(v, dtype=dtype), requires_grad=True) for v in values]
    m_out, t_out = m_fn(*m_in), t_fn(*t_in)
    m_out.sum().backward()
    t_out.sum().backward()
    return (
        [m_out.detach().numpy()] + [m.grad.numpy() for m in m_in],
        [t_out.detach().numpy()] + [t.grad.numpy() for t in t_in],
    )


def _assert_same(m_fn, t_fn, *values):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log(0), 0 ** -1: inf/NaN on purpose
        got, expected = _grads(m_fn, t_fn, *values)
    # the same inf/NaN pattern, and values equal to rounding
    for k, (g, e) in enumerate(zip(got, expected, strict=True)):
        np.testing.assert_allclose(
            g,
            e,
            rtol=1e-12,
            atol=0,
            equal_nan=True,
            err_msg=f"item {k} (0: forward, then input grads)",
        )


KINKS = {
    "relu_at_0": (ops.relu, torch.relu, [[-1.0, 0.0, 1.0]]),
    "abs_at_0": (minicnn.abs, torch.abs, [[-1.0, 0.0, 1.0]]),
    "sqrt_at_0": (minicnn.sqrt, torch.sqrt, [[0.0, 4.0]]),
    "log_at_0": (minicnn.log, torch.log, [[0.0, 1.0]]),
    "clamp_on_bounds": (
        lambda x: x.clamp(1.0, 3.0),
        lambda x: x.clamp(1.0, 3.0),
        [[0.0, 1.0, 2.0, 3.0, 4.0]],
    ),
    "clamp_min_on_bound": (
        lambda x: x.clamp(min=1.0),
        lambda x: x.clamp(min=1.0),
        [[0.0, 1.0, 2.0]],
    ),
    "clamp_max_on_bound": (
        lambda x: x.clamp(max=1.0),
        lambda x: x.clamp(max=1.0),
        [[0.0, 1.0, 2.0]],
    ),
    "clamp_equal_bounds": (
        lambda x: x.clamp(2.0, 2.0),
        lambda x: x.clamp(2.0, 2.0),
        [[1.0, 2.0, 3.0]],
    ),
    "clamp_min_above_max": (
        lambda x: x.clamp(3.0, 1.0),
        lambda x: x.clamp(3.0, 1.0),
        [[0.0, 2.0, 4.0]],
    ),
    "clamp_tensor_bounds": (
        lambda x, lo, hi: minicnn.clamp(x, lo, hi),
        lambda x, lo, hi: torch.clamp(x, lo, hi),
        [[1.0, 2.0, 3.0, 5.0]],
        [1.0, 3.0, 0.0, 0.0],
        [2.0, 4.0, 3.0, 4.0],
    ),
    "maximum_ties": (minicnn.maximum, torch.maximum, [1.0, 2.0, 3.0], [1.0, 3.0, 2.0]),
    "minimum_ties": (minicnn.minimum, torch.minimum, [1.0, 2.0, 3.0], [1.0, 3.0, 2.0]),
    "maximum_nan": (minicnn.maximum, torch.maximum, [np.nan, 1.0, np.nan], [1.0, np.nan, np.nan]),
    "minimum_nan": (minicnn.minimum, torch.minimum, [np.nan, 1.0], [1.0, np.nan]),
    "pow_zero_base": (
        lambda a, b: a**b,
        lambda a, b: a**b,
        [0.0, 0.0, 0.0, -2.0, 2.0],
        [0.0, 2.0, -1.0, 2.0, 0.0],
    ),
    "pow_zero_exponent_number": (lambda a: a**0, lambda a: a**0, [0.0, -2.0, 2.0]),
    "pow_half_at_zero_and_negative": (lambda a: a**0.5, lambda a: a**0.5, [0.0, -2.0, 2.0]),
    "rpow_zero_base": (lambda a: 0.0**a, lambda a: 0.0**a, [0.0, 2.0, -1.0]),
    "rpow_negative_base": (lambda a: (-2.0) ** a, lambda a: (-2.0) ** a, [0.0, 2.0]),
    "div_by_zero": (lambda a, b: a / b, lambda a, b: a / b, [1.0, -1.0, 0.0], [0.0, 0.0, 0.0]),
    "where_nan_unselected": (
        lambda a, b: minicnn.where(a > 0, a, b),
        lambda a, b: torch.where(a > 0, a, b),
        [1.0, -1.0],
        [5.0, 2.0],
    ),
}


@pytest.mark.parametrize("name", sorted(KINKS))
def test_gradient_conventions_match_torch(name):
    m_fn, t_fn, *values = KINKS[name]
    _assert_same(m_fn, t_fn, *values)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_huge_logits_do_not_overflow(dtype):
    values = np.array([-1000.0, -100.0, -30.0, 0.0, 30.0, 100.0, 1000.0], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning would fail the test
        m, t = minicnn.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
        out = minicnn.sigmoid(m)
        out.sum().backward()
    torch.sigmoid(t).sum().backward()
    assert np.all(np.isfinite(out.detach().numpy())) and np.all(np.isfinite(m.grad.numpy()))
    # atol 1e-38: PyTorch flushes float32 subnormals (sigmoid(-100) = 3.8e-44) to 0
    np.testing.assert_allclose(
        out.detach().numpy(), torch.sigmoid(t).detach().numpy(), rtol=1e-6, atol=1e-38
    )
    np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-38)
    assert out.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_tanh_saturates_without_nan(dtype):
    values = np.array([-500.0, -20.0, 0.0, 20.0, 500.0], dtype=dtype)
    check(minicnn.tanh, torch.tanh, [values])


def test_where_with_numbers_and_broadcast_condition():
    x = make_array((3, 4), np.float32)
    cond = np.array([True, False, True, False])
    check(
        lambda a: minicnn.where(minicnn.tensor(cond), a, 0.0),
        lambda a: torch.where(torch.tensor(cond), a, 0.0),
        [x],
    )
    check(
        lambda a: a.where(minicnn.tensor(cond), -1), lambda a: a.where(torch.tensor(cond), -1), [x]
    )
    out = minicnn.where(minicnn.tensor(cond), 1.0, 0.0)
    assert out.dtype == np.float32 and out.tolist() == [1.0, 0.0, 1.0, 0.0]


# ---------------------------------------------------------------- dtype promotion


def _promotion_cases():
    f32, f64, i64, i32, u8, i8, b = (
        np.float32,
        np.float64,
        np.int64,
        np.int32,
        np.uint8,
        np.int8,
        np.bool_,
    )

    def arr(dtype, shape=(3,)):
        return (np.arange(1, 1 + int(np.prod(shape))) % 5).astype(dtype).reshape(shape)

    return {
        "f32+py_float": (arr(f32), 2.5),
        "f32+py_int": (arr(f32), 2),
        "f64+py_float": (arr(f64), 2.5),
        "i64+py_float": (arr(i64), 2.5),
        "i32+py_int": (arr(i32), 7),
        "bool+py_int": (arr(b), 1),
        "bool+py_float": (arr(b), 1.5),
        "f32+np_float64_scalar": (arr(f32), np.float64(2.0)),
        "f32+f64": (arr(f32), arr(f64)),
        "i64+f32": (arr(i64), arr(f32)),
        "u8+i8": (arr(u8), arr(i8)),
        "f32+0d_f64": (arr(f32), arr(f64, ())),
        "i32+0d_f64": (arr(i32), arr(f64, ())),
        "0d_i64+0d_f32": (arr(i64, ()), arr(f32, ())),
        "f16+0d_f32": (arr(np.float16), arr(f32, ())),
        "i8+0d_i64": (arr(i8), arr(i64, ())),
        "py_float+i64": (2.5, arr(i64)),
    }


PROMOTION = _promotion_cases()
OPS = {
    "add": (lambda a, b: a + b),
    "sub": (lambda a, b: a - b),
    "mul": (lambda a, b: a * b),
    "div": (lambda a, b: a / b),
}


def _to_lib(x, lib):
    if isinstance(x, np.ndarray):
        return minicnn.tensor(x) if lib is minicnn else torch.tensor(x)
    return x


@pytest.mark.parametrize(
    "case,op",
    [
        (case, op)
        for case in sorted(PROMOTION)
        for op in ("add", "sub", "mul", "div")
        if not (op == "sub" and case.startswith("bool"))  # PyTorch refuses bool subtraction
    ],
)
def test_dtype_promotion_matches_torch(case, op):
    a, b = PROMOTION[case]
    fn = OPS[op]
    got = fn(_to_lib(a, minicnn), _to_lib(b, minicnn))
    expected = fn(_to_lib(a, torch), _to_lib(b, torch))
    assert got.dtype == torch.empty(0, dtype=expected.dtype).numpy().dtype, (case, op)
    np.testing.assert_allclose(
        got.numpy().astype(np.float64), expected.numpy().astype(np.float64), rtol=1e-6
    )


@pytest.mark.parametrize("fn", [minicnn.maximum, minicnn.minimum, ops.pow])
def test_promotion_in_maximum_minimum_pow(fn):
    a, b = np.array([1, 2, 3], dtype=np.int64), np.array([2.5, 1.5, 3.0], dtype=np.float32)
    tfn = getattr(torch, fn.__name__)
    got, expected = fn(minicnn.tensor(a), minicnn.tensor(b)), tfn(torch.tensor(a), torch.tensor(b))
    assert got.dtype == np.float32 and expected.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-6)


def test_mixed_dtype_gradients_come_back_in_each_input_dtype():
    a = make_array((3, 4), np.float32)
    b = make_array((4,), np.float64)
    m_out, m_in = check(lambda x, y: x * y + y, lambda x, y: x * y + y, [a, b])
    assert m_out[0].dtype == np.float64
    assert m_in[0].grad.dtype == np.float32 and m_in[1].grad.dtype == np.float64
    # a 0-d float64 tensor does not widen a float32 one, and still gets a float64 gradient
    m_out, m_in = check(lambda x, y: x * y, lambda x, y: x * y, [a, np.array(1.5)])
    assert m_out[0].dtype == np.float32 and m_in[1].grad.dtype == np.float64


def test_integer_tensors_clamp_to_float_bounds():
    x = np.array([-3, 0, 5], dtype=np.int64)
    got, expected = minicnn.tensor(x).clamp(min=0.5), torch.tensor(x).clamp(min=0.5)
    assert got.dtype == np.float32 and expected.dtype == torch.float32
    np.testing.assert_array_equal(got.numpy(), expected.numpy())
    got, expected = minicnn.tensor(x).clamp(-1, 2), torch.tensor(x).clamp(-1, 2)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got.numpy(), expected.numpy())


# ---------------------------------------------------------------- methods and errors


def test_methods_and_functions_agree():
    x = minicnn.tensor(make_array((3, 4), np.float64, 0.3, 2))
    for method, fn in [
        ("exp", minicnn.exp),
        ("log", minicnn.log),
        ("sqrt", minicnn.sqrt),
        ("abs", minicnn.abs),
        ("sigmoid", minicnn.sigmoid),
        ("tanh", minicnn.tanh),
        ("relu", ops.relu),
        ("neg", ops.neg),
    ]:
        np.testing.assert_array_equal(getattr(x, method)().numpy(), fn(x).numpy(), err_msg=method)
    y = minicnn.tensor(make_array((4,), np.float64, 0.5, 2))
    for method, fn in [
        ("add", ops.add),
        ("sub", ops.sub),
        ("mul", ops.mul),
        ("div", ops.div),
        ("pow", ops.pow),
        ("maximum", minicnn.maximum),
        ("minimum", minicnn.minimum),
    ]:
        np.testing.assert_array_equal(
            getattr(x, method)(y).numpy(), fn(x, y).numpy(), err_msg=method
        )


def test_numpy_array_on_the_left_gives_a_tensor():
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    out = np.array([3.0, 4.0], dtype=np.float32) * x
    assert isinstance(out, minicnn.Tensor) and out.requires_grad
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])


@pytest.mark.parametrize("op", [ops.add, ops.sub, ops.mul, ops.div, minicnn.maximum, ops.pow])
def test_broadcast_mismatch_names_both_shapes(op):
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\).*broadcast"):
        op(minicnn.ones(2, 3), minicnn.ones(4))


def test_where_errors():
    with pytest.raises(TypeError, match="condition must be a bool"):
        minicnn.where(minicnn.ones(3), minicnn.ones(3), minicnn.zeros(3))
    with pytest.raises(ValueError, match=r"where: .*\(3,\)|broadcast"):
        minicnn.where(minicnn.ones(4) > 0, minicnn.ones(3), minicnn.zeros(3))


def test_clamp_needs_a_bound():
    with pytest.raises(ValueError, match="at least one of min and max"):
        minicnn.clamp(minicnn.ones(3))


def test_in_place_arithmetic_on_a_tensor_that_requires_grad_is_refused():
    x = minicnn.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        x += 1
    y = minicnn.ones(3)
    y += 2  # outside the graph it updates the data
    np.testing.assert_array_equal(y.numpy(), [3.0, 3.0, 3.0])
