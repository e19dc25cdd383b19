"""minicnn: a from-scratch convolutional-network framework, written to be read and taught from.

Importing minicnn sets two thread-pool defaults before NumPy and Numba load (see
``shared/performance-notes.md``): ``NUMBA_THREADING_LAYER=workqueue`` and
``OPENBLAS_THREAD_TIMEOUT=4``. On a 2-core machine the default spinning pools of
OpenBLAS and Numba's OpenMP layer fight each other and halve throughput. A value
you set yourself in the environment is never overridden.
"""

import os

os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

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
from minicnn.autograd.gradcheck import GradcheckError, gradcheck  # noqa: E402
from minicnn.autograd.ops import (  # noqa: E402
    abs,
    argmax,
    argmin,
    cat,
    chunk,
    clamp,
    exp,
    expand,
    flatten,
    log,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    permute,
    reshape,
    sigmoid,
    split,
    sqrt,
    squeeze,
    stack,
    std,
    sum,
    tanh,
    transpose,
    unsqueeze,
    var,
    where,
)
from minicnn.backend import backend_of, current_backend, get_backend, use_backend  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Function", "GradcheckError", "Tensor", "abs", "arange", "argmax", "argmin", "backend_of",
    "cat", "chunk", "clamp", "current_backend", "empty", "enable_grad", "exp", "expand",
    "flatten", "from_numpy", "full", "get_backend", "gradcheck", "is_grad_enabled", "log",
    "logsumexp", "manual_seed", "matmul", "max", "maximum", "mean", "min", "minimum", "no_grad",
    "ones", "ones_like", "permute", "rand", "randint", "randn", "reshape", "sigmoid", "split",
    "sqrt", "squeeze", "stack", "std", "sum", "tanh", "tensor", "transpose", "unsqueeze",
    "use_backend", "var", "where", "zeros", "zeros_like",
]
