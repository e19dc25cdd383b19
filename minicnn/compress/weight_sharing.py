"""Weight sharing by k-means, as in Deep Compression (Han et al. 2016, "Deep Compression:
Compressing Deep Neural Networks with Pruning, Trained Quantization and Huffman Coding",
Section 3).

The weights of one layer are grouped into ``k = 2^bits`` clusters; every weight is then
replaced by its cluster's centroid, so the layer is stored as a codebook of ``k`` float32
values plus one ``bits``-bit index per weight (:mod:`minicnn.compress.size`). The clusters
come from one-dimensional k-means (Lloyd's algorithm) on the layer's weights, started, as
the paper recommends (Section 3.2, Figure 4), from the **linear initialisation**: ``k``
centroids evenly spaced between the smallest and the largest weight. (Random or density-
based starts put few centroids on the rare large weights, which matter most.)

A pruned layer keeps its zeros: only its non-zero weights are clustered, into
``2^bits - 1`` centroids, and zero is the remaining value, so a layer never holds more
than ``2^bits`` distinct values and a ``bits``-bit code could name each of them.

Not done here: the paper's fine-tuning of the centroids (the gradients of the weights of a
cluster summed into its centroid), and its Huffman coding of the indices.
"""

from __future__ import annotations

import numpy as np

from minicnn.autograd.grad_mode import no_grad
from minicnn.compress.pruning import _masked_weight, prunable_layers, weight_of
from minicnn.nn.modules.module import Module

__all__ = ["MAX_BITS", "kmeans_1d", "linear_centroids", "share_weights_"]

MAX_BITS = 8  # codes are stored in at most one byte each


def linear_centroids(values: np.ndarray, k: int) -> np.ndarray:
    """``k`` centroids evenly spaced over ``[values.min(), values.max()]`` (Han et al.'s linear
    initialisation), float64."""
    return np.linspace(float(values.min()), float(values.max()), k)


def nearest(values: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """The index of the centroid nearest to each value (1-D: compare with the midpoints
    between the sorted centroids)."""
    order = np.argsort(centroids, kind="stable")
    c = centroids[order]
    return order[np.searchsorted((c[1:] + c[:-1]) / 2, values)]


def kmeans_1d(values: np.ndarray, k: int, max_iter: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means on the 1-D ``values`` from :func:`linear_centroids`; returns
    ``(centroids (k,) float64, labels (len(values),) int64)``.

    Each iteration assigns every value to its nearest centroid and moves each centroid to
    the mean of its values; it stops when no assignment changes (or after ``max_iter``
    iterations; ``max_iter=0`` keeps the linear centroids). A centroid left without values
    stays where it is. With ``k`` at least the number of distinct values, each distinct
    value is its own centroid.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    distinct = np.unique(values)
    if len(distinct) <= k:  # nothing to cluster: the values are their own codebook
        centroids = np.concatenate([distinct, np.full(k - len(distinct), distinct[-1])])
        return centroids, np.searchsorted(distinct, values)
    centroids = linear_centroids(values, k)
    labels = nearest(values, centroids)
    for _ in range(max_iter):
        sums = np.bincount(labels, weights=values, minlength=k)
        counts = np.bincount(labels, minlength=k)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled]
        new = nearest(values, centroids)
        if np.array_equal(new, labels):
            break
        labels = new
    return centroids, labels


def _check_bits(bits: int) -> None:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) \
            or not 1 <= bits <= MAX_BITS:
        raise ValueError(f"share_weights: bits must be an int in 1..{MAX_BITS}, got {bits!r}")


def share_weights_(model: Module, bits: int, max_iter: int = 300) -> dict[str, np.ndarray]:
    """Replace, in place, the weights of every ``Conv2d`` and ``Linear`` of ``model`` by their
    k-means centroids (one codebook per layer, at most ``2^bits`` distinct values
    including zero; see the module docstring). Returns ``{"name.weight": codebook}``
    (float32, sorted; a pruned layer's codebook starts with 0.0).

    A pruned layer that still has its mask (:func:`~minicnn.compress.pruning.prune_`)
    keeps it: the shared values are written into ``weight_orig``.
    """
    _check_bits(bits)
    codebooks = {}
    for name, layer in prunable_layers(model).items():
        w = weight_of(layer)
        kept = w != 0
        pruned = not kept.all()
        k = 2**bits - 1 if pruned else 2**bits
        shared = np.zeros_like(w)
        if k > 0 and kept.any():
            centroids, labels = kmeans_1d(w[kept], k, max_iter)
            shared[kept] = centroids.astype(w.dtype)[labels]
        param = layer.weight_orig if hasattr(layer, "weight_mask") else layer.weight
        with no_grad():
            param.copy_(shared)
        if hasattr(layer, "weight_mask"):
            _masked_weight(layer, ())
        codebooks[name] = np.unique(shared if pruned else shared[kept])
    return codebooks
