"""Lessons 06 and 09 run with --quick; their own assertions compare with PyTorch and check
that training works (loss falls, OneCycle reaches the target first)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "lesson, figures",
    [
        ("06_first_cnn.py", ["06_digits.png", "06_training.png", "06_filters.png"]),
        ("09_training_speed.py", ["09_onecycle.png", "09_time_to_accuracy.png"]),
    ],
)
def test_lesson_runs_quick(lesson, figures):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "lessons" / lesson), "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "all checks passed" in result.stdout
    for name in figures:
        path = ROOT / "lessons" / "out" / name
        assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
