"""Loss functions against PyTorch: every reduction, weights, ignore_index, label smoothing,
probability targets, gradients of input and target, gradcheck and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import minicnn
import minicnn.nn.functional as F
from tests.conftest import device_of
from tests.helpers import assert_close

REDUCTIONS = ["none", "mean", "sum"]
DTYPES = [np.float32, np.float64]


def _compare(m_fn, t_fn, arrays, needs_grad, device="cpu", dtype=np.float64, **tol):
    """Run both functions on the same arrays; compare the output and each input gradient."""
    m_in = [minicnn.tensor(a, device=device, requires_grad=g) for a, g in zip(arrays, needs_grad,
                                                                              strict=True)]
    t_in = [torch.tensor(a, requires_grad=g) for a, g in zip(arrays, needs_grad, strict=True)]
    out_m, out_t = m_fn(*m_in), t_fn(*t_in)
    assert out_m.shape == tuple(out_t.shape)
    assert out_m.dtype == dtype
    assert_close(out_m, out_t, dtype, msg="forward", **tol)
    g = np.asarray(np.random.default_rng(5).standard_normal(out_m.shape), dtype=dtype)
    out_m.backward(minicnn.tensor(g, device=device))
    out_t.backward(torch.tensor(g))
    for i, (m, t) in enumerate(zip(m_in, t_in, strict=True)):
        if needs_grad[i]:
            assert m.grad is not None and m.grad.dtype == m.dtype
            assert_close(m.grad, t.grad, dtype, msg=f"gradient of input {i}", **tol)


# ---------------------------------------------------------------- cross-entropy

SHAPES = {"(N,C)": (6, 5), "(N,C,H,W)": (2, 4, 3, 3), "(C,)": (5,)}


def _index_target(shape, rng, ignore=-100):
    n_classes = shape[0] if len(shape) == 1 else shape[1]
    if len(shape) == 1:
        return np.array(rng.integers(0, n_classes), dtype=np.int64)
    target = rng.integers(0, n_classes, size=shape[:1] + shape[2:])
    flat = target.reshape(-1)
    flat[[1, -1]] = ignore  # two ignored elements
    return target


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.15])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_cross_entropy_class_indices(shape, reduction, weighted, label_smoothing, dtype,
                                     backend):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    target = _index_target(shape, rng)
    n_classes = shape[0] if len(shape) == 1 else shape[1]
    w = rng.uniform(0.2, 2.0, n_classes).astype(dtype) if weighted else None
    kw = {"reduction": reduction, "label_smoothing": label_smoothing}
    device = device_of(backend)
    _compare(
        lambda a: F.cross_entropy(a, minicnn.tensor(target, device=device),
                                  None if w is None else minicnn.tensor(w, device=device), **kw),
        lambda a: TF.cross_entropy(a, torch.tensor(target),
                                   None if w is None else torch.tensor(w), **kw),
        [x], [True], device, dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.15])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_cross_entropy_class_probabilities(shape, reduction, weighted, label_smoothing, dtype,
                                           backend):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    class_dim = 0 if len(shape) == 1 else 1
    p = rng.uniform(0.0, 1.0, shape)
    p = (p / p.sum(axis=class_dim, keepdims=True)).astype(dtype)
    n_classes = shape[class_dim]
    w = rng.uniform(0.2, 2.0, n_classes).astype(dtype) if weighted else None
    kw = {"reduction": reduction, "label_smoothing": label_smoothing}
    device = device_of(backend)
    _compare(  # the gradient with respect to the soft target is compared too
        lambda a, t: F.cross_entropy(a, t, None if w is None else minicnn.tensor(w, device=device),
                                     **kw),
        lambda a, t: TF.cross_entropy(a, t, None if w is None else torch.tensor(w), **kw),
        [x, p], [True, True], device, dtype,
    )


@pytest.mark.parametrize("ignore_index", [255, 0, -1])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_custom_ignore_index(ignore_index, label_smoothing):
    """ignore_index may be outside [0, C) (255, -1) or a real class (0), as in PyTorch."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 5, 2))
    target = rng.integers(0, 4, size=(3, 5, 2))
    target[0, :2] = ignore_index
    w = rng.uniform(0.5, 1.5, 4)
    for reduction in REDUCTIONS:
        kw = {"ignore_index": ignore_index, "reduction": reduction,
              "label_smoothing": label_smoothing}
        _compare(lambda a, kw=kw: F.cross_entropy(a, minicnn.tensor(target), minicnn.tensor(w),
                                                  **kw),
                 lambda a, kw=kw: TF.cross_entropy(a, torch.tensor(target), torch.tensor(w),
                                                   **kw),
                 [x], [True])


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_all_ignored_mean_is_nan_with_zero_gradient(label_smoothing):
    x = minicnn.randn(3, 4, dtype=np.float64, requires_grad=True)
    target = minicnn.tensor([-100, -100, -100])
    loss = F.cross_entropy(x, target, label_smoothing=label_smoothing)
    expected = TF.cross_entropy(torch.tensor(x.detach().numpy()), torch.tensor(target.numpy()),
                                label_smoothing=label_smoothing)
    assert np.isnan(loss.item()) and np.isnan(expected.item())
    loss.backward()
    assert np.all(x.grad.numpy() == 0)


