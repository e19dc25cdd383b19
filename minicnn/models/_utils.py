"""Helpers shared by the model families, with torchvision's names (``torchvision.models._utils``).

:class:`IntermediateLayerGetter` turns a classifier into a backbone that returns the feature
maps of some of its stages (the segmentation and detection heads read them).
"""

from __future__ import annotations

from collections import OrderedDict

from minicnn import nn

__all__ = ["IntermediateLayerGetter"]


class IntermediateLayerGetter(nn.ModuleDict):
    """The direct children of ``model`` up to the last one named in ``return_layers``, run in
    order; ``forward(x)`` returns an ordered dict ``{new_name: output of that child}``.

    As torchvision's: the children must be registered in the order the model uses them
    (true of ResNet: conv1, bn1, relu, maxpool, layer1..layer4), and the state_dict keys are
    the children's own (``conv1.weight``, ``layer4.2.bn3.running_var``...), so a backbone's
    weights load as they are. ``return_layers={"layer4": "out", "layer3": "aux"}`` gives
    FCN's two feature maps.
    """

    def __init__(self, model: nn.Module, return_layers: dict[str, str]):
        children = [name for name, _ in model.named_children()]
        if not set(return_layers).issubset(children):
            missing = sorted(set(return_layers) - set(children))
            raise ValueError(f"IntermediateLayerGetter: return_layers {missing} are not "
                             f"children of {type(model).__name__} (children: {children})")
        wanted = {str(k): str(v) for k, v in return_layers.items()}
        layers = OrderedDict()
        remaining = set(wanted)
        for name, module in model.named_children():
            layers[name] = module
            remaining.discard(name)
            if not remaining:
                break
        super().__init__(layers)
        self.return_layers = wanted

    def forward(self, x) -> OrderedDict:
        out = OrderedDict()
        for name, module in self.items():
            x = module(x)
            if name in self.return_layers:
                out[self.return_layers[name]] = x
        return out
