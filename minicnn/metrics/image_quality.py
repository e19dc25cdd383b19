"""Image-quality metrics for restoration: PSNR and SSIM, with scikit-image's definitions.

Both equal ``skimage.metrics.peak_signal_noise_ratio`` and
``skimage.metrics.structural_similarity`` (same arguments, same defaults, same float
precision), computed here in NumPy; NumPy arrays and minicnn Tensors are accepted.

* ``psnr = 10 log10(data_range**2 / MSE)`` in dB.
* ``ssim``: the mean over the image of Wang et al.'s (2004) local index

      SSIM(x, y) = (2 mu_x mu_y + C1)(2 sigma_xy + C2)
                   / ((mu_x**2 + mu_y**2 + C1)(sigma_x**2 + sigma_y**2 + C2)),
      C1 = (K1 data_range)**2, C2 = (K2 data_range)**2,

  with local means, variances and covariance taken over a 7x7 window (uniform weights,
  sample covariance: scikit-image's default), or -- as Wang et al. do, and as
  ``gaussian_weights=True, use_sample_covariance=False`` asks -- weighted by a Gaussian of
  ``sigma = 1.5`` truncated to 11x11 taps. Borders are mirrored ("reflect") for the local
  statistics, then a strip of the window's radius is left out of the mean.

``data_range`` is the distance between the smallest and largest possible value (1 for
images in [0, 1], 255 for uint8); for float images SSIM needs it given. Restoration
images in minicnn are float32 ``(C, H, W)`` in [0, 1]: pass ``data_range=1`` and, for
colour, ``channel_axis=0`` (the mean of the per-channel SSIMs, as scikit-image).
"""

from __future__ import annotations

import numpy as np

from minicnn.autograd.tensor import Tensor

__all__ = ["psnr", "ssim"]

# the value range scikit-image assumes for a dtype (skimage.util.dtype.dtype_range)
_FLOAT_RANGE = (-1.0, 1.0)


def _as_array(x, fn: str, name: str) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.detach().numpy()
    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise TypeError(f"{fn}: {name} must be a numeric array or Tensor, got dtype {x.dtype}")
    return x


def _pair(image_true, image_test, fn: str) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_array(image_true, fn, "image_true"), _as_array(image_test, fn, "image_test")
    if a.shape != b.shape:
        raise ValueError(f"{fn}: the images must have the same shape, got {a.shape} and "
                         f"{b.shape}")
    if a.size == 0:
        raise ValueError(f"{fn}: the images are empty (shape {a.shape})")
    return a, b


def _dtype_range(dtype: np.dtype) -> tuple[float, float]:
    if dtype.kind == "f":
        return _FLOAT_RANGE
    if dtype.kind == "b":
        return (0.0, 1.0)
    info = np.iinfo(dtype)
    return (float(info.min), float(info.max))


def _float_type(*dtypes: np.dtype) -> type:
    """scikit-image's working precision: float32 when every input is float16/32, else
    float64 (integers included)."""
    small = all(d.kind == "f" and d.itemsize <= 4 for d in dtypes)
    return np.float32 if small else np.float64


def _check_range(data_range, fn: str) -> float:
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float, np.number)) \
            or not np.isfinite(data_range) or data_range <= 0:
        raise ValueError(f"{fn}: data_range must be a positive number, got {data_range!r}")
    return float(data_range)


