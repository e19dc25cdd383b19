"""PSNR and SSIM against scikit-image's ``peak_signal_noise_ratio`` and
``structural_similarity`` on random and real photographs (grey, colour, several data
ranges and dtypes, both weightings), Tensors as input, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

skimage = pytest.importorskip("skimage")
from skimage import data as skdata  # noqa: E402
from skimage.metrics import peak_signal_noise_ratio, structural_similarity  # noqa: E402

from minicnn.autograd import Tensor  # noqa: E402
from minicnn.metrics import psnr, ssim  # noqa: E402

RNG = np.random.default_rng(0)


def noisy_pair(clean: np.ndarray, scale: float, dtype) -> tuple[np.ndarray, np.ndarray]:
    noisy = clean + RNG.normal(0, 0.1 * scale, clean.shape)
    return clean.astype(dtype), noisy.astype(dtype)


# (image, data_range, channel_axis): grey and colour, [0, 1], [0, 255] and [-1, 1] floats
def cases():
    camera = skdata.camera()[100:228, 200:360] / 255.0  # grey (128, 160)
    astro = skdata.astronaut()[50:146, 100:196] / 255.0  # colour (96, 96, 3)
    rand = RNG.random((40, 33))
    return [
        ("camera-01", camera, 1.0, None),
        ("camera-255", camera * 255, 255.0, None),
        ("astronaut-01-last", astro, 1.0, -1),
        ("astronaut-01-first", astro.transpose(2, 0, 1), 1.0, 0),
        ("random-pm1", rand * 2 - 1, 2.0, None),
        ("random-3ch", RNG.random((3, 21, 30)) * 4.0, 4.0, 0),
    ]


@pytest.mark.parametrize("name,image,data_range,channel_axis", cases(),
                         ids=[c[0] for c in cases()])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equal_to_scikit_image(name, image, data_range, channel_axis, dtype):
    clean, noisy = noisy_pair(image, data_range, dtype)
    assert psnr(clean, noisy, data_range=data_range) == pytest.approx(
        peak_signal_noise_ratio(clean, noisy, data_range=data_range), abs=1e-5)
    for gaussian, sample_cov in [(False, True), (True, False), (True, True)]:
        ours = ssim(clean, noisy, data_range=data_range, channel_axis=channel_axis,
                    gaussian_weights=gaussian, use_sample_covariance=sample_cov)
        ref = structural_similarity(clean, noisy, data_range=data_range,
                                    channel_axis=channel_axis, gaussian_weights=gaussian,
                                    use_sample_covariance=sample_cov)
        assert ours == pytest.approx(ref, abs=1e-5), (gaussian, sample_cov)


def test_full_map_win_size_and_constants_equal_scikit_image():
    clean, noisy = noisy_pair(skdata.coins()[:64, :80] / 255.0, 1.0, np.float64)
    mean, smap = ssim(clean, noisy, data_range=1, win_size=5, K1=0.02, K2=0.05, full=True)
    ref_mean, ref_map = structural_similarity(clean, noisy, data_range=1, win_size=5,
                                              K1=0.02, K2=0.05, full=True)
    assert mean == pytest.approx(ref_mean, abs=1e-12)
    np.testing.assert_allclose(smap, ref_map, atol=1e-12)


def test_default_data_range_of_integer_and_float_images():
    camera = skdata.camera()[:64, :64]
    noisy = np.clip(camera + RNG.normal(0, 20, camera.shape), 0, 255).astype(np.uint8)
    assert psnr(camera, noisy) == pytest.approx(peak_signal_noise_ratio(camera, noisy))
    assert ssim(camera, noisy) == pytest.approx(structural_similarity(camera, noisy), abs=1e-7)
    # float: data_range 1 for non-negative images, 2 for images with negative values
    x = RNG.random((16, 16))
    y = x + 0.05
    assert psnr(x, y) == pytest.approx(peak_signal_noise_ratio(x, y))
    assert psnr(x - 0.5, y - 0.5) == pytest.approx(peak_signal_noise_ratio(x - 0.5, y - 0.5))
    # hand-worked: MSE 0.05**2 with data_range 1 -> 10 log10(1 / 0.0025) = 26.0206 dB
    assert psnr(x, y) == pytest.approx(10 * np.log10(1 / 0.0025))


def test_tensors_are_accepted():
    clean, noisy = noisy_pair(RNG.random((3, 20, 20)), 1.0, np.float32)
    assert psnr(Tensor(clean), Tensor(noisy), data_range=1) == psnr(clean, noisy, data_range=1)
    assert ssim(Tensor(clean), Tensor(noisy), data_range=1, channel_axis=0) == \
        ssim(clean, noisy, data_range=1, channel_axis=0)


def test_identical_images():
    x = RNG.random((16, 16))
    assert psnr(x, x, data_range=1) == np.inf
    assert ssim(x, x, data_range=1) == pytest.approx(1.0)


@pytest.mark.parametrize("call,message", [
    (lambda: psnr(np.zeros((4, 4)), np.zeros((4, 5)), data_range=1), "same shape"),
    (lambda: psnr(np.zeros((4, 4)), np.ones((4, 4)), data_range=0), "data_range"),
    (lambda: psnr(np.full((4, 4), 3.0), np.ones((4, 4))), "give data_range"),
    (lambda: ssim(np.zeros((8, 8)), np.ones((8, 8))), "data_range is required"),
    (lambda: ssim(np.zeros((8, 8)), np.ones((8, 8)), data_range=1, win_size=4), "odd"),
    (lambda: ssim(np.zeros((3, 8, 8)), np.ones((3, 8, 8)), data_range=1), "channel_axis"),
    (lambda: ssim(np.zeros((8, 8)), np.ones((8, 8)), data_range=1, channel_axis=2),
     "out of range"),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
