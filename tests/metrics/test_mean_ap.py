"""MeanAveragePrecision against pycocotools' COCOeval, the reference for COCO mAP.

Each case draws random detections and ground truth (fixed seeds), gives them to
MeanAveragePrecision, builds the same data as pycocotools COCO objects in memory, runs
COCOeval (evaluate, accumulate, summarize) and compares the twelve summary numbers, the
per-class values and the precision/recall tables to 1e-6.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from minicnn.autograd import Tensor
from minicnn.metrics import MeanAveragePrecision

pytest.importorskip("pycocotools")
from pycocotools import mask as mask_utils  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

SUMMARY_KEYS = ["map", "map_50", "map_75", "map_small", "map_medium", "map_large",
                "mar_1", "mar_10", "mar_100", "mar_small", "mar_medium", "mar_large"]


# ---------------------------------------------------------------- random scenes


def random_boxes(rng, n: int, size: float = 300.0) -> np.ndarray:
    """``(n, 4)`` xyxy boxes of every COCO size class (sides 2 to 200 px)."""
    xy = rng.uniform(0, size, (n, 2))
    wh = np.exp(rng.uniform(np.log(2), np.log(200), (n, 2)))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


def jitter(rng, boxes: np.ndarray, amount: float) -> np.ndarray:
    """Detections near ``boxes``: corners moved by up to ``amount`` of the box's size."""
    wh = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)
    moved = boxes + rng.uniform(-amount, amount, boxes.shape) * wh
    x1, x2 = np.minimum(moved[:, 0], moved[:, 2]), np.maximum(moved[:, 0], moved[:, 2])
    y1, y2 = np.minimum(moved[:, 1], moved[:, 3]), np.maximum(moved[:, 1], moved[:, 3])
    return np.stack([x1, y1, x2, y2], axis=1).astype(np.float32)


def random_scenes(seed: int, n_images: int = 30, n_classes: int = 5, max_objects: int = 12,
                  crowd_rate: float = 0.1, empty_rate: float = 0.15, area: bool = False,
                  grid: float = 0.0):
    """Lists of pred and target dicts (NumPy): detections near the objects (some very close,
    some far), false positives, duplicates, tied scores; some images without detections,
    some without objects. ``grid``: round every box to multiples of it (tied IoUs)."""
    rng = np.random.default_rng(seed)
    preds, targets = [], []
    for _ in range(n_images):
        g = 0 if rng.random() < empty_rate else int(rng.integers(1, max_objects + 1))
        gt = random_boxes(rng, g)
        if grid:
            gt = np.round(gt / grid) * grid
        gt_labels = rng.integers(1, n_classes + 1, g)
        target = {"boxes": gt, "labels": gt_labels,
                  "iscrowd": (rng.random(g) < crowd_rate).astype(np.int64)}
        if area:
            target["area"] = np.where(rng.random(g) < 0.5, rng.uniform(10, 20000, g), 0.0)
        targets.append(target)
        if rng.random() < empty_rate:
            preds.append({"boxes": np.zeros((0, 4), np.float32), "scores": np.zeros(0),
                          "labels": np.zeros(0, np.int64)})
            continue
        near = rng.integers(0, max(g, 1), int(rng.integers(0, 2 * g + 1))) if g else []
        close = jitter(rng, gt[near], rng.uniform(0.02, 0.4)) if g else np.zeros((0, 4))
        labels_close = gt_labels[near] if g else np.zeros(0, np.int64)
        flip = rng.random(len(labels_close)) < 0.1  # some with the wrong class
        labels_close = np.where(flip, rng.integers(1, n_classes + 1, len(labels_close)),
                                labels_close)
        f = int(rng.integers(0, 6))
        boxes = np.concatenate([close, random_boxes(rng, f)]).astype(np.float32)
        if grid:
            boxes = np.round(boxes / grid) * grid
        labels = np.concatenate([labels_close, rng.integers(1, n_classes + 1, f)])
        scores = np.round(rng.random(len(boxes)), 2).astype(np.float32)  # ties
        preds.append({"boxes": boxes, "scores": scores, "labels": labels.astype(np.int64)})
    return preds, targets


# ---------------------------------------------------------------- the reference


