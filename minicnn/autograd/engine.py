"""Backward: walk the graph once, in reverse topological order, and accumulate gradients.

Each node (a ``Context``) is visited exactly once, after every node that uses its
output has sent its gradient: that is what the topological order guarantees. Leaves
that require grad accumulate into ``.grad``; nodes are freed afterwards unless
``retain_graph=True``.
"""

from __future__ import annotations

from minicnn.backend import array_module


def unbroadcast(grad, shape: tuple[int, ...]):
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``.

    ``(a + b)`` with ``a: (3, 4)`` and ``b: (4,)`` gives a ``(3, 4)`` gradient; ``b``'s
    gradient is its sum over axis 0. The one helper every broadcasting op relies on.
    """
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra < 0:
        raise ValueError(f"gradient of shape {grad.shape} cannot reduce to shape {tuple(shape)}")
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    if grad.shape != tuple(shape):
        raise ValueError(
            f"gradient of shape {grad.shape} does not match input shape {tuple(shape)}"
        )
    return grad


def _topological_order(root_node) -> list:
    """Nodes reachable from ``root_node``, each after all nodes that consume its output."""
    order, visited = [], set()
    stack = [(root_node, False)]
    while stack:  # iterative DFS: deep networks would overflow Python's recursion limit
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for t in node.inputs:
            if t is not None and t.grad_fn is not None and id(t.grad_fn) not in visited:
                stack.append((t.grad_fn, False))
    order.reverse()  # root first
    return order


def _accumulate_leaf(tensor, grad) -> None:
    from minicnn.autograd.tensor import Tensor

    if tensor.grad is None:
        tensor.grad = Tensor._wrap(grad.copy())
    else:
        tensor.grad = Tensor._wrap(tensor.grad.array + grad)


def backward(root, grad, retain_graph: bool = False) -> None:
    """Backpropagate ``grad`` (an array shaped like ``root``) from Tensor ``root``."""
    if root.grad_fn is None:  # backward() on a leaf: its gradient is grad itself
        _accumulate_leaf(root, grad)
        return
    if root.grad_fn.freed:
        raise RuntimeError(
            "Trying to backward through the graph a second time: its saved values were freed "
            "by the first backward. Pass retain_graph=True to the first backward() call."
        )
    grads = {id(root.grad_fn): grad}
    for node in _topological_order(root.grad_fn):
        g = grads.pop(id(node), None)
        if g is None:  # nothing flowed here (e.g. only into non-differentiable paths)
            continue
        if node.freed:
            raise RuntimeError(
                f"Trying to backward through {node.name()} a second time: an earlier backward "
                "freed it. Pass retain_graph=True to the earlier backward() call."
            )
        retained = getattr(node, "retained_output", None)
        if retained is not None and retained() is not None:
            _accumulate_leaf(retained(), g)
        node.check_versions()
        input_grads = node.function.backward(node, g)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        needing = [i for i, t in enumerate(node.inputs) if t is not None and t.requires_grad]
        if (needing and needing[-1] >= len(input_grads)) or any(
            g is not None for g in input_grads[len(node.inputs):]
        ):
            raise RuntimeError(
                f"{node.name()} returned {len(input_grads)} gradients for "
                f"{len(node.inputs)} inputs (backward returns one per forward input, None allowed)"
            )
        for i, (t, ig) in enumerate(zip(node.inputs, input_grads, strict=False)):
            if t is None or ig is None or not t.requires_grad:
                continue
            try:
                ig = unbroadcast(array_module(ig).asarray(ig), t.shape)
            except ValueError as e:
                raise RuntimeError(f"{node.name()}: gradient for input {i}: {e}") from None
            if ig.dtype != t.dtype:
                ig = ig.astype(t.dtype)
            if t.grad_fn is None:
                _accumulate_leaf(t, ig)
            else:
                key = id(t.grad_fn)
                grads[key] = ig if key not in grads else grads[key] + ig
        if not retain_graph:
            node.release()
