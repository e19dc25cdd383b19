"""The layer modules of the nn core: Linear, Identity, Flatten, Unflatten, the activation,
Dropout and loss modules -- outputs and gradients against torch.nn, PyTorch's default
initialisation, constructor arguments and repr, and no memory growth over training steps."""

from __future__ import annotations

import gc
import math
import tracemalloc

import numpy as np
import pytest
import torch

import minicnn
import minicnn.nn as nn
from tests.conftest import device_of
from tests.helpers import assert_close, pair

DTYPES = [np.float32, np.float64]


def copy_params(dst: nn.Module, src: torch.nn.Module) -> None:
    dst.load_state_dict({k: v.detach().numpy() for k, v in src.state_dict().items()})


def run_both(m, t, x: np.ndarray, device="cpu"):
    """Forward both modules on the same input, backward a weighted sum, return everything."""
    xm, xt = pair(x, device=device)
    ym, yt = m(xm), t(xt)
    w = np.random.default_rng(7).standard_normal(yt.shape).astype(x.dtype)
    (ym * minicnn.tensor(w, device=device)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    return ym, yt, xm, xt


# ---------------------------------------------------------------------------- Linear
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,bias", [((5, 7), True), ((2, 3, 7), True), ((7,), False)])
def test_linear_matches_torch(backend, dtype, shape, bias):
    device = device_of(backend)
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    t = torch.nn.Linear(7, 4, bias=bias, dtype=tdtype)
    m = nn.Linear(7, 4, bias=bias, dtype=dtype).to(device)
    copy_params(m, t)
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    ym, yt, xm, xt = run_both(m, t, x, device)
    assert ym.dtype == dtype and ym.shape == tuple(yt.shape)
    assert_close(ym, yt, dtype)
    assert_close(xm.grad, xt.grad, dtype)
    assert_close(m.weight.grad, t.weight.grad, dtype)
    if bias:
        assert_close(m.bias.grad, t.bias.grad, dtype)
    else:
        assert m.bias is None and [n for n, _ in m.named_parameters()] == ["weight"]


def test_linear_default_init_matches_pytorch_distribution():
    m = nn.Linear(400, 600)
    bound = 1 / math.sqrt(400)  # kaiming_uniform_(a=sqrt(5)) gives U(-1/sqrt(fan_in), ..)
    w, b = m.weight.detach().numpy(), m.bias.detach().numpy()
    assert w.dtype == np.float32 and w.shape == (600, 400) and b.shape == (600,)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)  # 240k samples: ~0.3% noise
    assert np.abs(b).max() <= bound and b.std() == pytest.approx(bound / math.sqrt(3), rel=0.15)
    t = torch.nn.Linear(400, 600)
    assert t.weight.abs().max().item() <= bound  # the same bound holds in torch
    minicnn.manual_seed(5)
    first = nn.Linear(3, 2).weight.detach().numpy().copy()
    minicnn.manual_seed(5)
    np.testing.assert_array_equal(nn.Linear(3, 2).weight.detach().numpy(), first)


def test_linear_arguments():
    m = nn.Linear(3, 2, bias=False, dtype=np.float64)
    assert m.weight.dtype == np.float64 and m.bias is None
    assert repr(m) == str(torch.nn.Linear(3, 2, bias=False))
    assert m.in_features == 3 and m.out_features == 2
    with pytest.raises(ValueError, match=r"Linear\(in_features\) must be a non-negative int"):
        nn.Linear(-1, 2)
    with pytest.raises(ValueError, match="out_features.*got 2.5"):
        nn.Linear(3, 2.5)
    with pytest.raises(TypeError, match="floating point"):
        nn.Linear(3, 2, dtype=np.int64)


# ---------------------------------------------------------------------------- shape layers
@pytest.mark.parametrize("start,end", [(1, -1), (0, -1), (1, 2), (-2, -1), (2, 2)])
def test_flatten_matches_torch(start, end):
    m, t = nn.Flatten(start, end), torch.nn.Flatten(start, end)
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    ym, yt, xm, xt = run_both(m, t, x)
    assert ym.shape == tuple(yt.shape)
    assert_close(ym, yt)
    assert_close(xm.grad, xt.grad)
    assert repr(m) == str(t)


@pytest.mark.parametrize("dim,sizes,shape", [(1, (2, 6), (3, 12)), (-1, (2, -1), (4, 3, 8)),
                                             (0, (2, 2), (4, 5)), (1, [3, 2, 2], (2, 12))])
def test_unflatten_matches_torch(dim, sizes, shape):
    m, t = nn.Unflatten(dim, sizes), torch.nn.Unflatten(dim, sizes)
    x = np.random.default_rng(0).standard_normal(shape)
    ym, yt, xm, xt = run_both(m, t, x)
    assert ym.shape == tuple(yt.shape)
    assert_close(ym, yt)
    assert_close(xm.grad, xt.grad)
    assert repr(m) == str(t)


