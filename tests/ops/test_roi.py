"""roi_align, roi_pool and MultiScaleRoIAlign against torchvision.ops, on every backend.

Random features and boxes (fixed seeds): boxes partly or wholly outside the map, tiny and
huge boxes (the adaptive sampling grid grows with the box), several images, empty box
lists; ``aligned`` both ways, several sampling ratios and spatial scales; float32 and
float64. Forward outputs and the input gradients must equal torchvision's; gradcheck in
float64; bad arguments raise one-line errors that name them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

import minicnn
from minicnn import ops
from minicnn.backend import get_backend, to_device
from tests.conftest import AVAILABLE_BACKENDS, device_of
from tests.helpers import max_rel_err

DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: 2e-6, np.float64: 1e-12}  # max_rel_err against torchvision


def random_boxes(n: int, size: float, rng, dtype=np.float32) -> np.ndarray:
    """``n`` boxes (x1, y1, x2, y2) over an image of ``size`` pixels: most inside, some
    hanging off any edge, some wholly outside, some below one pixel, some nearly as big as
    the image."""
    xy = rng.uniform(-0.2 * size, 1.1 * size, (n, 2))
    wh = rng.uniform(0.0, 0.6 * size, (n, 2))
    wh[::5] *= 0.02  # tiny boxes
    wh[1::7] = 1.2 * size  # huge boxes: a wide adaptive sampling grid
    return np.concatenate([xy, xy + wh], axis=1).astype(dtype)


def random_rois(n: int, n_images: int, size: float, rng, dtype=np.float32) -> np.ndarray:
    """``(n, 5)`` rows ``(batch_index, x1, y1, x2, y2)``."""
    batch = rng.integers(0, n_images, (n, 1)).astype(dtype)
    return np.concatenate([batch, random_boxes(n, size, rng, dtype)], axis=1)


def _pair(a: np.ndarray, device: str, requires_grad: bool = False):
    return (minicnn.tensor(a.copy(), device=device, requires_grad=requires_grad),
            torch.tensor(a.copy(), requires_grad=requires_grad))


def _compare(ours_fn, theirs_fn, x: np.ndarray, device: str, seed: int = 1):
    """Outputs and input gradients (for a random output gradient) of both functions."""
    xm, xt = _pair(x, device, requires_grad=True)
    out_m, out_t = ours_fn(xm), theirs_fn(xt)
    assert tuple(out_m.shape) == tuple(out_t.shape)
    assert out_m.dtype == x.dtype
    tol = TOLERANCE[x.dtype.type]
    assert max_rel_err(out_m, out_t) < tol
    g = np.random.default_rng(seed).standard_normal(tuple(out_t.shape)).astype(x.dtype)
    out_m.backward(minicnn.tensor(g, device=device))
    out_t.backward(torch.tensor(g))
    assert max_rel_err(xm.grad, xt.grad) < tol
    return out_m


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 0, 1, 2, 3])
@pytest.mark.parametrize("spatial_scale", [1.0, 0.25, 1 / 16])
def test_roi_align_equals_torchvision(backend, dtype, aligned, sampling_ratio, spatial_scale):
    rng = np.random.default_rng(0)
    device = device_of(backend)
    x = rng.standard_normal((3, 4, 13, 17)).astype(dtype)
    size = 17 / spatial_scale
    rois = random_rois(40, 3, size, rng, dtype)
    rm, rt = _pair(rois, device)
    kw = {"output_size": (3, 5), "spatial_scale": spatial_scale,
          "sampling_ratio": sampling_ratio, "aligned": aligned}
    _compare(lambda t: ops.roi_align(t, rm, **kw),
             lambda t: torchvision.ops.roi_align(t, rt, **kw), x, device)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spatial_scale", [1.0, 0.5, 1 / 16])
def test_roi_pool_equals_torchvision(backend, dtype, spatial_scale):
    rng = np.random.default_rng(1)
    device = device_of(backend)
    x = rng.standard_normal((2, 3, 11, 14)).astype(dtype)
    rois = random_rois(40, 2, 14 / spatial_scale, rng, dtype)
    rm, rt = _pair(rois, device)
    _compare(lambda t: ops.roi_pool(t, rm, (4, 3), spatial_scale),
             lambda t: torchvision.ops.roi_pool(t, rt, (4, 3), spatial_scale), x, device)


@pytest.mark.parametrize("op", ["roi_align", "roi_pool"])
def test_list_of_boxes_per_image_with_an_empty_one(backend, op):
    """A list of (K_i, 4) boxes, one image without boxes, equals torchvision on the list."""
    rng = np.random.default_rng(2)
    device = device_of(backend)
    x = rng.standard_normal((3, 2, 9, 10)).astype(np.float32)
    boxes = [random_boxes(6, 10, rng), np.zeros((0, 4), np.float32), random_boxes(4, 10, rng)]
    ours = [minicnn.tensor(b, device=device) for b in boxes]
    theirs = [torch.tensor(b) for b in boxes]
    out = _compare(lambda t: getattr(ops, op)(t, ours, 2),
                   lambda t: getattr(torchvision.ops, op)(t, theirs, 2), x, device)
    assert tuple(out.shape) == (10, 2, 2, 2)


@pytest.mark.parametrize("op", ["roi_align", "roi_pool"])
def test_no_boxes_at_all(backend, op):
    """No RoIs: a (0, C, oh, ow) output whose gradient is zero everywhere."""
    device = device_of(backend)
    x = minicnn.tensor(np.ones((2, 3, 5, 5), np.float32), device=device, requires_grad=True)
    for boxes in (minicnn.zeros(0, 5, device=device),
                  [minicnn.zeros(0, 4, device=device), minicnn.zeros(0, 4, device=device)]):
        out = getattr(ops, op)(x, boxes, (2, 3))
        assert tuple(out.shape) == (0, 3, 2, 3)
        x.grad = None
        out.sum().backward()
        assert x.grad is not None and not to_device(x.grad.array, "cpu").any()


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_roi_align_gradcheck(backend, aligned, sampling_ratio):
    rng = np.random.default_rng(3)
    device = device_of(backend)
    x = minicnn.tensor(rng.standard_normal((2, 2, 6, 7)), device=device, requires_grad=True)
    rois = minicnn.tensor(random_rois(5, 2, 7 / 0.5, rng, np.float64), device=device)
    assert minicnn.gradcheck(
        lambda t: ops.roi_align(t, rois, 3, 0.5, sampling_ratio, aligned), [x])


def test_roi_pool_gradcheck(backend):
    rng = np.random.default_rng(4)
    device = device_of(backend)
    x = minicnn.tensor(rng.standard_normal((2, 2, 6, 7)), device=device, requires_grad=True)
    rois = minicnn.tensor(random_rois(5, 2, 7, rng, np.float64), device=device)
    assert minicnn.gradcheck(lambda t: ops.roi_pool(t, rois, (2, 3)), [x])


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_degenerate_boxes(backend, aligned, sampling_ratio):
    """Zero width, zero height, a point, boxes wholly outside on each side, on a cell's edge;
    with a fixed sampling ratio also inverted boxes (x2 < x1): all as torchvision."""
    device = device_of(backend)
    x = np.random.default_rng(8).standard_normal((2, 3, 7, 9)).astype(np.float32)
    rows = [[0, 2, 1, 2, 5], [1, 1, 3, 6, 3], [0, 4, 4, 4, 4], [1, -9, -9, -2, -3],
            [0, 10, 1, 14, 5], [1, 1, 8.5, 4, 12], [0, 0, 0, 9, 7], [1, 3, 2, 4, 3]]
    if sampling_ratio > 0:
        rows += [[0, 6, 5, 2, 1], [1, 5, 1, 1, 6]]
    rois = np.asarray(rows, np.float32)
    rm, rt = _pair(rois, device)
    for op, kw in (("roi_align", {"sampling_ratio": sampling_ratio, "aligned": aligned}),
                   ("roi_pool", {})):
        _compare(lambda t, op=op, kw=kw: getattr(ops, op)(t, rm, (2, 3), **kw),
                 lambda t, op=op, kw=kw: getattr(torchvision.ops, op)(t, rt, (2, 3), **kw),
                 x, device)


@pytest.mark.parametrize("op", ["roi_align", "roi_pool"])
def test_strided_input_view(backend, op):
    """Every second channel of a larger map (a non-contiguous view) as torchvision's."""
    rng = np.random.default_rng(7)
    device = device_of(backend)
    base = rng.standard_normal((2, 6, 9, 10)).astype(np.float32)
    rois = random_rois(12, 2, 10, rng)
    xm, xt = _pair(base, device, requires_grad=True)
    out_m = getattr(ops, op)(xm[:, ::2], minicnn.tensor(rois, device=device), (3, 2))
    out_t = getattr(torchvision.ops, op)(xt[:, ::2], torch.tensor(rois), (3, 2))
    assert max_rel_err(out_m, out_t) < 2e-6
    g = rng.standard_normal(tuple(out_t.shape)).astype(np.float32)
    out_m.backward(minicnn.tensor(g, device=device))
    out_t.backward(torch.tensor(g))
    assert max_rel_err(xm.grad, xt.grad) < 2e-6


