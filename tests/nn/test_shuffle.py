"""pixel_shuffle, pixel_unshuffle, channel_shuffle and their layers against PyTorch.

Pure rearrangements: outputs and gradients must equal PyTorch's exactly, on every
backend, in float32 and float64, for contiguous and non-contiguous inputs. Plus the
round trip, ``minicnn.gradcheck`` in float64, the modules' repr and one test per bad input.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import minicnn
import minicnn.nn as nn
import minicnn.nn.functional as F
from tests.conftest import device_of
from tests.helpers import to_numpy

DTYPES = [np.float32, np.float64]

# (minicnn op, torch op, input shape, factor)
CASES = {
    "pixel_shuffle": (F.pixel_shuffle, TF.pixel_shuffle, (2, 18, 3, 4), 3),
    "pixel_shuffle-unbatched": (F.pixel_shuffle, TF.pixel_shuffle, (8, 3, 2), 2),
    "pixel_shuffle-two-batch-dims": (F.pixel_shuffle, TF.pixel_shuffle, (2, 3, 8, 2, 3), 2),
    "pixel_shuffle-factor-1": (F.pixel_shuffle, TF.pixel_shuffle, (2, 3, 2, 2), 1),
    "pixel_unshuffle": (F.pixel_unshuffle, TF.pixel_unshuffle, (2, 3, 6, 9), 3),
    "pixel_unshuffle-unbatched": (F.pixel_unshuffle, TF.pixel_unshuffle, (5, 4, 6), 2),
    "pixel_unshuffle-two-batch-dims": (F.pixel_unshuffle, TF.pixel_unshuffle, (2, 2, 3, 4, 2), 2),
    "channel_shuffle": (F.channel_shuffle, TF.channel_shuffle, (2, 6, 3, 4), 3),
    "channel_shuffle-1d": (F.channel_shuffle, TF.channel_shuffle, (2, 8, 5), 2),
    "channel_shuffle-3d": (F.channel_shuffle, TF.channel_shuffle, (2, 6, 2, 3, 2), 2),
    "channel_shuffle-one-group": (F.channel_shuffle, TF.channel_shuffle, (2, 4, 3, 3), 1),
}


def _run_both(op, top, shape, factor, dtype, device, transform=None):
    """Forward and backward in minicnn and torch: (minicnn out, torch out, minicnn grad,
    torch grad)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    m = minicnn.tensor(x, device=device, requires_grad=True)
    t = torch.tensor(x, requires_grad=True)
    mx, tx = (transform(m), transform(t)) if transform else (m, t)
    my, ty = op(mx, factor), top(tx, factor)
    g = rng.standard_normal(my.shape).astype(dtype)
    my.backward(minicnn.tensor(g, device=device))
    ty.backward(torch.tensor(g))
    return my, ty, m.grad, t.grad


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_shuffles_match_torch(backend, case, dtype):
    my, ty, mg, tg = _run_both(*CASES[case], dtype, device_of(backend))
    assert my.shape == tuple(ty.shape) and my.dtype == dtype
    np.testing.assert_array_equal(to_numpy(my), to_numpy(ty), err_msg=f"{case}: output")
    np.testing.assert_array_equal(to_numpy(mg), to_numpy(tg), err_msg=f"{case}: grad of input")


@pytest.mark.parametrize("case", ["pixel_shuffle", "pixel_unshuffle", "channel_shuffle"])
def test_shuffles_non_contiguous_input(backend, case):
    def flip_hw(a):  # a (N, C, W, H) tensor viewed as (N, C, H, W)
        return a.transpose(2, 3)

    op, top, shape, factor = CASES[case]
    swapped = shape[:2] + shape[2:][::-1]
    my, ty, mg, tg = _run_both(op, top, swapped, factor, np.float64, device_of(backend), flip_hw)
    np.testing.assert_array_equal(to_numpy(my), to_numpy(ty))
    np.testing.assert_array_equal(to_numpy(mg), to_numpy(tg))


def test_pixel_shuffle_layout():
    """Output (c, h*r + i, w*r + j) comes from input channel c*r*r + i*r + j at (h, w)."""
    r, c, h, w = 2, 2, 2, 3
    x = np.arange(c * r * r * h * w, dtype=np.float64).reshape(1, c * r * r, h, w)
    y = F.pixel_shuffle(minicnn.tensor(x), r).numpy()
    for ch in range(c):
        for i in range(r):
            for j in range(r):
                np.testing.assert_array_equal(y[0, ch, i::r, j::r], x[0, ch * r * r + i * r + j])


