"""conv2d and conv_transpose2d against PyTorch: forward, input/weight/bias gradients.

* fixed cases on every backend, float32 and float64 (general im2col path, grouped,
  depthwise with a channel multiplier, 1x1 fast path, 'same' with asymmetric padding,
  transposed convolutions with output_padding), plus non-contiguous inputs;
* hypothesis sweeps over every geometry argument, float64, zero mismatches allowed;
* ``minicnn.gradcheck`` in float64;
* one test per bad input, checking the message.

Tolerances: the suite's ``tol(dtype)`` (float32 rtol 1e-4 atol 1e-5, float64 rtol 1e-10
atol 1e-12); the sums run in a different order than PyTorch's, well inside both.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minicnn
import minicnn.nn.functional as F
from tests.conftest import AVAILABLE_BACKENDS, device_of
from tests.helpers import assert_close, tol

pytestmark = pytest.mark.filterwarnings(
    "ignore:Using padding=.same. with even kernel lengths:UserWarning")  # torch, not us

DTYPES = [np.float32, np.float64]

# (input shape, weight shape, keyword arguments)
CONV_CASES = {
    "plain": ((2, 3, 7, 8), (4, 3, 3, 3), {}),
    "stride-pad-dilation": ((2, 3, 9, 8), (5, 3, 3, 2),
                            dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1))),
    "grouped": ((2, 6, 7, 7), (4, 3, 3, 3), dict(groups=2, padding=1, stride=2)),
    "depthwise": ((2, 4, 7, 6), (4, 1, 3, 3), dict(groups=4, padding=1)),
    "depthwise-multiplier": ((2, 3, 8, 7), (6, 1, 3, 2), dict(groups=3, stride=(1, 2),
                                                              padding=(2, 1), dilation=(2, 1))),
    "pointwise": ((2, 6, 5, 7), (4, 6, 1, 1), {}),
    "pointwise-strided-grouped": ((2, 6, 7, 8), (4, 3, 1, 1), dict(stride=2, groups=2)),
    "pointwise-padded": ((2, 3, 4, 5), (2, 3, 1, 1), dict(padding=1)),
    "same-even-kernel": ((2, 3, 6, 7), (4, 3, 2, 4), dict(padding="same", dilation=(1, 3))),
    "valid": ((1, 2, 5, 5), (3, 2, 5, 2), dict(padding="valid")),
}

TRANSPOSE_CASES = {
    "plain": ((2, 4, 5, 6), (4, 3, 3, 3), {}),
    "stride-output-padding": ((2, 4, 5, 6), (4, 3, 3, 3),
                              dict(stride=2, padding=1, output_padding=1)),
    "rectangular": ((2, 4, 5, 4), (4, 2, 3, 2), dict(stride=(2, 3), padding=(1, 0),
                                                     output_padding=(1, 2), dilation=(1, 2))),
    "output-padding-below-dilation": ((1, 2, 4, 4), (2, 3, 3, 3),
                                      dict(output_padding=1, dilation=2)),
    "grouped": ((2, 4, 5, 6), (4, 2, 3, 3), dict(stride=2, padding=1, groups=2)),
    "depthwise": ((2, 4, 5, 6), (4, 1, 3, 3), dict(stride=2, padding=1, groups=4)),
    "pointwise": ((2, 4, 5, 6), (4, 3, 1, 1), dict(stride=2, output_padding=1)),
}


def _run_both(op, x, w, b, kwargs, device, dtype, transform=None, seed=0,
              grads=(True, True, True)):
    """Forward and backward in minicnn and torch; returns [(minicnn, torch, name), ...] for
    the output and the gradient of every input that requires one (``grads``: input, weight,
    bias); the others must get no gradient."""
    rng = np.random.default_rng(seed)
    arrays = [a.astype(dtype) for a in (x, w, b) if a is not None]
    m = [minicnn.tensor(a, device=device, requires_grad=r)
         for a, r in zip(arrays, grads, strict=False)]
    t = [torch.tensor(a, requires_grad=r) for a, r in zip(arrays, grads, strict=False)]
    mx, tx = (transform(m[0]), transform(t[0])) if transform else (m[0], t[0])
    mop, top = (F.conv2d, TF.conv2d) if op == "conv2d" else (F.conv_transpose2d,
                                                             TF.conv_transpose2d)
    mb, tb = (m[2], t[2]) if b is not None else (None, None)
    my = mop(mx, m[1], mb, **kwargs)
    ty = top(tx, t[1], tb, **kwargs)
    assert my.shape == tuple(ty.shape)
    assert my.dtype == dtype
    g = rng.standard_normal(my.shape).astype(dtype)
    my.backward(minicnn.tensor(g, device=device))
    ty.backward(torch.tensor(g))
    out = [(my, ty, "output")]
    for mi, ti, name, needed in zip(m, t, ("input", "weight", "bias"), grads, strict=False):
        if needed:
            out.append((mi.grad, ti.grad, f"grad of {name}"))
        else:
            assert mi.grad is None, f"grad of {name}"
    return out


def _random_case(x_shape, w_shape, transposed, with_bias=True, seed=0):
    rng = np.random.default_rng(seed)
    c_out = w_shape[1] if transposed else w_shape[0]
    return (rng.standard_normal(x_shape), rng.standard_normal(w_shape),
            rng.standard_normal(c_out) if with_bias else None)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv2d_matches_torch(backend, case, dtype):
    x_shape, w_shape, kwargs = CONV_CASES[case]
    x, w, b = _random_case(x_shape, w_shape, transposed=False)
    for mine, theirs, name in _run_both("conv2d", x, w, b, kwargs, device_of(backend), dtype):
        assert_close(mine, theirs, dtype, msg=f"{case}: {name}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(TRANSPOSE_CASES))
def test_conv_transpose2d_matches_torch(backend, case, dtype):
    x_shape, w_shape, kwargs = TRANSPOSE_CASES[case]
    x, w, _ = _random_case(x_shape, w_shape, transposed=True)
    b = np.random.default_rng(1).standard_normal(w_shape[1] * kwargs.get("groups", 1))
    for mine, theirs, name in _run_both("conv_transpose2d", x, w, b, kwargs,
                                        device_of(backend), dtype):
        assert_close(mine, theirs, dtype, msg=f"{case}: {name}")


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
def test_without_bias_and_only_some_gradients(backend, op):
    """bias=None, and inputs that do not require grad get no gradient (and no work)."""
    rng = np.random.default_rng(0)
    device = device_of(backend)
    x = minicnn.tensor(rng.standard_normal((2, 4, 6, 6)), device=device)
    w = minicnn.tensor(rng.standard_normal((4, 4, 3, 3)), device=device, requires_grad=True)
    fn = getattr(F, op)
    tfn = getattr(TF, op)
    y = fn(x, w, stride=2)
    y.sum().backward()
    tw = torch.tensor(w.detach().numpy(), requires_grad=True)
    tfn(torch.tensor(x.numpy()), tw, stride=2).sum().backward()
    assert x.grad is None
    assert_close(w.grad, tw.grad)
    with minicnn.no_grad():
        z = fn(x, w, stride=2)
    assert z.grad_fn is None
    assert_close(z, y.detach())


def _permuted(t):
    """A non-contiguous view of the same values: the stored array is (N, C, W, H)."""
    return t.permute(0, 1, 3, 2)


@pytest.mark.parametrize("case", ["plain", "depthwise-multiplier", "pointwise-strided-grouped"])
def test_conv2d_non_contiguous_input(backend, case):
    x_shape, w_shape, kwargs = CONV_CASES[case]
    x, w, b = _random_case((x_shape[0], x_shape[1], x_shape[3], x_shape[2]), w_shape, False)
    for mine, theirs, name in _run_both("conv2d", x, w, b, kwargs,
                                        device_of(backend), np.float64, transform=_permuted):
        assert_close(mine, theirs, np.float64, msg=f"{case}: {name}")


def test_conv_transpose2d_non_contiguous_input(backend):
    x, w, b = _random_case((2, 4, 6, 5), (4, 3, 3, 3), True)
    kwargs = dict(stride=2, padding=1, output_padding=1)
    for mine, theirs, name in _run_both("conv_transpose2d", x, w, b, kwargs,
                                        device_of(backend), np.float64, transform=_permuted):
        assert_close(mine, theirs, np.float64, msg=name)


def test_conv2d_non_contiguous_weight(backend):
    rng = np.random.default_rng(0)
    device = device_of(backend)
    w_t = rng.standard_normal((3, 4, 3, 3))  # stored transposed, used as (4, 3, 3, 3)
    mw = minicnn.tensor(w_t, device=device).permute(1, 0, 2, 3)
    x = rng.standard_normal((2, 3, 6, 6))
    y = F.conv2d(minicnn.tensor(x, device=device), mw, padding=1)
    ref = TF.conv2d(torch.tensor(x), torch.tensor(w_t).permute(1, 0, 2, 3), padding=1)
    assert_close(y, ref, np.float64)


# ---------------------------------------------------------------- hypothesis sweeps

SWEEP = settings(max_examples=40, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


@contextlib.contextmanager
def _chunk_bytes(value: int):
    """im2col's chunk size (conv.CHUNK_BYTES) set to ``value`` inside the block."""
    from minicnn.nn.functional import conv as conv_module

    previous, conv_module.CHUNK_BYTES = conv_module.CHUNK_BYTES, value
    try:
        yield
    finally:
        conv_module.CHUNK_BYTES = previous


