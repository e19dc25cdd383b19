"""The deconvnet projection and guided backpropagation against PyTorch on the same weights:
once written out as Zeiler & Fergus describe it (unpool with the switches, rectify, transposed
filters) and once with PyTorch backward hooks on the ReLUs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minicnn import nn
from minicnn.nn import functional as F
from minicnn.viz import deconvnet_projection, guided_backprop, top_activations
from minicnn.viz.deconvnet import project_activation
from tests.viz.nets import images, twin


def _strongest_seed(act: torch.Tensor, channel: int, value: bool = True) -> torch.Tensor:
    """Keep each image's strongest activation of ``channel`` (its value), zero the rest."""
    n = act.shape[0]
    seed = torch.zeros_like(act)
    flat = act[:, channel].reshape(n, -1).argmax(1)
    i, j = flat // act.shape[3], flat % act.shape[3]
    rows = torch.arange(n)
    seed[rows, channel, i, j] = act[rows, channel, i, j] if value else 1.0
    return seed


def zeiler_fergus(reference: torch.nn.Sequential, x: np.ndarray, upto: int,
                  channel: int) -> np.ndarray:
    """The deconvnet written out: forward through layers 0..upto recording the switches,
    then back: unpool at the switches, ReLU on the signal, transposed filters."""
    h = torch.tensor(x)
    trace = []  # (layer, its input, the switches)
    with torch.no_grad():
        for layer in list(reference)[:upto + 1]:
            if isinstance(layer, torch.nn.MaxPool2d):
                out, switches = torch.nn.functional.max_pool2d(
                    h, layer.kernel_size, layer.stride, return_indices=True)
                trace.append((layer, h, switches))
            else:
                out = layer(h)
                trace.append((layer, h, None))
            h = out
        signal = _strongest_seed(h, channel)
        for layer, inp, switches in reversed(trace):
            if isinstance(layer, torch.nn.MaxPool2d):
                signal = torch.nn.functional.max_unpool2d(
                    signal, switches, layer.kernel_size, layer.stride, output_size=inp.shape[2:])
            elif isinstance(layer, torch.nn.ReLU):
                signal = torch.relu(signal)
            elif isinstance(layer, torch.nn.Conv2d):
                signal = torch.nn.functional.conv_transpose2d(
                    signal, layer.weight, stride=layer.stride, padding=layer.padding)
            else:
                raise AssertionError(f"no deconvnet step for {layer}")
    return signal.numpy()


def with_hooks(reference: torch.nn.Sequential, x: np.ndarray, upto: int | None,
               channel, rule: str) -> np.ndarray:
    """The same projections by PyTorch's backward pass, the ReLUs' backward replaced by
    full backward hooks: ``deconvnet`` relu(grad_out), ``guided`` relu(grad_in)."""
    def hook(module, grad_input, grad_output):
        if rule == "deconvnet":
            return (grad_output[0].clamp(min=0),)
        return (grad_input[0].clamp(min=0),)

    handles = [m.register_full_backward_hook(hook) for m in reference
               if isinstance(m, torch.nn.ReLU)]
    xt = torch.tensor(x, requires_grad=True)
    try:
        if upto is None:
            out = reference(xt)
            seed = torch.zeros_like(out)
            seed[torch.arange(len(x)), torch.as_tensor(channel)] = 1.0
        else:
            out = reference[:upto + 1](xt)
            seed = _strongest_seed(out.detach(), channel)
        out.backward(seed)
    finally:
        for handle in handles:
            handle.remove()
    return xt.grad.numpy()