def coco_reference(preds, targets, iou_type="bbox", iou_thresholds=None,
                   rec_thresholds=None, max_dets=None, cat_id=None):
    """pycocotools' COCOeval on the same data, built in memory: (stats, eval dict)."""
    images, gt_anns, dt_anns, cats = [], [], [], set()
    for i, (pred, tgt) in enumerate(zip(preds, targets)):
        image = {"id": i}
        if iou_type == "segm":
            image.update(height=tgt["masks"].shape[1], width=tgt["masks"].shape[2])
        images.append(image)
        for k, label in enumerate(tgt["labels"]):
            ann = {"id": len(gt_anns) + 1, "image_id": i, "category_id": int(label),
                   "iscrowd": int(tgt.get("iscrowd", np.zeros(len(tgt["labels"])))[k])}
            if iou_type == "bbox":
                x1, y1, x2, y2 = (float(v) for v in tgt["boxes"][k])
                ann["bbox"] = [x1, y1, x2 - x1, y2 - y1]
                ann["area"] = (x2 - x1) * (y2 - y1)
            else:
                ann["segmentation"] = mask_utils.encode(
                    np.asfortranarray(tgt["masks"][k].astype(np.uint8)))
                ann["area"] = float(mask_utils.area(ann["segmentation"]))
            if "area" in tgt and tgt["area"][k] > 0:
                ann["area"] = float(tgt["area"][k])
            gt_anns.append(ann)
            cats.add(int(label))
        for k, label in enumerate(pred["labels"]):
            ann = {"id": len(dt_anns) + 1, "image_id": i, "category_id": int(label),
                   "score": float(pred["scores"][k]), "iscrowd": 0}
            if iou_type == "bbox":
                x1, y1, x2, y2 = (float(v) for v in pred["boxes"][k])
                ann["bbox"] = [x1, y1, x2 - x1, y2 - y1]
                ann["area"] = (x2 - x1) * (y2 - y1)
            else:
                ann["segmentation"] = mask_utils.encode(
                    np.asfortranarray(pred["masks"][k].astype(np.uint8)))
                ann["area"] = float(mask_utils.area(ann["segmentation"]))
            dt_anns.append(ann)
            cats.add(int(label))
    categories = [{"id": c} for c in sorted(cats)]
    with contextlib.redirect_stdout(io.StringIO()):
        gt, dt = COCO(), COCO()
        gt.dataset = {"images": images, "annotations": gt_anns, "categories": categories}
        dt.dataset = {"images": images, "annotations": dt_anns, "categories": categories}
        gt.createIndex()
        dt.createIndex()
        ev = COCOeval(gt, dt, iou_type)
        if iou_thresholds is not None:
            ev.params.iouThrs = np.asarray(iou_thresholds, dtype=np.float64)
        if rec_thresholds is not None:
            ev.params.recThrs = np.asarray(rec_thresholds, dtype=np.float64)
        if max_dets is not None:
            ev.params.maxDets = max_dets
        if cat_id is not None:
            ev.params.catIds = [cat_id]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats, ev.eval


def assert_equal_to_coco(result, stats, max_dets=(1, 10, 100)):
    keys = SUMMARY_KEYS[:6] + [f"mar_{m}" for m in max_dets] + SUMMARY_KEYS[9:]
    ours = np.array([float(result[key]) for key in keys])
    np.testing.assert_allclose(ours, stats, rtol=0, atol=1e-6,
                               err_msg="summary differs from COCOeval: " + ", ".join(keys))


# ---------------------------------------------------------------- equality


@pytest.mark.parametrize("seed,kwargs", [
    (0, {}),
    (1, {"n_images": 60, "n_classes": 8}),
    (2, {"n_images": 15, "max_objects": 40, "crowd_rate": 0.25}),  # crowded scenes
    (3, {"n_images": 20, "empty_rate": 0.5}),  # many images without detections/objects
    (4, {"area": True}),  # areas given in the targets
    (5, {"crowd_rate": 0.0, "n_classes": 1}),
    (11, {"n_images": 40, "max_objects": 30, "n_classes": 2, "grid": 8.0}),  # tied IoUs
])
def test_equals_cocoeval_on_random_boxes(seed, kwargs):
    preds, targets = random_scenes(seed, **kwargs)
    metric = MeanAveragePrecision(class_metrics=True, extended_summary=True)
    metric.update(preds, targets)
    result = metric.compute()
    stats, ev = coco_reference(preds, targets)
    assert_equal_to_coco(result, stats)
    np.testing.assert_allclose(result["precision"].numpy(), ev["precision"], atol=1e-12)
    np.testing.assert_allclose(result["recall"].numpy(), ev["recall"], atol=1e-12)
    np.testing.assert_allclose(result["scores"].numpy(), ev["scores"], atol=1e-6)
    assert 0 < float(result["map"]) < 1  # not trivial: some detections hit, not all
    for k, label in enumerate(result["classes"].numpy()):
        class_stats, _ = coco_reference(preds, targets, cat_id=int(label))
        assert abs(float(result["map_per_class"].numpy()[k]) - class_stats[0]) < 1e-6
        assert abs(float(result["mar_100_per_class"].numpy()[k]) - class_stats[8]) < 1e-6


