"""Datasets by name (``load_data``), ``channel_stats``, ``TransformedDataset``, ``Subset.classes``
and ``border_median``: what ``minicnn train`` and the lessons share."""

import numpy as np
import pytest
import torch

from minicnn import data
from minicnn.data.transforms import Normalize, border_median


def test_load_data_digits_is_the_digits_split():
    train, test = data.load_data("digits")
    ref_train, ref_test = data.digits(True), data.digits(False)
    assert len(train) == len(ref_train) == 1437 and len(test) == len(ref_test) == 360
    assert train.classes == test.classes == [str(i) for i in range(10)]
    for got, ref in ((train, ref_train), (test, ref_test)):
        for i in (0, 7, len(ref) - 1):
            np.testing.assert_array_equal(got[i][0], ref[i][0])
            assert got[i][1] == ref[i][1]


def test_load_data_subset_keeps_the_first_images_and_the_classes():
    train, test = data.load_data("shapes", subset=5, image_size=24)
    full_train, _ = data.load_data("shapes", image_size=24)
    assert len(train) == len(test) == 5 and train[0][0].shape == (3, 24, 24)
    assert train.classes == test.classes == full_train.classes == list(data.SHAPE_CLASSES)
    np.testing.assert_array_equal(train[4][0], full_train[4][0])


def test_load_data_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("ant", "bee"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(2):
                arr = rng.integers(0, 256, (10, 14, 3), dtype=np.uint8)
                Image.fromarray(arr).save(tmp_path / split / cls / f"{i}.png")
    train, test = data.load_data("folder", tmp_path, image_size=8)
    assert train.classes == test.classes == ["ant", "bee"] and len(train) == len(test) == 4
    x, y = train[3]
    expected = data.transforms.resize(
        data.load_image(tmp_path / "train" / "bee" / "1.png"), (8, 8)
    )
    assert y == 1 and x.shape == (3, 8, 8)
    np.testing.assert_allclose(x, expected, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"name": "imagenet"}, ValueError, "unknown dataset 'imagenet'"),
        ({"name": "mnist"}, ValueError, "'mnist' needs root"),
        ({"name": "cifar10", "root": "/does/not/exist"}, FileNotFoundError, "not a directory"),
        ({"name": "digits", "subset": 0}, ValueError, "subset must be at least 1"),
    ],
)
def test_load_data_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        data.load_data(**kwargs)


def test_load_data_folder_without_splits(tmp_path):
    (tmp_path / "cats").mkdir()
    with pytest.raises(FileNotFoundError, match="train/<class>/"):
        data.load_data("folder", tmp_path)


def test_channel_stats_equal_torch():
    rng = np.random.default_rng(0)
    images = (rng.random((30, 3, 5, 6)) * [[[0.2]], [[1.0]], [[3.0]]]).astype(np.float32)
    ds = data.TensorDataset(images, np.zeros(30, dtype=np.int64))
    mean, std = data.channel_stats(ds)
    t = torch.from_numpy(images).double()
    np.testing.assert_allclose(mean, t.mean(dim=(0, 2, 3)).numpy(), rtol=1e-10)
    np.testing.assert_allclose(std, t.std(dim=(0, 2, 3), correction=0).numpy() + 1e-6, rtol=1e-10)
    # limit: only the first images count
    mean10, _ = data.channel_stats(ds, limit=10)
    np.testing.assert_allclose(mean10, t[:10].mean(dim=(0, 2, 3)).numpy(), rtol=1e-10)
    # normalised with its own statistics, a dataset has mean 0 and std 1 per channel
    normalized = data.TransformedDataset(ds, Normalize(mean, std))
    mean_n, std_n = data.channel_stats(normalized)
    np.testing.assert_allclose(mean_n, 0, atol=1e-5)
    np.testing.assert_allclose(std_n, 1, atol=1e-4)
    with pytest.raises(ValueError, match="empty"):
        data.channel_stats(data.TensorDataset(np.zeros((0, 1, 2, 2))))


def test_transformed_dataset_and_subset_carry_classes():
    train, _ = data.load_data("digits")
    wrapped = data.TransformedDataset(train, lambda img: img * 2)
    assert len(wrapped) == len(train) and wrapped.classes == train.classes
    x, y = wrapped[5]
    np.testing.assert_array_equal(x, train[5][0] * 2)
    assert y == train[5][1]
    sub = data.Subset(wrapped, [5, 0])
    assert sub.classes == train.classes and sub[0][1] == y
    # a dataset without class names gives none to its wrappers
    plain = data.TensorDataset(np.zeros((3, 1, 2, 2)), np.arange(3), np.arange(3) * 10)
    assert not hasattr(data.Subset(plain, [0]), "classes")
    assert data.TransformedDataset(plain, lambda img: img + 1)[2][1:] == (2, 20)
    with pytest.raises(TypeError, match="transform must be callable"):
        data.TransformedDataset(plain, "Normalize")


def test_border_median():
    rng = np.random.default_rng(0)
    img = rng.random((2, 7, 9)).astype(np.float32)
    border = np.ones((7, 9), dtype=bool)
    border[1:-1, 1:-1] = False
    assert border_median(img) == pytest.approx(np.median(img[:, border]))
    # a light digit on a dark background, and its negative
    digit = np.zeros((1, 8, 8), dtype=np.float32)
    digit[0, 2:6, 3:5] = 1
    assert border_median(digit) == 0 and border_median(1 - digit) == 1
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        border_median(np.zeros((8, 8)))
