"""Landmarks: Gaussian heatmap targets, their decoding, occluders, and the ``shapes``
landmark scenes. NumPy only, like the rest of ``minicnn.data``.

Landmark detection as segmentation (Tompson et al. 2014, "Joint Training of a
Convolutional Network and a Graphical Model for Human Pose Estimation"; Newell et al.
2016, "Stacked Hourglass Networks"): instead of regressing the ``K`` landmark coordinates
``(x, y)`` directly (Toshev & Szegedy 2014, DeepPose, an L2 loss on ``2K`` numbers), a
fully convolutional network outputs ``K`` heatmaps, one per landmark, trained towards a
Gaussian bump at the landmark (L2 per pixel), and the landmark is read back at the peak.

Coordinates are continuous pixel coordinates as everywhere in ``minicnn.data``: pixel
``(row i, column j)`` covers ``[j, j + 1) x [i, i + 1)``, its centre is ``(j + 0.5, i +
0.5)``, so a ``W x H`` image holds the points of ``[0, W] x [0, H]``.

* :func:`gaussian_heatmaps` -- keypoints ``(..., K, 2)`` -> heatmaps ``(..., K, H, W)``:
  ``exp(-d^2 / (2 sigma^2))`` at every pixel centre, peak 1 at the keypoint.
* :func:`decode_heatmaps` -- heatmaps -> keypoints: the argmax pixel, refined to sub-pixel
  precision by ``"taylor"`` (the second-order Taylor expansion of the log-heatmap at the
  peak, Zhang et al. 2020, "Distribution-Aware Coordinate Representation for Human Pose
  Estimation" (DARK), Sec. 3.2: exact for a Gaussian, whose log is a quadratic) or by
  ``"quarter"`` (a quarter pixel towards the higher neighbour, Newell et al. 2016, the
  rule of most pose-estimation code before DARK), or not at all (``"argmax"``); with
  ``smooth``, the heatmaps are first smoothed by a Gaussian (:func:`smooth_heatmaps`,
  DARK's distribution modulation, Sec. 3.3: a network's heatmap is not a clean Gaussian,
  and the Taylor step on a noisy peak goes astray). The differentiable alternative is
  ``minicnn.nn.functional.soft_argmax`` (Sun et al. 2018).
* :func:`occlude` -- paint random patches of background texture over an image (seeded).
* :class:`ShapeLandmarks` / :func:`shape_landmarks` -- one shape per scene and its 5
  landmarks (the centre and the top, right, bottom and left extreme points of the shape,
  :func:`minicnn.data.shapes.make_scene`), optionally occluded.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from minicnn.data import rng as data_rng
from minicnn.data.canvas import textured_background
from minicnn.data.dataset import Dataset
from minicnn.data.shapes import SHAPE_CLASSES, SHAPE_KEYPOINT_FLIP, make_scene

__all__ = [
    "DECODERS",
    "LANDMARK_NAMES",
    "RandomOcclusion",
    "ShapeLandmarks",
    "check_keypoints",
    "decode_heatmaps",
    "gaussian_heatmaps",
    "occlude",
    "shape_landmarks",
    "smooth_heatmaps",
]

LANDMARK_NAMES = ["centre", "top", "right", "bottom", "left"]
LANDMARK_FLIP = SHAPE_KEYPOINT_FLIP  # right and left swap in a mirrored scene
DECODERS = ("taylor", "quarter", "argmax")


def check_keypoints(keypoints, image_size: tuple[int, int], where: str) -> np.ndarray:
    """``keypoints`` as a float array ``(..., K, 2)`` of ``(x, y)`` inside the ``(H, W)``
    image (``0 <= x <= W``, ``0 <= y <= H``); a one-line ValueError otherwise."""
    kp = np.asarray(keypoints, dtype=np.float64)
    h, w = image_size
    if kp.ndim < 2 or kp.shape[-1] != 2:
        raise ValueError(f"{where}: keypoints must be (..., K, 2) (x, y), got shape {kp.shape}")
    if not np.isfinite(kp).all():
        raise ValueError(f"{where}: keypoints must be finite, got {kp[~np.isfinite(kp)][0]}")
    outside = (kp[..., 0] < 0) | (kp[..., 0] > w) | (kp[..., 1] < 0) | (kp[..., 1] > h)
    if outside.any():
        bad = kp[outside][0]
        raise ValueError(f"{where}: keypoint ({bad[0]:g}, {bad[1]:g}) is outside the {h}x{w} "
                         f"image, expected 0 <= x <= {w} and 0 <= y <= {h}")
    return kp


def gaussian_heatmaps(keypoints, size, sigma: float = 1.5) -> np.ndarray:
    """One Gaussian heatmap per keypoint: ``(..., K, 2) -> float32 (..., K, H, W)``.

    ``heatmap[k, i, j] = exp(-((j + 0.5 - x_k)^2 + (i + 0.5 - y_k)^2) / (2 sigma^2))``:
    1 at the keypoint, unnormalized (Tompson et al. 2014). ``size``: ``(H, W)`` or an int
    (a square). Keypoints outside the image, or not ``(..., K, 2)``: ValueError.
    """
    h, w = (size, size) if isinstance(size, int | np.integer) else tuple(int(s) for s in size)
    if h < 1 or w < 1:
        raise ValueError(f"gaussian_heatmaps: size must be positive, got {size}")
    if not sigma > 0:
        raise ValueError(f"gaussian_heatmaps: sigma must be positive, got {sigma}")
    kp = check_keypoints(keypoints, (h, w), "gaussian_heatmaps")
    xs, ys = np.arange(w) + 0.5, np.arange(h) + 0.5
    gx = np.exp(-((xs - kp[..., 0:1]) ** 2) / (2 * sigma**2))  # (..., K, W)
    gy = np.exp(-((ys - kp[..., 1:2]) ** 2) / (2 * sigma**2))  # (..., K, H)
    return (gy[..., :, None] * gx[..., None, :]).astype(np.float32)  # separable


def smooth_heatmaps(heatmaps, sigma: float) -> np.ndarray:
    """``(..., H, W)`` heatmaps convolved with a Gaussian of standard deviation ``sigma``
    pixels (float64; zeros outside the map; the kernel cut at 4 sigma and normalized to sum
    1, as ``scipy.ndimage.gaussian_filter(mode="constant")`` on the last two axes)."""
    if not sigma > 0:
        raise ValueError(f"smooth_heatmaps: sigma must be positive, got {sigma}")
    hm = np.asarray(heatmaps, dtype=np.float64)
    radius = int(4 * sigma + 0.5)
    weights = np.exp(-np.arange(-radius, radius + 1) ** 2 / (2 * sigma**2))
    weights /= weights.sum()

    def band(n: int) -> np.ndarray:  # (n, n): row i holds the kernel centred on i
        d = np.arange(n)[:, None] - np.arange(n)[None, :]
        return np.where(np.abs(d) <= radius, weights[np.clip(d + radius, 0, 2 * radius)], 0.0)

    return band(hm.shape[-2]) @ hm @ band(hm.shape[-1]).T


def decode_heatmaps(heatmaps, method: str = "taylor",
                    smooth: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints from heatmaps: ``(..., K, H, W) -> (keypoints (..., K, 2), peaks (..., K))``.

    The argmax pixel's centre, refined by ``method`` (see the module docstring):

    * ``"taylor"`` (DARK): with ``L = log(heatmap)``, its gradient ``g`` and Hessian ``Hs``
      by central differences at the peak, the offset ``-Hs^-1 g`` (Newton's step to the
      maximum of the quadratic through the peak); kept when ``Hs`` is negative definite
      and the step is at most a pixel, else no offset. A peak on the border is not refined.
    * ``"quarter"``: ``0.25 * sign(right - left)`` in x (and likewise in y).
    * ``"argmax"``: no refinement (an error up to half a pixel).

    ``smooth`` > 0: decode :func:`smooth_heatmaps` of the heatmaps (``sigma = smooth``)
    instead (DARK's modulation; give it non-negative maps, e.g. probabilities). ``peaks``
    is the (unsmoothed) heatmap's value at the decoded pixel (a confidence).
    """
    if method not in DECODERS:
        raise ValueError(f"decode_heatmaps: method must be one of {DECODERS}, got {method!r}")
    hm = np.asarray(heatmaps, dtype=np.float64)
    if hm.ndim < 3:
        raise ValueError(f"decode_heatmaps: heatmaps must be (..., K, H, W), got shape "
                         f"{hm.shape}")
    if smooth < 0:
        raise ValueError(f"decode_heatmaps: smooth must be 0 (none) or a positive sigma, got "
                         f"{smooth}")
    lead, (h, w) = hm.shape[:-2], hm.shape[-2:]
    raw = hm.reshape(-1, h, w)
    flat = smooth_heatmaps(raw, smooth) if smooth else raw
    index = flat.reshape(len(flat), -1).argmax(1)
    iy, ix = np.divmod(index, w)
    peaks = raw[np.arange(len(flat)), iy, ix]
    offset = np.zeros((len(flat), 2))
    inner = (ix > 0) & (ix < w - 1) & (iy > 0) & (iy < h - 1)
    if method != "argmax" and inner.any():
        n, y, x = np.nonzero(inner)[0], iy[inner], ix[inner]
        patch = flat[n[:, None, None], y[:, None, None] + np.arange(-1, 2)[None, :, None],
                     x[:, None, None] + np.arange(-1, 2)[None, None, :]]  # (M, 3, 3)
        offset[inner] = (_taylor_offset if method == "taylor" else _quarter_offset)(patch)
    xy = np.stack([ix + 0.5, iy + 0.5], 1) + offset
    return xy.reshape(*lead, 2).astype(np.float32), peaks.reshape(lead).astype(np.float32)


