"""Layers on an empty batch (N = 0) give PyTorch's empty output and zero gradients, and
convolution layers refuse non-positive kernel sizes, strides and dilations and negative
padding (PyTorch accepts Conv2d(3, 4, 0) and fails at the first forward; we fail at once)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minicnn
from minicnn import nn
from tests.conftest import device_of
from tests.helpers import assert_close, to_numpy

pytestmark = pytest.mark.filterwarnings(
    "ignore:Initializing zero-element tensors is a no-op:UserWarning")  # torch's Conv2d(3, 4, 0)

# (name, constructor, input shape): built with the same arguments in minicnn and PyTorch
LAYERS = [
    ("conv", lambda m: m.Conv2d(3, 4, 3), (0, 3, 8, 8)),
    ("conv-pad-stride", lambda m: m.Conv2d(3, 4, 3, stride=2, padding=1), (0, 3, 9, 9)),
    ("conv-grouped", lambda m: m.Conv2d(4, 6, 3, groups=2), (0, 4, 8, 8)),
    ("conv-depthwise", lambda m: m.Conv2d(4, 4, 3, groups=4), (0, 4, 8, 8)),
    ("conv-1x1", lambda m: m.Conv2d(3, 5, 1, bias=False), (0, 3, 8, 8)),
    ("conv-transposed", lambda m: m.ConvTranspose2d(3, 4, 3, stride=2), (0, 3, 5, 5)),
    ("conv-transposed-3x3", lambda m: m.ConvTranspose2d(3, 4, 3, padding=1), (0, 3, 8, 8)),
    ("maxpool", lambda m: m.MaxPool2d(2), (0, 3, 8, 8)),
    ("avgpool", lambda m: m.AvgPool2d(3, stride=2, padding=1), (0, 3, 8, 8)),
    ("adaptive-avgpool", lambda m: m.AdaptiveAvgPool2d(1), (0, 3, 8, 8)),
    ("batchnorm-eval", lambda m: m.BatchNorm2d(3).eval(), (0, 3, 8, 8)),
    ("batchnorm1d-eval", lambda m: m.BatchNorm1d(3).eval(), (0, 3)),
    ("linear", lambda m: m.Linear(3, 4), (0, 3)),
]


@pytest.mark.parametrize("name, make, shape", LAYERS, ids=[c[0] for c in LAYERS])
def test_empty_batch_matches_pytorch(backend, name, make, shape):
    ours, theirs = make(nn), make(torch.nn)
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                            for k, v in ours.state_dict().items()})
    ours.to(device_of(backend))
    x = minicnn.zeros(*shape, device=device_of(backend), requires_grad=True)
    tx = torch.zeros(*shape, requires_grad=True)
    y, ty = ours(x), theirs(tx)
    assert y.shape == tuple(ty.shape)
    y.sum().backward()
    ty.sum().backward()
    assert x.grad.shape == shape
    for (pname, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters(),
                                   strict=True):
        assert p.grad is not None, pname
        assert_close(p.grad, tp.grad, msg=pname)
        assert not to_numpy(p.grad).any(), pname


@pytest.mark.parametrize("kwargs, message", [
    (dict(kernel_size=0), "kernel_size must be positive, got 0"),
    (dict(kernel_size=(3, 0)), r"kernel_size must be positive, got \(3, 0\)"),
    (dict(kernel_size=3, stride=0), "stride must be positive, got 0"),
    (dict(kernel_size=3, padding=-1), "padding must be non-negative, got -1"),
    (dict(kernel_size=3, dilation=0), "dilation must be positive, got 0"),
])
@pytest.mark.parametrize("layer", ["Conv2d", "ConvTranspose2d"])
def test_conv_layers_refuse_bad_geometry(layer, kwargs, message):
    with pytest.raises(ValueError, match=f"{layer}: {message}"):
        getattr(nn, layer)(3, 4, **kwargs)
    # PyTorch refuses the same arguments (at the first forward)
    with pytest.raises(RuntimeError):
        getattr(torch.nn, layer)(3, 4, **kwargs)(torch.zeros(1, 3, 8, 8))


def test_conv_functions_refuse_an_empty_kernel():
    import minicnn.nn.functional as F

    x = minicnn.zeros(1, 3, 8, 8)
    with pytest.raises(ValueError, match=r"conv2d: kernel size must be positive.*\(0, 3\)"):
        F.conv2d(x, minicnn.zeros(4, 3, 0, 3))
    with pytest.raises(ValueError, match="conv_transpose2d: kernel size must be positive"):
        F.conv_transpose2d(x, minicnn.zeros(3, 4, 3, 0))


def test_output_padding_must_be_non_negative():
    with pytest.raises(ValueError, match="output_padding must be non-negative"):
        nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=-1)


def test_empty_batch_through_a_network():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 10)).eval()
    out = model(minicnn.tensor(np.zeros((0, 1, 8, 8), np.float32)))
    assert out.shape == (0, 10)
