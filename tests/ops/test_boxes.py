"""minicnn.ops box functions and NMS against torchvision.ops.

Random boxes (fixed seeds) plus the hard cases: zero-area boxes, identical boxes, boxes
that touch, one box, no boxes ``(0, 4)``, large coordinates, tied scores; float32 and
float64; gradients of the differentiable ones against torch autograd; NMS on every backend.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

import minicnn
from minicnn import ops
from tests.conftest import device_of
from tests.helpers import assert_close, pair, to_numpy

DTYPES = [np.float32, np.float64]


def random_boxes(n: int, seed: int = 0, scale: float = 100.0, dtype=np.float32) -> np.ndarray:
    """``n`` boxes (x1, y1, x2, y2); every 7th has zero width or height, two are identical."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, scale, (n, 2))
    wh = rng.uniform(0, 0.3 * scale, (n, 2))
    wh[::7, rng.integers(0, 2)] = 0.0  # zero-area boxes
    boxes = np.concatenate([xy, xy + wh], axis=1)
    if n >= 4:
        boxes[3] = boxes[1]  # identical boxes
        boxes[2, :2] = boxes[1, 2:]  # box 2 touches box 1 at its corner
    return boxes.astype(dtype)


def clustered_boxes(n: int, seed: int = 0, clusters: int = 15, dtype=np.float32) -> np.ndarray:
    """``n`` boxes on an integer grid around a few centers: many overlaps, IoUs exactly 0.5."""
    rng = np.random.default_rng(seed)
    centers = rng.integers(0, 60, (clusters, 2))[rng.integers(0, clusters, n)]
    xy = centers + rng.integers(-3, 4, (n, 2))
    boxes = np.concatenate([xy, xy + rng.integers(1, 9, (n, 2))], axis=1)
    boxes[::11, 2] = boxes[::11, 0]  # zero width
    return boxes.astype(dtype)


def random_scores(n: int, seed: int = 1, dtype=np.float32) -> np.ndarray:
    """Scores drawn from 10 levels: many ties."""
    return np.random.default_rng(seed).integers(0, 10, n).astype(dtype) / 10


CASES = {
    "random": lambda d: random_boxes(60, 0, dtype=d),
    "clustered": lambda d: clustered_boxes(80, 2, dtype=d),
    "large-coordinates": lambda d: random_boxes(40, 3, scale=1e4, dtype=d),
    "one": lambda d: random_boxes(1, 4, dtype=d),
    "empty": lambda d: np.zeros((0, 4), d),
}


def _t(a, device="cpu"):
    return minicnn.tensor(a, dtype=a.dtype, device=device)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_box_functions_equal_torchvision(backend, case, dtype):
    device = device_of(backend)
    b = CASES[case](dtype)
    b2 = random_boxes(7, 9, dtype=dtype)
    tb, tb2 = torch.tensor(b), torch.tensor(b2)
    assert_close(ops.box_area(_t(b, device)), torchvision.ops.box_area(tb))
    with np.errstate(invalid="ignore", divide="ignore"):
        for fn in ("box_iou", "generalized_box_iou"):
            ours = to_numpy(getattr(ops, fn)(_t(b, device), _t(b2, device)))
            theirs = getattr(torchvision.ops, fn)(tb, tb2).numpy()
            assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6, err_msg=fn)
    for in_fmt in ops.boxes.BOX_FORMATS:
        for out_fmt in ops.boxes.BOX_FORMATS:
            assert_close(ops.box_convert(_t(b, device), in_fmt, out_fmt),
                         torchvision.ops.box_convert(tb, in_fmt, out_fmt), msg=in_fmt + out_fmt)
    assert_close(ops.clip_boxes_to_image(_t(b, device), (50, 70)),
                 torchvision.ops.clip_boxes_to_image(tb, (50, 70)))
    for min_size in (0.0, 5.0):
        keep = to_numpy(ops.remove_small_boxes(_t(b, device), min_size))
        assert keep.dtype == np.int64
        np.testing.assert_array_equal(keep, torchvision.ops.remove_small_boxes(tb, min_size))


