"""state_dict / load_state_dict: PyTorch's keys, detached values, torch checkpoints load and
give the same outputs and gradients, and strict checking reports every problem at once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minicnn
import minicnn.nn as nn
from minicnn.nn import IncompatibleKeys, StateDictError
from tests.helpers import assert_close
from tests.nn.test_module import build


def torch_to_numpy(model: torch.nn.Module) -> dict:
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def mlp(lib, dtype=None):
    return lib.Sequential(
        lib.Linear(6, 16, dtype=dtype), lib.ReLU(),
        lib.Sequential(lib.Linear(16, 8, dtype=dtype), lib.Tanh()),
        lib.Linear(8, 4, dtype=dtype),
    )


# ---------------------------------------------------------------------------- state_dict
def test_state_dict_values_are_detached_views():
    m = build(nn)
    sd = m.state_dict()
    assert isinstance(sd, type(torch.nn.Linear(1, 1).state_dict()))  # OrderedDict
    w = m.stem[0].weight
    assert type(sd["stem.0.weight"]) is minicnn.Tensor and not sd["stem.0.weight"].requires_grad
    assert sd["stem.0.weight"].array is w.array  # no copy, as in PyTorch
    assert sd["steps"].array is m.steps.array
    kept = m.state_dict(keep_vars=True)
    assert kept["stem.0.weight"] is w and kept["steps"] is m.steps
    prefixed = m.state_dict(prefix="model.")
    assert list(prefixed) == ["model." + k for k in sd]
    dest = {}
    assert m.state_dict(destination=dest) is dest and list(dest) == list(sd)


def test_buffers_persistent_and_not_like_torch():
    def bn_like(lib, zeros):
        mod = lib.Module()
        mod.weight = lib.Parameter(zeros(3))
        mod.register_buffer("running_mean", zeros(3))
        mod.register_buffer("scratch", zeros(3), persistent=False)
        mod.register_buffer("absent", None)
        return mod

    m, t = bn_like(nn, minicnn.zeros), bn_like(torch.nn, torch.zeros)
    assert list(m.state_dict()) == list(t.state_dict()) == ["weight", "running_mean"]
    assert [n for n, _ in m.named_buffers()] == [n for n, _ in t.named_buffers()]
    m.register_buffer("scratch", minicnn.ones(3), persistent=True)  # re-registering flips it
    assert "scratch" in m.state_dict()


# ---------------------------------------------------------------------------- torch -> minicnn
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_mlp_loads_and_matches_outputs_and_gradients(dtype):
    torch.manual_seed(0)
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    t = mlp(torch.nn, tdtype)
    m = mlp(nn, dtype)
    result = m.load_state_dict(torch_to_numpy(t))
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"

    x = np.random.default_rng(0).standard_normal((10, 6)).astype(dtype)
    y = np.random.default_rng(1).integers(0, 4, size=10)
    out_m, out_t = m(minicnn.tensor(x)), t(torch.tensor(x))
    assert out_m.dtype == dtype
    assert_close(out_m, out_t, dtype)

    loss_m = nn.CrossEntropyLoss()(out_m, minicnn.tensor(y))
    loss_t = torch.nn.CrossEntropyLoss()(out_t, torch.tensor(y))
    assert_close(loss_m, loss_t, dtype)
    loss_m.backward()
    loss_t.backward()
    grads_t = {n: p.grad for n, p in t.named_parameters()}
    for name, p in m.named_parameters():
        assert p.grad is not None, name
        assert_close(p.grad, grads_t[name], dtype, msg=name)


def test_custom_model_with_buffers_loads_from_torch():
    t, m = build(torch.nn), build(nn)
    with torch.no_grad():
        t.scale.fill_(0.5)
        t.steps.fill_(7)
    m.load_state_dict(torch_to_numpy(t))
    for key, value in t.state_dict().items():
        np.testing.assert_array_equal(m.state_dict()[key].numpy(), value.numpy(), err_msg=key)


def test_load_keeps_parameter_objects_casts_dtype_and_accepts_tensors():
    src = mlp(nn)
    dst = mlp(nn)
    weight = dst[0].weight
    data = weight.array
    dst.load_state_dict(src.state_dict())  # minicnn Tensors
    assert dst[0].weight is weight and weight.array is data  # copied in place
    np.testing.assert_array_equal(weight.array, src[0].weight.array)
    src[0].weight.array[...] = 5.0  # no sharing after the copy
    assert not (weight.array == 5.0).all()
    f64 = {k: v.numpy().astype(np.float64) + 1 for k, v in src.state_dict().items()}
    dst.load_state_dict(f64)
    assert weight.dtype == np.float32  # the model keeps its dtype
    np.testing.assert_allclose(weight.array, f64["0.weight"].astype(np.float32))


def test_scalar_and_int_buffers_load():
    m = nn.Module()
    m.register_buffer("num_batches_tracked", minicnn.tensor(0))
    m.load_state_dict({"num_batches_tracked": torch.tensor(12).numpy()})
    assert int(m.num_batches_tracked) == 12 and m.num_batches_tracked.dtype == np.int64
    m.load_state_dict({"num_batches_tracked": np.array([3])})  # old (1,)-shaped checkpoints
    assert int(m.num_batches_tracked) == 3


# ---------------------------------------------------------------------------- strict checks
def test_missing_key_error_names_it():
    m = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    sd = m.state_dict()
    del sd["2.bias"]
    with pytest.raises(StateDictError) as err:
        m.load_state_dict(sd)
    assert str(err.value) == (
        'Error(s) in loading state_dict for Sequential:\n\tMissing key(s) in state_dict: "2.bias". '
    )
    assert isinstance(err.value, RuntimeError) and isinstance(err.value, ValueError)
    result = m.load_state_dict(sd, strict=False)
    assert result == IncompatibleKeys(["2.bias"], [])
    assert result.missing_keys == ["2.bias"]


def test_unexpected_key_error_names_it():
    m = nn.Sequential(nn.Linear(5, 4))
    sd = dict(m.state_dict())
    sd["0.gamma"] = np.zeros(4)
    sd["head.weight"] = np.zeros(4)
    # PyTorch's order: the parent's unexpected keys first, then each child's
    with pytest.raises(RuntimeError, match='Unexpected key\\(s\\) in state_dict: "head.weight", '
                                           '"0.gamma"'):
        m.load_state_dict(sd)
    assert m.load_state_dict(sd, strict=False).unexpected_keys == ["head.weight", "0.gamma"]


def test_shape_mismatch_names_key_and_shapes_even_non_strict():
    m = nn.Sequential()
    m.add_module("fc", nn.Linear(4, 10))
    sd = {"fc.weight": np.zeros((10, 5), np.float32), "fc.bias": np.zeros(10, np.float32)}
    expected = ("size mismatch for fc.weight: copying a param with shape (10, 5) from checkpoint, "
                "the shape in current model is (10, 4).")
    for strict in (True, False):
        with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            m.load_state_dict(sd, strict=strict)


def test_all_problems_reported_together_in_torch_format():
    def pair(lib):
        return lib.Sequential(lib.Linear(3, 2), lib.Linear(2, 2))

    m, t = pair(nn), pair(torch.nn)
    bad = {"0.weight": np.zeros((2, 4), np.float32), "1.weight": np.zeros((2, 2), np.float32),
           "1.bias": np.zeros(2, np.float32), "extra": np.zeros(1, np.float32)}
    with pytest.raises(RuntimeError) as ours:
        m.load_state_dict(bad)
    with pytest.raises(RuntimeError) as theirs:
        t.load_state_dict({k: torch.from_numpy(v) for k, v in bad.items()})
    assert str(ours.value) == str(theirs.value).replace("torch.Size([", "(").replace("])", ")")


def test_bad_arguments():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="expects a dict-like mapping, got list"):
        m.load_state_dict([1, 2])
    with pytest.raises(ValueError, match='parameter named "bias", expected a Tensor or array'):
        m.load_state_dict({"weight": np.zeros((2, 2)), "bias": "zeros"})


# ---------------------------------------------------------------------------- versions
def test_metadata_keys_match_torch():
    m, t = build(nn), build(torch.nn)
    assert list(m.state_dict()._metadata) == list(t.state_dict()._metadata)
    assert m.state_dict()._metadata["stem.0"] == {"version": 1}


def test_versioned_layer_can_upgrade_old_checkpoints():
    """The BatchNorm pattern: version 2 added a buffer; loading a checkpoint without it (or
    without metadata, as a NumPy export) fills it in instead of reporting it missing."""

    class Counter(nn.Module):
        _version = 2

        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(minicnn.ones(2))
            self.register_buffer("count", minicnn.tensor(5))

        def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, *rest):
            seen.append(local_metadata.get("version"))
            if local_metadata.get("version", 1) < 2 and prefix + "count" not in state_dict:
                state_dict[prefix + "count"] = minicnn.tensor(0)
            super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, *rest)

    seen = []
    model = nn.Sequential(Counter())
    model.load_state_dict({"0.weight": np.zeros(2, np.float32)})  # old, no metadata
    assert int(model[0].count) == 0 and seen == [None]
    sd = model.state_dict()
    assert sd._metadata["0"] == {"version": 2}
    model[0].count.array[...] = 9
    model.load_state_dict(sd)
    assert int(model[0].count) == 9 and seen == [None, 2]
    del sd["0.count"]
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "0.count"'):
        model.load_state_dict(sd)  # a version-2 checkpoint must have it
