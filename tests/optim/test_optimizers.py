"""minicnn.optim optimizers against torch.optim.

Each trajectory test gives minicnn and torch the same initial parameters (several
shapes) and the same seeded sequence of gradients (set on ``.grad`` directly), runs
20 steps and compares the parameters after every step.

Tolerances (max abs diff, plus the same relative term for values above 1):
float64 1e-12; float32 1e-6. The float64 runs agree to ~1e-15; in float32 PyTorch's CPU
kernels fuse multiply-adds (one rounding where NumPy makes two), so the trajectories
drift apart by a few ulps (<= 1.5e-6 seen on values of size ~5 with momentum).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import minicnn
from minicnn import optim
from tests.helpers import to_numpy

SHAPES = [(5,), (3, 4), (2, 3, 2, 2)]
STEPS = 20
TOL = {np.float64: 1e-12, np.float32: 1e-6}

CASES = [
    # SGD
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, weight_decay=0.1)),
    ("SGD", dict(lr=0.1, maximize=True)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.1, weight_decay=0.05, maximize=True)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01, maximize=True)),
    # Adam
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, maximize=True)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05, amsgrad=True,
                  maximize=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    # AdamW
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True, maximize=True)),
    # RMSprop
    ("RMSprop", dict()),
    ("RMSprop", dict(alpha=0.9, eps=1e-6)),
    ("RMSprop", dict(centered=True)),
    ("RMSprop", dict(momentum=0.9)),
    ("RMSprop", dict(weight_decay=0.1)),
    ("RMSprop", dict(lr=0.005, centered=True, momentum=0.5, weight_decay=0.05, maximize=True)),
]


def _case_id(case):
    name, kw = case
    return name + "-" + ("-".join(f"{k}={v}" for k, v in kw.items()) or "defaults")


def _initial(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def _gradients(dtype, steps=STEPS, seed=1):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(steps)]


def _params(init):
    m = [minicnn.tensor(a.copy(), requires_grad=True) for a in init]
    t = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    return m, t


def _set_grads(m_params, t_params, grads):
    for p, q, g in zip(m_params, t_params, grads, strict=True):
        p.grad = None if g is None else minicnn.tensor(g.copy())
        q.grad = None if g is None else torch.tensor(g.copy())


def _assert_params(m_params, t_params, dtype, where):
    tol = TOL[dtype]
    for i, (p, q) in enumerate(zip(m_params, t_params, strict=True)):
        assert p.dtype == np.dtype(dtype)
        np.testing.assert_allclose(
            to_numpy(p), to_numpy(q), rtol=tol, atol=tol, err_msg=f"{where}, parameter {i}"
        )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_trajectory_matches_torch(case, dtype):
    name, kw = case
    m_params, t_params = _params(_initial(dtype))
    m_opt = getattr(optim, name)(m_params, **kw)
    t_opt = getattr(torch.optim, name)(t_params, **kw)
    for step, grads in enumerate(_gradients(dtype)):
        _set_grads(m_params, t_params, grads)
        m_opt.step()
        t_opt.step()
        _assert_params(m_params, t_params, dtype, f"{name}{kw} after step {step + 1}")


def test_defaults_match_torch():
    """Constructor defaults equal torch's (torch's extra keys -- foreach, fused... -- aside)."""
    for name in ("SGD", "Adam", "AdamW", "RMSprop"):
        m = getattr(optim, name)([minicnn.zeros(2, requires_grad=True)])
        t = getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)])
        assert m.defaults.keys() <= t.defaults.keys(), name
        for k, v in m.defaults.items():
            assert v == t.defaults[k], (name, k, v, t.defaults[k])


GROUP_CASES = [
    ("SGD", dict(lr=0.05, momentum=0.9), [dict(lr=0.2), dict(momentum=0.5, weight_decay=0.1)]),
    ("Adam", dict(lr=0.01), [dict(lr=0.05, amsgrad=True), dict(betas=(0.5, 0.9))]),
    ("AdamW", dict(lr=0.01), [dict(lr=0.03), dict(weight_decay=0.3)]),
    ("RMSprop", dict(lr=0.01), [dict(lr=0.001, centered=True), dict(momentum=0.7)]),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", GROUP_CASES, ids=lambda c: c[0])
def test_param_groups_match_torch(case, dtype):
    """Two groups with their own options; one parameter gets no gradient on odd steps
    (skipped, its state does not advance), as in torch."""
    name, kw, options = case
    m_params, t_params = _params(_initial(dtype))
    m_opt = getattr(optim, name)(
        [dict(params=m_params[:1], **options[0]), dict(params=m_params[1:], **options[1])], **kw
    )
    t_opt = getattr(torch.optim, name)(
        [dict(params=t_params[:1], **options[0]), dict(params=t_params[1:], **options[1])], **kw
    )
    for step, grads in enumerate(_gradients(dtype)):
        if step % 2:
            grads = [grads[0], None, grads[2]]
        _set_grads(m_params, t_params, grads)
        m_opt.step()
        t_opt.step()
        _assert_params(m_params, t_params, dtype, f"{name} groups after step {step + 1}")
    assert m_opt.param_groups[0]["lr"] == t_opt.param_groups[0]["lr"]


def test_add_param_group_matches_torch():
    """A group added after 5 steps (say, an unfrozen layer) with its own lr."""
    init = _initial(np.float64)
    m_params, t_params = _params(init)
    m_opt = optim.SGD(m_params[:2], lr=0.1, momentum=0.9)
    t_opt = torch.optim.SGD(t_params[:2], lr=0.1, momentum=0.9)
    for step, grads in enumerate(_gradients(np.float64)):
        if step == 5:
            m_opt.add_param_group({"params": m_params[2], "lr": 0.01})
            t_opt.add_param_group({"params": t_params[2], "lr": 0.01})
        _set_grads(m_params, t_params, grads)
        m_opt.step()
        t_opt.step()
        _assert_params(m_params, t_params, np.float64, f"after step {step + 1}")
    assert m_opt.param_groups[1]["momentum"] == 0.9  # filled in from the defaults


@pytest.mark.parametrize(
    "name, kw",
    [("SGD", dict(lr=0.01, momentum=0.9, nesterov=True)), ("Adam", dict(lr=0.05, amsgrad=True)),
     ("AdamW", dict(lr=0.05)), ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5))],
)
def test_real_backward_quadratic(name, kw):
    """Minimize ||A x - b||^2 through a real backward pass, zero_grad and a closure."""
    rng = np.random.default_rng(2)
    a, b, x0 = rng.standard_normal((6, 4)), rng.standard_normal(6), rng.standard_normal(4)
    mx, tx = minicnn.tensor(x0.copy(), requires_grad=True), torch.tensor(x0.copy(),
                                                                        requires_grad=True)
    ma, mb = minicnn.tensor(a), minicnn.tensor(b)
    ta, tb = torch.tensor(a), torch.tensor(b)
    m_opt, t_opt = getattr(optim, name)([mx], **kw), getattr(torch.optim, name)([tx], **kw)
    losses = []
    for step in range(STEPS):
        m_opt.zero_grad()
        t_opt.zero_grad()
        if step % 2:  # the closure form
            def closure():
                m_opt.zero_grad()
                loss = ((ma @ mx - mb) ** 2).sum()
                loss.backward()
                return loss

            m_loss = m_opt.step(closure)
        else:
            m_loss = ((ma @ mx - mb) ** 2).sum()
            m_loss.backward()
            m_opt.step()
        t_loss = ((ta @ tx - tb) ** 2).sum()
        t_loss.backward()
        t_opt.step()
        np.testing.assert_allclose(m_loss.item(), t_loss.item(), rtol=1e-12)
        np.testing.assert_allclose(to_numpy(mx), to_numpy(tx), rtol=0, atol=1e-12,
                                   err_msg=f"step {step + 1}")
        losses.append(m_loss.item())
    assert losses[-1] < losses[0]


def test_zero_grad():
    p, q = minicnn.ones(3, requires_grad=True), minicnn.ones(2, requires_grad=True)
    opt = optim.SGD([p, q], lr=0.1)
    p.grad = minicnn.ones(3)
    keep = p.grad.array
    opt.zero_grad(set_to_none=False)
    assert p.grad.array is keep and np.all(keep == 0) and q.grad is None
    opt.zero_grad()
    assert p.grad is None and q.grad is None


def test_step_writes_data_in_place_and_builds_no_graph():
    p = minicnn.ones(3, requires_grad=True)
    data = p.array
    p.grad = minicnn.ones(3)
    opt = optim.Adam([p], lr=0.1)
    opt.step()
    assert p.array is data and p.grad_fn is None and p.is_leaf
    np.testing.assert_allclose(data, 0.9)  # Adam's first step moves by lr * sign(g)


def test_repr_lists_groups():
    opt = optim.SGD([{"params": [minicnn.zeros(1, requires_grad=True)], "lr": 0.5}], lr=0.1)
    text = repr(opt)
    assert text.startswith("SGD (") and "Parameter Group 0" in text and "lr: 0.5" in text


def test_named_parameters():
    p, q = minicnn.ones(2, requires_grad=True), minicnn.ones(2, requires_grad=True)
    opt = optim.SGD([("w", p), ("b", q)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["w", "b"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["w", "b"]


# ---------------------------------------------------------------- state_dict
STATE_CASES = [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01, betas=(0.8, 0.95))),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9)),
]


def _to_files(state_dict):
    """Split a state dict as a checkpoint would: arrays -> safetensors bytes, rest -> JSON."""
    from safetensors.numpy import save

    arrays, state = {}, {}
    for i, s in state_dict["state"].items():
        state[i] = {}
        for k, v in s.items():
            if isinstance(v, np.ndarray):
                arrays[f"state.{i}.{k}"] = v
                v = {"__array__": f"state.{i}.{k}"}
            state[i][k] = v
    meta = json.dumps({"state": state, "param_groups": state_dict["param_groups"]})
    return save(arrays), meta


def _from_files(blob, meta):
    from safetensors.numpy import load

    arrays, sd = load(blob), json.loads(meta)
    for s in sd["state"].values():
        for k, v in s.items():
            if isinstance(v, dict) and "__array__" in v:
                s[k] = arrays[v["__array__"]]
    return sd


@pytest.mark.parametrize("case", STATE_CASES, ids=_case_id)
def test_state_dict_round_trip_resumes_exactly(case):
    """10 steps, save (safetensors + JSON), load into a fresh optimizer on fresh
    parameters, 10 more steps == 20 uninterrupted steps, bit for bit."""
    name, kw = case
    init, grads = _initial(np.float64), _gradients(np.float64)
    groups = lambda ps: [{"params": ps[:1], "lr": 0.02}, {"params": ps[1:]}]  # noqa: E731

    ref = [minicnn.tensor(a.copy(), requires_grad=True) for a in init]
    ref_opt = getattr(optim, name)(groups(ref), **kw)
    first = [minicnn.tensor(a.copy(), requires_grad=True) for a in init]
    first_opt = getattr(optim, name)(groups(first), **kw)
    for step in range(STEPS):
        for ps, opt in ((ref, ref_opt), (first, first_opt)) if step < 10 else ((ref, ref_opt),):
            for p, g in zip(ps, grads[step], strict=True):
                p.grad = minicnn.tensor(g.copy())
            opt.step()
        if step == 9:
            saved = _to_files(first_opt.state_dict())
            snapshot = [p.array.copy() for p in first]
            first_opt.step()  # the saved state must not alias the live one

    resumed = [minicnn.tensor(a, requires_grad=True) for a in snapshot]
    opt = getattr(optim, name)(groups(resumed), **kw)
    opt.load_state_dict(_from_files(*saved))
    assert isinstance(opt.param_groups[0]["params"][0], minicnn.Tensor)
    if "betas" in kw:
        assert opt.param_groups[1]["betas"] == kw["betas"]  # a tuple again after JSON
    for step in range(10, STEPS):
        for p, g in zip(resumed, grads[step], strict=True):
            p.grad = minicnn.tensor(g.copy())
        opt.step()
    for p, q in zip(resumed, ref, strict=True):
        np.testing.assert_array_equal(p.array, q.array)


@pytest.mark.parametrize("case", STATE_CASES, ids=_case_id)
def test_state_dict_layout_matches_torch(case):
    """Same state keys and values per parameter index, same group keys (torch's extra
    keys aside) and 'params' index lists; torch's state dict loads into minicnn."""
    name, kw = case
    init, grads = _initial(np.float64), _gradients(np.float64)
    m_params, t_params = _params(init)
    m_opt = getattr(optim, name)([{"params": m_params[:2]}, {"params": m_params[2:]}], **kw)
    t_opt = getattr(torch.optim, name)([{"params": t_params[:2]}, {"params": t_params[2:]}], **kw)
    for step in range(10):
        _set_grads(m_params, t_params, grads[step])
        m_opt.step()
        t_opt.step()
    m_sd, t_sd = m_opt.state_dict(), t_opt.state_dict()
    assert m_sd["state"].keys() == t_sd["state"].keys()
    for i, t_state in t_sd["state"].items():
        assert m_sd["state"][i].keys() == t_state.keys()
        for k, v in t_state.items():
            if k == "step":
                assert m_sd["state"][i][k] == float(v)
            elif v is not None:
                assert isinstance(m_sd["state"][i][k], np.ndarray)
                np.testing.assert_allclose(m_sd["state"][i][k], v.numpy(), rtol=0, atol=1e-12)
    for m_group, t_group in zip(m_sd["param_groups"], t_sd["param_groups"], strict=True):
        assert m_group["params"] == t_group["params"]
        assert m_group.keys() <= t_group.keys()

    # torch's state dict (tensors, a tensor step) continues the run in minicnn
    fresh = [minicnn.tensor(to_numpy(q), requires_grad=True) for q in t_params]
    opt = getattr(optim, name)([{"params": fresh[:2]}, {"params": fresh[2:]}], **kw)
    opt.load_state_dict(t_sd)
    for step in range(10, STEPS):
        _set_grads(fresh, t_params, grads[step])
        opt.step()
        t_opt.step()
    _assert_params(fresh, t_params, np.float64, "continued from torch's state dict")


