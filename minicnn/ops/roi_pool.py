"""RoI pooling (Fast R-CNN, Girshick 2015): max pooling of each region to a fixed size.

The region's corners are rounded to feature cells, the rounded region is split into
``output_size`` bins (each rounded outwards to whole cells), and each bin keeps its
maximum. The position of each maximum (``argmax``) is kept for backward: the gradient of
a bin goes to that one cell. A bin that falls off the feature map outputs 0. Gradients
flow to the input, not to the boxes, as in torchvision.
"""

from __future__ import annotations

from minicnn.autograd import Tensor
from minicnn.autograd.function import Function
from minicnn.backend import backend_of
from minicnn.nn.modules.module import Module
from minicnn.ops._utils import roi_arguments

__all__ = ["RoIPool", "roi_pool"]


class RoIPoolFunction(Function):
    """Forward by the backend's ``roi_pool`` kernel; backward sends each gradient to the
    cell its argmax names. No gradient for rois."""

    @staticmethod
    def forward(ctx, x, rois, output_size, spatial_scale):
        out, argmax = backend_of(x).roi_pool(x, rois, output_size, spatial_scale)
        ctx.save_for_backward(argmax, rois)
        ctx.x_shape = x.shape
        return out

    @staticmethod
    def backward(ctx, grad):
        argmax, rois = ctx.saved_tensors
        return backend_of(grad).roi_pool_backward(grad, argmax, rois, ctx.x_shape), None


def roi_pool(input: Tensor, boxes: Tensor | list[Tensor], output_size: int | tuple[int, int],
             spatial_scale: float = 1.0) -> Tensor:
    """RoI max pooling: ``input: (N, C, H, W)`` and K regions -> ``(K, C, oh, ow)``.

    Args:
        input: feature maps.
        boxes: ``(K, 5)`` rows ``(batch_index, x1, y1, x2, y2)``, or a list of ``(K_i, 4)``
            boxes, one Tensor per image; in the coordinates of the image.
        output_size: ``oh`` (= ``ow``) or ``(oh, ow)``.
        spatial_scale: feature cells per image pixel (1/16 for a stride-16 map).
    """
    rois, size = roi_arguments("roi_pool", input, boxes, output_size, spatial_scale)
    return RoIPoolFunction.apply(input, rois, size, float(spatial_scale))


class RoIPool(Module):
    """:func:`roi_pool` as a module: ``RoIPool(output_size, spatial_scale)(input, rois)``."""

    def __init__(self, output_size: int | tuple[int, int], spatial_scale: float):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale

    def forward(self, input: Tensor, rois: Tensor | list[Tensor]) -> Tensor:
        return roi_pool(input, rois, self.output_size, self.spatial_scale)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(output_size={self.output_size}, "
                f"spatial_scale={self.spatial_scale})")
