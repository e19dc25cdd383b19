"""Normalization against PyTorch: batch, instance, group, layer norm and LRN.

* forward and the gradients of input, weight and bias on every backend, float32 and
  float64, for (N, C), (N, C, L) and (N, C, H, W) inputs and a non-contiguous one;
* batch norm: running statistics after several training steps, eval outputs, momentum=None
  (cumulative average), track_running_stats=False, num_batches_tracked, state_dict keys;
  instance norm's running statistics (averaged over the batch);
* LRN with AlexNet's and odd/even window sizes; a hypothesis sweep over LRN and norm shapes;
* ``minicnn.gradcheck`` in float64 for every op;
* one test per bad input, checking the message.

Tolerances: the suite's ``tol(dtype)`` (float32 rtol 1e-4 atol 1e-5, float64 rtol 1e-10
atol 1e-12), except float64 gradients of the normalizations, compared with atol 1e-10:
the compact backward formula subtracts sums of size M from each other, so its absolute
error is a few ulps of those sums (~1e-13 relative to them), not of the result.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minicnn
import minicnn.nn as nn
import minicnn.nn.functional as F
from tests.conftest import device_of
from tests.helpers import assert_close, to_numpy

DTYPES = [np.float32, np.float64]
SHAPES = [(6, 3), (4, 3, 5), (2, 3, 4, 5)]


def _grad_tol(dtype) -> dict:
    """Tolerances for gradients through batch statistics (see the module docstring)."""
    return {} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-10}


def _leaves(arrays, device, dtype):
    m = [None if a is None else minicnn.tensor(a.astype(dtype), device=device,
                                               requires_grad=True) for a in arrays]
    t = [None if a is None else torch.tensor(a.astype(dtype), requires_grad=True)
         for a in arrays]
    return m, t


def _check_op(mop, top, arrays, device, dtype, transform=None, msg=""):
    """Forward and backward of ``mop(*leaves)`` and ``top(*leaves)``: outputs and every
    gradient equal. ``transform`` is applied to the first leaf (e.g. a permute)."""
    m, t = _leaves(arrays, device, dtype)
    mi, ti = list(m), list(t)
    if transform is not None:
        mi[0], ti[0] = transform(m[0]), transform(t[0])
    my, ty = mop(*mi), top(*ti)
    assert my.shape == tuple(ty.shape) and my.dtype == dtype
    assert_close(my, ty, dtype, msg=f"{msg}: output")
    g = np.random.default_rng(5).standard_normal(my.shape).astype(dtype)
    my.backward(minicnn.tensor(g, device=device))
    ty.backward(torch.tensor(g))
    for name, a, b in zip(("input", "weight", "bias"), m, t, strict=False):
        if a is not None:
            assert_close(a.grad, b.grad, dtype, msg=f"{msg}: grad of {name}", **_grad_tol(dtype))


def _data(shape, seed=0, mean=0.5, std=2.0):
    return np.random.default_rng(seed).standard_normal(shape) * std + mean


def _affine(c, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(c), rng.standard_normal(c)


# ---------------------------------------------------------------- batch norm


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch(backend, shape, training, dtype):
    c = shape[1]
    w, b = _affine(c)
    rng = np.random.default_rng(2)
    rm, rv = rng.standard_normal(c), rng.random(c) + 0.5
    m_stats = [minicnn.tensor(a.astype(dtype), device=device_of(backend)) for a in (rm, rv)]
    t_stats = [torch.tensor(a.astype(dtype)) for a in (rm, rv)]
    _check_op(lambda x, w, b: F.batch_norm(x, *m_stats, w, b, training, 0.3, 1e-3),
              lambda x, w, b: TF.batch_norm(x, *t_stats, w, b, training, 0.3, 1e-3),
              [_data(shape), w, b], device_of(backend), dtype, msg=f"{shape} {training}")
    for mine, theirs in zip(m_stats, t_stats, strict=True):
        assert_close(mine, theirs, dtype, msg="running statistics")


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_without_affine_and_non_contiguous(backend, dtype):
    dev = device_of(backend)
    swap = lambda t: t.permute(0, 3, 2, 1)  # noqa: E731  (N, W, H, C) data -> (N, C, H, W) view
    _check_op(lambda x: F.batch_norm(x, None, None, training=True),
              lambda x: TF.batch_norm(x, None, None, training=True),
              [_data((2, 5, 4, 3))], dev, dtype, transform=swap, msg="non-contiguous")
    w, _ = _affine(3)
    _check_op(lambda x, w: F.batch_norm(x, None, None, w, None, training=True),
              lambda x, w: TF.batch_norm(x, None, None, w, None, training=True),
              [_data((4, 3, 2)), w], dev, dtype, msg="weight only")


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm2d_running_statistics_match_torch(backend, momentum):
    """Several training steps, then eval: running stats, num_batches_tracked, outputs."""
    dev = device_of(backend)
    mine, theirs = nn.BatchNorm2d(3, momentum=momentum), torch.nn.BatchNorm2d(3, momentum=momentum)
    mine.to(dev)
    for step in range(5):
        x = _data((4, 3, 5, 5), seed=step, mean=step, std=1 + step).astype(np.float32)
        assert_close(mine(minicnn.tensor(x, device=dev)), theirs(torch.tensor(x)))
    for name in ("running_mean", "running_var"):
        assert_close(getattr(mine, name), getattr(theirs, name), msg=name)
    assert mine.num_batches_tracked.dtype == np.int64 and mine.num_batches_tracked.item() == 5
    mine.eval()
    theirs.eval()
    x = _data((2, 3, 5, 5), seed=9).astype(np.float32)
    assert_close(mine(minicnn.tensor(x, device=dev)), theirs(torch.tensor(x)), msg="eval")
    assert mine.num_batches_tracked.item() == 5  # eval steps are not counted


def test_batchnorm_cumulative_average_is_the_plain_mean_of_batch_statistics():
    bn = nn.BatchNorm1d(2, momentum=None, affine=False)
    batches = [_data((8, 2), seed=s) for s in range(4)]
    for x in batches:
        bn(minicnn.tensor(x))
    expected = np.mean([x.mean(axis=0) for x in batches], axis=0)
    assert_close(bn.running_mean, expected, np.float32)
    expected_var = np.mean([x.var(axis=0, ddof=1) for x in batches], axis=0)
    assert_close(bn.running_var, expected_var, np.float32)


def test_batchnorm_without_running_statistics_uses_batch_statistics_in_eval():
    mine = nn.BatchNorm1d(3, track_running_stats=False).eval()
    theirs = torch.nn.BatchNorm1d(3, track_running_stats=False).eval()
    assert mine.running_mean is None and list(mine.state_dict()) == ["weight", "bias"]
    x = _data((5, 3, 4)).astype(np.float32)
    assert_close(mine(minicnn.tensor(x)), theirs(torch.tensor(x)))


def test_batchnorm_state_dict_loads_torch_values():
    """Keys equal PyTorch's; a trained torch state_dict loaded gives the same eval output."""
    theirs = torch.nn.BatchNorm2d(4)
    for s in range(3):
        theirs(torch.tensor(_data((3, 4, 2, 2), seed=s).astype(np.float32)))
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 1.5)
        theirs.bias.uniform_(-1, 1)
    mine = nn.BatchNorm2d(4)
    assert list(mine.state_dict()) == list(theirs.state_dict())
    mine.load_state_dict({k: minicnn.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    mine.eval()
    theirs.eval()
    x = _data((2, 4, 3, 3), seed=7).astype(np.float32)
    assert_close(mine(minicnn.tensor(x)), theirs(torch.tensor(x)))


def test_batchnorm_loads_a_checkpoint_without_num_batches_tracked():
    """Like PyTorch: a state_dict without metadata and without num_batches_tracked loads."""
    bn = nn.BatchNorm2d(2)
    old = {"weight": np.array([1.5, 2.0]), "bias": np.zeros(2), "running_mean": np.ones(2),
           "running_var": np.full(2, 4.0)}
    assert bn.load_state_dict(old) == ([], [])
    assert_close(bn.running_var, np.full(2, 4.0), np.float32)
    assert bn.num_batches_tracked.item() == 0
    with pytest.raises(ValueError, match="running_var"):
        nn.BatchNorm2d(2).load_state_dict({k: v for k, v in old.items() if k != "running_var"})


def test_batchnorm_module_gradients_and_repr():
    mine, theirs = nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    assert repr(mine) == repr(theirs)
    assert repr(nn.BatchNorm2d(4, momentum=None, affine=False, bias=False)) == \
        repr(torch.nn.BatchNorm2d(4, momentum=None, affine=False, bias=False))
    x = _data((6, 3)).astype(np.float32)
    g = _data((6, 3), seed=3).astype(np.float32)
    mine(minicnn.tensor(x)).backward(minicnn.tensor(g))
    theirs(torch.tensor(x)).backward(torch.tensor(g))
    assert_close(mine.weight.grad, theirs.weight.grad)
    assert_close(mine.bias.grad, theirs.bias.grad)


# ---------------------------------------------------------------- instance norm


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("use_input_stats", [True, False])
def test_instance_norm_matches_torch(backend, use_input_stats, dtype):
    dev = device_of(backend)
    w, b = _affine(3)
    rng = np.random.default_rng(2)
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    m_stats = [minicnn.tensor(a.astype(dtype), device=dev) for a in (rm, rv)]
    t_stats = [torch.tensor(a.astype(dtype)) for a in (rm, rv)]
    _check_op(lambda x, w, b: F.instance_norm(x, *m_stats, w, b, use_input_stats, 0.2),
              lambda x, w, b: TF.instance_norm(x, *t_stats, w, b, use_input_stats, 0.2),
              [_data((2, 3, 4, 5)), w, b], dev, dtype, msg=f"{use_input_stats}")
    for mine, theirs in zip(m_stats, t_stats, strict=True):
        assert_close(mine, theirs, dtype, msg="running statistics")
    _check_op(lambda x: F.instance_norm(x), lambda x: TF.instance_norm(x),
              [_data((2, 3, 7))], dev, dtype, msg="no affine, 3-d")


def test_instancenorm2d_module_matches_torch():
    kw = dict(affine=True, track_running_stats=True)
    mine, theirs = nn.InstanceNorm2d(3, **kw), torch.nn.InstanceNorm2d(3, **kw)
    assert repr(mine) == repr(theirs) and list(mine.state_dict()) == list(theirs.state_dict())
    assert repr(nn.InstanceNorm2d(3)) == repr(torch.nn.InstanceNorm2d(3))
    for s in range(3):
        x = _data((2, 3, 4, 4), seed=s).astype(np.float32)
        assert_close(mine(minicnn.tensor(x)), theirs(torch.tensor(x)))
    assert_close(mine.running_var, theirs.running_var)
    mine.eval()
    theirs.eval()
    x = _data((3, 4, 4), seed=8).astype(np.float32)  # unbatched
    assert_close(mine(minicnn.tensor(x)), theirs(torch.tensor(x)))


# ---------------------------------------------------------------- group and layer norm


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("groups", [1, 2, 6])
def test_group_norm_matches_torch(backend, groups, dtype):
    w, b = _affine(6)
    _check_op(lambda x, w, b: F.group_norm(x, groups, w, b, 1e-3),
              lambda x, w, b: TF.group_norm(x, groups, w, b, 1e-3),
              [_data((2, 6, 3, 4)), w, b], device_of(backend), dtype, msg=f"G={groups}")
    if groups < 6:  # with 6 groups of one value, the gradient is 0: torch gives rounding noise
        _check_op(lambda x: F.group_norm(x, groups), lambda x: TF.group_norm(x, groups),
                  [_data((3, 6))], device_of(backend), dtype, msg="2-d, no affine")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("normalized_shape", [5, (4, 5), (3, 4, 5)])
def test_layer_norm_matches_torch(backend, normalized_shape, dtype):
    shape = (2, 3, 4, 5)
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
    w, b = _data(ns, seed=1), _data(ns, seed=2)
    swap = lambda t: t.transpose(0, 1)  # noqa: E731
    _check_op(lambda x, w, b: F.layer_norm(x, normalized_shape, w, b),
              lambda x, w, b: TF.layer_norm(x, ns, w, b),
              [_data((3, 2, 4, 5)), w, b], device_of(backend), dtype, transform=swap,
              msg=f"{shape} {ns}")


def test_group_and_layer_norm_modules():
    x = _data((2, 4, 3, 5)).astype(np.float32)
    pairs = [(nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4)),
             (nn.GroupNorm(4, 4, affine=False), torch.nn.GroupNorm(4, 4, affine=False)),
             (nn.LayerNorm(5), torch.nn.LayerNorm(5)),
             (nn.LayerNorm((3, 5), bias=False), torch.nn.LayerNorm((3, 5), bias=False))]
    for mine, theirs in pairs:
        assert repr(mine) == repr(theirs)
        assert list(mine.state_dict()) == list(theirs.state_dict())
        assert_close(mine(minicnn.tensor(x)), theirs(torch.tensor(x)), msg=repr(mine))


# ---------------------------------------------------------------- local response norm


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size, alpha, beta, k", [
    (5, 1e-4, 0.75, 2.0),  # AlexNet
    (5, 1e-2, 0.75, 1.0),
    (2, 0.1, 0.5, 1.0),  # even window: one channel more before than after
    (1, 0.3, 1.0, 0.5),
    (9, 0.5, 0.75, 1.0),  # wider than the 6 channels
])
def test_local_response_norm_matches_torch(backend, size, alpha, beta, k, dtype):
    dev = device_of(backend)
    for shape in [(2, 6, 3, 4), (2, 6, 5)]:
        _check_op(lambda x: F.local_response_norm(x, size, alpha, beta, k),
                  lambda x: TF.local_response_norm(x, size, alpha, beta, k),
                  [_data(shape, std=3.0)], dev, dtype, msg=f"{shape}")
    _check_op(lambda x: F.local_response_norm(x, size, alpha, beta, k),
              lambda x: TF.local_response_norm(x, size, alpha, beta, k),
              [_data((2, 4, 3, 6), std=3.0)], dev, dtype, transform=lambda t: t.transpose(1, 3),
              msg="non-contiguous")