@pytest.mark.parametrize("backend_name", [b for b in AVAILABLE_BACKENDS if b != "numpy"])
def test_fast_backends_have_their_own_kernels(backend_name):
    """The tests above ran the compiled kernels, not the reference: numba has all four,
    cupy all but roi_pool's backward (the reference's bincount runs on the GPU)."""
    own = {"roi_align", "roi_align_backward", "roi_pool"}
    if backend_name == "numba":
        own.add("roi_pool_backward")
    assert own <= set(get_backend(backend_name).overrides())


def test_modules_equal_the_functions():
    rng = np.random.default_rng(5)
    x = minicnn.tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32))
    rois = minicnn.tensor(random_rois(6, 2, 16, rng))
    align = ops.RoIAlign((2, 2), 0.5, 2, aligned=True)
    pool = ops.RoIPool(3, 0.5)
    np.testing.assert_array_equal(align(x, rois).numpy(),
                                  ops.roi_align(x, rois, (2, 2), 0.5, 2, True).numpy())
    np.testing.assert_array_equal(pool(x, rois).numpy(), ops.roi_pool(x, rois, 3, 0.5).numpy())
    assert repr(align) == repr(torchvision.ops.RoIAlign((2, 2), 0.5, 2, aligned=True))
    assert repr(pool) == repr(torchvision.ops.RoIPool(3, 0.5))


