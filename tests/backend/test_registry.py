"""The backend registry: names, switching (use_backend, MINICNN_BACKEND), backend_of,
the CUDA install hint, and the thread-pool defaults minicnn sets on import."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import minicnn
from minicnn import backend as B
from minicnn.backend import reference
from tests.conftest import AVAILABLE_BACKENDS


def _run(code: str, **env) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (the venv's python); ``env`` changes, None unsets."""
    environ = dict(os.environ)
    for key, value in env.items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=120
    )


def test_get_backend_by_name():
    numpy_backend = B.get_backend("numpy")
    assert (
        numpy_backend.name == "numpy" and numpy_backend.xp is np and numpy_backend.device == "cpu"
    )
    assert B.get_backend("numpy") is numpy_backend  # built once, then cached
    assert repr(numpy_backend) == "Backend(name='numpy', device='cpu')"
    assert numpy_backend.overrides() == []  # the reference backend overrides nothing
    for name in reference.KERNELS:  # every reference kernel is reachable as an attribute
        assert getattr(numpy_backend, name) is reference.KERNELS[name]


@pytest.mark.skipif("numba" not in AVAILABLE_BACKENDS, reason="numba not importable")
def test_numba_backend_overrides_some_kernels_and_falls_back_for_the_rest():
    from minicnn.backend import numba_cpu

    nb = B.get_backend("numba")
    assert nb.name == "numba" and nb.xp is np and nb.device == "cpu"
    assert set(nb.overrides()) == {
        k for k in numba_cpu.KERNELS if numba_cpu.KERNELS[k] is not reference.KERNELS.get(k)
    }
    assert "index_add" in nb.overrides()
    assert nb.softmax is reference.softmax  # not overridden: the reference one
    assert set(nb.kernels) >= set(reference.KERNELS)


def test_unknown_names():
    with pytest.raises(
        ValueError, match=r"backend must be one of 'numpy', 'numba', 'cupy', got 'torch'"
    ):
        B.get_backend("torch")
    with pytest.raises(
        AttributeError, match=r"backend 'numpy' has no kernel 'no_such_kernel'; known kernels"
    ):
        _ = B.get_backend("numpy").no_such_kernel


def test_use_backend_nests_and_restores():
    outer = B.current_backend().name
    with minicnn.use_backend("numpy") as numpy_backend:
        assert numpy_backend.name == "numpy" and B.current_backend().name == "numpy"
        if "numba" in AVAILABLE_BACKENDS:
            with minicnn.use_backend("numba"):
                assert B.current_backend().name == "numba"
            assert B.current_backend().name == "numpy"
    assert B.current_backend().name == outer


def test_use_backend_restores_after_an_exception():
    outer = B.current_backend().name
    with pytest.raises(KeyError), minicnn.use_backend("numpy"):
        raise KeyError("boom")
    assert B.current_backend().name == outer


def test_use_backend_refuses_cupy_and_unknown_names():
    with pytest.raises(
        ValueError, match=r"use_backend\(name\) takes one of .*got 'cupy'.*tensor.to\('cuda'\)"
    ):
        with minicnn.use_backend("cupy"):
            pass
    with pytest.raises(ValueError, match="got 'fast'"):
        with minicnn.use_backend("fast"):
            pass


def test_set_backend_changes_the_default():
    before = B._cpu_stack[0] if B._cpu_stack else B.current_backend().name
    try:
        assert B.set_backend("numpy").name == "numpy"
        assert B.current_backend().name == "numpy"
    finally:
        B.set_backend(before)
    with pytest.raises(ValueError, match=r"set_backend\(name\) takes one of"):
        B.set_backend("cupy")


def test_backend_of_follows_the_current_backend_for_numpy_arrays():
    a = np.zeros(3)
    with minicnn.use_backend("numpy"):
        assert B.backend_of(a).name == "numpy"
        assert B.backend_of(a, 2.0, None).name == "numpy"
    if "numba" in AVAILABLE_BACKENDS:
        with minicnn.use_backend("numba"):
            assert B.backend_of(a).name == "numba"
    assert B.backend_of(a) is B.current_backend()


def test_default_backend_is_numba_when_it_imports():
    out = _run("import minicnn.backend as b; print(b.current_backend().name)", MINICNN_BACKEND=None)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ("numba" if "numba" in AVAILABLE_BACKENDS else "numpy")


def test_minicnn_backend_environment_variable():
    code = (
        "import numpy as np, minicnn, minicnn.backend as b\n"
        "print(b.current_backend().name, b.backend_of(np.zeros(2)).name)"
    )
    out = _run(code, MINICNN_BACKEND="numpy")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["numpy", "numpy"]
    out = _run("import minicnn.backend as b; b.current_backend()", MINICNN_BACKEND="gpu")
    assert out.returncode != 0
    assert "MINICNN_BACKEND must be one of ('numpy', 'numba'), got 'gpu'" in out.stderr


def test_devices():
    assert B.normalize_device(None) == "cpu"
    assert B.normalize_device("cuda:1") == "cuda"
    with pytest.raises(ValueError, match=r"device must be 'cpu' or 'cuda' .*got 'tpu'"):
        B.normalize_device("tpu")
    a = np.ones(2)
    assert B.to_device(a, "cpu") is a
    assert minicnn.ones(2).device == "cpu"


def test_cuda_without_cupy_or_gpu_names_the_install_command(without_cupy):
    hint = 'pip install "minicnn[gpu]"'
    for attempt in (
        lambda: minicnn.ones(2).to("cuda"),
        lambda: minicnn.ones(2).cuda(),
        lambda: minicnn.zeros(2, device="cuda"),
        lambda: B.get_backend("cupy"),
        lambda: minicnn.tensor([1.0], device="cuda:0"),
    ):
        with pytest.raises(RuntimeError, match="CUDA was asked for") as info:
            attempt()
        assert hint in str(info.value)


@pytest.mark.gpu
def test_cuda_round_trip_keeps_the_graph():
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    y = x.to("cuda")
    assert y.device == "cuda" and B.backend_of(y.array).name == "cupy"
    (y * y).sum().backward()
    assert x.grad.device == "cpu"
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


THREAD_SETTINGS = (
    "import os, minicnn\n"
    "print(os.environ['NUMBA_THREADING_LAYER_PRIORITY'].replace(' ', ','),"
    " os.environ['OPENBLAS_THREAD_TIMEOUT'])"
)


def test_import_sets_thread_pool_defaults():
    code = THREAD_SETTINGS
    out = _run(code, NUMBA_THREADING_LAYER_PRIORITY=None, OPENBLAS_THREAD_TIMEOUT=None)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["omp,workqueue,tbb", "4"]


def test_import_keeps_the_users_own_thread_settings():
    code = THREAD_SETTINGS
    out = _run(code, NUMBA_THREADING_LAYER_PRIORITY="workqueue omp tbb",
               OPENBLAS_THREAD_TIMEOUT="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["workqueue,omp,tbb", "1"]


def test_importing_minicnn_does_not_import_cupy():
    out = _run("import sys, minicnn; minicnn.ones(2) + 1; print('cupy' in sys.modules)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_has_own_tells_compiled_kernels_from_the_reference():
    assert not minicnn.get_backend("numpy").has_own("im2col")
    assert not minicnn.get_backend("numpy").has_own("no_such_kernel")
    if "numba" in AVAILABLE_BACKENDS:
        numba_backend = minicnn.get_backend("numba")
        assert numba_backend.has_own("im2col")
        assert numba_backend.has_own("winograd_input_transform")
        assert not numba_backend.has_own("adaptive_avg_pool2d")  # the reference serves numba