@pytest.mark.parametrize("upto", [1, 2, 4, 5])  # relu1, pool1, relu2, pool2
def test_deconvnet_equals_zeiler_fergus_written_out_and_torch_hooks(upto):
    model, reference = twin()
    x = images()
    ours = deconvnet_projection(model, x, str(upto), channel=2)
    assert ours.shape == x.shape
    np.testing.assert_allclose(ours, zeiler_fergus(reference, x, upto, 2), rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_allclose(ours, with_hooks(reference, x, upto, 2, "deconvnet"),
                               rtol=1e-4, atol=1e-6)
    assert np.abs(ours).max() > 0


@pytest.mark.parametrize("upto", [2, 5, None])  # pool1, pool2, the class scores
def test_guided_backprop_equals_torch_hooks(upto):
    model, reference = twin(seed=1)
    x = images(seed=1)
    layer = None if upto is None else str(upto)
    channel = [0, 3, 4] if upto is None else 1
    ours = guided_backprop(model, x, layer, channel)
    np.testing.assert_allclose(ours, with_hooks(reference, x, upto, channel, "guided"),
                               rtol=1e-4, atol=1e-6)
    # past one ReLU it differs from the deconvnet (the forward mask matters; through a
    # single ReLU above the seed the two agree) and from the plain gradient
    if upto == 5:
        assert not np.allclose(ours, deconvnet_projection(model, x, layer, channel))
    plain = project_activation(model, x, layer, channel, rule="gradient")
    assert np.allclose(ours, plain) == (upto == 2)


def test_guided_backprop_through_batch_norm_and_default_class():
    model, reference = twin(seed=2, bn=True)
    x = images(seed=2)
    predicted = reference(torch.tensor(x)).argmax(1).numpy()
    np.testing.assert_allclose(guided_backprop(model, x),
                               with_hooks(reference, x, None, predicted, "guided"),
                               rtol=1e-4, atol=1e-6)


def test_projection_leaves_parameters_and_mode_alone():
    model, _ = twin()
    model.train()
    deconvnet_projection(model, images(), "5", 0)
    assert model.training and all(p.grad is None and p.requires_grad
                                  for p in model.parameters())


def test_top_activations_against_a_direct_search():
    model, reference = twin()
    x = images(n=20, seed=3)
    top = top_activations(model, x, "4", channel=3, k=5, batch_size=7)
    with torch.no_grad():
        maps = reference[:5](torch.tensor(x))[:, 3].numpy()
    best = maps.reshape(20, -1).max(1)
    np.testing.assert_array_equal(top.indices, np.argsort(-best)[:5])
    np.testing.assert_allclose(top.values, np.sort(best)[::-1][:5], rtol=1e-5)
    for i, (r, c) in zip(top.indices, top.positions, strict=True):
        assert maps[i, r, c] == maps[i].max()


def test_bad_arguments_are_named():
    model, _ = twin()
    with pytest.raises(ValueError, match="layer 'nope'"):
        deconvnet_projection(model, images(), "nope", 0)
    with pytest.raises(ValueError, match="channel 9 out of range"):
        deconvnet_projection(model, images(), "1", 9)
    with pytest.raises(ValueError, match="rule must be"):
        project_activation(model, images(), "1", 0, rule="magic")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        deconvnet_projection(model, images()[0], "1", 0)


class _FunctionalReLUs(nn.Module):
    """The twin's first layers with F.relu in forward instead of ReLU modules, and a
    residual addition: the rules must reach every ReLU of the graph, not only modules."""

    def __init__(self, modules):
        super().__init__()
        self.conv1, self.conv2 = modules[0], modules[3]

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        return F.relu(self.conv2(h) + h[:, :1])


@pytest.mark.parametrize("rule", ["deconvnet", "guided"])
def test_rules_reach_functional_relus(rule):
    model, reference = twin(seed=5)
    x = images(seed=5)
    functional = _FunctionalReLUs(list(model))
    ours = project_activation(functional, x, "conv2", 1, rule=rule)
    # the same network in PyTorch with ReLU modules and backward hooks

    class Torch(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = reference[0], reference[3]
            self.relu1, self.relu2 = torch.nn.ReLU(), torch.nn.ReLU()

        def forward(self, x):
            h = torch.nn.functional.max_pool2d(self.relu1(self.conv1(x)), 2)
            return self.relu2(self.conv2(h) + h[:, :1])

    net = Torch()
    caught = {}
    net.conv2.register_forward_hook(lambda m, a, o: caught.update(conv2=o))

    def hook(module, grad_input, grad_output):
        return ((grad_output[0] if rule == "deconvnet" else grad_input[0]).clamp(min=0),)

    net.relu1.register_full_backward_hook(hook)
    xt = torch.tensor(x, requires_grad=True)
    net(xt)
    caught["conv2"].backward(_strongest_seed(caught["conv2"].detach(), 1))
    np.testing.assert_allclose(ours, xt.grad.numpy(), rtol=1e-4, atol=1e-6)
