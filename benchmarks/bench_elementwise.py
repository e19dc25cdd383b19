"""Activation and padding speed: minicnn (every available backend) beside PyTorch.

    python benchmarks/bench_elementwise.py                 # CPU: numpy and numba backends vs torch
    python benchmarks/bench_elementwise.py --quick         # a fast smoke run (no JSON written)
    python benchmarks/bench_elementwise.py --device cuda   # GPU: the cupy backend vs torch on CUDA

Batch 32, 64 channels of 32x32 (8 MB of float32, the size of a CIFAR network's first
stage): ReLU, sigmoid, SiLU, leaky ReLU and hardswish (the ones that select per element,
see the ``where`` kernel in backend/numba_cpu.py), and reflect / replicate padding by 1.
Forward and forward+backward, interleaved rounds, medians; the timing machinery and the
table are ``bench_conv.py``'s. Results go to ``benchmarks/results/<device>-elementwise.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import minicnn  # noqa: E402, F401  (first: it sets the thread-pool defaults)

# isort: split
import torch.nn.functional as TF  # noqa: E402
from bench_conv import layer_case, main  # noqa: E402

import minicnn.nn.functional as F  # noqa: E402

C, HW = 64, 32


def _x(n):
    return {"x": (n, C, HW, HW)}


def _none(n):
    return 0


def _activation(name: str) -> dict:
    mine, theirs = getattr(F, name), getattr(TF, name)
    return layer_case(f"{name} {C}x{HW}x{HW}", _none, lambda x: mine(x), lambda x: theirs(x), _x)


def _pad(mode: str) -> dict:
    return layer_case(f"pad 1 {mode} {C}x{HW}x{HW}", _none,
                      lambda x: F.pad(x, (1, 1, 1, 1), mode=mode),
                      lambda x: TF.pad(x, (1, 1, 1, 1), mode=mode), _x)


CASES: list[dict] = [
    *(_activation(name) for name in ("relu", "sigmoid", "silu", "leaky_relu", "hardswish")),
    *(_pad(mode) for mode in ("reflect", "replicate")),
]


if __name__ == "__main__":
    main(cases=CASES, name="elementwise")
