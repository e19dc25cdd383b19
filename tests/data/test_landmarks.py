"""Landmark data: Gaussian heatmaps against their formula evaluated pixel by pixel, encode ->
decode to sub-pixel accuracy (Taylor/DARK exact on a Gaussian, the quarter-offset rule
within a quarter pixel, the plain argmax within half a pixel), the joint transforms on a
landmark target against the same transforms on the one-object detection target and against
the keypoints recomputed from a flipped mask, the occluders, the dataset, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from minicnn.data import joint_transforms as J
from minicnn.data import rng as data_rng
from minicnn.data.landmarks import (
    LANDMARK_FLIP,
    RandomOcclusion,
    ShapeLandmarks,
    decode_heatmaps,
    gaussian_heatmaps,
    occlude,
    shape_landmarks,
    smooth_heatmaps,
)
from minicnn.data.shapes import _keypoints, make_scene


def _random_points(rng, n, h, w, margin=2.0):
    return np.stack([rng.uniform(margin, w - margin, n), rng.uniform(margin, h - margin, n)], 1)


def test_heatmaps_follow_their_formula():
    rng = np.random.default_rng(0)
    kp = _random_points(rng, 3, 9, 12, margin=0)
    hm = gaussian_heatmaps(kp, (9, 12), sigma=1.3)
    assert hm.shape == (3, 9, 12) and hm.dtype == np.float32
    for k, (x, y) in enumerate(kp):
        for i in range(9):
            for j in range(12):
                d2 = (j + 0.5 - x) ** 2 + (i + 0.5 - y) ** 2
                assert hm[k, i, j] == pytest.approx(np.exp(-d2 / (2 * 1.3**2)), abs=1e-6)
    # batched (N, K, 2) and a keypoint on the border (x = W) are fine
    batch = np.stack([kp, kp[::-1]])
    np.testing.assert_array_equal(gaussian_heatmaps(batch, (9, 12), 1.3)[1], hm[::-1])
    assert gaussian_heatmaps([[12.0, 9.0]], (9, 12)).shape == (1, 9, 12)


@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.5])
def test_encode_decode_returns_the_keypoints_to_sub_pixel_accuracy(sigma):
    rng = np.random.default_rng(1)
    kp = np.stack([_random_points(rng, 5, 32, 40) for _ in range(40)])  # (40, 5, 2)
    hm = gaussian_heatmaps(kp, (32, 40), sigma)
    errors = {m: np.abs(decode_heatmaps(hm, m)[0] - kp) for m in ("taylor", "quarter", "argmax")}
    assert errors["taylor"].max() < 1e-3  # the log of a Gaussian is a quadratic: exact
    assert errors["quarter"].max() <= 0.25 + 1e-5
    assert errors["argmax"].max() <= 0.5 + 1e-5
    assert errors["quarter"].mean() < errors["argmax"].mean()
    peaks = decode_heatmaps(hm)[1]
    assert peaks.shape == (40, 5) and (peaks > np.exp(-1 / sigma**2) - 1e-6).all()


def test_decode_with_noise_and_at_the_border():
    rng = np.random.default_rng(2)
    kp = _random_points(rng, 200, 24, 24)
    hm = gaussian_heatmaps(kp, 24, 1.5) + rng.uniform(0, 0.02, (200, 24, 24))
    err = np.linalg.norm(decode_heatmaps(hm)[0] - kp, axis=-1)
    assert err.mean() < 0.15 and err.max() < 0.75
    # a peak on the border is not refined: the pixel centre
    corner = np.zeros((1, 5, 5))
    corner[0, 0, 4] = 1
    np.testing.assert_array_equal(decode_heatmaps(corner)[0], [[4.5, 0.5]])
    # two equal neighbours: the quadratic's maximum lies half-way between them
    step = np.full((1, 5, 5), 1e-3)
    step[0, 2, 2], step[0, 2, 3] = 1.0, 1.0
    np.testing.assert_allclose(decode_heatmaps(step)[0], [[3.0, 2.5]], atol=1e-6)


@pytest.mark.parametrize(("points", "message"), [
    ([[3.0, 40.0]], r"keypoint \(3, 40\) is outside the 32x32 image"),
    ([[-0.5, 4.0]], r"keypoint \(-0.5, 4\) is outside"),
    ([1.0, 2.0, 3.0], r"must be \(\.\.\., K, 2\) \(x, y\), got shape \(3,\)"),
    ([[1.0, 2.0, 3.0]], r"got shape \(1, 3\)"),
    ([[np.nan, 2.0]], "must be finite"),
])
def test_bad_keypoints_are_one_line_errors(points, message):
    with pytest.raises(ValueError, match=message):
        gaussian_heatmaps(points, 32)


def test_smoothing_equals_scipy_and_keeps_a_gaussian_exact():
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(3)
    maps = rng.random((2, 3, 13, 18))
    for sigma in (0.6, 1.0, 2.3):
        np.testing.assert_allclose(
            smooth_heatmaps(maps, sigma),
            ndimage.gaussian_filter(maps, (0, 0, sigma, sigma), mode="constant"), atol=1e-12)
    # a Gaussian smoothed by a Gaussian is a Gaussian: the Taylor step stays exact
    kp = _random_points(rng, 50, 32, 32, margin=5)
    hm = gaussian_heatmaps(kp, 32, 1.5)
    assert np.abs(decode_heatmaps(hm, smooth=1.0)[0] - kp).max() < 1e-4
    # on noise the smoothed peak is the better estimate (DARK's modulation)
    noisy = np.maximum(hm + rng.normal(0, 0.05, hm.shape), 0)
    plain = np.linalg.norm(decode_heatmaps(noisy)[0] - kp, axis=-1).mean()
    smoothed = np.linalg.norm(decode_heatmaps(noisy, smooth=1.0)[0] - kp, axis=-1).mean()
    assert smoothed < plain


def test_bad_decode_and_heatmap_arguments():
    with pytest.raises(ValueError, match="method must be one of"):
        decode_heatmaps(np.zeros((1, 4, 4)), "mean")
    with pytest.raises(ValueError, match=r"\(\.\.\., K, H, W\), got shape \(4, 4\)"):
        decode_heatmaps(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="smooth must be 0 .none. or a positive sigma, got -1"):
        decode_heatmaps(np.zeros((1, 4, 4)), smooth=-1)
    with pytest.raises(ValueError, match="sigma must be positive, got 0"):
        smooth_heatmaps(np.zeros((4, 4)), 0)
    with pytest.raises(ValueError, match="sigma must be positive"):
        gaussian_heatmaps([[1.0, 1.0]], 4, sigma=0)


# ---------------------------------------------------------------- joint transforms


def _scene():
    scene = make_scene((7, 3), 32, 1, [2])  # a triangle
    return scene, scene["image"], scene["keypoints"][0]


def test_hflip_of_landmarks_equals_the_keypoints_of_the_flipped_mask():
    scene, image, kp = _scene()
    flipped, target = J.hflip(image, {"keypoints": kp}, keypoint_flip=LANDMARK_FLIP)
    np.testing.assert_array_equal(flipped, image[:, :, ::-1])
    # the extreme points recomputed on the mirrored mask: right and left swapped
    np.testing.assert_allclose(target["keypoints"], _keypoints(scene["masks"][0][:, ::-1]),
                               atol=1e-5)


@pytest.mark.parametrize("transform", [
    lambda i, t: J.hflip(i, t, keypoint_flip=LANDMARK_FLIP),
    lambda i, t: J.resize(i, t, (48, 40)),
    lambda i, t: J.crop(i, t, 3, 5, 24, 20),
], ids=["hflip", "resize", "crop"])
def test_landmark_target_moves_as_the_detection_target(transform):
    scene, image, kp = _scene()
    vis = np.concatenate([kp, np.ones((5, 1), np.float32)], 1)
    img_l, lm = transform(image, {"keypoints": vis})
    img_d, det = transform(image, {"boxes": scene["boxes"], "labels": np.array([1]),
                                   "keypoints": vis[None]})
    np.testing.assert_array_equal(img_l, img_d)
    np.testing.assert_array_equal(lm["keypoints"], det["keypoints"][0])


def test_landmark_target_errors():
    image = np.zeros((3, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"landmark 'keypoints' must be \(P, 2\) or \(P, 3\)"):
        J.hflip(image, {"keypoints": np.zeros((5, 4))})
    with pytest.raises(ValueError, match="keypoint_flip has 3 entries, the objects have 5"):
        J.hflip(image, {"keypoints": np.zeros((5, 2))}, keypoint_flip=[0, 2, 1])


# ---------------------------------------------------------------- occluders and the dataset


def test_occlude_paints_a_square_near_a_keypoint():
    _, image, kp = _scene()
    out = occlude(image, np.random.default_rng(3), 1, kp[1:2], scale=(0.3, 0.3))
    changed = np.nonzero((out != image).any(0))
    assert out.shape == image.shape and image is not out
    rows, cols = changed
    side = round(0.3 * 32)
    assert rows.max() - rows.min() < side and cols.max() - cols.min() < side
    x, y = kp[1]
    assert abs(rows.mean() + 0.5 - y) < side / 2 + 1 and abs(cols.mean() + 0.5 - x) < side / 2 + 1
    assert out.max() <= 0.6 + 1e-6 or (out[:, rows, cols] <= 0.6 + 1e-6).all()  # background


def test_random_occlusion_is_seeded_and_keeps_the_target():
    _, image, kp = _scene()
    t = RandomOcclusion(p=1.0)
    runs = []
    for _ in range(2):
        with data_rng.using(np.random.default_rng(5)):
            runs.append(t(image, {"keypoints": kp}))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert not np.array_equal(runs[0][0], image)
    np.testing.assert_array_equal(runs[0][1]["keypoints"], kp)
    with data_rng.using(np.random.default_rng(5)):
        assert RandomOcclusion(p=0.0)(image, {"keypoints": kp})[0] is image
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 2"):
        RandomOcclusion(p=2)


def test_shape_landmarks_dataset():
    clean, occluded = ShapeLandmarks(8, 32, seed=9), ShapeLandmarks(8, 32, seed=9, occlusion=1.0)
    for i in range(8):
        image, kp = clean[i]
        scene = make_scene((9, i), 32, 1, [i % 4])
        np.testing.assert_array_equal(image, scene["image"])
        np.testing.assert_array_equal(kp, scene["keypoints"][0])
        image_o, kp_o = occluded[i]
        np.testing.assert_array_equal(kp_o, kp)  # the landmarks stay where they are
        assert not np.array_equal(image_o, image)
        np.testing.assert_array_equal(occluded[i][0], image_o)  # the same occluder every time
    flipped = ShapeLandmarks(2, 32, seed=9, transforms=J.Compose(
        [lambda i, t: J.hflip(i, t, keypoint_flip=LANDMARK_FLIP)]))
    np.testing.assert_array_equal(flipped[1][1][:, 0], 32 - clean[1][1][LANDMARK_FLIP, 0])
    assert len(shape_landmarks(True)) == 2000 and len(shape_landmarks(False)) == 500
    with pytest.raises(ValueError, match=r"occlusion must be a probability in \[0, 1\]"):
        ShapeLandmarks(4, occlusion=1.5)
    with pytest.raises(IndexError, match="index 8 out of range for 8 scenes"):
        clean[8]
