"""Lesson 05 (pooling and normalization) runs end to end with ``--quick`` and writes its figures.

The lesson asserts its own claims against PyTorch (pooling outputs, switches and gradients,
batch-norm running statistics and eval outputs, the compact batch-norm backward, AlexNet's
and GoogLeNet's LRN); here it runs in a fresh interpreter, as a student would run it.
Budget: about 10 s on 2 cores (most of it importing torch and scikit-learn).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LESSON = ROOT / "lessons" / "05_pool_norm.py"
FIGURES = ["05_max_vs_avg.png", "05_batchnorm_running.png", "05_lrn.png"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_lesson_05_runs_and_writes_figures():
    started = time.time()
    result = subprocess.run(
        [sys.executable, str(LESSON), "--quick"], cwd=ROOT,
        env=dict(os.environ, MPLBACKEND="Agg"), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, (
        f"05_pool_norm.py --quick exited with {result.returncode}\n--- stdout (tail) ---\n"
        f"{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-5000:]}"
    )
    assert "lesson 05: all checks passed" in result.stdout, result.stdout[-2000:]
    for name in FIGURES:
        figure = ROOT / "lessons" / "out" / name
        assert figure.is_file(), f"the lesson did not write {figure}"
        assert figure.stat().st_mtime >= started - 1, f"{figure} is stale"
        data = figure.read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 10_000, f"{figure} is not a real PNG"


def test_lesson_05_is_jupytext_percent_with_quick_flag():
    source = LESSON.read_text()
    assert "format_name: percent" in source
    assert source.count("# %% [markdown]") >= 6, "a lesson explains before each code cell"
    assert "--quick" in source
