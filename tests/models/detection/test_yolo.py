"""YOLO v1: shapes, the paper's parameter count, the loss against an independent PyTorch
implementation, gradcheck, decoding + NMS against torchvision, bad input, and learning.

The reference loss below is written from the paper's equation (3) one cell and one
predictor at a time with PyTorch autograd (torchvision's ``box_iou`` for the responsible
box), independently of ``minicnn.models.detection.yolo_loss``'s masks and arrays.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

import minicnn
from minicnn.autograd import Tensor
from minicnn.autograd.gradcheck import gradcheck
from minicnn.data.shapes import make_scene
from minicnn.models.detection import yolo_v1, yolo_v1_small
from minicnn.models.detection.yolo_loss import encode_targets, split_outputs, yolo_loss_terms
from minicnn.optim import Adam
from tests.conftest import device_of

TERMS = ("coord", "size", "object", "no_object", "class")


# ---------------------------------------------------------------- the paper's network


def hand_count(num_classes: int = 20, num_boxes: int = 2, class_per_box: bool = False,
               image_size: int = 448, grid: int = 7) -> int:
    """Parameters of Figure 3 of Redmon et al. 2016, counted from its layer table:
    (kernel, in, out) of the 24 convolutions, then FC 1024 * (size/64)^2 -> 4096 -> S*S*D."""
    convs = [(7, 3, 64), (3, 64, 192), (1, 192, 128), (3, 128, 256), (1, 256, 256),
             (3, 256, 512)]
    convs += [(1, 512, 256), (3, 256, 512)] * 4 + [(1, 512, 512), (3, 512, 1024)]
    convs += [(1, 1024, 512), (3, 512, 1024)] * 2 + [(3, 1024, 1024)] * 4
    assert len(convs) == 24
    conv = sum(k * k * cin * cout + cout for k, cin, cout in convs)
    d = num_boxes * (5 + num_classes) if class_per_box else num_boxes * 5 + num_classes
    fc_in = 1024 * (image_size // 64) ** 2
    return conv + (fc_in * 4096 + 4096) + (4096 * grid * grid * d + grid * grid * d)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("class_per_box, depth", [(False, 30), (True, 50)])
def test_paper_network_output_and_parameters_small_input(class_per_box, depth):
    minicnn.manual_seed(0)
    model = yolo_v1(class_per_box=class_per_box, image_size=64).eval()
    assert n_params(model) == hand_count(class_per_box=class_per_box, image_size=64)
    convs = [m for m in model.backbone.modules() if isinstance(m, minicnn.nn.Conv2d)]
    assert len(convs) == 24
    grid = model.grid_outputs(minicnn.randn(2, 3, 64, 64))
    assert grid.shape == (2, 7, 7, depth)


@pytest.mark.slow
def test_paper_network_at_448():
    minicnn.manual_seed(0)
    model = yolo_v1().eval()
    assert n_params(model) == hand_count() == 271_703_550
    assert model.grid_outputs(minicnn.randn(1, 3, 448, 448)).shape == (1, 7, 7, 30)
    assert hand_count(class_per_box=True) == 275_718_610


# ---------------------------------------------------------------- the loss


def torch_yolo_loss(grid: torch.Tensor, targets, num_boxes, num_classes, class_per_box,
                    image_size, lambda_coord=5.0, lambda_noobj=0.5, class_loss="mse"):
    """Equation (3), one cell and one predictor at a time; means over the images.
    ``class_loss="ce"``: the class term is torch's cross-entropy of the class scores."""
    n, s = grid.shape[0], grid.shape[1]
    cell = image_size / s
    terms = dict.fromkeys(TERMS, grid.new_zeros(()))
    for i in range(n):
        owner = {}  # (row, col) -> the first object whose centre is in the cell
        for box, label in zip(targets[i]["boxes"], targets[i]["labels"], strict=True):
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            key = (min(int(cy // cell), s - 1), min(int(cx // cell), s - 1))
            owner.setdefault(key, (box, int(label)))
        for r in range(s):
            for c in range(s):
                v = grid[i, r, c]
                stride = 5 + num_classes if class_per_box else 5
                box_raw = [torch.sigmoid(v[j * stride: j * stride + 5]) for j in range(num_boxes)]
                if class_per_box:
                    scores = [v[j * stride + 5: (j + 1) * stride] for j in range(num_boxes)]
                else:
                    scores = [v[num_boxes * 5:]] * num_boxes
                probs = [torch.softmax(z, 0) for z in scores]
                responsible = -1
                if (r, c) in owner:
                    box, label = owner[(r, c)]
                    gt = torch.tensor(np.asarray(box, np.float64))[None]
                    pred = []
                    for x, y, sw, sh, _ in (b.detach() for b in box_raw):
                        px, py, pw, ph = (c + x) * cell, (r + y) * cell, sw ** 2, sh ** 2
                        pw, ph = pw * image_size, ph * image_size
                        pred.append(torch.stack([px - pw / 2, py - ph / 2,
                                                 px + pw / 2, py + ph / 2]))
                    ious = torchvision.ops.box_iou(torch.stack(pred), gt)[:, 0]
                    ious = torch.nan_to_num(ious)
                    responsible = int(torch.argmax(ious))
                    x, y, sw, sh, conf = box_raw[responsible]
                    tx = (box[0] + box[2]) / 2 / cell - c
                    ty = (box[1] + box[3]) / 2 / cell - r
                    tw = np.sqrt((box[2] - box[0]) / image_size)
                    th = np.sqrt((box[3] - box[1]) / image_size)
                    terms["coord"] = terms["coord"] + lambda_coord * ((x - tx) ** 2 + (y - ty) ** 2)
                    terms["size"] = terms["size"] + lambda_coord * ((sw - tw) ** 2 + (sh - th) ** 2)
                    terms["object"] = terms["object"] + (conf - ious[responsible]) ** 2
                    onehot = torch.zeros(num_classes, dtype=grid.dtype)
                    onehot[label - 1] = 1
                    if class_loss == "ce":
                        cls = torch.nn.functional.cross_entropy(
                            scores[responsible][None], torch.tensor([label - 1]))
                    else:
                        cls = ((probs[responsible] - onehot) ** 2).sum()
                    terms["class"] = terms["class"] + cls
                for j in range(num_boxes):
                    if j != responsible:
                        terms["no_object"] = terms["no_object"] + lambda_noobj * box_raw[j][4] ** 2
    return {k: v / n for k, v in terms.items()}


def random_targets(n: int, image_size: int, grid: int, num_classes: int, seed: int):
    """Boxes anywhere, some images empty, and in each non-empty image two objects whose
    centres share a cell (the first must win it)."""
    rng = np.random.default_rng(seed)
    targets = []
    for i in range(n):
        if i % 3 == 2:
            targets.append({"boxes": np.zeros((0, 4), np.float32),
                            "labels": np.zeros(0, np.int64)})
            continue
        k = int(rng.integers(2, 7))
        centre = rng.uniform(0.05, 0.95, (k, 2)) * image_size
        size = rng.uniform(0.05, 0.6, (k, 2)) * image_size
        cell = image_size / grid
        centre[1] = (np.floor(centre[0] / cell) + rng.uniform(0.1, 0.9, 2)) * cell  # same cell
        boxes = np.concatenate([centre - size / 2, centre + size / 2], 1).astype(np.float32)
        targets.append({"boxes": boxes,
                        "labels": rng.integers(1, num_classes + 1, k).astype(np.int64)})
    return targets


LOSS_CASES = [(2, 3, False), (2, 3, True), (3, 4, False), (1, 2, True)]


@pytest.mark.parametrize("class_loss", ["mse", "ce"])
@pytest.mark.parametrize("num_boxes, num_classes, class_per_box", LOSS_CASES)
def test_loss_equals_independent_torch_loss(num_boxes, num_classes, class_per_box, class_loss):
    image_size, grid_size, n = 64, 4, 6
    model = yolo_v1_small(num_classes, image_size=image_size, grid_size=grid_size,
                          num_boxes=num_boxes, class_per_box=class_per_box,
                          class_loss=class_loss)
    rng = np.random.default_rng(num_boxes * 10 + num_classes)
    raw = rng.normal(0, 1.5, (n, grid_size, grid_size, model.out_channels))
    targets = random_targets(n, image_size, grid_size, num_classes, seed=num_boxes)
    grid = Tensor(raw, requires_grad=True)
    ours = model.loss(grid, [{k: Tensor(v) for k, v in t.items()} for t in targets])
    sum(ours.values()).backward()

    graw = torch.tensor(raw, requires_grad=True)
    ref = torch_yolo_loss(graw, [{k: v.astype(np.float64) if k == "boxes" else v
                                  for k, v in t.items()} for t in targets],
                          num_boxes, num_classes, class_per_box, image_size,
                          class_loss=class_loss)
    sum(ref.values()).backward()
    assert set(ours) == set(TERMS)
    for name in TERMS:
        np.testing.assert_allclose(ours[name].item(), ref[name].item(), rtol=1e-10, atol=1e-12,
                                   err_msg=name)
        assert ref[name].item() > 0, f"{name} is 0: the case does not exercise it"
    np.testing.assert_allclose(grid.grad.numpy(), graw.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_loss_responsible_box_and_rescore():
    """A hand case: the predictor overlapping the object is responsible; its target
    confidence is its IoU (rescore) or 1."""
    model = yolo_v1_small(2, image_size=32, grid_size=2, num_boxes=2)
    raw = np.zeros((1, 2, 2, model.out_channels))
    # cell (0, 0): predictor 1 at the cell centre, 8x8 px (sqrt w = 0.5 -> w = 0.25 * 32)
    logit = np.log(0.5 / 0.5)
    raw[0, 0, 0, 5:10] = [logit, logit, logit, logit, 0.0]
    raw[0, 0, 0, 0:5] = [-9, -9, -9, -9, 0.0]  # predictor 0: a tiny box in the corner
    target = [{"boxes": Tensor(np.array([[4.0, 4.0, 12.0, 14.0]], np.float32)),
               "labels": Tensor(np.array([2]))}]
    out = split_outputs(Tensor(raw), 2, 2, False)
    enc = encode_targets(out, target, (32, 32))
    assert enc.responsible[0, 0, 0].tolist() == [0, 1]
    iou = (8 * 8) / (8 * 10)  # predicted 4..12 x 4..12, truth 4..12 x 4..14
    np.testing.assert_allclose(enc.confidence[0, 0, 0, 1], iou)
    np.testing.assert_allclose(enc.xy[0, 0, 0, 1], [0.5, 9 / 16])
    np.testing.assert_allclose(enc.sqrt_wh[0, 0, 0, 1], [0.5, np.sqrt(10 / 32)])
    assert enc.classes[0, 0, 0].tolist() == [0, 1] and enc.cell.sum() == 1
    assert encode_targets(out, target, (32, 32), rescore=False).confidence[0, 0, 0, 1] == 1


@pytest.mark.parametrize("class_per_box, class_loss", [(False, "mse"), (True, "mse"),
                                                        (False, "ce"), (True, "ce")])
def test_loss_gradcheck_float64(backend, class_per_box, class_loss):
    dev = device_of(backend)
    num_boxes, num_classes, size, s = 2, 3, 48, 3
    model = yolo_v1_small(num_classes, image_size=size, grid_size=s, class_per_box=class_per_box)
    rng = np.random.default_rng(5)
    raw = minicnn.tensor(rng.normal(0, 1.0, (3, s, s, model.out_channels)), device=dev)
    targets = random_targets(3, size, s, num_classes, seed=7)
    targets = [{k: minicnn.tensor(v, device=dev) for k, v in t.items()} for t in targets]
    enc = encode_targets(split_outputs(raw, num_boxes, num_classes, class_per_box),
                         targets, (size, size))

    def total(g):
        terms = yolo_loss_terms(split_outputs(g, num_boxes, num_classes, class_per_box), enc,
                                class_loss=class_loss)
        return terms["coord"] + terms["size"] + terms["object"] + terms["no_object"] + \
            terms["class"]

    assert gradcheck(total, [raw.detach().requires_grad_(True)], eps=1e-6, atol=1e-7,
                     rtol=1e-5)


# ---------------------------------------------------------------- decoding and NMS


def torch_decode(raw, num_boxes, num_classes, class_per_box, image_size, score_thresh,
                 nms_thresh, k):
    """Direct loop over cells, predictors and classes, then torchvision's batched_nms."""
    n, s = raw.shape[0], raw.shape[1]
    g = torch.tensor(raw)
    cell = image_size / s
    results = []
    for i in range(n):
        boxes, scores, labels = [], [], []
        for r in range(s):
            for c in range(s):
                v = g[i, r, c]
                for j in range(num_boxes):
                    if class_per_box:
                        part = v[j * (5 + num_classes): (j + 1) * (5 + num_classes)]
                        x, y, sw, sh, conf = torch.sigmoid(part[:5])
                        probs = torch.softmax(part[5:], 0)
                    else:
                        x, y, sw, sh, conf = torch.sigmoid(v[j * 5: j * 5 + 5])
                        probs = torch.softmax(v[num_boxes * 5:], 0)
                    cx, cy = (c + x) * cell, (r + y) * cell
                    w, h = sw ** 2 * image_size, sh ** 2 * image_size
                    box = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
                    for cls in range(num_classes):
                        score = conf * probs[cls]
                        if score > score_thresh:
                            boxes.append(box.clamp(0, image_size))
                            scores.append(score)
                            labels.append(cls + 1)
        boxes = torch.stack(boxes) if boxes else torch.zeros((0, 4), dtype=g.dtype)
        scores = torch.stack(scores) if scores else torch.zeros(0, dtype=g.dtype)
        labels = torch.tensor(labels, dtype=torch.int64)
        keep = torchvision.ops.batched_nms(boxes, scores, labels, nms_thresh)[:k]
        results.append((boxes[keep].numpy(), scores[keep].numpy(), labels[keep].numpy()))
    return results


@pytest.mark.parametrize("class_per_box, k", [(False, 100), (True, 100), (False, 5)])
def test_decoding_equals_loop_and_torchvision_nms(class_per_box, k):
    num_boxes, num_classes, size, s = 2, 3, 64, 4
    model = yolo_v1_small(num_classes, image_size=size, grid_size=s, class_per_box=class_per_box,
                          detections_per_img=k)
    rng = np.random.default_rng(11)
    raw = rng.normal(0, 2.0, (3, s, s, model.out_channels))
    raw[2] -= 8  # the last image has no score above the threshold
    ours = model.postprocess(Tensor(raw))
    ref = torch_decode(raw, num_boxes, num_classes, class_per_box, size, 0.3, 0.5, k)
    assert len(ours) == 3
    for det, (boxes, scores, labels) in zip(ours, ref, strict=True):
        np.testing.assert_allclose(det["boxes"].numpy(), boxes, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(det["scores"].numpy(), scores, rtol=1e-12)
        np.testing.assert_array_equal(det["labels"].numpy(), labels)
        assert det["labels"].dtype == np.int64
    assert len(ref[0][0]) > 3 and len(ref[2][0]) == 0
    assert len(ours[0]["boxes"]) <= k


def test_eval_call_convention_list_or_batch():
    minicnn.manual_seed(3)
    model = yolo_v1_small(3, image_size=64).eval()
    x = minicnn.randn(2, 3, 64, 64)
    batch = model(x)
    listed = model([x[0], x[1]])
    direct = model.postprocess(model.grid_outputs(x))
    for a, b, c in zip(batch, listed, direct, strict=True):
        assert set(a) == {"boxes", "scores", "labels"}
        for key in a:
            np.testing.assert_allclose(a[key].numpy(), b[key].numpy())
            np.testing.assert_allclose(a[key].numpy(), c[key].numpy())


# ---------------------------------------------------------------- bad input


def _target(boxes, labels):
    return {"boxes": Tensor(np.asarray(boxes, np.float32).reshape(-1, 4) if len(boxes)
                            else np.zeros((0, 4), np.float32)),
            "labels": Tensor(np.asarray(labels, np.int64))}


@pytest.mark.parametrize("targets, match", [
    ([_target([[1, 1, 5, 5]], [1])], r"len\(targets\) must equal"),
    ([_target([[6, 1, 5, 5]], [1]), _target([], [])], r"targets\[0\]\['boxes'\].*x2 > x1"),
    ([_target([[1, 1, 5, 5]], [0]), _target([], [])], r"targets\[0\]\['labels'\].*1\.\.3"),
    ([_target([], []), _target([[1, 1, 5, 5]], [4])], r"targets\[1\]\['labels'\].*1\.\.3"),
    ([{"boxes": Tensor(np.zeros((1, 5), np.float32)), "labels": Tensor(np.array([1]))},
      _target([], [])], r"targets\[0\]\['boxes'\] must have shape \(K, 4\)"),
    ([_target([[1, 1, 5, 5]], [1, 2]), _target([], [])], r"targets\[0\]\['labels'\].*shape"),
    ([{"boxes": Tensor(np.zeros((0, 4), np.float32))}, _target([], [])], r"targets\[0\]"),
])
def test_bad_targets_name_the_argument(targets, match):
    model = yolo_v1_small(3, image_size=32)
    with pytest.raises(ValueError, match=match):
        model(minicnn.randn(2, 3, 32, 32), targets)


def test_bad_images_and_arguments():
    model = yolo_v1_small(3, image_size=32)
    with pytest.raises(ValueError, match=r"images must be \(N, 3, 32, 32\)"):
        model(minicnn.randn(1, 3, 48, 48), [_target([], [])])
    with pytest.raises(ValueError, match="targets must be given"):
        model(minicnn.randn(1, 3, 32, 32))
    with pytest.raises(TypeError, match="images must be"):
        model(np.zeros((1, 3, 32, 32), np.float32), [_target([], [])])
    with pytest.raises(ValueError, match="image_size must be a multiple of 64"):
        yolo_v1(image_size=100)
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        yolo_v1_small(0)
    with pytest.raises(ValueError, match="score_thresh must be in"):
        yolo_v1_small(3, score_thresh=1.5)
    with pytest.raises(ValueError, match=r"class_loss must be one of \('mse', 'ce'\), got 'l1'"):
        yolo_v1_small(3, class_loss="l1")


@pytest.mark.parametrize("class_per_box", [False, True])
def test_confidence_bias_sets_the_initial_confidence(class_per_box):
    """``confidence_bias=b``: every box starts at confidence sigmoid(b) (+ the weights'
    share), the other outputs keep their initial biases."""
    minicnn.manual_seed(0)
    plain = yolo_v1_small(3, image_size=32, class_per_box=class_per_box)
    minicnn.manual_seed(0)
    biased = yolo_v1_small(3, image_size=32, class_per_box=class_per_box, confidence_bias=-4.0)
    b0, b1 = plain.head[-1].bias.detach().numpy(), biased.head[-1].bias.detach().numpy()
    step = 8 if class_per_box else 5
    conf = [j * step + 4 for j in range(2)]
    assert np.all(b1[conf] == -4.0)
    assert np.array_equal(np.delete(b0, conf), np.delete(b1, conf))
    with minicnn.no_grad():
        x = minicnn.zeros(1, 3, 32, 32)
        out = split_outputs(biased.grid_outputs(x), 2, 3, class_per_box)
        ref = split_outputs(plain.grid_outputs(x), 2, 3, class_per_box)
    logit = np.log(ref.confidence.numpy() / (1 - ref.confidence.numpy()))
    np.testing.assert_allclose(out.confidence.numpy(),
                               1 / (1 + np.exp(-(logit - b0[conf] - 4.0))), rtol=1e-4)


# ---------------------------------------------------------------- it learns


@pytest.mark.slow
def test_small_yolo_loss_falls_on_a_few_scenes():
    minicnn.manual_seed(0)
    scenes = [make_scene(seed, size=64, num_objects=2) for seed in range(8)]
    images = Tensor(np.stack([s["image"] for s in scenes]).astype(np.float32))
    targets = [{"boxes": Tensor(s["boxes"]), "labels": Tensor(s["labels"] + 1)} for s in scenes]
    model = yolo_v1_small(num_classes=4, image_size=64, width=0.5)
    optimizer = Adam(model.parameters(), lr=3e-3)
    totals = []
    for _ in range(40):
        terms = model(images, targets)
        loss = sum(terms.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        totals.append(loss.item())
    assert np.isfinite(totals).all()
    assert np.mean(totals[-5:]) < 0.3 * np.mean(totals[:3]), totals
