"""``minicnn.utils``: PyTorch's ``torch.utils`` names (``minicnn.utils.data``)."""

from minicnn.utils import data

__all__ = ["data"]
