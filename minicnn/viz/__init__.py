"""``minicnn.viz``: matplotlib figures of training runs (curves, confusion matrix, predictions)."""

from minicnn.viz.training import plot_confusion, plot_curves, plot_predictions

__all__ = ["plot_confusion", "plot_curves", "plot_predictions"]
