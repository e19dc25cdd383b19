"""minicnn.optim.lr_scheduler against torch.optim.lr_scheduler.

Each test drives a minicnn scheduler and a torch one side by side (optimizer.step()
then scheduler.step(), as in a training loop) and compares the learning rates of
every parameter group -- and for OneCycleLR the momentum / beta1 -- after every step.
Tolerance: 1e-12 absolute (the values agree to the last bit in practice: the same
float operations run in the same order).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

import minicnn
from minicnn import optim
from minicnn.optim import lr_scheduler
from tests.helpers import to_numpy

TOL = 1e-12


def _optimizers(name="SGD", **kw):
    """A minicnn and a torch optimizer, two parameter groups with different lrs."""
    kw = {"lr": 0.1, **({"momentum": 0.9} if name in ("SGD", "RMSprop") else {}), **kw}
    m = [minicnn.zeros(3, requires_grad=True), minicnn.zeros(2, requires_grad=True)]
    t = [torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)]
    m_opt = getattr(optim, name)([{"params": m[:1]}, {"params": m[1:], "lr": 0.03}], **kw)
    t_opt = getattr(torch.optim, name)([{"params": t[:1]}, {"params": t[1:], "lr": 0.03}], **kw)
    return m_opt, t_opt


def _momenta(opt):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]


def _assert_same(m_sched, t_sched, where, momentum=False):
    np.testing.assert_allclose(m_sched.get_last_lr(), t_sched.get_last_lr(), rtol=0, atol=TOL,
                               err_msg=where)
    np.testing.assert_allclose([g["lr"] for g in m_sched.optimizer.param_groups],
                               [g["lr"] for g in t_sched.optimizer.param_groups],
                               rtol=0, atol=TOL, err_msg=where)
    if momentum:
        np.testing.assert_allclose(_momenta(m_sched.optimizer), _momenta(t_sched.optimizer),
                                   rtol=0, atol=TOL, err_msg=where + " (momentum)")


def _run(m_sched, t_sched, steps, momentum=False):
    _assert_same(m_sched, t_sched, "after construction", momentum)
    for step in range(steps):
        m_sched.optimizer.step()
        t_sched.optimizer.step()
        m_sched.step()
        t_sched.step()
        _assert_same(m_sched, t_sched, f"after step {step + 1}", momentum)
        assert m_sched.last_epoch == t_sched.last_epoch


SCHEDULES = [
    ("StepLR", dict(step_size=7, gamma=0.5), 60),
    ("StepLR", dict(step_size=10), 60),
    ("MultiStepLR", dict(milestones=[5, 20, 20, 40], gamma=0.3), 60),
    ("MultiStepLR", dict(milestones=[30, 80]), 100),
    ("ExponentialLR", dict(gamma=0.95), 80),
    ("CosineAnnealingLR", dict(T_max=20), 90),  # past T_max: climbs back and restarts
    ("CosineAnnealingLR", dict(T_max=50, eta_min=1e-3), 100),
    ("LinearLR", dict(), 50),
    ("LinearLR", dict(start_factor=0.1, end_factor=0.5, total_iters=30), 60),
    ("LinearLR", dict(start_factor=1.0, end_factor=0.0, total_iters=40), 60),
]


@pytest.mark.parametrize("name, kw, steps", SCHEDULES,
                         ids=[f"{n}-{kw}" for n, kw, _ in SCHEDULES])
def test_schedule_matches_torch(name, kw, steps):
    m_opt, t_opt = _optimizers()
    m_sched = getattr(lr_scheduler, name)(m_opt, **kw)
    t_sched = getattr(torch.optim.lr_scheduler, name)(t_opt, **kw)
    assert m_sched.base_lrs == t_sched.base_lrs == [0.1, 0.03]
    assert [g["initial_lr"] for g in m_opt.param_groups] == [0.1, 0.03]
    _run(m_sched, t_sched, steps)


ONE_CYCLE = [
    ("SGD", dict(max_lr=0.5, total_steps=80)),
    ("SGD", dict(max_lr=[0.5, 0.2], total_steps=100, anneal_strategy="linear")),
    ("SGD", dict(max_lr=0.5, epochs=10, steps_per_epoch=9, pct_start=0.25, div_factor=10.0,
                 final_div_factor=100.0)),
    ("SGD", dict(max_lr=0.5, total_steps=90, three_phase=True)),
    ("SGD", dict(max_lr=0.5, total_steps=60, three_phase=True, anneal_strategy="linear",
                 base_momentum=[0.8, 0.7], max_momentum=0.99)),
    ("SGD", dict(max_lr=0.5, total_steps=50, cycle_momentum=False)),
    ("Adam", dict(max_lr=0.01, total_steps=80)),  # cycles beta1
    ("AdamW", dict(max_lr=0.01, total_steps=64, pct_start=0.5, anneal_strategy="linear")),
    ("RMSprop", dict(max_lr=0.01, total_steps=70)),
]


@pytest.mark.parametrize("opt_name, kw", ONE_CYCLE,
                         ids=[f"{n}-{kw}" for n, kw in ONE_CYCLE])
def test_one_cycle_matches_torch(opt_name, kw):
    m_opt, t_opt = _optimizers(opt_name)
    m_sched = lr_scheduler.OneCycleLR(m_opt, **kw)
    t_sched = torch.optim.lr_scheduler.OneCycleLR(t_opt, **kw)
    total = t_sched.total_steps
    _run(m_sched, t_sched, total, momentum=kw.get("cycle_momentum", True))
    for key in ("initial_lr", "max_lr", "min_lr"):
        assert [g[key] for g in m_opt.param_groups] == [g[key] for g in t_opt.param_groups]
    # one step past the end of the cycle is an error, as in torch
    with pytest.raises(ValueError, match=f"specified number of total steps is {total}"):
        m_sched.step()
    with pytest.raises(ValueError, match="total steps"):
        t_sched.step()


def test_chained_schedulers_match_torch():
    """Two schedulers on one optimizer multiply their effects (the chainable form)."""
    m_opt, t_opt = _optimizers()
    m = [lr_scheduler.LinearLR(m_opt, start_factor=0.2, total_iters=10),
         lr_scheduler.StepLR(m_opt, step_size=15, gamma=0.5),
         lr_scheduler.ExponentialLR(m_opt, gamma=0.98)]
    t = [torch.optim.lr_scheduler.LinearLR(t_opt, start_factor=0.2, total_iters=10),
         torch.optim.lr_scheduler.StepLR(t_opt, step_size=15, gamma=0.5),
         torch.optim.lr_scheduler.ExponentialLR(t_opt, gamma=0.98)]
    for step in range(60):
        m_opt.step()
        t_opt.step()
        for ms, ts in zip(m, t, strict=True):
            ms.step()
            ts.step()
            _assert_same(ms, ts, f"step {step + 1}")


@pytest.mark.parametrize(
    "opt_name, opt_kw, sched_name, sched_kw",
    [
        ("SGD", dict(lr=0.1, momentum=0.9), "CosineAnnealingLR", dict(T_max=15)),
        ("Adam", dict(lr=0.05), "OneCycleLR", dict(max_lr=0.05, total_steps=30)),
        ("RMSprop", dict(lr=0.01, momentum=0.5), "StepLR", dict(step_size=4, gamma=0.7)),
    ],
)
def test_training_with_scheduler_matches_torch(opt_name, opt_kw, sched_name, sched_kw):
    """The scheduled learning rates (and beta1) feed into the parameter updates."""
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((4, 3))
    mp, tp = minicnn.tensor(x0.copy(), requires_grad=True), torch.tensor(x0.copy(),
                                                                        requires_grad=True)
    m_opt, t_opt = getattr(optim, opt_name)([mp], **opt_kw), getattr(torch.optim, opt_name)(
        [tp], **opt_kw)
    m_sched = getattr(lr_scheduler, sched_name)(m_opt, **sched_kw)
    t_sched = getattr(torch.optim.lr_scheduler, sched_name)(t_opt, **sched_kw)
    for step in range(30):
        g = rng.standard_normal((4, 3))
        mp.grad, tp.grad = minicnn.tensor(g.copy()), torch.tensor(g.copy())
        m_opt.step()
        t_opt.step()
        m_sched.step()
        t_sched.step()
        np.testing.assert_allclose(to_numpy(mp), to_numpy(tp), rtol=0, atol=1e-12,
                                   err_msg=f"step {step + 1}")


RESUME = [
    ("StepLR", dict(step_size=7, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[10, 30, 30], gamma=0.5)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=17, eta_min=0.001)),
    ("LinearLR", dict(start_factor=0.25, total_iters=40)),
    ("OneCycleLR", dict(max_lr=0.4, total_steps=60, three_phase=True)),
]


@pytest.mark.parametrize("name, kw", RESUME, ids=[n for n, _ in RESUME])
def test_state_dict_resume_continues_identically(name, kw):
    """25 steps, save optimizer + scheduler state (through JSON), rebuild both, load,
    25 more steps: the same learning rates as the uninterrupted run, and as torch."""
    m_opt, t_opt = _optimizers()
    m_sched = getattr(lr_scheduler, name)(m_opt, **kw)
    t_sched = getattr(torch.optim.lr_scheduler, name)(t_opt, **kw)
    for _ in range(25):
        m_opt.step()
        m_sched.step()
        t_opt.step()
        t_sched.step()
    saved_sched = json.dumps(m_sched.state_dict())
    saved_opt = m_opt.state_dict()
    assert "optimizer" not in m_sched.state_dict()

    new_opt, _ = _optimizers()
    new_sched = getattr(lr_scheduler, name)(new_opt, **kw)
    new_opt.load_state_dict(saved_opt)
    new_sched.load_state_dict(json.loads(saved_sched))
    assert new_sched.get_last_lr() == m_sched.get_last_lr()
    for _ in range(25):
        for opt, sched in ((m_opt, m_sched), (new_opt, new_sched), (t_opt, t_sched)):
            opt.step()
            sched.step()
        assert new_sched.get_last_lr() == m_sched.get_last_lr()
        assert [g["lr"] for g in new_opt.param_groups] == [g["lr"] for g in m_opt.param_groups]
        _assert_same(new_sched, t_sched, "resumed vs torch", momentum=name == "OneCycleLR")


@pytest.mark.parametrize("name, kw", RESUME[:5], ids=[n for n, _ in RESUME[:5]])
def test_last_epoch_resume_matches_torch(name, kw):
    """Creating a scheduler with last_epoch=k (groups holding initial_lr) as torch does."""
    m_opt, t_opt = _optimizers()
    for g_m, g_t in zip(m_opt.param_groups, t_opt.param_groups, strict=True):
        g_m["initial_lr"] = g_t["initial_lr"] = g_m["lr"] * 2
    m_sched = getattr(lr_scheduler, name)(m_opt, last_epoch=12, **kw)
    t_sched = getattr(torch.optim.lr_scheduler, name)(t_opt, last_epoch=12, **kw)
    _run(m_sched, t_sched, 30)


@pytest.mark.parametrize("name, kw", RESUME[:5], ids=[n for n, _ in RESUME[:5]])
def test_step_with_epoch_uses_closed_form(name, kw):
    m_opt, t_opt = _optimizers()
    m_sched = getattr(lr_scheduler, name)(m_opt, **kw)
    t_sched = getattr(torch.optim.lr_scheduler, name)(t_opt, **kw)
    m_opt.step()
    t_opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in (3, 17, 35, 8):
            t_sched.step(epoch)
            with pytest.warns(UserWarning, match="deprecated"):
                m_sched.step(epoch)
            _assert_same(m_sched, t_sched, f"epoch {epoch}")


def test_warns_when_scheduler_steps_before_optimizer():
    m_opt, _ = _optimizers()
    sched = lr_scheduler.StepLR(m_opt, step_size=2)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()
    m_opt2, _ = _optimizers()
    sched2 = lr_scheduler.StepLR(m_opt2, step_size=2)
    m_opt2.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched2.step()


# ---------------------------------------------------------------- bad input
class _NoMomentum(optim.Optimizer):
    def __init__(self, params, lr=0.1):
        super().__init__(params, {"lr": lr})

    def _update(self, param, grad, state, group):
        param -= group["lr"] * grad


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda o: lr_scheduler.StepLR("sgd", step_size=3), TypeError, "optimizer must be"),
        (lambda o: lr_scheduler.StepLR(o, step_size=0), ValueError, "step_size"),
        (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=0), ValueError, "T_max"),
        (lambda o: lr_scheduler.LinearLR(o, start_factor=0), ValueError, "start_factor"),
        (lambda o: lr_scheduler.LinearLR(o, end_factor=1.5), ValueError, "end_factor"),
        (lambda o: lr_scheduler.ExponentialLR(o, gamma=0.9, last_epoch=3), KeyError,
         "initial_lr"),
        (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1), ValueError, "total_steps"),
        (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=-5), ValueError,
         "total_steps"),
        (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, epochs=0, steps_per_epoch=3),
         ValueError, "epochs"),
        (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=10, pct_start=1.5),
         ValueError, "pct_start"),
        (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=10,
                                           anneal_strategy="exp"), ValueError, "anneal_strategy"),
        (lambda o: lr_scheduler.OneCycleLR(o, max_lr=[0.1, 0.2, 0.3], total_steps=10),
         ValueError, "max_lr must have the same length"),
        (lambda o: lr_scheduler.OneCycleLR(
            _NoMomentum([minicnn.zeros(1, requires_grad=True)]), max_lr=0.1, total_steps=10),
         ValueError, "cycle_momentum"),
    ],
)
def test_bad_input(make, error, match):
    m_opt, _ = _optimizers()
    with pytest.raises(error, match=match):
        make(m_opt)


def test_one_cycle_without_momentum_cycling_accepts_any_optimizer():
    opt = _NoMomentum([minicnn.zeros(1, requires_grad=True)])
    sched = lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10, cycle_momentum=False)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(9):  # the last step of the cycle is total_steps - 1
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    assert lrs[0] == pytest.approx(0.1 / 25) and max(lrs) == pytest.approx(0.1)
    assert lrs[-1] == pytest.approx(0.1 / 25 / 1e4)
    assert opt.param_groups[0].keys() == {"params", "lr", "initial_lr", "max_lr", "min_lr"}


def test_exports():
    for name in ("StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "OneCycleLR",
                 "LinearLR", "LRScheduler"):
        assert getattr(optim.lr_scheduler, name) is getattr(lr_scheduler, name)
    import minicnn.optim.lr_scheduler as mod

    assert mod.StepLR is lr_scheduler.StepLR
