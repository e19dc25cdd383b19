"""``Function``: one differentiable operation, its forward and backward side by side.

A subclass writes two static methods on raw arrays (NumPy or CuPy)::

    class Mul(Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad):
            a, b = ctx.saved_tensors
            return grad * b, grad * a        # one gradient per forward input

``Mul.apply(x, y)`` unwraps the Tensors, runs ``forward`` and, when some input needs a
gradient, returns a Tensor whose ``grad_fn`` is the ``ctx``: the graph node. Backward may
return a gradient of the broadcast shape; the engine sums it back to the input's shape.
It may return ``None`` for inputs that need no gradient (see ``ctx.needs_input_grad``).

In-place changes: ``save_for_backward`` notes which input (or output) Tensor each saved
array is, or is a view of, and that tensor's version. If the tensor is changed in place
before backward (``x += 1``, ``x[0] = 5``), backward raises PyTorch's error instead of
computing a wrong gradient from the changed values. Arrays kept as plain ``ctx``
attributes are not watched: save the arrays backward reads with ``save_for_backward``.
An output that is a view of an input (``reshape``, basic indexing) shares the input's
version counter, so a change through the view is seen too.
"""

from __future__ import annotations

from minicnn.autograd import grad_mode
from minicnn.backend import array_module, is_array


def _shares_memory(a, b) -> bool:
    """True when array ``a`` is ``b`` or a view into the same memory (a cheap bounds test)."""
    if a is b:
        return True
    if getattr(a, "base", None) is None and getattr(b, "base", None) is None:
        return False  # two arrays that own their memory never overlap
    xp = array_module(a)
    if array_module(b) is not xp:
        return False  # one on the host, one on the GPU
    may_share = getattr(xp, "may_share_memory", None)
    return bool(may_share(a, b)) if may_share is not None else False


class Context:
    """A graph node: the function, its input Tensors and what forward saved for backward."""

    def __init__(self, function: type, inputs: tuple, needs_input_grad: tuple[bool, ...]):
        self.function = function
        self.inputs = inputs
        self.needs_input_grad = needs_input_grad
        self.saved_tensors: tuple = ()
        self.saved_versions: list = []  # (description, version counter, version when saved)
        self.freed = False

    def save_for_backward(self, *arrays) -> None:
        """Keep arrays (or anything) that backward will need; note the versions of their tensors."""
        self.saved_tensors = arrays
        if not self.inputs:  # not recording a graph: nothing to watch
            return
        saved = [a for a in arrays if is_array(a)]
        self.saved_versions = [
            (f"input {i} of {self.name()} (shape {t.shape})", t._version_counter, t._version)
            for i, t in enumerate(self.inputs)
            if t is not None and any(_shares_memory(a, t.array) for a in saved)
        ]

    def _watch_output(self, out) -> None:
        """Watch the output too if forward saved it (``exp``, ``sigmoid`` save their result)."""
        if any(is_array(a) and _shares_memory(a, out.array) for a in self.saved_tensors):
            self.saved_versions.append(
                (f"the output of {self.name()} (shape {out.shape})", out._version_counter,
                 out._version)
            )

    def check_versions(self) -> None:
        """Raise if a tensor saved for backward was changed in place since (as PyTorch)."""
        for what, counter, expected in self.saved_versions:
            if counter.value != expected:
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified "
                    f"by an inplace operation: {what} is at version {counter.value}; expected "
                    f"version {expected} instead. Compute on a copy (x = x + 1 rather than "
                    "x += 1), or make the change after backward()"
                )

    def release(self) -> None:
        """Drop the inputs and everything saved: called once backward has used this node."""
        function, needs = self.function, self.needs_input_grad
        self.__dict__.clear()
        self.function, self.needs_input_grad = function, needs
        self.inputs = ()
        self.saved_tensors = ()
        self.saved_versions = []
        self.freed = True

    def name(self) -> str:
        return f"{self.function.__name__}Backward"

    def __repr__(self) -> str:
        return f"<{self.name()}>"


class Function:
    """Base class of differentiable operations. See the module docstring."""

    @staticmethod
    def forward(ctx: Context, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run the operation on Tensors (or plain values) and record it in the graph."""
        from minicnn.autograd.tensor import Tensor

        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        record = grad_mode.is_grad_enabled() and any(needs)
        inputs = tuple(a if isinstance(a, Tensor) else None for a in args)
        ctx = Context(cls, inputs if record else (), needs)
        arrays = [a.array if isinstance(a, Tensor) else a for a in args]
        out = cls.forward(ctx, *arrays, **kwargs)
        result = Tensor._wrap(out, requires_grad=record, grad_fn=ctx if record else None)
        if getattr(out, "base", None) is not None:  # a view of an input shares its counter
            for a in args:
                if isinstance(a, Tensor) and _shares_memory(out, a.array):
                    result._version_counter = a._version_counter
                    break
        if record and ctx.saved_tensors:
            ctx._watch_output(result)
        return result
