"""``minicnn.device``: where a tensor's data lives, as ``torch.device``.

``device("cpu")``, ``device("cuda")``, ``device("cuda:1")`` or ``device("cuda", 1)``;
``.type`` is "cpu" or "cuda", ``.index`` the GPU number (None when not given). Anything
that takes a device (``tensor.to``, ``zeros(..., device=)``) takes one of these or its
string. minicnn uses one GPU: every CUDA index means the current CuPy device.
"""

from __future__ import annotations


class Device:
    """A device type ("cpu" or "cuda") and an optional index, as ``torch.device``."""

    __slots__ = ("type", "index")

    def __init__(self, type: str | Device, index: int | None = None):
        if isinstance(type, Device):
            type, index = type.type, type.index if index is None else index
        if not isinstance(type, str):
            raise TypeError(f"device: expected a string such as 'cpu' or 'cuda:0', got {type!r}")
        name, _, number = type.partition(":")
        if number:
            if index is not None:
                raise ValueError(f"device: index given twice, in {type!r} and as {index!r}")
            if not number.isdigit():
                raise ValueError(f"device: expected 'cuda:N' with N a number, got {type!r}")
            index = int(number)
        if name not in ("cpu", "cuda"):
            raise ValueError(
                f"device: expected 'cpu' or 'cuda' (optionally 'cuda:N'), got {type!r}"
            )
        if index is not None and (not isinstance(index, int) or index < 0):
            raise ValueError(f"device: index must be a non-negative int, got {index!r}")
        if name == "cpu" and index not in (None, 0):
            raise ValueError(f"device: the cpu has no index {index}")
        self.type = name
        self.index = index

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        extra = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{extra})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))
