"""Restoration networks: DnCNN, the noise-aware denoiser, SRCNN, PyNET.

* parameter counts against the cited figures: SRCNN 8,129 (one channel, the paper's 9-1-5);
  DnCNN-S / DnCNN-B / CDnCNN-B summed from the authors' KAIR layer table (every convolution
  with a bias, BN between); PyNET 47,554,738 counted from the authors' published PyTorch model
  (aiff22/PyNET-PyTorch, as their train/test scripts build it) -- and every count again
  against a PyTorch transcription (tests/models/torch_references_restoration.py);
* forward outputs (train and eval mode) and input/weight gradients against those
  transcriptions with copied weights;
* shapes, state_dict keys, the noise-map forms, bad input.

Errors are ``max|minicnn - torch| / max(1, max|torch|)``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minicnn
from minicnn.models.restoration import (
    NoiseAwareDenoiser,
    PyNET,
    cdncnn_b,
    dncnn,
    dncnn_b,
    dncnn_s,
    noise_aware_denoiser,
    pynet,
    pynet_narrow,
    srcnn,
)
from tests.helpers import max_rel_err
from tests.models import torch_references_restoration as ref
from tests.models.harness import count_params


def _copy(model, reference: torch.nn.Module) -> None:
    """minicnn weights -> the torch transcription (same keys and shapes, any order)."""
    ours = {k: np.array(v.numpy()) for k, v in model.state_dict().items()}
    theirs = reference.state_dict()
    assert sorted((k, tuple(v.shape)) for k, v in ours.items()) == \
        sorted((k, tuple(v.shape)) for k, v in theirs.items())
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in ours.items()})


def _compare(model, reference, inputs: list[np.ndarray], tol: float = 1e-4,
             grad_tol: float = 1e-4, train: bool = True) -> None:
    """Outputs, input gradients and every weight gradient against the transcription."""
    _copy(model, reference)
    model.train(train)
    reference.train(train)
    mine = [minicnn.tensor(a, requires_grad=True) for a in inputs]
    theirs = [torch.tensor(a, requires_grad=True) for a in inputs]
    out, expected = model(*mine), reference(*theirs)
    assert out.shape == tuple(expected.shape)
    assert max_rel_err(out, expected.detach()) < tol
    g = np.random.default_rng(9).standard_normal(out.shape).astype(np.float32)
    out.backward(minicnn.tensor(g))
    expected.backward(torch.tensor(g))
    for m, t in zip(mine, theirs, strict=True):
        assert max_rel_err(m.grad, t.grad) < grad_tol
    theirs_params = dict(reference.named_parameters())
    for name, p in model.named_parameters():
        assert p.grad is not None, f"no gradient reached {name}"
        assert max_rel_err(p.grad, theirs_params[name].grad) < grad_tol, name


def _images(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape).astype(np.float32)


# ---------------------------------------------------------------- DnCNN


def test_dncnn_parameter_counts():
    # KAIR's layer table: 3x3 convolutions with biases; BN (weight, bias) on the middle ones
    def kair(channels, depth, f=64):
        return ((9 * channels * f + f) + (depth - 2) * (9 * f * f + f + 2 * f)
                + (9 * f * channels + channels))

    assert count_params(dncnn_s()) == kair(1, 17) == 557_057
    assert count_params(dncnn_b()) == kair(1, 20) == 668_225
    assert count_params(cdncnn_b()) == kair(3, 20) == 670_531
    assert count_params(dncnn()) == count_params(ref.DnCNN(1, 17))
    assert count_params(cdncnn_b()) == count_params(ref.DnCNN(3, 20))


def test_dncnn_keys_are_kairs():
    keys = list(dncnn_s().state_dict())
    assert keys[:4] == ["model.0.weight", "model.0.bias", "model.2.weight", "model.2.bias"]
    assert "model.3.running_mean" in keys and keys[-1] == "model.47.bias"  # 2 + 15 * 3


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("channels", [1, 3])
def test_dncnn_matches_torch(channels, train):
    minicnn.manual_seed(0)
    model = dncnn(channels, depth=5, features=16)
    for m in model.modules():  # non-trivial BN statistics and affine parameters
        if isinstance(m, minicnn.nn.BatchNorm2d):
            m.running_mean.numpy()[:] = np.linspace(-0.2, 0.3, 16)
            m.running_var.numpy()[:] = np.linspace(0.5, 2.0, 16)
            m.weight.data.numpy()[:] = np.linspace(0.8, 1.2, 16)
    _compare(model, ref.DnCNN(channels, 5, 16), [_images((2, channels, 12, 10))], train=train)


def test_dncnn_predicts_the_noise():
    model = dncnn(depth=4, features=8).eval()
    y = minicnn.tensor(_images((1, 1, 8, 8)))
    with minicnn.no_grad():
        np.testing.assert_allclose((y - model.noise(y)).numpy(), model(y).numpy(), atol=1e-6)


@pytest.mark.slow
def test_dncnn_full_size_shapes():
    model = dncnn_s().eval()
    with minicnn.no_grad():
        assert model(minicnn.tensor(_images((1, 1, 40, 40)))).shape == (1, 1, 40, 40)


# ---------------------------------------------------------------- noise-aware denoiser


def test_noise_aware_parameter_count():
    assert count_params(noise_aware_denoiser()) == count_params(ref.NoiseAware()) == 488_708
    assert count_params(noise_aware_denoiser(3, 12, 96)) == count_params(
        ref.NoiseAware(3, 12, 96))


@pytest.mark.parametrize("snr", [False, True], ids=["intensity", "snr_units"])
@pytest.mark.parametrize("hw", [(8, 12), (9, 7)], ids=["even", "odd"])
def test_noise_aware_matches_torch(hw, snr):
    minicnn.manual_seed(1)
    model = noise_aware_denoiser(1, depth=4, features=12, snr_units=snr)
    y = _images((2, 1, *hw))
    noise_map = _images((2, 1, *hw), seed=1) * 0.2 + (0.05 if snr else 0.0)
    _compare(model, ref.NoiseAware(1, 4, 12, snr=snr), [y, noise_map])


@minicnn.no_grad()
def test_noise_aware_in_snr_units_is_level_equivariant():
    """In SNR units the convolutions see y / M: once the map's own channel is cut off (its
    weights in the first convolution zeroed), scaling an image and its noise map by the same
    factor scales the output by it; with the map channel, the level is still seen."""
    model = noise_aware_denoiser(depth=3, features=8, snr_units=True).eval()
    y = minicnn.tensor(_images((2, 1, 6, 8)))
    with_map = model(y, 0.1).numpy()
    # after the 2x2 unshuffle, input channels 0-3 are the image's sub-pixels, 4-7 the map's
    w = model.model[0].weight
    w.data[:, 4:] = 0
    out = model(y, 0.1).numpy()
    np.testing.assert_allclose(model(y * 3, 0.3).numpy(), 3 * out, rtol=1e-5, atol=1e-6)
    assert np.abs(with_map - out).max() > 1e-4  # the map channel did matter


@minicnn.no_grad()
def test_noise_aware_map_forms_agree():
    model = noise_aware_denoiser(depth=3, features=8).eval()
    y = minicnn.tensor(_images((2, 1, 6, 6)))
    full = model(y, minicnn.tensor(np.full((2, 1, 6, 6), 0.1, np.float32))).numpy()
    np.testing.assert_allclose(model(y, 0.1).numpy(), full, atol=1e-6)
    np.testing.assert_allclose(
        model(y, minicnn.tensor(np.array([0.1, 0.1], np.float32))).numpy(), full, atol=1e-6)
    # the map matters: a different level gives a different output
    assert np.abs(model(y, 0.5).numpy() - full).max() > 1e-4


def test_noise_aware_bad_input():
    model = NoiseAwareDenoiser(1, depth=3, features=8)
    y = minicnn.zeros(2, 1, 6, 6)
    with pytest.raises(ValueError, match=r"noise_map must have shape \(2,\) or \(2, 1, 6, 6\)"):
        model(y, minicnn.zeros(2, 1, 3, 3))
    with pytest.raises(TypeError, match="noise_map must be a number or a Tensor"):
        model(y, "25")
    with pytest.raises(ValueError, match=r"expects input \(N, 1, H, W\).* got 3 channels"):
        model(minicnn.zeros(1, 3, 6, 6), 0.1)


# ---------------------------------------------------------------- SRCNN


def test_srcnn_has_8129_parameters():
    assert count_params(srcnn()) == 9 * 9 * 64 + 64 + 64 * 32 + 32 + 5 * 5 * 32 + 1 == 8_129
    assert count_params(srcnn()) == count_params(ref.SRCNN())
    assert list(srcnn().state_dict()) == ["conv1.weight", "conv1.bias", "conv2.weight",
                                          "conv2.bias", "conv3.weight", "conv3.bias"]


@pytest.mark.parametrize("residual", [False, True], ids=["plain", "residual"])
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_srcnn_matches_torch(padding, residual):
    minicnn.manual_seed(2)
    model = srcnn(padding=padding, residual=residual)
    for p in model.parameters():  # the paper's std 0.001 makes every output ~0: widen it
        p.data.numpy()[:] = np.random.default_rng(3).standard_normal(p.shape) * 0.1
    x = _images((2, 1, 17, 15))
    _compare(model, ref.SRCNN(padding=padding, residual=residual), [x])
    out_hw = (17, 15) if padding == "same" else (5, 3)
    assert model(minicnn.tensor(x)).shape == (2, 1, *out_hw)


def test_srcnn_bad_input():
    with pytest.raises(ValueError, match=r"srcnn expects input \(N, 1, H, W\).* got 3 channels"):
        srcnn()(minicnn.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match=r"H, W >= 13"):
        srcnn(padding="valid")(minicnn.zeros(1, 1, 12, 20))
    with pytest.raises(ValueError, match="padding must be 'same' or 'valid'"):
        srcnn(padding="full")


# ---------------------------------------------------------------- PyNET


@pytest.mark.slow
def test_pynet_full_size_parameter_count():
    """47,554,738: the authors' model (aiff22/PyNET-PyTorch model.py) built as their
    train_model.py and test_model.py build it (instance norm on levels 1-5)."""
    model = pynet()
    assert count_params(model) == 47_554_738
    assert count_params(ref.PyNET(32)) == 47_554_738


def test_pynet_narrow_count_and_keys():
    model = pynet_narrow(residual=False)  # as published (the default is the CPU variant)
    assert count_params(model) == count_params(ref.PyNET(8)) == 2_985_370
    keys = set(model.state_dict())
    assert len(keys) == 542  # the authors' model has the same 542 entries
    for key in ("conv_l1_d1.conv_3a.conv2d.weight", "conv_l2_d1.conv_3b.instance.weight",
                "conv_l1_d6.conv_9b.instance.bias", "conv_t4a.conv2d.weight",
                "conv_t0.conv2d.bias", "conv_l0_d1.conv2d.weight", "conv_l5_out.conv2d.bias"):
        assert key in keys, key
    # no instance norm on the first and last blocks of level 1 (the authors' choice)
    assert "conv_l1_d1.conv_3a.instance.weight" not in keys
    assert "conv_l1_d14.conv_3a.instance.weight" not in keys


@pytest.mark.slow
def test_pynet_matches_torch_every_level():
    minicnn.manual_seed(3)
    model = PyNET(level=0, width=4)
    reference = ref.PyNET(4)
    _copy(model, reference)
    x = _images((1, 4, 32, 32))
    mine = model.pyramid(minicnn.tensor(x))
    theirs = reference(torch.tensor(x))
    for level in range(6):
        size = 64 if level == 0 else 32 >> (level - 1)
        assert mine[level].shape == (1, 3, size, size)
        assert max_rel_err(mine[level], theirs[level].detach()) < 1e-4, f"level {level}"


@pytest.mark.parametrize("level", [pytest.param(5), pytest.param(3, marks=pytest.mark.slow),
                                   pytest.param(0, marks=pytest.mark.slow)])
def test_pynet_gradients_match_torch(level):
    """float64: level 5's instance norms average over 2x2 maps, which amplifies float32
    rounding beyond a useful tolerance."""
    minicnn.manual_seed(4)
    model = PyNET(level=level, width=4).double()
    reference = ref.PyNET(4).double()
    ours = {k: np.array(v.numpy()) for k, v in model.state_dict().items()}
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in ours.items()})
    x = np.random.default_rng(0).random((1, 4, 32, 32))
    mine, theirs = minicnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = model(mine), reference(theirs)[level]
    assert max_rel_err(out, expected.detach()) < 1e-10
    g = np.random.default_rng(5).standard_normal(out.shape)
    out.backward(minicnn.tensor(g))
    expected.backward(torch.tensor(g))
    assert max_rel_err(mine.grad, theirs.grad) < 1e-9
    torch_params = dict(reference.named_parameters())
    reached = {n for n, p in model.named_parameters() if p.grad is not None}
    for name in reached:
        assert max_rel_err(model.get_parameter(name).grad, torch_params[name].grad) < 1e-9, name
    # exactly the layers the level uses get gradients (those of finer levels do not)
    assert reached == {n for n, p in torch_params.items() if p.grad is not None}
    assert any(n.startswith("conv_l5") for n in reached)
    assert (level == 0) == ("conv_l0_d1.conv2d.weight" in reached)


def test_pynet_bad_input():
    model = PyNET(level=5, width=2)
    with pytest.raises(ValueError, match=r"multiples of 16 \(four 2x2 poolings\)"):
        model(minicnn.zeros(1, 4, 48, 40))
    with pytest.raises(ValueError, match=r"H, W >= 32"):
        model(minicnn.zeros(1, 4, 16, 32))
    with pytest.raises(ValueError, match=r"pynet expects input \(N, 4, H, W\).* got 3 channels"):
        model(minicnn.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="level must be 0, 1, 2, 3, 4 or 5"):
        PyNET(level=6)
    with pytest.raises(ValueError, match="width must be even"):
        PyNET(width=5)
