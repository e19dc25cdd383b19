"""``grade``: run assignments' graders against a student's files and tabulate the score.

Each grader runs in a fresh interpreter (``python -m pytest grader.py`` with the recording
plugin of :mod:`minicnn.homework.plugin`), so a submission that hangs, crashes or leaves
state behind cannot touch the caller or the next assignment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from minicnn.homework.plugin import RESULTS_ENV, SUBMISSION_ENV
from minicnn.homework.source import Assignment, find_assignments

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the minicnn package


@dataclass
class TestResult:
    """One grader test: its name, points, outcome ("passed", "failed", "skipped") and why."""

    __test__ = False  # not a pytest test class

    test: str
    points: int
    outcome: str
    message: str = ""

    @property
    def earned(self) -> int:
        return self.points if self.outcome == "passed" else 0


@dataclass
class GradeReport:
    """The results of one assignment; skipped tests count towards neither score nor maximum."""

    assignment: str
    file: str
    tests: list[TestResult] = field(default_factory=list)

    @property
    def score(self) -> int:
        return sum(t.earned for t in self.tests)

    @property
    def maximum(self) -> int:
        return sum(t.points for t in self.tests if t.outcome != "skipped")


def _submitted_file(folder: Path, a: Assignment) -> Path | None:
    """``<name>.py`` or ``<name>.ipynb`` in ``folder`` or in ``folder/NN_topic/``."""
    for base in (folder, folder / a.id):
        for suffix in (".py", ".ipynb"):
            if (base / f"{a.name}{suffix}").is_file():
                return base / f"{a.name}{suffix}"
    return None


def _as_script(path: Path) -> str:
    if path.suffix == ".ipynb":
        from minicnn.homework.notebooks import notebook_to_script
        return notebook_to_script(path)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"invalid submission: {path} is not UTF-8 text") from None


def _run_grader(a: Assignment, code: str, submitted: Path, timeout: float) -> GradeReport:
    try:
        compile(code, str(submitted), "exec")
    except SyntaxError as e:
        raise ValueError(f"invalid submission: {submitted} line {e.lineno}: {e.msg}") from None
    with tempfile.TemporaryDirectory(prefix="minicnn-grade-") as tmp:
        tmp = Path(tmp)
        (tmp / "submission").mkdir()
        (tmp / "submission" / f"{a.name}.py").write_text(code, encoding="utf-8")
        (tmp / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # not the project's
        results = tmp / "results.json"
        env = dict(os.environ)
        env[SUBMISSION_ENV] = str(tmp / "submission")
        env[RESULTS_ENV] = str(results)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(_PACKAGE_ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
        env.setdefault("MPLBACKEND", "Agg")
        cmd = [sys.executable, "-m", "pytest", str(a.grader.resolve()), "-q", "-p",
               "no:cacheprovider", "-p", "minicnn.homework.plugin", "-c", str(tmp / "pytest.ini"),
               "--rootdir", str(tmp), "-W", "ignore::pytest.PytestAssertRewriteWarning"]
        try:
            proc = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ValueError(f"invalid submission: grading {submitted} took over {timeout:g} s "
                             "(an endless loop?)") from None
        if not results.is_file():
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
            if "No module named pytest" in proc.stderr:
                raise ImportError("grading needs pytest: pip install pytest")
            raise RuntimeError(f"the grader of {a.id} did not run: {tail[0]}")
        data = json.loads(results.read_text(encoding="utf-8"))
    if data["errors"]:
        raise ValueError(f"invalid submission: {submitted} does not import: {data['errors'][0]}")
    tests = [TestResult(**t) for t in data["tests"]]
    if not tests:
        raise RuntimeError(f"the grader of {a.id} ran no test")
    return GradeReport(a.id, str(submitted), tests)


def grade(submission: str | Path, source: str | Path | None = None,
          only: list[str] | None = None, timeout: float = 1800.0) -> list[GradeReport]:
    """Grade every assignment whose file is in ``submission``.

    Args:
        submission: a folder holding a student's ``<name>.py`` or ``<name>.ipynb`` files
            (directly or in ``NN_topic/`` folders, as ``build`` lays them out).
        source: the assignments folder with the graders (default: this checkout's).
        only: assignment ids or numbers ("01_autograd", "01") to grade; default: all present.
        timeout: seconds per assignment.

    Raises ValueError for an invalid submission (no assignment file, a file that does not
    parse or import) and OSError when ``submission`` is not a folder.
    """
    folder = Path(submission)
    if not folder.is_dir():
        raise NotADirectoryError(f"homework grade: submission {folder} is not a folder")
    assignments = find_assignments(source)
    if only:
        known = {a.id for a in assignments} | {a.id[:2] for a in assignments}
        unknown = [o for o in only if o not in known]
        if unknown:
            raise ValueError(f"homework grade: unknown assignment {unknown[0]!r}; expected one "
                             f"of {sorted(a.id for a in assignments)}")
        assignments = [a for a in assignments if a.id in only or a.id[:2] in only]
    found = [(a, _submitted_file(folder, a)) for a in assignments]
    found = [(a, f) for a, f in found if f is not None]
    if not found:
        names = ", ".join(f"{a.name}.py" for a in assignments)
        raise ValueError(f"invalid submission: {folder} holds no assignment file (expected one "
                         f"of {names}, or the same as .ipynb)")
    return [_run_grader(a, _as_script(f), f, timeout) for a, f in found]


def format_report(reports: list[GradeReport]) -> str:
    """The score table: one row per test with its points and the failing check's message."""
    rows = []
    for r in reports:
        rows.append(f"{r.assignment} ({r.file})")
        width = max(len(t.test) for t in r.tests)
        for t in r.tests:
            score = "skip" if t.outcome == "skipped" else f"{t.earned}/{t.points}"
            note = {"passed": "ok", "skipped": f"skipped: {t.message}"}.get(t.outcome, t.message)
            rows.append(f"  {t.test:<{width}}  {score:>5}  {note}")
        rows.append(f"  {'total':<{width}}  {r.score}/{r.maximum}".rstrip())
        rows.append("")
    if len(reports) > 1:
        rows.append(f"score: {sum(r.score for r in reports)}/{sum(r.maximum for r in reports)}")
    return "\n".join(rows).rstrip() + "\n"
