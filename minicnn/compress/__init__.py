"""``minicnn.compress``: make a trained network smaller, as the SqueezeNet paper's Table 2
compares (SVD, pruning, Deep Compression) and measure the file it takes.

* :mod:`~minicnn.compress.pruning`: magnitude pruning, per layer or global, with the masks
  kept during fine-tuning (``prune_``, ``remove_pruning``, ``sparsity``);
* :mod:`~minicnn.compress.low_rank`: SVD factorisation of ``Linear`` layers
  (``low_rank_linear``, ``factorize_linear_layers``);
* :mod:`~minicnn.compress.weight_sharing`: k-means weight sharing with ``2^bits`` values per
  layer, linear initialisation (``share_weights_``, ``kmeans_1d``);
* :mod:`~minicnn.compress.size`: the model as a safetensors file before and after
  (``dense_bytes``, ``compressed_bytes``, ``save_compressed``, ``load_compressed``).

The command ``minicnn compress RUN --prune 0.9 --bits 6`` applies them to a trained run.
"""

from minicnn.compress.low_rank import factorize_linear_layers, low_rank_linear
from minicnn.compress.pruning import (
    magnitude_masks,
    prunable_layers,
    prune_,
    remove_pruning,
    sparsity,
)
from minicnn.compress.size import (
    MB,
    compressed_arrays,
    compressed_bytes,
    dense_bytes,
    describe,
    load_compressed,
    save_compressed,
)
from minicnn.compress.weight_sharing import kmeans_1d, linear_centroids, share_weights_

__all__ = [
    "MB",
    "compressed_arrays",
    "compressed_bytes",
    "dense_bytes",
    "describe",
    "factorize_linear_layers",
    "kmeans_1d",
    "linear_centroids",
    "load_compressed",
    "low_rank_linear",
    "magnitude_masks",
    "prunable_layers",
    "prune_",
    "remove_pruning",
    "save_compressed",
    "share_weights_",
    "sparsity",
]
