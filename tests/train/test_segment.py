"""The segmentation recipe: the trainer's step and evaluation against independent
references (PyTorch's per-pixel cross-entropy, a hand-computed confusion matrix), the
training_step hook of Trainer, and one-line errors for bad masks and small inputs."""

import numpy as np
import pytest
import torch

import minicnn
from minicnn import nn, optim
from minicnn.autograd import tensor
from minicnn.data import DataLoader, TensorDataset, segmentation_collate
from minicnn.models.segmentation import unet
from minicnn.train import Trainer
from minicnn.train.segment import SEGMENTERS, SegmentationTrainer, build_segmenter


class Fixed(nn.Module):
    """A "segmenter" whose logits are given: (N, C, H, W) from the images' first C channels."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.scale = nn.Parameter(tensor(np.ones(1, np.float32)))

    def forward(self, x):
        return x[:, : self.num_classes] * self.scale


def _loader(logits, masks, batch=2):
    pairs = list(zip(logits.astype(np.float32), masks.astype(np.int64), strict=True))
    return DataLoader(pairs, batch, collate_fn=segmentation_collate)


def test_evaluate_matches_pytorch_loss_and_a_hand_confusion_matrix():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 3, 5, 6))
    masks = rng.integers(0, 3, size=(4, 5, 6))
    masks[0, 0, :3] = 255  # ignored pixels count nowhere
    trainer = SegmentationTrainer(Fixed(3), None, progress=False)
    result = trainer.evaluate(_loader(logits, masks))
    ref = torch.nn.functional.cross_entropy(torch.from_numpy(logits.astype(np.float32)),
                                            torch.from_numpy(masks), ignore_index=255,
                                            reduction="none")
    # the mean over batches of per-batch means (batches of equal size and no ignored pixel
    # except in the first): the loss of each batch is PyTorch's
    per_batch = [ref[:2].sum() / (masks[:2] != 255).sum(), ref[2:].mean()]
    assert result["val_loss"] == pytest.approx(float(np.mean(per_batch)), rel=1e-5)
    pred, keep = logits.argmax(1), masks != 255
    cm = np.zeros((3, 3), np.int64)
    for t, p in zip(masks[keep], pred[keep], strict=True):
        cm[t, p] += 1
    np.testing.assert_array_equal(result["confusion"], cm)
    iou = np.diag(cm) / (cm.sum(0) + cm.sum(1) - np.diag(cm))
    dice = 2 * np.diag(cm) / (cm.sum(0) + cm.sum(1))
    assert result["val_miou"] == pytest.approx(iou.mean())
    assert result["val_dice"] == pytest.approx(dice.mean())
    assert result["val_pixel_acc"] == pytest.approx(np.trace(cm) / cm.sum())
    assert result["images"] == 4 and result["examples"][2].shape == (2, 5, 6)


def test_labels_beyond_the_models_classes_are_one_line_errors():
    logits = np.zeros((2, 3, 4, 4))
    masks = np.zeros((2, 4, 4), np.int64)
    masks[1, 2, 2] = 3
    trainer = SegmentationTrainer(Fixed(3), None, progress=False)
    with pytest.raises(ValueError, match=r"the batch's masks: has the labels \[3\], expected "
                                         r"0..2 or the ignore index 255 for 3 classes"):
        trainer.evaluate(_loader(logits, masks))


def test_training_step_is_the_hook_of_the_epoch_loop():
    """A recipe overrides training_step; the loop logs its sums as train_<name> means."""
    seen = []

    class Counting(Trainer):
        def training_step(self, x, y):
            logits = self.model(x)
            seen.append(len(y))
            return minicnn.nn.functional.cross_entropy(logits, y), {"twice": 2.0 * len(y)}

    minicnn.manual_seed(0)
    model = nn.Linear(4, 3)
    data = TensorDataset(np.random.default_rng(1).normal(size=(10, 4)).astype(np.float32),
                         np.arange(10) % 3)
    trainer = Counting(model, optim.SGD(model.parameters(), lr=0.1), progress=False)
    row = trainer.train_epoch(DataLoader(data, 4))
    assert seen == [4, 4, 2]
    assert row["train_twice"] == 2.0 and "train_acc" not in row


def test_the_recipe_builds_each_segmenter_for_its_scenes():
    x = tensor(np.zeros((1, 3, 64, 64), np.float32))
    for name in SEGMENTERS:
        model = build_segmenter(name, 5)
        model.eval()
        assert tuple(model(x).shape) == (1, 5, 64, 64), name
    with pytest.raises(ValueError, match="unknown segmenter 'fcn'; expected one of unet"):
        build_segmenter("fcn", 5)


@pytest.mark.parametrize("padding, depth, size, need", [("same", 3, 7, 8), ("same", 4, 12, 16),
                                                          ("valid", 2, 40, 44)])
def test_unet_refuses_an_input_too_small_for_its_depth(padding, depth, size, need):
    model = unet(3, 2, base_width=2, depth=depth, padding=padding)
    with pytest.raises(ValueError, match=rf"needs H, W >= {need}: an input of {size}x{size}"):
        model(tensor(np.zeros((1, 3, size, size), np.float32)))
    model(tensor(np.zeros((1, 3, need, need), np.float32)))  # the smallest it takes
