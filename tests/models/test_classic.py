"""The classic ImageNet networks: AlexNet, ZFNet, VGG, GoogLeNet, Inception v3, SqueezeNet.

torchvision twins (alexnet, vgg11..19(_bn), googlenet, inception_v3, squeezenet1_0/1_1):
state_dict keys and shapes and parameter counts equal torchvision's (and its published
``num_params``); a fresh torchvision model's weights (BatchNorm statistics randomised)
go torch -> safetensors -> minicnn (tests/models/harness.py) and the eval outputs and
training-mode gradients agree; multiply-adds at 224x224 (299 for Inception v3) within 1%
of torchvision's published GFLOPS; the minimum input sizes are torchvision's ``min_size``.

Paper-only networks (alexnet_paper, zfnet, googlenet_paper): parameter counts and layer
sizes against the papers' figures (sources at each constant), a float64 directional
gradcheck of their blocks. Every network: one SGD step on the numba backend lowers the
loss on a fixed batch; wrong channel counts and too-small inputs raise a ValueError
naming the model and its minimum input size.

Tolerances: errors are ``max|minicnn - torch| / max(1, max|torch|)``. Whole networks: the
harness's (float32 eval outputs within ``max(1e-4, 3 x torch's own float32 error)`` of
torch's float64 output; training-mode gradients in float64 within 1e-6). Blocks and the
GoogLeNet auxiliary outputs here: float32, 1e-4 for outputs, 2e-3 for input gradients,
with inputs chosen so that training-mode BatchNorm never normalises over fewer than 8
values (over 2 values -- 2 images of a 1x1 map -- float32 gradients of *both* libraries
are ~1% off the float64 ones). The torch reference runs with oneDNN (mkldnn) switched
off: its float32 convolution backward on 1x1 maps is ~0.4% off the float64 result
(SqueezeNet's last Fire module at 32x32; minicnn agrees with float64 to 1e-6 there).
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
import torchvision

import minicnn
from minicnn import models, nn
from minicnn.summary import summary
from tests.models.harness import (
    check_mult_adds,
    compare_with_torchvision,
    count_params,
    key_shapes,
    mult_adds,
    one_step_lowers_loss,
    published,
    randomize_batchnorm_,
)

# ``minicnn.models.alexnet`` is the constructor (as in torchvision), not the file
alexnet_mod = importlib.import_module("minicnn.models.alexnet")
zfnet_mod = importlib.import_module("minicnn.models.zfnet")
googlenet_mod = importlib.import_module("minicnn.models.googlenet")
inception_mod = importlib.import_module("minicnn.models.inception")
vgg_mod = importlib.import_module("minicnn.models.vgg")

slow = pytest.mark.slow

VGGS = ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]
TORCHVISION_TWINS = ["alexnet", *VGGS, "googlenet", "inception_v3", "squeezenet1_0",
                     "squeezenet1_1"]
PAPER_ONLY = ["alexnet_paper", "zfnet", "googlenet_paper"]

# Krizhevsky et al. 2012: "60 million parameters" (abstract; Section 4); Section 3.5: "the
# number of neurons in the network's remaining layers is given by 253,440-186,624-64,896-
# 64,896-43,264-4096-4096-1000" (conv1's 253,440 = 55 x 48 x 96 counts one GPU's half of
# the 55 x 55 x 96 = 290,400 maps; the others are whole layers).
ALEXNET_PAPER_PARAMS = 60e6
ALEXNET_PAPER_NEURONS = [186_624, 64_896, 64_896, 43_264, 4096, 4096, 1000]  # conv2..fc8
# Zeiler & Fergus 2013, Figure 3: feature-map sizes after layer 1's conv and pool, layer 2's
# conv and pool, layers 3, 4, 5 and layer 5's pool, at 224x224 (no parameter count given).
ZFNET_FIGURE3 = [(96, 110), (96, 55), (256, 26), (256, 13), (384, 13), (384, 13), (256, 13),
                 (256, 6)]
# Szegedy et al. 2014, Table 1: output size and "ops" (multiply-adds, M) per row; the
# "params" column sums to 6797.7K (K = 1024: 3a's 159K = 163,328 weights), "6.8M";
# Section 1: "a computational budget of 1.5 billion multiply-adds at inference time".
GOOGLENET_TABLE1 = {  # row: (channels, size, ops in M)
    "conv1": (64, 112, 34), "conv2+conv3": (192, 56, 360),
    "inception3a": (256, 28, 128), "inception3b": (480, 28, 304),
    "inception4a": (512, 14, 73), "inception4b": (512, 14, 88), "inception4c": (512, 14, 100),
    "inception4d": (528, 14, 119), "inception4e": (832, 14, 170),
    "inception5a": (832, 7, 54), "inception5b": (1024, 7, 71), "fc": (1000, 1, 1),
}
GOOGLENET_TABLE1_WEIGHTS = 6797.7 * 1024
GOOGLENET_BUDGET = 1.5e9
# Iandola et al. 2016, title and Table 2: "AlexNet-level accuracy with 50x fewer parameters"
SQUEEZENET_RATIO = 50


@pytest.fixture(autouse=True)
def _exact_torch_reference():
    """oneDNN off in torch (see the module docstring)."""
    enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    yield
    torch.backends.mkldnn.enabled = enabled


@pytest.fixture(scope="module")
def built():
    """``built(name, **kwargs)``: the minicnn model, built once per module (the big fully
    connected layers take seconds to initialise). Tests that train it only make it better."""
    cache: dict = {}

    def get(name: str, **kwargs):
        key = (name, tuple(sorted(kwargs.items())))
        if key not in cache:
            minicnn.manual_seed(0)
            cache[key] = models.MODELS[name](**kwargs)
        return cache[key]

    yield get
    cache.clear()


def _tv(name: str, **kwargs):
    if name in ("googlenet", "inception_v3"):
        kwargs.setdefault("init_weights", True)  # no FutureWarning
    return torchvision.models.get_model(name, weights=None, **kwargs)


def _copy_to_minicnn(tv_module, module) -> None:
    module.load_state_dict({k: v.detach().numpy() for k, v in tv_module.state_dict().items()})


def _no_dropout(model):
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    return model


# ---------------------------------------------------------------- structure


@pytest.mark.parametrize("name, kwargs", [
    ("alexnet", {}), ("googlenet", {}), ("googlenet", {"aux_logits": False}),
    ("inception_v3", {}), ("inception_v3", {"aux_logits": False}),
    ("squeezenet1_0", {}), ("squeezenet1_1", {}),
    *[pytest.param(n, {}, marks=slow) for n in VGGS],
])
def test_state_dict_and_param_count_match_torchvision(name, kwargs, built):
    """Same keys in the same order, same shapes, same parameter count; torchvision's
    published ``num_params`` (googlenet: without the auxiliary classifiers; inception_v3:
    with its auxiliary classifier)."""
    with torch.device("meta"):  # shapes only
        tv = _tv(name, **kwargs)
    model = built(name, **kwargs)
    assert key_shapes(model.state_dict()) == key_shapes(tv.state_dict())
    assert count_params(model) == count_params(tv)
    # published: googlenet without its auxiliary classifiers, inception_v3 with its one
    other = {("googlenet", ()): 13_004_888, ("inception_v3", (("aux_logits", False),)): 23_834_568}
    expected = other.get((name, tuple(kwargs.items())), published(name)["num_params"])
    assert count_params(model) == expected


@pytest.mark.parametrize("cfg", list(vgg_mod.VGG_CONFIGS))
@pytest.mark.parametrize("batch_norm", [False, True])
def test_vgg_configurations_match_torchvision(cfg, batch_norm):
    """Every column of the VGG table (A, B, D, E, with and without BN) builds torchvision's
    ``features``: same keys and shapes (the classifier is shared, checked on vgg11_bn)."""
    from torchvision.models.vgg import cfgs, make_layers

    assert vgg_mod.VGG_CONFIGS[cfg] == cfgs[cfg]
    with torch.device("meta"):
        tv = make_layers(cfgs[cfg], batch_norm=batch_norm)
    assert key_shapes(vgg_mod.make_layers(vgg_mod.VGG_CONFIGS[cfg], batch_norm).state_dict()) \
        == key_shapes(tv.state_dict())


def test_init_follows_torchvision(built):
    """Distributions of a few weights: torchvision's initialization, layer by layer."""
    def std(t):
        return float(t.detach().numpy().std())

    alex = built("alexnet")  # PyTorch's default: uniform(+-1/sqrt(fan_in)), std 1/sqrt(3 fan_in)
    assert std(alex.classifier[1].weight) == pytest.approx(1 / np.sqrt(3 * 9216), rel=0.01)
    goog = built("googlenet")  # truncated normal, std 0.01
    assert std(goog.inception4c.branch2[1].conv.weight) == pytest.approx(0.01, rel=0.02)
    assert np.all(goog.inception4c.branch2[1].bn.weight.detach().numpy() == 1)
    inc = built("inception_v3")  # std 0.1 cut at +-2 (= +-20 std: a plain normal), aux fc 0.001
    assert std(inc.Mixed_6e.branch7x7dbl_3.conv.weight) == pytest.approx(0.1, rel=0.02)
    assert std(inc.AuxLogits.conv1.conv.weight) == pytest.approx(0.1, rel=0.02)  # as torchvision
    assert std(inc.AuxLogits.fc.weight) == pytest.approx(0.001, rel=0.02)
    sq = built("squeezenet1_0")  # Kaiming uniform (gain sqrt 2), final conv N(0, 0.01^2)
    w = sq.features[12].expand3x3.weight  # fan_in 64 * 9
    assert std(w) == pytest.approx(np.sqrt(2 / (64 * 9)), rel=0.02)
    assert std(sq.classifier[1].weight) == pytest.approx(0.01, rel=0.02)
    assert np.all(sq.classifier[1].bias.detach().numpy() == 0)
    # VGG: Kaiming normal (fan_out) convolutions, N(0, 0.01^2) linear layers, biases 0
    layers = nn.Sequential(*vgg_mod.make_layers([64, 64], batch_norm=True), nn.Linear(500, 400))
    vgg_mod.init_vgg_(layers)
    assert std(layers[3].weight) == pytest.approx(np.sqrt(2 / (64 * 9)), rel=0.02)
    assert std(layers[6].weight) == pytest.approx(0.01, rel=0.02)
    assert float(abs(layers[6].bias.detach().numpy()).max()) == 0


