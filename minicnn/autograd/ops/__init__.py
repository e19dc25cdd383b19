"""The public tensor operations, named and shaped as in PyTorch (``torch.sum`` etc.).

Each function lives beside the ``Function`` that implements it:

* ``elementwise.py`` -- add, sub, mul, div, neg, pow, exp, log, sqrt, abs, clamp,
  maximum, minimum, where, sigmoid, tanh, atan, relu
* ``reduction.py``   -- sum, mean, amax, amin, max, min, argmax, argmin, var, std,
  logsumexp, softmax, log_softmax
* ``shape.py``       -- reshape, permute, transpose, flatten, squeeze, unsqueeze, expand,
  cat, stack, split, chunk, indexing
* ``linalg.py``      -- matmul
* ``conversion.py``  -- to_copy (``tensor.to``), clone
* ``promotion.py``   -- the dtype of a mixed operation (PyTorch's rules)

``minicnn.nn.functional`` re-exports the ones PyTorch keeps there.
"""

from minicnn.autograd.ops.conversion import clone, to_copy
from minicnn.autograd.ops.elementwise import (
    abs,
    add,
    atan,
    clamp,
    clip,
    div,
    exp,
    log,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    relu,
    sigmoid,
    sqrt,
    sub,
    tanh,
    where,
)
from minicnn.autograd.ops.linalg import matmul, mm
from minicnn.autograd.ops.reduction import (
    amax,
    amin,
    argmax,
    argmin,
    log_softmax,
    logsumexp,
    max,
    mean,
    min,
    softmax,
    std,
    sum,
    var,
)
from minicnn.autograd.ops.shape import (
    cat,
    chunk,
    concat,
    concatenate,
    expand,
    flatten,
    index,
    permute,
    raw_index,
    reshape,
    split,
    squeeze,
    stack,
    transpose,
    unsqueeze,
    view,
)

__all__ = [
    "abs", "add", "amax", "amin", "argmax", "argmin", "cat", "chunk", "clamp", "clip", "clone",
    "concat", "concatenate", "div", "exp", "expand", "flatten", "index", "log", "log_softmax",
    "logsumexp", "matmul", "max", "maximum", "mean", "min", "minimum", "mm", "mul", "neg",
    "permute", "pow", "raw_index", "relu", "reshape", "sigmoid", "softmax", "split", "sqrt",
    "squeeze", "stack", "std", "sub", "sum", "tanh", "to_copy", "transpose", "unsqueeze", "var",
    "view", "where", "atan",
]
