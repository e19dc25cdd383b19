"""load_weights / export_torchvision (minicnn/models/weights.py)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch
import torchvision

import minicnn
from minicnn import models
from minicnn.models import export_torchvision, load_weights
from minicnn.serialization import load_arrays, save_arrays


@pytest.fixture
def tiny_resnet():
    return models.resnet20(num_classes=10)


def test_export_writes_torchvision_state_dict(tmp_path):
    torch.manual_seed(0)
    path = export_torchvision("resnet18", tmp_path / "r18.safetensors")
    torch.manual_seed(0)
    tv = torchvision.models.resnet18()
    arrays = load_arrays(path)
    assert sorted(arrays) == sorted(tv.state_dict())  # safetensors stores keys sorted
    for k, v in tv.state_dict().items():
        np.testing.assert_array_equal(arrays[k], v.numpy())
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        meta = f.metadata()
    assert meta["source"] == "torchvision" and meta["model"] == "resnet18"
    assert meta["weights"] == "None"
    model = models.resnet18()
    load_weights(model, path)
    np.testing.assert_array_equal(model.layer2[0].downsample[1].running_var.numpy(),
                                  tv.layer2[0].downsample[1].running_var.numpy())
    assert int(model.bn1.num_batches_tracked.numpy()) == 0


def test_load_weights_npz_roundtrip(tmp_path, tiny_resnet):
    save_arrays(tiny_resnet.state_dict(), tmp_path / "w.npz")
    other = models.resnet20(num_classes=10)
    load_weights(other, tmp_path / "w.npz")
    for (k, a), (_, b) in zip(tiny_resnet.state_dict().items(), other.state_dict().items(),
                              strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)


def test_load_weights_wrong_shape_names_key(tmp_path, tiny_resnet):
    state = {k: v.numpy() for k, v in tiny_resnet.state_dict().items()}
    state["layer2.0.conv1.weight"] = np.zeros((32, 16, 5, 5), np.float32)
    save_arrays(state, tmp_path / "w.safetensors")
    with pytest.raises(ValueError, match=r"shape mismatch for layer2\.0\.conv1\.weight: file has "
                                         r"shape \(32, 16, 5, 5\), the model expects "
                                         r"\(32, 16, 3, 3\)"):
        load_weights(tiny_resnet, tmp_path / "w.safetensors")
    with pytest.raises(ValueError, match="shape mismatch"):  # even when not strict
        load_weights(tiny_resnet, tmp_path / "w.safetensors", strict=False)


def test_load_weights_missing_and_unexpected_keys(tmp_path, tiny_resnet):
    state = {k: v.numpy() for k, v in tiny_resnet.state_dict().items()}
    del state["fc.bias"]
    state["fc.extra"] = np.zeros(3, np.float32)
    save_arrays(state, tmp_path / "w.safetensors")
    with pytest.raises(ValueError,
                       match=r"missing key 'fc\.bias'(.|\n)*unexpected key 'fc\.extra'"):
        load_weights(tiny_resnet, tmp_path / "w.safetensors")
    before = tiny_resnet.fc.bias.detach().numpy().copy()
    result = load_weights(tiny_resnet, tmp_path / "w.safetensors", strict=False)
    assert result.missing_keys == ["fc.bias"] and result.unexpected_keys == ["fc.extra"]
    np.testing.assert_array_equal(tiny_resnet.fc.bias.detach().numpy(), before)


def test_load_weights_bad_path(tmp_path, tiny_resnet):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_weights(tiny_resnet, tmp_path / "nope.safetensors")
    (tmp_path / "w.pt").write_bytes(b"\x80\x04")  # a pickle: never read
    with pytest.raises(ValueError, match=r"must end in \.safetensors or \.npz"):
        load_weights(tiny_resnet, tmp_path / "w.pt")


def test_export_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown torchvision classification model 'resnet7'"):
        export_torchvision("resnet7", tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match=r"out_path must end in \.safetensors or \.npz, got"):
        export_torchvision("resnet18", tmp_path / "x.pth")
    with pytest.raises(ValueError, match="weights must be None or one of"):
        export_torchvision("resnet18", tmp_path / "x.safetensors", weights="IMAGENET9K")
    with pytest.raises(TypeError, match="expects a torch.nn.Module"):
        export_torchvision("resnet18", tmp_path / "x.safetensors", model=object())


def test_export_pretrained_only_from_cache(tmp_path, monkeypatch):
    """Pretrained weights come from the local torch cache or not at all (never downloaded)."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def no_download(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    with pytest.raises(FileNotFoundError, match="not in the local torch cache"):
        export_torchvision("resnet18", tmp_path / "x.safetensors", weights="DEFAULT")
    # put a (random) file where torchvision caches ResNet18_Weights.IMAGENET1K_V1
    entry = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(3)
    fake = torchvision.models.resnet18().state_dict()
    torch.save(fake, cache / os.path.basename(entry.url))
    path = export_torchvision("resnet18", tmp_path / "x.safetensors", weights="IMAGENET1K_V1")
    arrays = load_arrays(path)
    np.testing.assert_array_equal(arrays["conv1.weight"], fake["conv1.weight"].numpy())


