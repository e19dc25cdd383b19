"""The detectors' input and output transform (torchvision's ``GeneralizedRCNNTransform`` in
``models/detection/transform.py``).

Before the network: each ``(C, H, W)`` image (floats in [0, 1]) is normalised with
``(x - mean) / std`` per channel, resized with bilinear interpolation (to a fixed size,
or so that its short side becomes ``min_size`` unless the long side would pass
``max_size``), and the images are padded with zeros at the bottom and right to one size,
rounded up to a multiple of ``size_divisible``. The target boxes (and masks, keypoints)
are resized with their image. After the network, :meth:`postprocess` maps the predicted
boxes back to the size of each original image.
"""

from __future__ import annotations

import math

import numpy as np

from minicnn import nn
from minicnn.autograd import Tensor
from minicnn.autograd.ops import stack
from minicnn.backend import backend_of
from minicnn.models.detection.image_list import ImageList
from minicnn.models.detection.roi_heads import paste_masks_in_image
from minicnn.nn import functional as F
from minicnn.random import generator

__all__ = ["GeneralizedRCNNTransform", "resize_boxes", "resize_keypoints"]


def _ratios(original_size, new_size) -> tuple[float, float]:
    """(height ratio, width ratio), computed in float32 as torchvision does."""
    h, w = (np.float32(s) / np.float32(s_orig) for s, s_orig in zip(new_size, original_size))
    return float(h), float(w)


def resize_boxes(boxes: Tensor, original_size, new_size) -> Tensor:
    """Scale xyxy ``boxes: (K, 4)`` from an image of ``original_size`` ``(h, w)`` to one of
    ``new_size``."""
    ratio_h, ratio_w = _ratios(original_size, new_size)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    return stack([x1 * ratio_w, y1 * ratio_h, x2 * ratio_w, y2 * ratio_h], dim=1)


def resize_keypoints(keypoints: Tensor, original_size, new_size) -> Tensor:
    """Scale ``keypoints: (K, P, 3)`` rows ``(x, y, visibility)`` like :func:`resize_boxes`."""
    ratio_h, ratio_w = _ratios(original_size, new_size)
    return stack([keypoints[..., 0] * ratio_w, keypoints[..., 1] * ratio_h,
                  keypoints[..., 2]], dim=-1)


def _resize_image_and_masks(image: Tensor, self_min_size: int, self_max_size: int,
                            target: dict | None = None,
                            fixed_size: tuple[int, int] | None = None):
    """Bilinear resize of ``image: (C, H, W)`` (and nearest of ``target["masks"]``)."""
    size = scale_factor = recompute = None
    if fixed_size is not None:
        size = [fixed_size[1], fixed_size[0]]
    else:
        h, w = image.shape[-2:]
        scale_factor = min(self_min_size / min(h, w), self_max_size / max(h, w))
        recompute = True
    image = F.interpolate(image[None], size=size, scale_factor=scale_factor, mode="bilinear",
                          recompute_scale_factor=recompute, align_corners=False)[0]
    if target is not None and "masks" in target:
        masks = target["masks"]
        resized = F.interpolate(Tensor(masks.array[:, None].astype(np.float32)), size=size,
                                scale_factor=scale_factor, recompute_scale_factor=recompute)
        target["masks"] = Tensor(resized.array[:, 0].astype(np.uint8))
    return image, target