@contextlib.contextmanager
def _conv_algorithm(name: str):
    """``set_conv_algorithm(name)`` inside the block."""
    from minicnn.nn.functional.conv import set_conv_algorithm

    previous = set_conv_algorithm(name)
    try:
        yield
    finally:
        set_conv_algorithm(previous)


def _check_sweep(op, x_shape, w_shape, kwargs, with_bias, device, chunk_bytes, algorithm):
    transposed = op == "conv_transpose2d"
    x, w, b = _random_case(x_shape, w_shape, transposed, with_bias)
    if with_bias:
        c_out = w_shape[1] * kwargs["groups"] if transposed else w_shape[0]
        b = np.random.default_rng(2).standard_normal(c_out)
    with _chunk_bytes(chunk_bytes), _conv_algorithm(algorithm):
        results = _run_both(op, x, w, b, kwargs, device, np.float64)
    for mine, theirs, name in results:
        assert_close(mine, theirs, np.float64,
                     msg=f"{x_shape} {w_shape} {kwargs} chunks of {chunk_bytes} B, "
                         f"{algorithm}: {name}")


# im2col's chunks of images: every image its own chunk (1 byte), chunks of two images of
# the sweep's largest column matrices (4 KiB), and the default (the whole small batch)
CHUNK_SIZES = st.sampled_from([1, 4096, 6 << 20])
# "auto" leaves the sweep's small layers to im2col; "direct" runs the direct kernels (numba:
# the dense ones for stride 1, the grouped loops for the rest; other backends: reference)
ALGORITHMS = st.sampled_from(["auto", "direct"])