def _pyramid(rng, n_images=2, channels=4, names=("0", "1", "2", "3")):
    """Maps at strides 4, 8, 16, 32 of a 256 x 320 batch (and one map not to be used)."""
    maps = {name: rng.standard_normal((n_images, channels, 64 >> i, 80 >> i)).astype(np.float32)
            for i, name in enumerate(names)}
    maps["pool"] = rng.standard_normal((n_images, channels, 4, 5)).astype(np.float32)
    return maps


@pytest.mark.parametrize("featmap_names", [["0", "1", "2", "3"], ["1", "3"], ["2"]])
def test_multiscale_roi_align_equals_torchvision(backend, featmap_names):
    """Boxes of every size, so that each level gets some; one image with no boxes."""
    rng = np.random.default_rng(6)
    device = device_of(backend)
    maps = _pyramid(rng)
    xy = rng.uniform(0, 200, (60, 2))
    wh = np.exp(rng.uniform(np.log(4), np.log(900), (60, 2)))
    boxes = [np.concatenate([xy, xy + wh], 1).astype(np.float32)[:45],
             np.zeros((0, 4), np.float32),
             np.concatenate([xy, xy + wh], 1).astype(np.float32)[45:]]
    image_shapes = [(256, 320), (250, 300), (240, 310)]
    maps = {k: np.concatenate([v, v[:1]]) for k, v in maps.items()}  # three images
    ours = ops.MultiScaleRoIAlign(featmap_names, 7, 2)
    theirs = torchvision.ops.MultiScaleRoIAlign(featmap_names, 7, 2)
    levels = theirs.map_levels
    feats_m = {k: minicnn.tensor(v, device=device, requires_grad=True) for k, v in maps.items()}
    feats_t = {k: torch.tensor(v, requires_grad=True) for k, v in maps.items()}
    out_m = ours(feats_m, [minicnn.tensor(b, device=device) for b in boxes], image_shapes)
    out_t = theirs(feats_t, [torch.tensor(b) for b in boxes], image_shapes)
    assert levels is None and ours.scales == theirs.scales
    assert max_rel_err(out_m, out_t) < 2e-6
    if len(featmap_names) > 1:  # each box's level as torchvision's; each map is used
        theirs_levels = theirs.map_levels([torch.tensor(b) for b in boxes]).numpy()
        ours_levels = ours.map_levels([minicnn.tensor(b, device=device) for b in boxes])
        np.testing.assert_array_equal(to_device(ours_levels.array, "cpu"), theirs_levels)
        assert len(set(theirs_levels.tolist())) >= len(featmap_names)
    g = rng.standard_normal(tuple(out_t.shape)).astype(np.float32)
    out_m.backward(minicnn.tensor(g, device=device))
    out_t.backward(torch.tensor(g))
    for name in featmap_names:
        assert max_rel_err(feats_m[name].grad, feats_t[name].grad) < 2e-6
    assert feats_m["pool"].grad is None
    assert repr(ours) == repr(theirs)


