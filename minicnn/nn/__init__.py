"""``minicnn.nn``: layers (``nn.Conv2d``, ``nn.Linear`` ...), ``nn.functional`` and ``nn.init``."""

from minicnn.nn import functional, init
from minicnn.nn.modules import *  # noqa: F403
from minicnn.nn.modules import __all__ as _modules_all

__all__ = ["functional", "init", *_modules_all]
