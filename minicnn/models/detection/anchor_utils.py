"""Anchors (torchvision's ``anchor_utils.py``): Faster R-CNN's :class:`AnchorGenerator` and
SSD's default boxes, :class:`DefaultBoxGenerator`.

Faster R-CNN (Ren et al. 2015, arXiv:1506.01497, section 3.1.1 and Fig. 3): at every
cell of a feature map of stride ``s``, ``k`` anchors centred on the cell's top-left
pixel ``(s * j, s * i)``, one per (size, aspect ratio) pair; an anchor of size ``a`` and
aspect ratio ``r = h / w`` has ``w = a / sqrt(r)``, ``h = a * sqrt(r)`` (area ``a^2``),
its corners rounded to whole pixels. With an FPN each level has its own sizes (32 on P2
up to 512 on P6) and the three ratios 0.5, 1, 2.

SSD's default boxes:

Liu et al. 2016, "SSD: Single Shot MultiBox Detector", section 2.2 ("Choosing scales and
aspect ratios for default boxes"). Feature map ``k`` of ``m`` (a grid of ``f_k`` cells)
tiles the image with boxes centred on its cells, ``((i + 0.5) / f_k, (j + 0.5) / f_k)``
in units of the image size (with ``steps``, ``f_k = image size / step``). Its boxes have
the scale::

    s_k = s_min + (s_max - s_min) * k / (m - 1)        (k = 0 .. m - 1; s_m = 1)

and per cell: a square of side ``s_k``, a square of side ``sqrt(s_k * s_{k+1})``, and for
each aspect ratio ``a`` two boxes ``(s_k sqrt(a), s_k / sqrt(a))`` and the transpose:
``2 + 2 * len(aspect_ratios[k])`` boxes per cell. Shallow, fine maps get small boxes and
deep, coarse maps large ones, so each object size has a map whose cells fit it.
"""

from __future__ import annotations

import math

import numpy as np

from minicnn import nn
from minicnn.autograd import Tensor
from minicnn.models.detection.image_list import ImageList

__all__ = ["AnchorGenerator", "DefaultBoxGenerator"]