# ---------------------------------------------------------------- numerics against torchvision


@pytest.mark.parametrize("name, size, kwargs", [
    ("squeezenet1_0", 32, {}),
    ("squeezenet1_1", 32, {}),
    ("alexnet", 63, {}),  # its minimum size
    ("googlenet", 32, {"aux_logits": False}),
    *[pytest.param(n, 32, {"num_classes": 10}, marks=slow) for n in VGGS],  # the minimum size
    pytest.param("googlenet", 64, {"aux_logits": False, "transform_input": True}, marks=slow),
])
def test_outputs_and_gradients_match_torchvision(name, size, kwargs, tmp_path, built):
    """torch weights -> safetensors -> minicnn: eval outputs (float32) and train-mode
    gradients (float64) agree (tests/models/harness.py)."""
    if "googlenet" == name:
        kwargs = {**kwargs, "init_weights": True}
    model = built(name, **kwargs)
    try:
        report = compare_with_torchvision(name, (3, size, size), tmp_path=tmp_path,
                                          build=lambda **kw: model, **kwargs)
    finally:
        model.float()  # the harness trains it in float64; other tests share it
    assert report["params"] == count_params(model)


@pytest.mark.parametrize("cfg, batch_norm", [("A", True), pytest.param("E", False, marks=slow)])
def test_vgg_features_match_torchvision(cfg, batch_norm):
    """The convolutional part of VGG (the 120M-parameter classifier is Linear/ReLU/Dropout,
    checked on AlexNet; whole VGGs are compared in the slow test above) at the minimum size
    32x32, eval and train mode, float32 (batch 4: the last BN sees 2x2 maps)."""
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    _compare_block(make_layers(cfgs[cfg], batch_norm=batch_norm),
                   vgg_mod.make_layers(vgg_mod.VGG_CONFIGS[cfg], batch_norm), (4, 3, 32, 32))


