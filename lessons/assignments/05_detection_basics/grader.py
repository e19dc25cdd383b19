"""Grader of assignment 05 (detection basics): IoU and NMS against ``minicnn.ops`` and
torchvision.ops, the YOLO v1 loss (each term and its gradient) against
``minicnn.models.detection.yolo_loss.yolo_loss_terms``."""

import numpy as np
import pytest

import minicnn
from minicnn import ops
from minicnn.homework import assert_close, load_submission, points
from minicnn.models.detection.yolo_loss import split_outputs, yolo_loss_terms

sub = load_submission("detection_basics")
TERMS = ("coord", "size", "object", "no_object", "class")


def random_boxes(n, seed, size=50.0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, size, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(1, size / 2, (n, 2))], 1)



def close(name, got, want, tol=1e-7):
    assert_close(name, got, want, tol)


@points(2)
def test_box_iou():
    a, b = random_boxes(7, 0), random_boxes(5, 1)
    b[0] = a[0]  # identical boxes: IoU 1
    b[1] = [200, 200, 210, 210]  # disjoint from all: IoU 0
    want = ops.box_iou(minicnn.tensor(a), minicnn.tensor(b)).numpy()
    close("box_iou", sub.box_iou(a, b), want)


@points(1)
def test_box_iou_against_torchvision():
    torch = pytest.importorskip("torch")
    tv_ops = pytest.importorskip("torchvision.ops")
    a, b = random_boxes(6, 2), random_boxes(4, 3)
    close("box_iou", sub.box_iou(a, b), tv_ops.box_iou(torch.tensor(a), torch.tensor(b)).numpy())


@points(3)
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_nms(threshold):
    boxes = random_boxes(40, 4, size=30.0)
    scores = np.random.default_rng(5).uniform(0, 1, 40)
    got = np.asarray(sub.nms(boxes, scores, threshold))
    want = ops.nms(minicnn.tensor(boxes), minicnn.tensor(scores), threshold).numpy()
    assert got.tolist() == want.tolist(), f"nms kept {got.tolist()}, expected {want.tolist()}"


@points(1)
def test_nms_against_torchvision():
    torch = pytest.importorskip("torch")
    tv_ops = pytest.importorskip("torchvision.ops")
    boxes = random_boxes(30, 6, size=30.0)
    scores = np.random.default_rng(7).uniform(0, 1, 30)
    want = tv_ops.nms(torch.tensor(boxes), torch.tensor(scores), 0.5).numpy()
    assert np.asarray(sub.nms(boxes, scores, 0.5)).tolist() == want.tolist()


@points(1)
@pytest.mark.parametrize("term", TERMS)
def test_yolo_loss_terms(term):
    _, outputs, targets = sub.example(seed=3)
    got = sub.yolo_loss(outputs, targets)
    want = yolo_loss_terms(outputs, targets)
    assert term in got, f"yolo_loss returned no {term!r} term (keys: {sorted(got)})"
    close(f"yolo_loss[{term!r}]", got[term].item(), want[term].item())


@points(3)
def test_yolo_loss_gradient():
    grid, _, targets = sub.example(seed=4)
    minicnn.gradcheck(lambda g: sum(sub.yolo_loss(split_outputs(g, 2, 3, False), targets)
                                    .values()), [grid])


### BEGIN HIDDEN TESTS
@points(2)
def test_nms_with_tied_scores():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.5]])
    scores = np.array([0.8, 0.8, 0.8, 0.9])
    want = ops.nms(minicnn.tensor(boxes), minicnn.tensor(scores), 0.5).numpy()
    assert np.asarray(sub.nms(boxes, scores, 0.5)).tolist() == want.tolist()
### END HIDDEN TESTS
