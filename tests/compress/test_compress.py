"""minicnn.compress against independent references: PyTorch's pruning masks
(``torch.nn.utils.prune``), scikit-learn's k-means, NumPy's SVD, the files written."""

from __future__ import annotations

import os

import numpy as np
import pytest

import minicnn
from minicnn import compress, nn
from minicnn.errors import DataFileError
from minicnn.serialization import save_arrays

torch = pytest.importorskip("torch")
prune_torch = pytest.importorskip("torch.nn.utils.prune")


def small_cnn(seed: int = 0) -> nn.Module:
    """Two convolutions and two linear layers: (N, 1, 8, 8) -> (N, 10)."""
    minicnn.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(16 * 16, 64), nn.ReLU(), nn.Linear(64, 10),
    )


def torch_twin(model: nn.Module) -> torch.nn.Module:
    """The same architecture in PyTorch with ``model``'s weights."""
    twin = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(16 * 16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10),
    )
    twin.load_state_dict({k: torch.from_numpy(np.array(v.numpy()))
                          for k, v in model.state_dict().items()})
    return twin


def layer_weights(model: nn.Module) -> dict[str, np.ndarray]:
    return {name: compress.pruning.weight_of(layer)
            for name, layer in compress.prunable_layers(model).items()}


# ---------------------------------------------------------------- pruning


@pytest.mark.parametrize("amount", [0.0, 0.5, 0.9])
def test_per_layer_pruning_reaches_the_sparsity_and_matches_torch(amount):
    model = small_cnn()
    twin = torch_twin(model)
    masks = compress.prune_(model, amount, scope="layer")
    for name, layer in compress.prunable_layers(model).items():
        n = layer.weight.numel()
        assert int((compress.pruning.weight_of(layer) == 0).sum()) == round(amount * n)
        module = twin.get_submodule(name.rsplit(".", 1)[0])
        prune_torch.l1_unstructured(module, "weight", amount=amount)
        np.testing.assert_array_equal(masks[name], module.weight_mask.numpy())
    assert compress.sparsity(model)["total"] == pytest.approx(amount, abs=1e-3)


def test_global_pruning_matches_torch_global_unstructured():
    model = small_cnn(1)
    twin = torch_twin(model)
    masks = compress.prune_(model, 0.8, scope="global")
    names = list(compress.prunable_layers(model))
    modules = [twin.get_submodule(n.rsplit(".", 1)[0]) for n in names]
    prune_torch.global_unstructured([(m, "weight") for m in modules],
                                    pruning_method=prune_torch.L1Unstructured, amount=0.8)
    for name, module in zip(names, modules, strict=True):
        np.testing.assert_array_equal(masks[name], module.weight_mask.numpy())
    total = sum(w.size for w in layer_weights(model).values())
    zeros = sum(int((w == 0).sum()) for w in layer_weights(model).values())
    assert zeros == round(0.8 * total)
    per_layer = compress.sparsity(model)
    assert per_layer["7.weight"] > per_layer["0.weight"]  # the big layer loses more


def test_fine_tuning_keeps_pruned_weights_at_zero():
    model = small_cnn(2)
    masks = compress.prune_(model, 0.7, scope="layer")
    assert set(dict(model.named_parameters())) >= {"0.weight_orig", "7.weight_orig"}
    before = layer_weights(model)
    optimizer = minicnn.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
    x = minicnn.randn(16, 1, 8, 8)
    y = minicnn.tensor(np.arange(16) % 10)
    for _ in range(5):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        for name, layer in compress.prunable_layers(model).items():  # no gradient there
            assert not np.any(layer.weight_orig.grad.numpy()[masks[name] == 0])
        optimizer.step()
    model(x)
    for name, layer in compress.prunable_layers(model).items():
        pruned = masks[name] == 0
        assert np.all(layer.weight.detach().numpy()[pruned] == 0)
        assert np.all(layer.weight_orig.detach().numpy()[pruned] == 0)
        kept = ~pruned
        assert not np.allclose(layer.weight.detach().numpy()[kept], before[name][kept])
    out = model(x).detach().numpy()
    compress.remove_pruning(model)
    assert "0.weight" in dict(model.named_parameters())
    assert not any(k.endswith(("_orig", "_mask")) for k in model.state_dict())
    np.testing.assert_array_equal(model(x).detach().numpy(), out)
    for name, w in layer_weights(model).items():
        assert np.all(w[masks[name] == 0] == 0)