@SWEEP
@given(data=st.data())
def test_conv2d_sweep(backend, data):
    draw = data.draw
    groups = draw(st.integers(1, 3), "groups")
    c_in = groups * draw(st.integers(1, 2), "in per group")
    c_out = groups * draw(st.integers(1, 3), "out per group")
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    choices = [st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)),
               st.just("valid")]
    if stride == (1, 1):
        choices.append(st.just("same"))
    padding = draw(st.one_of(*choices), "padding")
    if padding == "same":  # pads dilation*(kernel-1) in total: any input size fits
        need = (1, 1)
    else:  # the smallest input the dilated kernel fits in, once padded
        pads = (0, 0) if padding == "valid" else (
            (padding, padding) if isinstance(padding, int) else padding)
        need = tuple(max(1, d * (k - 1) + 1 - 2 * p)
                     for d, k, p in zip(dilation, kernel, pads, strict=True))
    h = draw(st.integers(need[0], need[0] + 5), "H")
    w = draw(st.integers(need[1], need[1] + 5), "W")
    n = draw(st.integers(1, 3), "N")
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    _check_sweep("conv2d", (n, c_in, h, w), (c_out, c_in // groups, *kernel), kwargs,
                 draw(st.booleans(), "bias"), device_of(backend), draw(CHUNK_SIZES, "chunk"),
                 draw(ALGORITHMS, "algorithm"))


@SWEEP
@given(data=st.data())
def test_conv_transpose2d_sweep(backend, data):
    draw = data.draw
    groups = draw(st.integers(1, 3), "groups")
    c_in = groups * draw(st.integers(1, 2), "in per group")
    out_per_group = draw(st.integers(1, 3), "out per group")
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1))
                           for s, d in zip(stride, dilation, strict=True))
    size = []
    for s, p, d, k, a in zip(stride, padding, dilation, kernel, output_padding,
                                 strict=True):
        lo = 1
        while (lo - 1) * s - 2 * p + d * (k - 1) + a + 1 < 1:
            lo += 1
        size.append(draw(st.integers(lo, lo + 4)))
    n = draw(st.integers(1, 3), "N")
    kwargs = dict(stride=stride, padding=padding, output_padding=output_padding,
                  dilation=dilation, groups=groups)
    _check_sweep("conv_transpose2d", (n, c_in, *size), (c_in, out_per_group, *kernel),
                 kwargs, draw(st.booleans(), "bias"), device_of(backend),
                 draw(CHUNK_SIZES, "chunk"), draw(ALGORITHMS, "algorithm"))


# ---------------------------------------------------------------- im2col in chunks of images


