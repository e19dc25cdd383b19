"""Winograd F(2x2, 3x3) convolution (nn/functional/winograd.py) against PyTorch.

``conv2d`` picks Winograd on its own only for large layers; here ``set_conv_algorithm``
forces it onto small ones, so every edge is exercised: paddings that leave half tiles,
asymmetric 'same' padding, 1x1 outputs, one channel, only some gradients, strided views,
float32 and float64, on every backend; a hypothesis sweep; gradcheck in float64; and
the dispatch rule itself. (The retained-graph test of its pooled buffers is in
test_conv.py, beside im2col's.) The transform kernels are tested in
tests/backend/test_winograd_kernels.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minicnn
import minicnn.nn.functional as F
from minicnn.nn.functional import conv as conv_module
from minicnn.nn.functional import winograd
from minicnn.nn.functional.conv import ConvGeometry, set_conv_algorithm
from tests.conftest import AVAILABLE_BACKENDS, device_of
from tests.helpers import assert_close
from tests.nn.test_conv import _run_both


@pytest.fixture
def algorithm():
    """Call with a name to force that algorithm for the rest of the test."""
    previous = set_conv_algorithm("auto")
    yield set_conv_algorithm
    set_conv_algorithm(previous)


# (input shape, C_out, padding)
CASES = {
    "pad1-even": ((2, 3, 6, 8), 4, 1),
    "pad1-odd": ((2, 3, 7, 5), 2, 1),  # half tiles at the bottom and right
    "pad0": ((1, 2, 6, 7), 3, 0),
    "pad2": ((2, 1, 4, 3), 2, 2),
    "rect-pad": ((1, 3, 5, 6), 2, (0, 2)),
    "same": ((2, 2, 5, 4), 3, "same"),
    "one-pixel-out": ((2, 3, 3, 3), 2, 0),
    "one-channel": ((3, 1, 5, 5), 1, 1),
}


def _compare(x_shape, c_out, padding, dtype, device, bias=True, grads=(True, True, True),
             transform=None, seed=0):
    """conv2d with a 3x3 kernel against PyTorch: output and the gradients in ``grads``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((c_out, x_shape[1], 3, 3))
    b = rng.standard_normal(c_out) if bias else None
    for mine, theirs, name in _run_both("conv2d", x, w, b, dict(padding=padding), device, dtype,
                                        transform, seed, grads):
        assert_close(mine, theirs, dtype, msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_torch(backend, algorithm, case, dtype):
    algorithm("winograd")
    x_shape, c_out, padding = CASES[case]
    _compare(x_shape, c_out, padding, dtype, device_of(backend))


@pytest.mark.parametrize("grads", [(True, False, False), (False, True, False),
                                   (False, False, True), (True, True, False)])
def test_only_some_gradients(backend, algorithm, grads):
    algorithm("winograd")
    _compare((2, 3, 5, 6), 4, 1, np.float64, device_of(backend), grads=grads)


@pytest.mark.parametrize("grads", [(True, True, True), (False, True, False),
                                   (True, False, False)])
def test_in_chunks_of_images(backend, algorithm, monkeypatch, grads):
    """Big batches go in chunks (CHUNK_BYTES); here every image is a chunk of its own."""
    algorithm("winograd")
    monkeypatch.setattr(winograd, "CHUNK_BYTES", 1)
    assert winograd._chunks(3, 6, 2, 4, 8) == [(0, 1), (1, 2), (2, 3)]
    _compare((3, 2, 5, 6), 4, 1, np.float64, device_of(backend), grads=grads)


def test_without_bias(backend, algorithm):
    algorithm("winograd")
    _compare((2, 3, 5, 6), 4, 1, np.float32, device_of(backend), bias=False)


def test_non_contiguous_input_and_weight(backend, algorithm):
    algorithm("winograd")
    _compare((2, 3, 6, 5), 4, 1, np.float32, device_of(backend),
             transform=lambda x: x.permute(0, 1, 3, 2))
    rng = np.random.default_rng(3)
    w_t = rng.standard_normal((3, 4, 3, 3))  # (C_in, C_out, kh, kw), used permuted
    x = rng.standard_normal((2, 3, 6, 6))
    device = device_of(backend)
    y = F.conv2d(minicnn.tensor(x, device=device),
                 minicnn.tensor(w_t, device=device).permute(1, 0, 2, 3), padding=1)
    assert_close(y, TF.conv2d(torch.tensor(x), torch.tensor(w_t).permute(1, 0, 2, 3),
                              padding=1), np.float64)


def test_large_layer_float32_agrees_with_im2col(algorithm):
    """The auto choice on a layer of a ResNet-18's last stage: Winograd, equal to im2col and
    PyTorch in float32 (the rounding of a 2304-term sum, well inside the suite's tolerance)."""
    if "numba" not in AVAILABLE_BACKENDS:
        pytest.skip("auto picks Winograd only on a backend with compiled transforms")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 256, 8, 9)).astype(np.float32)
    w = (rng.standard_normal((256, 256, 3, 3)) / 48).astype(np.float32)
    geometry = ConvGeometry((3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    assert _algorithm_of(x, w, geometry) == conv_module.WINOGRAD
    wino = F.conv2d(minicnn.tensor(x), minicnn.tensor(w), padding=1)
    algorithm("im2col")
    direct = F.conv2d(minicnn.tensor(x), minicnn.tensor(w), padding=1)
    ref = TF.conv2d(torch.tensor(x), torch.tensor(w), padding=1)
    assert_close(wino, ref, np.float32)
    assert_close(direct, ref, np.float32)


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_sweep(backend, algorithm, data):
    algorithm("winograd")
    draw = data.draw
    padding = draw(st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)),
                             st.just("same")), "padding")
    pads = (1, 1) if padding == "same" else (
        (padding, padding) if isinstance(padding, int) else padding)
    h = draw(st.integers(max(1, 3 - 2 * pads[0]), 9), "H")
    w = draw(st.integers(max(1, 3 - 2 * pads[1]), 9), "W")
    x_shape = (draw(st.integers(1, 2), "N"), draw(st.integers(1, 4), "C_in"), h, w)
    _compare(x_shape, draw(st.integers(1, 4), "C_out"), padding, np.float64,
             device_of(backend), bias=draw(st.booleans(), "bias"))


