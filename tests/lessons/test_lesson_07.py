"""Lesson 07 (the model zoo) runs with ``--quick`` and writes its figure.

The lesson asserts its own claims: ResNet-18...152 mult-adds against He et al. (v1.5 within
2 %/10 %, the paper's v1 stride placement within 2 %), ResNet-50 25.5 M vs ResNeXt-50 25.0 M
parameters, SqueezeNet ~50x fewer parameters than AlexNet, EfficientNet's monotone growth.
Here it runs in a fresh interpreter as a student would. Budget: about 20-30 s on 2 cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "lessons" / "07_model_zoo.py"
FIGURE = ROOT / "lessons" / "out" / "07_params_vs_madds.png"


def test_lesson_07_runs_quick_and_writes_figure():
    started = time.time()
    env = dict(os.environ, MPLBACKEND="Agg")
    result = subprocess.run([sys.executable, str(SCRIPT), "--quick"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (
        f"lesson 07 --quick exited with {result.returncode}\n"
        f"--- stdout (tail) ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-5000:]}"
    )
    assert "lesson 07: all checks passed" in result.stdout, result.stdout[-2000:]
    for name in ("resnet50", "resnext50_32x4d", "squeezenet1_0", "efficientnet_b0"):
        assert name in result.stdout  # every model of the subset is in the table
    assert FIGURE.is_file(), f"lesson 07 did not write {FIGURE}"
    assert FIGURE.stat().st_mtime >= started - 1, f"{FIGURE} is stale"
    data = FIGURE.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{FIGURE} is not a PNG file"
    assert len(data) > 10_000, f"{FIGURE} is suspiciously small ({len(data)} bytes)"


def test_lesson_07_is_jupytext_percent_with_quick_flag():
    source = SCRIPT.read_text()
    assert "format_name: percent" in source
    assert source.count("# %% [markdown]") >= 5, "a lesson explains before each code cell"
    assert "--quick" in source and "parse_known_args" in source