def _quarter_offset(patch: np.ndarray) -> np.ndarray:
    """``(M, 3, 3)`` neighbourhoods of the peaks -> ``(M, 2)`` quarter-pixel offsets."""
    dx = np.sign(patch[:, 1, 2] - patch[:, 1, 0])
    dy = np.sign(patch[:, 2, 1] - patch[:, 0, 1])
    return 0.25 * np.stack([dx, dy], 1)


def _taylor_offset(patch: np.ndarray) -> np.ndarray:
    """``(M, 3, 3)`` neighbourhoods of the peaks -> ``(M, 2)`` Newton offsets of the log."""
    log = np.log(np.maximum(patch, 1e-10))
    gx = (log[:, 1, 2] - log[:, 1, 0]) / 2
    gy = (log[:, 2, 1] - log[:, 0, 1]) / 2
    dxx = log[:, 1, 2] - 2 * log[:, 1, 1] + log[:, 1, 0]
    dyy = log[:, 2, 1] - 2 * log[:, 1, 1] + log[:, 0, 1]
    dxy = (log[:, 2, 2] - log[:, 2, 0] - log[:, 0, 2] + log[:, 0, 0]) / 4
    det = dxx * dyy - dxy**2
    ok = (dxx < 0) & (det > 0)  # negative definite: a maximum
    det = np.where(ok, det, 1.0)
    # -H^-1 g with H^-1 = [[dyy, -dxy], [-dxy, dxx]] / det
    off = -np.stack([dyy * gx - dxy * gy, dxx * gy - dxy * gx], 1) / det[:, None]
    ok &= (np.abs(off) <= 1).all(1)
    return np.where(ok[:, None], off, 0.0)