def test_inception_v3_eval_output_matches_torchvision(tmp_path):
    """Inception v3 at its minimum size (75x75), eval mode, through safetensors."""
    compare_with_torchvision("inception_v3", (3, 75, 75), tmp_path=tmp_path, check_train=False,
                             num_classes=10, aux_logits=False, init_weights=True)


@slow
def test_inception_v3_training_gradients_match_torchvision(tmp_path):
    """Training mode at 75x75, batch 4 (the harness's float64 gradients, tolerance 1e-6):
    BatchNorm then sees 1x1 maps, so a batch of 2 would be ill-conditioned even in float64
    (gradients ~5e6, differences ~2e-8 relative)."""
    compare_with_torchvision("inception_v3", (3, 75, 75), tmp_path=tmp_path, batch_size=4,
                             num_classes=10, aux_logits=False, init_weights=True)


@slow
def test_inception_v3_aux_logits_at_299_match_torchvision(tmp_path):
    """Training mode with the auxiliary classifier (needs 299x299): InceptionOutputs(logits,
    aux_logits), both equal torchvision's (float32, dropout off, batch 2: the aux BNs see
    2 x 5 x 5 values, the last ones 2 x 8 x 8)."""
    kwargs = {"num_classes": 10, "init_weights": True}
    torch.manual_seed(0)
    tv = _tv("inception_v3", **kwargs)
    model = models.inception_v3(**kwargs)
    randomize_batchnorm_(tv, (3, 299, 299))
    _copy_to_minicnn(tv, model)
    x = np.random.default_rng(0).standard_normal((2, 3, 299, 299)).astype(np.float32)
    tv.train().dropout.eval()
    _no_dropout(model.train())
    with torch.no_grad():
        expected = tv(torch.from_numpy(x))
    with minicnn.no_grad():
        out = model(minicnn.tensor(x))
    assert isinstance(out, inception_mod.InceptionOutputs)
    assert out._fields == expected._fields == ("logits", "aux_logits")
    for a, e in zip(out, expected, strict=True):
        e = e.numpy()
        assert np.abs(a.numpy() - e).max() <= 1e-3 * max(1, np.abs(e).max())


