"""Lesson 08 (the degradation problem) runs with ``--quick`` and writes its figure.

The lesson asserts its own claims: plain and residual networks of the same depth have the
same parameters, 19/55 convolutions + 1 fc, a residual block with a silent branch is the
identity, and (in the full run only) the 56-layer plain network ends with a higher training
error than the 20-layer one while the 56-layer ResNet does not. Here it runs in a fresh
interpreter as a student would. Budget: about 30-40 s on 2 cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "lessons" / "08_resnet_degradation.py"
FIGURE = ROOT / "lessons" / "out" / "08_degradation.png"


def test_lesson_08_runs_quick_and_writes_figure():
    started = time.time()
    env = dict(os.environ, MPLBACKEND="Agg")
    result = subprocess.run([sys.executable, str(SCRIPT), "--quick"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (
        f"lesson 08 --quick exited with {result.returncode}\n"
        f"--- stdout (tail) ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-5000:]}"
    )
    assert "all checks passed" in result.stdout, result.stdout[-2000:]
    for name in ("plain20", "plain56", "resnet20", "resnet56"):
        assert name in result.stdout  # every network trained and reported its errors
    assert FIGURE.is_file(), f"lesson 08 did not write {FIGURE}"
    assert FIGURE.stat().st_mtime >= started - 1, f"{FIGURE} is stale"
    data = FIGURE.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{FIGURE} is not a PNG file"
    assert len(data) > 10_000, f"{FIGURE} is suspiciously small ({len(data)} bytes)"


def test_lesson_08_is_jupytext_percent_with_quick_flag():
    source = SCRIPT.read_text()
    assert "format_name: percent" in source
    assert source.count("# %% [markdown]") >= 5, "a lesson explains before each code cell"
    assert "--quick" in source and "parse_known_args" in source
