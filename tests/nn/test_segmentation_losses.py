"""Segmentation losses: the per-pixel forms of BCE (C = 1) and cross-entropy (C > 1, with
class weights and ignore_index) against PyTorch and against their definition (the mean over
every pixel of N H W); ``dice_loss`` against cases worked out by hand, a PyTorch transcription
of its formula, and finite differences (gradcheck); ``DiceLoss``; bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import minicnn
import minicnn.nn.functional as F
from minicnn import nn
from tests.conftest import device_of
from tests.helpers import assert_close

# ---------------------------------------------------------------- per-pixel BCE and CE


@pytest.mark.parametrize("pos_weight", [None, 3.0])
def test_per_pixel_bce_for_one_class(backend, pos_weight):
    """C = 1: logits (N, 1, H, W), a 0/1 mask; "mean" = the sum of per-pixel losses / (N H W)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 9, 7))
    y = (rng.random((2, 1, 9, 7)) < 0.3).astype(np.float64)
    device = device_of(backend)
    pw = None if pos_weight is None else np.array([pos_weight])
    xm = minicnn.tensor(x, device=device, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    kw_m = {} if pw is None else {"pos_weight": minicnn.tensor(pw, device=device)}
    kw_t = {} if pw is None else {"pos_weight": torch.tensor(pw)}
    ours = F.binary_cross_entropy_with_logits(xm, minicnn.tensor(y, device=device), **kw_m)
    theirs = TF.binary_cross_entropy_with_logits(xt, torch.tensor(y), **kw_t)
    assert_close(ours, theirs, np.float64, msg="per-pixel BCE")
    per_pixel = F.binary_cross_entropy_with_logits(xm, minicnn.tensor(y, device=device),
                                                   reduction="none", **kw_m)
    assert per_pixel.shape == (2, 1, 9, 7)
    assert ours.item() == pytest.approx(per_pixel.detach().numpy().sum() / (2 * 9 * 7), rel=1e-12)
    ours.backward()
    theirs.backward()
    assert_close(xm.grad, xt.grad, np.float64, msg="gradient")


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_per_pixel_cross_entropy_for_many_classes(backend, weighted):
    """C = 7 + 1 (background is class 0): logits (N, 8, H, W), labels (N, H, W), 255 ignored."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 8, 10, 6))
    y = rng.integers(0, 8, (2, 10, 6))
    y[:, 0, :] = 255  # an ignored border
    w = rng.uniform(0.2, 3.0, 8) if weighted else None
    device = device_of(backend)
    xm = minicnn.tensor(x, device=device, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    ours = F.cross_entropy(xm, minicnn.tensor(y, device=device),
                           None if w is None else minicnn.tensor(w, device=device),
                           ignore_index=255)
    theirs = TF.cross_entropy(xt, torch.tensor(y), None if w is None else torch.tensor(w),
                              ignore_index=255)
    assert_close(ours, theirs, np.float64, msg="per-pixel cross-entropy")
    if w is None:  # the mean over the pixels that count
        per_pixel = F.cross_entropy(xm, minicnn.tensor(y, device=device), ignore_index=255,
                                    reduction="none").detach().numpy()
        assert ours.item() == pytest.approx(per_pixel.sum() / (2 * 9 * 6), rel=1e-12)
    ours.backward()
    theirs.backward()
    assert_close(xm.grad, xt.grad, np.float64, msg="gradient")


# ---------------------------------------------------------------- Dice

LN3 = math.log(3.0)


def test_dice_binary_hand_computed():
    # sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4; truth 1, 1, 0, 0
    x = minicnn.tensor([[[[0.0, LN3], [-LN3, 0.0]]]], dtype=np.float64)
    y = np.array([[[1, 1], [0, 0]]])
    # sum(p t) = 1/2 + 3/4 = 5/4; sum(p) = 2; sum(t) = 2
    assert F.dice_loss(x, y).item() == pytest.approx(1 - (2.5 + 1) / (4 + 1))  # 0.3
    assert F.dice_loss(x, y, smooth=0).item() == pytest.approx(1 - 2.5 / 4)  # 0.375
    # the same as a float mask (N, 1, H, W) or (N, H, W), and as a bool mask
    assert F.dice_loss(x, y[:, None].astype(np.float64)).item() == pytest.approx(0.3)
    assert F.dice_loss(x, y.astype(bool)).item() == pytest.approx(0.3)


def test_dice_multiclass_hand_computed():
    # four pixels (N=1, H=1, W=4); softmax of (0, ln 3) = (1/4, 3/4)
    logits = np.array([[0.0, LN3], [LN3, 0.0], [0.0, 0.0], [5.0, -2.0]]).T  # (C=2, W=4)
    x = minicnn.tensor(logits[None, :, None, :], dtype=np.float64)
    y = np.array([[[1, 0, 1, 255]]])  # the last pixel is ignored
    # class 0: sum(p t) = 3/4; sum(p) = 1/4 + 3/4 + 1/2 = 3/2; sum(t) = 1 -> 1 - 2.5/3.5 = 2/7
    # class 1: sum(p t) = 3/4 + 1/2 = 5/4; sum(p) = 3/2; sum(t) = 2 -> 1 - 3.5/4.5 = 2/9
    per_class = F.dice_loss(x, y, ignore_index=255, reduction="none").numpy()
    np.testing.assert_allclose(per_class, [2 / 7, 2 / 9], rtol=1e-12)
    assert F.dice_loss(x, y, ignore_index=255).item() == pytest.approx(16 / 63)
    w = minicnn.tensor([1.0, 3.0], dtype=np.float64)
    assert F.dice_loss(x, y, w, ignore_index=255).item() == pytest.approx(5 / 21)
    assert F.dice_loss(x, y, w, ignore_index=255, reduction="sum").item() == \
        pytest.approx(2 / 7 + 3 * 2 / 9)
    loss = nn.DiceLoss(weight=w, ignore_index=255)
    assert loss(x, y).item() == pytest.approx(5 / 21)
    assert "weight" in loss.state_dict()


def _torch_dice(x, y, weight=None, smooth=1.0, ignore_index=-100):
    """The formula in PyTorch, for index targets: one-hot, masked, summed over N and pixels."""
    c = x.shape[1]
    p = torch.sigmoid(x) if c == 1 else torch.softmax(x, 1)
    keep = (y != ignore_index).unsqueeze(1).to(x.dtype)
    t = (y.unsqueeze(1) == 1) if c == 1 else TF.one_hot(y.clamp(0, c - 1), c).movedim(-1, 1)
    t = t.to(x.dtype) * keep
    p = p * keep
    dims = (0, *range(2, x.ndim))
    loss = 1 - (2 * (p * t).sum(dims) + smooth) / (p.sum(dims) + t.sum(dims) + smooth)
    w = torch.ones(c, dtype=x.dtype) if weight is None else weight
    return (loss * w).sum() / w.sum()


@pytest.mark.parametrize("n_classes,smooth,weighted,ignore", [
    (1, 1.0, False, -100), (1, 0.5, False, 2), (4, 1.0, False, -100), (4, 0.0, True, 255),
    (8, 1e-3, True, 0),
])
def test_dice_against_torch(backend, n_classes, smooth, weighted, ignore):
    rng = np.random.default_rng(n_classes)
    x = rng.standard_normal((3, n_classes, 6, 5))
    y = rng.integers(0, max(n_classes, 2), (3, 6, 5))
    y[0, 0] = ignore if ignore != 0 else y[0, 0]
    w = rng.uniform(0.5, 2.0, n_classes) if weighted else None
    device = device_of(backend)
    xm = minicnn.tensor(x, device=device, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    ours = F.dice_loss(xm, minicnn.tensor(y, device=device),
                       None if w is None else minicnn.tensor(w, device=device), smooth, ignore)
    theirs = _torch_dice(xt, torch.tensor(y), None if w is None else torch.tensor(w), smooth,
                         ignore)
    assert_close(ours, theirs, np.float64, msg="dice_loss")
    ours.backward()
    theirs.backward()
    assert_close(xm.grad, xt.grad, np.float64, msg="gradient")


@pytest.mark.parametrize("n_classes", [1, 3])
def test_dice_gradcheck(backend, n_classes):
    dev = device_of(backend)
    rng = np.random.default_rng(3)
    x = minicnn.tensor(rng.standard_normal((2, n_classes, 4, 3)), requires_grad=True, device=dev)
    y = minicnn.tensor(rng.integers(0, max(n_classes, 2), (2, 4, 3)), device=dev)
    w = minicnn.tensor(rng.uniform(0.5, 2.0, n_classes), device=dev)
    for reduction in ("none", "mean", "sum"):
        assert minicnn.gradcheck(
            lambda a, r=reduction: F.dice_loss(a, y, w, smooth=0.5, reduction=r), [x])
    probs = minicnn.tensor(rng.dirichlet(np.ones(3), (2, 4)).transpose(0, 2, 1)[..., None],
                           device=dev)
    if n_classes == 3:  # probability targets (N, C, H, W)
        xs = minicnn.tensor(rng.standard_normal((2, 3, 4, 1)), requires_grad=True, device=dev)
        assert minicnn.gradcheck(lambda a: F.dice_loss(a, probs), [xs])


def test_dice_perfect_prediction_is_near_zero():
    y = np.array([[[0, 1, 2], [2, 1, 0]]])
    x = minicnn.tensor(np.eye(3)[y].transpose(0, 3, 1, 2) * 40.0)
    assert F.dice_loss(x, y, smooth=0).item() < 1e-6


@pytest.mark.parametrize("x_shape,target,kwargs,error,message", [
    ((2, 3, 4, 4), np.zeros((2, 4, 5), int), {}, ValueError, r"target shape \(2, 4, 5\)"),
    ((2, 3, 4, 4), np.full((2, 4, 4), 3), {}, ValueError, r"class index 3.*C = 3"),
    ((2, 1, 4, 4), np.full((2, 4, 4), 2), {}, ValueError, r"0 or 1.*got 2"),
    ((2, 1, 4, 4), np.zeros((2, 5, 4), int), {}, ValueError, r"\(2, 5, 4\).*\(2, 4, 4\)"),
    ((2, 3, 4, 4), np.zeros((2, 2, 4, 4)), {}, ValueError, r"probabilities has shape"),
    ((2, 3, 4, 4), np.zeros((2, 4, 4), int), {"smooth": -1.0}, ValueError, "smooth"),
    ((2, 3, 4, 4), np.zeros((2, 4, 4), int), {"weight": np.ones(2)}, ValueError,
     r"weight must have shape \(C,\) = \(3,\)"),
    ((2, 3, 4, 4), np.zeros((2, 4, 4), int), {"reduction": "avg"}, ValueError, "reduction"),
])
def test_dice_bad_input(x_shape, target, kwargs, error, message):
    with pytest.raises(error, match=message):
        F.dice_loss(minicnn.zeros(*x_shape), target, **kwargs)