@pytest.mark.parametrize("amount", [-0.1, 1.0, 1.5, "0.5", True])
def test_bad_amount_is_one_clear_error(amount):
    with pytest.raises(ValueError, match=r"amount must be a fraction in \[0, 1\)"):
        compress.prune_(small_cnn(), amount)


def test_bad_scope_is_an_error():
    with pytest.raises(ValueError, match="scope must be one of global, layer"):
        compress.prune_(small_cnn(), 0.5, scope="channel")


# ---------------------------------------------------------------- weight sharing


@pytest.mark.parametrize("bits", [8, 6, 4])
def test_weight_sharing_uses_at_most_2_to_the_bits_values(bits):
    model = small_cnn(3)
    compress.prune_(model, 0.5, scope="layer")
    compress.remove_pruning(model)
    model[9].weight.data = minicnn.randn(10, 64)  # one dense layer besides the pruned ones
    codebooks = compress.share_weights_(model, bits)
    for name, w in layer_weights(model).items():
        assert np.unique(w).size <= 2**bits, name
        np.testing.assert_array_equal(np.unique(w), codebooks[name])
    assert np.count_nonzero(layer_weights(model)["7.weight"]) == 16 * 16 * 64 // 2


@pytest.mark.parametrize("bits,size", [(4, 3000), (6, 20000), (8, 50000)])
def test_kmeans_matches_scikit_learn_with_the_same_linear_init(bits, size):
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(bits)
    # bounded weights-like values: no cluster of the linear start is left empty
    values = rng.uniform(-1, 1, size) if bits == 8 else (rng.beta(2, 2, size) - 0.5) * 0.1
    k = 2**bits
    centroids, labels = compress.kmeans_1d(values, k)
    assert np.bincount(labels, minlength=k).min() > 0  # no empty cluster (sklearn moves them)
    ref = KMeans(n_clusters=k, init=compress.linear_centroids(values, k)[:, None], n_init=1,
                 algorithm="lloyd", tol=0, max_iter=300).fit(values[:, None])
    np.testing.assert_array_equal(labels, ref.labels_)
    np.testing.assert_allclose(centroids, ref.cluster_centers_[:, 0], rtol=1e-10, atol=1e-12)


def test_kmeans_linear_init_spans_the_weights():
    values = np.array([-2.0, 0.5, 1.0, 3.0, 2.5, -1.0])
    np.testing.assert_allclose(compress.linear_centroids(values, 3), [-2.0, 0.5, 3.0])
    _, labels = compress.kmeans_1d(values, 3, max_iter=0)  # the linear centroids only
    np.testing.assert_array_equal(labels, [0, 1, 1, 2, 2, 0])


@pytest.mark.parametrize("bits", [0, 9, 2.5, "6"])
def test_bad_bits_is_one_clear_error(bits):
    with pytest.raises(ValueError, match=r"bits must be an int in 1\.\.8"):
        compress.share_weights_(small_cnn(), bits)


# ---------------------------------------------------------------- low rank


@pytest.mark.parametrize("rank", [1, 5, 20])
def test_low_rank_linear_is_numpys_truncated_svd(rank):
    minicnn.manual_seed(4)
    layer = nn.Linear(40, 30)
    factored = compress.low_rank_linear(layer, rank)
    first, second = factored[0], factored[1]
    assert first.weight.shape == (rank, 40) and first.bias is None
    assert second.weight.shape == (30, rank)
    w = layer.weight.detach().numpy().astype(np.float64)
    u, s, vt = np.linalg.svd(w)
    reference = (u[:, :rank] * s[:rank]) @ vt[:rank]
    product = second.weight.detach().numpy() @ first.weight.detach().numpy()
    np.testing.assert_allclose(product, reference, atol=1e-5)
    x = minicnn.randn(7, 40)
    expected = x.numpy() @ reference.T + layer.bias.detach().numpy()
    np.testing.assert_allclose(factored(x).detach().numpy(), expected, atol=1e-5)


