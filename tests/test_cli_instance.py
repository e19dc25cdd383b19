"""``minicnn train --task instance``, ``eval`` and ``predict`` on instance segmentation runs:
the run folder, box and mask mAP against pycocotools, the help's defaults, and one-line
errors. The plumbing runs the recipe's own maskrcnn_small for one epoch on 4 scenes."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from minicnn.autograd import Tensor
from minicnn.cli import main, make_parser
from minicnn.data import DataLoader, detection_collate, load_data
from minicnn.train import instance
from tests.helpers import cli_error

TINY = ["--task", "instance", "--subset", "4", "--batch-size", "2", "--epochs", "1",
        "--no-progress"]
FILES = ("config.json", "metrics.csv", "metrics.json", "figures/curves.png",
         "figures/instance.png")


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """A finished 1-epoch instance run of 2 steps on 4 shapes scenes (tests use a copy)."""
    out = tmp_path_factory.mktemp("inst") / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out


def test_instance_run_folder_eval_and_predict(run2, tmp_path, capsys):
    for name in FILES:
        assert (run2 / name).is_file(), name
    config = json.loads((run2 / "config.json").read_text())
    assert (config["task"], config["data"], config["model"]) == ("instance", "shapes",
                                                                 "maskrcnn_small")
    assert config["classes"] == ["__background__", "circle", "square", "triangle", "cross"]
    assert config["num_classes"] == 5 and config["image_size"] == [64, 64]
    assert config["lr"] == instance.DEFAULTS["lr"]  # the recipe's default
    rows = list(csv.DictReader((run2 / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1"]
    for key in ("train_loss_mask", "train_loss_classifier", "val_map_50", "val_mask_map_50"):
        assert key in rows[0], key
    for kind in ("", "mask_"):
        assert 0 <= float(rows[0][f"val_{kind}map"]) <= float(rows[0][f"val_{kind}map_50"]) <= 1
    final = json.loads((run2 / "metrics.json").read_text())["final"]
    assert final["images"] == 4
    capsys.readouterr()
    assert main(["eval", str(run2)]) == 0
    out = capsys.readouterr().out
    assert f"mask mAP@0.5 {final['val_mask_map_50']:.4f}" in out and "on 4 scenes" in out
    assert f"test box mAP@0.5 {final['val_map_50']:.4f}" in out
    # predict draws the masks and boxes over a copy of the image, at the file's size
    image, _ = load_data("shapes", subset=1, image_size=48, task="instance")[1][0]
    path = tmp_path / "scene.png"
    Image.fromarray((image.transpose(1, 2, 0) * 255).astype(np.uint8)).save(path)
    assert main(["predict", str(run2), str(path), "--min-score", "0",
                 "--out-dir", str(tmp_path / "drawn")]) == 0
    line = capsys.readouterr().out
    assert line.startswith(f"{path}: ") and "objects (score >= 0.0)" in line
    assert "; drawn in" in line
    drawn = Image.open(tmp_path / "drawn" / "scene-instances.png")
    assert min(drawn.size) >= 48


class _Oracle:
    """A stand-in detector for ``evaluate``: per image a false positive scoring highest,
    then the true objects (boxes shifted by 2 pixels; masks as probabilities 0.9 but 0.4,
    below the 0.5 threshold, on the left third of each box)."""

    def __init__(self, truths):
        self.truths, self.calls = truths, 0
        self.training = False

    def eval(self):
        return self

    def to(self, device):
        return self

    def __call__(self, images):
        out = []
        for _ in range(images.shape[0]):
            t = self.truths[self.calls]
            self.calls += 1
            k = len(t["labels"])
            masks = t["masks"].astype(np.float32)[:, None] * 0.9
            for j, box in enumerate(t["boxes"]):  # the left third of each object: p = 0.4
                cut = int(box[0] + (box[2] - box[0]) / 3)
                masks[j, 0, :, :cut] = np.where(masks[j, 0, :, :cut] > 0, 0.4, 0)
            boxes = np.concatenate([[[0, 0, 10, 10]], t["boxes"] + 2]).astype(np.float32)
            fp = np.zeros((1, 1, *masks.shape[2:]), np.float32)
            fp[..., :10, :10] = 0.8
            out.append({"boxes": Tensor(boxes),
                        "labels": Tensor(np.concatenate([[1], t["labels"]]).astype(np.int64)),
                        "scores": Tensor(np.linspace(0.95, 0.5, k + 1).astype(np.float32)),
                        "masks": Tensor(np.concatenate([fp, masks]))})
        return out


def test_evaluate_box_and_mask_map_equal_pycocotools():
    from tests.metrics.test_mean_ap import coco_reference

    _, test = load_data("shapes", subset=6, task="instance")
    truths = [test[i][1] for i in range(len(test))]
    trainer = instance.InstanceTrainer(_Oracle(truths), None, progress=False)
    result = trainer.evaluate(DataLoader(test, 4, collate_fn=detection_collate))
    trainer.model.calls = 0  # the same predictions again, for the reference
    images = np.stack([test[i][0] for i in range(len(test))])
    preds = [{k: v.numpy() for k, v in p.items()} for p in trainer.model(images)]
    for p in preds:
        p["masks"] = p["masks"][:, 0] >= 0.5
    truth = [{"boxes": t["boxes"], "labels": t["labels"], "masks": t["masks"].astype(bool)}
             for t in truths]
    for kind, iou_type in (("", "bbox"), ("mask_", "segm")):
        stats, _ = coco_reference(preds, truth, iou_type)
        assert result[f"val_{kind}map"] == pytest.approx(stats[0], abs=1e-6)
        assert result[f"val_{kind}map_50"] == pytest.approx(stats[1], abs=1e-6)
        assert result[f"val_{kind}map_75"] == pytest.approx(stats[2], abs=1e-6)
    assert 0 < result["val_mask_map"] < result["val_mask_map_50"] < 1  # not a trivial case
    assert result["val_map"] != result["val_mask_map"]


def test_help_states_the_recipe_defaults():
    text = " ".join(make_parser()._subparsers._group_actions[0].choices["train"]
                    .format_help().split())
    d = instance.DEFAULTS
    assert f"--task instance: {d['epochs']}" in text
    assert f"--task instance: {d['batch_size']}" in text
    assert f"--task instance: {d['lr']:g}" in text
    assert "--task instance takes shapes (used when --data is not given) or digit_scenes" in text
    assert "--task instance: maskrcnn_small" in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "instance", "--data", "digits"],
         "--data digits has no instance targets (it is for classify); data for --task "
         "instance: shapes, digit_scenes"),
        (["--task", "instance", "--model", "small_resnet"],
         "--model small_resnet is a classification model; --task instance needs an instance "
         "segmentation model: maskrcnn_small"),
        (["--task", "detect", "--model", "maskrcnn_small"],
         "--model maskrcnn_small is an instance segmentation model; --task detect needs a "
         "detector"),
        (["--task", "instance", "--crop-padding", "1"], "--crop-padding is for classification"),
    ],
)
def test_bad_instance_arguments_give_one_line(tmp_path, capsys, args, message):
    out = tmp_path / "never"
    assert main(["train", *args, "--out", str(out), "--no-progress", "--subset", "2"]) == 2
    assert message in cli_error(capsys)
    assert not out.exists()


def test_instance_data_without_masks_is_refused(monkeypatch):
    """A scene dataset whose targets have no masks: one line naming the data."""
    import minicnn.train.instance as recipe

    real = recipe.load_data

    def no_masks(*args, **kwargs):
        return tuple(_DropMasks(split) for split in real(*args, **kwargs))

    monkeypatch.setattr(recipe, "load_data", no_masks)
    with pytest.raises(ValueError, match=r"'shapes' has no per-object masks \(its targets have "
                                         r"boxes, labels"):
        recipe.instance_data("shapes", subset=2)


class _DropMasks:
    def __init__(self, dataset):
        self.dataset, self.classes = dataset, dataset.classes

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        image, target = self.dataset[i]
        return image, {k: v for k, v in target.items() if k != "masks"}


@pytest.mark.slow
def test_detect_trains_fasterrcnn_small(tmp_path, capsys):
    """--task detect --model fasterrcnn_small: a tiny run of the detection recipe."""
    out = tmp_path / "frcnn"
    assert main(["train", "--task", "detect", "--model", "fasterrcnn_small", "--data", "shapes",
                 "--subset", "4", "--batch-size", "2", "--epochs", "1", "--no-progress",
                 "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["num_classes"] == 4 and config["image_size"] == [64, 64]
    assert "test mAP@0.5" in capsys.readouterr().out