def test_cross_entropy_empty_batch_mean_is_nan():
    loss = F.cross_entropy(minicnn.zeros(0, 4), minicnn.zeros(0, dtype=np.int64))
    assert np.isnan(loss.item())


def test_cross_entropy_large_logits_are_stable():
    x = np.array([[1000.0, -1000.0, 0.0], [-500.0, 500.0, 499.0]])
    target = np.array([1, 2])
    _compare(lambda a: F.cross_entropy(a, minicnn.tensor(target), label_smoothing=0.1),
             lambda a: TF.cross_entropy(a, torch.tensor(target), label_smoothing=0.1),
             [x], [True])


@pytest.mark.parametrize("legacy, reduction", [
    ({"size_average": False}, "sum"), ({"reduce": False}, "none"),
    ({"size_average": True, "reduce": True}, "mean"),
])
def test_legacy_size_average_and_reduce(legacy, reduction):
    rng = np.random.default_rng(3)
    x = minicnn.tensor(rng.standard_normal((4, 3)))
    t = minicnn.tensor(rng.integers(0, 3, 4))
    assert_close(F.cross_entropy(x, t, **legacy), F.cross_entropy(x, t, reduction=reduction))
    y = minicnn.tensor(rng.standard_normal((4, 3)))
    assert_close(F.mse_loss(x, y, **legacy), F.mse_loss(x, y, reduction=reduction))


def test_cross_entropy_gradcheck_index_targets():
    rng = np.random.default_rng(4)
    x = minicnn.tensor(rng.standard_normal((2, 3, 2, 2)), requires_grad=True)
    t = rng.integers(0, 3, (2, 2, 2))
    t[0, 0, 0] = -100
    target, w = minicnn.tensor(t), minicnn.tensor(rng.uniform(0.5, 2, 3))
    for reduction in REDUCTIONS:
        assert minicnn.gradcheck(
            lambda a, r=reduction: F.cross_entropy(a, target, w, reduction=r,
                                                   label_smoothing=0.2),
            [x], atol=1e-8, rtol=1e-6)


def test_cross_entropy_gradcheck_probability_targets():
    rng = np.random.default_rng(5)
    x = minicnn.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    p = minicnn.tensor(rng.uniform(0, 1, (3, 4)), requires_grad=True)
    w = minicnn.tensor(rng.uniform(0.5, 2, 4))
    assert minicnn.gradcheck(lambda a, b: F.cross_entropy(a, b, w, label_smoothing=0.1),
                             [x, p], atol=1e-8, rtol=1e-6)


# ---------------------------------------------------------------- nll_loss


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_nll_loss(shape, reduction, weighted, dtype, backend):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape).astype(dtype)
    target = _index_target(shape, rng, ignore=3 if len(shape) > 1 else -100)
    n_classes = shape[0] if len(shape) == 1 else shape[1]
    w = rng.uniform(0.2, 2.0, n_classes).astype(dtype) if weighted else None
    device = device_of(backend)
    ignore = 3 if len(shape) > 1 else -100
    kw = {"reduction": reduction, "ignore_index": ignore}
    _compare(lambda a: F.nll_loss(a, minicnn.tensor(target, device=device),
                                  None if w is None else minicnn.tensor(w, device=device), **kw),
             lambda a: TF.nll_loss(a, torch.tensor(target), None if w is None else torch.tensor(w),
                                   **kw),
             [x], [True], device, dtype)


