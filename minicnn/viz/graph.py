"""The autograd graph of one forward pass, as data and as a drawing (matplotlib only).

Every Tensor an operation makes remembers its graph node, ``tensor.grad_fn``: a
``Context`` naming the ``Function`` and holding the input Tensors. Walking from the output
back through ``ctx.inputs`` visits every Function the forward pass ran; leaves (tensors
without ``grad_fn``) are the input and the parameters. :func:`autograd_graph` collects the
nodes with the shape each one produced, :func:`plot_graph` draws them in layers, the output
at the bottom, as PyTorch's ``torchviz`` does (without Graphviz).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from minicnn.autograd import Context, Tensor
from minicnn.nn import Parameter
from minicnn.viz.figure import finish, new_figure

__all__ = ["Graph", "GraphNode", "autograd_graph", "graph_functions", "plot_graph"]


def graph_functions(root: Tensor) -> Iterator[Context]:
    """Every graph node (``Context``) behind ``root``, each once, output first."""
    seen: set[int] = set()
    stack = [root.grad_fn] if root.grad_fn is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        stack.extend(t.grad_fn for t in reversed(node.inputs)
                     if t is not None and t.grad_fn is not None and id(t.grad_fn) not in seen)


@dataclass
class GraphNode:
    """One node: ``kind`` is ``"function"`` (its ``name`` the Function's, e.g. ``"Conv2d"``),
    ``"input"`` (a leaf that is not a parameter) or ``"parameter"`` (named when the model's
    parameters were given); ``shape`` is the shape of the tensor it produced."""

    id: int
    kind: str
    name: str
    shape: tuple[int, ...]


@dataclass
class Graph:
    """``nodes`` (the output's node first) and ``edges`` ``(source, target)`` of node ids,
    the direction of the forward pass: ``(a, b)`` means b took a's result as an input."""

    nodes: list[GraphNode] = field(default_factory=list)
    edges: list[tuple[int, int]] = field(default_factory=list)

    def functions(self) -> list[str]:
        """The names of the function nodes, output first."""
        return [n.name for n in self.nodes if n.kind == "function"]

    def depths(self) -> dict[int, int]:
        """Each node's distance from the output (the longest path): its row in the drawing."""
        consumers: dict[int, list[int]] = {}
        for a, b in self.edges:
            consumers.setdefault(a, []).append(b)
        depth: dict[int, int] = {}

        def visit(i: int) -> int:
            if i not in depth:
                depth[i] = 1 + max((visit(b) for b in consumers.get(i, [])), default=-1)
            return depth[i]

        for node in self.nodes:
            visit(node.id)
        return depth


def autograd_graph(output: Tensor, params: Mapping[str, Tensor] | None = None) -> Graph:
    """The graph that made ``output`` (a Tensor with ``grad_fn``, before ``backward`` frees
    it): one node per Function and per leaf tensor it used, with shapes. ``params``: e.g.
    ``dict(model.named_parameters())`` to name the parameter leaves (the parameters must
    require grad during the forward pass to appear at all)."""
    if not isinstance(output, Tensor) or output.grad_fn is None:
        raise ValueError("autograd_graph: output must be a Tensor made with grad enabled "
                         "(it has no grad_fn: run the forward pass with an input or "
                         "parameters that require grad)")
    names = {id(t): name for name, t in (params or {}).items()}
    graph = Graph()
    shapes = {id(output.grad_fn): tuple(output.shape)}
    leaves: dict[int, GraphNode] = {}
    for ctx in graph_functions(output):
        graph.nodes.append(GraphNode(id(ctx), "function", ctx.function.__name__,
                                     shapes.get(id(ctx), ())))
        for t in ctx.inputs:
            if t is None:
                continue
            if t.grad_fn is not None:
                shapes[id(t.grad_fn)] = tuple(t.shape)
                graph.edges.append((id(t.grad_fn), id(ctx)))
            elif t.requires_grad:
                if id(t) not in leaves:
                    is_param = id(t) in names or isinstance(t, Parameter)
                    leaves[id(t)] = GraphNode(id(t), "parameter" if is_param else "input",
                                              names.get(id(t), "parameter" if is_param
                                                        else "input"), tuple(t.shape))
                graph.edges.append((id(t), id(ctx)))
    # a node's shape is known once a consumer has seen its output: fill those found later
    for node in graph.nodes:
        node.shape = shapes.get(node.id, node.shape)
    graph.nodes.extend(leaves.values())
    return graph


_COLOURS = {"function": "#cfe2ff", "input": "#d1f0d1", "parameter": "#f3e0b5"}


def plot_graph(graph: Graph, path: str | os.PathLike | None = None,
               title: str | None = None):
    """Draw ``graph`` top to bottom in the forward direction: leaves (green: the input,
    yellow: parameters) at the top, each Function (blue, with the shape it produced) below
    everything it reads, the output last. Returns the Figure; saves it when ``path`` is
    given."""
    depth = graph.depths()
    rows: dict[int, list[GraphNode]] = {}
    for node in graph.nodes:
        rows.setdefault(depth[node.id], []).append(node)
    height = max(rows) + 1 if rows else 1
    width = max((len(r) for r in rows.values()), default=1)
    fig = new_figure(max(4.0, 2.2 * width), max(2.0, 0.75 * height + 0.6))
    ax = fig.add_axes((0, 0, 1, 0.95 if title else 1))
    ax.axis("off")
    pos: dict[int, tuple[float, float]] = {}
    for d, nodes in rows.items():
        y = d  # the output (depth 0) at the bottom
        for k, node in enumerate(nodes):
            pos[node.id] = ((k + 0.5) * width / len(nodes), y)
    for a, b in graph.edges:
        (xa, ya), (xb, yb) = pos[a], pos[b]
        ax.annotate("", xy=(xb, yb + 0.22), xytext=(xa, ya - 0.22),
                    arrowprops={"arrowstyle": "->", "color": "0.4", "lw": 0.8})
    for node in graph.nodes:
        x, y = pos[node.id]
        shape = "x".join(str(s) for s in node.shape) or "scalar"
        ax.text(x, y, f"{node.name}\n{shape}", ha="center", va="center", fontsize=7,
                bbox={"boxstyle": "round,pad=0.3", "facecolor": _COLOURS[node.kind],
                      "edgecolor": "0.3", "linewidth": 0.6})
    ax.set_xlim(0, width)
    ax.set_ylim(-0.6, height - 0.4)
    if title:
        fig.suptitle(title, fontsize=10)
    return finish(fig, path)
