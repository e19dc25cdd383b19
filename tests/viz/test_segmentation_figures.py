"""Segmentation figures: the mask overlay's colours, and the figures written as PNG."""

import numpy as np
import pytest

from minicnn import viz

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_overlay_keeps_background_grey_and_colours_each_class():
    image = np.random.default_rng(0).random((3, 4, 5)).astype(np.float32)
    mask = np.zeros((4, 5), np.int64)
    mask[1, 2], mask[3, 4], mask[0, 0] = 2, 1, 255
    out = viz.overlay_mask(image, mask, 3, alpha=1.0)
    grey = 0.6 * image.mean(0)
    assert out.shape == (4, 5, 3)
    np.testing.assert_allclose(out[2, 1], [grey[2, 1]] * 3, rtol=1e-6)  # background: grey
    colours = viz.mask_colours(3)
    np.testing.assert_allclose(out[1, 2], colours[2])
    np.testing.assert_allclose(out[3, 4], colours[1])
    np.testing.assert_allclose(out[0, 0], [1, 1, 1])  # the ignore index: white
    assert len({tuple(c) for c in colours}) == 3
    with pytest.raises(ValueError, match=r"overlay_mask: mask is \(4, 4\), expected the "
                                         r"image's size \(4, 5\)"):
        viz.overlay_mask(image, mask[:, :4], 3)


def test_segmentation_figures_are_written(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.random((2, 3, 16, 16)).astype(np.float32)
    masks = rng.integers(0, 3, (2, 16, 16))
    classes = ["__background__", "$a$", "b"]
    viz.plot_segmentations(images, masks, masks[::-1], classes, tmp_path / "seg.png")
    viz.save_segmentation(images[0], masks[0], classes, tmp_path / "one.png")
    history = [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1, "val_miou": 0.3,
                "val_dice": 0.4, "val_pixel_acc": 0.8}]
    viz.plot_segmentation_curves(history, tmp_path / "curves.png")
    for name in ("seg.png", "one.png", "curves.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_SIGNATURE
