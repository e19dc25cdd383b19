"""Pooling and normalization speed: minicnn (every available backend) beside PyTorch.

    python benchmarks/bench_pool_norm.py                 # CPU: numpy and numba backends vs torch
    python benchmarks/bench_pool_norm.py --quick         # a fast smoke run (no JSON written)
    python benchmarks/bench_pool_norm.py --device cuda   # GPU: the cupy backend vs torch on CUDA

Batch 32, 64 channels of 32x32 (the first stage of a CIFAR network): max pooling 3x3
stride 2 (ResNet's stem pooling, padding 1), average pooling 2x2, batch norm in training
mode (batch statistics, running statistics updated, input/weight/bias gradients) and
AlexNet's LRN. Forward and forward+backward, interleaved rounds, medians; the timing
machinery and the table are ``bench_conv.py``'s. Results go to
``benchmarks/results/<device>-pool_norm.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import minicnn  # noqa: E402  (first: it sets the thread-pool defaults)

# isort: split
import torch  # noqa: E402
import torch.nn.functional as TF  # noqa: E402
from bench_conv import layer_case, main  # noqa: E402

import minicnn.nn.functional as F  # noqa: E402

C, HW = 64, 32


def _x(n):
    return {"x": (n, C, HW, HW)}


def _bn_params(n):
    return {"x": (n, C, HW, HW), "weight": (C,), "bias": (C,)}


def _mini_bn(x, weight, bias):
    # fresh running statistics each call (64 floats: negligible), updated in place
    stats = minicnn.zeros(C, device=x.device), minicnn.ones(C, device=x.device)
    return F.batch_norm(x, *stats, weight, bias, training=True)


def _torch_bn(x, weight, bias):
    stats = torch.zeros(C, device=x.device), torch.ones(C, device=x.device)
    return TF.batch_norm(x, *stats, weight, bias, training=True)


def _none(n):
    return 0


CASES: list[dict] = [
    layer_case("maxpool3x3 s2 p1 64x32x32", _none,
               lambda x: F.max_pool2d(x, 3, 2, 1), lambda x: TF.max_pool2d(x, 3, 2, 1), _x),
    layer_case("avgpool2x2 64x32x32", _none,
               lambda x: F.avg_pool2d(x, 2), lambda x: TF.avg_pool2d(x, 2), _x),
    layer_case("batchnorm2d train 64x32x32", _none, _mini_bn, _torch_bn, _bn_params),
    layer_case("LRN n=5 (AlexNet) 64x32x32", _none,
               lambda x: F.local_response_norm(x, 5, 1e-4, 0.75, 2.0),
               lambda x: TF.local_response_norm(x, 5, 1e-4, 0.75, 2.0), _x),
]


if __name__ == "__main__":
    main(cases=CASES, name="pool_norm")
