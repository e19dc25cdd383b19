"""The detection trainers' evaluation threshold: mAP needs the low-scoring detections, so
evaluation lowers a detector's score threshold wherever the model keeps it."""

import pytest

from minicnn.models.detection import fasterrcnn_small, yolo_v1_small
from minicnn.train.detect import EVAL_SCORE_THRESH, eval_score_threshold


@pytest.mark.parametrize("build, owner", [
    (lambda: yolo_v1_small(num_classes=3), lambda m: m),  # one-stage: on the model
    (lambda: fasterrcnn_small(num_classes=4), lambda m: m.roi_heads),  # two-stage: roi_heads
])
def test_eval_score_threshold_lowers_and_restores(build, owner):
    model = build()
    own = owner(model).score_thresh
    assert own > EVAL_SCORE_THRESH
    with eval_score_threshold(model):
        assert owner(model).score_thresh == EVAL_SCORE_THRESH
    assert owner(model).score_thresh == own
    with pytest.raises(RuntimeError), eval_score_threshold(model):
        raise RuntimeError("a failing batch")
    assert owner(model).score_thresh == own  # restored after an error too
