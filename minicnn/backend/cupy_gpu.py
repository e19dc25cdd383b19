"""CuPy GPU kernels. Importing this module imports CuPy; anything not here uses ``reference.py``.

CuPy mirrors NumPy's API, so most reference kernels run on the GPU unchanged. This
file holds only what must differ on the GPU (and, later, hand-written RawKernels for
the hot paths, each built once and cached).
"""

from __future__ import annotations

import cupy
import cupyx


def gpu_available() -> bool:
    """True when CuPy can see at least one CUDA device."""
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver, no device, or a broken CUDA install
        return False


def index_add(target, index, values) -> None:
    """In place ``target[index] += values`` with repeats accumulated, by atomic adds."""
    cupyx.scatter_add(target, index, values)


KERNELS = {
    "index_add": index_add,
}
