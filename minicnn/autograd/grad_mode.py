"""Switch graph recording off (``no_grad``) and back on (``enable_grad``)."""

from __future__ import annotations

import contextlib
import functools

_enabled = True


def is_grad_enabled() -> bool:
    """True when operations record the graph for backward."""
    return _enabled


class _GradMode(contextlib.ContextDecorator):
    """Context manager (and decorator) that sets grad mode inside its block."""

    def __init__(self, mode: bool):
        self.mode = mode

    def __enter__(self):
        global _enabled
        self.prev = _enabled
        _enabled = self.mode
        return self

    def __exit__(self, *exc):
        global _enabled
        _enabled = self.prev
        return False


no_grad = functools.partial(_GradMode, False)
no_grad.__doc__ = """``with no_grad():`` (or ``@no_grad()``): operations build no graph inside."""
enable_grad = functools.partial(_GradMode, True)
enable_grad.__doc__ = """``with enable_grad():``: record the graph again inside a ``no_grad`` block."""