def test_image_chunks_split_by_column_bytes():
    """conv.CHUNK_BYTES bounds the column matrix of a chunk; at least one image each."""
    from minicnn.nn.functional.conv import ConvGeometry, _image_chunks

    g = ConvGeometry((3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    per_image = 16 * 9 * 32 * 32 * 4  # a 16-channel 32x32 layer, float32: 576 KiB
    with _chunk_bytes(3 * per_image):
        assert _image_chunks((8, 16, 32, 32), g, (32, 32), 4, np) == [(0, 3), (3, 6), (6, 8)]
    with _chunk_bytes(3 * per_image - 1):
        assert _image_chunks((5, 16, 32, 32), g, (32, 32), 4, np) == [(0, 2), (2, 4), (4, 5)]
    with _chunk_bytes(1):
        assert _image_chunks((2, 16, 32, 32), g, (32, 32), 4, np) == [(0, 1), (1, 2)]
    with _chunk_bytes(8 * per_image):
        assert _image_chunks((8, 16, 32, 32), g, (32, 32), 4, np) == [(0, 8)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("images_per_chunk", [1, 2])  # of 3 images
@pytest.mark.parametrize("op,case", [("conv2d", c) for c in (
    "plain", "stride-pad-dilation", "grouped", "pointwise", "pointwise-strided-grouped",
    "pointwise-padded")] + [("conv_transpose2d", c) for c in (
        "plain", "stride-output-padding", "grouped", "pointwise")])
def test_im2col_in_chunks_of_images(backend, op, case, images_per_chunk, dtype):
    """Forward, and backward rebuilding the columns, chunk by chunk (3 images)."""
    from minicnn.nn.functional.conv import _image_chunks

    x_shape, w_shape, kwargs = (CONV_CASES if op == "conv2d" else TRANSPOSE_CASES)[case]
    x_shape = (3, *x_shape[1:])
    x, w, _ = _random_case(x_shape, w_shape, op == "conv_transpose2d", with_bias=False)
    # the column matrix of one image: C_in * kh * kw * H_out * W_out of the convolution
    # (for a transposed one: of the convolution whose input-gradient it is)
    y_shape = (TF.conv2d if op == "conv2d" else TF.conv_transpose2d)(
        torch.zeros(x_shape), torch.zeros(w_shape), **kwargs).shape
    conv_in, conv_out = (x_shape, y_shape) if op == "conv2d" else (y_shape, x_shape)
    per_image = conv_in[1] * w_shape[2] * w_shape[3] * conv_out[2] * conv_out[3]
    b = np.random.default_rng(2).standard_normal(y_shape[1])
    chunk_bytes = images_per_chunk * per_image * np.dtype(dtype).itemsize
    with _chunk_bytes(chunk_bytes):
        from minicnn.nn.functional.conv import ConvGeometry

        g = ConvGeometry(tuple(w_shape[2:]), (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
        expected = [(0, 1), (1, 2), (2, 3)] if images_per_chunk == 1 else [(0, 2), (2, 3)]
        assert _image_chunks(conv_in, g, conv_out[2:], np.dtype(dtype).itemsize,
                             np) == expected
        results = _run_both(op, x, w, b, kwargs, device_of(backend), dtype)
    for mine, theirs, name in results:
        assert_close(mine, theirs, dtype,
                     msg=f"{op} {case} {images_per_chunk} images per chunk: {name}")


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
def test_im2col_in_chunks_gradcheck(backend, op):
    device = device_of(backend)
    x = _leaf((3, 4, 5, 4), 0, device)
    w = _leaf((4, 2, 3, 2), 1, device)
    kwargs = dict(stride=(2, 1), padding=1, groups=2)
    fn = F.conv2d if op == "conv2d" else F.conv_transpose2d
    with _chunk_bytes(1):
        assert minicnn.gradcheck(lambda x, w: fn(x, w, **kwargs), [x, w])


# ---------------------------------------------------------------- gradcheck


def _leaf(shape, seed, device="cpu"):
    rng = np.random.default_rng(seed)
    return minicnn.tensor(rng.standard_normal(shape), dtype=np.float64, device=device,
                          requires_grad=True)


@pytest.mark.parametrize("kwargs,w_shape", [
    (dict(stride=(2, 1), padding="valid", dilation=(1, 2), groups=2), (4, 2, 2, 3)),
    (dict(padding="same", dilation=(2, 1)), (3, 4, 2, 3)),
    (dict(groups=4, stride=2, padding=1), (8, 1, 3, 3)),  # depthwise, multiplier 2
    (dict(groups=2, padding=(1, 0), dilation=(1, 2)), (6, 2, 3, 2)),  # direct grouped kernels
    (dict(stride=2), (3, 4, 1, 1)),  # 1x1 fast path
])
def test_conv2d_gradcheck(backend, kwargs, w_shape):
    device = device_of(backend)
    x, w, b = _leaf((2, 4, 6, 5), 0, device), _leaf(w_shape, 1, device), _leaf(w_shape[0], 2,
                                                                               device)
    assert minicnn.gradcheck(lambda x, w, b: F.conv2d(x, w, b, **kwargs), [x, w, b])


@pytest.mark.parametrize("setting", ["auto", "direct"])
def test_conv2d_direct_gradcheck(backend, algorithm_setting, setting):
    """A layer at the direct kernels' threshold: 2 channels at 16x16 (256 pixels; with
    "auto" numba chooses DIRECT, the other backends im2col; "direct" forces the direct
    kernels everywhere, the reference ones on numpy and cupy)."""
    algorithm_setting(setting)
    device = device_of(backend)
    x, w, b = _leaf((2, 2, 16, 16), 0, device), _leaf((3, 2, 3, 3), 1, device), _leaf(3, 2,
                                                                                    device)
    assert minicnn.gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=1), [x, w, b])


@pytest.mark.parametrize("kwargs,w_shape", [
    (dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2), dilation=(1, 2)), (4, 2, 3, 2)),
    (dict(stride=2, groups=2, output_padding=1), (4, 1, 2, 2)),
    (dict(stride=2, padding=1, groups=4), (4, 1, 3, 3)),  # depthwise
])
def test_conv_transpose2d_gradcheck(backend, kwargs, w_shape):
    device = device_of(backend)
    c_out = w_shape[1] * kwargs.get("groups", 1)
    x, w, b = _leaf((2, 4, 4, 3), 0, device), _leaf(w_shape, 1, device), _leaf(c_out, 2, device)
    assert minicnn.gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, **kwargs), [x, w, b])


# ---------------------------------------------------------------- bad input


def _t(*shape, dtype=np.float32):
    return minicnn.zeros(*shape, dtype=dtype)


@pytest.mark.parametrize("shape", [(3, 8, 8), (1, 1, 3, 8, 8)])
def test_conv2d_rejects_non_4d_input(shape):
    with pytest.raises(ValueError, match=r"conv2d: expected 4-d input \(N, C, H, W\), got input "
                                         r"of shape"):
        F.conv2d(_t(*shape), _t(2, 3, 3, 3))


def test_conv_transpose2d_rejects_non_4d_input():
    with pytest.raises(ValueError, match=r"conv_transpose2d: expected 4-d input \(N, C, H, W\)"):
        F.conv_transpose2d(_t(3, 8, 8), _t(3, 2, 3, 3))


def test_conv2d_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match=r"conv2d: expected input with C_in=6 channels \(weight "
                                         r"shape \(4, 3, 3, 3\) with groups=2\), got input of "
                                         r"shape \(1, 4, 8, 8\)"):
        F.conv2d(_t(1, 4, 8, 8), _t(4, 3, 3, 3), groups=2)


def test_conv_transpose2d_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match=r"conv_transpose2d: expected input with C_in=3 channels"):
        F.conv_transpose2d(_t(1, 4, 8, 8), _t(3, 2, 3, 3))


