"""SSD's parts against torchvision's: BoxCoder, Matcher / SSDMatcher, DefaultBoxGenerator,
GeneralizedRCNNTransform (normalise, resize, batch, postprocess); F.normalize is in
tests/nn/test_normalization.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchvision.models.detection import _utils as tv_utils
from torchvision.models.detection import anchor_utils as tv_anchor_utils
from torchvision.models.detection import transform as tv_transform
from torchvision.models.detection.image_list import ImageList as TvImageList

import minicnn
from minicnn.models.detection import (
    BoxCoder,
    DefaultBoxGenerator,
    GeneralizedRCNNTransform,
    ImageList,
    Matcher,
    SSDMatcher,
)
from tests.helpers import max_rel_err

DTYPES = [np.float32, np.float64]
TIGHT = {np.float32: 2e-6, np.float64: 1e-13}  # relative, in units of max(1, max|ref|)


def random_xyxy(n: int, rng, scale: float = 300.0, dtype=np.float64) -> np.ndarray:
    xy = rng.uniform(0, scale, (n, 2))
    wh = rng.uniform(1, 0.4 * scale, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(dtype)


# ---------------------------------------------------------------- BoxCoder


@pytest.mark.parametrize("dtype", DTYPES)
def test_box_coder_encode_decode_equal_torchvision(dtype):
    rng = np.random.default_rng(0)
    gt, anchors = random_xyxy(500, rng, dtype=dtype), random_xyxy(500, rng, dtype=dtype)
    ours, theirs = BoxCoder((10.0, 10.0, 5.0, 5.0)), tv_utils.BoxCoder((10.0, 10.0, 5.0, 5.0))
    enc = ours.encode_single(minicnn.tensor(gt), minicnn.tensor(anchors))
    enc_t = theirs.encode_single(torch.from_numpy(gt), torch.from_numpy(anchors))
    assert enc.dtype == dtype and max_rel_err(enc, enc_t) <= TIGHT[dtype]
    # two boxes per anchor, offsets large enough that exp(dw) hits bbox_xform_clip
    codes = rng.normal(0, 15, (500, 8)).astype(dtype)
    dec = ours.decode_single(minicnn.tensor(codes), minicnn.tensor(anchors))
    dec_t = theirs.decode_single(torch.from_numpy(codes), torch.from_numpy(anchors))
    assert (np.abs(codes[:, 2::4] / 5) > math.log(1000 / 16)).any()
    assert max_rel_err(dec, dec_t) <= TIGHT[dtype]
    # the list forms
    split = [200, 300]
    parts = ours.encode([minicnn.tensor(gt[:200]), minicnn.tensor(gt[200:])],
                        [minicnn.tensor(anchors[:200]), minicnn.tensor(anchors[200:])])
    parts_t = theirs.encode([torch.from_numpy(gt[:200]), torch.from_numpy(gt[200:])],
                            [torch.from_numpy(anchors[:200]), torch.from_numpy(anchors[200:])])
    assert [p.shape[0] for p in parts] == split
    for p, pt in zip(parts, parts_t, strict=True):
        assert max_rel_err(p, pt) <= TIGHT[dtype]
    dec_l = ours.decode(minicnn.tensor(codes), [minicnn.tensor(anchors)])
    dec_lt = theirs.decode(torch.from_numpy(codes), [torch.from_numpy(anchors)])
    assert max_rel_err(dec_l, dec_lt) <= TIGHT[dtype]


def test_box_coder_round_trip_and_gradient():
    """decode(encode(b)) == b, and the decode gradient equals torch's."""
    rng = np.random.default_rng(1)
    gt, anchors = random_xyxy(50, rng), random_xyxy(50, rng)
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    codes = coder.encode_single(minicnn.tensor(gt), minicnn.tensor(anchors))
    back = coder.decode_single(codes, minicnn.tensor(anchors))
    assert max_rel_err(back, gt) <= 1e-12
    codes_np = rng.normal(0, 1, (50, 4))
    w = rng.normal(0, 1, (50, 4))
    c = minicnn.tensor(codes_np, requires_grad=True)
    (coder.decode_single(c, minicnn.tensor(anchors)) * minicnn.tensor(w)).sum().backward()
    ct = torch.tensor(codes_np, requires_grad=True)
    (tv_utils.BoxCoder((10.0, 10.0, 5.0, 5.0)).decode_single(ct, torch.from_numpy(anchors))
     * torch.from_numpy(w)).sum().backward()
    assert max_rel_err(c.grad, ct.grad) <= 1e-13


