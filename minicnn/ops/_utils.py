"""Shared argument handling of the RoI operations (torchvision.ops._utils' names).

A set of RoIs is given either as one ``(K, 5)`` Tensor of rows
``(batch_index, x1, y1, x2, y2)`` or as a list with one ``(K_i, 4)`` Tensor of boxes per
image; :func:`convert_boxes_to_roi_format` turns the list into the ``(K, 5)`` form.
"""

from __future__ import annotations

from numbers import Integral, Real

from minicnn.autograd import Tensor
from minicnn.backend import backend_of, to_device

__all__ = ["check_roi_boxes_shape", "convert_boxes_to_roi_format", "roi_arguments"]


def check_roi_boxes_shape(boxes, fn: str = "roi_align") -> None:
    """``boxes`` must be a ``(K, 5)`` Tensor or a list/tuple of ``(K_i, 4)`` Tensors."""
    if isinstance(boxes, (list, tuple)):
        for i, b in enumerate(boxes):
            if not isinstance(b, Tensor):
                raise TypeError(f"{fn}: boxes[{i}] must be a minicnn Tensor of shape (K, 4), "
                                f"got {type(b).__name__}")
            if b.ndim != 2 or b.shape[1] != 4:
                raise ValueError(f"{fn}: boxes[{i}] must have shape (K, 4) as (x1, y1, x2, y2), "
                                 f"got {tuple(b.shape)}")
    elif isinstance(boxes, Tensor):
        if boxes.ndim != 2 or boxes.shape[1] != 5:
            raise ValueError(f"{fn}: boxes must have shape (K, 5) as (batch_index, x1, y1, x2, "
                             f"y2) or be a list of (K, 4) Tensors, got {tuple(boxes.shape)}")
    else:
        raise TypeError(f"{fn}: boxes must be a (K, 5) Tensor or a list of (K, 4) Tensors, "
                        f"got {type(boxes).__name__}")


def convert_boxes_to_roi_format(boxes: list[Tensor]) -> Tensor:
    """A list of per-image boxes ``[(K_i, 4)]`` -> rois ``(sum K_i, 5)``: each row prefixed
    with the index of its image. Not differentiable (RoI pooling has no box gradient)."""
    if len(boxes) == 0:
        raise ValueError("boxes must hold one (K, 4) Tensor per image, got an empty list")
    arrays = [b.array for b in boxes]
    xp = backend_of(*arrays).xp
    dtype = xp.result_type(*arrays)
    ids = [xp.full((a.shape[0], 1), i, dtype=dtype) for i, a in enumerate(arrays)]
    return Tensor._wrap(xp.concatenate([xp.concatenate(ids), xp.concatenate(arrays)], axis=1)
                        .astype(dtype, copy=False))


def _output_size(output_size, fn: str) -> tuple[int, int]:
    items = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    if len(items) == 1:
        items = items * 2
    if len(items) != 2 or not all(isinstance(v, Integral) and not isinstance(v, bool)
                                  for v in items):
        raise TypeError(f"{fn}: output_size must be an int or a pair of ints, got {output_size!r}")
    if min(items) <= 0:
        raise ValueError(f"{fn}: output_size must be positive, got {output_size!r}")
    return int(items[0]), int(items[1])


def roi_arguments(fn: str, input, boxes, output_size, spatial_scale) -> tuple[Tensor,
                                                                              tuple[int, int]]:
    """Check the arguments shared by ``roi_align`` and ``roi_pool``; return the rois as a
    ``(K, 5)`` Tensor of the input's dtype on its device, and ``output_size`` as a pair."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{fn}: input must be a minicnn Tensor, got {type(input).__name__}")
    if input.ndim != 4:
        raise ValueError(f"{fn}: input must be 4-D (N, C, H, W), got shape {tuple(input.shape)}")
    if input.dtype.kind != "f":
        raise TypeError(f"{fn}: input must be floating point, got dtype {input.dtype}")
    check_roi_boxes_shape(boxes, fn)
    size = _output_size(output_size, fn)
    if not isinstance(spatial_scale, Real) or not spatial_scale > 0:
        raise ValueError(f"{fn}: spatial_scale must be a positive number, got {spatial_scale!r}")
    rois = boxes if isinstance(boxes, Tensor) else convert_boxes_to_roi_format(list(boxes))
    if rois.device != input.device:
        raise ValueError(f"{fn}: boxes are on {rois.device} but input is on {input.device}; "
                         f"move them with .to({str(input.device)!r})")
    if rois.dtype != input.dtype:
        rois = Tensor._wrap(rois.array.astype(input.dtype))
    if rois.shape[0]:
        batch = to_device(rois.array[:, 0], "cpu")
        if batch.min() < 0 or batch.max() >= input.shape[0] or (batch % 1 != 0).any():
            raise ValueError(f"{fn}: the batch indices in boxes[:, 0] must be integers in "
                             f"[0, {input.shape[0]}) for an input of {input.shape[0]} images, "
                             f"got values from {batch.min()} to {batch.max()}")
    return rois, size