def test_groups_must_divide_channels():
    with pytest.raises(ValueError, match=r"conv2d: groups=2 must divide out_channels=3"):
        F.conv2d(_t(1, 4, 8, 8), _t(3, 2, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"conv_transpose2d: groups=2 must divide in_channels=3"):
        F.conv_transpose2d(_t(1, 3, 8, 8), _t(3, 2, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"conv2d: groups must be a positive int, got 0"):
        F.conv2d(_t(1, 4, 8, 8), _t(4, 4, 3, 3), groups=0)


def test_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"conv2d: kernel size \(5, 5\) \(dilated: \(5, 5\)\) is "
                                         r"larger than the padded input size \(6, 4\)"):
        F.conv2d(_t(1, 1, 4, 2), _t(1, 1, 5, 5), padding=1)
    with pytest.raises(ValueError, match=r"dilated: \(5, 3\)"):
        F.conv2d(_t(1, 1, 4, 4), _t(1, 1, 3, 2), dilation=2)


def test_negative_padding():
    with pytest.raises(ValueError, match=r"conv2d: padding must be non-negative, got -1"):
        F.conv2d(_t(1, 1, 8, 8), _t(1, 1, 3, 3), padding=-1)
    with pytest.raises(ValueError, match=r"conv_transpose2d: padding must be non-negative"):
        F.conv_transpose2d(_t(1, 1, 8, 8), _t(1, 1, 3, 3), padding=(0, -2))


def test_same_padding_with_stride():
    with pytest.raises(ValueError, match=r"conv2d: padding='same' is not supported for strided "
                                         r"convolutions"):
        F.conv2d(_t(1, 1, 8, 8), _t(1, 1, 3, 3), stride=2, padding="same")


def test_unknown_padding_string():
    with pytest.raises(ValueError, match=r"conv2d: padding must be 'same', 'valid', an int or a "
                                         r"pair of ints, got 'full'"):
        F.conv2d(_t(1, 1, 8, 8), _t(1, 1, 3, 3), padding="full")
    with pytest.raises(ValueError, match=r"conv_transpose2d: padding must be an int or a pair"):
        F.conv_transpose2d(_t(1, 1, 8, 8), _t(1, 1, 3, 3), padding="same")


def test_bad_stride_and_dilation():
    with pytest.raises(ValueError, match=r"conv2d: stride must be positive, got 0"):
        F.conv2d(_t(1, 1, 8, 8), _t(1, 1, 3, 3), stride=0)
    with pytest.raises(ValueError, match=r"conv2d: dilation must be positive, got \(1, 0\)"):
        F.conv2d(_t(1, 1, 8, 8), _t(1, 1, 3, 3), dilation=(1, 0))
    with pytest.raises(TypeError, match=r"conv2d: stride must be an int or a pair of ints, got "
                                        r"\(1, 2, 3\)"):
        F.conv2d(_t(1, 1, 8, 8), _t(1, 1, 3, 3), stride=(1, 2, 3))


def test_output_padding_must_be_below_stride_or_dilation():
    with pytest.raises(ValueError, match=r"conv_transpose2d: output_padding must be smaller than "
                                         r"either stride or dilation, got output_padding=\(2, 2\)"):
        F.conv_transpose2d(_t(1, 2, 4, 4), _t(2, 2, 3, 3), stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"output_padding must be smaller"):
        F.conv_transpose2d(_t(1, 2, 4, 4), _t(2, 2, 3, 3), output_padding=(0, 1))


def test_conv_transpose2d_output_size_must_be_positive():
    with pytest.raises(ValueError, match=r"conv_transpose2d: the output size \(-1, -1\) is not "
                                         r"positive"):
        F.conv_transpose2d(_t(1, 1, 1, 1), _t(1, 1, 1, 1), padding=1)


def test_bias_shape_and_dtypes():
    with pytest.raises(ValueError, match=r"conv2d: bias must have shape \(4,\) \(C_out\), got "
                                         r"\(3,\)"):
        F.conv2d(_t(1, 2, 8, 8), _t(4, 2, 3, 3), _t(3))
    with pytest.raises(TypeError, match=r"conv2d: input and weight must have the same floating "
                                        r"dtype, got input float64 and weight float32"):
        F.conv2d(_t(1, 2, 8, 8, dtype=np.float64), _t(4, 2, 3, 3))
    with pytest.raises(TypeError, match=r"conv2d: input must be a minicnn Tensor, got ndarray"):
        F.conv2d(np.zeros((1, 2, 8, 8)), _t(4, 2, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: expected 4-d weight \(C_out, C_in/groups, kH, "
                                         r"kW\), got weight of shape \(4, 2, 3\)"):
        F.conv2d(_t(1, 2, 8, 8), _t(4, 2, 3))


# ---------------------------------------------------------------- nn.Conv2d, nn.ConvTranspose2d

MODULE_CASES = [
    ("Conv2d", (3, 8, 3), {}),
    ("Conv2d", (4, 6, (3, 2)), dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2,
                                    bias=False)),
    ("Conv2d", (4, 4, 3), dict(padding="same", padding_mode="reflect")),
    ("Conv2d", (4, 8, (2, 4)), dict(padding="same", padding_mode="replicate", groups=4)),
    ("Conv2d", (3, 5, 3), dict(padding=2, padding_mode="circular", stride=2)),
    ("Conv2d", (3, 5, 2), dict(padding="valid")),
    ("ConvTranspose2d", (4, 6, 3), dict(stride=2, padding=1, output_padding=1)),
    ("ConvTranspose2d", (4, 6, (3, 2)), dict(groups=2, dilation=(2, 1), bias=False)),
]


def _module_pair(name, args, kwargs):
    return getattr(minicnn.nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)


@pytest.mark.parametrize("name,args,kwargs", MODULE_CASES)
def test_module_repr_and_state_dict_match_torch(name, args, kwargs):
    mine, theirs = _module_pair(name, args, kwargs)
    assert repr(mine) == repr(theirs)
    assert [(k, tuple(v.shape)) for k, v in mine.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]


@pytest.mark.parametrize("name,args,kwargs", MODULE_CASES)
def test_module_with_torch_weights_gives_torch_outputs(name, args, kwargs):
    mine, theirs = _module_pair(name, args, kwargs)
    mine.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, args[0], 7, 6)).astype(np.float32)
    mx, tx = minicnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    my, ty = mine(mx), theirs(tx)
    assert_close(my, ty, np.float32)
    g = np.random.default_rng(1).standard_normal(my.shape).astype(np.float32)
    my.backward(minicnn.tensor(g))
    ty.backward(torch.tensor(g))
    assert_close(mx.grad, tx.grad, np.float32)
    for (k, p), (_, q) in zip(mine.named_parameters(), theirs.named_parameters(), strict=True):
        assert_close(p.grad, q.grad, np.float32, msg=k)