def test_box_coder_bad_input():
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    with pytest.raises(ValueError, match="weights"):
        BoxCoder((1.0, 1.0))
    with pytest.raises(ValueError, match="proposals must have shape"):
        coder.encode_single(minicnn.zeros(3, 4), minicnn.zeros(3, 5))
    with pytest.raises(ValueError, match="same number of rows"):
        coder.encode_single(minicnn.zeros(3, 4), minicnn.zeros(2, 4))
    with pytest.raises(ValueError, match="rel_codes"):
        coder.decode_single(minicnn.zeros(3, 5), minicnn.zeros(3, 4))


# ---------------------------------------------------------------- matchers


def _iou_like(m: int, n: int, seed: int) -> np.ndarray:
    """A quality matrix with values on a coarse grid, so ties (within a row and within a
    column) are common."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 11, (m, n)) / 10).astype(np.float32)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("low_quality", [False, True])
def test_matcher_equals_torchvision(seed, low_quality):
    q = _iou_like(4, 60, seed)
    ours = Matcher(0.7, 0.3, allow_low_quality_matches=low_quality)(minicnn.tensor(q))
    theirs = tv_utils.Matcher(0.7, 0.3, allow_low_quality_matches=low_quality)(
        torch.from_numpy(q))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert ours.dtype == np.int64


@pytest.mark.parametrize("seed", range(8))
def test_ssd_matcher_equals_torchvision(seed):
    """Including ground truths that share their best default box (the later one wins)."""
    q = _iou_like(6, 40, seed)
    if seed % 2:
        q[:, 7] = 1.0  # every ground truth's best box is box 7
    ours = SSDMatcher(0.5)(minicnn.tensor(q))
    theirs = tv_utils.SSDMatcher(0.5)(torch.from_numpy(q))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_matcher_bad_input():
    with pytest.raises(ValueError, match="low_threshold"):
        Matcher(0.3, 0.7)
    with pytest.raises(ValueError, match="no ground-truth boxes"):
        SSDMatcher(0.5)(minicnn.zeros(0, 10))
    with pytest.raises(ValueError, match="no proposal boxes"):
        SSDMatcher(0.5)(minicnn.zeros(2, 0))


# ---------------------------------------------------------------- default boxes

SSD300_ANCHORS = dict(aspect_ratios=[[2], [2, 3], [2, 3], [2, 3], [2], [2]],
                      scales=[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05],
                      steps=[8, 16, 32, 64, 100, 300])
SSD300_GRIDS = [38, 19, 10, 5, 3, 1]
SSDLITE_ANCHORS = dict(aspect_ratios=[[2, 3]] * 6, min_ratio=0.2, max_ratio=0.95)
SSDLITE_GRIDS = [20, 10, 5, 3, 2, 1]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config, grids, image", [
    (SSD300_ANCHORS, SSD300_GRIDS, (300, 300)),
    (SSDLITE_ANCHORS, SSDLITE_GRIDS, (320, 320)),
    (SSDLITE_ANCHORS, [(12, 20), (6, 10), (3, 5), (2, 3), (1, 2), (1, 1)], (192, 320)),
    (dict(aspect_ratios=[[2]], clip=False), [(4, 6)], (40, 60)),
])
def test_default_boxes_equal_torchvision(config, grids, image, dtype):
    """Exactly torchvision's boxes (same float32 construction, same order), 8,732 for SSD300."""
    grids = [g if isinstance(g, tuple) else (g, g) for g in grids]
    ours, theirs = DefaultBoxGenerator(**config), tv_anchor_utils.DefaultBoxGenerator(**config)
    assert ours.num_anchors_per_location() == theirs.num_anchors_per_location()
    assert ours.scales == theirs.scales
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    feats = [minicnn.zeros(2, 1, h, w, dtype=dtype) for h, w in grids]
    feats_t = [torch.zeros(2, 1, h, w, dtype=tdtype) for h, w in grids]
    images = ImageList(minicnn.zeros(2, 3, *image, dtype=dtype), [image, image])
    images_t = TvImageList(torch.zeros(2, 3, *image, dtype=tdtype), [image, image])
    boxes, boxes_t = ours(images, feats), theirs(images_t, feats_t)
    assert len(boxes) == 2
    for b, bt in zip(boxes, boxes_t, strict=True):
        assert b.dtype == dtype
        np.testing.assert_array_equal(b.numpy(), bt.numpy())
    if config is SSD300_ANCHORS:
        assert boxes[0].shape == (8732, 4)