class AnchorGenerator(nn.Module):
    """Faster R-CNN's anchors for each feature map of each image.

    Args:
        sizes: per feature map, the anchor sizes (square roots of the areas) in pixels; a
            flat tuple gives one size per map.
        aspect_ratios: per feature map, the ratios ``h / w``; a flat tuple is used for
            every map.

    ``forward(image_list, feature_maps)``: ``feature_maps`` a list of ``(N, C, H_i, W_i)``
    maps of the batch ``image_list.tensors: (N, 3, H, W)`` -> one ``(A, 4)`` xyxy Tensor per
    image with ``A = sum_i H_i * W_i * len(sizes[i]) * len(aspect_ratios[i])`` anchors,
    ordered by map, row, column, then ratio-major (ratio, size) as torchvision's.
    """

    def __init__(self, sizes=((128, 256, 512),), aspect_ratios=((0.5, 1.0, 2.0),)) -> None:
        super().__init__()
        if not isinstance(sizes, (list, tuple)) or not sizes:
            raise ValueError(f"AnchorGenerator: sizes must be a non-empty tuple (of tuples), "
                             f"got {sizes!r}")
        if not isinstance(sizes[0], (list, tuple)):
            sizes = tuple((s,) for s in sizes)
        if not isinstance(aspect_ratios[0], (list, tuple)):
            aspect_ratios = (aspect_ratios,) * len(sizes)
        if len(sizes) != len(aspect_ratios):
            raise ValueError(f"AnchorGenerator: sizes and aspect_ratios need one entry per "
                             f"feature map, got {len(sizes)} and {len(aspect_ratios)}")
        self.sizes = sizes
        self.aspect_ratios = aspect_ratios
        self.cell_anchors = [self.generate_anchors(s, a) for s, a in zip(sizes, aspect_ratios)]

    @staticmethod
    def generate_anchors(scales, aspect_ratios) -> np.ndarray:
        """The anchors of one cell centred on (0, 0): ``(len(ratios) * len(scales), 4)``
        float32 xyxy, rounded to whole pixels (half to even, as ``torch.round``)."""
        scales = np.asarray(scales, dtype=np.float32)
        aspect_ratios = np.asarray(aspect_ratios, dtype=np.float32)
        h_ratios = np.sqrt(aspect_ratios)
        w_ratios = np.float32(1) / h_ratios
        ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)
        hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
        return np.round(np.stack([-ws, -hs, ws, hs], axis=1) / np.float32(2))

    def num_anchors_per_location(self) -> list[int]:
        """Anchors per cell of each feature map: sizes x aspect ratios."""
        return [len(s) * len(a) for s, a in zip(self.sizes, self.aspect_ratios)]

    def grid_anchors(self, grid_sizes: list[tuple[int, int]],
                     strides: list[tuple[int, int]]) -> list[np.ndarray]:
        """Per feature map, its cell anchors shifted to every cell: ``(H * W * k, 4)``."""
        if not len(grid_sizes) == len(strides) == len(self.cell_anchors):
            raise ValueError(f"AnchorGenerator: got {len(grid_sizes)} feature maps but sizes and "
                             f"aspect_ratios for {len(self.cell_anchors)}; give one tuple of "
                             f"each per feature map")
        anchors = []
        for (grid_h, grid_w), (stride_h, stride_w), base in zip(grid_sizes, strides,
                                                               self.cell_anchors):
            shift_y, shift_x = np.meshgrid(np.arange(grid_h) * stride_h,
                                           np.arange(grid_w) * stride_w, indexing="ij")
            shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
            shifts = np.stack([shift_x, shift_y, shift_x, shift_y], axis=1)
            anchors.append((shifts[:, None, :] + base[None, :, :]).reshape(-1, 4)
                           .astype(np.float32))
        return anchors

    def forward(self, image_list: ImageList, feature_maps: list[Tensor]) -> list[Tensor]:
        grid_sizes = [tuple(int(s) for s in f.shape[-2:]) for f in feature_maps]
        image_h, image_w = image_list.tensors.shape[-2:]
        strides = [(image_h // g_h, image_w // g_w) for g_h, g_w in grid_sizes]
        levels = self.grid_anchors(grid_sizes, strides)
        anchors = Tensor(np.concatenate(levels).astype(feature_maps[0].dtype))
        anchors = anchors.to(feature_maps[0].device)
        return [anchors for _ in image_list.image_sizes]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(sizes={self.sizes}, "
                f"aspect_ratios={self.aspect_ratios})")


class DefaultBoxGenerator(nn.Module):
    """The default boxes of SSD for a list of feature maps.

    Args:
        aspect_ratios: per feature map, the aspect ratios besides 1 (e.g. ``[2, 3]``).
        min_ratio, max_ratio: ``s_min`` and ``s_max`` of the scale formula (used when
            ``scales`` is None).
        scales: the ``m + 1`` scales ``s_0 .. s_m`` given explicitly.
        steps: per feature map, the pixel distance between cell centres; None: the grid
            tiles the image exactly (``f_k`` = the map's size).
        clip: clip the widths and heights (in image units) to ``[0, 1]``.

    ``forward(image_list, feature_maps)`` -> one ``(A, 4)`` Tensor of xyxy boxes in pixels
    per image, ``A = sum_k H_k * W_k * num_anchors_per_location()[k]``, ordered by map,
    then row, column, and box within the cell (the order of the heads' outputs).
    """

    def __init__(self, aspect_ratios: list[list[int]], min_ratio: float = 0.15,
                 max_ratio: float = 0.9, scales: list[float] | None = None,
                 steps: list[int] | None = None, clip: bool = True):
        super().__init__()
        if steps is not None and len(aspect_ratios) != len(steps):
            raise ValueError(f"DefaultBoxGenerator: aspect_ratios and steps must have the same "
                             f"length, got {len(aspect_ratios)} and {len(steps)}")
        self.aspect_ratios = aspect_ratios
        self.steps = steps
        self.clip = clip
        num_outputs = len(aspect_ratios)
        if scales is None:
            if num_outputs > 1:
                range_ratio = max_ratio - min_ratio
                self.scales = [min_ratio + range_ratio * k / (num_outputs - 1.0)
                               for k in range(num_outputs)]
                self.scales.append(1.0)
            else:
                self.scales = [min_ratio, max_ratio]
        else:
            if len(scales) != num_outputs + 1:
                raise ValueError(f"DefaultBoxGenerator: scales must have one more entry than "
                                 f"aspect_ratios ({num_outputs + 1}), got {len(scales)}")
            self.scales = scales
        self._wh_pairs = self._generate_wh_pairs(num_outputs)

    def _generate_wh_pairs(self, num_outputs: int) -> list[np.ndarray]:
        """Per feature map, the ``(width, height)`` of its boxes in image units (float32,
        as torchvision stores them)."""
        pairs = []
        for k in range(num_outputs):
            s_k = self.scales[k]
            s_prime_k = math.sqrt(self.scales[k] * self.scales[k + 1])
            wh = [[s_k, s_k], [s_prime_k, s_prime_k]]
            for ar in self.aspect_ratios[k]:
                sq_ar = math.sqrt(ar)
                w, h = self.scales[k] * sq_ar, self.scales[k] / sq_ar
                wh.extend([[w, h], [h, w]])
            pairs.append(np.asarray(wh, dtype=np.float32))
        return pairs

    def num_anchors_per_location(self) -> list[int]:
        """Boxes per cell of each feature map: 2 squares + 2 per aspect ratio."""
        return [2 + 2 * len(r) for r in self.aspect_ratios]

    def _grid_default_boxes(self, grid_sizes: list[tuple[int, int]],
                            image_size: tuple[int, int]) -> np.ndarray:
        """All default boxes as ``(cx, cy, w, h)`` rows in image units, float32."""
        boxes = []
        for k, (f_h, f_w) in enumerate(grid_sizes):
            if self.steps is not None:
                x_f_k = image_size[1] / self.steps[k]
                y_f_k = image_size[0] / self.steps[k]
            else:
                y_f_k, x_f_k = f_h, f_w
            half = np.float32(0.5)
            shifts_x = (np.arange(f_w, dtype=np.float32) + half) / np.float32(x_f_k)
            shifts_y = (np.arange(f_h, dtype=np.float32) + half) / np.float32(y_f_k)
            shift_y, shift_x = np.meshgrid(shifts_y, shifts_x, indexing="ij")
            wh = self._wh_pairs[k]
            if self.clip:
                wh = np.clip(wh, 0, 1)
            n_cells, n_boxes = f_h * f_w, len(wh)
            centres = np.stack([shift_x.reshape(-1), shift_y.reshape(-1)], axis=1)
            centres = np.repeat(centres, n_boxes, axis=0)  # each cell once per box shape
            boxes.append(np.concatenate([centres, np.tile(wh, (n_cells, 1))], axis=1))
        return np.concatenate(boxes, axis=0)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(aspect_ratios={self.aspect_ratios}, "
                f"clip={self.clip}, scales={self.scales}, steps={self.steps})")

    def forward(self, image_list: ImageList, feature_maps: list[Tensor]) -> list[Tensor]:
        grid_sizes = [tuple(f.shape[-2:]) for f in feature_maps]
        if len(grid_sizes) != len(self.aspect_ratios):
            raise ValueError(f"DefaultBoxGenerator: got {len(grid_sizes)} feature maps, "
                             f"expected {len(self.aspect_ratios)} (one per aspect_ratios entry)")
        image_size = tuple(image_list.tensors.shape[-2:])
        dtype = feature_maps[0].dtype
        cxcywh = self._grid_default_boxes(grid_sizes, image_size).astype(dtype)
        x_y_size = np.asarray([image_size[1], image_size[0]], dtype=dtype)
        xyxy = np.concatenate([(cxcywh[:, :2] - 0.5 * cxcywh[:, 2:]) * x_y_size,
                               (cxcywh[:, :2] + 0.5 * cxcywh[:, 2:]) * x_y_size], axis=1)
        boxes = Tensor(xyxy).to(feature_maps[0].device)
        return [boxes for _ in image_list.image_sizes]