def psnr(image_true, image_test, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range**2 / MSE)``.

    ``image_true``, ``image_test``: arrays or Tensors of the same shape (any, e.g.
    ``(C, H, W)``; one MSE over all of it). ``data_range`` defaults as in scikit-image:
    the top of ``image_true``'s dtype range (1 for float images in [0, 1], 255 for uint8),
    or the full range for an image with negative values. Identical images give ``inf``.
    """
    fn = "psnr"
    a, b = _pair(image_true, image_test, fn)
    if data_range is None:
        lo, hi = _dtype_range(a.dtype)
        if a.min() < lo or a.max() > hi:
            raise ValueError(f"psnr: image_true has values in [{a.min()}, {a.max()}], outside "
                             f"the range [{lo}, {hi}] of its dtype {a.dtype}: give data_range")
        data_range = hi if a.min() >= 0 else hi - lo
    data_range = _check_range(data_range, fn)
    ftype = _float_type(a.dtype, b.dtype)
    diff = a.astype(ftype) - b.astype(ftype)
    mse = np.mean(diff * diff, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return float(10 * np.log10(data_range**2 / mse))


def _filter_axis(x: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    """Correlate ``x`` with ``weights`` (odd length) along ``axis``, the border mirrored
    (``d c b a | a b c d``, scipy.ndimage's "reflect"); sums in float64, returns x's dtype."""
    r = len(weights) // 2
    pad = [(0, 0)] * x.ndim
    pad[axis] = (r, r)
    padded = np.pad(x, pad, mode="symmetric")
    n = x.shape[axis]
    out = np.zeros(x.shape, dtype=np.float64)
    for k, w in enumerate(weights):
        out += w * np.take(padded, np.arange(k, k + n), axis=axis)
    return out.astype(x.dtype)


def _local_mean(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The separable weighted local mean of ``x`` over every axis."""
    for axis in range(x.ndim):
        x = _filter_axis(x, weights, axis)
    return x


def ssim(
    image_true,
    image_test,
    *,
    data_range: float | None = None,
    channel_axis: int | None = None,
    win_size: int | None = None,
    gaussian_weights: bool = False,
    sigma: float = 1.5,
    use_sample_covariance: bool = True,
    K1: float = 0.01,
    K2: float = 0.03,
    full: bool = False,
):
    """Mean structural similarity (scikit-image's ``structural_similarity``).

    ``image_true``, ``image_test``: arrays or Tensors of the same shape: ``(H, W)`` (or a
    volume), or with channels on ``channel_axis`` (``(C, H, W)`` -> ``channel_axis=0``),
    whose SSIMs are averaged. ``data_range`` is required for float images (1 for [0, 1]).
    ``win_size`` (odd; default 7, or 11 with ``gaussian_weights``) is the window's side.
    Wang et al.'s definition: ``gaussian_weights=True, use_sample_covariance=False``.
    Returns the mean SSIM as a float; with ``full=True`` also the SSIM map (the input's
    shape).
    """
    fn = "ssim"
    a, b = _pair(image_true, image_test, fn)
    if channel_axis is not None:
        if not -a.ndim <= channel_axis < a.ndim:
            raise ValueError(f"ssim: channel_axis {channel_axis} is out of range for images "
                             f"of shape {a.shape}")
        channel_axis %= a.ndim
        results = [ssim(np.take(a, c, axis=channel_axis), np.take(b, c, axis=channel_axis),
                        data_range=data_range, win_size=win_size,
                        gaussian_weights=gaussian_weights, sigma=sigma,
                        use_sample_covariance=use_sample_covariance, K1=K1, K2=K2, full=True)
                   for c in range(a.shape[channel_axis])]
        ftype = _float_type(a.dtype)
        mean = float(np.mean(np.array([m for m, _ in results], dtype=ftype)))
        if full:
            return mean, np.stack([s for _, s in results], axis=channel_axis)
        return mean
    if K1 < 0 or K2 < 0 or sigma <= 0:
        raise ValueError(f"ssim: K1, K2 must be >= 0 and sigma > 0, got K1={K1}, K2={K2}, "
                         f"sigma={sigma}")
    if gaussian_weights:
        radius = int(3.5 * sigma + 0.5)  # scikit-image truncates the Gaussian at 3.5 sigma
        taps = np.arange(-radius, radius + 1)
        weights = np.exp(-0.5 * taps**2 / sigma**2)
        weights /= weights.sum()
        win_size = 2 * radius + 1 if win_size is None else win_size
    else:
        win_size = 7 if win_size is None else win_size
        weights = np.full(win_size, 1.0 / win_size) if win_size % 2 == 1 else None
    if isinstance(win_size, bool) or not isinstance(win_size, (int, np.integer)) \
            or win_size < 1 or win_size % 2 == 0:
        raise ValueError(f"ssim: win_size must be a positive odd integer, got {win_size!r}")
    if min(a.shape) < win_size:
        raise ValueError(f"ssim: win_size {win_size} exceeds the image's extent {a.shape}; "
                         f"give a smaller odd win_size, or channel_axis for a colour image")
    if data_range is None:
        if a.dtype.kind == "f" or b.dtype.kind == "f":
            raise ValueError("ssim: data_range is required for float images (1 for images "
                             "in [0, 1])")
        lo, hi = _dtype_range(a.dtype)
        data_range = hi - lo
    data_range = _check_range(data_range, fn)

    ftype = _float_type(a.dtype)
    x, y = a.astype(ftype), b.astype(ftype)
    n = win_size**x.ndim
    cov_norm = n / (n - 1) if use_sample_covariance else 1.0
    mu_x, mu_y = _local_mean(x, weights), _local_mean(y, weights)
    var_x = cov_norm * (_local_mean(x * x, weights) - mu_x * mu_x)
    var_y = cov_norm * (_local_mean(y * y, weights) - mu_y * mu_y)
    cov_xy = cov_norm * (_local_mean(x * y, weights) - mu_x * mu_y)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    s_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)
             / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)))
    pad = (win_size - 1) // 2
    inner = s_map[tuple(slice(pad, dim - pad) for dim in s_map.shape)]
    mean = float(inner.mean(dtype=np.float64))
    return (mean, s_map) if full else mean
