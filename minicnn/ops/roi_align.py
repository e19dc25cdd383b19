"""RoIAlign (Mask R-CNN, He et al. 2017): a fixed-size feature crop of each region.

Fast R-CNN's RoI pooling rounds a region's edges and its bins to whole feature cells;
that misplaces the crop by up to a cell (16 pixels on a stride-16 map), which boxes
forgive but masks do not. RoIAlign rounds nothing: each of the ``output_size`` bins
takes ``sampling_ratio`` x ``sampling_ratio`` evenly spaced points (``ceil(bin size)``
of them per axis when ``sampling_ratio <= 0``), reads each point by bilinear
interpolation of the four cells around it, and averages them. ``aligned=True`` shifts
the box by half a cell so that pixel centres line up (Detectron2's fix); the default
``False`` is the paper's original. Gradients flow to the input (the features), not to
the boxes, as in torchvision.
"""

from __future__ import annotations

from minicnn.autograd import Tensor
from minicnn.autograd.function import Function
from minicnn.backend import backend_of
from minicnn.nn.modules.module import Module
from minicnn.ops._utils import roi_arguments

__all__ = ["RoIAlign", "roi_align"]


class RoIAlignFunction(Function):
    """Forward and backward by the backend's ``roi_align`` kernels; no gradient for rois."""

    @staticmethod
    def forward(ctx, x, rois, output_size, spatial_scale, sampling_ratio, aligned):
        ctx.save_for_backward(rois)
        ctx.args = (x.shape, spatial_scale, sampling_ratio, aligned)
        return backend_of(x).roi_align(x, rois, output_size, spatial_scale, sampling_ratio,
                                       aligned)

    @staticmethod
    def backward(ctx, grad):
        (rois,) = ctx.saved_tensors
        return backend_of(grad).roi_align_backward(grad, rois, *ctx.args), None


def roi_align(input: Tensor, boxes: Tensor | list[Tensor], output_size: int | tuple[int, int],
              spatial_scale: float = 1.0, sampling_ratio: int = -1,
              aligned: bool = False) -> Tensor:
    """RoIAlign: ``input: (N, C, H, W)`` and K regions -> ``(K, C, oh, ow)``.

    Args:
        input: feature maps.
        boxes: ``(K, 5)`` rows ``(batch_index, x1, y1, x2, y2)``, or a list of ``(K_i, 4)``
            boxes, one Tensor per image; in the coordinates of the image.
        output_size: ``oh`` (= ``ow``) or ``(oh, ow)``.
        spatial_scale: feature cells per image pixel (1/16 for a stride-16 map).
        sampling_ratio: sample points per bin along each axis; <= 0: ``ceil(bin size)``.
        aligned: shift the boxes by -0.5 cell, so that a box's edge meets pixel centres.
    """
    rois, size = roi_arguments("roi_align", input, boxes, output_size, spatial_scale)
    return RoIAlignFunction.apply(input, rois, size, float(spatial_scale), int(sampling_ratio),
                                  bool(aligned))


class RoIAlign(Module):
    """:func:`roi_align` as a module: ``RoIAlign(output_size, spatial_scale, sampling_ratio,
    aligned=False)(input, rois)``."""

    def __init__(self, output_size: int | tuple[int, int], spatial_scale: float,
                 sampling_ratio: int, aligned: bool = False):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, input: Tensor, rois: Tensor | list[Tensor]) -> Tensor:
        return roi_align(input, rois, self.output_size, self.spatial_scale,
                         self.sampling_ratio, self.aligned)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(output_size={self.output_size}, "
                f"spatial_scale={self.spatial_scale}, sampling_ratio={self.sampling_ratio}, "
                f"aligned={self.aligned})")