def occlude(image: np.ndarray, rng: np.random.Generator, count: int = 1,
            keypoints=None, scale: tuple[float, float] = (0.25, 0.4)) -> np.ndarray:
    """``image (C, H, W)`` with ``count`` square patches of background texture painted over
    it (a new array). Each side is drawn from ``scale`` (fractions of the image's side);
    with ``keypoints (K, 2)`` each patch is centred near a random one of them (within a
    quarter side), so it hides a landmark, else anywhere."""
    image = np.array(image, dtype=np.float32)
    c, h, w = image.shape
    texture = textured_background(rng, max(h, w))[:c, :h, :w]
    for _ in range(count):
        side = max(1, round(rng.uniform(*scale) * min(h, w)))
        if keypoints is not None and len(keypoints):
            cx, cy = np.asarray(keypoints)[rng.integers(len(keypoints))]
            cx, cy = cx + rng.uniform(-0.25, 0.25) * side, cy + rng.uniform(-0.25, 0.25) * side
        else:
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        left = int(np.clip(round(cx - side / 2), 0, w - side))
        top = int(np.clip(round(cy - side / 2), 0, h - side))
        image[:, top:top + side, left:left + side] = texture[:, top:top + side,
                                                             left:left + side]
    return image


class RandomOcclusion:
    """A joint transform: with probability ``p``, :func:`occlude` the image with ``count``
    patches near the target's ``keypoints`` (drawn from :func:`minicnn.data.rng.current`,
    seeded per batch by the DataLoader); the target is unchanged (the landmarks are where
    they were, hidden or not)."""

    def __init__(self, p: float = 0.5, count: int = 1):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomOcclusion: p must be in [0, 1], got {p}")
        if count < 1:
            raise ValueError(f"RandomOcclusion: count must be at least 1, got {count}")
        self.p, self.count = p, count

    def __call__(self, image, target):
        rng = data_rng.current()
        if rng.random() < self.p:
            kp = target.get("keypoints") if isinstance(target, dict) else None
            kp = None if kp is None else np.asarray(kp)[..., :2].reshape(-1, 2)
            image = occlude(image, rng, self.count, kp)
        return image, target

    def __repr__(self) -> str:
        return f"RandomOcclusion(p={self.p}, count={self.count})"


