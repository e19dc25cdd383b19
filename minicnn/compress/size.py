"""The stored size of a model, before and after compression, as safetensors files.

**Before**: the model's ``state_dict`` as a plain safetensors file, every tensor float32 (a
run's ``checkpoints/*/model.safetensors``): 4 bytes a parameter, plus the file's header.

**After** (:func:`save_compressed`): the same safetensors container, but each weight of
two or more dimensions (convolution and linear weights) is stored in whichever of four
formats takes the fewest bytes; the format follows from the weights themselves:

===============  ==========================================================================
format           arrays in the file (``W`` is the weight's name, ``n`` its size, ``nnz``
                 its non-zero entries)
===============  ==========================================================================
``dense``        ``W``: the weight, float32 (``4 n`` bytes)
``sparse``       ``W.values``: the non-zero weights, float32, in row-major order
                 (``4 nnz`` bytes); ``W.index``: their positions as relative indices
                 (below), ``index_bits`` bits each, packed into bytes
``shared``       ``W.codebook``: the distinct values, float32 (at most 256);
                 ``W.codes``: one ``bits``-bit index into it per weight, packed
                 (``bits = ceil(log2(len(codebook)))``)
``sparse_shared``  ``W.codebook`` of the non-zero values, ``W.codes`` for the ``nnz``
                 non-zero weights only, and ``W.index`` as for ``sparse``
===============  ==========================================================================

Everything else (biases, batch-norm parameters and statistics) is stored as it is. The
file's metadata entry ``"minicnn.compressed"`` holds JSON with, for every tensor, its format,
shape, dtype and the numbers needed to unpack it (``bits``, ``index_bits``, ``count``).

**Relative indices** (Han et al. 2016, Section 2 and Figure 2): a sparse weight stores, for
each non-zero entry, its distance from the previous one (the first: from position -1) in
``index_bits`` bits, so in ``1 .. 2^index_bits - 1``. A longer gap is preceded by filler
entries ``0``, each meaning "skip ``2^index_bits - 1`` positions, no weight here" (the
paper stores a zero weight for each filler; here a filler costs only its index). The
number of bits per index is chosen per weight, the one that gives the fewest bytes.
Packing: ``b``-bit numbers are written one after the other, most significant bit first,
into bytes (``np.packbits``), the last byte padded with zeros.

Sizes are in MB of 10^6 bytes (AlexNet: 61.1 M parameters, 244 MB; the deck's "240MB").
Not done: Huffman coding of the codes and indices (Deep Compression's last stage, which
gives its last 20-30%).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from minicnn.autograd.tensor import Tensor
from minicnn.errors import DataFileError, reading
from minicnn.nn.modules.module import Module
from minicnn.serialization import save_arrays

__all__ = ["MB", "compressed_arrays", "compressed_bytes", "dense_bytes", "describe",
           "load_compressed", "pack_bits", "positions_from_relative", "relative_indices",
           "save_compressed", "stored_bytes", "unpack_bits"]

MB = 1_000_000
METADATA_KEY = "minicnn.compressed"
FORMATS = ("dense", "sparse", "shared", "sparse_shared")
MAX_CODEBOOK = 256  # codes of at most 8 bits


# ---------------------------------------------------------------- bit packing


def pack_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """The integers ``values`` (each in ``0 .. 2^bits - 1``) written with ``bits`` bits each,
    most significant bit first, into a uint8 array of ``ceil(len(values) * bits / 8)`` bytes."""
    values = np.asarray(values, dtype=np.uint8).ravel()
    bit_rows = np.unpackbits(values[:, None], axis=1)[:, 8 - bits:]  # (n, bits)
    return np.packbits(bit_rows.ravel())


def unpack_bits(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    """The inverse of :func:`pack_bits`: ``count`` integers (uint8) of ``bits`` bits each."""
    bit_rows = np.unpackbits(packed)[: count * bits].reshape(count, bits)
    return np.packbits(np.pad(bit_rows, ((0, 0), (8 - bits, 0))), axis=1).ravel()


def relative_indices(positions: np.ndarray, index_bits: int) -> np.ndarray:
    """The relative indices (uint8) of the increasing flat ``positions`` of the non-zero
    weights, with fillers ``0`` for gaps over ``2^index_bits - 1`` (module docstring)."""
    step = 2**index_bits - 1
    gaps = np.diff(np.asarray(positions, dtype=np.int64), prepend=-1)
    fillers = (gaps - 1) // step
    stream = np.zeros(len(gaps) + int(fillers.sum()), dtype=np.uint8)
    stream[np.cumsum(fillers + 1) - 1] = gaps - fillers * step
    return stream


def positions_from_relative(stream: np.ndarray, index_bits: int) -> np.ndarray:
    """The inverse of :func:`relative_indices`: the flat positions of the non-zero weights."""
    steps = np.where(stream == 0, 2**index_bits - 1, stream).astype(np.int64)
    return (np.cumsum(steps) - 1)[stream != 0]


def _stream_length(positions: np.ndarray, index_bits: int) -> int:
    gaps = np.diff(positions, prepend=-1)
    return len(gaps) + int(((gaps - 1) // (2**index_bits - 1)).sum())


# ---------------------------------------------------------------- the four formats


def _packed_bytes(count: int, bits: int) -> int:
    return math.ceil(count * bits / 8)


def _code_bits(codebook_size: int) -> int:
    return max(1, math.ceil(math.log2(codebook_size)))


def _encode_weight(name: str, w: np.ndarray) -> tuple[dict, dict]:
    """``(arrays, entry)`` of the smallest format for the weight ``w`` (module docstring)."""
    flat = w.ravel()
    positions = np.flatnonzero(flat)
    nonzero = flat[positions]
    entry = {"shape": list(w.shape), "dtype": str(w.dtype)}
    # each candidate: (bytes, format, its parameters)
    candidates = [(4 * flat.size, "dense", {})]
    index_bytes = 0
    if len(positions) < flat.size:
        index_bits = min(range(1, 9), key=lambda b: _packed_bytes(
            _stream_length(positions, b), b))
        index_bytes = _packed_bytes(_stream_length(positions, index_bits), index_bits)
        candidates.append((4 * len(nonzero) + index_bytes, "sparse",
                           {"index_bits": index_bits}))
    has_zero = len(positions) < flat.size
    distinct = np.unique(nonzero)  # the codebook of the non-zero weights
    if len(distinct) + has_zero <= MAX_CODEBOOK:
        bits = _code_bits(len(distinct) + has_zero)
        candidates.append((4 * (len(distinct) + has_zero) + _packed_bytes(flat.size, bits),
                           "shared", {"bits": bits}))
    if has_zero and 0 < len(distinct) <= MAX_CODEBOOK:
        nz_bits = _code_bits(len(distinct))
        candidates.append((4 * len(distinct) + _packed_bytes(len(nonzero), nz_bits)
                           + index_bytes, "sparse_shared",
                           {"bits": nz_bits, "index_bits": index_bits}))
    _, fmt, params = min(candidates, key=lambda c: c[0])
    entry.update(format=fmt, **params)
    if fmt == "dense":
        return {name: w}, entry
    arrays = {}
    if fmt in ("sparse", "sparse_shared"):
        stream = relative_indices(positions, params["index_bits"])
        arrays[f"{name}.index"] = pack_bits(stream, params["index_bits"])
        entry["index_count"] = len(stream)
    if fmt == "sparse":
        arrays[f"{name}.values"] = nonzero
        return arrays, entry
    values = flat if fmt == "shared" else nonzero
    codebook = np.unique(values)
    arrays[f"{name}.codebook"] = codebook
    arrays[f"{name}.codes"] = pack_bits(np.searchsorted(codebook, values), params["bits"])
    entry["count"] = len(values)
    return arrays, entry


def _decode_weight(name: str, entry: dict, arrays: Mapping) -> np.ndarray:
    """The inverse of :func:`_encode_weight`."""
    shape, dtype, fmt = tuple(entry["shape"]), np.dtype(entry["dtype"]), entry["format"]
    if fmt == "dense":
        return arrays[name]
    if fmt == "shared":
        codes = unpack_bits(arrays[f"{name}.codes"], entry["bits"], entry["count"])
        return arrays[f"{name}.codebook"][codes].reshape(shape)
    stream = unpack_bits(arrays[f"{name}.index"], entry["index_bits"], entry["index_count"])
    positions = positions_from_relative(stream, entry["index_bits"])
    if fmt == "sparse":
        values = arrays[f"{name}.values"]
    else:
        codes = unpack_bits(arrays[f"{name}.codes"], entry["bits"], entry["count"])
        values = arrays[f"{name}.codebook"][codes]
    flat = np.zeros(math.prod(shape), dtype=dtype)
    flat[positions] = values
    return flat.reshape(shape)


# ---------------------------------------------------------------- a whole model


def _state_arrays(model: Module | Mapping) -> dict[str, np.ndarray]:
    """``{name: NumPy array}`` of a model's state dict (or of a state dict); a pruned layer's
    ``weight_orig`` and ``weight_mask`` become its ``weight`` (their product)."""
    state = model.state_dict() if isinstance(model, Module) else model
    arrays = {k: (v.detach().numpy() if isinstance(v, Tensor) else np.asarray(v))
              for k, v in state.items()}
    for key in [k for k in arrays if k.endswith("_orig") and f"{k[:-5]}_mask" in arrays]:
        base = key[: -len("_orig")]
        arrays[base] = arrays.pop(key) * arrays.pop(f"{base}_mask")
    return arrays


def compressed_arrays(model: Module | Mapping) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``(arrays, metadata)``: what :func:`save_compressed` writes (module docstring)."""
    arrays, entries = {}, {}
    for name, value in _state_arrays(model).items():
        if value.ndim >= 2 and value.dtype.kind == "f":
            parts, entries[name] = _encode_weight(name, np.ascontiguousarray(value))
        else:
            parts, entries[name] = {name: value}, {"format": "dense", "shape": list(value.shape),
                                                   "dtype": str(value.dtype)}
        arrays.update(parts)
    metadata = {METADATA_KEY: json.dumps({"version": 1, "tensors": entries})}
    return arrays, metadata


