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
"""

from __future__ import annotations

from minicnn.autograd import grad_mode


class Context:
    """A graph node: the function, its input Tensors and what forward saved for backward."""

    def __init__(self, function: type, inputs: tuple, needs_input_grad: tuple[bool, ...]):
        self.function = function
        self.inputs = inputs
        self.needs_input_grad = needs_input_grad
        self.saved_tensors: tuple = ()
        self.freed = False

    def save_for_backward(self, *arrays) -> None:
        """Keep arrays (or anything) that backward will need."""
        self.saved_tensors = arrays

    def release(self) -> None:
        """Drop the inputs and everything saved: called once backward has used this node."""
        function, needs = self.function, self.needs_input_grad
        self.__dict__.clear()
        self.function, self.needs_input_grad = function, needs
        self.inputs = ()
        self.saved_tensors = ()
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
        arrays = [a.data if isinstance(a, Tensor) else a for a in args]
        out = cls.forward(ctx, *arrays, **kwargs)
        if not record:
            return Tensor._wrap(out)
        return Tensor._wrap(out, requires_grad=True, grad_fn=ctx)
