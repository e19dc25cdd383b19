"""L6: course homework. Assignments live in ``lessons/assignments/NN_topic/``: a solution file in
Jupytext percent format with nbgrader's markers around what students write, and ``grader.py``,
pytest tests worth points.

* :func:`build` writes the student version of every assignment (each ``### BEGIN SOLUTION`` /
  ``### END SOLUTION`` region replaced by ``raise NotImplementedError(...)``, docstring and
  signature kept; ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS`` regions removed) and the
  instructor version, as ``.py`` or as notebooks nbgrader accepts (:mod:`.source`,
  :mod:`.notebooks`).
* :func:`grade` runs an assignment's grader against a student's files in a fresh interpreter
  and returns the score table (:mod:`.grading`).
* :func:`points`, :func:`load_submission` and :func:`assert_close` are what a grader uses
  (:mod:`.plugin`).

From the command line: ``minicnn homework build OUT [--format py|ipynb]`` and
``minicnn homework grade SUBMISSION_DIR``.
"""

from minicnn.homework.grading import GradeReport, TestResult, format_report, grade
from minicnn.homework.notebooks import script_to_notebook
from minicnn.homework.plugin import assert_close, load_submission, points
from minicnn.homework.source import (
    Assignment,
    build,
    find_assignments,
    solution_lines,
    student_version,
)

__all__ = [
    "Assignment", "GradeReport", "TestResult", "assert_close", "build", "find_assignments",
    "format_report", "grade", "load_submission", "points", "script_to_notebook", "solution_lines",
    "student_version",
]
