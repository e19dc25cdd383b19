"""The course homework: every assignment's reference solution gets full marks from its grader,
the built student version imports and scores zero (every graded part raises
NotImplementedError, the grader does not crash) and keeps no solution line or hidden test;
a wrong backward loses exactly the points of the tests that cover it; notebooks validate."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from minicnn.homework import (
    build,
    find_assignments,
    format_report,
    grade,
    solution_lines,
    student_version,
)
from tests.helpers import cli_error

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENTS = find_assignments()
IDS = [a.id for a in ASSIGNMENTS]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("homework") / "out"
    build(out)
    return out


def _markers(text: str) -> list[str]:
    """The marker lines of ``text`` (prose may name the markers; a marker is a line of its own)."""
    return [s.strip() for s in text.splitlines() if s.strip().startswith(("### BEGIN", "### END"))]


def _by_id(assignment_id: str):
    return next(a for a in ASSIGNMENTS if a.id == assignment_id)


# ------------------------------------------------------------------ the student version


def test_student_version_replaces_solutions_and_drops_hidden_tests():
    text = (
        "class Mul:\n"
        "    def backward(ctx, grad):\n"
        '        """Keep me."""\n'
        "        a, b = ctx.saved\n"
        "        ### BEGIN SOLUTION\n"
        "        return grad * b, grad * a\n"
        "        ### END SOLUTION\n"
        "\n"
        "def check():\n"
        "    assert True\n"
        "    ### BEGIN HIDDEN TESTS\n"
        "    assert secret()\n"
        "    ### END HIDDEN TESTS\n"
    )
    out = student_version(text)
    assert '        raise NotImplementedError("Mul.backward: write your code here")\n' in out
    assert '"""Keep me."""' in out and "a, b = ctx.saved" in out
    assert "grad * b" not in out and "secret" not in out and "###" not in out
    assert solution_lines(text) == ["return grad * b, grad * a", "assert secret()"]


@pytest.mark.parametrize("text, words", [
    ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n### END SOLUTION\n", "closes no open region"),
    ("### BEGIN SOLUTION\n### BEGIN HIDDEN TESTS\n", "inside the region"),
    ("### BEGIN SOLUTION\nx = 1\n### END HIDDEN TESTS\n", "closes no open region"),
    ("### BEGIN SOLUTION\n# %%\n### END SOLUTION\n", "cell marker"),
    ("if x:\n    ### BEGIN HIDDEN TESTS\n    y()\n    ### END HIDDEN TESTS\n", "not valid Python"),
])
def test_bad_markers_are_refused(text, words):
    with pytest.raises(ValueError, match=words):
        student_version(text, "a.py")


@pytest.mark.parametrize("assignment_id", IDS)
def test_student_version_keeps_no_solution_line(built, assignment_id):
    a = _by_id(assignment_id)
    for source, name in ((a.solution, a.solution.name), (a.grader, "grader.py")):
        text = source.read_text()
        student = (built / "student" / a.id / name).read_text()
        secret = solution_lines(text)
        assert source == a.grader or secret, f"{source} has no solution region"
        left = [s for s in secret if s in student]
        assert not left, f"{a.id}/{name}: solution lines left in the student version: {left}"
        assert not _markers(student)
        assert (built / "instructor" / a.id / name).read_text() == text


# ------------------------------------------------------------------------- grading


@pytest.mark.parametrize("assignment_id", IDS)
def test_reference_solution_gets_full_marks(assignment_id):
    a = _by_id(assignment_id)
    (report,) = grade(a.folder, only=[a.id])
    failed = [(t.test, t.message) for t in report.tests if t.outcome == "failed"]
    assert not failed, format_report([report])
    assert report.score == report.maximum
    for t in report.tests:  # a skip says why (assignment 07 before restoration has landed)
        assert t.outcome == "passed" or t.message.strip(), t


@pytest.mark.parametrize("assignment_id", IDS)
def test_student_version_scores_zero_without_crashing(built, assignment_id):
    (report,) = grade(built / "student", only=[assignment_id])
    assert report.score == 0
    for t in report.tests:
        assert t.outcome in ("failed", "skipped"), t
        if t.outcome == "failed":
            assert t.message.startswith("NotImplementedError"), (t.test, t.message)


def _graded_copy(tmp_path, assignment_id: str, old: str, new: str):
    a = _by_id(assignment_id)
    text = a.solution.read_text()
    assert text.count(old) == 1, f"{old!r} must appear once in {a.solution}"
    (tmp_path / a.solution.name).write_text(text.replace(old, new))
    (report,) = grade(tmp_path, only=[a.id])
    return report


def test_a_flipped_sign_loses_the_points_of_the_tests_that_cover_it(tmp_path):
    report = _graded_copy(tmp_path, "01_autograd", "sum_to_shape(grad * b, a.shape)",
                          "sum_to_shape(-grad * b, a.shape)")
    failed = {t.test: t for t in report.tests if t.outcome == "failed"}
    assert set(failed) == {"test_mul_backward", "test_mul_broadcast", "test_chain_of_functions"}
    assert report.score == report.maximum - sum(t.points for t in failed.values())
    for t in failed.values():  # gradcheck's message names the input and the element
        assert t.message.startswith("GradcheckError: gradcheck failed for input "), t.message
        assert "at element (" in t.message, t.message


# ------------------------------------------------------------- invalid submissions, CLI


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "minicnn.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)


def test_invalid_submissions_get_a_one_line_error(tmp_path, capsys):
    from minicnn.cli import main

    assert main(["homework", "grade", str(tmp_path)]) == 2
    assert "holds no assignment file" in cli_error(capsys)
    assert main(["homework", "grade", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in cli_error(capsys)
    name = ASSIGNMENTS[0].solution.name
    (tmp_path / name).write_text("def broken(:\n")
    assert main(["homework", "grade", str(tmp_path)]) == 2
    assert f"{name} line 1" in cli_error(capsys)
    (tmp_path / name).write_text("import a_module_that_does_not_exist\n")
    assert main(["homework", "grade", str(tmp_path)]) == 2
    error = cli_error(capsys)
    assert "does not import" in error and "a_module_that_does_not_exist" in error
    assert main(["homework", "grade", str(tmp_path), "--assignment", "99"]) == 2
    assert "unknown assignment" in cli_error(capsys)
    assert main(["homework", "build", str(ROOT / "README.md")]) == 2
    assert "not an empty folder" in cli_error(capsys)


def test_cli_grades_and_prints_the_table(built):
    student = built / "student" / ASSIGNMENTS[0].id
    result = _cli("homework", "grade", str(student))
    assert result.returncode == 0, result.stderr
    assert "NotImplementedError" in result.stdout and "total" in result.stdout
    assert f"0/{grade(ASSIGNMENTS[0].folder, only=[ASSIGNMENTS[0].id])[0].maximum}" \
        in result.stdout
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- notebooks


def test_build_ipynb_writes_valid_notebooks_with_nbgrader_markers(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("jupytext")
    build(tmp_path / "out", fmt="ipynb")
    for a in ASSIGNMENTS:
        instructor = nbformat.read(tmp_path / "out" / "instructor" / a.id / f"{a.name}.ipynb", 4)
        student = nbformat.read(tmp_path / "out" / "student" / a.id / f"{a.name}.ipynb", 4)
        nbformat.validate(instructor)
        nbformat.validate(student)
        solution_cells = [c for c in instructor.cells
                          if "### BEGIN SOLUTION" in _markers(c.source)]
        assert solution_cells, a.id
        for cell in solution_cells:
            assert cell.metadata["nbgrader"]["solution"] is True
            assert cell.cell_type == "code" and "### END SOLUTION" in _markers(cell.source)
        for cell in instructor.cells:
            if "### BEGIN HIDDEN TESTS" in _markers(cell.source):
                assert cell.metadata["nbgrader"]["grade"] is True
                assert cell.metadata["nbgrader"]["points"] >= 1
        ids = [c.metadata["nbgrader"]["grade_id"] for c in instructor.cells
               if "nbgrader" in c.metadata]
        assert len(ids) == len(set(ids))
        text = "\n".join(c.source for c in student.cells)
        assert "NotImplementedError" in text and not _markers(text)
        left = [s for s in solution_lines(a.solution.read_text()) if s in text]
        assert not left, left
        assert [c.metadata.get("nbgrader") for c in student.cells] == \
            [c.metadata.get("nbgrader") for c in instructor.cells]


def test_a_notebook_submission_is_graded(tmp_path):
    pytest.importorskip("nbformat")
    pytest.importorskip("jupytext")
    build(tmp_path / "out", fmt="ipynb")
    a = ASSIGNMENTS[0]
    folder = tmp_path / "submission"
    folder.mkdir()
    shutil.copy(tmp_path / "out" / "instructor" / a.id / f"{a.name}.ipynb", folder)
    (report,) = grade(folder, only=[a.id])
    assert report.file.endswith(".ipynb") and report.score == report.maximum


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "lessons").glob("[0-9]*.py")))
def test_every_lesson_opens_as_a_notebook(script):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("jupytext")
    from minicnn.homework import script_to_notebook

    nb = script_to_notebook((ROOT / "lessons" / script).read_text())
    nbformat.validate(nb)
    kinds = {c.cell_type for c in nb.cells}
    assert kinds == {"markdown", "code"}, (script, kinds)


def test_notebooks_without_jupytext_name_the_extra(monkeypatch):
    from minicnn.homework import script_to_notebook

    monkeypatch.setitem(sys.modules, "jupytext", None)
    with pytest.raises(ImportError, match=r'pip install "minicnn\[notebook\]"'):
        script_to_notebook("# %%\nx = 1\n")