@pytest.mark.parametrize("name,args", [("Conv2d", (16, 32, 3)), ("ConvTranspose2d", (32, 16, 3))])
def test_module_default_init_bounds(name, args):
    """kaiming_uniform_(a=sqrt(5)) is U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the bias likewise."""
    mine = getattr(minicnn.nn, name)(*args)
    fan_in = mine.weight.shape[1] * 9
    bound = 1 / np.sqrt(fan_in)
    w = mine.weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.05 * bound  # std of U(-b, b) is b/sqrt(3)
    assert np.abs(mine.bias.detach().numpy()).max() <= bound


def test_module_dtype_argument():
    conv = minicnn.nn.Conv2d(2, 3, 3, dtype=np.float64)
    assert conv.weight.dtype == np.float64 and conv.bias.dtype == np.float64
    assert conv(minicnn.zeros(1, 2, 5, 5, dtype=np.float64)).dtype == np.float64


def test_conv_transpose2d_output_size():
    mine, theirs = _module_pair("ConvTranspose2d", (2, 3, 3), dict(stride=3, padding=1))
    mine.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 5)).astype(np.float32)
    for size in [(10, 13), (12, 15), (1, 3, 11, 14)]:
        my = mine(minicnn.tensor(x), output_size=size)
        ty = theirs(torch.tensor(x), output_size=size)
        assert my.shape == tuple(ty.shape)
        assert_close(my, ty.detach(), np.float32)
    with pytest.raises(ValueError, match=r"ConvTranspose2d: requested output size \(13, 13\) is "
                                         r"not reachable"):
        mine(minicnn.tensor(x), output_size=(13, 13))


def test_module_bad_arguments():
    nn = minicnn.nn
    with pytest.raises(ValueError, match=r"Conv2d: in_channels=3 must be divisible by groups=2"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"Conv2d: out_channels=5 must be divisible by groups=2"):
        nn.Conv2d(4, 5, 3, groups=2)
    with pytest.raises(ValueError, match=r"Conv2d: padding_mode must be one of"):
        nn.Conv2d(4, 4, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match=r"Conv2d: padding='same' is not supported for strided"):
        nn.Conv2d(4, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match=r"ConvTranspose2d: only padding_mode='zeros'"):
        nn.ConvTranspose2d(4, 4, 3, padding_mode="reflect")
    with pytest.raises(TypeError, match=r"Conv2d: kernel_size must be an int or a pair of ints"):
        nn.Conv2d(4, 4, (3, 3, 3))


# ---------------------------------------------------------------- the workspace


def test_workspace_hands_out_only_free_buffers():
    from minicnn.nn.functional.workspace import Workspace

    ws = Workspace(max_bytes=64 << 20)

    def address(a):
        return a.__array_interface__["data"][0]

    a = ws.empty((1024, 2048), np.float32)  # 8 MB: pooled
    b = ws.empty((1024, 2048), np.float32)
    assert address(a) != address(b)  # a is still alive
    first = address(a)
    del a
    c = ws.empty((2048, 1024), np.float32)
    assert address(c) == first  # a's buffer was free again
    assert ws.empty((10,), np.float32).base is None  # small arrays are not pooled


def test_workspace_drops_free_buffers_to_stay_under_its_cap():
    """A request that does not fit under the cap drops the largest free buffer (found by
    identity: list.remove compared the arrays element by element and raised when the
    buffer was not the first of the list)."""
    from minicnn.nn.functional.workspace import Workspace

    ws = Workspace(max_bytes=20 << 20)
    small = ws.empty((5 << 20,), np.uint8)  # pooled, kept alive
    big = ws.empty((12 << 20,), np.uint8)
    del big  # free: the one to drop
    c = ws.empty((13 << 20,), np.uint8)  # 5 + 12 + 13 > 20 MB
    assert sorted(b.nbytes for b in ws.buffers) == [5 << 20, 13 << 20]
    assert small.base is ws.buffers[0] and c.base is ws.buffers[1]


