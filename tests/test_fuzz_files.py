"""Fuzz every file reader with broken files: truncated, zero-byte, random bytes, directories.

Every supported format (PNG and JPEG through ``load_image`` and ``ImageFolder``, IDX and
``.gz`` IDX through ``read_idx``, CIFAR ``.bin`` through ``read_cifar_bin``/``cifar``,
``.npz`` and ``.safetensors`` through ``load_arrays``/``array_shapes``/``load_weights``)
must answer a broken file with minicnn's :class:`DataFileError` whose one-line message
names the file, never with another exception type. The bytes come from fixed seeds.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from minicnn import data, nn
from minicnn.errors import DataFileError
from minicnn.models import load_weights
from minicnn.serialization import array_shapes, load_arrays, save_arrays

RNG_SEED = 1234


def _png() -> bytes:
    buf = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (16, 12, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg() -> bytes:
    buf = io.BytesIO()
    pixels = np.random.default_rng(1).integers(0, 256, (16, 12, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, format="JPEG")
    return buf.getvalue()


def _idx() -> bytes:
    images = np.random.default_rng(2).integers(0, 256, (3, 4, 5), dtype=np.uint8)
    return bytes([0, 0, 0x08, 3]) + np.array(images.shape, ">i4").tobytes() + images.tobytes()


def _cifar() -> bytes:
    record = np.random.default_rng(3).integers(0, 256, (2, 3073), dtype=np.uint8)
    record[:, 0] = [1, 7]
    return record.tobytes()


def _model():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))


def _weights(suffix: str, tmp_path: Path) -> bytes:
    path = save_arrays(_model().state_dict(), tmp_path / f"valid{suffix}")
    return path.read_bytes()


def _broken(valid: bytes, header: bool = True) -> dict[str, bytes]:
    """Zero bytes, random bytes, ``valid`` cut at several places and (for a format with a
    header; CIFAR's records have none) ``valid`` with its header overwritten at random."""
    rng = np.random.default_rng(RNG_SEED)
    cases = {"empty": b"", "random": rng.integers(0, 256, 777, dtype=np.uint8).tobytes()}
    for cut in (1, 7, 30, len(valid) // 2 + 1, len(valid) - 9, len(valid) - 1):
        cases[f"cut{cut}"] = valid[:cut]
    if header:
        garbled = bytearray(valid)
        garbled[2:40] = rng.integers(0, 256, 38, dtype=np.uint8).tobytes()
        cases["garbled_header"] = bytes(garbled)
    return cases


def _readers(tmp_path):
    """(format, file suffix, valid bytes, reader)."""
    model = _model()
    return [
        ("png", ".png", _png(), data.load_image),
        ("jpeg", ".jpg", _jpeg(), data.load_image),
        ("idx", "", _idx(), data.read_idx),
        ("idx.gz", ".gz", gzip.compress(_idx()), data.read_idx),
        ("cifar", ".bin", _cifar(), data.read_cifar_bin),
        ("npz", ".npz", _weights(".npz", tmp_path), load_arrays),
        ("npz-shapes", ".npz", _weights(".npz", tmp_path), array_shapes),
        ("npz-weights", ".npz", _weights(".npz", tmp_path), lambda p: load_weights(model, p)),
        ("safetensors", ".safetensors", _weights(".safetensors", tmp_path), load_arrays),
        ("safetensors-weights", ".safetensors", _weights(".safetensors", tmp_path),
         lambda p: load_weights(model, p)),
    ]


def _assert_clear_error(read, path: Path) -> None:
    with pytest.raises(DataFileError) as info:
        read(path)
    message = str(info.value)
    assert str(path) in message, message
    assert "\n" not in message, message
    assert info.value.path == str(path)


def test_every_reader_reads_its_valid_file(tmp_path):
    """The fuzz cases below start from files every reader accepts."""
    for name, suffix, valid, read in _readers(tmp_path):
        path = tmp_path / f"ok-{name}{suffix}"
        path.write_bytes(valid)
        read(path)


def test_broken_files_raise_data_file_error_naming_the_file(tmp_path):
    for name, suffix, valid, read in _readers(tmp_path):
        for case, content in _broken(valid, header=name != "cifar").items():
            path = tmp_path / f"{name}-{case}{suffix}"
            path.write_bytes(content)
            _assert_clear_error(read, path)


def test_a_directory_is_not_a_file(tmp_path):
    for name, suffix, _, read in _readers(tmp_path):
        folder = tmp_path / f"folder-{name}{suffix or '.idx'}"
        folder.mkdir()
        _assert_clear_error(read, folder)


def test_gz_that_is_not_gzip(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(_idx())  # plain IDX bytes behind a .gz name
    _assert_clear_error(data.read_idx, path)


def test_npz_member_that_is_not_an_array(tmp_path):
    import zipfile

    path = tmp_path / "w.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("notes.txt", "hello")
    _assert_clear_error(load_arrays, path)
    _assert_clear_error(lambda p: load_weights(_model(), p), path)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("0.weight.npy", b"\x93NUMPY but not really")
    _assert_clear_error(load_arrays, path)


def test_image_folder_with_a_bad_image_names_it(tmp_path):
    """Built with its header check (the default) the folder refuses a bad file at once, or,
    for a file truncated after its header, when that image is read; without, when read."""
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        (tmp_path / cls / "good.png").write_bytes(_png())
    for case, content in _broken(_png()).items():
        bad = tmp_path / "b" / f"zz-{case}.png"
        bad.write_bytes(content)

        def build_and_read(_, check: bool):
            ds = data.ImageFolder(tmp_path, check_headers=check)
            return [ds[i] for i in range(len(ds))]

        _assert_clear_error(lambda p: build_and_read(p, check=True), bad)
        _assert_clear_error(lambda p: build_and_read(p, check=False), bad)
        bad.unlink()
    assert len(data.ImageFolder(tmp_path)) == 2


def test_cifar_and_mnist_datasets_check_labels(tmp_path):
    """Random bytes that happen to have the right length still give labels out of range."""
    records = np.random.default_rng(RNG_SEED).integers(0, 256, (3, 3073), dtype=np.uint8)
    records[:, 0] = [3, 200, 1]
    (tmp_path / "test_batch.bin").write_bytes(records.tobytes())
    _assert_clear_error(lambda _: data.cifar(tmp_path, train=False), tmp_path / "test_batch.bin")
    labels = bytes([0, 0, 0x08, 1]) + np.array([2], ">i4").tobytes() + bytes([4, 11])
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(labels)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(
        bytes([0, 0, 0x08, 3]) + np.array([2, 2, 2], ">i4").tobytes() + bytes(8))
    _assert_clear_error(lambda _: data.mnist(tmp_path, train=False),
                        tmp_path / "t10k-labels-idx1-ubyte")
