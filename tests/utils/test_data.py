"""``minicnn.utils.data``: batches are minicnn Tensors, as PyTorch's loader gives torch tensors."""

import threading

import numpy as np
import pytest
import torch
import torch.utils.data as tdata

import minicnn
import minicnn.nn.functional as F
from minicnn.utils.data import (
    DataLoader,
    Dataset,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
)


def _arrays(n=10):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 1, 4, 4)).astype(np.float32), rng.integers(0, 3, n)


@pytest.mark.parametrize("as_tensors", [False, True])
def test_batches_are_tensors_equal_to_pytorchs(as_tensors):
    x, y = _arrays()
    ours = TensorDataset(minicnn.tensor(x), minicnn.tensor(y)) if as_tensors else \
        TensorDataset(x, y)
    theirs = tdata.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    ours_batches = list(DataLoader(ours, batch_size=4))
    theirs_batches = list(tdata.DataLoader(theirs, batch_size=4))
    assert len(ours_batches) == len(theirs_batches) == 3
    for (xb, yb), (tx, ty) in zip(ours_batches, theirs_batches, strict=True):
        assert isinstance(xb, minicnn.Tensor) and isinstance(yb, minicnn.Tensor)
        assert (xb.dtype, yb.dtype) == (np.float32, np.int64)
        assert str(ty.dtype) == "torch.int64" and str(tx.dtype) == "torch.float32"
        np.testing.assert_array_equal(xb.numpy(), tx.numpy())
        np.testing.assert_array_equal(yb.numpy(), ty.numpy())


def test_a_sample_is_a_tuple_of_tensors_like_pytorchs():
    x, y = _arrays()
    ours = TensorDataset(minicnn.tensor(x), minicnn.tensor(y))
    theirs = tdata.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    (xi, yi), (ti, tyi) = ours[3], theirs[3]
    assert isinstance(xi, minicnn.Tensor) and xi.shape == tuple(ti.shape)
    assert yi.shape == () and yi.item() == tyi.item() and yi.dtype == np.int64
    assert len(ours.tensors) == 2 and isinstance(ours.tensors[0], minicnn.Tensor)


def test_default_collate_matches_pytorchs():
    rng = np.random.default_rng(1)
    samples = [(rng.standard_normal((2, 3)).astype(np.float32), int(k), {"id": int(k)})
               for k in range(5)]
    images, labels, meta = default_collate(samples)
    t_images, t_labels, t_meta = tdata.default_collate(samples)
    for ours, theirs in ((images, t_images), (labels, t_labels), (meta["id"], t_meta["id"])):
        assert isinstance(ours, minicnn.Tensor)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
        assert ours.dtype == np.dtype(str(theirs.dtype).removeprefix("torch."))


def test_tensor_batches_train_a_layer_directly():
    x, y = _arrays(8)
    w = minicnn.randn(3, 1, 3, 3, requires_grad=True)
    for xb, yb in DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True):
        logits = F.conv2d(xb, w).mean((2, 3))
        F.cross_entropy(logits, yb).backward()
    assert w.grad is not None and w.grad.shape == w.shape


def test_numpy_batches_get_an_error_that_names_the_tensor_loader():
    from minicnn.data import DataLoader as NumpyLoader
    from minicnn.data import TensorDataset as ArrayDataset

    x, y = _arrays(4)
    xb, _ = next(iter(NumpyLoader(ArrayDataset(x, y), batch_size=2)))
    assert isinstance(xb, np.ndarray)
    with pytest.raises(TypeError, match=r"got ndarray.*minicnn\.utils\.data\.DataLoader"):
        F.conv2d(xb, minicnn.randn(2, 1, 3, 3))


def test_shuffle_is_seeded_by_manual_seed():
    x, y = _arrays(12)
    loader = DataLoader(TensorDataset(x, y), batch_size=5, shuffle=True)

    def labels():
        minicnn.manual_seed(7)
        return [b[1].tolist() for b in loader]

    first = labels()
    assert first == labels() and sorted(sum(first, [])) == sorted(y.tolist())


def test_leaving_a_prefetching_loop_early_stops_its_thread():
    x, y = _arrays(40)
    before = threading.active_count()
    for _ in DataLoader(TensorDataset(x, y), batch_size=2, prefetch=2):
        break
    assert threading.active_count() == before


@pytest.mark.parametrize("lengths", [[3, 7], [0.3, 0.7], [0.33, 0.33, 0.34], [0.5, 0.5],
                                     [1 / 3] * 3])
def test_random_split_sizes_match_pytorch_and_cover_the_dataset(lengths):
    data = TensorDataset(np.arange(10))
    minicnn.manual_seed(0)
    parts = random_split(data, lengths)
    theirs = tdata.random_split(range(10), lengths, generator=torch.Generator().manual_seed(0))
    assert [len(p) for p in parts] == [len(t) for t in theirs]
    assert all(isinstance(p, Subset) and p.dataset is data for p in parts)
    assert sorted(i for p in parts for i in p.indices) == list(range(10))
    minicnn.manual_seed(0)
    assert [p.indices for p in random_split(data, lengths)] == [p.indices for p in parts]
    values = [int(p[0][0].item()) for p in parts if len(p)]
    assert values == [p.indices[0] for p in parts if len(p)]


def test_random_split_rejects_bad_lengths():
    data = TensorDataset(np.arange(10))
    with pytest.raises(ValueError, match=r"sum to 9, expected the dataset's length 10"):
        random_split(data, [4, 5])
    with pytest.raises(ValueError, match="fractions summing to 1"):
        random_split(data, [0.5, 0.4])
    with pytest.raises(ValueError, match="non-negative"):
        random_split(data, [-1, 11])
    with pytest.raises(TypeError, match="generator"):
        random_split(data, [5, 5], generator=42)


def test_a_map_style_dataset_subclass_works():
    class Squares(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.full((2,), i * i, dtype=np.float32), i

    xb, yb = next(iter(DataLoader(Squares(), batch_size=5)))
    np.testing.assert_array_equal(xb.numpy()[:, 0], [0, 1, 4, 9, 16])
    assert yb.dtype == np.int64