def test_many_detections_per_image_max_dets():
    """Over 100 detections of a class per image: the limits 1/10/100 (COCO counts them per
    image and class) cut different detections."""
    preds, targets = random_scenes(6, n_images=8, n_classes=2, max_objects=80)
    rng = np.random.default_rng(7)
    for pred in preds:  # pad every image to 180 detections, most of class 1
        extra = 180 - len(pred["labels"])
        if extra > 0:
            pred["boxes"] = np.concatenate([pred["boxes"], random_boxes(rng, extra)])
            pred["scores"] = np.concatenate([pred["scores"], rng.random(extra)])
            pred["labels"] = np.concatenate([pred["labels"], np.ones(extra, np.int64)])
    for limits in (None, [2, 5, 40]):
        metric = MeanAveragePrecision(max_detection_thresholds=limits)
        metric.update(preds, targets)
        stats, ev = coco_reference(preds, targets, max_dets=limits)
        if limits is not None:
            # COCOeval.summarize's first number asks for maxDets=100 by name (-1 when 100 is
            # not a limit); map is the mean at the largest limit, as its other numbers are
            precision = ev["precision"][:, :, :, 0, -1]
            stats[0] = precision[precision > -1].mean()
        assert_equal_to_coco(metric.compute(), stats, max_dets=limits or (1, 10, 100))


def test_custom_thresholds_and_batches():
    """Own IoU and recall thresholds (no 0.75: map_75 is -1 as in COCOeval); several
    update calls equal one; Tensors are accepted."""
    preds, targets = random_scenes(8, n_images=24)
    iou, rec = [0.3, 0.5, 0.9], np.linspace(0, 1, 11)
    metric = MeanAveragePrecision(iou_thresholds=iou, rec_thresholds=rec)
    for start in range(0, 24, 5):
        metric.update([{k: Tensor(v) for k, v in p.items()} for p in preds[start:start + 5]],
                      targets[start:start + 5])
    result = metric.compute()
    stats, _ = coco_reference(preds, targets, iou_thresholds=iou, rec_thresholds=rec)
    assert_equal_to_coco(result, stats)
    assert float(result["map_75"]) == -1
    metric.reset()
    assert float(metric.compute()["map"]) == -1  # nothing seen


def test_box_formats_give_the_same_numbers():
    preds, targets = random_scenes(9, n_images=10)

    def convert(items, fmt):
        out = []
        for item in items:
            b = item["boxes"].astype(np.float64)
            w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
            b = (np.stack([b[:, 0], b[:, 1], w, h], 1) if fmt == "xywh" else
                 np.stack([b[:, 0] + w / 2, b[:, 1] + h / 2, w, h], 1))
            out.append({**item, "boxes": b})
        return out

    stats, _ = coco_reference(preds, targets)
    for fmt in ("xywh", "cxcywh"):
        metric = MeanAveragePrecision(box_format=fmt)
        metric.update(convert(preds, fmt), convert(targets, fmt))
        assert_equal_to_coco(metric.compute(), stats)


def random_mask_scenes(seed: int, n_images: int = 12, size: int = 48, n_classes: int = 3):
    """Binary masks (blobs of every size class on 48x48 or 160x160 images) and detections
    that are the objects' masks grown, shrunk or shifted, plus random ones."""
    rng = np.random.default_rng(seed)
    preds, targets = [], []
    yy, xx = np.mgrid[:size, :size]

    def blob():
        cy, cx = rng.uniform(0, size, 2)
        ry, rx = rng.uniform(1, size / 3, 2)
        return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1

    for i in range(n_images):
        g = 0 if i % 5 == 4 else int(rng.integers(1, 8))
        gt = np.array([blob() for _ in range(g)], dtype=np.uint8).reshape(g, size, size)
        labels = rng.integers(1, n_classes + 1, g)
        crowd = (rng.random(g) < 0.15).astype(np.int64)
        targets.append({"masks": gt, "labels": labels, "iscrowd": crowd})
        dets, det_labels = [], []
        for k in range(g):
            for _ in range(int(rng.integers(0, 3))):
                m = np.roll(gt[k], tuple(rng.integers(-3, 4, 2)), axis=(0, 1))
                dets.append(m)
                det_labels.append(labels[k])
        dets += [blob().astype(np.uint8) for _ in range(int(rng.integers(0, 3)))]
        det_labels += list(rng.integers(1, n_classes + 1, len(dets) - len(det_labels)))
        if i % 7 == 6:
            dets, det_labels = [], []
        preds.append({"masks": np.array(dets, np.uint8).reshape(-1, size, size).astype(bool),
                      "scores": np.round(rng.random(len(dets)), 2),
                      "labels": np.array(det_labels, np.int64)})
    return preds, targets


