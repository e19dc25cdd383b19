"""minicnn: a from-scratch convolutional-network framework, written to be read and taught from.

Importing minicnn sets two thread-pool defaults before NumPy and Numba load (see
``benchmarks/README.md``, "Performance notes"): ``OPENBLAS_THREAD_TIMEOUT=4`` (on a
2-core machine OpenBLAS's threads otherwise spin after each product and halve the speed
of everything else) and ``NUMBA_THREADING_LAYER_PRIORITY="omp workqueue tbb"`` (Numba's
OpenMP layer where it loads; its workers are told to sleep between loops when it starts,
``minicnn/backend/numba_threads.py``). A value you set yourself in the environment is
never overridden. Under the workqueue layer Numba's workers are pinned one per core on
first use, unless NumPy was imported before minicnn without the OpenBLAS setting: import
minicnn first.

It also sets glibc's malloc to keep the memory one training step frees for the next
(``minicnn.host_memory``): otherwise every step faults its activations' pages in afresh.

The names follow PyTorch: ``import minicnn as torch`` runs most tutorial code, with
``minicnn.nn``, ``minicnn.optim``, ``minicnn.utils.data`` and ``minicnn.cuda`` beside it.
"""

import os
import sys

# NumPy, and with it OpenBLAS, loaded before the default below could reach it: OpenBLAS's
# threads then spin after each product, and Numba's workers are left unpinned
# (minicnn/backend/numba_threads.py says why)
_OPENBLAS_SPINS = "numpy" in sys.modules and "OPENBLAS_THREAD_TIMEOUT" not in os.environ
os.environ.setdefault("NUMBA_THREADING_LAYER_PRIORITY", "omp workqueue tbb")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
del os, sys  # not part of the package's face: dir(minicnn) lists only minicnn's names

from minicnn import host_memory  # noqa: E402

host_memory.keep_freed_memory()

from minicnn import backend as _backend  # noqa: E402

_backend.OPENBLAS_SPINS = _OPENBLAS_SPINS
del _backend, _OPENBLAS_SPINS

from minicnn import cuda, nn, optim, utils  # noqa: E402  (the PyTorch-shaped namespaces)
from minicnn.autograd import (  # noqa: E402
    Function,
    Tensor,
    arange,
    empty,
    enable_grad,
    from_numpy,
    full,
    is_grad_enabled,
    manual_seed,
    no_grad,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from minicnn.autograd.creation import (  # noqa: E402
    eye,
    full_like,
    is_tensor,
    linspace,
    rand_like,
    randn_like,
)
from minicnn.autograd.device import Device as device  # noqa: E402
from minicnn.autograd.grad_mode import inference_mode, set_grad_enabled  # noqa: E402
from minicnn.autograd.gradcheck import GradcheckError, gradcheck  # noqa: E402
from minicnn.autograd.ops import (  # noqa: E402
    abs,
    add,
    amax,
    amin,
    argmax,
    argmin,
    cat,
    chunk,
    clamp,
    clip,
    concat,
    concatenate,
    div,
    exp,
    expand,
    flatten,
    log,
    log_softmax,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mm,
    mul,
    neg,
    permute,
    pow,
    relu,
    reshape,
    sigmoid,
    softmax,
    split,
    sqrt,
    squeeze,
    stack,
    std,
    sub,
    sum,
    tanh,
    transpose,
    unsqueeze,
    var,
    where,
)
from minicnn.autograd.tensor import (  # noqa: E402  (dtypes, as torch.float32 ...)
    bool_,
    float16,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    uint8,
)
from minicnn.backend import backend_of, current_backend, get_backend, use_backend  # noqa: E402
from minicnn.errors import DataFileError  # noqa: E402
from minicnn.serialization import load, save  # noqa: E402
from minicnn.summary import summary  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "DataFileError",
    "Function",
    "GradcheckError",
    "Tensor",
    "abs",
    "arange",
    "argmax",
    "argmin",
    "backend_of",
    "cat",
    "chunk",
    "clamp",
    "current_backend",
    "empty",
    "enable_grad",
    "exp",
    "expand",
    "flatten",
    "from_numpy",
    "full",
    "get_backend",
    "gradcheck",
    "is_grad_enabled",
    "log",
    "logsumexp",
    "manual_seed",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "no_grad",
    "ones",
    "ones_like",
    "permute",
    "rand",
    "randint",
    "randn",
    "reshape",
    "sigmoid",
    "split",
    "sqrt",
    "squeeze",
    "stack",
    "std",
    "sum",
    "tanh",
    "tensor",
    "transpose",
    "unsqueeze",
    "use_backend",
    "var",
    "where",
    "zeros",
    "zeros_like",
    "nn",
    "optim",
    "load",
    "save",
    "summary",
    "bool_",
    "float16",
    "float32",
    "float64",
    "int32",
    "int64",
    "uint8",
]
__all__ += [
    "add",
    "amax",
    "amin",
    "clip",
    "concat",
    "concatenate",
    "div",
    "log_softmax",
    "mm",
    "mul",
    "neg",
    "pow",
    "relu",
    "set_grad_enabled",
    "softmax",
    "sub",
]
__all__ += [
    "cuda",
    "device",
    "eye",
    "full_like",
    "inference_mode",
    "int8",
    "int16",
    "is_tensor",
    "linspace",
    "rand_like",
    "randn_like",
    "utils",
]

# PyTorch's other names for the dtypes (torch.long is torch.int64 ...). They shadow Python's
# float, int and bool inside this module, so they come last and nothing below may use those.
long, int, short, double, float, half, bool = (  # noqa: A001
    int64, int32, int16, float64, float32, float16, bool_,
)
__all__ += ["bool", "double", "float", "half", "int", "long", "short"]
