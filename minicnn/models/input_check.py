"""One check shared by the image classifiers: is ``x`` an image batch the model can take?

A network that downsamples by a total stride ``s`` (ResNet: 32) turns an input smaller
than ``s`` pixels into a 1x1 map before its last stage, whose 3x3 convolutions then see
only zero padding: the result is a number, not a feature. Each model therefore states
its minimum input size, and :func:`check_image_input` raises a ValueError that names
the model, what it expects and what it got, before any layer fails with a less helpful
message.
"""

from __future__ import annotations

__all__ = ["check_image_input"]


def check_image_input(x, model_name: str, in_channels: int, min_size: int) -> None:
    """Raise ValueError unless ``x`` is ``(N, in_channels, H, W)`` with ``H, W >= min_size``."""
    shape = tuple(x.shape)
    expected = f"{model_name} expects input (N, {in_channels}, H, W) with H, W >= {min_size}"
    if len(shape) != 4:
        raise ValueError(f"{expected}, got a {len(shape)}-d input of shape {shape}")
    if shape[1] != in_channels:
        raise ValueError(f"{expected}, got {shape[1]} channels in {shape}")
    if shape[2] < min_size or shape[3] < min_size:
        raise ValueError(f"{expected}, got {shape}")