class GeneralizedRCNNTransform(nn.Module):
    """Normalise, resize and batch images (and resize their targets) for a detector.

    Args:
        min_size: the short side after resizing (a tuple: one is drawn per image in
            training, the last is used in eval).
        max_size: the long side's limit.
        image_mean, image_std: per-channel normalisation.
        size_divisible: the padded batch's height and width are multiples of this.
        fixed_size: ``(width, height)`` to resize every image to, ignoring min/max size.

    ``forward(images, targets=None)``: ``images`` a list of ``(C, H_i, W_i)`` float Tensors
    -> ``(ImageList, targets)`` with ``ImageList.tensors: (N, C, H, W)`` and the targets'
    boxes resized (new dicts; the caller's are not changed).
    """

    def __init__(self, min_size: int | tuple[int, ...], max_size: int, image_mean: list[float],
                 image_std: list[float], size_divisible: int = 32,
                 fixed_size: tuple[int, int] | None = None, **kwargs):
        super().__init__()
        if not isinstance(min_size, (list, tuple)):
            min_size = (min_size,)
        self.min_size = tuple(min_size)
        self.max_size = max_size
        self.image_mean = image_mean
        self.image_std = image_std
        self.size_divisible = size_divisible
        self.fixed_size = fixed_size
        self._skip_resize = kwargs.pop("_skip_resize", False)
        if kwargs:
            raise TypeError(f"GeneralizedRCNNTransform: unexpected arguments {sorted(kwargs)}")

    def forward(self, images: list[Tensor], targets: list[dict] | None = None):
        images = list(images)
        if targets is not None:
            targets = [dict(t) for t in targets]
        for i, image in enumerate(images):
            if not isinstance(image, Tensor) or image.ndim != 3:
                got = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
                raise ValueError(f"GeneralizedRCNNTransform: images[{i}] must be a 3-d Tensor "
                                 f"(C, H, W), got {got}")
            target = targets[i] if targets is not None else None
            image = self.normalize(image)
            image, target = self.resize(image, target)
            images[i] = image
            if targets is not None:
                targets[i] = target
        image_sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        batched = self.batch_images(images, size_divisible=self.size_divisible)
        return ImageList(batched, image_sizes), targets

    def normalize(self, image: Tensor) -> Tensor:
        """``(image - mean) / std`` per channel, in the image's dtype."""
        if image.dtype.kind != "f":
            raise TypeError(f"GeneralizedRCNNTransform: images must be floating point (in "
                            f"[0, 1]), got dtype {image.dtype}")
        xp = backend_of(image.array).xp
        mean = Tensor(xp.asarray(self.image_mean, dtype=image.dtype))
        std = Tensor(xp.asarray(self.image_std, dtype=image.dtype))
        return (image - mean[:, None, None]) / std[:, None, None]

    def torch_choice(self, k: tuple[int, ...]) -> int:
        """A random entry of ``k`` (from minicnn's generator)."""
        return k[int(generator().uniform(0.0, float(len(k))))]

    def resize(self, image: Tensor, target: dict | None = None):
        """Resize ``image: (C, H, W)`` and the boxes / masks / keypoints of ``target``."""
        h, w = image.shape[-2:]
        if self.training:
            if self._skip_resize:
                return image, target
            size = self.torch_choice(self.min_size)
        else:
            size = self.min_size[-1]
        image, target = _resize_image_and_masks(image, size, self.max_size, target,
                                                self.fixed_size)
        if target is None:
            return image, target
        target["boxes"] = resize_boxes(target["boxes"], (h, w), image.shape[-2:])
        if "keypoints" in target:
            target["keypoints"] = resize_keypoints(target["keypoints"], (h, w),
                                                   image.shape[-2:])
        return image, target

    def batch_images(self, images: list[Tensor], size_divisible: int = 32) -> Tensor:
        """Pad ``images`` (each ``(C, H_i, W_i)``) with zeros to ``(N, C, H, W)``, ``H`` and
        ``W`` the largest sizes rounded up to multiples of ``size_divisible``."""
        channels = max(int(img.shape[0]) for img in images)
        stride = float(size_divisible)
        height = int(math.ceil(max(int(img.shape[1]) for img in images) / stride) * stride)
        width = int(math.ceil(max(int(img.shape[2]) for img in images) / stride) * stride)
        padded = []
        for img in images:
            c, h, w = img.shape
            if c != channels:
                raise ValueError(f"GeneralizedRCNNTransform: all images must have the same "
                                 f"number of channels, got {c} and {channels}")
            if (h, w) != (height, width):
                img = F.pad(img[None], (0, width - w, 0, height - h))[0]
            padded.append(img)
        return stack(padded, dim=0)

    def postprocess(self, result: list[dict], image_shapes: list[tuple[int, int]],
                    original_image_sizes: list[tuple[int, int]]) -> list[dict]:
        """Map the predicted boxes (and keypoints) from the resized images back to the
        original sizes and paste predicted ``masks`` into them (eval mode; in training
        ``result`` is returned as it is)."""
        if self.training:
            return result
        for pred, im_s, o_im_s in zip(result, image_shapes, original_image_sizes):
            pred["boxes"] = resize_boxes(pred["boxes"], im_s, o_im_s)
            if "masks" in pred:  # (D, 1, M, M) -> (D, 1, H, W) in the original image
                pred["masks"] = paste_masks_in_image(pred["masks"], pred["boxes"], o_im_s)
            if "keypoints" in pred:
                pred["keypoints"] = resize_keypoints(pred["keypoints"], im_s, o_im_s)
        return result

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(\n    Normalize(mean={self.image_mean}, "
                f"std={self.image_std})\n    Resize(min_size={self.min_size}, "
                f"max_size={self.max_size}, mode='bilinear')\n)")
