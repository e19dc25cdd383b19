"""``ImageList``: a batch of images padded to one size, with the size of each before padding
(torchvision's ``models/detection/image_list.py``)."""

from __future__ import annotations

from minicnn.autograd import Tensor

__all__ = ["ImageList"]


class ImageList:
    """``tensors: (N, C, H, W)`` (the padded batch) and ``image_sizes``: ``(h, w)`` of each
    image inside it."""

    def __init__(self, tensors: Tensor, image_sizes: list[tuple[int, int]]) -> None:
        self.tensors = tensors
        self.image_sizes = image_sizes

    def to(self, device) -> ImageList:
        return ImageList(self.tensors.to(device), self.image_sizes)