def _compare_block(tv_block, block, x_shape, tol=1e-4, grad_tol=2e-3):
    """eval output, then train-mode output and input gradient, of one block (float32)."""
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    randomize_batchnorm_(tv_block, x_shape[1:])
    _copy_to_minicnn(tv_block, block)
    x = rng.standard_normal(x_shape).astype(np.float32)
    for training in (False, True):
        tv_block.train(training)
        block.train(training)
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        xm = minicnn.tensor(x.copy(), requires_grad=True)
        out_t, out_m = tv_block(xt), block(xm)
        expected = out_t.detach().numpy()
        scale = max(1.0, float(np.abs(expected).max()))
        assert np.abs(out_m.detach().numpy() - expected).max() <= tol * scale
        if training:
            w = rng.standard_normal(expected.shape).astype(np.float32)
            (out_t * torch.from_numpy(w)).sum().backward()
            (out_m * minicnn.tensor(w)).sum().backward()
            g = xt.grad.numpy()
            assert np.abs(xm.grad.numpy() - g).max() <= grad_tol * max(1.0, np.abs(g).max())


@pytest.mark.parametrize("block, args, x_shape", [
    ("InceptionA", (192, 32), (2, 192, 7, 7)),
    ("InceptionB", (288,), (2, 288, 7, 7)),
    ("InceptionC", (768, 128), (2, 768, 5, 5)),
    ("InceptionD", (768,), (2, 768, 7, 7)),
    ("InceptionE", (1280,), (2, 1280, 3, 3)),
    ("InceptionAux", (768, 10), (2, 768, 17, 17)),
])
def test_inception_v3_blocks_match_torchvision(block, args, x_shape):
    """Each Inception v3 block against torchvision's (eval and train mode, float32)."""
    torch.manual_seed(0)
    _compare_block(getattr(torchvision.models.inception, block)(*args),
                   getattr(inception_mod, block)(*args), x_shape)


def test_googlenet_aux_outputs_and_transform_input_match_torchvision(tmp_path):
    """torchvision's googlenet() defaults (aux_logits=True) with transform_input=True: eval
    returns the logits alone, training mode GoogLeNetOutputs(logits, aux_logits2,
    aux_logits1) -- all three equal torchvision's (dropout off)."""
    kwargs = {"num_classes": 10, "transform_input": True, "init_weights": True}
    torch.manual_seed(0)
    tv = _tv("googlenet", **kwargs)
    model = models.googlenet(**kwargs)
    randomize_batchnorm_(tv, (3, 40, 40))
    path = models.export_torchvision("googlenet", tmp_path / "g.safetensors", model=tv)
    models.load_weights(model, path)
    # 40x40, batch 4: the last BatchNorms normalise over 4 x 2 x 2 values
    x = np.random.default_rng(0).standard_normal((4, 3, 40, 40)).astype(np.float32)
    tv.eval()
    model.eval()
    with torch.no_grad():
        expected = tv(torch.from_numpy(x)).numpy()
    with minicnn.no_grad():
        out = model(minicnn.tensor(x))
    assert isinstance(out, minicnn.Tensor)
    assert np.abs(out.numpy() - expected).max() <= 1e-4 * max(1, np.abs(expected).max())
    tv.train()
    _no_dropout(model.train())
    for m in tv.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    with torch.no_grad():
        expected = tv(torch.from_numpy(x))
    with minicnn.no_grad():
        out = model(minicnn.tensor(x))
    assert isinstance(out, googlenet_mod.GoogLeNetOutputs)
    assert out._fields == expected._fields == ("logits", "aux_logits2", "aux_logits1")
    for a, e in zip(out, expected, strict=True):
        e = e.numpy()
        assert np.abs(a.numpy() - e).max() <= 1e-4 * max(1, np.abs(e).max())
    model.aux_logits = False  # then training mode returns the logits alone
    with minicnn.no_grad():
        assert isinstance(model(minicnn.tensor(x)), minicnn.Tensor)


def test_googlenet_loss_weights_the_auxiliary_losses():
    """googlenet_loss = CE(logits) + 0.3 * (CE(aux1) + CE(aux2)) (Szegedy et al. Section 5:
    "the losses of the auxiliary classifiers were weighted by 0.3"); plain logits: CE."""
    rng = np.random.default_rng(0)
    logits = [rng.standard_normal((4, 7)).astype(np.float32) for _ in range(3)]
    y = rng.integers(0, 7, 4)
    out = googlenet_mod.GoogLeNetOutputs(*[minicnn.tensor(a) for a in logits])
    ce = torch.nn.functional.cross_entropy
    t = [torch.from_numpy(a) for a in logits]
    yt = torch.from_numpy(y)
    expected = ce(t[0], yt) + 0.3 * (ce(t[1], yt) + ce(t[2], yt))
    assert googlenet_mod.googlenet_loss(out, minicnn.tensor(y)).item() == \
        pytest.approx(expected.item(), rel=1e-5)
    assert googlenet_mod.googlenet_loss(out[0], minicnn.tensor(y)).item() == \
        pytest.approx(ce(t[0], yt).item(), rel=1e-5)