def test_nll_loss_gradcheck():
    rng = np.random.default_rng(7)
    x = minicnn.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    t, w = minicnn.tensor([0, 2, -100, 1]), minicnn.tensor(rng.uniform(0.5, 2, 3))
    for reduction in REDUCTIONS:
        assert minicnn.gradcheck(lambda a, r=reduction: F.nll_loss(a, t, w, reduction=r), [x])


# ---------------------------------------------------------------- regression losses

REGRESSION = [
    ("mse", F.mse_loss, TF.mse_loss, {}),
    ("l1", F.l1_loss, TF.l1_loss, {}),
    ("smooth_l1", F.smooth_l1_loss, TF.smooth_l1_loss, {}),
    ("smooth_l1_beta0.5", F.smooth_l1_loss, TF.smooth_l1_loss, {"beta": 0.5}),
    ("smooth_l1_beta0", F.smooth_l1_loss, TF.smooth_l1_loss, {"beta": 0.0}),
    ("huber", F.huber_loss, TF.huber_loss, {}),
    ("huber_delta2", F.huber_loss, TF.huber_loss, {"delta": 2.0}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(), (7,), (2, 3, 4)])
@pytest.mark.parametrize("case", REGRESSION, ids=[c[0] for c in REGRESSION])
def test_regression_losses(case, shape, reduction, dtype, backend):
    _, m_fn, t_fn, kw = case
    rng = np.random.default_rng(8)
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    y = (rng.standard_normal(shape) * 2).astype(dtype)
    _compare(lambda a, b: m_fn(a, b, reduction=reduction, **kw),
             lambda a, b: t_fn(a, b, reduction=reduction, **kw),
             [x, y], [True, True], device_of(backend), dtype)


@pytest.mark.parametrize("case", REGRESSION, ids=[c[0] for c in REGRESSION])
def test_regression_losses_at_the_kinks(case):
    """Zero difference (|d|'s kink) and |d| == beta / delta follow PyTorch's gradients."""
    _, m_fn, t_fn, kw = case
    x = np.array([0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.0])
    y = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    _compare(lambda a, b: m_fn(a, b, reduction="sum", **kw),
             lambda a, b: t_fn(a, b, reduction="sum", **kw), [x, y], [True, True])


@pytest.mark.parametrize("case", REGRESSION, ids=[c[0] for c in REGRESSION])
def test_regression_losses_gradcheck(case):
    _, m_fn, _, kw = case
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 4)) * 2
    y = rng.standard_normal((3, 4)) * 2
    d = x - y
    d[np.abs(d) < 0.05] += 0.2  # keep away from the kinks at 0 and +-beta / delta
    for k in (0.5, 1.0, 2.0):
        near = np.abs(np.abs(d) - k) < 0.05
        d[near] += 0.15 * np.sign(d[near])
    a = minicnn.tensor(y + d, requires_grad=True)
    b = minicnn.tensor(y, requires_grad=True)
    for reduction in REDUCTIONS:
        assert minicnn.gradcheck(lambda p, q, r=reduction: m_fn(p, q, reduction=r, **kw), [a, b])


def test_empty_mean_is_nan():
    assert np.isnan(F.mse_loss(minicnn.zeros(0), minicnn.zeros(0)).item())


# ---------------------------------------------------------------- binary cross-entropy


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight_shape", [None, (4,), (3, 1, 4)], ids=["none", "(4,)", "full"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy(reduction, weight_shape, dtype, backend):
    rng = np.random.default_rng(10)
    x = rng.uniform(0.02, 0.98, (3, 2, 4)).astype(dtype)
    y = rng.uniform(0, 1, (3, 2, 4)).astype(dtype)
    w = None if weight_shape is None else rng.uniform(0.5, 2, weight_shape).astype(dtype)
    device = device_of(backend)
    _compare(lambda a, b: F.binary_cross_entropy(
                 a, b, None if w is None else minicnn.tensor(w, device=device),
                 reduction=reduction),
             lambda a, b: TF.binary_cross_entropy(
                 a, b, None if w is None else torch.tensor(w), reduction=reduction),
             [x, y], [True, True], device, dtype)


