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