def test_load_state_dict_casts_to_parameter_dtype():
    p = minicnn.zeros(3, dtype=np.float32, requires_grad=True)
    opt = optim.Adam([p])
    opt.load_state_dict({
        "state": {"0": {"step": 2, "exp_avg": np.ones(3), "exp_avg_sq": np.ones(3)}},
        "param_groups": [dict(opt.state_dict()["param_groups"][0])],
    })
    state = opt.state[p]
    assert state["step"] == 2.0 and isinstance(state["step"], float)
    assert state["exp_avg"].dtype == np.float32


def test_load_state_dict_mismatch():
    a, b = minicnn.zeros(2, requires_grad=True), minicnn.zeros(2, requires_grad=True)
    sd = optim.SGD([a, b]).state_dict()
    with pytest.raises(ValueError, match="parameter groups"):
        optim.SGD([{"params": [a]}, {"params": [b]}]).load_state_dict(sd)
    with pytest.raises(ValueError, match="group 0 has 2 parameters"):
        optim.SGD([a]).load_state_dict(sd)


# ---------------------------------------------------------------- bad input
def _p():
    return [minicnn.zeros(2, requires_grad=True)]


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: optim.SGD(_p(), lr=-0.1), ValueError, "lr=-0.1, expected lr >= 0"),
        (lambda: optim.Adam(_p(), lr=-1), ValueError, "lr"),
        (lambda: optim.SGD(_p(), lr="fast"), TypeError, "lr must be a number"),
        (lambda: optim.SGD(_p(), momentum=-0.5), ValueError, "momentum=-0.5"),
        (lambda: optim.SGD(_p(), weight_decay=-1), ValueError, "weight_decay=-1"),
        (lambda: optim.SGD(_p(), nesterov=True), ValueError, "nesterov=True requires a momentum"),
        (lambda: optim.SGD(_p(), momentum=0.9, dampening=0.1, nesterov=True), ValueError,
         "dampening=0.1"),
        (lambda: optim.Adam(_p(), betas=(1.0, 0.999)), ValueError, r"betas\[0\]=1.0"),
        (lambda: optim.Adam(_p(), betas=(0.9, -0.1)), ValueError, r"betas\[1\]=-0.1"),
        (lambda: optim.AdamW(_p(), betas=(0.9,)), ValueError, "betas must be a pair"),
        (lambda: optim.Adam(_p(), betas=(0.9, "x")), TypeError, r"betas\[1\] must be a number"),
        (lambda: optim.Adam(_p(), eps=-1e-8), ValueError, "eps=-1e-08"),
        (lambda: optim.AdamW(_p(), weight_decay=-0.01), ValueError, "weight_decay"),
        (lambda: optim.RMSprop(_p(), alpha=-0.9), ValueError, "alpha=-0.9"),
        (lambda: optim.RMSprop(_p(), momentum=-1), ValueError, "momentum"),
        (lambda: optim.RMSprop(_p(), eps=-1), ValueError, "eps"),
        (lambda: optim.SGD([]), ValueError, "params is empty"),
        (lambda: optim.Adam(iter([])), ValueError, "params is empty"),
        (lambda: optim.SGD(minicnn.zeros(2, requires_grad=True)), TypeError, "single Tensor"),
        (lambda: optim.SGD([minicnn.zeros(2), np.zeros(2)]), TypeError,
         r"params\[1\] is a numpy.ndarray"),
        (lambda: optim.SGD([minicnn.zeros(2, requires_grad=True) * 2]), ValueError,
         "non-leaf"),
        (lambda: optim.SGD([{"params": _p(), "lr": -1.0}]), ValueError, "lr=-1.0"),
        (lambda: optim.SGD([{"params": set(_p())}]), TypeError, "got a set"),
        (lambda: optim.SGD([{"lr": 0.1}]), ValueError, "'params' entry"),
    ],
)
def test_bad_input(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_parameter_in_two_groups():
    p = minicnn.zeros(2, requires_grad=True)
    opt = optim.SGD([p])
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [p]})
    with pytest.raises(TypeError, match="param_group must be a dict"):
        opt.add_param_group([p])