def stored_bytes(arrays: Mapping[str, np.ndarray], metadata: dict[str, str] | None = None) -> int:
    """The size in bytes of the safetensors file of ``arrays`` (header included)."""
    from safetensors.numpy import save

    return len(save({k: np.ascontiguousarray(v) for k, v in arrays.items()}, metadata=metadata))


def dense_bytes(model: Module | Mapping) -> int:
    """The size in bytes of ``model``'s state dict as a plain safetensors file (a run's
    ``model.safetensors``, every weight float32)."""
    return stored_bytes(_state_arrays(model))


def compressed_bytes(model: Module | Mapping) -> int:
    """The size in bytes of the file :func:`save_compressed` writes for ``model``."""
    return stored_bytes(*compressed_arrays(model))


def describe(model: Module | Mapping) -> list[dict]:
    """One dict per weight of two or more dimensions: ``name``, ``format``, ``size`` (entries),
    ``nonzero``, ``distinct`` values and ``bytes`` stored (its arrays, header excluded)."""
    arrays, metadata = compressed_arrays(model)
    entries = json.loads(metadata[METADATA_KEY])["tensors"]
    rows = []
    for name, value in _state_arrays(model).items():
        if value.ndim < 2 or value.dtype.kind != "f":
            continue
        stored = sum(a.nbytes for k, a in arrays.items() if k == name or k.startswith(name + "."))
        rows.append({"name": name, "format": entries[name]["format"], "size": value.size,
                     "nonzero": int(np.count_nonzero(value)),
                     "distinct": int(np.unique(value).size), "bytes": stored})
    return rows