def test_factorize_linear_layers_replaces_only_layers_it_shrinks():
    model = small_cnn(5)
    x = minicnn.randn(3, 1, 8, 8)
    replaced = compress.factorize_linear_layers(model, 9)  # 9 * (64 + 10) > 64 * 10
    assert replaced == {"7": (256 * 64, 9 * (256 + 64))}
    assert isinstance(model[7], nn.Sequential) and isinstance(model[9], nn.Linear)
    assert model(x).shape == (3, 10)


def test_low_rank_errors():
    with pytest.raises(ValueError, match="rank must be at most"):
        compress.low_rank_linear(nn.Linear(4, 3), 4)
    with pytest.raises(ValueError, match="rank must be a positive int"):
        compress.low_rank_linear(nn.Linear(4, 3), 0)
    with pytest.raises(TypeError, match="expected a Linear layer"):
        compress.low_rank_linear(nn.Conv2d(1, 1, 3), 1)


# ---------------------------------------------------------------- sizes and files


def test_bit_packing_and_relative_indices_round_trip():
    rng = np.random.default_rng(0)
    for bits in range(1, 9):
        values = rng.integers(0, 2**bits, 1001)
        packed = compress.size.pack_bits(values, bits)
        assert packed.nbytes == -(-1001 * bits // 8)
        np.testing.assert_array_equal(compress.size.unpack_bits(packed, bits, 1001), values)
    positions = np.array([0, 1, 5, 40, 41, 200, 999])
    stream = compress.size.relative_indices(positions, 3)  # gaps over 7 need fillers
    assert list(stream[:4]) == [1, 1, 4, 0]
    np.testing.assert_array_equal(compress.size.positions_from_relative(stream, 3), positions)


def compressed_model(prune: float | None, bits: int | None) -> nn.Module:
    model = small_cnn(6)
    model.eval()
    if prune is not None:
        compress.prune_(model, prune)
    if bits is not None:
        compress.share_weights_(model, bits)
    return model


@pytest.mark.parametrize("prune,bits,fmt", [(None, None, "dense"), (0.9, None, "sparse"),
                                            (None, 4, "shared"), (0.9, 6, "sparse_shared")])
def test_reported_size_is_the_file_written_and_the_round_trip_is_exact(tmp_path, prune, bits,
                                                                       fmt):
    model = compressed_model(prune, bits)
    path = compress.save_compressed(model, tmp_path / "model.safetensors")
    assert os.path.getsize(path) == compress.compressed_bytes(model)
    formats = {r["name"]: r["format"] for r in compress.describe(model)}
    assert formats["7.weight"] == fmt  # the big layer (a small one may take another format)
    dense_path = save_arrays(compress.size._state_arrays(model), tmp_path / "dense.safetensors")
    assert os.path.getsize(dense_path) == compress.dense_bytes(model)
    if fmt != "dense":
        assert compress.compressed_bytes(model) < compress.dense_bytes(model)
    loaded = small_cnn(7)
    loaded.load_state_dict(compress.load_compressed(path))
    loaded.eval()
    x = minicnn.randn(4, 1, 8, 8)
    np.testing.assert_array_equal(loaded(x).detach().numpy(), model(x).detach().numpy())


def test_the_sizes_follow_the_formula():
    """90% pruned, 4-bit shared: codebook + packed codes + packed relative indices."""
    model = compressed_model(0.9, 4)
    for row in compress.describe(model):
        if row["format"] == "sparse_shared":
            assert row["bytes"] < row["nonzero"] * (4 + 8) / 8 + 4 * 16 + 8  # <= 4+8 bits/weight
    assert compress.compressed_bytes(model) < compress.dense_bytes(model) / 5


def test_load_compressed_refuses_other_files(tmp_path):
    plain = save_arrays({"w": np.zeros(3, np.float32)}, tmp_path / "plain.safetensors")
    with pytest.raises(DataFileError, match="plain.safetensors: has no 'minicnn.compressed'"):
        compress.load_compressed(plain)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a file")
    with pytest.raises(DataFileError, match="junk.safetensors: not a valid compressed"):
        compress.load_compressed(junk)
    with pytest.raises(ValueError, match="must end in .safetensors"):
        compress.save_compressed(small_cnn(), tmp_path / "x.pt")
