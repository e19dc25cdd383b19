"""Run folders: one folder per run, created once, locked while a run writes to it.

A run folder belongs to one run. :func:`create_run_dir` makes a fresh folder (a generated
name gets a ``-2``, ``-3`` ... suffix when the name is taken; a folder the user named must
not exist or be empty), and :class:`RunLock` holds an exclusive lock on ``RUN/.lock`` for
as long as a run trains there, so a second run -- or a ``--resume`` of the same folder --
started meanwhile is refused instead of mixing its files with the first's.
:func:`remove_stale_temp` deletes the temporary files and folders that a killed save left
behind (only minicnn's own temporary names).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

LOCK_NAME = ".lock"

# The temporary names minicnn's writers use: atomic_write's ".NAME.XXXX.tmp" files and
# save_checkpoint's ".epoch_NNN.XXXX" folders (and ".epoch_NNN.old" while re-saving).
_TEMP_FILE = re.compile(r"^\..+\.tmp$")
_TEMP_CHECKPOINT = re.compile(r"^\.epoch_\d+\..+$")


class RunDirError(OSError):
    """A run folder that cannot be used: taken, locked, or not a folder."""


def create_run_dir(path, generated: bool = False) -> Path:
    """Create the run folder ``path`` for a new run and return it.

    ``generated=True`` (a name minicnn made up): if ``path`` exists, ``path-2``, ``path-3``
    ... is tried until a new folder is created; creation is atomic (``mkdir`` without
    ``exist_ok``), so two runs started in the same second get two folders.
    ``generated=False`` (the user's ``--out``): ``path`` may exist only as an empty folder.
    Raises :class:`RunDirError` naming the folder otherwise.
    """
    path = Path(path)
    if generated:
        path.parent.mkdir(parents=True, exist_ok=True)
        for n in range(1, 10_000):
            candidate = path if n == 1 else path.with_name(f"{path.name}-{n}")
            try:
                candidate.mkdir()
                return candidate
            except FileExistsError:
                continue
        raise RunDirError(f"{path}: could not find a free run folder name")
    if path.exists() and not path.is_dir():
        raise RunDirError(f"--out {path}: exists and is not a folder")
    if path.is_dir() and any(p.name != LOCK_NAME for p in path.iterdir()):
        raise RunDirError(
            f"--out {path}: the folder exists and is not empty (a run folder belongs to one "
            f"run); continue that run with --resume {path}, or choose another --out"
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


class RunLock:
    """An exclusive lock on ``run_dir/.lock``, held from :meth:`acquire` to :meth:`release`.

    Use as a context manager. A second lock on the same folder -- from this process or
    another -- raises :class:`RunDirError` at once instead of waiting. The lock is the
    operating system's (``fcntl.flock``), so it disappears with the process that held it:
    a killed run never leaves a stale lock behind. (On systems without ``fcntl`` the lock
    is not taken.)
    """

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        if self._fd is not None:  # already held
            return self
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        fd = os.open(self.run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunDirError(
                f"{self.run_dir}: another minicnn process is training in this run folder "
                f"(it holds {self.run_dir / LOCK_NAME}); wait for it to finish or use another "
                f"folder"
            ) from None
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def remove_stale_temp(run_dir) -> list[Path]:
    """Delete the temporary files/folders of killed writes in ``run_dir``; returns them.

    Only minicnn's own temporary names are touched (``.NAME.XXXX.tmp`` files in the run
    folder, ``figures/`` and ``checkpoints/``; ``.epoch_NNN.XXXX`` folders in
    ``checkpoints/``). Call it only while holding the run's lock (or with no run writing).
    """
    run_dir = Path(run_dir)
    removed = []
    for folder in (run_dir, run_dir / "figures", run_dir / "checkpoints"):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.is_file() and _TEMP_FILE.match(p.name):
                p.unlink(missing_ok=True)
                removed.append(p)
            elif p.is_dir() and folder.name == "checkpoints" and _TEMP_CHECKPOINT.match(p.name):
                final = folder / p.name[1:].split(".")[0]
                if p.name.endswith(".old") and not final.exists():
                    os.replace(p, final)  # killed while re-saving: the old copy is the one
                    continue
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    return removed


def claim_run_dir(path, generated: bool = False) -> RunLock:
    """Create the folder of a new run (see :func:`create_run_dir`) and lock it.

    Returns the held :class:`RunLock` (its ``run_dir`` is the folder). A user-named folder
    is checked again once locked, so of two runs started on one ``--out`` at the same
    moment, one trains and the other is refused.
    """
    lock = RunLock(create_run_dir(path, generated)).acquire()
    if not generated and any(p.name != LOCK_NAME for p in lock.run_dir.iterdir()):
        lock.release()
        raise RunDirError(
            f"--out {lock.run_dir}: another run has just written to this folder; "
            f"choose another --out"
        )
    return lock
