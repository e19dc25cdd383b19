"""Percent scripts as notebooks, with Jupytext and nbformat imported only when asked for
(``pip install "minicnn[notebook]"``).

:func:`nbgrader_notebook` marks cells the way nbgrader's "Create Assignment" toolbar does:
a code cell holding ``### BEGIN SOLUTION`` is an autograded answer (``solution: true``), one
holding ``### BEGIN HIDDEN TESTS`` is an autograder test (``grade: true``, ``locked: true``,
worth the ``points: N`` its source states, else 1). The student notebook gets the metadata of
the instructor's cell at the same position (stripping never adds or removes cells).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from minicnn.homework.source import BEGIN_HIDDEN, BEGIN_SOLUTION

NBGRADER_SCHEMA = 3
_POINTS = re.compile(r"points:\s*(\d+)")
_INSTALL = 'pip install "minicnn[notebook]"'


def _jupytext():
    try:
        import jupytext
        import nbformat
    except ImportError as e:
        raise ImportError(f"notebooks need Jupytext and nbformat ({e.name} is missing): "
                          f"{_INSTALL}") from None
    return jupytext, nbformat


def script_to_notebook(text: str):
    """A Jupytext percent script (``# %%`` cells) as an ``nbformat`` notebook (version 4)."""
    jupytext, _ = _jupytext()
    return jupytext.reads(text, fmt="py:percent")


def notebook_to_script(path: str | Path) -> str:
    """The code of a notebook file as a percent script (how an ``.ipynb`` submission is graded)."""
    jupytext, nbformat = _jupytext()
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as e:  # nbformat raises its own JSON and validation errors
        raise ValueError(f"{path}: not a readable notebook ({e})") from None
    return jupytext.writes(nb, fmt="py:percent")


def _nbgrader_metadata(source: str, grade_id: str) -> dict | None:
    markers = {line.strip() for line in source.splitlines()}
    if BEGIN_SOLUTION in markers:
        return {"grade": False, "grade_id": grade_id, "locked": False,
                "schema_version": NBGRADER_SCHEMA, "solution": True, "task": False}
    if BEGIN_HIDDEN in markers:
        m = _POINTS.search(source)
        return {"grade": True, "grade_id": grade_id, "locked": True,
                "points": int(m.group(1)) if m else 1, "schema_version": NBGRADER_SCHEMA,
                "solution": False, "task": False}
    return None


def nbgrader_notebook(text: str, name: str, reference: str | None = None):
    """The notebook of ``text`` with nbgrader's cell metadata, read from the markers of
    ``reference`` (default: ``text``; pass the instructor's script for a student version)."""
    nb = script_to_notebook(text)
    ref = nb if reference is None else script_to_notebook(reference)
    if len(ref.cells) != len(nb.cells):
        raise ValueError(f"{name}: the student version has {len(nb.cells)} cells, the "
                         f"instructor's {len(ref.cells)}; a marker region must stay in one cell")
    for k, (cell, ref_cell) in enumerate(zip(nb.cells, ref.cells)):
        if cell.cell_type != "code":
            continue
        meta = _nbgrader_metadata(ref_cell.source, f"{name}_cell{k:02d}")
        if meta is not None:
            cell.metadata["nbgrader"] = meta
    return nb


def write_notebook(nb, path: str | Path) -> None:
    """Validate ``nb`` and write it atomically to ``path``."""
    _, nbformat = _jupytext()
    nbformat.validate(nb)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        nbformat.write(nb, f)
    os.replace(tmp, path)
