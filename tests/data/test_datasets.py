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


def _image_tree(root, classes, per_class=2, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(
                root / cls / f"{i}.png")


def test_image_folder_test_split_uses_the_training_classes(tmp_path):
    """Train {cat, dog, zebra}, test {dog, zebra}: test's dog is class 1, as in training
    (numbered on its own, it became class 0, which means cat to the model). Checked against
    torchvision's make_dataset with the training split's class_to_idx."""
    from torchvision.datasets.folder import make_dataset

    _image_tree(tmp_path / "train", ["cat", "dog", "zebra"])
    _image_tree(tmp_path / "test", ["dog", "zebra"], seed=1)
    train = data.ImageFolder(tmp_path / "train")
    test = data.ImageFolder(tmp_path / "test", classes=train.classes)
    assert test.classes == train.classes == ["cat", "dog", "zebra"]
    assert test.class_to_idx == {"cat": 0, "dog": 1, "zebra": 2}
    expected = make_dataset(str(tmp_path / "test"), train.class_to_idx, extensions=(".png",),
                            allow_empty=True)
    assert [(str(p), y) for p, y in test.samples] == expected
    assert sorted({y for _, y in test.samples}) == [1, 2]


def test_image_folder_class_unknown_to_train_is_an_error(tmp_path):
    _image_tree(tmp_path / "train", ["cat", "dog"])
    _image_tree(tmp_path / "test", ["dog", "wolf"])
    with pytest.raises(ValueError, match=r"class folder\(s\) \['wolf'\] that are not among"):
        data.ImageFolder(tmp_path / "test", classes=["cat", "dog"])
    with pytest.raises(ValueError, match="distinct class names"):
        data.ImageFolder(tmp_path / "train", classes=["cat", "cat"])


def test_image_folder_empty_class_folder_is_an_error(tmp_path):
    """torchvision raises for a class folder without images; so do we, naming it."""
    from torchvision.datasets import ImageFolder as TorchImageFolder

    _image_tree(tmp_path, ["cat", "dog"])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(FileNotFoundError, match="empty"):
        TorchImageFolder(str(tmp_path))
    with pytest.raises(ValueError, match=r"no .*png file for the class\(es\) \['empty'\]"):
        data.ImageFolder(tmp_path)


def test_image_folder_single_class_warns(tmp_path):
    _image_tree(tmp_path, ["only"])
    with pytest.warns(UserWarning, match="single class"):
        data.ImageFolder(tmp_path)


def test_load_image_refuses_decompression_bombs(tmp_path, monkeypatch):
    """A small file that decodes to more than PIL.Image.MAX_IMAGE_PIXELS pixels (a 140 KB
    PNG of 12000 x 12000 took a run to 3.9 GB) is a clean error, in PIL's warning range
    (1x to 2x the limit) and its error range (above 2x). The limit is lowered to keep the
    files small."""
    from PIL import Image

    from minicnn.errors import DataFileError

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    for side in (12, 20):  # 144 pixels (warning range), 400 (error range)
        path = tmp_path / f"bomb{side}.png"
        Image.new("L", (side, side)).save(path)
        with pytest.raises(DataFileError, match=rf"{path}: image too large to decode"):
            data.load_image(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # the limit is Pillow's, adjustable
    assert data.load_image(tmp_path / "bomb20.png").shape == (3, 20, 20)


def test_load_image_errors_name_the_file(tmp_path):
    from minicnn.errors import DataFileError

    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    for name in ("empty.png", "text.jpg"):
        with pytest.raises(DataFileError, match=f"{tmp_path / name}: not a valid image file"):
            data.load_image(tmp_path / name)
    with pytest.raises(DataFileError, match="is a directory, expected an image file"):
        data.load_image(tmp_path)
    with pytest.raises(FileNotFoundError):
        data.load_image(tmp_path / "missing.png")
    # minicnn's error is a ValueError and an OSError (Pillow's own error was an OSError)
    assert issubclass(DataFileError, ValueError) and issubclass(DataFileError, OSError)


def test_idx_errors_name_the_file(tmp_path):
    from minicnn.errors import DataFileError

    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 3, 0, 0]))  # 3 dimensions, 2 bytes of them
    with pytest.raises(DataFileError, match=rf"{path}: truncated IDX header"):
        data.read_idx(path)
    path.write_bytes(bytes([0, 0, 0x08, 1]) + np.array([5], ">i4").tobytes() + bytes(4))
    with pytest.raises(DataFileError, match=r"header says shape \(5,\).*holds 4 bytes"):
        data.read_idx(path)
    gz = tmp_path / "t10k-labels-idx1-ubyte.gz"
    gz.write_bytes(b"plain bytes, not gzip")
    with pytest.raises(DataFileError, match=rf"{gz}: not a valid IDX file \(gzip\)"):
        data.read_idx(gz)


def test_idx_gzip_bomb_is_refused_without_decompressing_it(tmp_path, monkeypatch):
    """A 10-byte label file followed by 1 GiB of zeros compresses to about 1 MiB. The
    reader stops one byte past the header's size: it never holds the gigabyte."""
    import tracemalloc

    from minicnn.errors import DataFileError

    gz = tmp_path / "train-labels-idx1-ubyte.gz"
    with gzip.open(gz, "wb", compresslevel=1) as f:
        f.write(bytes([0, 0, 0x08, 1]) + struct.pack(">i", 10) + bytes(10))
        block = bytes(1 << 24)
        for _ in range(64):  # 1 GiB of zeros after the declared body
            f.write(block)
    assert gz.stat().st_size < 8 << 20
    tracemalloc.start()
    with pytest.raises(DataFileError, match=r"header says shape \(10,\).*holds more bytes"):
        data.read_idx(gz)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 << 20, f"peak {peak / 2**20:.1f} MiB while refusing the bomb"


def test_image_folder_refuses_a_non_image_when_built(tmp_path):
    """Not an image: the error comes when the dataset is built, before any training."""
    from minicnn.errors import DataFileError

    _image_tree(tmp_path, ["cat", "dog"])
    (tmp_path / "dog" / "broken.png").write_bytes(b"")
    with pytest.raises(DataFileError, match=rf"{tmp_path / 'dog' / 'broken.png'}: not a valid"):
        data.ImageFolder(tmp_path)
    ds = data.ImageFolder(tmp_path, check_headers=False)  # then it fails when read
    with pytest.raises(DataFileError, match="broken.png"):
        [ds[i] for i in range(len(ds))]