def test_bad_input_names_the_argument():
    x = minicnn.zeros(2, 3, 8, 8)
    rois = minicnn.zeros(4, 5)
    cases = [
        (ValueError, r"boxes must have shape \(K, 5\).*got \(4, 4\)",
         lambda: ops.roi_align(x, minicnn.zeros(4, 4), 2)),
        (ValueError, r"boxes\[1\] must have shape \(K, 4\).*got \(3, 5\)",
         lambda: ops.roi_pool(x, [minicnn.zeros(2, 4), minicnn.zeros(3, 5)], 2)),
        (TypeError, "boxes must be a \\(K, 5\\) Tensor or a list", lambda: ops.roi_align(
            x, np.zeros((4, 5), np.float32), 2)),
        (ValueError, "output_size must be positive, got -2", lambda: ops.roi_align(x, rois, -2)),
        (ValueError, r"output_size must be positive, got \(2, 0\)",
         lambda: ops.roi_pool(x, rois, (2, 0))),
        (TypeError, "output_size must be an int or a pair", lambda: ops.roi_align(x, rois, 2.5)),
        (ValueError, "spatial_scale must be a positive number, got -1",
         lambda: ops.roi_align(x, rois, 2, spatial_scale=-1)),
        (ValueError, r"input must be 4-D \(N, C, H, W\), got shape \(3, 8, 8\)",
         lambda: ops.roi_align(x[0], rois, 2)),
        (ValueError, r"batch indices in boxes\[:, 0\] must be integers in \[0, 2\)",
         lambda: ops.roi_pool(x, minicnn.tensor([[2.0, 0, 0, 4, 4]]), 2)),
        (ValueError, "boxes must hold one", lambda: ops.roi_align(x, [], 2)),
        (ValueError, "boxes must be finite", lambda: ops.roi_align(
            x, minicnn.tensor([[0.0, 1, 2, float("nan"), 4]]), 2)),
        (TypeError, "sampling_ratio must be an int", lambda: ops.roi_align(x, rois, 2, 1.0, 2.5)),
        (ValueError, r"features has no map named \['p9'\]",
         lambda: ops.MultiScaleRoIAlign(["p9"], 7, 2)({"0": x}, [minicnn.zeros(1, 4)],
                                                       [(32, 32)])),
        (ValueError, "image_shapes must hold one", lambda: ops.MultiScaleRoIAlign(["0"], 7, 2)(
            {"0": x}, [minicnn.zeros(1, 4)], [])),
    ]
    for error, message, call in cases:
        with pytest.raises(error, match=message) as info:
            call()
        assert "\n" not in str(info.value)
