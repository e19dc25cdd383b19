"""Module, Parameter and the containers: registration, traversal, modes, hooks, to(), repr.

Structures are built twice, with minicnn.nn and torch.nn, and every name listing
(named_parameters, named_modules, named_buffers, state_dict keys) must come out equal,
in the same order.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import pytest
import torch

import minicnn
import minicnn.nn as nn


def build(lib):
    """The same custom model with either library (lib is minicnn.nn or torch.nn)."""

    zeros = minicnn.zeros if lib is nn else torch.zeros

    class Net(lib.Module):
        def __init__(self):
            super().__init__()
            self.stem = lib.Sequential(lib.Linear(4, 8), lib.ReLU())
            self.blocks = lib.ModuleList([lib.Linear(8, 8), lib.Tanh(),
                                          lib.Linear(8, 8, bias=False)])
            self.heads = lib.ModuleDict({"cls": lib.Linear(8, 3), "box": lib.Linear(8, 4)})
            self.scale = lib.Parameter(zeros(1))
            self.register_buffer("steps", zeros(1))
            self.register_buffer("cache", zeros(2), persistent=False)
            self.register_parameter("unused", None)
            self.tail = lib.Sequential(lib.Linear(8, 8),
                                       lib.Sequential(lib.Linear(8, 2), lib.Dropout()))

        def forward(self, x):
            return x

    return Net()


def names(iterable):
    return [n for n, _ in iterable]


# ---------------------------------------------------------------------------- traversal
def test_traversal_order_matches_torch():
    m, t = build(nn), build(torch.nn)
    assert names(m.named_parameters()) == names(t.named_parameters())
    assert names(m.named_modules()) == names(t.named_modules())
    assert names(m.named_buffers()) == names(t.named_buffers())
    assert names(m.named_children()) == names(t.named_children())
    assert list(m.state_dict()) == list(t.state_dict())
    assert names(m.named_parameters(prefix="net")) == names(t.named_parameters(prefix="net"))
    assert names(m.named_parameters(recurse=False)) == names(t.named_parameters(recurse=False))
    assert names(m.named_buffers(recurse=False)) == names(t.named_buffers(recurse=False))
    assert len(list(m.parameters())) == len(list(t.parameters()))
    assert len(list(m.modules())) == len(list(t.modules()))
    assert len(list(m.children())) == len(list(t.children()))
    assert "cache" not in m.state_dict() and "unused" not in m.state_dict()


def test_sequential_mlp_names_match_torch():
    def mlp(lib):
        return lib.Sequential(lib.Linear(5, 4), lib.ReLU(),
                              lib.Sequential(lib.Linear(4, 3), lib.Dropout()))

    m, t = mlp(nn), mlp(torch.nn)
    assert names(m.named_parameters()) == names(t.named_parameters()) == [
        "0.weight", "0.bias", "2.0.weight", "2.0.bias"]
    assert names(m.named_modules()) == names(t.named_modules())
    assert list(m.state_dict()) == list(t.state_dict())


def test_shared_parameters_and_modules_appear_once_as_in_torch():
    def shared(lib):
        layer = lib.Linear(3, 3)
        model = lib.Sequential(layer, lib.ReLU(), layer)
        model.extra = lib.Linear(3, 3)
        model.extra.weight = layer.weight  # tied weight
        return model

    m, t = shared(nn), shared(torch.nn)
    for dup in (True, False):
        assert (names(m.named_parameters(remove_duplicate=dup))
                == names(t.named_parameters(remove_duplicate=dup)))
        assert (names(m.named_modules(remove_duplicate=dup))
                == names(t.named_modules(remove_duplicate=dup)))
    assert len(list(m.parameters())) == 3  # weight, bias of the shared layer, extra.bias
    assert list(m.state_dict()) == list(t.state_dict())  # state_dict lists every name


def test_get_submodule_parameter_buffer():
    m = build(nn)
    assert m.get_submodule("tail.1.0") is m.tail[1][0]
    assert m.get_submodule("") is m
    assert m.get_parameter("heads.cls.weight") is m.heads["cls"].weight
    assert m.get_buffer("steps") is m.steps
    with pytest.raises(AttributeError, match="no submodule `nope`"):
        m.get_submodule("tail.nope")
    with pytest.raises(AttributeError, match="no parameter `gamma`"):
        m.get_parameter("stem.0.gamma")


# ---------------------------------------------------------------------------- registration
def test_setattr_registers_and_reassigns():
    m = nn.Module()
    m.w = nn.Parameter(minicnn.ones(2))
    m.sub = nn.Linear(2, 2)
    m.register_buffer("b", minicnn.zeros(2))
    m.plain = 3
    assert list(m._parameters) == ["w"] and list(m._modules) == ["sub"]
    assert list(m._buffers) == ["b"]
    assert m.w is m._parameters["w"] and m.sub is m._modules["sub"] and m.b is m._buffers["b"]
    m.b = minicnn.ones(2)  # a Tensor assigned to a buffer name updates the buffer
    assert float(m._buffers["b"].sum()) == 2.0
    m.w = None  # a parameter may be set to None
    assert m._parameters["w"] is None and names(m.named_parameters()) == ["sub.weight", "sub.bias"]
    m.sub = nn.Parameter(minicnn.ones(1))  # a Parameter replaces the module of the same name
    assert "sub" not in m._modules and "sub" in m._parameters
    del m.sub
    del m.b
    assert "sub" not in m._parameters and "b" not in m._buffers
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'sub'"):
        _ = m.sub
    del m.plain
    assert not hasattr(m, "plain")


def test_registration_errors():
    m = nn.Module()
    m.w = nn.Parameter(minicnn.ones(2))
    m.sub = nn.Linear(2, 2)
    m.register_buffer("b", minicnn.zeros(2))
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'w'"):
        m.w = minicnn.ones(2)
    with pytest.raises(TypeError, match="cannot assign 'int' as child module 'sub'"):
        m.sub = 3
    with pytest.raises(TypeError, match="cannot assign 'ndarray' as buffer 'b'"):
        m.b = np.zeros(2)
    with pytest.raises(TypeError, match="cannot assign 'Tensor' object to parameter 'p'"):
        m.register_parameter("p", minicnn.ones(2))
    with pytest.raises(TypeError, match="cannot assign 'list' object to buffer 'q'"):
        m.register_buffer("q", [1, 2])
    with pytest.raises(KeyError, match="must not contain"):
        m.register_buffer("a.b", minicnn.zeros(1))
    with pytest.raises(KeyError, match="must not be the empty"):
        m.register_parameter("", None)
    with pytest.raises(KeyError, match="attribute 'w' already exists"):
        m.register_buffer("w", minicnn.zeros(1))
    with pytest.raises(TypeError, match="is not a Module subclass"):
        m.add_module("x", 3)

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(minicnn.ones(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        nn.Module()(1)


def test_dir_lists_members():
    m = build(nn)
    d = dir(m)
    for name in ("stem", "blocks", "scale", "steps", "forward", "training"):
        assert name in d
    assert "0" not in dir(m.stem)


def test_deepcopy_is_independent():
    m = build(nn)
    c = copy.deepcopy(m)
    assert names(c.named_parameters()) == names(m.named_parameters())
    c.stem[0].weight.array[...] = 0
    assert float(m.stem[0].weight.array.__abs__().sum()) > 0
    assert c.stem[0].weight is not m.stem[0].weight


# ---------------------------------------------------------------------------- Parameter
def test_parameter():
    t = minicnn.tensor([1.0, 2.0])
    p = nn.Parameter(t)
    assert isinstance(p, minicnn.Tensor) and p.requires_grad and p.is_leaf
    assert p.array is t.array  # shares memory, as in PyTorch
    assert repr(p) == repr(torch.nn.Parameter(torch.tensor([1.0, 2.0])))
    assert repr(p) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"
    assert not nn.Parameter(t, requires_grad=False).requires_grad
    assert nn.Parameter().shape == (0,)
    assert type(p * 2) is minicnn.Tensor and type(p.detach()) is minicnn.Tensor


# ---------------------------------------------------------------------------- modes, grads
def test_train_eval_propagate():
    m = build(nn)
    assert m.eval() is m
    assert all(not mod.training for mod in m.modules())
    assert m.train() is m
    assert all(mod.training for mod in m.modules())
    m.tail.eval()
    assert m.training and not m.tail[1][1].training and m.stem.training
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        m.train("yes")


def test_zero_grad_and_requires_grad():
    m = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    for p in m.parameters():
        p.grad = minicnn.ones(p.shape)
    m.zero_grad(set_to_none=False)
    assert all(p.grad is not None and float(p.grad.sum()) == 0 for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    assert m.requires_grad_(False) is m
    assert not any(p.requires_grad for p in m.parameters())
    m[1].requires_grad_(True)
    assert [p.requires_grad for p in m.parameters()] == [False, False, True, True]


def test_apply_visits_children_first_like_torch():
    def visits(lib):
        seen = []
        build(lib).apply(lambda mod: seen.append(type(mod).__name__))
        return seen

    assert visits(nn) == visits(torch.nn)


def test_to_dtype_and_device_keep_parameter_identity():
    m = build(nn)
    m.register_buffer("count", minicnn.tensor(3))  # int64 buffer: dtypes leave it alone
    w = m.stem[0].weight
    w.grad = minicnn.ones(w.shape)
    assert m.double() is m
    assert m.stem[0].weight is w and w.dtype == np.float64 and w.grad.dtype == np.float64
    assert all(b.dtype == np.float64 for n, b in m.named_buffers() if n != "count")
    assert m.count.dtype == np.int64
    m.to(np.float32)
    assert all(p.dtype == np.float32 for p in m.parameters())
    m.to("cpu", np.float64)
    assert all(p.dtype == np.float64 and p.device == "cpu" for p in m.parameters())
    m.float().cpu()
    assert all(p.dtype == np.float32 for p in m.parameters())
    m.to(minicnn.zeros(1, dtype=np.float64))
    assert all(p.dtype == np.float64 for p in m.parameters())
    with pytest.raises(TypeError, match="floating point"):
        m.to(np.int64)
    with pytest.raises(ValueError, match="device must be"):
        m.to("tpu")


def test_cuda_without_gpu_names_install_hint(without_cupy):
    with pytest.raises(RuntimeError, match=r"minicnn\[gpu\]"):
        nn.Linear(2, 2).cuda()


@pytest.mark.gpu
def test_to_cuda_and_back():
    m = build(nn)
    w = m.stem[0].weight
    m.to("cuda")
    assert all(p.device == "cuda" for p in m.parameters())
    assert all(b.device == "cuda" for b in m.buffers())
    assert m.stem[0].weight is w
    sd = m.state_dict()
    assert all(v.device == "cuda" for v in sd.values())
    m.cpu()
    assert all(p.device == "cpu" for p in m.parameters())


# ---------------------------------------------------------------------------- hooks
def test_forward_hooks_fire_modify_and_remove():
    lin = nn.Linear(3, 2)
    x = minicnn.randn(4, 3)
    calls = []
    h1 = lin.register_forward_hook(lambda mod, args, out: calls.append(("fwd", mod, args, out)))
    y = lin(x)
    assert len(calls) == 1 and calls[0][1] is lin and calls[0][2][0] is x and calls[0][3] is y
    h2 = lin.register_forward_hook(lambda mod, args, out: out * 0)
    assert float(lin(x).abs().sum()) == 0  # a hook's return value replaces the output
    h2.remove()
    h1.remove()
    h1.remove()  # removing twice is harmless
    calls.clear()
    assert float(lin(x).abs().sum()) > 0 and calls == []

    pre = lin.register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
    np.testing.assert_allclose(lin(x).array, np.broadcast_to(lin.bias.array, (4, 2)))
    pre.remove()

    order = []
    lin.register_forward_hook(lambda *a: order.append("a"))
    lin.register_forward_hook(lambda *a: order.append("b"), prepend=True)
    lin(x)
    assert order == ["b", "a"]
    with pytest.raises(TypeError, match="hook must be callable"):
        lin.register_forward_hook(3)


def test_hook_as_context_manager_collects_feature_maps():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    maps = {}
    with model[1].register_forward_hook(lambda m, a, out: maps.update(relu=out)):
        model(minicnn.randn(5, 3))
    assert maps["relu"].shape == (5, 4) and float(maps["relu"].array.min()) >= 0
    maps.clear()
    model(minicnn.randn(5, 3))
    assert maps == {}


# ---------------------------------------------------------------------------- repr
def test_repr_equals_torch_for_nested_models():
    def model(lib):
        return lib.Sequential(
            lib.Flatten(), lib.Linear(12, 8), lib.ReLU(), lib.Dropout(0.25),
            lib.Sequential(lib.Linear(8, 4, bias=False), lib.LeakyReLU(0.2), lib.Identity()),
            lib.Unflatten(1, (2, 2)), lib.Softmax(dim=1), lib.Flatten(0, 1),
        )

    assert repr(model(nn)) == str(model(torch.nn))
    assert repr(build(nn)) == str(build(torch.nn))
    named = [("conv", "Linear"), ("act", "GELU")]

    def od(lib):
        return lib.Sequential(OrderedDict((k, getattr(lib, v)(2, 2) if v == "Linear" else
                                           getattr(lib, v)()) for k, v in named))

    assert repr(od(nn)) == str(od(torch.nn))
    assert repr(nn.Module()) == str(torch.nn.Module())
    assert repr(nn.ModuleList()) == str(torch.nn.ModuleList())


def test_modulelist_repr_compresses_repeats_like_torch():
    def blocks(lib):
        return lib.ModuleList([lib.Linear(2, 2), lib.Linear(2, 2), lib.Linear(2, 2), lib.ReLU(),
                               lib.Sequential(lib.Linear(2, 3)), lib.Sequential(lib.Linear(2, 3))])

    assert repr(blocks(nn)) == str(blocks(torch.nn))


def test_extra_repr_multiline_and_custom():
    class Custom(nn.Module):
        def extra_repr(self):
            return "a=1\nb=2"

    class TCustom(torch.nn.Module):
        def extra_repr(self):
            return "a=1\nb=2"

    Custom.__name__ = TCustom.__name__ = "Custom"
    m, t = nn.Sequential(Custom()), torch.nn.Sequential(TCustom())
    m[0].child = nn.ReLU()
    t[0].child = torch.nn.ReLU()
    assert repr(m) == str(t)


# ---------------------------------------------------------------------------- containers
def test_sequential_indexing_matches_torch():
    def seq(lib):
        return lib.Sequential(lib.Linear(2, 3), lib.ReLU(), lib.Linear(3, 4), lib.Tanh())

    m, t = seq(nn), seq(torch.nn)
    assert len(m) == 4 and type(m[-1]) is nn.Tanh and m[0] is list(m)[0]
    sub, tsub = m[1:3], t[1:3]
    assert isinstance(sub, nn.Sequential) and sub[0] is m[1]
    assert list(sub._modules) == list(tsub._modules) == ["1", "2"]  # slices keep the names
    assert repr(sub) == str(tsub)
    with pytest.raises(IndexError, match="index 4 is out of range"):
        m[4]
    m[1] = nn.Sigmoid()
    t[1] = torch.nn.Sigmoid()
    del m[0]
    del t[0]
    assert list(m._modules) == list(t._modules) and repr(m) == str(t)
    m.append(nn.ReLU())
    t.append(torch.nn.ReLU())
    m.insert(1, nn.Identity())
    t.insert(1, torch.nn.Identity())
    m.extend([nn.Linear(4, 1)])
    t.extend([torch.nn.Linear(4, 1)])
    assert repr(m) == str(t)
    assert isinstance(m.pop(0), nn.Sigmoid) and len(m) == 5
    del m[1:3]
    del t[0]
    del t[1:3]
    assert repr(m) == str(t)


def test_sequential_forward_runs_in_order():
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = minicnn.randn(5, 3)
    expected = m[2](m[1](m[0](x)))
    np.testing.assert_array_equal(m(x).array, expected.array)
    od = nn.Sequential(OrderedDict([("fc", nn.Linear(3, 2)), ("act", nn.ReLU())]))
    assert od.fc is od[0] and names(od.named_children()) == ["fc", "act"]


def test_modulelist_api_matches_torch():
    def ml(lib):
        return lib.ModuleList([lib.Linear(2, 2), lib.ReLU()])

    m, t = ml(nn), ml(torch.nn)
    for lst, lib in ((m, nn), (t, torch.nn)):
        lst.append(lib.Tanh())
        lst.extend([lib.Sigmoid(), lib.Identity()])
        lst.insert(0, lib.Dropout())
        lst.insert(len(lst) - 1, lib.GELU())  # torch's insert mishandles negative indices
        lst += [lib.ReLU6()]
        del lst[2]
        lst[-1] = lib.SiLU()
    assert repr(m) == str(t)
    assert [type(x).__name__ for x in m] == [type(x).__name__ for x in t]
    assert len(m) == len(t) and isinstance(m[1:3], nn.ModuleList) and len(m[1:3]) == 2
    assert isinstance(m.pop(), nn.SiLU) and len(m) == len(t) - 1
    assert isinstance(m + nn.ModuleList([nn.ReLU()]), nn.ModuleList)
    assert names(m.named_modules()) == names(t[:-1].named_modules())
    m.insert(-1, nn.GELU())
    assert isinstance(m[-2], nn.GELU)
    with pytest.raises(IndexError):
        m.insert(99, nn.ReLU())
    with pytest.raises(TypeError, match="expects a Module"):
        m.insert(0, 3)


def test_moduledict_api():
    d = nn.ModuleDict({"a": nn.Linear(2, 2)})
    d["b"] = nn.ReLU()
    d.update([("c", nn.Tanh())])
    d.update({"a": nn.Identity()})  # replaces, keeps the position
    assert list(d) == list(d.keys()) == ["a", "b", "c"] and len(d) == 3 and "b" in d
    assert isinstance(d["a"], nn.Identity)
    assert [type(v).__name__ for v in d.values()] == ["Identity", "ReLU", "Tanh"]
    assert isinstance(d.pop("b"), nn.ReLU) and list(d) == ["a", "c"]
    del d["a"]
    assert list(d.items())[0][0] == "c"
    d.clear()
    assert len(d) == 0
    with pytest.raises(ValueError, match="element #0 should be a"):
        d.update([3])