def test_local_response_norm_module():
    mine, theirs = nn.LocalResponseNorm(5, k=2.0), torch.nn.LocalResponseNorm(5, k=2.0)
    assert repr(mine) == repr(theirs)
    x = _data((2, 7, 3, 3), std=4.0).astype(np.float32)
    assert_close(mine(minicnn.tensor(x)), theirs(torch.tensor(x)))


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 3), c=st.integers(1, 7), spatial=st.lists(st.integers(1, 4), min_size=1,
                                                                    max_size=2),
       size=st.integers(1, 8), groups=st.sampled_from([1, -1]))
def test_norm_sweep(backend, n, c, spatial, size, groups):
    """LRN, instance, group and batch norm over random shapes and LRN windows (float64)."""
    dev, shape = device_of(backend), (n, c, *spatial)
    x = _data(shape, std=3.0)
    _check_op(lambda t: F.local_response_norm(t, size, 0.1, 0.75, 1.0),
              lambda t: TF.local_response_norm(t, size, 0.1, 0.75, 1.0),
              [x], dev, np.float64, msg=f"lrn {shape} size={size}")
    g = 1 if groups == 1 else c
    if n * (c // g) * int(np.prod(spatial)) > 1:  # PyTorch refuses one value per group
        _check_op(lambda t: F.group_norm(t, g), lambda t: TF.group_norm(t, g), [x], dev,
                  np.float64, msg=f"group_norm {shape} G={g}")
    if n * int(np.prod(spatial)) > 1:
        _check_op(lambda t: F.batch_norm(t, None, None, training=True),
                  lambda t: TF.batch_norm(t, None, None, training=True), [x], dev, np.float64,
                  msg=f"batch_norm {shape}")
    if int(np.prod(spatial)) > 1:
        _check_op(F.instance_norm, TF.instance_norm, [x], dev, np.float64,
                  msg=f"instance_norm {shape}")


# ---------------------------------------------------------------- gradcheck


def _leaf(a, device="cpu"):
    return minicnn.tensor(a, dtype=np.float64, device=device, requires_grad=True)


@pytest.mark.parametrize("name", ["batch_norm-train", "batch_norm-eval", "instance_norm",
                                  "group_norm", "layer_norm", "local_response_norm"])
def test_gradcheck(backend, name):
    dev = device_of(backend)
    x = _leaf(_data((3, 4, 2, 3)), dev)
    w, b = (_leaf(a, dev) for a in _affine(4))
    rm, rv = minicnn.tensor(np.zeros(4), device=dev), minicnn.tensor(np.ones(4) * 2, device=dev)
    fns = {
        "batch_norm-train": (lambda x, w, b: F.batch_norm(x, None, None, w, b, True), [x, w, b]),
        "batch_norm-eval": (lambda x, w, b: F.batch_norm(x, rm, rv, w, b, False), [x, w, b]),
        "instance_norm": (lambda x, w, b: F.instance_norm(x, weight=w, bias=b), [x, w, b]),
        "group_norm": (lambda x, w, b: F.group_norm(x, 2, w, b), [x, w, b]),
        "layer_norm": (lambda x, w, b: F.layer_norm(x, (2, 3), w, b),
                       [x, _leaf(_data((2, 3), 1), dev), _leaf(_data((2, 3), 2), dev)]),
        "local_response_norm": (lambda x: F.local_response_norm(x, 3, 0.5, 0.75, 1.0), [x]),
    }
    fn, inputs = fns[name]
    assert minicnn.gradcheck(fn, inputs)


# ---------------------------------------------------------------- F.normalize (SSD's L2 norm)


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0])
def test_normalize_equals_torch_with_gradient(backend, p):
    """Values and gradients in float64, including a pixel whose channel vector is all zeros
    (the gradient stays finite: 0 through the clamped norm, as in PyTorch)."""
    dev = device_of(backend)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 6, 3, 4))
    x[0, :, 1, 1] = 0.0
    w = rng.normal(size=x.shape)
    xm = minicnn.tensor(x, requires_grad=True, device=dev)
    (F.normalize(xm, p=p) * minicnn.tensor(w, device=dev)).sum().backward()
    xt = torch.tensor(x, requires_grad=True)
    (TF.normalize(xt, p=p) * torch.from_numpy(w)).sum().backward()
    # errors relative to max(1, the largest reference value): unit vectors to 1e-15
    assert_close(F.normalize(minicnn.tensor(x, device=dev), p=p),
                 TF.normalize(torch.from_numpy(x), p=p), rtol=0, atol=1e-15)
    assert np.isfinite(to_numpy(xm.grad)).all()
    scale = max(1.0, float(xt.grad.abs().max()))
    assert_close(xm.grad, xt.grad, rtol=0, atol=1e-13 * scale)
    assert_close(F.normalize(minicnn.tensor(x, device=dev), dim=-1),
                 TF.normalize(torch.from_numpy(x), dim=-1), rtol=0, atol=1e-15)


