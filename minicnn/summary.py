"""``summary(model, input_size)``: a torchinfo-style table of a model.

One row per leaf layer, in the order the forward pass runs them: the layer, its output
shape, its parameters and its multiply-adds for one image. Multiply-adds count the
products of convolutions (``H_out·W_out·C_out·(C_in/groups)·k_h·k_w``) and linear layers
(``in·out``) -- the figure papers and torchvision report as "FLOPs"/"GFLOPS".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from minicnn import nn
from minicnn.autograd import no_grad, zeros


@dataclass
class LayerInfo:
    name: str
    kind: str
    output_shape: tuple
    params: int
    mult_adds: int


@dataclass
class Summary:
    """The rows and totals; ``str(summary)`` is the table."""

    layers: list[LayerInfo]
    input_size: tuple
    total_params: int
    trainable_params: int
    total_mult_adds: int

    def __str__(self) -> str:
        rows = [("Layer (type)", "Output shape", "Param #", "Mult-adds")]
        for layer in self.layers:
            rows.append(
                (
                    f"{layer.name} ({layer.kind})",
                    str(list(layer.output_shape)),
                    f"{layer.params:,}",
                    f"{layer.mult_adds:,}",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        line = "=" * (sum(widths) + 6)

        def fmt(r):
            w = widths
            return f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:>{w[2]}}  {r[3]:>{w[3]}}"

        body = [line, fmt(rows[0]), line, *[fmt(r) for r in rows[1:]], line]
        body += [
            f"Input size: {list(self.input_size)}",
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Total mult-adds: {self.total_mult_adds:,} ({self.total_mult_adds / 1e9:.3f} G)",
            line,
        ]
        return "\n".join(body)


def _mult_adds(module, output) -> int:
    per_image = output.numel() // output.shape[0] if output.ndim else 1
    if isinstance(module, nn.Conv2d):
        k_h, k_w = module.kernel_size
        return per_image * (module.in_channels // module.groups) * k_h * k_w
    if isinstance(module, nn.ConvTranspose2d):
        k_h, k_w = module.kernel_size
        inputs = module._last_input_pixels
        return inputs * module.in_channels * (module.out_channels // module.groups) * k_h * k_w
    if isinstance(module, nn.Linear):
        return (per_image // module.out_features) * module.in_features * module.out_features
    return 0


def summary(model, input_size, batch_size: int = 1, device: str = "cpu") -> Summary:
    """Run ``model`` on zeros of shape ``(batch_size, *input_size)`` and tabulate its layers.

    ``input_size`` is ``(C, H, W)``. Raises ValueError (naming the model) if the forward
    pass fails on that size, e.g. an input too small for the network.
    """
    input_size = tuple(int(s) for s in input_size)
    rows: list[LayerInfo] = []
    names = {id(m): n for n, m in model.named_modules()}
    handles = []

    def pre_hook(module, args):
        if isinstance(module, nn.ConvTranspose2d):
            x = args[0]
            module._last_input_pixels = math.prod(x.shape[2:])

    def hook(module, args, output):
        out = output[0] if isinstance(output, tuple | list) else output
        params = sum(p.numel() for p in module.parameters(recurse=False))
        rows.append(
            LayerInfo(
                names.get(id(module), "?"),
                type(module).__name__,
                tuple(out.shape),
                params,
                _mult_adds(module, out) // 1,
            )
        )

    for module in model.modules():
        if not list(module.children()):  # leaf layers only
            handles.append(module.register_forward_pre_hook(pre_hook))
            handles.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            model(zeros((batch_size, *input_size), device=device))
    except (ValueError, IndexError) as e:
        raise ValueError(
            f"summary: {type(model).__name__} failed on input size {input_size}: {e}"
        ) from e
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    params = list(model.parameters())
    return Summary(
        rows,
        input_size,
        sum(p.numel() for p in params),
        sum(p.numel() for p in params if p.requires_grad),
        sum(r.mult_adds for r in rows) // batch_size,
    )