def test_round_trips():
    x = minicnn.tensor(np.random.default_rng(1).standard_normal((2, 3, 6, 4)))
    np.testing.assert_array_equal(F.pixel_shuffle(F.pixel_unshuffle(x, 2), 2).numpy(), x.numpy())
    # shuffling with g groups is undone by shuffling with C/g groups
    np.testing.assert_array_equal(F.channel_shuffle(F.channel_shuffle(x, 3), 1).numpy(),
                                  F.channel_shuffle(x, 3).numpy())
    y = minicnn.tensor(np.random.default_rng(2).standard_normal((2, 6, 2, 2)))
    np.testing.assert_array_equal(F.channel_shuffle(F.channel_shuffle(y, 2), 3).numpy(),
                                  y.numpy())


@pytest.mark.parametrize("case", ["pixel_shuffle", "pixel_unshuffle", "channel_shuffle"])
def test_shuffles_gradcheck(case):
    op, _, shape, factor = CASES[case]
    x = minicnn.tensor(np.random.default_rng(3).standard_normal(shape), requires_grad=True)
    assert minicnn.gradcheck(lambda a: op(a, factor), [x])


def test_shuffle_modules():
    x = np.random.default_rng(4).standard_normal((2, 8, 4, 6)).astype(np.float32)
    pairs = [(nn.PixelShuffle(2), torch.nn.PixelShuffle(2)),
             (nn.PixelUnshuffle(2), torch.nn.PixelUnshuffle(2)),
             (nn.ChannelShuffle(4), torch.nn.ChannelShuffle(4))]
    for mine, theirs in pairs:
        assert repr(mine) == repr(theirs)
        np.testing.assert_array_equal(mine(minicnn.tensor(x)).numpy(),
                                      theirs(torch.tensor(x)).numpy())
        assert list(mine.parameters()) == []


@pytest.mark.parametrize("call, error, match", [
    (lambda x: F.pixel_shuffle(x, 2), ValueError,
     r"pixel_shuffle: the channel count 6 must be divisible by upscale_factor\*\*2 = 4 "
     r"\(upscale_factor=2\)"),
    (lambda x: F.pixel_shuffle(x, 0), ValueError, "upscale_factor must be positive, got 0"),
    (lambda x: F.pixel_shuffle(x, 2.0), TypeError, "upscale_factor must be an int, got float"),
    (lambda x: F.pixel_unshuffle(x, 2), ValueError,
     "pixel_unshuffle: the height 5 must be divisible by downscale_factor=2"),
    (lambda x: F.pixel_unshuffle(x, 5), ValueError,
     "pixel_unshuffle: the width 4 must be divisible by downscale_factor=5"),
    (lambda x: F.pixel_unshuffle(x, -1), ValueError, "downscale_factor must be positive, got -1"),
    (lambda x: F.channel_shuffle(x, 4), ValueError,
     "channel_shuffle: the channel count 6 must be divisible by groups=4"),
    (lambda x: F.channel_shuffle(x, 0), ValueError, "groups must be positive, got 0"),
    (lambda x: F.channel_shuffle(x, True), TypeError, "groups must be an int, got bool"),
])
def test_bad_factors(call, error, match):
    with pytest.raises(error, match=match):
        call(minicnn.zeros(1, 6, 5, 4))


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"pixel_shuffle: input must have at least 3 dimensions "
                                         r"\(\*, C\*r\*r, H, W\), got shape \(4, 2\)"):
        F.pixel_shuffle(minicnn.zeros(4, 2), 2)
    with pytest.raises(ValueError, match="pixel_unshuffle: input must have at least 3 dim"):
        F.pixel_unshuffle(minicnn.zeros(4, 2), 2)
    with pytest.raises(ValueError, match=r"channel_shuffle: input must have at least 3 dimensions "
                                         r"\(N, C, \*\), got shape \(1, 6\)"):
        F.channel_shuffle(minicnn.zeros(1, 6), 3)
    with pytest.raises(TypeError, match="input must be a minicnn Tensor, got ndarray"):
        F.pixel_shuffle(np.zeros((1, 4, 2, 2)), 2)