def test_default_box_generator_bad_input():
    with pytest.raises(ValueError, match="aspect_ratios and steps"):
        DefaultBoxGenerator([[2], [2]], steps=[8])
    with pytest.raises(ValueError, match="scales"):
        DefaultBoxGenerator([[2], [2]], scales=[0.1, 0.2])
    gen = DefaultBoxGenerator([[2], [2]])
    with pytest.raises(ValueError, match="feature maps"):
        gen(ImageList(minicnn.zeros(1, 3, 8, 8), [(8, 8)]), [minicnn.zeros(1, 1, 2, 2)])


# ---------------------------------------------------------------- the transform


def _images(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.random((3, 37, 53)).astype(dtype), rng.random((3, 61, 29)).astype(dtype)]


def _targets(dtype):
    masks = np.zeros((2, 37, 53), np.uint8)
    masks[0, 5:20, 3:30] = 1
    masks[1, 10:36, 20:50] = 1
    return [{"boxes": np.array([[3.0, 5.0, 30.0, 20.0], [20.5, 10.0, 50.0, 36.0]], dtype),
             "labels": np.array([1, 2]), "masks": masks,
             "keypoints": np.array([[[4.0, 6.0, 1.0], [10.0, 12.0, 0.0]]] * 2, dtype)},
            {"boxes": np.array([[0.0, 0.0, 29.0, 61.0]], dtype), "labels": np.array([3])}]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", [
    dict(min_size=300, max_size=300, size_divisible=1, fixed_size=(300, 300)),
    dict(min_size=48, max_size=70, size_divisible=32),
    dict(min_size=(40, 56), max_size=90, size_divisible=16, fixed_size=(64, 40)),
], ids=["ssd300", "min-max-size", "fixed-non-square"])
def test_transform_equals_torchvision(kwargs, dtype):
    """Normalise + bilinear resize (torchvision's exact scale handling) + padding; boxes,
    masks and keypoints resized with the image; postprocess maps boxes back."""
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    ours = GeneralizedRCNNTransform(image_mean=mean, image_std=std, **kwargs).eval()
    theirs = tv_transform.GeneralizedRCNNTransform(image_mean=mean, image_std=std,
                                                   **kwargs).eval()
    images, targets = _images(dtype), _targets(dtype)
    il, tg = ours([minicnn.tensor(i) for i in images],
                  [{k: minicnn.tensor(v) for k, v in t.items()} for t in targets])
    il_t, tg_t = theirs([torch.from_numpy(i) for i in images],
                        [{k: torch.from_numpy(v) for k, v in t.items()} for t in targets])
    assert il.image_sizes == [tuple(s) for s in il_t.image_sizes]
    assert il.tensors.shape == tuple(il_t.tensors.shape)
    assert il.tensors.dtype == dtype
    assert max_rel_err(il.tensors, il_t.tensors) <= 10 * TIGHT[dtype]
    for t, tt in zip(tg, tg_t, strict=True):
        for key in tt:
            if key == "masks":
                np.testing.assert_array_equal(t[key].numpy(), tt[key].numpy())
            else:
                assert max_rel_err(t[key], tt[key]) <= TIGHT[dtype], key
    # the caller's targets are not changed
    assert targets[0]["boxes"][0, 2] == 30.0
    # postprocess: predicted boxes back to the original sizes
    preds = [{"boxes": t["boxes"]} for t in tg]
    preds_t = [{"boxes": t["boxes"]} for t in tg_t]
    originals = [i.shape[-2:] for i in images]
    back = ours.postprocess(preds, il.image_sizes, originals)
    back_t = theirs.postprocess(preds_t, il_t.image_sizes, originals)
    for b, bt in zip(back, back_t, strict=True):
        assert max_rel_err(b["boxes"], bt["boxes"]) <= TIGHT[dtype]


def test_transform_bad_input():
    tr = GeneralizedRCNNTransform(32, 32, [0.5] * 3, [0.5] * 3)
    with pytest.raises(ValueError, match=r"images\[1\] must be a 3-d Tensor"):
        tr([minicnn.zeros(3, 8, 8), minicnn.zeros(1, 3, 8, 8)])
    with pytest.raises(TypeError, match="floating point"):
        tr([minicnn.zeros(3, 8, 8, dtype=np.uint8)])
    with pytest.raises(TypeError, match="unexpected arguments"):
        GeneralizedRCNNTransform(32, 32, [0.5] * 3, [0.5] * 3, sizze=3)
