"""The run figures draw any class name, including matplotlib's math characters."""

import numpy as np
from PIL import Image

from minicnn.viz import plot_confusion, plot_predictions

# class folder names a user may have: matplotlib would parse the first as (invalid) math
CLASSES = [r"$\undefined$", "price $5", "cat_1", "a^b{c}"]


def _assert_png(path):
    with Image.open(path) as im:
        assert im.format == "PNG" and min(im.size) > 50


def test_confusion_figure_with_math_characters_in_class_names(tmp_path):
    cm = np.arange(16).reshape(4, 4)
    plot_confusion(cm, CLASSES, tmp_path / "confusion.png")
    _assert_png(tmp_path / "confusion.png")


def test_prediction_figure_with_math_characters_in_class_names(tmp_path):
    images = np.random.default_rng(0).random((4, 3, 8, 8)).astype(np.float32)
    targets = np.array([0, 1, 2, 3])
    plot_predictions(images, targets, np.array([0, 0, 2, 1]), CLASSES, tmp_path / "pred.png")
    _assert_png(tmp_path / "pred.png")


def test_the_label_reads_as_written():
    """An escaped dollar renders as a dollar sign: matplotlib's parser gives back the text."""
    from matplotlib.text import Text

    from minicnn.viz.training import _text

    text = Text(0, 0, _text(r"$\undefined$"))
    assert text._preprocess_math(text.get_text()) == (r"$\undefined$", False)
