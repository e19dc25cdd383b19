"""``minicnn.save`` / ``minicnn.load``: what PyTorch users save, without pickle, atomically."""

import json
import struct

import numpy as np
import pytest
import torch

import minicnn
from minicnn import nn, optim, serialization


def _model():
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(3 * 4 * 4, 4))


def _batches(n):
    rng = np.random.default_rng(1)
    return [(minicnn.tensor(rng.standard_normal((6, 1, 6, 6)).astype(np.float32)),
             minicnn.tensor(rng.integers(0, 4, 6))) for _ in range(n)]


def _step(model, opt, x, y):
    opt.zero_grad()
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()


OPTIMIZERS = {
    "adam": lambda params: optim.Adam(params, lr=1e-2),
    "sgd-momentum": lambda params: optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("filename", ["ckpt.pth", "ckpt.pt", "ckpt.npz", "ckpt"])
def test_resuming_from_a_saved_checkpoint_continues_bit_identically(tmp_path, name, filename):
    batches = _batches(6)
    minicnn.manual_seed(0)
    model = _model()
    opt = OPTIMIZERS[name](model.parameters())
    for x, y in batches[:3]:
        _step(model, opt, x, y)
    path = tmp_path / filename
    minicnn.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, path)
    straight = [_step(model, opt, x, y) for x, y in batches[3:]]

    minicnn.manual_seed(123)  # different initial weights: everything must come from the file
    fresh = _model()
    fresh_opt = OPTIMIZERS[name](fresh.parameters())
    checkpoint = minicnn.load(path)
    fresh.load_state_dict(checkpoint["model"])
    fresh_opt.load_state_dict(checkpoint["optimizer"])
    assert checkpoint["epoch"] == 3 and type(checkpoint["epoch"]) is int
    resumed = [_step(fresh, fresh_opt, x, y) for x, y in batches[3:]]

    assert resumed == straight  # bit-identical losses
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values(), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)


def test_optimizer_state_keeps_its_types(tmp_path):
    model = _model()
    opt = optim.Adam(model.parameters(), lr=1e-3, betas=(0.8, 0.9))
    _step(model, opt, *_batches(1)[0])
    state = opt.state_dict()
    minicnn.save(state, tmp_path / "opt.pt")
    back = minicnn.load(tmp_path / "opt.pt")
    assert list(back["state"]) == list(state["state"]) and all(
        type(k) is int for k in back["state"])  # int keys, as saved
    assert back["param_groups"] == state["param_groups"]  # lists, tuples (betas), floats, bools
    assert type(back["param_groups"][0]["betas"]) is tuple
    for key, values in state["state"].items():
        for k, v in values.items():
            assert type(back["state"][key][k]) is type(v)
            np.testing.assert_array_equal(back["state"][key][k], v)


def test_every_kind_of_value_round_trips(tmp_path):
    t = minicnn.arange(6).reshape(2, 3)
    obj = {
        "tensor": t, "same": t, "grad": minicnn.ones(2, requires_grad=True),
        "array": np.arange(4, dtype=np.int16), "bool": np.array([True, False]),
        "scalar0d": minicnn.tensor(2.5, dtype=minicnn.float64), "npscalar": np.float32(1.25),
        "nested": [1, 2.0, "three", None, True, (4, [5.5])], 7: "int key", (1, 2): "tuple key",
        "empty": {}, "nan": float("nan"), "big": 2**70,
        "noncontiguous": minicnn.arange(12.0).reshape(3, 4).T,
    }
    minicnn.save(obj, tmp_path / "all.pth")
    back = minicnn.load(tmp_path / "all.pth")
    assert list(back) == list(obj)
    assert isinstance(back["tensor"], minicnn.Tensor) and back["tensor"].dtype == np.int64
    assert back["same"] is back["tensor"]  # one object saved once, loaded once
    assert back["grad"].requires_grad and not back["tensor"].requires_grad
    assert type(back["array"]) is np.ndarray and back["array"].dtype == np.int16
    assert back["scalar0d"].shape == () and back["scalar0d"].dtype == np.float64
    assert type(back["npscalar"]) is np.float32 and back["npscalar"] == 1.25
    assert back["nested"] == [1, 2.0, "three", None, True, (4, [5.5])]
    assert type(back["nested"][0]) is int and type(back["nested"][1]) is float
    assert back[7] == "int key" and back[(1, 2)] == "tuple key" and back["empty"] == {}
    assert np.isnan(back["nan"]) and back["big"] == 2**70
    np.testing.assert_array_equal(back["noncontiguous"].numpy(), obj["noncontiguous"].numpy())


def test_a_model_file_holds_named_arrays_other_tools_read(tmp_path):
    from safetensors.numpy import load_file

    model = _model()
    minicnn.save(model.state_dict(), tmp_path / "w.pth")
    arrays = load_file(str(tmp_path / "w.pth"))
    assert set(arrays) == set(model.state_dict())
    # and torch reads the .npz form without pickle
    minicnn.save(model.state_dict(), tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz", allow_pickle=False) as f:
        np.testing.assert_array_equal(f["0.weight"], model[0].weight.detach().numpy())
    torch.testing.assert_close(torch.from_numpy(load_file(str(tmp_path / "w.pth"))["4.bias"]),
                               torch.from_numpy(model[4].bias.detach().numpy()))


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_files_of_older_minicnn_still_load(tmp_path, suffix):
    model = _model()
    path = serialization.save_arrays(model.state_dict(), tmp_path / f"old{suffix}")
    loaded = minicnn.load(path)
    assert all(isinstance(v, minicnn.Tensor) for v in loaded.values())
    fresh = _model()
    fresh.load_state_dict(loaded)
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_unsupported_objects_name_where_they_are(tmp_path):
    with pytest.raises(TypeError, match=r"cannot save Sequential at model"):
        minicnn.save({"model": _model()}, tmp_path / "x.pt")
    with pytest.raises(TypeError, match=r"at a\.0 has dtype <U1"):
        minicnn.save({"a": [np.array(["x"])]}, tmp_path / "x.pt")
    with pytest.raises(TypeError, match="path must be a str"):
        minicnn.save({}, 3)
    assert not (tmp_path / "x.pt").exists()


def test_bad_files_give_one_line_errors_naming_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        minicnn.load(tmp_path / "nope.pt")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        minicnn.load(tmp_path)
    for name, content in {"empty.pt": b"", "junk.pt": b"not a checkpoint at all",
                          "zip.pt": b"PK\x03\x04broken"}.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=name):
            minicnn.load(tmp_path / name)
    minicnn.save({"a": minicnn.ones(2)}, tmp_path / "good.pt")
    data = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) - 4])
    with pytest.raises(ValueError, match="cut.pt"):
        minicnn.load(tmp_path / "cut.pt")
    # a header whose structure refers to an array the file lacks
    header = {"__metadata__": {"minicnn.object": json.dumps(
        {"format": "minicnn", "version": 1, "object": {"tensor": "missing"}})}}
    raw = json.dumps(header).encode()
    (tmp_path / "lie.pt").write_bytes(struct.pack("<Q", len(raw)) + raw)
    with pytest.raises(ValueError, match="lie.pt.*missing"):
        minicnn.load(tmp_path / "lie.pt")


def test_never_unpickles(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))  # an object array needs pickle
    with pytest.raises(ValueError, match="evil.npz"):
        minicnn.load(path)


def test_a_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "w.pt"
    minicnn.save({"v": 1}, path)
    import safetensors.numpy

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        minicnn.save({"v": 2}, path)
    assert minicnn.load(path) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["w.pt"]  # no temporary file left
