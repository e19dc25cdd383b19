"""``MultiScaleRoIAlign``: RoIAlign from the level of a feature pyramid that suits each box.

A Feature Pyramid Network (Lin et al. 2017) gives maps at strides 4, 8, 16, 32. A small
box is best cropped from a fine map, a large one from a coarse map; the paper's eq. (1)
picks the level ``k = floor(k0 + log2(sqrt(w h) / 224))``, clamped to the levels present,
so that a 224 x 224 box (ImageNet's size) comes from level ``k0 = 4`` (stride 16). Each
level's scale (``2 ** -k``) is inferred from its map's size against the largest image.
Names, arguments and results follow torchvision.ops.poolers.
"""

from __future__ import annotations

import math

import numpy as np

from minicnn.autograd import Tensor
from minicnn.autograd.ops import cat
from minicnn.backend import backend_of
from minicnn.nn.modules.module import Module
from minicnn.ops._utils import check_roi_boxes_shape, convert_boxes_to_roi_format
from minicnn.ops.roi_align import roi_align

__all__ = ["LevelMapper", "MultiScaleRoIAlign", "initLevelMapper"]


class LevelMapper:
    """The pyramid level of each box by the FPN paper's eq. (1), as an index from ``k_min``.

    ``LevelMapper(k_min, k_max)(boxlists)``: a list of ``(K_i, 4)`` boxes -> ``(sum K_i,)``
    int64 in ``[0, k_max - k_min]``.
    """

    def __init__(self, k_min: int, k_max: int, canonical_scale: int = 224,
                 canonical_level: int = 4, eps: float = 1e-6):
        self.k_min = k_min
        self.k_max = k_max
        self.s0 = canonical_scale
        self.lvl0 = canonical_level
        self.eps = eps

    def __call__(self, boxlists: list[Tensor]) -> Tensor:
        arrays = [b.array for b in boxlists]
        xp = backend_of(*arrays).xp
        boxes = xp.concatenate(arrays)
        dtype = boxes.dtype.type
        s = xp.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
        levels = xp.floor(dtype(self.lvl0) + xp.log2(s / dtype(self.s0)) + dtype(self.eps))
        levels = xp.clip(levels, self.k_min, self.k_max)
        return Tensor._wrap(levels.astype(xp.int64) - self.k_min)


def initLevelMapper(k_min: int, k_max: int, canonical_scale: int = 224,  # noqa: N802
                    canonical_level: int = 4, eps: float = 1e-6) -> LevelMapper:
    """torchvision's factory name for :class:`LevelMapper`."""
    return LevelMapper(k_min, k_max, canonical_scale, canonical_level, eps)


def _infer_scale(feature: Tensor, original_size: tuple[int, int]) -> float:
    """The map's scale against the image, rounded to a power of two (from its height)."""
    approx = np.float32(float(feature.shape[-2]) / float(original_size[0]))
    return 2.0 ** float(np.round(np.log2(approx)))


def _setup_scales(features: list[Tensor], image_shapes: list[tuple[int, int]],
                  canonical_scale: int, canonical_level: int) -> tuple[list[float], LevelMapper]:
    """Each level's scale, inferred against the largest image, and the level mapper."""
    if not image_shapes:
        raise ValueError("MultiScaleRoIAlign: image_shapes must hold one (height, width) per "
                         "image, got an empty list")
    original = (max(s[0] for s in image_shapes), max(s[1] for s in image_shapes))
    scales = [_infer_scale(f, original) for f in features]
    lvl_min = -math.log2(scales[0])
    lvl_max = -math.log2(scales[-1])
    mapper = initLevelMapper(int(lvl_min), int(lvl_max), canonical_scale=canonical_scale,
                             canonical_level=canonical_level)
    return scales, mapper