class ShapeLandmarks(Dataset):
    """``n`` scenes of one shape each; ``dataset[i]`` is ``(image float32 (3, size, size),
    keypoints float32 (5, 2))``: the ``(x, y)`` of :data:`LANDMARK_NAMES` (the shape's centre
    and its top, right, bottom and left extreme points), drawn from the seed ``(seed, i)``
    by :func:`minicnn.data.shapes.make_scene` (classes balanced: ``i % 4``).

    ``occlusion`` (a probability): scene ``i`` gets an occluder, a patch of background
    texture over one of its landmarks (:func:`occlude`), with that probability, drawn from
    the seed ``(seed, i, 2)`` -- the same occluders every epoch (for test sets; for
    training, :class:`RandomOcclusion` draws new ones per batch). ``transforms``: joint
    transforms ``(image, {"keypoints": (5, 2)}) -> (image, target)``
    (:mod:`minicnn.data.joint_transforms`; flip with ``keypoint_flip=LANDMARK_FLIP``).
    """

    def __init__(self, n: int = 1000, size: int = 32, seed: int = 0, occlusion: float = 0.0,
                 transforms: Callable | None = None):
        if n < 1:
            raise ValueError(f"ShapeLandmarks: n must be positive, got {n}")
        if not 0 <= occlusion <= 1:
            raise ValueError(f"ShapeLandmarks: occlusion must be a probability in [0, 1], got "
                             f"{occlusion}")
        self.n, self.size, self.seed, self.occlusion = n, size, seed, occlusion
        self.transforms = transforms
        self.landmarks = list(LANDMARK_NAMES)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        if not 0 <= index < self.n:
            raise IndexError(f"ShapeLandmarks: index {index} out of range for {self.n} scenes")
        kind = index % len(SHAPE_CLASSES)
        scene = make_scene((self.seed, index), self.size, 1, [kind])
        image, keypoints = scene["image"], scene["keypoints"][0]
        rng = np.random.default_rng((self.seed, index, 2))
        if self.occlusion and rng.random() < self.occlusion:
            image = occlude(image, rng, 1, keypoints)  # over one of the landmarks
        if self.transforms is not None:
            image, target = self.transforms(image, {"keypoints": keypoints})
            keypoints = target["keypoints"]
        return image, np.asarray(keypoints, dtype=np.float32)


def shape_landmarks(train: bool = True, n: int | None = None, size: int = 32,
                    occlusion: float = 0.0, transforms: Callable | None = None
                    ) -> ShapeLandmarks:
    """The landmark split of ``shapes``: 2,000 train scenes (seed 4) or 500 test scenes
    (seed 5), seeds apart from the classification (0, 1) and detection (2, 3) splits."""
    if n is None:
        n = 2000 if train else 500
    return ShapeLandmarks(n, size, seed=4 if train else 5, occlusion=occlusion,
                          transforms=transforms)
