"""``minicnn.cuda``: is a GPU usable? (as ``torch.cuda``).

minicnn runs on a GPU through CuPy (``pip install "minicnn[gpu]"``); tensors move there with
``tensor.to("cuda")``. Typical PyTorch code works unchanged::

    device = minicnn.device("cuda" if minicnn.cuda.is_available() else "cpu")
    model.to(device)
"""

from __future__ import annotations

from minicnn.backend import get_backend


def is_available() -> bool:
    """True when CuPy is installed and finds a usable CUDA GPU."""
    try:
        get_backend("cupy")
    except RuntimeError:  # no CuPy, or no GPU: the registry says which
        return False
    return True


def device_count() -> int:
    """How many CUDA GPUs CuPy sees (0 without CuPy or a GPU). minicnn uses the current one."""
    if not is_available():
        return 0
    return int(get_backend("cupy").xp.cuda.runtime.getDeviceCount())


__all__ = ["device_count", "is_available"]