@pytest.mark.parametrize("p", [2.0, 3.0])
def test_normalize_gradcheck(backend, p):
    x = _leaf(_data((2, 4, 2, 3)), device_of(backend))
    assert minicnn.gradcheck(lambda x: F.normalize(x, p=p), [x])


def test_normalize_bad_input():
    with pytest.raises(ValueError, match="p must be"):
        F.normalize(minicnn.zeros(2, 3), p=0)
    with pytest.raises(ValueError, match="dim"):
        F.normalize(minicnn.zeros(2, 3), dim=2)


# ---------------------------------------------------------------- bad input


def _x(*shape):
    return minicnn.zeros(*shape)


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.batch_norm(_x(1, 3), None, None, training=True), ValueError,
     r"more than 1 value per channel when training.*\(1, 3\)"),
    (lambda: F.batch_norm(_x(4, 3), None, None, training=False), ValueError,
     "running_mean and running_var are needed when training=False"),
    (lambda: F.batch_norm(_x(4, 3), _x(4), _x(4)), ValueError,
     r"running_mean must have shape \(3,\)"),
    (lambda: F.batch_norm(_x(4, 3), None, None, _x(2), training=True), ValueError,
     r"weight must have shape \(3,\)"),
    (lambda: F.batch_norm(_x(4), None, None, training=True), ValueError,
     r"input must be \(N, C, \*\)"),
    (lambda: F.batch_norm(_x(4, 3), None, None, np.ones(3), training=True), TypeError,
     "weight must be a Tensor or None"),
    (lambda: nn.BatchNorm2d(3)(_x(2, 3, 4)), ValueError, r"expected 4D input \(got 3D input\)"),
    (lambda: nn.BatchNorm1d(3)(_x(2, 3, 4, 4)), ValueError, "expected 2D or 3D input"),
    (lambda: nn.BatchNorm2d(0), ValueError, "num_features. must be a positive int"),
    (lambda: F.instance_norm(_x(2, 3, 1)), ValueError, "more than 1 spatial element"),
    (lambda: F.instance_norm(_x(2, 3, 4), use_input_stats=False), ValueError,
     "running_mean and running_var are needed when use_input_stats=False"),
    (lambda: nn.InstanceNorm2d(4, affine=True)(_x(2, 3, 4, 4)), ValueError,
     r"match num_features \(4\)"),
    (lambda: F.group_norm(_x(2, 5, 3), 2), ValueError, "num_groups must be a positive int "
                                                       "dividing the 5 channels"),
    (lambda: F.group_norm(_x(1, 2, 1), 2), ValueError, "more than 1 value per group"),
    (lambda: nn.GroupNorm(2, 5), ValueError, "num_channels must be divisible by num_groups"),
    (lambda: F.layer_norm(_x(2, 3), 5), ValueError,
     r"normalized_shape=\[5\], expected input of shape \[\*, 5\]"),
    (lambda: F.layer_norm(_x(2, 3), (3,), _x(4)), ValueError, r"weight must have shape \(3,\)"),
    (lambda: F.layer_norm(_x(2, 3), ()), ValueError, "normalized_shape must be a positive int"),
    (lambda: F.local_response_norm(_x(2, 3), 3), ValueError, "at least 3 dims"),
    (lambda: F.local_response_norm(_x(2, 3, 3), 0), ValueError, "size must be a positive int"),
    (lambda: F.group_norm(minicnn.zeros(2, 4, dtype=np.int64), 2), TypeError,
     "input must be floating point"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_to_numpy_helper_roundtrip():
    """The running statistics stay Tensors of the module's dtype after .double()."""
    bn = nn.BatchNorm2d(2).double()
    assert bn.running_mean.dtype == np.float64 and bn.num_batches_tracked.dtype == np.int64
    bn(minicnn.tensor(_data((2, 2, 2, 2))))
    assert to_numpy(bn.num_batches_tracked) == 1