@pytest.mark.parametrize("dtype", DTYPES)
def test_leading_dimensions_and_formats_equal_torchvision(backend, dtype):
    """torchvision's box_convert, box_area and clip_boxes_to_image take (..., 4), box_iou and
    generalized_box_iou (..., N, 4) sets (leading dimensions broadcast); box_area and box_iou
    take a box format."""
    device = device_of(backend)
    b = random_boxes(24, 11, dtype=dtype).reshape(2, 3, 4, 4)  # zero-area boxes included
    b2 = random_boxes(10, 12, dtype=dtype).reshape(2, 1, 5, 4)
    tb, tb2 = torch.tensor(b), torch.tensor(b2)
    for boxes, tboxes in ((b, tb), (b[0, 0, 0], tb[0, 0, 0])):  # (2, 3, 4, 4) and one (4,)
        assert_close(ops.box_area(_t(boxes, device)), torchvision.ops.box_area(tboxes))
        assert_close(ops.clip_boxes_to_image(_t(boxes, device), (50, 70)),
                     torchvision.ops.clip_boxes_to_image(tboxes, (50, 70)))
        for in_fmt in ops.boxes.BOX_FORMATS:
            for out_fmt in ops.boxes.BOX_FORMATS:
                assert_close(ops.box_convert(_t(boxes, device), in_fmt, out_fmt),
                             torchvision.ops.box_convert(tboxes, in_fmt, out_fmt))
    with np.errstate(invalid="ignore", divide="ignore"):
        for fn in ("box_iou", "generalized_box_iou"):
            ours = to_numpy(getattr(ops, fn)(_t(b, device), _t(b2, device)))
            theirs = getattr(torchvision.ops, fn)(tb, tb2).numpy()
            assert ours.shape == theirs.shape == (2, 3, 4, 5)
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6, err_msg=fn)
        for fmt in ("xywh", "cxcywh"):  # the same numbers read in another format
            assert_close(ops.box_area(_t(b, device), fmt=fmt),
                         torchvision.ops.box_area(tb, fmt=fmt))
            ours = to_numpy(ops.box_iou(_t(b, device), _t(b2, device), fmt=fmt))
            theirs = torchvision.ops.box_iou(tb, tb2, fmt=fmt).numpy()
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6, err_msg=fmt)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.7])
def test_nms_and_batched_nms_equal_torchvision(backend, case, dtype, threshold):
    device = device_of(backend)
    b = CASES[case](dtype)
    s = random_scores(len(b), dtype=dtype)
    idxs = np.random.default_rng(2).integers(0, 3, len(b))
    keep = to_numpy(ops.nms(_t(b, device), _t(s, device), threshold))
    assert keep.dtype == np.int64
    np.testing.assert_array_equal(
        keep, torchvision.ops.nms(torch.tensor(b), torch.tensor(s), threshold))
    idxs_t = minicnn.tensor(idxs, device=device)
    keep = to_numpy(ops.batched_nms(_t(b, device), _t(s, device), idxs_t, threshold))
    np.testing.assert_array_equal(keep, torchvision.ops.batched_nms(
        torch.tensor(b), torch.tensor(s), torch.tensor(idxs), threshold))


@pytest.mark.parametrize("n", [999, 1000, 1001, 3000])
def test_batched_nms_on_both_sides_of_the_per_category_switch(backend, n):
    """Above ops.boxes.BATCHED_NMS_ONE_PASS boxes, one NMS runs per category (as torchvision
    does above 4,000 coordinates): the same boxes are kept, in the same order."""
    assert ops.boxes.BATCHED_NMS_ONE_PASS["cpu"] == 1000
    device = device_of(backend)
    b = clustered_boxes(n, 5, clusters=40, dtype=np.float32)
    s = np.random.default_rng(6).permutation(n).astype(np.float32) / n  # no ties
    idxs = np.random.default_rng(7).integers(0, 7, n)
    keep = to_numpy(ops.batched_nms(_t(b, device), _t(s, device),
                                    minicnn.tensor(idxs, device=device), 0.5))
    expected = torchvision.ops.batched_nms(torch.tensor(b), torch.tensor(s),
                                           torch.tensor(idxs), 0.5).numpy()
    assert 0 < len(expected) < n
    np.testing.assert_array_equal(keep, expected)


