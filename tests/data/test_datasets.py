"""Datasets: digits, shapes, and readers for files written here in the real formats."""

import gzip
import struct

import numpy as np
import pytest

from minicnn import data


def test_digits_split_and_range():
    train, test = data.digits(True), data.digits(False)
    assert len(train) == 1437 and len(test) == 360
    x, y = train[0]
    assert x.shape == (1, 32, 32) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert set(train.labels.tolist()) == set(range(10))
    # the split is fixed and disjoint: the test images are not in the training set
    flat_train = {img.tobytes() for img in train.images}
    assert (
        sum(img.tobytes() in flat_train for img in test.images) < 5
    )  # a few digits repeat in sklearn


def test_shapes_reproducible_and_balanced():
    a, b = data.Shapes(8, seed=3), data.Shapes(8, seed=3)
    np.testing.assert_array_equal(a[5][0], b[5][0])
    assert [a[i][1] for i in range(8)] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert not np.array_equal(a[0][0], data.Shapes(8, seed=4)[0][0])


def test_shapes_scene_annotations_are_consistent():
    scene = data.make_scene(11, size=48, num_objects=3)
    masks, boxes, kps = scene["masks"], scene["boxes"], scene["keypoints"]
    assert scene["image"].shape == (3, 48, 48)
    assert len(masks) == len(boxes) == len(kps) == len(scene["labels"]) >= 1
    for m, (x1, y1, x2, y2), k in zip(masks, boxes, kps):
        ys, xs = np.nonzero(m)
        assert (x1, y1, x2, y2) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert np.all((k[:, 0] >= x1) & (k[:, 0] <= x2) & (k[:, 1] >= y1) & (k[:, 1] <= y2))
    assert not np.any(masks.sum(0) > 1)  # occlusion: a pixel belongs to one object


def _write_idx(path, array, gz=False):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}i", *array.shape
    )
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_mnist_reader(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28))
    labels = np.array([3, 1, 4, 1, 5])
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images, gz=True)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    ds = data.mnist(tmp_path, train=False, fashion=True)
    assert len(ds) == 5 and ds.classes[0] == "T-shirt/top"
    x, y = ds[2]
    np.testing.assert_allclose(x[0], images[2] / 255.0, rtol=1e-6)
    assert y == 4
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        data.mnist(tmp_path, train=True)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(tmp_path / "bad")


def test_cifar10_reader(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    labels = np.array([0, 9, 2, 5], dtype=np.uint8)
    records = np.concatenate([labels[:, None], images.reshape(4, -1)], axis=1)
    records.tofile(tmp_path / "test_batch.bin")
    ds = data.cifar(tmp_path, train=False)
    assert len(ds) == 4 and ds.classes[9] == "truck"
    x, y = ds[1]
    np.testing.assert_allclose(x, images[1] / 255.0, rtol=1e-6)
    assert y == 9
    with pytest.raises(FileNotFoundError, match="data_batch_1.bin"):
        data.cifar(tmp_path, train=True)


def test_cifar100_reader_uses_fine_labels(tmp_path):
    images = np.zeros((2, 3072), dtype=np.uint8)
    records = np.concatenate([np.array([[1, 77], [2, 13]], dtype=np.uint8), images], axis=1)
    records.tofile(tmp_path / "test.bin")
    ds = data.cifar(tmp_path, train=False, num_classes=100)
    assert [ds[i][1] for i in range(2)] == [77, 13]


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = {}
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            arr = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
            Image.fromarray(arr).save(tmp_path / cls / f"{i}.png")
            pixels[(cls, i)] = arr
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    ds = data.ImageFolder(tmp_path)
    assert ds.classes == ["cat", "dog"] and len(ds) == 4
    x, y = ds[3]
    assert y == 1 and x.shape == (3, 6, 5)
    np.testing.assert_allclose(x, pixels[("dog", 1)].transpose(2, 0, 1) / 255.0, rtol=1e-6)
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        data.ImageFolder(tmp_path / "missing")
