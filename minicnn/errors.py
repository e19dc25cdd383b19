"""minicnn's error for a file it cannot read: :class:`DataFileError`.

Every reader of a file format (images, MNIST's IDX, CIFAR's binary records, ``.npz`` and
safetensors weights) raises it, whatever went wrong inside the parser, with the file's
path first in a one-line message::

    DataFileError: data/cat/3.png: not a readable image (image file is truncated)

It is both a ``ValueError`` (the content is wrong) and an ``OSError`` (it is about a file),
so ``except ValueError`` and ``except OSError`` both catch it. A missing file stays a
``FileNotFoundError``. This module imports nothing of minicnn, so every layer may use it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["DataFileError", "reading"]


class DataFileError(ValueError, OSError):
    """A file that cannot be read as what it should be. ``path``: the file; the message
    is ``"<path>: <what is wrong>"``."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        super().__init__(f"{self.path}: {problem}")


@contextmanager
def reading(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Read ``path`` inside this block: any error becomes a :class:`DataFileError`
    ``"<path>: not a valid <what> (<the parser's message>)"``.

    A ``DataFileError`` raised inside passes unchanged, and so do ``FileNotFoundError``,
    ``MemoryError`` and ``KeyboardInterrupt``. Parsers fail in many ways on bad bytes
    (``OSError``, ``EOFError``, ``zlib.error``, ``struct.error``, ``SyntaxError``, their own
    exception types...), so everything else is caught: keep the block to the reading.
    """
    try:
        yield
    except (DataFileError, FileNotFoundError, MemoryError):
        raise
    except IsADirectoryError as e:
        raise DataFileError(path, f"is a directory, expected a {what}") from e
    except Exception as e:
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataFileError(path, f"not a valid {what} ({detail})") from e
