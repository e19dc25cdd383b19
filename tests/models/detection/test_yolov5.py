"""YOLOv5: the deck's table (parameters and FLOPs), the blocks' shapes, the target
assignment against a direct one-object-at-a-time re-implementation, the loss and its
gradients against an independent PyTorch implementation, gradcheck, decoding, bad input.

The PyTorch reference loss below is written the way the release's ``utils/loss.py`` computes
it (targets normalised to the image, vectorised over anchors and the five cell offsets, its
own CIoU), independently of ``minicnn.models.detection.yolov5_loss``'s arrays.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import minicnn
from minicnn.autograd import Tensor
from minicnn.autograd.gradcheck import gradcheck
from minicnn.models import detection
from minicnn.models.detection.yolov5 import ANCHORS, STRIDES, Focus, make_divisible
from minicnn.models.detection.yolov5 import yolov5 as build_yolov5
from minicnn.models.detection.yolov5_loss import (
    BALANCE,
    build_targets,
    targets_to_array,
    yolov5_loss,
)
from minicnn.summary import summary

# the deck's table (the release's README): parameters (M) and GFLOPs at 640 x 640
TABLE = {"s": (7.3, 17.0), "m": (21.4, 51.3), "l": (47.0, 115.4), "x": (87.7, 218.8)}


def gflops_640(model) -> float:
    """2 x multiply-adds at 640 x 640, from ``summary`` at 64 x 64: every map of the network
    is a fixed fraction of the input (strides 2..32), so the count grows by (640/64)^2."""
    return 2 * summary(model, (3, 64, 64)).total_mult_adds * 100 / 1e9


@pytest.mark.slow
@pytest.mark.parametrize("size", list(TABLE))
def test_deck_table_parameters_and_flops(size):
    model = getattr(detection, f"yolov5{size}")()
    params = sum(p.numel() for p in model.parameters())
    table_params, table_gflops = TABLE[size]
    assert abs(params / 1e6 - table_params) < 0.1, params
    assert abs(gflops_640(model) / table_gflops - 1) < 0.01, gflops_640(model)
    if size == "s":  # the release's own count for yolov5s (its training log)
        assert params == 7_276_605


def test_yolov5n_parameters_flops_and_scaling():
    model = detection.yolov5n()
    assert sum(p.numel() for p in model.parameters()) == 1_882_525
    assert abs(gflops_640(model) - 4.6) < 0.05
    # width 0.25 of the 64-channel stem: 16 channels; depth 0.33 of 9 bottlenecks: 3
    assert model.model[0].conv.conv.out_channels == 16
    assert len(model.model[4].m) == 3 and len(model.model[2].m) == 1
    assert make_divisible(64 * 0.75) == 48 and make_divisible(1024 * 0.33) == 344


def test_focus_is_the_release_space_to_depth():
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 6)).astype(np.float32)
    focus = Focus(3, 4)
    seen = []
    focus.conv.register_forward_pre_hook(lambda m, args: seen.append(args[0].numpy()))
    focus(minicnn.tensor(x))
    t = torch.tensor(x)
    expected = torch.cat([t[..., ::2, ::2], t[..., 1::2, ::2], t[..., ::2, 1::2],
                          t[..., 1::2, 1::2]], 1).numpy()
    np.testing.assert_array_equal(seen[0], expected)


def test_output_shapes_and_eval_detections():
    minicnn.manual_seed(0)
    model = detection.yolov5n(num_classes=3, image_size=64)
    x = minicnn.randn(2, 3, 64, 96)
    outs = model.raw_outputs(x)
    assert [tuple(o.shape) for o in outs] == [(2, 3, 8, 12, 8), (2, 3, 4, 6, 8),
                                              (2, 3, 2, 3, 8)]
    model.eval()
    model.score_thresh = 0.0
    preds = model(x)
    assert len(preds) == 2 and set(preds[0]) == {"boxes", "scores", "labels"}
    labels = preds[0]["labels"].numpy()
    assert labels.min() >= 1 and labels.max() <= 3
    assert len(labels) == model.detections_per_img


def test_decode_and_nms_against_torchvision():
    """The release's decode written with torch; then, on those boxes, torchvision's
    batched_nms (score = objectness x class probability above the threshold)."""
    import torchvision

    minicnn.manual_seed(1)
    model = detection.yolov5n(num_classes=2, image_size=32).eval()
    model.score_thresh = 0.2
    x = minicnn.randn(1, 3, 32, 64)
    with minicnn.no_grad():
        outs = model.raw_outputs(x)
    decoded = []
    for p, anchors, stride in zip(outs, ANCHORS, STRIDES):
        y = torch.tensor(p.numpy(), dtype=torch.float64).sigmoid()  # (n, na, ny, nx, no)
        gy, gx = torch.meshgrid(torch.arange(y.shape[2]), torch.arange(y.shape[3]),
                                indexing="ij")
        grid = torch.stack([gx, gy], -1)
        anchor_wh = torch.tensor(anchors, dtype=torch.float64).view(1, 3, 1, 1, 2)
        xy = (y[..., :2] * 2 - 0.5 + grid) * stride
        wh = (y[..., 2:4] * 2) ** 2 * anchor_wh
        decoded.append(torch.cat([xy, wh, y[..., 4:]], -1).reshape(1, -1, 7))
    decoded = torch.cat(decoded, 1)
    ours = model.decode(outs)
    np.testing.assert_allclose(ours, decoded.numpy(), rtol=1e-5, atol=1e-4)

    d = torch.tensor(ours[0])
    boxes = torch.cat([d[:, :2] - d[:, 2:4] / 2, d[:, :2] + d[:, 2:4] / 2], 1)
    scores = d[:, 5:] * d[:, 4:5]
    which, cls = torch.nonzero(scores > 0.2, as_tuple=True)
    keep = torchvision.ops.batched_nms(boxes[which], scores[which, cls], cls, 0.45)[:300]
    pred = model(x)[0]
    assert len(keep) > 0
    np.testing.assert_allclose(pred["scores"].numpy(), scores[which, cls][keep].numpy())
    np.testing.assert_allclose(pred["boxes"].numpy(), boxes[which][keep].numpy())
    np.testing.assert_array_equal(pred["labels"].numpy(), cls[keep].numpy() + 1)


# ---------------------------------------------------------------- target assignment


def direct_assignment(objects, image_size, anchors=ANCHORS, strides=STRIDES, anchor_t=4.0):
    """The rule, one object, level and anchor at a time: the anchor trains when both side
    ratios are under anchor_t; the cell of the centre, plus the nearer horizontal and
    vertical neighbours when the centre is in that half of its cell and the neighbour is
    inside the image (not the first or last cell). Rows (level, image, anchor, gj, gi,
    class, x in cell, y in cell, w, h) in grid units."""
    rows = []
    for level, (level_anchors, stride) in enumerate(zip(anchors, strides)):
        n_cells = image_size // stride
        for image, cls, cx, cy, w, h in objects:
            x, y, gw, gh = cx / stride, cy / stride, w / stride, h / stride
            for a, (aw, ah) in enumerate(level_anchors):
                aw, ah = aw / stride, ah / stride
                if max(gw / aw, aw / gw, gh / ah, ah / gh) >= anchor_t:
                    continue
                i, j = math.floor(x), math.floor(y)
                cells = [(i, j)]
                if x - i < 0.5 and x > 1:
                    cells.append((i - 1, j))
                if x - i > 0.5 and n_cells - x > 1:
                    cells.append((i + 1, j))
                if y - j < 0.5 and y > 1:
                    cells.append((i, j - 1))
                if y - j > 0.5 and n_cells - y > 1:
                    cells.append((i, j + 1))
                for ci, cj in cells:
                    rows.append((level, image, a, cj, ci, cls, x - ci, y - cj, gw, gh))
    return sorted(tuple(round(v, 6) for v in r) for r in rows)


def assignment_rows(levels):
    rows = []
    for level, t in enumerate(levels):
        for k in range(len(t.image)):
            rows.append((level, t.image[k], t.anchor[k], t.gj[k], t.gi[k], t.cls[k],
                         *t.box[k]))
    return sorted(tuple(round(float(v), 6) for v in r) for r in rows)


OBJECTS = [  # (image, class, cx, cy, w, h) in pixels of a 64 x 64 image
    (0, 0, 13.0, 21.0, 16.0, 24.0),   # mid-sized: several anchors, three cells each
    (0, 1, 3.0, 60.0, 12.0, 12.0),    # in the first column: no left neighbour
    (1, 2, 41.0, 33.0, 60.0, 50.0),   # large: the P5 anchors only (and P4's largest)
    (1, 0, 30.0, 45.0, 2.5, 3.0),     # tiny: too small for every anchor (ratio > 4)
]


def test_assignment_matches_the_direct_rule():
    levels = build_targets(np.array(OBJECTS), [(8, 8), (4, 4), (2, 2)], ANCHORS, STRIDES)
    assert assignment_rows(levels) == direct_assignment(OBJECTS, 64)


def test_assignment_of_one_object_by_hand():
    """Centre (13, 21) px on the stride-8 grid: (1.625, 2.625) -- cell (1, 2), its right
    neighbour (2, 2) and the one below (1, 3); 16 x 24 px is 2 x 3 cells, within 4x of the
    three P3 anchors (1.25 x 1.625, 2 x 3.75, 4.125 x 2.875 cells)."""
    obj = np.array([OBJECTS[0]])
    p3 = build_targets(obj, [(8, 8)], ANCHORS[:1], STRIDES[:1])[0]
    cells = sorted(set(zip(p3.gi.tolist(), p3.gj.tolist())))
    assert cells == [(1, 2), (1, 3), (2, 2)]
    assert sorted(set(p3.anchor.tolist())) == [0, 1, 2] and len(p3.image) == 9
    own = (p3.gi == 1) & (p3.gj == 2)
    np.testing.assert_allclose(p3.box[own][0], [0.625, 0.625, 2.0, 3.0])
    below = (p3.gi == 1) & (p3.gj == 3)
    np.testing.assert_allclose(p3.box[below][0], [0.625, -0.375, 2.0, 3.0])


def test_targets_to_array_and_empty_targets():
    t = [{"boxes": np.array([[0.0, 2.0, 10.0, 6.0]]), "labels": np.array([3])},
         {"boxes": np.zeros((0, 4)), "labels": np.zeros(0, np.int64)}]
    np.testing.assert_allclose(targets_to_array(t), [[0, 2, 5, 4, 10, 4]])
    levels = build_targets(np.zeros((0, 6)), [(8, 8), (4, 4), (2, 2)], ANCHORS, STRIDES)
    assert all(len(t.image) == 0 for t in levels)


# ---------------------------------------------------------------- the loss


def torch_reference_loss(outputs, objects, image_size, anchors=ANCHORS, strides=STRIDES,
                         gains=(0.05, 1.0, 0.5), balance=BALANCE, anchor_t=4.0):
    """The release's ComputeLoss, written with PyTorch: targets (image, class, x, y, w, h)
    normalised to the image; per level, scaled to the grid, repeated over the anchors,
    filtered by the wh ratio, repeated over the five offsets (0, 0), (1, 0), (0, 1),
    (-1, 0), (0, -1) x 0.5 and filtered by the half-cell rule; CIoU as its bbox_iou."""
    eps = 1e-7
    targets = torch.tensor(objects, dtype=torch.float64).reshape(-1, 6)
    targets[:, 2:] /= image_size
    na, nt = 3, targets.shape[0]
    ai = torch.arange(na, dtype=torch.float64).view(na, 1).repeat(1, nt)
    targets = torch.cat((targets.repeat(na, 1, 1), ai[:, :, None]), 2)  # (na, nt, 7)
    off = torch.tensor([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]], dtype=torch.float64) * 0.5
    bce = torch.nn.BCEWithLogitsLoss()
    lbox = lobj = lcls = torch.zeros(())
    for i, p in enumerate(outputs):
        ny, nx = p.shape[2], p.shape[3]
        anchor_grid = torch.tensor(anchors[i], dtype=torch.float64) / strides[i]
        gain = torch.ones(7, dtype=torch.float64)
        gain[2:6] = torch.tensor([nx, ny, nx, ny], dtype=torch.float64)
        t = targets * gain
        r = t[:, :, 4:6] / anchor_grid[:, None]
        t = t[torch.max(r, 1 / r).max(2)[0] < anchor_t]
        gxy = t[:, 2:4]
        gxi = gain[[2, 3]] - gxy
        j, k = ((gxy % 1 < 0.5) & (gxy > 1)).T
        l, m = ((gxi % 1 < 0.5) & (gxi > 1)).T
        j = torch.stack((torch.ones_like(j), j, k, l, m))
        t = t.repeat((5, 1, 1))[j]
        offsets = (torch.zeros_like(gxy)[None] + off[:, None])[j]
        b, c = t[:, :2].long().T
        gxy, gwh, a = t[:, 2:4], t[:, 4:6], t[:, 6].long()
        gij = (gxy - offsets).long()
        gi, gj = gij[:, 0].clamp(0, nx - 1), gij[:, 1].clamp(0, ny - 1)
        tbox = torch.cat((gxy - torch.stack([gi, gj], 1), gwh), 1)
        tobj = torch.zeros_like(p[..., 0])
        if len(b):
            ps = p[b, a, gj, gi]
            pxy = ps[:, :2].sigmoid() * 2 - 0.5
            pwh = (ps[:, 2:4].sigmoid() * 2) ** 2 * anchor_grid[a]
            b1 = torch.cat([pxy - pwh / 2, pxy + pwh / 2], 1).T
            b2 = torch.cat([tbox[:, :2] - tbox[:, 2:] / 2, tbox[:, :2] + tbox[:, 2:] / 2], 1).T
            inter = ((torch.min(b1[2], b2[2]) - torch.max(b1[0], b2[0])).clamp(0)
                     * (torch.min(b1[3], b2[3]) - torch.max(b1[1], b2[1])).clamp(0))
            w1, h1, w2, h2 = b1[2] - b1[0], b1[3] - b1[1], b2[2] - b2[0], b2[3] - b2[1]
            union = w1 * h1 + w2 * h2 - inter
            iou = inter / (union + eps)
            cw = torch.max(b1[2], b2[2]) - torch.min(b1[0], b2[0])
            ch = torch.max(b1[3], b2[3]) - torch.min(b1[1], b2[1])
            c2 = cw ** 2 + ch ** 2 + eps
            rho2 = ((b2[0] + b2[2] - b1[0] - b1[2]) ** 2 + (b2[1] + b2[3] - b1[1] - b1[3]) ** 2) / 4
            v = (4 / math.pi ** 2) * (torch.atan(w2 / h2) - torch.atan(w1 / h1)) ** 2
            with torch.no_grad():
                alpha = v / (v - iou + 1 + eps)
            ciou = iou - (rho2 / c2 + v * alpha)
            lbox = lbox + (1 - ciou).mean()
            tobj[b, a, gj, gi] = ciou.detach().clamp(0)
            if p.shape[-1] - 5 > 1:
                tc = torch.zeros_like(ps[:, 5:])
                tc[range(len(b)), c] = 1.0
                lcls = lcls + bce(ps[:, 5:], tc)
        lobj = lobj + bce(p[..., 4], tobj) * balance[i]
    bs = outputs[0].shape[0]  # the release returns the sum times the batch size
    return {"loss_box": lbox * gains[0] * bs, "loss_obj": lobj * gains[1] * bs,
            "loss_cls": lcls * gains[2] * bs}


def random_outputs(n=2, nc=3, image_size=64, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, 3, image_size // s, image_size // s, 5 + nc)) * 1.5
            for s in STRIDES]


@pytest.mark.parametrize("objects", [OBJECTS, OBJECTS[:1], []])
def test_loss_and_gradients_equal_the_pytorch_reference(objects):
    arrays = random_outputs()
    ours_in = [minicnn.tensor(a, dtype=np.float64, requires_grad=True) for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    gains = {"box": 0.05, "obj": 1.0, "cls": 0.5}
    ours = yolov5_loss(ours_in, np.array(objects).reshape(-1, 6), ANCHORS, STRIDES, gains)
    theirs = torch_reference_loss(theirs_in, objects, 64)
    for key in ("loss_box", "loss_obj", "loss_cls"):
        np.testing.assert_allclose(ours[key].item(), theirs[key].item(), rtol=1e-6,
                                   atol=1e-9, err_msg=key)
    sum(ours.values()).backward()
    sum(theirs.values()).backward()
    for o, t in zip(ours_in, theirs_in):
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-9)


def test_gradcheck_of_objectness_and_class_logits():
    """Finite differences of the loss in the objectness and class logits (the box logits
    fixed: their CIoU is the objectness target, a constant by design, and CIoU's alpha is
    a constant for the gradient, so finite differences in them differ by design)."""
    arrays = random_outputs(n=1, nc=2, image_size=32, seed=3)
    fixed = [minicnn.tensor(a[..., :4], dtype=np.float64) for a in arrays]
    free = [minicnn.tensor(a[..., 4:], dtype=np.float64, requires_grad=True) for a in arrays]
    gains = {"box": 0.05, "obj": 1.0, "cls": 0.5}

    def loss(*scores):
        outs = [minicnn.cat([f, s], -1) for f, s in zip(fixed, scores)]
        objects = np.array([(0, 0, 13.0, 21.0, 16.0, 24.0), (0, 1, 3.0, 28.0, 12.0, 12.0)])
        terms = yolov5_loss(outs, objects, ANCHORS, STRIDES, gains)
        return terms["loss_obj"] + terms["loss_cls"]

    assert gradcheck(loss, free, eps=1e-6, atol=1e-7, rtol=1e-4)


def test_gradcheck_through_a_tiny_detect_head():
    """The Detect convolutions in float64 on 4-channel maps, no objects: every term is a
    smooth function of the weights."""
    from minicnn.models.detection.yolov5 import Detect

    minicnn.manual_seed(0)
    head = Detect(2, ANCHORS, [4, 4, 4], image_size=64)
    rng = np.random.default_rng(5)
    maps = [minicnn.tensor(rng.standard_normal((1, 4, 32 // s, 32 // s)), dtype=np.float64,
                           requires_grad=True) for s in STRIDES]
    weights = [minicnn.tensor(c.weight.detach().numpy(), dtype=np.float64, requires_grad=True)
               for c in head.m]
    gains = {"box": 0.05, "obj": 1.0, "cls": 0.5}

    def loss(*xs):
        outs = []
        for x, w, conv in zip(xs[:3], xs[3:], head.m):
            bias = Tensor(conv.bias.detach().numpy().astype(np.float64))
            y = minicnn.nn.functional.conv2d(x, w, bias)
            outs.append(y.reshape(1, 3, 7, *y.shape[2:]).permute(0, 1, 3, 4, 2))
        return sum(yolov5_loss(outs, np.zeros((0, 6)), ANCHORS, STRIDES, gains).values())

    assert gradcheck(loss, maps + weights, eps=1e-6, atol=1e-7, rtol=1e-4)


@pytest.mark.slow
def test_train_mode_returns_the_three_terms_and_learns():
    """A few Adam steps on one scene lower the loss of yolov5n at 64 x 64."""
    from minicnn.optim import Adam

    minicnn.manual_seed(0)
    model = detection.yolov5n(num_classes=2, image_size=64)
    x = minicnn.randn(2, 3, 64, 64)
    targets = [{"boxes": minicnn.tensor(np.array([[8.0, 10.0, 30.0, 40.0]], np.float32)),
                "labels": minicnn.tensor(np.array([2]))},
               {"boxes": minicnn.tensor(np.zeros((0, 4), np.float32)),
                "labels": minicnn.tensor(np.zeros(0, np.int64))}]
    opt = Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(8):
        terms = model(x, targets)
        assert set(terms) == {"loss_box", "loss_obj", "loss_cls"}
        total = sum(terms.values())
        first = total.item() if first is None else first
        opt.zero_grad()
        total.backward()
        opt.step()
    assert total.item() < 0.8 * first


def test_bad_input_is_a_clear_error():
    model = detection.yolov5n(num_classes=2, image_size=64)
    with pytest.raises(ValueError, match="multiples of 32"):
        model.raw_outputs(minicnn.randn(1, 3, 60, 64))
    with pytest.raises(ValueError, match="targets must be given"):
        model(minicnn.randn(1, 3, 64, 64))
    bad = [{"boxes": minicnn.tensor(np.array([[5.0, 5.0, 2.0, 9.0]], np.float32)),
            "labels": minicnn.tensor(np.array([1]))}]
    with pytest.raises(ValueError, match="x2 > x1"):
        model(minicnn.randn(1, 3, 64, 64), bad)
    bad = [{"boxes": minicnn.tensor(np.array([[1.0, 1.0, 9.0, 9.0]], np.float32)),
            "labels": minicnn.tensor(np.array([3]))}]
    with pytest.raises(ValueError, match=r"labels'\] must be integers in 1\.\.2"):
        model(minicnn.randn(1, 3, 64, 64), bad)
    with pytest.raises(ValueError, match="one shape"):
        model.eval()([minicnn.randn(3, 64, 64), minicnn.randn(3, 32, 64)])
    with pytest.raises(ValueError, match="size must be one of"):
        build_yolov5("q")


@pytest.mark.slow
def test_detect_recipe_trains_yolov5n(tmp_path):
    """``minicnn train --task detect --model yolov5n``: 64x64 scenes (the recipe's size),
    the three loss terms recorded, mAP measured."""
    import csv
    import json

    from minicnn.cli import main

    out = tmp_path / "run"
    assert main(["train", "--task", "detect", "--model", "yolov5n", "--subset", "16",
                 "--batch-size", "8", "--epochs", "1", "--no-progress", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "yolov5n" and config["image_size"] == [64, 64]
    row = next(csv.DictReader((out / "metrics.csv").open()))
    terms = [float(row[f"train_loss_{k}"]) for k in ("box", "obj", "cls")]
    assert float(row["train_loss"]) == pytest.approx(sum(terms), rel=1e-5)
    assert 0 <= float(row["val_map_50"]) <= 1