@pytest.mark.parametrize("seed,size", [(0, 48), (1, 160)])
def test_segm_equals_cocoeval(seed, size):
    preds, targets = random_mask_scenes(seed, size=size)
    metric = MeanAveragePrecision(iou_type="segm", extended_summary=True)
    metric.update(preds, targets)
    result = metric.compute()
    stats, ev = coco_reference(preds, targets, iou_type="segm")
    assert_equal_to_coco(result, stats)
    np.testing.assert_allclose(result["precision"].numpy(), ev["precision"], atol=1e-12)
    assert float(result["map"]) > 0.05


def test_equal_iou_goes_to_the_last_object_as_in_cocoeval():
    """The first detection overlaps objects A and B equally (IoU 0.82); COCOeval gives it
    the later one, B, so the second detection (IoU 0.54 with A only) finds A: two hits at
    IoU 0.5. Taking A first would leave the second detection without a match."""
    target = {"boxes": np.array([[0, 0, 10, 10], [2, 0, 12, 10]], np.float32),
              "labels": np.array([1, 1])}
    pred = {"boxes": np.array([[1, 0, 11, 10], [-3, 0, 7, 10]], np.float32),
            "scores": np.array([0.9, 0.8]), "labels": np.array([1, 1])}
    metric = MeanAveragePrecision()
    metric.update([pred], [target])
    result = metric.compute()
    stats, _ = coco_reference([pred], [target])
    assert_equal_to_coco(result, stats)
    assert float(result["map_50"]) == pytest.approx(1.0)


def test_perfect_detections_score_one():
    preds, targets = random_scenes(10, crowd_rate=0.0)
    perfect = [{"boxes": t["boxes"], "labels": t["labels"],
                "scores": np.ones(len(t["labels"]))} for t in targets]
    metric = MeanAveragePrecision()
    metric.update(perfect, targets)
    result = metric.compute()
    assert float(result["map"]) == pytest.approx(1.0)
    assert float(result["mar_100"]) == pytest.approx(1.0)


# ---------------------------------------------------------------- bad input


def _one(boxes=((0, 0, 2, 2),), scores=(0.5,), labels=(1,)):
    return {"boxes": np.array(boxes, np.float32), "scores": np.array(scores),
            "labels": np.array(labels)}


@pytest.mark.parametrize("make,match", [
    (lambda m: m.update([_one(boxes=[[0, 0, 2]])], [_one()]), r"preds\[0\]\['boxes'\].*\(K, 4\)"),
    (lambda m: m.update([_one()], [_one(boxes=[[3, 0, 2, 2]])]),
     r"target\[0\]\['boxes'\].*x2 < x1"),
    (lambda m: m.update([_one(scores=[0.5, 0.1])], [_one()]), r"preds\[0\]\['scores'\]"),
    (lambda m: m.update([_one(labels=[1, 2])], [_one()]), r"preds\[0\].*1 boxes but 2 labels"),
    (lambda m: m.update([_one(), _one()], [_one()]), "2 preds and 1 targets"),
    (lambda m: m.update([_one()], [_one(labels=[1.5])]), r"target\[0\]\['labels'\].*integer"),
    (lambda m: m.update([{"boxes": np.zeros((0, 4))}], [_one()]), r"preds\[0\].*'labels'"),
    (lambda m: MeanAveragePrecision(box_format="xxyy"), "box_format"),
    (lambda m: MeanAveragePrecision(iou_type="keypoints"), "iou_type"),
    (lambda m: MeanAveragePrecision(max_detection_thresholds=[1, 10]), "max_detection"),
])
def test_bad_input_raises_naming_the_argument(make, match):
    with pytest.raises(ValueError, match=match):
        make(MeanAveragePrecision())


def test_segm_masks_of_different_sizes_raise():
    metric = MeanAveragePrecision(iou_type="segm")
    pred = {"masks": np.zeros((1, 4, 4), bool), "scores": np.ones(1), "labels": np.ones(1)}
    tgt = {"masks": np.zeros((1, 5, 4), bool), "labels": np.ones(1)}
    with pytest.raises(ValueError, match="same image size"):
        metric.update([pred], [tgt])