def save_compressed(model: Module | Mapping, path: str | os.PathLike) -> Path:
    """Write ``model`` (or a state dict) compressed to the safetensors file ``path``,
    atomically (a temporary file renamed over ``path``); returns the path. Its size in
    bytes is :func:`compressed_bytes` of the same model."""
    if Path(path).suffix != ".safetensors":
        raise ValueError(f"save_compressed: path must end in .safetensors, got {str(path)!r}")
    arrays, metadata = compressed_arrays(model)
    return save_arrays(arrays, path, metadata)


def load_compressed(path: str | os.PathLike) -> dict[str, Tensor]:
    """The state dict (``{name: Tensor}``, float32 weights) stored by :func:`save_compressed`,
    ready for ``model.load_state_dict``. A file that is not one raises
    :class:`~minicnn.errors.DataFileError` naming it."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"load_compressed: no such file: {path}")
    with reading(path, "compressed safetensors file"):
        with safe_open(str(path), framework="numpy") as f:
            text = (f.metadata() or {}).get(METADATA_KEY)
            arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    if text is None:
        raise DataFileError(path, f"has no {METADATA_KEY!r} metadata; expected a file written "
                                  f"by minicnn.compress.save_compressed")
    with reading(path, "compressed safetensors file"):
        entries = json.loads(text)["tensors"]
        return {name: Tensor._wrap(_decode_weight(name, entry, arrays))
                for name, entry in entries.items()}
