"""No memory growth: training steps free their graphs.

A 2-layer MLP built from raw tensor ops (matmul, relu, log_softmax, indexing) is trained
with SGD on ``.array`` for 200 steps. tracemalloc (which sees NumPy's allocations) must
show the memory in use flat between step 50 and step 200, and after each backward the
graph must hold no saved arrays.
"""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np

import minicnn
from minicnn.autograd import ops


def _mlp_step(params, x, y):
    w1, b1, w2, b2 = params
    h = ops.relu(x @ w1 + b1)
    logp = ops.log_softmax(h @ w2 + b2, 1)
    loss = -logp[np.arange(len(y)), y].mean()
    return loss


def test_training_loop_memory_stays_flat():
    rng = np.random.default_rng(0)
    x = minicnn.tensor(rng.standard_normal((32, 20)).astype(np.float32))
    y = rng.integers(0, 5, size=32)
    params = [
        minicnn.tensor(rng.standard_normal(s).astype(np.float32) * 0.3, requires_grad=True)
        for s in [(20, 64), (64,), (64, 5), (5,)]
    ]
    losses, current = [], {}
    tracemalloc.start()
    try:
        for step in range(1, 201):
            loss = _mlp_step(params, x, y)
            loss.backward()
            root = loss.grad_fn
            assert root.freed and root.saved_tensors == () and root.inputs == ()
            with minicnn.no_grad():
                for p in params:
                    p.array -= 0.1 * p.grad.array
                    p.grad = None
            losses.append(loss.item())
            del loss, root
            if step in (50, 200):
                gc.collect()
                current[step] = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert losses[-1] < losses[0]  # it trains
    grown = current[200] - current[50]
    assert grown < 64 * 1024, f"memory grew by {grown} bytes between step 50 and 200"


def test_every_node_is_freed_and_no_graph_is_left_reachable():
    rng = np.random.default_rng(1)
    x = minicnn.tensor(rng.standard_normal((8, 4)).astype(np.float32))
    params = [
        minicnn.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
        for s in [(4, 6), (6,), (6, 3), (3,)]
    ]
    loss = _mlp_step(params, x, np.array([0, 1, 2, 0, 1, 2, 0, 1]))
    nodes, stack = [], [loss.grad_fn]
    while stack:  # collect the graph before backward frees it
        node = stack.pop()
        if node is not None and all(node is not n for n in nodes):
            nodes.append(node)
            stack.extend(t.grad_fn for t in node.inputs if t is not None)
    assert len(nodes) >= 8
    loss.backward()
    for node in nodes:
        assert node.freed and node.saved_tensors == () and node.inputs == (), node
    assert all(p.grad is not None and p.grad.grad_fn is None for p in params)


# ---------------------------------------------------------------- a small ResNet's step


def _saved_arrays(node) -> list:
    """Every array a graph node holds for backward: saved tensors and array attributes."""
    held = [a for a in node.saved_tensors if isinstance(a, np.ndarray)]
    held += [v for v in vars(node).values() if isinstance(v, np.ndarray)]
    for v in vars(node).values():  # lists or tuples of arrays (e.g. chunks)
        if isinstance(v, (list, tuple)) and v is not node.saved_tensors:
            held += [a for a in v if isinstance(a, np.ndarray)]
    return held


def _resnet_step(model, x, y):
    from minicnn.nn import functional as F

    return F.cross_entropy(model(x), y)


def test_small_resnet_step_keeps_only_what_backward_needs():
    """Before backward, no node of a small ResNet's training step holds an array larger
    than the largest activation (convolution keeps its input, not its 9x larger column
    matrix), and every convolution holds only views of its own input and weight; after
    backward every node is freed, and 30 training steps leave the memory flat."""
    from minicnn.models import small_resnet

    rng = np.random.default_rng(2)
    model = small_resnet(num_classes=3, in_channels=1, width=8)
    x = minicnn.tensor(rng.standard_normal((4, 1, 16, 16)).astype(np.float32))
    y = rng.integers(0, 3, size=4)
    loss = _resnet_step(model, x, y)
    nodes, stack = [], [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None and all(node is not n for n in nodes):
            nodes.append(node)
            stack.extend(t.grad_fn for t in node.inputs if t is not None)
    activations = [t.array.nbytes for n in nodes for t in n.inputs if t is not None]
    convolutions = [n for n in nodes if n.name() == "Convolution2dBackward"]
    assert len(convolutions) == 9
    for node in nodes:
        for a in _saved_arrays(node):
            assert a.nbytes <= max(activations), (node, a.shape)
    for node in convolutions:
        own = [t.array for t in node.inputs if t is not None]
        for a in _saved_arrays(node):
            assert any(np.shares_memory(a, b) for b in own), (node, a.shape)
    loss.backward()
    assert all(n.freed and n.saved_tensors == () and n.inputs == () for n in nodes)
    del loss, nodes, stack, convolutions, node

    params = list(model.parameters())
    current = {}
    tracemalloc.start()
    try:
        for step in range(1, 31):
            loss = _resnet_step(model, x, y)
            loss.backward()
            with minicnn.no_grad():
                for p in params:
                    p.array -= 0.01 * p.grad.array
                    p.grad = None
            del loss
            if step in (10, 30):
                gc.collect()
                current[step] = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    grown = current[30] - current[10]
    assert grown < 64 * 1024, f"memory grew by {grown} bytes between step 10 and 30"
