"""Filter grids, feature maps through forward hooks (the hooks' semantics against PyTorch),
the autograd graph, and the figures' atomic save."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minicnn
from minicnn import nn
from minicnn.viz import (
    autograd_graph,
    feature_maps,
    filter_images,
    plot_feature_maps,
    plot_filters,
    plot_graph,
    save_figure,
)
from tests.viz.nets import images, twin


def test_forward_hooks_behave_as_pytorchs():
    """The same hooks on the same layer in both libraries: call order (prepend), the
    arguments they see, a pre-hook replacing the input, a hook replacing the output."""
    def run(lib, tensor):
        layer = lib.Linear(3, 2)
        layer.load_state_dict({"weight": np.arange(6.0, dtype=np.float32).reshape(2, 3),
                               "bias": np.array([1.0, -1.0], dtype=np.float32)} if lib is nn
                              else {"weight": torch.arange(6.0).reshape(2, 3),
                                    "bias": torch.tensor([1.0, -1.0])})
        log = []
        layer.register_forward_hook(lambda m, a, o: log.append(("a", len(a), tuple(o.shape))))
        layer.register_forward_hook(lambda m, a, o: log.append(("b", m is layer)),
                                    prepend=True)
        layer.register_forward_pre_hook(lambda m, a: (a[0] * 2,))
        doubled = layer.register_forward_hook(lambda m, a, o: o + 100)
        x = tensor(np.ones((4, 3), dtype=np.float32))
        first = np.asarray(layer(x).detach().numpy())
        doubled.remove()
        second = np.asarray(layer(x).detach().numpy())
        return log, first, second

    ours, theirs = run(nn, minicnn.tensor), run(torch.nn, torch.tensor)
    assert ours[0] == theirs[0]
    np.testing.assert_allclose(ours[1], theirs[1])
    np.testing.assert_allclose(ours[2], theirs[2])


def test_feature_maps_equal_torch_layer_outputs():
    model, reference = twin(bn=True)
    x = images()
    maps = feature_maps(model, x, ["1", "3", "6"])
    with torch.no_grad():
        for name in ("1", "3", "6"):
            expected = reference[:int(name) + 1](torch.tensor(x)).numpy()
            np.testing.assert_allclose(maps[name], expected, rtol=1e-4, atol=1e-5)
    assert list(feature_maps(model, x, "2")) == ["2"]
    with pytest.raises(ValueError, match="layer 'conv9' is not a layer of Sequential"):
        feature_maps(model, x, "conv9")


def test_filter_images_are_the_weights():
    conv = nn.Conv2d(3, 5, 4)
    w = conv.weight.detach().numpy()
    rgb = filter_images(conv)
    assert rgb.shape == (5, 4, 4, 3) and rgb.min() == 0 and rgb.max() == 1
    k = 2  # each filter is stretched on its own: the ranking of values is kept
    np.testing.assert_array_equal(np.argsort(rgb[k].ravel()),
                                  np.argsort(w[k].transpose(1, 2, 0).ravel()))
    np.testing.assert_array_equal(filter_images(conv, channel=1), w[:, 1])
    deep = nn.Conv2d(4, 2, 3)
    np.testing.assert_allclose(filter_images(deep), deep.weight.detach().numpy().mean(1))
    transposed = nn.ConvTranspose2d(4, 2, 3)  # weight (C_in, C_out, k, k): one filter per output
    assert filter_images(transposed).shape == (2, 3, 3)
    with pytest.raises(ValueError, match="channel 3 out of range"):
        filter_images(conv, channel=3)
    with pytest.raises(TypeError, match="expected a Conv2d"):
        filter_images(nn.ReLU())


def test_graph_of_one_forward_pass():
    model, reference = twin()
    x = minicnn.tensor(images(n=2), requires_grad=True)
    for p in model.parameters():
        p.requires_grad = True
    graph = autograd_graph(model(x), dict(model.named_parameters()))
    # the chain of Functions, output first, one per layer that computes something
    assert graph.functions() == ["Linear", "ReLU", "Linear", "Reshape", "MaxPool2d", "ReLU",
                                 "Convolution2d", "MaxPool2d", "ReLU", "Convolution2d"]
    # each function's shape is the output of its layer in PyTorch
    shapes, h = [], torch.tensor(images(n=2))
    with torch.no_grad():
        for layer in reference:
            h = layer(h)
            shapes.append(tuple(h.shape))
    assert [n.shape for n in graph.nodes if n.kind == "function"] == shapes[::-1]
    leaves = {n.name: n.shape for n in graph.nodes if n.kind != "function"}
    assert leaves == {"input": (2, 3, 16, 16),
                      **{k: tuple(v.shape) for k, v in reference.state_dict().items()}}
    assert len(graph.edges) == 9 + len(leaves)  # the chain plus one edge per leaf
    depth = graph.depths()
    assert depth[graph.nodes[0].id] == 0 and max(depth.values()) == 10


def test_graph_of_a_branching_net_visits_a_shared_node_once():
    x = minicnn.tensor(np.ones((1, 2), dtype=np.float32), requires_grad=True)
    y = x.relu()
    graph = autograd_graph(y * y + y)
    assert sorted(graph.functions()) == ["Add", "Mul", "ReLU"]
    with pytest.raises(ValueError, match="has no grad_fn"):
        autograd_graph(minicnn.tensor([1.0]))


def test_figures_are_returned_and_saved_atomically(tmp_path):
    model, _ = twin()
    fig = plot_filters(model[0], tmp_path / "filters.png")
    assert (tmp_path / "filters.png").read_bytes()[:4] == b"\x89PNG" and fig.axes
    maps = feature_maps(model, images(n=1), "1")["1"][0]
    plot_feature_maps(maps, tmp_path / "maps.png", image=images(n=1)[0])
    x = minicnn.tensor(images(n=1), requires_grad=True)
    plot_graph(autograd_graph(model(x)), tmp_path / "graph.svg", title="graph")
    assert (tmp_path / "graph.svg").read_text().lstrip().startswith("<?xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["filters.png", "graph.svg",
                                                           "maps.png"]  # no temporary left
    with pytest.raises(ValueError, match="suffix '.txt'"):
        save_figure(fig, tmp_path / "x.txt")


def test_bad_inputs_are_named():
    model, _ = twin()
    with pytest.raises(ValueError, match=r"feature maps \(C, H, W\), got \(1, 4, 16, 16\)"):
        plot_feature_maps(np.zeros((1, 4, 16, 16)))
    with pytest.raises(ValueError, match=r"weight \(C_out, C_in, k_h, k_w\), got shape \(3, 3\)"):
        plot_filters(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"images must be \(N, C, H, W\)"):
        feature_maps(model, np.zeros((3, 16, 16)), "1")
