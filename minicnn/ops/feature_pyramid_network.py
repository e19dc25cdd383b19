"""The feature pyramid network (torchvision's ``ops/feature_pyramid_network.py``).

Lin et al. 2017, "Feature Pyramid Networks for Object Detection" (arXiv:1612.03144),
section 3 and Fig. 3. A backbone gives feature maps ``C2 .. C5`` of decreasing
resolution (strides 4 .. 32) and increasing meaning. The FPN gives every level the
meaning of the deepest one:

* a 1x1 "lateral" convolution (``inner_blocks[i]``) brings each ``C_i`` to
  ``out_channels`` (256 in the paper);
* top-down: starting at the deepest level, the running map is upsampled (nearest
  neighbour) to the next finer level's size and added to that level's lateral;
* a 3x3 convolution (``layer_blocks[i]``) on each sum reduces the aliasing of the
  upsampling and gives ``P_i``.

:class:`LastLevelMaxPool` adds ``P6`` ("pool"), ``P5`` subsampled by 2, which Faster
R-CNN's RPN uses for its largest anchors.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from minicnn import nn
from minicnn.autograd import Tensor
from minicnn.nn import functional as F

__all__ = ["ExtraFPNBlock", "FeaturePyramidNetwork", "LastLevelMaxPool"]


class ExtraFPNBlock(nn.Module):
    """Base class of the blocks that add levels after the FPN:
    ``forward(results, x, names) -> (results, names)`` with ``results`` the FPN's maps,
    ``x`` the backbone's maps and ``names`` the maps' names (lists, extended in order)."""

    def forward(self, results: list[Tensor], x: list[Tensor],
                names: list[str]) -> tuple[list[Tensor], list[str]]:
        raise NotImplementedError(f"{type(self).__name__} must implement forward")


class LastLevelMaxPool(ExtraFPNBlock):
    """Adds the map ``"pool"``: the last FPN map subsampled by 2 (a 1x1 max pool with
    stride 2), ``(N, C, H, W) -> (N, C, ceil(H / 2), ceil(W / 2))``."""

    def forward(self, results: list[Tensor], x: list[Tensor],
                names: list[str]) -> tuple[list[Tensor], list[str]]:
        names.append("pool")
        results.append(F.max_pool2d(results[-1], kernel_size=1, stride=2, padding=0))
        return results, names


class FeaturePyramidNetwork(nn.Module):
    """Lateral 1x1 convolutions, the top-down pathway and a 3x3 convolution per level.

    Args:
        in_channels_list: the channels of each input map, finest first.
        out_channels: the channels of every output map.
        extra_blocks: an :class:`ExtraFPNBlock` run on the results (e.g.
            :class:`LastLevelMaxPool`), or None.
        norm_layer: a norm after each convolution (None: none, the convolutions have a bias).

    ``forward(x)``: an ordered dict of ``(N, in_channels_list[i], H_i, W_i)`` maps, finest
    first -> an ordered dict with the same names (plus the extra blocks') of
    ``(N, out_channels, H_i, W_i)`` maps. The state dict has torchvision's keys
    (``inner_blocks.0.0.weight``, ``layer_blocks.0.0.bias``, ...): each block is a
    :class:`~minicnn.nn.Conv2dNormActivation` without activation.
    """

    def __init__(self, in_channels_list: list[int], out_channels: int,
                 extra_blocks: ExtraFPNBlock | None = None,
                 norm_layer: Callable[..., nn.Module] | None = None) -> None:
        super().__init__()
        if not in_channels_list:
            raise ValueError("FeaturePyramidNetwork: in_channels_list must not be empty")
        self.inner_blocks = nn.ModuleList()
        self.layer_blocks = nn.ModuleList()
        for in_channels in in_channels_list:
            if not isinstance(in_channels, int) or in_channels <= 0:
                raise ValueError(f"FeaturePyramidNetwork: in_channels_list must hold positive "
                                 f"ints, got {in_channels_list!r}")
            self.inner_blocks.append(nn.Conv2dNormActivation(
                in_channels, out_channels, kernel_size=1, padding=0, norm_layer=norm_layer,
                activation_layer=None))
            self.layer_blocks.append(nn.Conv2dNormActivation(
                out_channels, out_channels, kernel_size=3, norm_layer=norm_layer,
                activation_layer=None))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
        if extra_blocks is not None and not isinstance(extra_blocks, ExtraFPNBlock):
            raise TypeError(f"FeaturePyramidNetwork: extra_blocks must be an ExtraFPNBlock, "
                            f"got {type(extra_blocks).__name__}")
        self.extra_blocks = extra_blocks

    def forward(self, x: dict[str, Tensor]) -> OrderedDict[str, Tensor]:
        if not isinstance(x, dict) or len(x) != len(self.inner_blocks):
            got = f"{len(x)} maps" if isinstance(x, dict) else type(x).__name__
            raise ValueError(f"FeaturePyramidNetwork: expected a dict of "
                             f"{len(self.inner_blocks)} feature maps (finest first), got {got}")
        names = list(x.keys())
        maps = list(x.values())
        last_inner = self.inner_blocks[-1](maps[-1])
        results = [self.layer_blocks[-1](last_inner)]
        for idx in range(len(maps) - 2, -1, -1):  # top-down, to the finest level
            inner_lateral = self.inner_blocks[idx](maps[idx])
            top_down = F.interpolate(last_inner, size=tuple(inner_lateral.shape[-2:]),
                                     mode="nearest")
            last_inner = inner_lateral + top_down
            results.insert(0, self.layer_blocks[idx](last_inner))
        if self.extra_blocks is not None:
            results, names = self.extra_blocks(results, maps, names)
        return OrderedDict(zip(names, results))