# ---------------------------------------------------------------- multiply-adds


@pytest.mark.parametrize("name", [
    "alexnet", "googlenet", "squeezenet1_0", "squeezenet1_1",
    *[pytest.param(n, marks=slow) for n in VGGS],
])
def test_mult_adds_match_torchvision_published(name, built):
    """minicnn.summary at 224x224 within 1% of torchvision's ``_ops`` (alexnet 0.714,
    googlenet 1.498, squeezenet1_0 0.819, squeezenet1_1 0.349, vgg11 7.609 ... vgg19 19.632)."""
    check_mult_adds(name, build=lambda: built(name))


@slow
def test_inception_v3_mult_adds_match_torchvision_published(built):
    """At 299x299: torchvision publishes 5.713 G."""
    measured = mult_adds(built("inception_v3"), (3, 299, 299)) / 1e9
    assert measured == pytest.approx(published("inception_v3")["_ops"], rel=0.01)


# ---------------------------------------------------------------- the papers' networks


def _conv_params(c_in, c_out, k, groups=1):
    return c_out * (c_in // groups) * k * k + c_out


def _fc_params(n_in, n_out):
    return n_in * n_out + n_out


def test_alexnet_paper_parameters_and_sizes(built):
    """Krizhevsky et al. 2012: 60,965,224 parameters (two-GPU grouping of conv2/4/5) --
    "60 million" -- or 62,378,344 single-tower; at 227x227 the layer sizes of Figure 2 and
    the neuron counts of Section 3.5."""
    fc = _fc_params(9216, 4096) + _fc_params(4096, 4096) + _fc_params(4096, 1000)
    grouped = (_conv_params(3, 96, 11) + _conv_params(96, 256, 5, 2) + _conv_params(256, 384, 3)
               + _conv_params(384, 384, 3, 2) + _conv_params(384, 256, 3, 2) + fc)
    single = (_conv_params(3, 96, 11) + _conv_params(96, 256, 5) + _conv_params(256, 384, 3)
              + _conv_params(384, 384, 3) + _conv_params(384, 256, 3) + fc)
    model = built("alexnet_paper")
    assert count_params(model) == grouped == 60_965_224
    assert count_params(models.alexnet_paper(grouped=False)) == single == 62_378_344
    assert count_params(model) == pytest.approx(ALEXNET_PAPER_PARAMS, rel=0.02)
    rows = summary(model, (3, 227, 227)).layers
    convs = [r.output_shape[1:] for r in rows if r.kind == "Conv2d"]
    assert convs == [(96, 55, 55), (256, 27, 27), (384, 13, 13), (384, 13, 13), (256, 13, 13)]
    pools = [r.output_shape[1:] for r in rows if r.kind == "MaxPool2d"]
    assert pools == [(96, 27, 27), (256, 13, 13), (256, 6, 6)]
    neurons = [int(np.prod(r.output_shape[1:])) for r in rows if r.kind in ("Conv2d", "Linear")]
    assert neurons[1:] == ALEXNET_PAPER_NEURONS
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in model.modules()) == 2
    lrn = model.features[2]
    assert (lrn.size, lrn.alpha / lrn.size, lrn.beta, lrn.k) == (5, 1e-4, 0.75, 2.0)


def test_alexnet_paper_init():
    """Section 5: weights N(0, 0.01^2); biases 1 in conv2, conv4, conv5, fc6, fc7, else 0."""
    model = alexnet_mod.AlexNet(alexnet_mod.make_features(
        [alexnet_mod.Conv(4, 3), alexnet_mod.Conv(4, 3), alexnet_mod.Conv(4, 3),
         alexnet_mod.Conv(4, 3), alexnet_mod.Conv(200, 3)]), num_classes=10, dropout_first=False)
    alexnet_mod.init_alexnet_paper_(model)
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert [float(m.bias.detach().numpy().mean()) for m in layers] == [0, 1, 0, 1, 1, 1, 1, 0]
    assert float(layers[5].weight.detach().numpy().std()) == pytest.approx(0.01, rel=0.02)


