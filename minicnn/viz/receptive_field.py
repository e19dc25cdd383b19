"""Receptive fields: which input pixels each layer's output pixels see.

For a chain of layers with kernel ``k``, stride ``s``, padding ``p`` and dilation ``d``
(Araujo, Norris & Sim 2019, "Computing Receptive Fields of Convolutional Neural Networks",
Distill), going up from the input (size 1, jump 1, start 0)::

    size_out  = size_in + (k - 1) * d * jump_in     (pixels one output pixel sees)
    jump_out  = jump_in * s                         (input pixels between output pixels)
    start_out = start_in + ((k - 1) * d / 2 - p) * jump_in

``start`` is the centre of output pixel (0, 0)'s field, in input pixel coordinates (pixel
``i`` is centred at ``i``), so output pixel ``(r, c)`` sees the square centred at
``(start + r * jump, start + c * jump)``, ``size`` on a side (clipped to the image: the
rest is padding). Convolutions, max and average pools (and adaptive ones whose input
size is a multiple of the output size; after one with uneven windows no row follows: the
windows differ from pixel to pixel) change the field; layers that keep the spatial size
(ReLU, batch norm, dropout, LRN, ...) pass it on. Where branches meet (a residual
addition, a concatenation) the field is the union of the branches' fields.

:func:`receptive_field` works for any model built from minicnn layers: it runs the model
once with forward hooks and follows the autograd graph between modules. Branches are
found through the graph too; a broadcast input (SE's ``(N, C, 1, 1)`` channel weights) is
left out of the union. A functional op that changes the spatial geometry outside a module
(``F.max_pool2d`` in a ``forward``) raises ValueError: build the model from layers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from minicnn import nn
from minicnn.autograd import Tensor, zeros
from minicnn.viz.features import inspecting, with_grad
from minicnn.viz.figure import finish, new_figure, show

__all__ = ["FieldRow", "plot_receptive_field", "receptive_box", "receptive_field",
           "receptive_field_table"]

Pair = tuple[float, float]


@dataclass(frozen=True)
class FieldRow:
    """One layer's output: its ``named_modules`` name, type and output shape, and per axis
    ``(height, width)`` the receptive field's ``size``, its ``jump`` (the effective stride)
    and ``start`` (the centre of output pixel (0, 0)'s field)."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    size: Pair
    jump: Pair
    start: Pair


@dataclass(frozen=True)
class _Field:
    size: Pair
    jump: Pair
    start: Pair
    spatial: tuple[int, int]


_INPUT = (1.0, 1.0), (1.0, 1.0), (0.0, 0.0)
_GEOMETRY_OPS = ("minicnn.nn.functional.conv", "minicnn.nn.functional.pooling",
                 "minicnn.nn.functional.upsampling", "minicnn.nn.functional.padding",
                 "minicnn.nn.functional.shuffle", "minicnn.nn.functional.winograd")


_UNEVEN = "uneven"  # an adaptive pool whose windows differ from pixel to pixel


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _kernel(module: nn.Module, in_hw: tuple[int, int], out_hw: tuple[int, int]):
    """``(k, s, p, d)`` pairs of a layer that changes the field, or None for one that does
    not (the spatial size is unchanged). Raises ValueError for a layer that changes the
    spatial size in a way not known here."""
    if isinstance(module, nn.Conv2d):
        k, s, d = module.kernel_size, module.stride, module.dilation
        if module.padding == "same":
            p = tuple(di * (ki - 1) // 2 for ki, di in zip(k, d, strict=True))
        elif module.padding == "valid":
            p = (0, 0)
        else:
            p = module.padding
        return k, s, p, d
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        dilation = getattr(module, "dilation", 1)
        return (_pair(module.kernel_size), _pair(module.stride), _pair(module.padding),
                _pair(dilation))
    if isinstance(module, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d):
        if any(i % o for i, o in zip(in_hw, out_hw, strict=True)):
            return _UNEVEN
        k = tuple(i // o for i, o in zip(in_hw, out_hw, strict=True))
        return k, k, (0, 0), (1, 1)
    if in_hw == out_hw:
        return None
    raise ValueError(f"receptive_field: {type(module).__name__} changes the spatial size from "
                     f"{in_hw} to {out_hw}; only convolutions and pools are known")


def _through(field: _Field, geometry, out_hw) -> _Field:
    if geometry is None:
        return _Field(field.size, field.jump, field.start, out_hw)
    k, s, p, d = geometry
    size = tuple(r + (ki - 1) * di * j for r, ki, di, j in zip(field.size, k, d, field.jump,
                                                                 strict=True))
    start = tuple(st + ((ki - 1) * di / 2 - pi) * j
                  for st, ki, di, pi, j in zip(field.start, k, d, p, field.jump, strict=True))
    jump = tuple(j * si for j, si in zip(field.jump, s, strict=True))
    return _Field(size, jump, start, out_hw)


def _union(fields: list[_Field], where: str) -> _Field:
    if len({f.jump for f in fields}) > 1:
        raise ValueError(f"receptive_field: branches with different strides meet at {where}: "
                         f"{[f.jump for f in fields]}")
    lo = tuple(min(f.start[a] - (f.size[a] - 1) / 2 for f in fields) for a in (0, 1))
    hi = tuple(max(f.start[a] + (f.size[a] - 1) / 2 for f in fields) for a in (0, 1))
    return _Field(tuple(h - low + 1 for low, h in zip(lo, hi, strict=True)), fields[0].jump,
                  tuple((low + h) / 2 for low, h in zip(lo, hi, strict=True)),
                  fields[0].spatial)


class _Tracker:
    """The field of every 4-D tensor of one forward pass, keyed by the tensor."""

    def __init__(self, x: Tensor):
        self.fields: dict[int, tuple[Tensor, _Field]] = {
            id(x): (x, _Field(*_INPUT, tuple(x.shape[2:])))}

    def set(self, t: Tensor, field: _Field | None) -> None:
        self.fields[id(t)] = (t, field)  # the tensor is kept so its id is not reused

    def of(self, t: Tensor) -> _Field | None:
        """The field of ``t``: recorded, or found through the graph node that made it."""
        if id(t) in self.fields:  # None: known to have no single field
            return self.fields[id(t)][1]
        node = t.grad_fn
        if node is None or t.ndim != 4:
            return None  # does not depend on the input (a constant), or not a map
        name = node.function.__name__
        if node.function.__module__.startswith(_GEOMETRY_OPS):
            raise ValueError(f"receptive_field: the functional op {name} changes the geometry "
                             "outside a module; build the model from minicnn layers "
                             "(nn.Conv2d, nn.MaxPool2d, ...) to measure it")
        spatial = tuple(t.shape[2:])
        maps = [i for i in node.inputs if i is not None and i.ndim == 4]
        changed = [tuple(i.shape[2:]) for i in maps
                   if tuple(i.shape[2:]) not in (spatial, (1, 1))]
        if changed:
            raise ValueError(f"receptive_field: {name} outside a module changes the spatial "
                             f"size ({changed} -> {spatial})")
        # a broadcast (N, C, 1, 1) input (SE's channel weights) is left out of the union
        fields = [f for f in (self.of(i) for i in maps if tuple(i.shape[2:]) == spatial)
                  if f is not None]
        if not fields:
            return None
        field = _union(fields, name)
        self.set(t, field)
        return field


def receptive_field(model: nn.Module, input_size: Sequence[int]) -> list[FieldRow]:
    """One row per module call whose output is a feature map ``(N, C, H, W)``, in the order
    the calls finish (a block after its layers): the receptive field's size, jump and
    start per axis. ``input_size`` is ``(C, H, W)``; any size the model accepts gives the
    same fields (a small one is fast). See the module docstring for the rules."""
    size = tuple(int(s) for s in input_size)
    if len(size) != 3:
        raise ValueError(f"input_size must be (C, H, W), got {tuple(input_size)}")
    names = {id(m): n for n, m in model.named_modules()}
    leaves = {id(m) for m in model.modules() if not list(m.children())}
    x = zeros((1, *size))
    tracker = _Tracker(x)
    rows: list[FieldRow] = []

    def hook(module, args, output):
        out = output[0] if isinstance(output, tuple | list) else output
        if not isinstance(out, Tensor) or out.ndim != 4:
            return
        field = None
        if id(module) in leaves and args and isinstance(args[0], Tensor) and args[0].ndim == 4:
            source = tracker.of(args[0])
            if source is not None:
                geometry = _kernel(module, tuple(args[0].shape[2:]), tuple(out.shape[2:]))
                if geometry == _UNEVEN:
                    tracker.set(out, None)
                    return
                field = _through(source, geometry, tuple(out.shape[2:]))
                tracker.set(out, field)
        if field is None:
            field = tracker.of(out)
        if field is not None:
            rows.append(FieldRow(names.get(id(module), "?"), type(module).__name__,
                                 tuple(out.shape), field.size, field.jump, field.start))

    handles = [m.register_forward_hook(hook) for m in model.modules() if m is not model]
    try:
        with inspecting(model):
            with_grad(model, x, [], stop=False)
    finally:
        for handle in handles:
            handle.remove()
    return rows


def _num(pair: Pair) -> str:
    a, b = (int(v) if float(v).is_integer() else v for v in pair)
    return f"{a}" if a == b else f"{a}x{b}"


def receptive_field_table(rows: Sequence[FieldRow]) -> str:
    """The rows of :func:`receptive_field` as a text table (one number when height and width
    agree, ``h x w`` otherwise)."""
    head = ("layer", "type", "output", "size", "jump", "start")
    body = [(r.name, r.kind, "x".join(map(str, r.output_shape[1:])), _num(r.size),
             _num(r.jump), _num(r.start)) for r in rows]
    widths = [max(len(str(row[i])) for row in [head, *body]) for i in range(6)]
    lines = ["  ".join(f"{v:<{w}}" if i < 3 else f"{v:>{w}}"
                       for i, (v, w) in enumerate(zip(row, widths, strict=True)))
             for row in [head, *body]]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def receptive_box(row: FieldRow, r: int, c: int, image_size: tuple[int, int] | None = None
                  ) -> tuple[int, int, int, int]:
    """The input pixels output pixel ``(r, c)`` of ``row`` sees: ``(top, left, bottom,
    right)``, bottom and right exclusive; clipped to ``image_size`` ``(H, W)`` when given."""
    top, left = (round(row.start[a] + (r, c)[a] * row.jump[a] - (row.size[a] - 1) / 2)
                 for a in (0, 1))
    bottom, right = top + int(row.size[0]), left + int(row.size[1])
    if image_size is not None:
        h, w = image_size
        top, left, bottom, right = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
    return int(top), int(left), int(bottom), int(right)


def plot_receptive_field(image: np.ndarray, rows: Sequence[FieldRow],
                         path: str | os.PathLike | None = None,
                         position: tuple[float, float] | None = None,
                         title: str | None = None):
    """Each row's receptive field drawn on ``image`` ``(C, H, W)`` as a square around the
    output pixel nearest to ``position`` (``(y, x)`` in input pixels; default the image's
    centre), one colour per layer, dashed where it runs past the image (padding). Returns
    the Figure; saves it when ``path`` is given."""
    from matplotlib.patches import Rectangle

    image = np.asarray(image)
    h, w = image.shape[-2:]
    y, x = position if position is not None else ((h - 1) / 2, (w - 1) / 2)
    fig = new_figure(6.5, 4.2)
    ax = fig.add_axes((0.02, 0.05, 0.6, 0.85))
    show(ax, image)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    colours = [f"C{i % 10}" for i in range(len(rows))]
    for row, colour in zip(rows, colours, strict=True):
        out_h, out_w = row.output_shape[2:]
        r = int(np.clip(round((y - row.start[0]) / row.jump[0]), 0, out_h - 1))
        c = int(np.clip(round((x - row.start[1]) / row.jump[1]), 0, out_w - 1))
        top, left, bottom, right = receptive_box(row, r, c)
        inside = top >= 0 and left >= 0 and bottom <= h and right <= w
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left, bottom - top,
                               fill=False, edgecolor=colour, linewidth=1.5,
                               linestyle="-" if inside else "--",
                               label=f"{row.name} ({row.kind}): {_num(row.size)} px",
                               clip_on=False))
    fig.legend(*ax.get_legend_handles_labels(), loc="center left",
               bbox_to_anchor=(0.63, 0.5), fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return finish(fig, path)