def test_binary_cross_entropy_clamps_log_at_0_and_1():
    x = np.array([0.0, 1.0, 0.0, 1.0, 1e-50, 0.5])
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.3])
    # the gradient of the input: both divide by max(x (1 - x), 1e-12); PyTorch's 1e-12 is a
    # float32 constant even in float64 (relative difference 4e-9 where it applies)
    _compare(lambda a, b: F.binary_cross_entropy(a, b, reduction="none"),
             lambda a, b: TF.binary_cross_entropy(a, b, reduction="none"),
             [x, y], [True, False], rtol=1e-8)
    loss = F.binary_cross_entropy(minicnn.tensor(x), minicnn.tensor(y), reduction="none")
    assert loss.numpy()[0] == 100 and loss.numpy()[1] == 100  # log clamped at -100


def test_binary_cross_entropy_gradcheck():
    rng = np.random.default_rng(11)
    x = minicnn.tensor(rng.uniform(0.1, 0.9, (3, 4)), requires_grad=True)
    y = minicnn.tensor(rng.uniform(0, 1, (3, 4)), requires_grad=True)
    w = minicnn.tensor(rng.uniform(0.5, 2, 4))
    for reduction in REDUCTIONS:
        assert minicnn.gradcheck(
            lambda a, b, r=reduction: F.binary_cross_entropy(a, b, w, reduction=r), [x, y])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pos_weight", [False, True], ids=["no_pos_weight", "pos_weight"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits(reduction, weighted, pos_weight, dtype, backend):
    rng = np.random.default_rng(12)
    x = (rng.standard_normal((5, 4)) * 3).astype(dtype)
    y = rng.uniform(0, 1, (5, 4)).astype(dtype)
    w = rng.uniform(0.5, 2, (5, 1)).astype(dtype) if weighted else None
    pw = rng.uniform(0.5, 3, 4).astype(dtype) if pos_weight else None
    device = device_of(backend)

    def m_fn(a, b):
        return F.binary_cross_entropy_with_logits(
            a, b, None if w is None else minicnn.tensor(w, device=device), reduction=reduction,
            pos_weight=None if pw is None else minicnn.tensor(pw, device=device))

    def t_fn(a, b):
        return TF.binary_cross_entropy_with_logits(
            a, b, None if w is None else torch.tensor(w), reduction=reduction,
            pos_weight=None if pw is None else torch.tensor(pw))

    _compare(m_fn, t_fn, [x, y], [True, True], device, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pos_weight", [None, 2.5])
def test_bce_with_logits_is_stable_for_huge_logits(pos_weight, dtype):
    x = np.array([-1000.0, 1000.0, -1000.0, 1000.0, -80.0, 80.0], dtype=dtype)
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.5, 0.5], dtype=dtype)
    pw = None if pos_weight is None else np.full(6, pos_weight, dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        _compare(
            lambda a, b: F.binary_cross_entropy_with_logits(
                a, b, reduction="none", pos_weight=None if pw is None else minicnn.tensor(pw)),
            lambda a, b: TF.binary_cross_entropy_with_logits(
                a, b, reduction="none", pos_weight=None if pw is None else torch.tensor(pw)),
            [x, y], [True, True], "cpu", dtype)


def test_bce_with_logits_gradcheck():
    rng = np.random.default_rng(13)
    x = minicnn.tensor(rng.standard_normal((3, 4)) * 3, requires_grad=True)
    y = minicnn.tensor(rng.uniform(0, 1, (3, 4)), requires_grad=True)
    w, pw = minicnn.tensor(rng.uniform(0.5, 2, (3, 1))), minicnn.tensor(rng.uniform(0.5, 3, 4))
    for reduction in REDUCTIONS:
        for p in (None, pw):
            assert minicnn.gradcheck(
                lambda a, b, r=reduction, p=p: F.binary_cross_entropy_with_logits(
                    a, b, w, reduction=r, pos_weight=p), [x, y])


# ---------------------------------------------------------------- bad input


def test_float_class_target_is_a_type_error():
    with pytest.raises(TypeError, match="integer dtype \\(int64\\), got float32"):
        F.cross_entropy(minicnn.randn(4, 3), minicnn.zeros(4))
    with pytest.raises(TypeError, match="int64"):
        F.nll_loss(minicnn.randn(4, 3), minicnn.zeros(4))


def test_integer_probability_target_is_a_type_error():
    with pytest.raises(TypeError, match="class probabilities and must be floating point"):
        F.cross_entropy(minicnn.randn(4, 3), minicnn.zeros(4, 3, dtype=np.int64))


@pytest.mark.parametrize("bad", [3, 7, -2])
def test_class_index_out_of_range(bad):
    target = minicnn.tensor([0, bad, 1, -100])
    with pytest.raises(ValueError, match=f"class index {bad}.*C = 3"):
        F.cross_entropy(minicnn.randn(4, 3), target)
    with pytest.raises(ValueError, match=f"class index {bad}.*C = 3"):
        F.nll_loss(minicnn.randn(4, 3), target)


def test_class_target_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"target shape \(5,\).*input shape \(4, 3\)"):
        F.cross_entropy(minicnn.randn(4, 3), minicnn.tensor([0, 1, 2, 0, 1]))
    with pytest.raises(ValueError, match=r"target shape \(2, 3\).*input shape \(2, 4, 3, 3\)"):
        F.cross_entropy(minicnn.randn(2, 4, 3, 3), minicnn.zeros(2, 3, dtype=np.int64))


