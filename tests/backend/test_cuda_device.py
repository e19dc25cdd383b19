"""Tensors on "cuda": the round trip, and a small network's forward and backward against
PyTorch on CUDA (on PyTorch's CPU where it has no GPU: the CPU emulation of CuPy).

Marked ``gpu``: ``pytest -m gpu`` runs these on a GPU machine (benchmarks/gpu_check.sh).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import minicnn
import minicnn.nn.functional as F
from minicnn.backend import backend_of
from tests.helpers import assert_close, to_numpy

pytestmark = pytest.mark.gpu
TORCH_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_to_cuda_and_back_keeps_values_dtype_and_device(dtype):
    a = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(dtype)
    x = minicnn.tensor(a)
    y = x.to("cuda")
    assert y.device == "cuda" and y.dtype == dtype and backend_of(y.numpy()).name != "cupy"
    z = y.to("cpu")
    assert z.device == "cpu" and z.dtype == dtype
    np.testing.assert_array_equal(z.numpy(), a)
    np.testing.assert_array_equal(y.numpy(), a)  # numpy() copies to the host


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_pool_norm_forward_backward_match_torch_on_cuda(dtype):
    rng = np.random.default_rng(1)
    arrays = {"x": rng.standard_normal((4, 3, 12, 12)), "w": rng.standard_normal((8, 3, 3, 3)),
              "b": rng.standard_normal(8), "dw": rng.standard_normal((8, 1, 3, 3)),
              "gamma": rng.standard_normal(8), "beta": rng.standard_normal(8)}
    arrays = {k: v.astype(dtype) for k, v in arrays.items()}
    mine = {k: minicnn.tensor(v, device="cuda", requires_grad=True) for k, v in arrays.items()}
    theirs = {k: torch.tensor(v, device=TORCH_DEVICE, requires_grad=True)
              for k, v in arrays.items()}

    def net(f, nn_f, t):  # conv -> depthwise conv -> batch norm -> relu -> max pool -> avg pool
        h = f.conv2d(t["x"], t["w"], t["b"], padding=1)
        h = f.conv2d(h, t["dw"], None, padding=1, groups=8)
        h = f.batch_norm(h, None, None, t["gamma"], t["beta"], training=True)
        h = f.max_pool2d(f.relu(h), 2)
        return f.avg_pool2d(h, 3, stride=1, padding=1)

    out = net(F, None, mine)
    ref = net(TF, None, theirs)
    assert out.device == "cuda"
    assert_close(out, ref, dtype)
    grad = rng.standard_normal(tuple(ref.shape)).astype(dtype)
    out.backward(minicnn.tensor(grad, device="cuda"))
    ref.backward(torch.tensor(grad, device=TORCH_DEVICE))
    for k in arrays:
        assert mine[k].grad.device == "cuda"
        assert_close(mine[k].grad, theirs[k].grad, dtype,
                     **({"rtol": 1e-3, "atol": 1e-4} if dtype == np.float32 else {}),
                     msg=f"gradient of {k}")
    assert to_numpy(out).dtype == dtype