def test_unflatten_and_identity_errors_and_identity():
    with pytest.raises(ValueError, match=r"unflattened_size \(5, 2\) does not match size 12"):
        nn.Unflatten(1, (5, 2))(minicnn.zeros(2, 12))
    with pytest.raises(ValueError, match=r"Unflatten\(dim=3\) is out of range"):
        nn.Unflatten(3, (2, 2))(minicnn.zeros(2, 4))
    with pytest.raises(TypeError, match="unflattened_size\\) must be a tuple of ints"):
        nn.Unflatten(1, 4)
    x = minicnn.randn(3, 2)
    assert nn.Identity(54, unused="x")(x) is x
    assert repr(nn.Identity()) == str(torch.nn.Identity())


# ---------------------------------------------------------------------------- activations
ACTIVATIONS = [
    ("ReLU", (), {}), ("ReLU", (), {"inplace": True}), ("LeakyReLU", (), {}),
    ("LeakyReLU", (0.2,), {"inplace": True}), ("ReLU6", (), {}), ("ReLU6", (True,), {}),
    ("ELU", (), {}), ("ELU", (0.5,), {}), ("GELU", (), {}), ("GELU", (), {"approximate": "tanh"}),
    ("SiLU", (), {}), ("Hardswish", (), {}), ("Hardsigmoid", (), {}), ("Sigmoid", (), {}),
    ("Tanh", (), {}), ("Softmax", (), {"dim": 1}), ("Softmax", (-1,), {}),
    ("LogSoftmax", (), {"dim": 1}), ("Softplus", (), {}), ("Softplus", (2.0, 5.0), {}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,args,kwargs", ACTIVATIONS)
def test_activation_modules_match_torch(dtype, name, args, kwargs):
    m, t = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(m) == str(t)
    # values away from the kinks (0 and +-3), so torch and minicnn agree on the derivative
    x = np.random.default_rng(0).uniform(-5, 5, size=(4, 6, 3)).astype(dtype)
    x[np.abs(x) < 0.05] += 0.1
    x[np.abs(np.abs(x) - 3) < 0.05] += 0.1
    if name == "ReLU6":
        x[np.abs(x - 6) < 0.05] += 0.1
    t_in = t.inplace if hasattr(t, "inplace") else False
    if t_in:
        t.inplace = False  # torch would overwrite a leaf; minicnn never works in place anyway
    ym, yt, xm, xt = run_both(m, t, x)
    assert ym.dtype == dtype
    assert_close(ym, yt, dtype)
    # torch's float64 hardsigmoid backward multiplies by a float32 1/6 (0.1666666716...);
    # minicnn uses the exact 1/6, so compare that gradient at float32 precision (rtol 1e-7)
    loose = name == "Hardsigmoid" and dtype == np.float64
    grad_tol = {"rtol": 1e-7, "atol": 1e-12} if loose else {}
    assert_close(xm.grad, xt.grad, dtype, **grad_tol)


def test_softmax_implicit_dim_warns_like_torch():
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    for cls in ("Softmax", "LogSoftmax"):
        with pytest.warns(UserWarning, match="Implicit dimension choice"):
            ym = getattr(nn, cls)()(minicnn.tensor(x))
        with pytest.warns(UserWarning):
            yt = getattr(torch.nn, cls)()(torch.tensor(x))
        assert_close(ym, yt)
        assert repr(getattr(nn, cls)()) == str(getattr(torch.nn, cls)())


def test_activation_argument_errors():
    with pytest.raises(ValueError, match="approximate.*'none' or 'tanh', got 'fast'"):
        nn.GELU(approximate="fast")


# ---------------------------------------------------------------------------- Dropout
def test_dropout_train_and_eval():
    d = nn.Dropout(0.3)
    assert repr(d) == str(torch.nn.Dropout(0.3))
    assert repr(nn.Dropout(inplace=True)) == str(torch.nn.Dropout(inplace=True))
    x = minicnn.ones(200, 500)
    y = d(x).numpy()
    kept = y != 0
    assert kept.mean() == pytest.approx(0.7, abs=0.01)  # 100k Bernoulli draws: sd 0.0015
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    d.eval()
    np.testing.assert_array_equal(d(x).numpy(), x.numpy())
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    model.eval()
    a = model(minicnn.ones(3, 4)).detach().numpy()
    np.testing.assert_array_equal(a, model(minicnn.ones(3, 4)).detach().numpy())
    assert nn.Dropout(0.0)(x).numpy().min() == 1.0
    assert nn.Dropout(1.0)(x).numpy().max() == 0.0
    for bad in (-0.1, 1.5, "0.5"):
        with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
            nn.Dropout(bad)


# ---------------------------------------------------------------------------- losses
def _class_problem(dtype, n=8, c=5):
    rng = np.random.default_rng(3)
    return rng.standard_normal((n, c)).astype(dtype), rng.integers(0, c, size=n)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_classification_losses_match_torch(dtype, reduction):
    logits, target = _class_problem(dtype)
    weight = np.linspace(0.5, 2.0, 5).astype(dtype)
    target[1] = 2
    cases = [
        ("CrossEntropyLoss", {}),
        ("CrossEntropyLoss", {"weight": weight, "label_smoothing": 0.1}),
        ("CrossEntropyLoss", {"ignore_index": 2}),
        ("NLLLoss", {"weight": weight}),
    ]
    for name, kw in cases:
        kw_m = {k: minicnn.tensor(v) if k == "weight" else v for k, v in kw.items()}
        kw_t = {k: torch.tensor(v) if k == "weight" else v for k, v in kw.items()}
        m = getattr(nn, name)(reduction=reduction, **kw_m)
        t = getattr(torch.nn, name)(reduction=reduction, **kw_t)
        assert repr(m) == str(t)
        assert list(m.state_dict()) == list(t.state_dict())  # weight is a buffer
        xm, xt = pair(logits)
        if name == "NLLLoss":
            lm = m(xm.log_softmax(1), minicnn.tensor(target))
            lt = t(xt.log_softmax(1), torch.tensor(target))
        else:
            lm, lt = m(xm, minicnn.tensor(target)), t(xt, torch.tensor(target))
        assert_close(lm, lt, dtype, msg=f"{name} {kw}")
        lm.sum().backward()
        lt.sum().backward()
        assert_close(xm.grad, xt.grad, dtype, msg=f"{name} {kw}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_and_binary_losses_match_torch(dtype, reduction):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 3)).astype(dtype)
    y = rng.standard_normal((6, 3)).astype(dtype)
    p = rng.uniform(0.05, 0.95, (6, 3)).astype(dtype)
    labels = rng.integers(0, 2, (6, 3)).astype(dtype)
    w = rng.uniform(0.5, 2.0, 3).astype(dtype)
    cases = [
        ("MSELoss", {}, x, y), ("L1Loss", {}, x, y), ("SmoothL1Loss", {}, x, y),
        ("SmoothL1Loss", {"beta": 0.5}, x, y), ("BCELoss", {}, p, labels),
        ("BCELoss", {"weight": w}, p, labels), ("BCEWithLogitsLoss", {}, x, labels),
        ("BCEWithLogitsLoss", {"weight": w, "pos_weight": w[::-1].copy()}, x, labels),
    ]
    for name, kw, inp, tgt in cases:
        kw_m = {k: minicnn.tensor(v) for k, v in kw.items() if k != "beta"}
        kw_t = {k: torch.tensor(v) for k, v in kw.items() if k != "beta"}
        if "beta" in kw:
            kw_m["beta"] = kw_t["beta"] = kw["beta"]
        m = getattr(nn, name)(reduction=reduction, **kw_m)
        t = getattr(torch.nn, name)(reduction=reduction, **kw_t)
        assert repr(m) == str(t)
        assert list(m.state_dict()) == list(t.state_dict())
        xm, xt = pair(inp)
        lm, lt = m(xm, minicnn.tensor(tgt)), t(xt, torch.tensor(tgt))
        assert_close(lm, lt, dtype, msg=f"{name} {kw}")
        lm.sum().backward()
        lt.sum().backward()
        assert_close(xm.grad, xt.grad, dtype, msg=f"{name} {kw}")


def test_loss_arguments():
    assert nn.MSELoss(size_average=False).reduction == "sum"  # PyTorch's legacy flags
    assert nn.L1Loss(reduce=False).reduction == "none"
    assert nn.CrossEntropyLoss(size_average=True, reduce=True).reduction == "mean"
    with pytest.raises(ValueError, match=r"must be one of \['none', 'mean', 'sum'\], got 'avg'"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing\\) must be in \\[0, 1\\], got 1.5"):
        nn.CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(ValueError, match="beta\\) must be non-negative"):
        nn.SmoothL1Loss(beta=-1.0)
    ce = nn.CrossEntropyLoss(weight=minicnn.ones(3)).double()
    assert ce.weight.dtype == np.float64  # the class weight follows .to()


# ---------------------------------------------------------------------------- memory
def test_training_steps_do_not_grow_memory():
    """200 SGD steps of a small MLP: traced memory after step 200 equals that after step 50,
    and the per-step peak does not creep up (a leaked graph or gradient would show here)."""
    minicnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 10))
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    x = minicnn.tensor(rng.standard_normal((32, 20)).astype(np.float32))
    y = minicnn.tensor(rng.integers(0, 10, 32))

    def step():
        loss = loss_fn(model(x), y)
        model.zero_grad()
        loss.backward()
        with minicnn.no_grad():
            for p in model.parameters():
                p.array -= 0.1 * p.grad.array
        return float(loss.item())

    def measure() -> tuple[int, int]:
        """(memory held, peak during one step); a full collection first empties Python's
        free lists, whose slow filling would otherwise look like growth."""
        gc.collect()
        tracemalloc.reset_peak()
        step()
        gc.collect()
        held, peak = tracemalloc.get_traced_memory()
        return held, peak

    tracemalloc.start()
    try:
        first = [step() for _ in range(49)]
        held_50, peak_50 = measure()
        for _ in range(149):
            last = step()
        held_200, peak_200 = measure()
    finally:
        tracemalloc.stop()
    assert last < first[0]  # it trained
    assert held_200 - held_50 < 8 * 1024, (held_50, held_200)
    assert peak_200 - peak_50 < 8 * 1024, (peak_50, peak_200)
