"""Faster R-CNN's region proposal parts against torchvision: ``AnchorGenerator`` (the same
anchors), ``BalancedPositiveNegativeSampler`` (its counts, its eligible elements, seeded
through ``minicnn.manual_seed``), ``RPNHead`` + ``RegionProposalNetwork`` (with
torchvision's weights copied: the same proposals in eval and training mode, and, with the
sampler's random choice made the same, the same two losses and feature gradients) in
float64."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torchvision.models.detection import _utils as tv_utils
from torchvision.models.detection import anchor_utils as tv_anchor
from torchvision.models.detection import image_list as tv_image_list
from torchvision.models.detection import rpn as tv_rpn

import minicnn
from minicnn.autograd import Tensor
from minicnn.models.detection import (
    AnchorGenerator,
    BalancedPositiveNegativeSampler,
    ImageList,
    RegionProposalNetwork,
    RPNHead,
)

SIZES = ((16, 24), (32,), (48, 64))
RATIOS = ((0.5, 1.0, 2.0),) * 3
RPN_SIZES = ((16,), (32,), (64,))  # 3 anchors per cell on every level, as RPNHead needs


@pytest.mark.parametrize("sizes,ratios", [(((128, 256, 512),), ((0.5, 1.0, 2.0),)),
                                          (SIZES, ((0.5,), (1.0, 3.0), (0.25, 1.0)))])
def test_anchor_generator_equals_torchvision(sizes, ratios):
    ours, tv = AnchorGenerator(sizes, ratios), tv_anchor.AnchorGenerator(sizes, ratios)
    assert ours.num_anchors_per_location() == tv.num_anchors_per_location()
    shapes = [(16, 13), (8, 7), (4, 4)][:len(sizes)]
    feats = [np.zeros((2, 1, h, w), np.float32) for h, w in shapes]
    images = np.zeros((2, 3, 64, 52), np.float32)
    a = ours(ImageList(Tensor(images), [(64, 50), (60, 52)]), [Tensor(f) for f in feats])
    a_t = tv(tv_image_list.ImageList(torch.tensor(images), [(64, 50), (60, 52)]),
             [torch.tensor(f) for f in feats])
    assert len(a) == len(a_t) == 2
    for x, t in zip(a, a_t):
        assert x.dtype == np.float32
        np.testing.assert_array_equal(x.numpy(), t.numpy())


def test_anchor_generator_bad_input():
    with pytest.raises(ValueError, match="one entry per feature map"):
        AnchorGenerator(((16,), (32,)), ((1.0,),) * 3)
    gen = AnchorGenerator(((16,),), ((1.0,),))
    with pytest.raises(ValueError, match="2 feature maps"):
        gen(ImageList(minicnn.zeros(1, 3, 32, 32), [(32, 32)]),
            [minicnn.zeros(1, 1, 8, 8), minicnn.zeros(1, 1, 4, 4)])


def test_sampler_counts_and_seed():
    rng = np.random.default_rng(0)
    matched = [Tensor(rng.integers(-1, 3, size=300)), Tensor(np.r_[np.zeros(50), np.ones(3)]
                                                            .astype(np.int64))]
    sampler = BalancedPositiveNegativeSampler(64, 0.25)
    minicnn.manual_seed(7)
    pos, neg = sampler(matched)
    minicnn.manual_seed(7)
    pos2, neg2 = sampler(matched)
    for p, n, p2, n2, m in zip(pos, neg, pos2, neg2, matched):
        p, n, m = p.numpy().astype(bool), n.numpy().astype(bool), m.numpy()
        np.testing.assert_array_equal(p, p2.numpy().astype(bool))
        np.testing.assert_array_equal(n, n2.numpy().astype(bool))
        assert (m[p] >= 1).all() and (m[n] == 0).all()
        assert p.sum() == min(16, (m >= 1).sum())
        assert n.sum() == min(64 - p.sum(), (m == 0).sum())
    pos3, _ = sampler(matched)  # a fresh draw differs
    assert not np.array_equal(pos3[0].numpy(), pos[0].numpy())
    with pytest.raises(ValueError, match="positive_fraction"):
        BalancedPositiveNegativeSampler(64, 1.5)


class _Replay:
    """A sampler that returns recorded masks (torchvision's draw, replayed in minicnn)."""

    def __init__(self, record):
        self.record = record

    def __call__(self, matched_idxs):
        matched_t, (pos, neg) = self.record.pop(0)
        for m, m_t in zip(matched_idxs, matched_t):  # sampling among the same labels
            np.testing.assert_array_equal(m.numpy(), m_t.numpy())
        return [Tensor(p.numpy()) for p in pos], [Tensor(n.numpy()) for n in neg]


def record_sampler(tv_module):
    """Wrap ``tv_module.fg_bg_sampler`` so that every draw is recorded with the labels it was
    drawn from; returns the list (run torchvision first, then minicnn with :class:`_Replay`)."""
    record, sampler = [], tv_module.fg_bg_sampler

    def draw(matched_idxs):
        out = sampler(matched_idxs)
        record.append(([m.clone() for m in matched_idxs], out))
        return out

    tv_module.fg_bg_sampler = draw
    return record


def _rpn_pair(score_thresh=0.0):
    torch.manual_seed(0)
    head_t = tv_rpn.RPNHead(6, 3)
    for p in head_t.parameters():
        torch.nn.init.normal_(p, std=0.2)
    kwargs = dict(fg_iou_thresh=0.7, bg_iou_thresh=0.3, batch_size_per_image=32,
                  positive_fraction=0.5, pre_nms_top_n={"training": 60, "testing": 40},
                  post_nms_top_n={"training": 30, "testing": 20}, nms_thresh=0.7,
                  score_thresh=score_thresh)
    tv = tv_rpn.RegionProposalNetwork(tv_anchor.AnchorGenerator(RPN_SIZES, RATIOS), head_t,
                                      **kwargs).double()
    head = RPNHead(6, 3)
    assert list(head.state_dict()) == list(head_t.state_dict())
    head.load_state_dict({k: v.numpy() for k, v in head_t.state_dict().items()})
    ours = RegionProposalNetwork(AnchorGenerator(RPN_SIZES, RATIOS), head.to(dtype=np.float64),
                                 **kwargs)
    return ours, tv


def _inputs():
    rng = np.random.default_rng(3)
    images = np.zeros((2, 3, 64, 64))
    sizes = [(64, 60), (52, 64)]
    feats = OrderedDict((str(i), rng.standard_normal((2, 6, s, s)))
                        for i, s in enumerate((16, 8, 4)))
    boxes = [np.array([[5.0, 6.0, 30.0, 40.0], [20.0, 10.0, 58.0, 50.0]]),
             np.array([[2.0, 30.0, 20.0, 50.0]])]
    return images, sizes, feats, boxes


@pytest.mark.parametrize("training", [False, True])
def test_rpn_proposals_and_losses_equal_torchvision(training):
    ours, tv = _rpn_pair(score_thresh=0.2 if not training else 0.0)
    ours.train(training)
    tv.train(training)
    images, sizes, feats, boxes = _inputs()
    f_ours = OrderedDict((k, minicnn.tensor(v, requires_grad=True)) for k, v in feats.items())
    f_tv = OrderedDict((k, torch.tensor(v, requires_grad=True)) for k, v in feats.items())
    targets = [{"boxes": Tensor(b), "labels": Tensor(np.ones(len(b), np.int64))} for b in boxes]
    targets_t = [{"boxes": torch.tensor(b), "labels": torch.ones(len(b), dtype=torch.int64)}
                 for b in boxes]
    if training:
        ours.fg_bg_sampler = _Replay(record_sampler(tv))
    props_t, losses_t = tv(tv_image_list.ImageList(torch.tensor(images), sizes), f_tv,
                           targets_t if training else None)
    props, losses = ours(ImageList(Tensor(images), sizes), f_ours,
                         targets if training else None)
    for p, p_t in zip(props, props_t):
        assert p.shape == tuple(p_t.shape) and p.shape[0] > 5
        np.testing.assert_allclose(p.numpy(), p_t.numpy(), rtol=1e-12, atol=1e-9)
    assert sorted(losses) == sorted(losses_t) == (
        ["loss_objectness", "loss_rpn_box_reg"] if training else [])
    if training:
        for k in losses:
            assert losses[k].item() > 0
            # torchvision's anchor labels are float32, so its objectness loss is float32
            np.testing.assert_allclose(losses[k].item(), losses_t[k].item(),
                                       rtol=1e-6 if k == "loss_objectness" else 1e-12)
        (losses["loss_objectness"] + 3 * losses["loss_rpn_box_reg"]).backward()
        (losses_t["loss_objectness"] + 3 * losses_t["loss_rpn_box_reg"]).backward()
        for k in feats:
            np.testing.assert_allclose(f_ours[k].grad.numpy(), f_tv[k].grad.numpy(),
                                       rtol=1e-9, atol=1e-12)


def test_rpn_image_without_boxes_gives_only_negatives():
    ours, tv = _rpn_pair()
    images, sizes, feats, boxes = _inputs()
    targets = [{"boxes": Tensor(np.zeros((0, 4))), "labels": Tensor(np.zeros(0, np.int64))},
               {"boxes": Tensor(boxes[1]), "labels": Tensor(np.ones(1, np.int64))}]
    targets_t = [{k: torch.tensor(v.numpy()) for k, v in t.items()} for t in targets]
    ours.fg_bg_sampler = _Replay(record_sampler(tv))
    _, losses_t = tv(tv_image_list.ImageList(torch.tensor(images), sizes),
                     OrderedDict((k, torch.tensor(v)) for k, v in feats.items()), targets_t)
    _, losses = ours(ImageList(Tensor(images), sizes),
                     OrderedDict((k, Tensor(v)) for k, v in feats.items()), targets)
    assert sorted(losses) == ["loss_objectness", "loss_rpn_box_reg"]
    for k in losses:
        np.testing.assert_allclose(losses[k].item(), losses_t[k].item(), rtol=1e-6)


def test_tv_sampler_is_what_we_replay():
    """The replay helper records torchvision's own sampler (not a copy of ours)."""
    assert isinstance(_rpn_pair()[1].fg_bg_sampler, tv_utils.BalancedPositiveNegativeSampler)
