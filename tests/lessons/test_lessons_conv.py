"""Lessons 03 (convolution) and 04 (grouped and depthwise convolution) run with ``--quick``.

A lesson is its own test: it asserts its claims against PyTorch (loops, im2col and the minicnn
kernels give torch's outputs and gradients; the cost formulas match counts taken from real
layers). Here we run each in a fresh interpreter, as a student would, and check that it exits
cleanly and writes real PNG figures.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LESSONS = ROOT / "lessons"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

CASES = {
    "03_convolution.py": ["03_im2col.png", "03_conv_timing.png"],
    "04_grouped_depthwise.py": ["04_cost.png"],
}


@pytest.mark.parametrize("script", sorted(CASES))
def test_lesson_runs_and_writes_figures(script):
    started = time.time()
    env = dict(os.environ, MPLBACKEND="Agg")
    result = subprocess.run([sys.executable, str(LESSONS / script), "--quick"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (
        f"{script} --quick exited with {result.returncode}\n"
        f"--- stdout (tail) ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-5000:]}"
    )
    assert "all checks passed" in result.stdout, result.stdout[-2000:]
    for name in CASES[script]:
        figure = LESSONS / "out" / name
        assert figure.is_file(), f"{script} did not write {figure}"
        assert figure.stat().st_mtime >= started - 1, f"{figure} is stale"
        data = figure.read_bytes()
        assert data[:8] == PNG_SIGNATURE, f"{figure} is not a PNG file"
        assert len(data) > 10_000, f"{figure} is suspiciously small ({len(data)} bytes)"


@pytest.mark.parametrize("script", sorted(CASES))
def test_lesson_is_jupytext_percent_with_quick_flag(script):
    source = (LESSONS / script).read_text()
    assert "format_name: percent" in source
    assert source.count("# %% [markdown]") >= 5, "a lesson explains before each code cell"
    assert "--quick" in source