def test_zfnet_parameters_and_sizes(built):
    """Zeiler & Fergus 2013, Figure 3: every feature-map size at 224x224; 62,357,608
    parameters, counted from Figure 3's layers (the paper states no total)."""
    expected = (_conv_params(3, 96, 7) + _conv_params(96, 256, 5) + _conv_params(256, 384, 3)
                + _conv_params(384, 384, 3) + _conv_params(384, 256, 3)
                + _fc_params(9216, 4096) + _fc_params(4096, 4096) + _fc_params(4096, 1000))
    model = built("zfnet")
    assert count_params(model) == expected == 62_357_608
    table = summary(model, (3, 224, 224))
    sizes = [(r.output_shape[1], r.output_shape[2]) for r in table.layers
             if r.kind in ("Conv2d", "MaxPool2d")]
    assert sizes == ZFNET_FIGURE3
    assert table.layers[-1].output_shape == (1, 1000)
    assert table.total_mult_adds == pytest.approx(1.168e9, rel=0.001)


def test_googlenet_paper_against_table1(built):
    """Szegedy et al. 2014, Table 1 at 224x224: every row's output size; every row's
    multiply-adds within 2% of the "ops" column except conv1 (Table 1 says 34M, but its own
    7x7x3x64 filters at 112x112 make 118M) and 5a (54M listed, 51M for its listed filters);
    the weights (no biases, no auxiliary classifiers) within 1% of the "params" column's
    6.8M; the total within 6% of the 1.5 billion multiply-add budget (the extra is conv1)."""
    model = built("googlenet_paper")
    shapes = {}
    handles = [getattr(model, row.split("+")[-1]).register_forward_hook(
        lambda m, args, out, row=row: shapes.__setitem__(row, tuple(out.shape)))
        for row in GOOGLENET_TABLE1]
    try:
        table = summary(model, (3, 224, 224))
    finally:
        for h in handles:
            h.remove()
    ops = {}
    for r in table.layers:
        row = r.name.split(".")[0]
        row = "conv2+conv3" if row in ("conv2", "conv3") else row
        ops[row] = ops.get(row, 0) + r.mult_adds
    for row, (channels, size, table_ops) in GOOGLENET_TABLE1.items():
        expected_shape = (1, channels) if row == "fc" else (1, channels, size, size)
        assert shapes[row] == expected_shape, row
        if row not in ("conv1", "inception5a"):  # whole millions: +-0.5M for the fc row
            assert abs(ops[row] / 1e6 - table_ops) <= max(0.02 * table_ops, 0.5), row
    assert ops["inception5a"] == pytest.approx(54e6, rel=0.06)
    weights = sum(p.numel() for n, p in model.named_parameters()
                  if n.endswith("weight") and not n.startswith("aux"))
    assert weights == pytest.approx(GOOGLENET_TABLE1_WEIGHTS, rel=0.01)
    assert table.total_mult_adds == pytest.approx(GOOGLENET_BUDGET, rel=0.06)
    lrns = [m for m in model.modules() if isinstance(m, nn.LocalResponseNorm)]
    assert len(lrns) == 2
    assert model.inception3a.branch3[1].conv.kernel_size == (5, 5)  # a real 5x5
    assert model.maxpool4.kernel_size == 3 and model.dropout.p == 0.4
    assert model.aux1.dropout.p == 0.7 and model.aux1.fc1.weight.shape == (1024, 2048)


def test_googlenet_paper_aux_classifiers():
    """Section 5: in training mode the auxiliary classifiers on 4a and 4d see 14x14 maps,
    pool them 5x5/3 to 4x4, and predict the classes; eval mode: logits alone."""
    model = _no_dropout(models.googlenet_paper(num_classes=10))
    seen = {}
    for name in ("aux1", "aux2"):
        getattr(model, name).conv.register_forward_hook(
            lambda m, args, out, name=name: seen.__setitem__(name, (args[0].shape, out.shape)))
    x = minicnn.randn(1, 3, 224, 224)
    with minicnn.no_grad():
        out = model.train()(x)
        assert isinstance(out, googlenet_mod.GoogLeNetOutputs)
        assert [o.shape for o in out] == [(1, 10)] * 3
        assert seen == {"aux1": ((1, 512, 4, 4), (1, 128, 4, 4)),
                        "aux2": ((1, 528, 4, 4), (1, 128, 4, 4))}
        assert model.eval()(x).shape == (1, 10)


# ---------------------------------------------------------------- gradient checks (float64)


def _gradcheck_module(module, x_shape, seed=0):
    module = module.double()
    x = minicnn.tensor(np.random.default_rng(seed).standard_normal(x_shape), requires_grad=True)
    params = list(module.parameters())
    assert minicnn.gradcheck(lambda x, *p: module(x), [x, *params], eps=1e-6, atol=1e-6,
                             rtol=1e-5, mode="directional")


def test_gradcheck_googlenet_paper_inception_module():
    """The paper's Inception module (bias + ReLU units, a true 5x5), tiny, every input."""
    block = googlenet_mod.Inception(6, 2, 3, 4, 2, 3, 2, conv_block=googlenet_mod.ConvReLU,
                                    kernel_5x5=5)
    _gradcheck_module(block, (2, 6, 7, 7))


