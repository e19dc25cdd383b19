"""Assignments on disk and their student version.

An assignment is a folder ``NN_topic/`` holding one solution file ``<name>.py`` (Jupytext
percent format, what students edit) and ``grader.py`` (pytest tests worth points). The
markers are nbgrader's, one per line, anywhere a comment may stand::

    def relu_backward(grad, x):
        \"\"\"The docstring stays.\"\"\"
        ### BEGIN SOLUTION
        return grad * (x > 0)
        ### END SOLUTION

The student version replaces the region by ``raise NotImplementedError("relu_backward: ...")``
at the marker's indentation and drops ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS``
regions (in the solution file and in the grader) with their markers.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
GRADER = "grader.py"
FORMATS = ("py", "ipynb")
_FOLDER = re.compile(r"^\d\d_[a-z0-9_]+$")
_DEF = re.compile(r"^(\s*)(?:async\s+)?(def|class)\s+(\w+)")


def default_source() -> Path:
    """``lessons/assignments`` of the checkout minicnn runs from."""
    return Path(__file__).resolve().parents[2] / "lessons" / "assignments"


@dataclass(frozen=True)
class Assignment:
    """One assignment folder: ``folder/<name>.py`` (the solution) and ``folder/grader.py``."""

    folder: Path

    @property
    def id(self) -> str:
        return self.folder.name

    @property
    def solution(self) -> Path:
        files = sorted(p for p in self.folder.glob("*.py") if p.name != GRADER)
        if len(files) != 1:
            raise ValueError(
                f"assignment {self.folder}: expected one solution file beside {GRADER}, "
                f"found {[p.name for p in files]}"
            )
        return files[0]

    @property
    def name(self) -> str:
        """The solution file's stem: what a submission's file is called."""
        return self.solution.stem

    @property
    def grader(self) -> Path:
        return self.folder / GRADER


def find_assignments(source: str | Path | None = None) -> list[Assignment]:
    """Every ``NN_topic/`` folder with a ``grader.py`` under ``source``
    (default: ``lessons/assignments`` of this checkout), in order."""
    root = Path(source) if source is not None else default_source()
    if not root.is_dir():
        raise FileNotFoundError(
            f"assignments folder {root} not found (expected lessons/assignments of a minicnn "
            "checkout; pass --source DIR)"
        )
    found = [Assignment(p) for p in sorted(root.iterdir())
             if p.is_dir() and _FOLDER.match(p.name) and (p / GRADER).is_file()]
    if not found:
        raise ValueError(f"assignments folder {root} holds no NN_topic/ folder with a {GRADER}")
    return found


def _enclosing(lines: list[str], indent: int) -> str:
    """``Class.method`` of the def (and class) around a marker at ``indent`` (lines above)."""
    names = []
    for line in reversed(lines):
        m = _DEF.match(line)
        if m and len(m.group(1)) < indent:
            names.append(m.group(3))
            indent = len(m.group(1))
            if indent == 0:
                break
    return ".".join(reversed(names)) or "this part"


def _regions(text: str, filename: str):
    """Yield ``(kind, line)`` per line, kind None outside regions, "solution"/"hidden" inside,
    "begin-solution"/"begin-hidden"/"end" for the markers; raises ValueError on bad nesting."""
    kind = None
    start = 0
    for lineno, line in enumerate(text.splitlines(keepends=True), 1):
        s = line.strip()
        if s in (BEGIN_SOLUTION, BEGIN_HIDDEN):
            if kind is not None:
                raise ValueError(f"{filename}:{lineno}: {s!r} inside the region opened at "
                                 f"line {start}; close it first")
            kind, start = ("solution" if s == BEGIN_SOLUTION else "hidden"), lineno
            yield "begin-" + kind, line
        elif s in (END_SOLUTION, END_HIDDEN):
            want = END_SOLUTION if kind == "solution" else END_HIDDEN
            if kind is None or s != want:
                raise ValueError(f"{filename}:{lineno}: {s!r} closes no open region")
            kind = None
            yield "end", line
        else:
            if kind is not None and s.startswith("# %%"):
                raise ValueError(f"{filename}:{lineno}: a cell marker inside the region opened "
                                 f"at line {start}; a region must stay within one cell")
            yield kind, line
    if kind is not None:
        raise ValueError(f"{filename}:{start}: region opened here is never closed")


def student_version(text: str, filename: str = "<assignment>") -> str:
    """The student's file: solution regions become ``raise NotImplementedError(...)``,
    hidden-test regions vanish. Raises ValueError on unbalanced markers or when the result
    is not valid Python."""
    out: list[str] = []
    for kind, line in _regions(text, filename):
        if kind == "begin-solution":
            indent = len(line) - len(line.lstrip())
            where = _enclosing(out, indent)
            out.append(f'{line[:indent]}raise NotImplementedError("{where}: write your code '
                       'here")\n')
        elif kind is None:
            out.append(line)
    student = "".join(out)
    try:
        compile(student, filename, "exec")
    except SyntaxError as e:
        raise ValueError(f"{filename}: the student version is not valid Python "
                         f"(line {e.lineno}: {e.msg}); check the markers") from None
    return student


def solution_lines(text: str, filename: str = "<assignment>") -> list[str]:
    """The stripped lines inside solution and hidden regions that appear nowhere else in the
    file: none of them may be left in the student version."""
    inside, outside = [], set()
    for kind, line in _regions(text, filename):
        s = line.strip()
        if kind in ("solution", "hidden"):
            inside.append(s)
        elif kind is None:
            outside.add(s)
    return [s for s in dict.fromkeys(inside) if s and s not in outside]


def build(out: str | Path, fmt: str = "py", source: str | Path | None = None) -> list[Path]:
    """Write ``out/student/NN_topic/`` and ``out/instructor/NN_topic/`` for every assignment.

    Args:
        out: a new or empty folder.
        fmt: "py" (Jupytext percent scripts) or "ipynb" (notebooks; the instructor's keep
            nbgrader's markers and cell metadata, ready for nbgrader's ``source/`` folder).
            Graders are always ``.py``.
        source: the assignments folder (default: ``lessons/assignments`` of this checkout).

    Returns the files written.
    """
    if fmt not in FORMATS:
        raise ValueError(f"homework build: format must be one of {FORMATS}, got {fmt!r}")
    assignments = find_assignments(source)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"homework build: {out} exists and is not an empty folder; "
                              "choose a new or empty one")
    if fmt == "ipynb":
        from minicnn.homework.notebooks import nbgrader_notebook, write_notebook
    # everything is prepared (and checked) before anything is written
    plan: list[tuple[Path, str | None, Path | None]] = []  # (target, text or None, copy from)
    for a in assignments:
        text = a.solution.read_text(encoding="utf-8")
        student = student_version(text, str(a.solution))
        grader = a.grader.read_text(encoding="utf-8")
        grader_student = student_version(grader, str(a.grader))
        for who, body, grader_body in (("instructor", text, grader),
                                       ("student", student, grader_student)):
            folder = out / who / a.id
            plan.append((folder / GRADER, grader_body, None))
            if fmt == "py":
                plan.append((folder / a.solution.name, body, None))
            else:
                nb = nbgrader_notebook(body, a.name, reference=text)
                plan.append((folder / f"{a.name}.ipynb", nb, None))
        for extra in sorted(a.folder.iterdir()):  # data files an assignment ships, if any
            if extra.is_file() and extra.suffix not in (".py", ".pyc", ".ipynb"):
                for who in ("instructor", "student"):
                    plan.append((out / who / a.id / extra.name, None, extra))
    written = []
    for target, body, copy_from in plan:
        target.parent.mkdir(parents=True, exist_ok=True)
        if copy_from is not None:
            shutil.copyfile(copy_from, target)
        elif target.suffix == ".ipynb":
            write_notebook(body, target)
        else:
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_text(body, encoding="utf-8")
            tmp.replace(target)
        written.append(target)
    return written