@pytest.mark.parametrize("algorithm,c_in,c_out", [
    ("im2col", 16, 4),  # cols: 144 x 8192 floats, 4.7 MB
    ("winograd", 64, 8),  # V: 16 x 64 x 2048 floats, 8 MB (one chunk of images)
])
def test_saved_buffers_survive_other_convolutions(backend, monkeypatch, algorithm, c_in, c_out):
    """A retained graph keeps x (backward rebuilds its column matrix in workspace buffers)
    or Winograd's V (from the workspace); other convolutions must not reuse what it keeps."""
    from minicnn.nn.functional import conv as conv_module

    monkeypatch.setattr(conv_module, "_conv_algorithm", algorithm)
    if algorithm == "winograd":  # the whole batch is one chunk, and its V is pooled
        assert conv_module.winograd._chunks(8, 16 * 16, c_in, c_out, 4) == [(0, 8)]
        assert 16 * c_in * 8 * 16 * 16 * 4 >= conv_module.WORKSPACE.MIN_BYTES
    rng = np.random.default_rng(0)
    device = device_of(backend)
    x = minicnn.tensor(rng.standard_normal((8, c_in, 32, 32)).astype(np.float32), device=device)
    w = minicnn.tensor(rng.standard_normal((c_out, c_in, 3, 3)).astype(np.float32),
                       device=device, requires_grad=True)
    y = F.conv2d(x, w, padding=1)  # its buffer (> Workspace.MIN_BYTES) is pooled
    y.sum().backward(retain_graph=True)
    first = w.grad.numpy().copy()
    with minicnn.no_grad():
        F.conv2d(x * 2.0, w, padding=1)  # same shapes: would love the same buffer
    w.grad = None
    y.sum().backward()
    assert_close(w.grad, first, np.float32)


def test_narrow_grouped_dispatch():
    """Direct grouped kernels for few channels per group, where the backend compiled them."""
    from minicnn.nn.functional.conv import GROUPED_DIRECT_MAX_CHANNELS, _is_narrow_grouped

    numpy_backend = minicnn.get_backend("numpy")
    most = GROUPED_DIRECT_MAX_CHANNELS
    if "numba" in AVAILABLE_BACKENDS:
        numba_backend = minicnn.get_backend("numba")
        assert _is_narrow_grouped(numba_backend, 128, (128, 4, 3, 3), 32)  # ResNeXt 32x4d
        assert _is_narrow_grouped(numba_backend, 2 * most, (8, most, 3, 3), 2)
        assert not _is_narrow_grouped(numba_backend, 4 * most, (8, 2 * most, 3, 3), 2)
        assert not _is_narrow_grouped(numba_backend, 8, (8, 1, 3, 3), 8)  # depthwise kernels
        assert not _is_narrow_grouped(numba_backend, 8, (8, 8, 3, 3), 1)  # not grouped
    assert not _is_narrow_grouped(numpy_backend, 128, (128, 4, 3, 3), 32)  # reference: im2col