def test_gradcheck_googlenet_paper_aux_classifier():
    """The paper's auxiliary classifier: 5x5/3 average pool, 1x1 conv, fc, ReLU, fc."""
    aux = _no_dropout(googlenet_mod.InceptionAux(4, 5, googlenet_mod.ConvReLU, pool="paper"))
    _gradcheck_module(aux, (2, 4, 14, 14))


def test_gradcheck_alexnet_paper_stem():
    """conv, ReLU, LRN (k=2), overlapping pool; grouped conv, ReLU, LRN, pool -- tiny."""
    A = alexnet_mod
    stem = A.make_features([A.Conv(4, 5, 2), A.LRN, A.POOL, A.Conv(6, 3, 1, 1, groups=2), A.LRN,
                            A.POOL], in_channels=3)
    _gradcheck_module(stem, (2, 3, 23, 23))


def test_gradcheck_zfnet_layers_1_2():
    """ZFNet's layers 1-2 (7x7/2 and 5x5/2 convolutions, ReLU, ceil-mode pools, LRN) with
    few filters. (Tiny on purpose: at full width thousands of ReLU inputs sit within a
    finite-difference step of their kink and the central difference crosses some.)"""
    Z = zfnet_mod
    layers = Z.make_features([Z.Conv(4, 7, 2, 1), Z.POOL, Z.LRN, Z.Conv(6, 5, 2, 0), Z.POOL,
                              Z.LRN], in_channels=3)
    assert [type(m) for m in layers] == [type(m) for m in models.zfnet(num_classes=2).features[:8]]
    _gradcheck_module(layers, (2, 3, 31, 31))


# ---------------------------------------------------------------- training


@pytest.mark.parametrize("name, size, lr, kwargs", [
    ("alexnet", 63, 0.05, {}), ("alexnet_paper", 67, 0.001, {}), ("zfnet", 47, 0.05, {}),
    ("squeezenet1_0", 32, 0.01, {}), ("squeezenet1_1", 32, 0.01, {}),
    ("googlenet", 48, 0.05, {"aux_logits": False}),
    *[pytest.param(n, 32, 0.01, {}, marks=slow) for n in VGGS],
    pytest.param("inception_v3", 75, 0.05, {"aux_logits": False}, marks=slow),
])
def test_one_training_step_lowers_the_loss(name, size, lr, kwargs):
    """One SGD step on a fixed batch of 4, numba backend, dropout off (its masks would change
    the loss between the two evaluations). The learning rates are the largest of 0.05, 0.01,
    0.001 that lower the loss from the fresh initialization (alexnet_paper's unit biases
    and SqueezeNet's ReLU before the global pool overshoot at larger ones)."""
    minicnn.manual_seed(0)
    model = _no_dropout(models.MODELS[name](num_classes=10, **kwargs))
    one_step_lowers_loss(model, (3, size, size), num_classes=10, lr=lr, backend="numba")


@pytest.mark.parametrize("name, size", [("googlenet_paper", 79),
                                        pytest.param("googlenet", 64, marks=slow)])
def test_one_training_step_with_auxiliary_losses_lowers_the_loss(name, size):
    """With the auxiliary classifiers and googlenet_loss (weights 0.3), numba backend."""
    from minicnn.optim import SGD

    minicnn.manual_seed(0)
    model = _no_dropout(models.MODELS[name](num_classes=10))
    rng = np.random.default_rng(0)
    x = minicnn.tensor(rng.standard_normal((4, 3, size, size)).astype(np.float32))
    y = minicnn.tensor(rng.integers(0, 10, 4))
    with minicnn.use_backend("numba"):
        model.train()
        optimizer = SGD(model.parameters(), lr=0.05)
        loss = googlenet_mod.googlenet_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        after = googlenet_mod.googlenet_loss(model(x), y)
    assert np.isfinite(loss.item()) and after.item() < loss.item()


# ---------------------------------------------------------------- input checks

MIN_SIZES = {"alexnet": 63, "alexnet_paper": 67, "zfnet": 47, "vgg11_bn": 32,
             "googlenet": 15, "googlenet_paper": 31, "inception_v3": 75,
             "squeezenet1_0": 21, "squeezenet1_1": 17}


@pytest.mark.parametrize("name", [pytest.param(n, marks=slow) if n == "vgg11_bn" else n
                                  for n in MIN_SIZES])
def test_bad_input_names_the_model_and_its_minimum_size(name, built):
    """Wrong channel count, too small an input, a 3-d input: ValueError naming the model,
    what it expects and its minimum size (eval mode)."""
    model = built(name, num_classes=10) if name == "vgg11_bn" else built(name)
    model.eval()
    m = MIN_SIZES[name]
    expected = rf"{name} expects input \(N, 3, H, W\) with H, W >= {m}"
    with pytest.raises(ValueError, match=expected + r", got 1 channels"):
        model(minicnn.zeros((1, 1, m, m)))
    with pytest.raises(ValueError, match=expected + rf", got \(1, 3, {m - 1}, {m}\)"):
        model(minicnn.zeros((1, 3, m - 1, m)))
    with pytest.raises(ValueError, match=expected):
        model(minicnn.zeros((3, m, m)))