@pytest.mark.parametrize("fn", [F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss,
                                F.binary_cross_entropy, F.binary_cross_entropy_with_logits])
def test_elementwise_loss_shape_mismatch_names_both_shapes(fn):
    with pytest.raises(ValueError, match=r"target shape \(3, 1\).*input shape \(3, 2\)"):
        fn(minicnn.rand(3, 2), minicnn.rand(3, 1))


@pytest.mark.parametrize("fn, args", [
    (F.cross_entropy, lambda: (minicnn.randn(2, 3), minicnn.tensor([0, 1]))),
    (F.nll_loss, lambda: (minicnn.randn(2, 3), minicnn.tensor([0, 1]))),
    (F.mse_loss, lambda: (minicnn.rand(2), minicnn.rand(2))),
    (F.l1_loss, lambda: (minicnn.rand(2), minicnn.rand(2))),
    (F.smooth_l1_loss, lambda: (minicnn.rand(2), minicnn.rand(2))),
    (F.huber_loss, lambda: (minicnn.rand(2), minicnn.rand(2))),
    (F.binary_cross_entropy, lambda: (minicnn.rand(2), minicnn.rand(2))),
    (F.binary_cross_entropy_with_logits, lambda: (minicnn.rand(2), minicnn.rand(2))),
])
def test_unknown_reduction(fn, args):
    with pytest.raises(ValueError, match="reduction must be 'none', 'mean' or 'sum', got 'avg'"):
        fn(*args(), reduction="avg")


def test_class_weight_of_wrong_shape():
    with pytest.raises(ValueError, match=r"weight must have shape \(C,\) = \(3,\), got \(4,\)"):
        F.cross_entropy(minicnn.randn(2, 3), minicnn.tensor([0, 1]), minicnn.ones(4))


def test_label_smoothing_out_of_range():
    with pytest.raises(ValueError, match="label_smoothing must be in \\[0, 1\\], got 1.5"):
        F.cross_entropy(minicnn.randn(2, 3), minicnn.tensor([0, 1]), label_smoothing=1.5)


def test_binary_cross_entropy_rejects_non_probabilities():
    with pytest.raises(ValueError, match=r"probability in \[0, 1\].*1.5.*with_logits"):
        F.binary_cross_entropy(minicnn.tensor([0.2, 1.5]), minicnn.tensor([0.0, 1.0]))


def test_bce_weight_that_does_not_broadcast():
    with pytest.raises(ValueError, match=r"weight of shape \(3,\) does not broadcast.*\(2, 4\)"):
        F.binary_cross_entropy_with_logits(minicnn.randn(2, 4), minicnn.rand(2, 4),
                                           minicnn.ones(3))


def test_smooth_l1_negative_beta_and_huber_non_positive_delta():
    with pytest.raises(ValueError, match="beta must be >= 0, got -1"):
        F.smooth_l1_loss(minicnn.rand(2), minicnn.rand(2), beta=-1)
    with pytest.raises(ValueError, match="delta must be > 0, got 0"):
        F.huber_loss(minicnn.rand(2), minicnn.rand(2), delta=0)


def test_zero_dim_input_to_cross_entropy():
    with pytest.raises(ValueError, match="class dimension"):
        F.cross_entropy(minicnn.tensor(1.0), minicnn.tensor(0))