def _filter_input(x: dict[str, Tensor], featmap_names: list[str]) -> list[Tensor]:
    """The maps named in ``featmap_names``, in the dict's order."""
    missing = [name for name in featmap_names if name not in x]
    if missing:
        raise ValueError(f"MultiScaleRoIAlign: features has no map named {missing}; it has "
                         f"{list(x)}")
    return [v for k, v in x.items() if k in featmap_names]


def _multiscale_roi_align(features: list[Tensor], boxes: list[Tensor],
                          output_size: tuple[int, int], sampling_ratio: int,
                          scales: list[float], mapper: LevelMapper) -> Tensor:
    """RoIAlign of each box from its level: ``(sum K_i, C, oh, ow)`` in the boxes' order."""
    rois = convert_boxes_to_roi_format(boxes)
    if len(features) == 1:
        return roi_align(features[0], rois, output_size, scales[0], sampling_ratio)
    levels = mapper(boxes).array
    xp = backend_of(levels).xp
    pooled, order = [], []
    for level, (feature, scale) in enumerate(zip(features, scales, strict=True)):
        idx = xp.nonzero(levels == level)[0]
        pooled.append(roi_align(feature, Tensor._wrap(rois.array[idx]), output_size, scale,
                                sampling_ratio))
        order.append(idx)
    # a level between two given maps (names that skip one) has no map: zeros, as torchvision
    idx = xp.nonzero(levels >= len(features))[0]
    if len(idx):
        pooled.append(Tensor._wrap(xp.zeros((len(idx),) + tuple(pooled[0].shape[1:]),
                                            dtype=pooled[0].dtype)))
        order.append(idx)
    # the results by level, put back in the boxes' order
    return cat(pooled)[xp.argsort(xp.concatenate(order))]


class MultiScaleRoIAlign(Module):
    """RoIAlign over a feature pyramid (torchvision.ops.MultiScaleRoIAlign).

    ``MultiScaleRoIAlign(featmap_names, output_size, sampling_ratio)(features, boxes,
    image_shapes)``: ``features`` a dict of ``(N, C, H_l, W_l)`` maps (only those named in
    ``featmap_names`` are used, finest first), ``boxes`` a list of ``(K_i, 4)`` boxes per
    image in image pixels, ``image_shapes`` each image's ``(height, width)`` before the
    backbone -> ``(sum K_i, C, oh, ow)``. The scales and the level mapper are inferred on the
    first call and kept (``scales``, ``map_levels``), as in torchvision.
    """

    def __init__(self, featmap_names: list[str], output_size: int | tuple[int, int] | list[int],
                 sampling_ratio: int, *, canonical_scale: int = 224, canonical_level: int = 4):
        super().__init__()
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        self.featmap_names = featmap_names
        self.sampling_ratio = sampling_ratio
        self.output_size = tuple(output_size)
        self.scales: list[float] | None = None
        self.map_levels: LevelMapper | None = None
        self.canonical_scale = canonical_scale
        self.canonical_level = canonical_level

    def forward(self, x: dict[str, Tensor], boxes: list[Tensor],
                image_shapes: list[tuple[int, int]]) -> Tensor:
        if not isinstance(x, dict):
            raise TypeError(f"MultiScaleRoIAlign: features must be a dict of name -> (N, C, H, "
                            f"W) Tensor, got {type(x).__name__}")
        if not isinstance(boxes, (list, tuple)):
            raise TypeError(f"MultiScaleRoIAlign: boxes must be a list of (K, 4) Tensors, one "
                            f"per image, got {type(boxes).__name__}")
        check_roi_boxes_shape(boxes, "MultiScaleRoIAlign")
        features = _filter_input(x, self.featmap_names)
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(
                features, image_shapes, self.canonical_scale, self.canonical_level)
        return _multiscale_roi_align(features, list(boxes), self.output_size,
                                     self.sampling_ratio, self.scales, self.map_levels)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(featmap_names={self.featmap_names}, "
                f"output_size={self.output_size}, sampling_ratio={self.sampling_ratio})")
