"""``minicnn.host_memory``: after ``import minicnn``, memory one step frees is reused by the
next without page faults (counted by the kernel: ``getrusage``'s minor faults), where a
plain NumPy process faults it in again every step."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from minicnn import host_memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# A training step in miniature: ten 3 MB "activations" made and touched, then all freed;
# prints the page faults per step of steps 2-5 as a fraction of the pages the step touches.
STEPS = """
import resource, numpy as np
def step():
    acts = [np.ones(3 << 18, dtype=np.float32) for _ in range(10)]  # 10 x 3 MB
    del acts
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    step()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(faults / 4 / (10 * (3 << 20) // 4096))
"""


def _fault_fraction(prelude: str, env=None) -> float:
    out = subprocess.run([sys.executable, "-c", prelude + STEPS], capture_output=True,
                         text=True, check=True, env=env)
    return float(out.stdout.strip())


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_freed_memory_is_reused_without_page_faults():
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("MALLOC_")}
    plain = _fault_fraction("", env)
    with_minicnn = _fault_fraction("import minicnn\n", env)
    assert plain > 0.5, plain  # glibc's defaults: each step faults most of its pages in again
    assert with_minicnn < 0.05, with_minicnn


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_the_users_own_malloc_settings_stand(monkeypatch):
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000000")
    assert host_memory.keep_freed_memory() is False
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    assert host_memory.keep_freed_memory() is True


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(platform, "libc_ver", lambda: ("musl", "1.2"))
    assert host_memory.keep_freed_memory() is False
