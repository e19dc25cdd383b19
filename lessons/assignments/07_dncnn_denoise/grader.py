"""Grader of assignment 07 (DnCNN): the residual architecture, the weights of
``minicnn.models.restoration.dncnn`` loaded into it, the residual loss against ``F.mse_loss``,
and, after training, a mean PSNR (``minicnn.metrics.psnr``) above scikit-image's non-local
means (told the true sigma, ``minicnn.baselines.denoise``) on the same noisy held-out crops,
which the grader cuts itself and checks no training image contains.

The restoration parts of minicnn may be missing from an installation: the tests that need
them skip and say why."""

import importlib

import numpy as np
import pytest

import minicnn
import minicnn.nn.functional as F
from minicnn import nn
from minicnn.homework import assert_close, load_submission, points

sub = load_submission("dncnn_denoise")


def need(module: str, name: str):
    """``module.name``, or skip the test saying which part of minicnn is missing."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        pytest.skip(f"{module}.{name} is not in this minicnn (the restoration models and "
                    "metrics); this test grades against it")



def close(name, got, want, tol=1e-5):
    assert_close(name, got, want, tol)


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


CROP = 128  # the test crops: the bottom CROP rows of camera and coins, central CROP columns
SIGMA = 50.0  # the test noise's standard deviation on the 0-255 scale (the assignment's SIGMA)


def held_out_crops() -> dict:
    """The assignment's test crops, cut here (not by the submission)."""
    load_photo = need("minicnn.data.photos", "load_photo")
    crops = {}
    for name in ("camera", "coins"):
        image = load_photo(name, "grey")[0]
        left = (image.shape[1] - CROP) // 2
        crops[name] = image[-CROP:, left:left + CROP]
    return crops


def contains(image: np.ndarray, crop: np.ndarray, run: int = 32, every: int = 8) -> bool:
    """Whether ``image`` holds any ``run``-pixel piece (at columns 0, run, 2 run ...) of every
    ``every``-th row of ``crop``: a training image that reaches into a test crop by more than
    a sliver is caught."""
    if image.shape[1] < run:
        return False
    width = image.shape[1] - run + 1
    for r in range(0, crop.shape[0], every):
        for c in range(0, crop.shape[1] - run + 1, run):
            piece = crop[r, c:c + run]
            hit = np.ones((image.shape[0], width), bool)
            for k in range(4):  # candidates: the first four pixels match
                hit &= image[:, k:k + width] == piece[k]
            if any(np.array_equal(image[i, j:j + run], piece) for i, j in zip(*np.nonzero(hit))):
                return True
    return False


def check_held_out() -> None:
    """No training image contains a test crop (checked by content; a broken split fails
    the PSNR test)."""
    images = sub.training_images()
    for name, crop in held_out_crops().items():
        np.testing.assert_array_equal(sub.test_crops()[name], crop,
                                      err_msg=f"test_crops()[{name!r}] is not the stated crop")
        for k, image in enumerate(images):
            assert not contains(np.asarray(image), crop), \
                f"training image {k} contains the held-out crop of {name}"


@points(4)
def test_beats_non_local_means_on_held_out_crops():
    """After ``train_denoiser(seed=0)``: the mean PSNR over the held-out crops of camera and
    coins (sigma 50, noise fixed by a seed) above scikit-image's non-local means told the
    true sigma, on the same noisy crops."""
    psnr = need("minicnn.metrics", "psnr")
    classical = need("minicnn.baselines", "denoise")
    pytest.importorskip("skimage.restoration")
    model = sub.train_denoiser(seed=0)
    check_held_out()  # after training: a student version stops at its first missing part
    sigma = SIGMA / 255
    rows = []
    for k, (name, clean) in enumerate(held_out_crops().items()):
        noisy = clean + np.random.default_rng(123 + k).standard_normal(clean.shape).astype(
            np.float32) * sigma
        ours = psnr(clean, sub.denoise(model, noisy), data_range=1.0)
        nlm = psnr(clean, np.clip(classical(noisy, sigma, "nl_means"), 0, 1), data_range=1.0)
        before = psnr(clean, np.clip(noisy, 0, 1), data_range=1.0)
        rows.append((ours, nlm, before))
        print(f"{name}: PSNR noisy {before:.2f} dB, network {ours:.2f} dB, non-local means "
              f"{nlm:.2f} dB")
    ours, nlm, before = np.mean(rows, axis=0)
    print(f"mean: noisy {before:.2f} dB, network {ours:.2f} dB, non-local means {nlm:.2f} dB")
    assert ours > nlm, (f"mean PSNR {ours:.2f} dB after training, expected above non-local "
                        f"means' {nlm:.2f} dB on the same crops (noisy: {before:.2f} dB)")