@pytest.mark.parametrize("padding", [1, (0, 2)])
def test_gradcheck(backend, algorithm, padding):
    algorithm("winograd")
    device = device_of(backend)
    rng = np.random.default_rng(5)
    x, w, b = (minicnn.tensor(rng.standard_normal(s), dtype=np.float64, device=device,
                              requires_grad=True) for s in ((2, 3, 5, 4), (2, 3, 3, 3), (2,)))
    assert minicnn.gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=padding), [x, w, b])


# ---------------------------------------------------------------- the dispatch rule


def _algorithm_of(x, w, geometry):
    """The algorithm conv2d chooses (once per call) for arrays ``x`` and ``w``."""
    return conv_module._choose_algorithm(minicnn.backend_of(x), x.shape, w.shape, geometry)


def _uses_winograd(c_in, c_out, hw, **geometry):
    kernel = geometry.get("kernel", (3, 3))
    g = ConvGeometry(kernel, geometry.get("stride", (1, 1)), ((1, 1), (1, 1)),
                     geometry.get("dilation", (1, 1)), geometry.get("groups", 1))
    x = np.zeros((2, c_in, hw, hw), np.float32)
    w = np.zeros((c_out, c_in // g.groups, *kernel), np.float32)
    return _algorithm_of(x, w, g) == conv_module.WINOGRAD


def test_auto_uses_winograd_only_where_it_applies_and_pays(algorithm):
    if "numba" not in AVAILABLE_BACKENDS:
        pytest.skip("auto picks Winograd only on a backend with compiled transforms")
    # more input channels than the direct kernels take where Winograd pays
    big = 2 * conv_module.DIRECT_MAX_CHANNELS
    hw = 16  # big * big * hw * hw >= MIN_WORK
    assert big * big * hw * hw >= winograd.MIN_WORK
    with minicnn.use_backend("numpy"):  # reference transforms: slower than im2col
        assert not _uses_winograd(big, big, hw)
    with minicnn.use_backend("numba"):
        assert _uses_winograd(big, big, hw)
        # up to DIRECT_MAX_CHANNELS input channels on planes of 8x8 and more, the direct
        # kernels come first (conv.DIRECT_MIN_PIXELS); below 8x8 Winograd takes them
        assert not _uses_winograd(conv_module.DIRECT_MAX_CHANNELS, 4096, hw)
        assert _uses_winograd(conv_module.DIRECT_MAX_CHANNELS + 1, 4096, hw)
        assert not _uses_winograd(winograd.MIN_CHANNELS, 4096, 8)
        assert _uses_winograd(winograd.MIN_CHANNELS, 4096, 7)
        assert not _uses_winograd(winograd.MIN_CHANNELS - 1, 4096, 7)  # too few channels
        assert not _uses_winograd(4096, winograd.MIN_CHANNELS - 1, 7)
        assert not _uses_winograd(big, big, hw // 8)  # too little work: im2col is faster
        assert not _uses_winograd(big, big, hw, stride=(2, 2))  # Winograd does not apply
        assert not _uses_winograd(big, big, hw, dilation=(2, 1))
        assert not _uses_winograd(big, big, hw, groups=2)
        assert not _uses_winograd(big, big, hw, kernel=(5, 5))
        algorithm("im2col")
        assert not _uses_winograd(big, big, hw)
    algorithm("winograd")
    for name in AVAILABLE_BACKENDS:
        if name != "cupy":
            with minicnn.use_backend(name):
                assert _uses_winograd(1, 1, 16)
                assert not _uses_winograd(1, 1, 16, stride=(1, 2))


def test_set_conv_algorithm_returns_previous_and_rejects_unknown(algorithm):
    assert set_conv_algorithm("im2col") == "auto"
    assert set_conv_algorithm("winograd") == "im2col"
    with pytest.raises(ValueError, match=r"name must be one of .*'fft'"):
        set_conv_algorithm("fft")


# ---------------------------------------------------------------- transposed convolutions


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("padding", [0, 1, 2, (2, 0)])
def test_conv_transpose2d_stride_1_matches_torch(backend, algorithm, padding, dtype):
    """A 3x3 stride-1 transposed convolution runs as a flipped convolution, by Winograd."""
    algorithm("winograd")
    rng = np.random.default_rng(6)
    x, w, b = (rng.standard_normal(s) for s in ((2, 3, 5, 6), (3, 4, 3, 3), (4,)))
    results = _run_both("conv_transpose2d", x, w, b, dict(padding=padding), device_of(backend),
                        dtype)
    for mine, theirs, name in results:
        assert_close(mine, theirs, dtype, msg=name)
    assert results[0][0].grad_fn.name() == "Convolution2dBackward"  # it went through conv2d


def test_conv_transpose2d_winograd_gradcheck(backend, algorithm):
    algorithm("winograd")
    device = device_of(backend)
    rng = np.random.default_rng(7)
    x, w, b = (minicnn.tensor(rng.standard_normal(s), dtype=np.float64, device=device,
                              requires_grad=True) for s in ((2, 2, 4, 3), (2, 3, 3, 3), (3,)))
    assert minicnn.gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, padding=1), [x, w, b])


def test_conv_transpose2d_other_geometries_keep_col2im(algorithm):
    algorithm("winograd")
    x = minicnn.tensor(np.ones((1, 2, 8, 8)), requires_grad=True)
    w = minicnn.tensor(np.ones((2, 3, 3, 3)), requires_grad=True)
    for kwargs in (dict(stride=2), dict(padding=3), dict(dilation=2), dict(groups=2)):
        if "groups" in kwargs:
            w = minicnn.tensor(np.ones((2, 1, 3, 3)), requires_grad=True)
        y = F.conv_transpose2d(x, w, **kwargs)
        assert y.grad_fn.name() == "TransposedConvolution2dBackward", kwargs
