"""What a grader uses (:func:`points`, :func:`load_submission`) and the pytest plugin that
records each test's points and outcome for :func:`minicnn.homework.grade`.

A grader is a pytest file (:func:`assert_close` compares arrays and names the first wrong
element)::

    from minicnn.homework import load_submission, points

    sub = load_submission("autograd")      # the student's autograd.py

    @points(2)
    def test_mul_backward():
        minicnn.gradcheck(sub.Mul.apply, [a, b])

Run by itself (``pytest lessons/assignments/01_autograd/grader.py``) it grades the reference
solution beside it; ``grade`` points it at a submission through ``MINICNN_HOMEWORK_SUBMISSION``.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import sys
from pathlib import Path

import numpy as np

SUBMISSION_ENV = "MINICNN_HOMEWORK_SUBMISSION"
RESULTS_ENV = "MINICNN_HOMEWORK_RESULTS"


def points(n: int):
    """Decorator: the test is worth ``n`` points (a test without it is worth 1)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"points: expected a positive int, got {n!r}")

    def mark(test):
        test.points = n
        return test

    return mark


def assert_close(name: str, got, want, tol: float = 1e-7) -> None:
    """Assert that ``got`` has ``want``'s shape and values (``rtol = atol = tol``); on failure
    the message names ``name`` and the first wrong element, e.g. ``conv2d backward dw:
    element (0, 1, 2, 0) is 0.25, expected -0.25 (3 of 108 elements differ)``."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{name}: shape {got.shape}, expected {want.shape}"
    bad = np.argwhere(~np.isclose(got, want, rtol=tol, atol=tol))
    if len(bad):
        e = tuple(int(i) for i in bad[0])
        raise AssertionError(f"{name}: element {e} is {got[e]:.6g}, expected {want[e]:.6g} "
                             f"({len(bad)} of {got.size} elements differ)")


def load_submission(name: str):
    """Import ``<name>.py`` from the submission folder (``$MINICNN_HOMEWORK_SUBMISSION``,
    else the calling grader's own folder: the reference solution) as module
    ``submission_<name>``. Its ``if __name__ == "__main__":`` blocks do not run."""
    folder = os.environ.get(SUBMISSION_ENV)
    if not folder:
        folder = str(Path(inspect.stack()[1].filename).resolve().parent)
    path = Path(folder) / f"{name}.py"
    module_name = f"submission_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    if not path.is_file():
        raise FileNotFoundError(f"submission file {path} not found")
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


# --- the pytest plugin (``-p minicnn.homework.plugin``): one record per test -------------

_points: dict[str, int] = {}
_records: list[dict] = []
_errors: list[str] = []


def _message(report) -> str:
    """The one line that says why a test failed or was skipped."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(longrepr).strip().splitlines()[-1]
    first, _, rest = text.partition(":")
    if "." in first and " " not in first:  # "minicnn.autograd.gradcheck.GradcheckError: ..."
        text = first.rsplit(".", 1)[1] + ":" + rest
    lines = [s.strip() for s in text.splitlines() if s.strip()]
    return " ".join(lines[:3]) if lines else "failed"


def pytest_collection_modifyitems(session, config, items):
    for item in items:
        _points[item.nodeid] = getattr(getattr(item, "function", None), "points", 1)


def pytest_collectreport(report):
    if report.failed:
        text = str(report.longrepr).strip().splitlines()
        errors = [s for s in text if s.startswith("E ")]
        _errors.append((errors[-1][1:].strip() if errors else text[-1]) if text else "error")


def pytest_runtest_logreport(report):
    done = report.when == "call" or (report.when == "setup" and not report.passed)
    if not done:
        return
    outcome = "skipped" if report.skipped else ("passed" if report.passed else "failed")
    _records.append({
        "test": report.nodeid.rsplit("::", 1)[-1],
        "points": _points.get(report.nodeid, 1),
        "outcome": outcome,
        "message": "" if report.passed else _message(report),
    })


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get(RESULTS_ENV)
    if path:
        Path(path).write_text(json.dumps({"tests": _records, "errors": _errors}, indent=1),
                              encoding="utf-8")