def test_export_without_torch_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="export_torchvision needs PyTorch and torchvision"):
        export_torchvision("resnet18", tmp_path / "x.safetensors")


def test_exported_file_gives_same_outputs(tmp_path):
    """The public path end to end, in eval mode at 32x32 (the harness checks more)."""
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(num_classes=10).eval()
    path = export_torchvision("resnet18", tmp_path / "r.safetensors", model=tv)
    model = models.resnet18(num_classes=10)
    load_weights(model, path)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with torch.no_grad(), minicnn.no_grad():
        np.testing.assert_allclose(model.eval()(minicnn.tensor(x)).numpy(),
                                   tv(torch.from_numpy(x)).numpy(), rtol=1e-4, atol=1e-4)


def _npz_with_huge_zero_member(path, key: str, shape: tuple[int, ...]) -> None:
    """A compressed .npz whose member ``key`` is a float32 array of zeros of ``shape``,
    written in chunks (the file is small, the array is not)."""
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf, \
            zf.open(f"{key}.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f4", "fortran_order": False, "shape": shape})
        chunk = bytes(1 << 20)
        remaining = int(np.prod(shape)) * 4
        while remaining:
            f.write(chunk[:min(remaining, len(chunk))])
            remaining -= min(remaining, len(chunk))


def test_load_weights_checks_shapes_before_reading_the_data(tmp_path):
    """A small .npz holding one big array of zeros (64 MB here; 2 GB in the report) is
    refused by its header: the shape check comes before any array is read."""
    import tracemalloc

    model = minicnn.nn.Linear(4, 3)
    path = tmp_path / "bomb.npz"
    _npz_with_huge_zero_member(path, "weight", (4096, 4096))
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"weight: file has shape \(4096, 4096\), the "
                                             r"model expects \(3, 4\)"):
            load_weights(model, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"peak {peak / 2**20:.1f} MiB while checking a 64 MiB array"


def test_load_weights_bad_files_name_the_file(tmp_path, tiny_resnet):
    from minicnn.errors import DataFileError

    folder = tmp_path / "x.safetensors"
    folder.mkdir()
    with pytest.raises(DataFileError, match=rf"{folder}: is a directory"):
        load_weights(tiny_resnet, folder)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(DataFileError, match=rf"{empty}: not a valid .safetensors file"):
        load_weights(tiny_resnet, empty)
    path = save_arrays(tiny_resnet.state_dict(), tmp_path / "w.safetensors")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataFileError, match=rf"{cut}: not a valid .safetensors file"):
        load_weights(tiny_resnet, cut)
