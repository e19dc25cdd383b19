"""DataLoader: every sample once per epoch, seeded order, last-batch handling, prefetch."""

import numpy as np
import pytest

import minicnn
from minicnn.data import DataLoader, TensorDataset, default_collate
from minicnn.data import rng as data_rng


def _dataset(n=23):
    return TensorDataset(np.arange(n, dtype=np.float32)[:, None], np.arange(n))


@pytest.mark.parametrize("prefetch", [0, 2])
@pytest.mark.parametrize("shuffle", [False, True])
def test_every_sample_exactly_once(shuffle, prefetch):
    loader = DataLoader(_dataset(), batch_size=5, shuffle=shuffle, prefetch=prefetch)
    seen = np.concatenate([y for _, y in loader])
    assert sorted(seen.tolist()) == list(range(23))
    if not shuffle:
        assert seen.tolist() == list(range(23))


def test_last_batch_kept_or_dropped():
    sizes = [len(y) for _, y in DataLoader(_dataset(), batch_size=5)]
    assert sizes == [5, 5, 5, 5, 3] and len(DataLoader(_dataset(), batch_size=5)) == 5
    sizes = [len(y) for _, y in DataLoader(_dataset(), batch_size=5, drop_last=True)]
    assert sizes == [5, 5, 5, 5] and len(DataLoader(_dataset(), batch_size=5, drop_last=True)) == 4


def test_seeded_order_is_reproducible_and_changes_per_epoch():
    def orders():
        minicnn.manual_seed(123)
        loader = DataLoader(_dataset(), batch_size=4, shuffle=True)
        return [np.concatenate([y for _, y in loader]).tolist() for _ in range(2)]

    first, second = orders(), orders()
    assert first == second
    assert first[0] != first[1]


def test_prefetch_gives_the_same_batches_with_random_transforms():
    def jitter(x):
        return x + data_rng.current().random()

    def run(prefetch):
        minicnn.manual_seed(7)
        ds = TensorDataset(np.zeros((20, 1), np.float32), np.arange(20), transform=jitter)
        return [x.copy() for x, _ in DataLoader(ds, 4, shuffle=True, prefetch=prefetch)]

    for a, b in zip(run(0), run(3)):
        np.testing.assert_array_equal(a, b)


def test_prefetch_propagates_errors():
    class Broken(TensorDataset):
        def __getitem__(self, i):
            if i == 7:
                raise KeyError("sample 7 is broken")
            return super().__getitem__(i)

    with pytest.raises(KeyError, match="sample 7"):
        list(DataLoader(Broken(np.zeros((10, 1))), 2, prefetch=2))


def test_collate_stacks_and_types():
    batch = default_collate([(np.ones((1, 2, 2)), 3, 0.5), (np.zeros((1, 2, 2)), 1, 1.5)])
    assert batch[0].shape == (2, 1, 2, 2)
    assert batch[1].dtype == np.int64 and batch[1].tolist() == [3, 1]
    assert batch[2].dtype == np.float32


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        DataLoader(_dataset(), batch_size=0)
    with pytest.raises(ValueError, match="array 1 has 3 rows, expected 4"):
        TensorDataset(np.zeros(4), np.zeros(3))


def _threads() -> int:
    import threading

    return threading.active_count()


@pytest.mark.parametrize("how", ["close", "break", "exception"])
def test_abandoned_prefetching_loader_stops_its_thread(how):
    """Leaving a prefetching loop early ends the background thread (it used to block
    forever on a full queue once it had built every batch, cost 5 s and leak the thread)."""
    import gc
    import time

    before = _threads()
    for batches in (3, 12):  # the thread has built every batch / is still building
        it = iter(DataLoader(_dataset(2 * batches), batch_size=2, prefetch=2))
        if how == "close":
            next(it)
            time.sleep(0.2)  # let the thread fill the queue
            it.close()
        elif how == "break":
            for _batch in it:
                time.sleep(0.2)
                break
            del it
            gc.collect()
        else:
            with pytest.raises(RuntimeError, match="in the loop"):
                for _batch in it:
                    time.sleep(0.2)
                    raise RuntimeError("in the loop")
            del it
            gc.collect()
        assert _threads() == before