@pytest.mark.parametrize("name, size", [("googlenet_paper", 79), ("inception_v3", 299)])
def test_training_with_aux_needs_the_larger_size(name, size, built):
    """The auxiliary classifiers need a larger input in training mode: googlenet_paper's
    5x5/3 pool a 5x5 4a map (79x79 input), Inception v3's a 17x17 Mixed_6e map (299)."""
    model = built(name).train()
    with pytest.raises(ValueError, match=rf"{name} expects .* H, W >= {size}, got"):
        model(minicnn.zeros((1, 3, size - 1, size - 1)))
    model.eval()


@pytest.mark.parametrize("name", TORCHVISION_TWINS)
def test_min_sizes_are_torchvision_and_tight(name):
    """The minimum sizes equal torchvision's published ``min_size``, and torchvision's own
    model (on the meta device: shapes only) runs at that size and fails one pixel below."""
    kwargs = {"aux_logits": False} if name in ("googlenet", "inception_v3") else {}
    with torch.device("meta"):
        tv = _tv(name, **kwargs).eval()
        m = published(name)["min_size"][0]
        assert tv(torch.zeros(1, 3, m, m)).shape == (1, 1000)
        with pytest.raises(RuntimeError):
            tv(torch.zeros(1, 3, m - 1, m - 1))
    if name in MIN_SIZES:
        assert MIN_SIZES[name] == m
    elif name.startswith("vgg"):
        assert vgg_mod.VGG_MIN_INPUT_SIZE == m


def _runs(model, size: int) -> bool:
    """Does ``model`` give a non-empty output on a ``size`` x ``size`` input?"""
    try:
        with minicnn.no_grad():
            return model(minicnn.zeros((1, 3, size, size))).numel() > 0
    except (ValueError, IndexError):
        return False


@pytest.mark.parametrize("name", PAPER_ONLY)
def test_paper_min_sizes_are_tight(name, built):
    """Without the check, the layers of the paper networks run at the minimum size and fail
    one pixel below (the stated minimum is the real one)."""
    model = built(name).eval()
    m = MIN_SIZES[name]
    model.min_input_size = 1
    try:
        assert _runs(model, m) and not _runs(model, m - 1)
    finally:
        model.min_input_size = m


# ---------------------------------------------------------------- the registry and SqueezeNet


def test_registry_and_squeezenet_has_50x_fewer_parameters_than_alexnet(built):
    """Every constructor is in ``MODELS`` (the command line); SqueezeNet 1.0 has ~50x fewer
    parameters than AlexNet (1,248,424 vs torchvision's 61,100,840: 48.9x; vs the paper's
    grouped AlexNet 60,965,224: 48.8x)."""
    assert set(TORCHVISION_TWINS + PAPER_ONLY) <= set(models.MODELS)
    ratio = count_params(built("alexnet")) / count_params(built("squeezenet1_0"))
    assert ratio == pytest.approx(SQUEEZENET_RATIO, rel=0.05)
    assert count_params(built("alexnet_paper")) / count_params(built("squeezenet1_0")) == \
        pytest.approx(SQUEEZENET_RATIO, rel=0.05)
    gray = models.MODELS["squeezenet1_1"](num_classes=10, in_channels=1).eval()
    with minicnn.no_grad():
        assert gray(minicnn.zeros((2, 1, 32, 32))).shape == (2, 10)
    with pytest.raises(ValueError, match="transform_input=True needs in_channels=3"):
        models.googlenet(in_channels=1, transform_input=True)


def test_googlenet_parameter_counts_by_part_as_the_docstring_tabulates():
    """The "~5M parameters" of the deck against minicnn's counts (googlenet.py docstring):
    the body, the final linear layer, the auxiliary classifiers."""
    for build, body in ((models.googlenet_paper, 5_973_552), (models.googlenet, 5_599_904)):
        model = build()  # aux_logits=True, as torchvision's default
        parts = {}
        for name, p in model.named_parameters():
            part = name.split(".")[0] if name.startswith(("fc.", "aux")) else "body"
            parts[part] = parts.get(part, 0) + p.numel()
        assert parts["body"] == body
        assert parts["fc"] == 1024 * 1000 + 1000
        assert parts["aux1"] == pytest.approx(3.19e6, rel=0.001)
        assert parts["aux2"] == pytest.approx(3.19e6, rel=0.001)
        assert 5e6 < body < 6e6 < body + parts["fc"] < 7e6 + 1e5
