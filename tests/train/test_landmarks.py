"""The landmark recipe: its two losses against PyTorch (the heatmap cross-entropy over each
map's pixels with the normalized Gaussian as the target; L2 on the coordinates in units of
the image size), the evaluation's error against the distances recomputed by hand, the data
splits, a heatmap run that learns, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minicnn
from minicnn import optim
from minicnn.data import DataLoader
from minicnn.data.landmarks import gaussian_heatmaps
from minicnn.train.landmarks import (
    LandmarkTrainer,
    build_landmark_model,
    landmark_data,
    landmark_error,
)


def _batch(n=3, size=16, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.random((n, 3, size, size)).astype(np.float32)
    kp = rng.uniform(1, size - 1, (n, 5, 2)).astype(np.float32)
    return images, kp


def test_heatmap_loss_is_the_pixel_softmax_cross_entropy():
    model = build_landmark_model("landmark_unet")
    trainer = LandmarkTrainer(model, None, sigma=1.2, progress=False)
    images, kp = _batch()
    x, y = trainer._batch(images, kp)
    logits = np.random.default_rng(1).standard_normal((3, 5, 16, 16)).astype(np.float32)
    ours = trainer.loss_fn(minicnn.tensor(logits), y).item()
    target = gaussian_heatmaps(kp, 16, 1.2).reshape(15, 256)
    target /= target.sum(1, keepdims=True)
    theirs = torch.nn.functional.cross_entropy(torch.tensor(logits.reshape(15, 256)),
                                               torch.tensor(target)).item()
    assert ours == pytest.approx(theirs, rel=1e-5)


def test_regression_loss_is_l2_in_units_of_the_image_size():
    model = build_landmark_model("landmark_regressor", image_size=16)
    trainer = LandmarkTrainer(model, None, progress=False)
    images, kp = _batch()
    _, y = trainer._batch(images, kp)
    pred = np.random.default_rng(2).uniform(0, 16, (3, 5, 2)).astype(np.float32)
    ours = trainer.loss_fn(minicnn.tensor(pred), y).item()
    theirs = torch.nn.functional.mse_loss(torch.tensor(pred / 16), torch.tensor(kp / 16)).item()
    assert ours == pytest.approx(theirs, rel=1e-5)


def test_evaluate_measures_the_mean_distance():
    model = build_landmark_model("landmark_regressor", image_size=32)
    _, test, occluded = landmark_data(12)
    trainer = LandmarkTrainer(model, None, occluded_loader=DataLoader(occluded, 5),
                              progress=False)
    result = trainer.evaluate(DataLoader(test, 5))
    images = np.stack([test[i][0] for i in range(12)])
    true = np.stack([test[i][1] for i in range(12)])
    model.eval()
    with minicnn.no_grad():
        pred = model(minicnn.tensor(images)).numpy()
    assert result["val_error"] == pytest.approx(
        np.mean(np.hypot(*(pred - true).transpose(2, 0, 1))), rel=1e-5)
    assert result["per_landmark"].shape == (5,) and "val_error_occluded" in result
    assert result["images"] == 12


def test_landmark_error_and_bad_input():
    np.testing.assert_allclose(landmark_error([[3.0, 4.0], [1.0, 1.0]], [[0.0, 0.0],
                                                                         [1.0, 1.0]]), [5, 0])
    with pytest.raises(ValueError, match=r"both be \(\.\.\., K, 2\), got \(1, 2\) and \(2, 2\)"):
        landmark_error([[0.0, 0.0]], [[0.0, 0.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match="the model's 'output' must be 'heatmaps' or "
                                         "'coordinates', got None"):
        LandmarkTrainer(minicnn.nn.Linear(2, 2), None)
    with pytest.raises(ValueError, match="unknown landmark model 'unet'"):
        build_landmark_model("unet")
    with pytest.raises(ValueError, match="subset must be positive, got 0"):
        landmark_data(0)


@pytest.mark.slow
def test_heatmap_training_lowers_the_error():
    """A few dozen steps on 64 scenes: the error on them falls well below guessing."""
    minicnn.manual_seed(0)
    train, _, _ = landmark_data(64, train_occlusion=0.0)
    model = build_landmark_model("landmark_unet")
    opt = optim.Adam(model.parameters(), lr=3e-3)
    trainer = LandmarkTrainer(model, opt, progress=False)
    loader = DataLoader(train, 16, shuffle=True)
    before = trainer.evaluate(loader)["val_error"]
    trainer.fit(loader, None, epochs=8)
    after = trainer.evaluate(loader)["val_error"]
    assert after < 0.6 * before, (before, after)
