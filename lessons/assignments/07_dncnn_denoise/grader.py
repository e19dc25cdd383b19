"""Grader of assignment 07 (DnCNN): the residual architecture, the weights of
``minicnn.models.restoration.dncnn`` loaded into it, the residual loss against ``F.mse_loss``,
and, after training, a PSNR (``minicnn.metrics.psnr``) 3 dB above the noisy input, printed
beside scikit-image's non-local means.

The restoration parts of minicnn may be missing from an installation: the tests that need
them skip and say why."""

import importlib

import numpy as np
import pytest

import minicnn
import minicnn.nn.functional as F
from minicnn import nn
from minicnn.homework import load_submission, points

sub = load_submission("dncnn_denoise")


def need(module: str, name: str):
    """``module.name``, or skip the test saying which part of minicnn is missing."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        pytest.skip(f"{module}.{name} is not in this minicnn (the restoration models and "
                    "metrics); this test grades against it")


def close(name, got, want, tol=1e-5):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{name}: shape {got.shape}, expected {want.shape}"
    bad = np.argwhere(~np.isclose(got, want, rtol=tol, atol=tol))
    if len(bad):
        e = tuple(int(i) for i in bad[0])
        raise AssertionError(f"{name}: element {e} is {got[e]:.6g}, expected {want[e]:.6g} "
                             f"({len(bad)} of {got.size} elements differ)")


@points(2)
def test_architecture_and_residual():
    model = sub.TinyDnCNN(channels=1, depth=6, features=8)
    kinds = [type(m).__name__ for m in model.model]
    want = ["Conv2d", "ReLU"] + ["Conv2d", "BatchNorm2d", "ReLU"] * 4 + ["Conv2d"]
    assert kinds == want, f"TinyDnCNN.model layers {kinds}, expected {want}"
    last = model.model[len(model.model) - 1]
    last.weight.data.array[...] = 0
    last.bias.data.array[...] = 0  # no noise predicted: the output is the input
    y = minicnn.rand(2, 1, 9, 7)
    close("TinyDnCNN with a silent last layer", model(y).detach().numpy(), y.numpy(), tol=0)


@points(3)
def test_matches_dncnn():
    dncnn = need("minicnn.models.restoration", "dncnn")
    minicnn.manual_seed(0)
    ref = dncnn(channels=1, depth=5, features=8)
    mine = sub.TinyDnCNN(channels=1, depth=5, features=8)
    mine.load_state_dict(ref.state_dict())
    y = minicnn.rand(2, 1, 12, 12)
    for mode in ("train", "eval"):
        getattr(mine, mode)()
        getattr(ref, mode)()
        close(f"TinyDnCNN ({mode} mode)", mine(y).detach().numpy(), ref(y).detach().numpy())


@points(2)
def test_residual_loss():
    minicnn.manual_seed(1)
    model = sub.TinyDnCNN(channels=1, depth=3, features=4)
    noisy, noise = minicnn.rand(2, 1, 8, 8), minicnn.randn(2, 1, 8, 8) * 0.1
    want = F.mse_loss(model.model(noisy), noise).item()
    close("residual_loss", sub.residual_loss(model, noisy, noise).item(), want)
    assert isinstance(model.model, nn.Sequential)


@points(4)
def test_denoises_the_held_out_crop():
    """At least 3 dB above the noisy input on a crop no training patch came from (the
    reference solution: +3.5 dB after 400 steps, +4.0 dB after 1500). Non-local means is
    printed beside it: this small network, trained for minutes, stays about 0.5 dB below."""
    psnr = need("minicnn.metrics", "psnr")
    restoration = pytest.importorskip("skimage.restoration")
    model = sub.train_denoiser(seed=0)
    _, clean = sub.photograph()
    sigma = sub.SIGMA / 255
    noisy = clean + np.random.default_rng(123).standard_normal(clean.shape).astype(
        np.float32) * sigma
    ours = psnr(clean, sub.denoise(model, noisy), data_range=1.0)
    nlm = restoration.denoise_nl_means(noisy, h=0.8 * sigma, sigma=sigma, fast_mode=True,
                                       patch_size=5, patch_distance=6)
    theirs = psnr(clean, np.clip(nlm, 0, 1).astype(np.float32), data_range=1.0)
    before = psnr(clean, np.clip(noisy, 0, 1), data_range=1.0)
    print(f"PSNR noisy {before:.2f} dB, network {ours:.2f} dB, non-local means {theirs:.2f} dB")
    assert ours >= before + 3, (f"PSNR {ours:.2f} dB after training, expected at least "
                                f"{before + 3:.2f} dB (noisy: {before:.2f} dB; non-local "
                                f"means: {theirs:.2f} dB)")
