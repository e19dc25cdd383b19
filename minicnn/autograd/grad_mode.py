"""Switch graph recording off (``no_grad``) and back on (``enable_grad``).

As in PyTorch the mode belongs to the thread: a ``no_grad`` block in one thread does
not switch recording off in another. ``no_grad``, ``enable_grad`` and ``inference_mode``
work as context managers and as decorators, with or without parentheses (``@no_grad`` and
``@no_grad()``).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

_state = threading.local()


def is_grad_enabled() -> bool:
    """True when operations record the graph for backward."""
    return getattr(_state, "enabled", True)


def _set_enabled(mode: bool) -> None:
    _state.enabled = bool(mode)


class _GradMode:
    """Sets grad mode inside a ``with`` block (or a decorated function), then restores it."""

    mode = True

    def __new__(cls, *args):
        if len(args) == 1 and callable(args[0]):  # a bare decorator: @no_grad
            return cls()(args[0])
        return super().__new__(cls)

    def __init__(self):
        self._previous: list[bool] = []  # a stack: the same object may be entered again

    def __enter__(self):
        self._previous.append(is_grad_enabled())
        _set_enabled(self.mode)
        return self

    def __exit__(self, *exc) -> bool:
        _set_enabled(self._previous.pop())
        return False

    def _fresh(self) -> _GradMode:
        return type(self)()

    def __call__(self, func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self._fresh():  # a new context per call: safe for recursion and threads
                return func(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """``with no_grad():`` (or ``@no_grad``): operations build no graph inside."""

    mode = False


class enable_grad(_GradMode):
    """``with enable_grad():``: record the graph again inside a ``no_grad`` block."""

    mode = True


class inference_mode(_GradMode):
    """``with inference_mode():`` (or ``@inference_mode``): no graph inside, as ``no_grad``.

    PyTorch's inference mode also skips version-counter bookkeeping; here it is ``no_grad``
    under PyTorch's name. ``inference_mode(False)`` leaves the current mode as it is.
    """

    def __init__(self, mode: bool = True):
        super().__init__()
        self.enabled = bool(mode)

    def __enter__(self):
        self._previous.append(is_grad_enabled())
        if self.enabled:
            _set_enabled(False)
        return self

    def _fresh(self) -> _GradMode:
        return inference_mode(self.enabled)


class set_grad_enabled(_GradMode):
    """``set_grad_enabled(False)`` switches recording off at once (as ``torch.set_grad_enabled``);
    used in a ``with`` block, the previous mode comes back at the end of the block."""

    def __init__(self, mode: bool):
        super().__init__()
        self.mode = bool(mode)
        self._previous.append(is_grad_enabled())
        _set_enabled(self.mode)

    def __enter__(self):
        return self  # __init__ already switched the mode

    def _fresh(self) -> _GradMode:
        return set_grad_enabled(self.mode)

    def __call__(self, func: Callable) -> Callable:
        _set_enabled(self._previous.pop())  # decorating must not switch the mode now
        return super().__call__(func)