def test_direct_dispatch(algorithm_setting):
    """DIRECT for stride-1 ungrouped layers on planes of 8x8 and more (conv.py,
    ``DIRECT_MIN_PIXELS``), where Winograd pays up to ``DIRECT_MAX_CHANNELS`` input channels,
    on a backend with compiled kernels; the setting overrides."""
    from minicnn.nn.functional.conv import (
        DIRECT_MAX_CHANNELS,
        DIRECT_MIN_PIXELS,
        ConvGeometry,
        _choose_algorithm,
    )

    # the cases below sit on the thresholds' two sides
    assert (DIRECT_MIN_PIXELS, DIRECT_MAX_CHANNELS) == (64, 128)
    same = ConvGeometry((3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    same5 = ConvGeometry((5, 5), (1, 1), ((2, 2), (2, 2)), (1, 1), 1)  # no Winograd
    strided = ConvGeometry((3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 1)
    pointwise = ConvGeometry((1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    grouped = ConvGeometry((3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 2)

    def choice(backend, x_shape, c_out, geometry=same):
        w_shape = (c_out, x_shape[1] // geometry.groups, *geometry.kernel)
        return _choose_algorithm(minicnn.get_backend(backend), x_shape, w_shape, geometry)

    if "numba" in AVAILABLE_BACKENDS:
        assert choice("numba", (32, 16, 32, 32), 16) == "direct"  # a CIFAR ResNet's stages
        assert choice("numba", (32, 32, 16, 16), 32) == "direct"
        assert choice("numba", (32, 64, 8, 8), 64) == "direct"
        # 64 output pixels, any channel count where Winograd does not pay
        assert choice("numba", (1, 2, 8, 8), 3) == "direct"
        assert choice("numba", (1, 2, 7, 9), 3) == "im2col"  # 63 pixels
        assert choice("numba", (1, 512, 8, 8), 8) == "direct"  # Winograd does not pay
        assert choice("numba", (1, 128, 27, 29), 128, same5) == "direct"  # nor applies
        assert choice("numba", (1, 128, 7, 9), 128, same5) == "im2col"
        # where Winograd pays: up to 128 input channels
        assert choice("numba", (1, 128, 16, 16), 128) == "direct"
        assert choice("numba", (1, 129, 16, 16), 129) == "winograd"
        assert choice("numba", (1, 128, 28, 28), 128) == "direct"
        assert choice("numba", (1, 256, 8, 8), 256) == "winograd"
        assert choice("numba", (1, 128, 7, 7), 4096) == "winograd"  # 49 pixels
        assert choice("numba", (1, 3, 224, 224), 64) == "direct"  # a VGG's first layer
        assert choice("numba", (1, 16, 33, 33), 16, strided) == "im2col"
        assert choice("numba", (1, 16, 32, 32), 16, pointwise) == "im2col"
        assert choice("numba", (1, 16, 32, 32), 16, grouped) == "grouped"
        algorithm_setting("im2col")
        assert choice("numba", (32, 16, 32, 32), 16) == "im2col"
        algorithm_setting("winograd")
        assert choice("numba", (32, 16, 32, 32), 16) == "winograd"
        algorithm_setting("auto")
    assert choice("numpy", (32, 16, 32, 32), 16) == "im2col"  # no compiled kernels
    algorithm_setting("direct")  # every ungrouped convolution, every backend
    for backend in [b for b in ("numpy", "numba") if b in AVAILABLE_BACKENDS]:
        assert choice(backend, (1, 17, 8, 8), 17) == "direct"
        assert choice(backend, (1, 16, 33, 33), 16, strided) == "direct"
        # grouped convolutions keep their own rule (32 channels per group: im2col)
        assert choice(backend, (1, 64, 8, 8), 64, grouped) == "im2col"


# layers on both sides of the direct kernels' thresholds (numba: the first three DIRECT)
DIRECT_CASES = {
    "128ch-16x16": ((2, 128, 16, 16), (128, 128, 3, 3), dict(padding=1)),
    "same-dilated-8x8": ((2, 3, 8, 8), (5, 3, 3, 2), dict(padding="same", dilation=(2, 1))),
    "64ch-8x8": ((2, 64, 8, 8), (24, 64, 3, 3), dict(padding=1)),
    "129ch-16x16": ((2, 129, 16, 16), (129, 129, 3, 3), dict(padding=1)),
    "7x9": ((2, 2, 7, 9), (3, 2, 3, 3), dict(padding=1)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(DIRECT_CASES))
def test_direct_threshold_cases_match_torch(backend, case, dtype):
    x_shape, w_shape, kwargs = DIRECT_CASES[case]
    x, w, b = _random_case(x_shape, w_shape, transposed=False)
    for mine, theirs, name in _run_both("conv2d", x, w, b, kwargs, device_of(backend), dtype):
        # the weight gradient sums 512 products per entry: in float32 an entry near zero
        # gets rounding errors of the size of the largest entries times ~1e-6, so the
        # absolute tolerance scales with them
        scale = float(theirs.detach().abs().max())
        assert_close(mine, theirs, dtype, atol=tol(dtype)["atol"] * max(1.0, scale),
                     msg=f"{case}: {name}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op,case", [("conv2d", c) for c in sorted(CONV_CASES)]
                         + [("conv_transpose2d", c) for c in sorted(TRANSPOSE_CASES)])
def test_forced_direct_matches_torch(backend, algorithm_setting, op, case, dtype):
    """``set_conv_algorithm("direct")``: every ungrouped convolution by the direct kernels."""
    algorithm_setting("direct")
    x_shape, w_shape, kwargs = (CONV_CASES if op == "conv2d" else TRANSPOSE_CASES)[case]
    x, w, _ = _random_case(x_shape, w_shape, op == "conv_transpose2d", with_bias=False)
    c_out = w_shape[0] if op == "conv2d" else w_shape[1] * kwargs.get("groups", 1)
    b = np.random.default_rng(1).standard_normal(c_out)
    for mine, theirs, name in _run_both(op, x, w, b, kwargs, device_of(backend), dtype):
        assert_close(mine, theirs, dtype, msg=f"{op} {case}: {name}")


@pytest.mark.parametrize("op,case", [("conv2d", c) for c in ("plain", "grouped", "depthwise",
                                                              "pointwise")]
                         + [("conv_transpose2d", c) for c in ("plain", "depthwise")])
def test_algorithm_is_chosen_once_per_call(backend, monkeypatch, op, case):
    """Forward chooses the algorithm; both backward products use that choice (kept on the
    graph node) instead of deciding again."""
    from minicnn.nn.functional import conv as conv_module

    choices = []
    choose = conv_module._choose_algorithm

    def spy(*args, **kwargs):
        choices.append(choose(*args, **kwargs))
        return choices[-1]

    monkeypatch.setattr(conv_module, "_choose_algorithm", spy)
    x_shape, w_shape, kwargs = (CONV_CASES if op == "conv2d" else TRANSPOSE_CASES)[case]
    x, w, _ = _random_case(x_shape, w_shape, op == "conv_transpose2d", with_bias=False)
    c_out = w_shape[0] if op == "conv2d" else w_shape[1] * kwargs.get("groups", 1)
    b = np.random.default_rng(1).standard_normal(c_out)
    for mine, theirs, name in _run_both(op, x, w, b, kwargs, device_of(backend), np.float64):
        assert_close(mine, theirs, np.float64, msg=f"{op} {case}: {name}")
    assert len(choices) == 1, choices


@pytest.fixture
def algorithm_setting():
    """``set_conv_algorithm``, restored after the test."""
    from minicnn.nn.functional.conv import set_conv_algorithm

    previous = set_conv_algorithm("auto")
    yield set_conv_algorithm
    set_conv_algorithm(previous)


def test_backward_keeps_the_forward_algorithm(algorithm_setting):
    """Changing the setting between forward and backward changes nothing: backward runs
    the algorithm forward ran, on the arrays forward saved for it."""
    rng = np.random.default_rng(7)
    arrays = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3))
    x, w = (minicnn.tensor(a, requires_grad=True) for a in arrays)
    tx, tw = (torch.tensor(a, requires_grad=True) for a in arrays)
    for forward_with, backward_with in (("winograd", "im2col"), ("im2col", "winograd")):
        x.grad = w.grad = tx.grad = tw.grad = None
        algorithm_setting(forward_with)
        y = F.conv2d(x, w, padding=1)
        algorithm_setting(backward_with)
        y.sum().backward()
        TF.conv2d(tx, tw, padding=1).sum().backward()
        assert_close(x.grad, tx.grad, np.float64, msg=f"dx, {forward_with} forward")
        assert_close(w.grad, tw.grad, np.float64, msg=f"dW, {forward_with} forward")