# ---------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.parametrize("case", STATE_CASES + [("Adam", dict(maximize=True, weight_decay=0.1))],
                         ids=_case_id)
def test_cuda_parameters_match_torch(case):
    """Parameters on the GPU (CuPy arrays): same trajectory as torch on the CPU, state on
    the GPU, state_dict arrays in NumPy."""
    name, kw = case
    init = _initial(np.float64)
    m_params = [minicnn.tensor(a.copy(), device="cuda", requires_grad=True) for a in init]
    t_params = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    m_opt, t_opt = getattr(optim, name)(m_params, **kw), getattr(torch.optim, name)(t_params, **kw)
    for step, grads in enumerate(_gradients(np.float64)):
        for p, q, g in zip(m_params, t_params, grads, strict=True):
            p.grad = minicnn.tensor(g.copy(), device="cuda")
            q.grad = torch.tensor(g.copy())
        m_opt.step()
        t_opt.step()
        assert all(p.device == "cuda" for p in m_params)
        _assert_params(m_params, t_params, np.float64, f"cuda, step {step + 1}")
    for s in m_opt.state_dict()["state"].values():
        assert all(isinstance(v, np.ndarray) for v in s.values() if hasattr(v, "shape"))
    sd = m_opt.state_dict()
    m_opt.load_state_dict(sd)
    for s in m_opt.state.values():
        assert all(type(v).__module__.startswith("cupy") for v in s.values()
                   if hasattr(v, "shape"))
