"""Segmentation metrics: a confusion matrix worked out by hand, scikit-learn's
``confusion_matrix`` / ``jaccard_score`` / ``f1_score`` on random masks, ignore_index,
scores and Tensors as input, accumulation over batches, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import f1_score, jaccard_score

import minicnn
from minicnn.metrics import (
    ConfusionMatrix,
    confusion_matrix,
    mean_dice,
    mean_iou,
    per_class_dice,
    per_class_iou,
    pixel_accuracy,
)

# truth (t) and prediction (p), pixel by pixel: (0,0) (1,1) (2,1) / (2,2) (1,2) (0,0)
TARGET = np.array([[[0, 1, 2], [2, 1, 0]]])
PRED = np.array([[[0, 1, 1], [2, 2, 0]]])
# rows = truth, columns = prediction
HAND_CM = np.array([[2, 0, 0],
                    [0, 1, 1],
                    [0, 1, 1]])
# IoU_c = TP / (TP + FP + FN): class 0: 2 / 2; class 1: 1 / (1 + 1 + 1); class 2: the same
HAND_IOU = np.array([1.0, 1 / 3, 1 / 3])
# Dice_c = 2 TP / (2 TP + FP + FN): 4 / 4, 2 / 4, 2 / 4
HAND_DICE = np.array([1.0, 0.5, 0.5])


def test_hand_computed_case():
    np.testing.assert_array_equal(confusion_matrix(PRED, TARGET, 3), HAND_CM)
    np.testing.assert_allclose(per_class_iou(PRED, TARGET, 3), HAND_IOU)
    np.testing.assert_allclose(per_class_dice(PRED, TARGET, 3), HAND_DICE)
    assert mean_iou(PRED, TARGET, 3) == pytest.approx(5 / 9)
    assert mean_dice(PRED, TARGET, 3) == pytest.approx(2 / 3)
    assert pixel_accuracy(PRED, TARGET, 3) == pytest.approx(4 / 6)


def test_ignore_index_leaves_pixels_out():
    # the same pixels plus a border of 255s, predicted as anything (even out of range labels
    # would be wrong: they are predicted 0..2 here)
    target = np.pad(TARGET, ((0, 0), (1, 1), (1, 1)), constant_values=255)
    pred = np.pad(PRED, ((0, 0), (1, 1), (1, 1)), constant_values=2)
    np.testing.assert_array_equal(confusion_matrix(pred, target, 3, ignore_index=255), HAND_CM)
    assert pixel_accuracy(pred, target, 3, ignore_index=255) == pytest.approx(4 / 6)
    # ignore_index may be a real class: its pixels are left out too
    cm = confusion_matrix(PRED, TARGET, 3, ignore_index=0)
    np.testing.assert_array_equal(cm, HAND_CM * np.array([[0], [1], [1]]))


def test_absent_class_is_nan_and_left_out_of_the_mean():
    iou = per_class_iou(PRED, TARGET, 4)  # class 3 neither in truth nor prediction
    np.testing.assert_allclose(iou[:3], HAND_IOU)
    assert np.isnan(iou[3])
    assert mean_iou(PRED, TARGET, 4) == pytest.approx(5 / 9)
    assert np.isnan(per_class_dice(PRED, TARGET, 4)[3])


@pytest.mark.parametrize("ignore_index", [None, 255])
@pytest.mark.parametrize("num_classes", [2, 5, 8])
def test_against_scikit_learn(num_classes, ignore_index):
    rng = np.random.default_rng(num_classes)
    target = rng.integers(0, num_classes, (3, 17, 11))
    # a prediction that is right about 60% of the time
    pred = np.where(rng.random(target.shape) < 0.6, target,
                    rng.integers(0, num_classes, target.shape))
    if ignore_index is not None:
        target[rng.random(target.shape) < 0.1] = ignore_index
    keep = np.ones(target.shape, bool) if ignore_index is None else target != ignore_index
    t, p = target[keep], pred[keep]
    labels = list(range(num_classes))
    np.testing.assert_array_equal(confusion_matrix(pred, target, num_classes, ignore_index),
                                  sk_confusion(t, p, labels=labels))
    np.testing.assert_allclose(per_class_iou(pred, target, num_classes, ignore_index),
                               jaccard_score(t, p, labels=labels, average=None), rtol=1e-12)
    assert mean_iou(pred, target, num_classes, ignore_index) == pytest.approx(
        jaccard_score(t, p, labels=labels, average="macro"), rel=1e-12)
    np.testing.assert_allclose(per_class_dice(pred, target, num_classes, ignore_index),
                               f1_score(t, p, labels=labels, average=None), rtol=1e-12)
    assert pixel_accuracy(pred, target, num_classes, ignore_index) == pytest.approx(
        np.mean(t == p), rel=1e-12)


def test_scores_and_tensors():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((2, 4, 5, 6)).astype(np.float32)
    target = rng.integers(0, 4, (2, 5, 6))
    expected = sk_confusion(target.ravel(), scores.argmax(1).ravel(), labels=range(4))
    np.testing.assert_array_equal(confusion_matrix(scores, target, 4), expected)
    s = minicnn.tensor(scores, requires_grad=True)  # a model's output: detached, not refused
    np.testing.assert_array_equal(confusion_matrix(s, minicnn.tensor(target), 4), expected)


def test_accumulates_over_batches():
    rng = np.random.default_rng(1)
    target = rng.integers(0, 3, (6, 8, 8))
    pred = rng.integers(0, 3, (6, 8, 8))
    metric = ConfusionMatrix(3)
    for i in range(0, 6, 2):
        metric.update(pred[i:i + 2], target[i:i + 2])
    result = metric.compute()
    np.testing.assert_array_equal(metric.matrix, confusion_matrix(pred, target, 3))
    np.testing.assert_allclose(result["iou"], per_class_iou(pred, target, 3))
    assert result["mean_iou"] == pytest.approx(mean_iou(pred, target, 3))
    assert result["mean_dice"] == pytest.approx(mean_dice(pred, target, 3))
    assert result["pixel_accuracy"] == pytest.approx(pixel_accuracy(pred, target, 3))
    metric.reset()
    assert metric.matrix.sum() == 0


@pytest.mark.parametrize("pred,target,kwargs,message", [
    (np.zeros((1, 4, 4), int), np.zeros((1, 4, 5), int), {}, r"\(1, 4, 4\).*\(1, 4, 5\)"),
    (np.zeros((1, 2, 4, 4)), np.zeros((1, 4, 4), int), {},
     r"scores of shape \(1, 2, 4, 4\).*num_classes=3.*\(1, 3, 4, 4\)"),
    (np.zeros((2, 2), int), np.array([[0, 1], [3, 2]]), {}, r"target holds label 3.*num_classes=3"),
    (np.zeros((2, 2), int), np.array([[0, 1], [-1, 2]]), {}, r"target holds label -1"),
    (np.zeros((2, 2), int), np.array([[0, 1], [254, 2]]), {"ignore_index": 255},
     r"label 254.*ignore_index 255"),
    (np.array([[0, 5]]), np.array([[0, 1]]), {}, r"prediction holds label 5"),
])
def test_bad_input_names_the_sizes_and_values(pred, target, kwargs, message):
    with pytest.raises(ValueError, match=message):
        confusion_matrix(pred, target, 3, **kwargs)


def test_bad_types():
    with pytest.raises(TypeError, match="target must hold integer"):
        confusion_matrix(np.zeros((2, 2), int), np.zeros((2, 2)), 3)
    with pytest.raises(TypeError, match="predicted labels must be integers"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 2), int), 3)
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        ConfusionMatrix(0)