@pytest.mark.parametrize("n", [0, 1, 400])
def test_nms_kernel_every_backend_equals_reference_and_torchvision(backend, n):
    """The backend's own nms kernel (Numba loops, CuPy bitmask) against the readable one."""
    device = device_of(backend)
    for dtype in DTYPES:
        b = clustered_boxes(n, 5, clusters=3, dtype=dtype)
        s = random_scores(n, 6, dtype=dtype)
        expected = torchvision.ops.nms(torch.tensor(b), torch.tensor(s), 0.5).numpy()
        ref = minicnn.backend.reference.nms(b, s, 0.5)
        np.testing.assert_array_equal(ref, expected)
        keep = ops.nms(minicnn.tensor(b, dtype=dtype, device=device),
                       minicnn.tensor(s, dtype=dtype, device=device), 0.5)
        assert str(keep.device).startswith(device)
        assert to_numpy(keep).dtype == np.int64
        np.testing.assert_array_equal(to_numpy(keep), expected)


def _positive_boxes(n, seed):
    """Boxes with positive area and no coordinate ties (the gradients are defined)."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 10, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(1, 6, (n, 2))], axis=1)


@pytest.mark.parametrize("batch", [(), (2,)])
@pytest.mark.parametrize("fn", ["box_iou", "generalized_box_iou", "complete_box_iou"])
def test_pairwise_gradients_equal_torch(fn, batch):
    n = int(np.prod(batch))
    (m1, t1) = pair(_positive_boxes(6 * n, 0).reshape(batch + (6, 4)))
    (m2, t2) = pair(_positive_boxes(4 * n, 1).reshape(batch + (4, 4)))
    w = np.random.default_rng(2).standard_normal(batch + (6, 4))
    (getattr(ops, fn)(m1, m2) * minicnn.tensor(w, dtype=np.float64)).sum().backward()
    (getattr(torchvision.ops, fn)(t1, t2) * torch.tensor(w)).sum().backward()
    assert_close(m1.grad, t1.grad)
    assert_close(m2.grad, t2.grad)


@pytest.mark.parametrize("fn", ["box_area", "convert-cxcywh", "convert-xywh", "clip"])
def test_unary_gradients_equal_torch(fn):
    m, t = pair(_positive_boxes(8, 3))
    calls = {
        "box_area": (lambda x: ops.box_area(x), lambda x: torchvision.ops.box_area(x)),
        "convert-cxcywh": (lambda x: ops.box_convert(x, "cxcywh", "xyxy"),
                           lambda x: torchvision.ops.box_convert(x, "cxcywh", "xyxy")),
        "convert-xywh": (lambda x: ops.box_convert(x, "xyxy", "xywh"),
                         lambda x: torchvision.ops.box_convert(x, "xyxy", "xywh")),
        "clip": (lambda x: ops.clip_boxes_to_image(x, (8, 9)),
                 lambda x: torchvision.ops.clip_boxes_to_image(x, (8, 9))),
    }
    ours, theirs = calls[fn]
    out_m, out_t = ours(m), theirs(t)
    w = np.random.default_rng(4).standard_normal(tuple(out_t.shape))
    (out_m * minicnn.tensor(w, dtype=np.float64)).sum().backward()
    (out_t * torch.tensor(w)).sum().backward()
    assert_close(m.grad, t.grad)


@pytest.mark.parametrize("dtype", DTYPES)
def test_complete_box_iou_and_its_loss_equal_torchvision(backend, dtype):
    """CIoU (pairwise, with leading dimensions) and the CIoU loss (element by element, each
    reduction) on boxes of positive area -- overlapping, nested, disjoint, identical --
    forward and backward against torchvision.ops."""
    device = device_of(backend)
    b1 = _positive_boxes(12, 5).astype(dtype)
    b2 = _positive_boxes(12, 6).astype(dtype)
    b2[0] = b1[0]  # identical
    b2[1] = b1[1] + np.array([20, 20, 20, 20], dtype)  # far apart
    b2[2] = b1[2] + np.array([0.2, 0.2, -0.2, -0.2], dtype)  # nested
    ours = ops.complete_box_iou(_t(b1.reshape(3, 4, 4), device), _t(b2[:5], device))
    theirs = torchvision.ops.complete_box_iou(torch.tensor(b1.reshape(3, 4, 4)),
                                              torch.tensor(b2[:5]))
    assert ours.shape == (3, 4, 5)
    assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    for reduction in ("none", "mean", "sum"):
        ours = ops.complete_box_iou_loss(_t(b1, device), _t(b2, device), reduction)
        theirs = torchvision.ops.complete_box_iou_loss(torch.tensor(b1), torch.tensor(b2),
                                                       reduction)
        assert_close(ours, theirs, rtol=1e-5, atol=1e-6, msg=reduction)
    m1, t1 = pair(b1.astype(np.float64))
    m2, t2 = pair(b2.astype(np.float64))
    w = np.random.default_rng(7).standard_normal(12)
    (ops.complete_box_iou_loss(m1, m2) * minicnn.tensor(w)).sum().backward()
    (torchvision.ops.complete_box_iou_loss(t1, t2) * torch.tensor(w)).sum().backward()
    assert_close(m1.grad, t1.grad)
    assert_close(m2.grad, t2.grad)
    empty = _t(np.zeros((0, 4), dtype), device)
    assert float(ops.complete_box_iou_loss(empty, empty, "mean").item()) == 0.0
    with pytest.raises(ValueError, match="reduction must be 'none', 'mean' or 'sum', got 'max'"):
        ops.complete_box_iou_loss(_t(b1, device), _t(b2, device), "max")


def test_bad_input_names_the_argument():
    good = _t(random_boxes(5))
    with pytest.raises(ValueError, match=r"boxes must have shape \(\.\.\., 4\), got \(5, 3\)"):
        ops.box_area(minicnn.zeros(5, 3))
    with pytest.raises(ValueError, match=r"boxes must have shape \(N, 4\), got \(2, 5, 4\)"):
        ops.nms(minicnn.zeros(2, 5, 4), minicnn.zeros(5), 0.5)
    with pytest.raises(ValueError, match=r"boxes2 must have shape \(\.\.\., N, 4\)"):
        ops.box_iou(good, minicnn.zeros(4))
    with pytest.raises(ValueError, match="fmt must be one of"):
        ops.box_iou(good, good, fmt="yxyx")
    with pytest.raises(ValueError, match=r"scores must have shape \(5,\)"):
        ops.nms(good, minicnn.zeros(4), 0.5)
    with pytest.raises(ValueError, match="idxs must have shape"):
        ops.batched_nms(good, minicnn.zeros(5), minicnn.zeros(3), 0.5)
    with pytest.raises(ValueError, match="in_fmt must be one of"):
        ops.box_convert(good, "xyzw", "xyxy")
    with pytest.raises(ValueError, match="out_fmt must be one of"):
        ops.box_convert(good, "xyxy", "yxyx")
    with pytest.raises(TypeError, match="boxes must be a minicnn Tensor"):
        ops.nms(np.zeros((5, 4)), good[:, 0], 0.5)
    with pytest.raises(ValueError, match="size must be"):
        ops.clip_boxes_to_image(good, (5,))
