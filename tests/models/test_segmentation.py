"""Segmentation networks: U-Net, DeconvNet, ResU-Net, FCN-ResNet50.

* ``unet``: 572 -> 388 (Ronneberger et al. 2015, Fig. 1) and the parameter count summed by
  hand from Fig. 1's layers; the same-padding variant keeps odd and even sizes; outputs and
  gradients equal a PyTorch transcription with the same weights (crop-and-concatenate
  included); too-small inputs raise naming the sizes.
* ``deconvnet``: see its section below. ``resunet``, ``fcn_resnet50``: likewise.

Errors are ``max|minicnn - torch| / max(1, max|torch|)``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minicnn
from minicnn.models.segmentation import UNet, unet, unet_output_size
from tests.helpers import max_rel_err
from tests.models.harness import count_params


def _copy_to_torch(model, reference: torch.nn.Module) -> None:
    """minicnn weights -> a torch model with the same state_dict keys and shapes."""
    ours = model.state_dict()
    theirs = reference.state_dict()
    assert [(k, tuple(v.shape)) for k, v in ours.items()] == \
        [(k, tuple(v.shape)) for k, v in theirs.items()]
    reference.load_state_dict({k: torch.from_numpy(np.array(v.numpy())) for k, v in ours.items()})


def _compare_forward_backward(model, reference, x: np.ndarray, tol: float = 1e-10) -> dict:
    """float64: outputs and input gradients of ``model`` and ``reference`` agree."""
    model.double()
    reference.double()
    w = np.random.default_rng(1).standard_normal
    xm = minicnn.tensor(x, requires_grad=True)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    out_m, out_t = model(xm), reference(xt)
    assert out_m.shape == tuple(out_t.shape)
    g = w(out_m.shape)
    (out_m * minicnn.tensor(g)).sum().backward()
    (out_t * torch.from_numpy(g)).sum().backward()
    errs = {"out": max_rel_err(out_m.detach().numpy(), out_t.detach().numpy()),
            "grad": max_rel_err(xm.grad.numpy(), xt.grad.numpy())}
    assert errs["out"] <= tol and errs["grad"] <= tol, errs
    return errs


# ---------------------------------------------------------------- U-Net


def _conv(cin: int, cout: int, k: int = 3) -> int:
    return k * k * cin * cout + cout  # weights + biases


def test_unet_paper_parameter_count_from_fig1():
    """Fig. 1 of Ronneberger et al. 2015, layer by layer (1 input channel, 2 classes)."""
    widths = [64, 128, 256, 512, 1024]
    expected = 0
    cin = 1
    for w in widths:  # contracting path and bottleneck: two 3x3 convolutions per level
        expected += _conv(cin, w) + _conv(w, w)
        cin = w
    for w in reversed(widths[:-1]):  # expansive path: up-conv 2x2, then two 3x3 convolutions
        expected += _conv(2 * w, w, k=2) + _conv(2 * w, w) + _conv(w, w)
    expected += _conv(64, 2, k=1)  # the final 1x1 convolution
    assert expected == 31_030_658
    assert count_params(unet()) == expected


def test_unet_paper_572_gives_388():
    assert unet_output_size(572) == 388
    # the geometry does not depend on the width: a 1-wide copy keeps the test fast
    model = unet(base_width=1).eval()
    with minicnn.no_grad():
        out = model(minicnn.randn(1, 1, 572, 572))
    assert out.shape == (1, 2, 388, 388)


@pytest.mark.parametrize("size", [(32, 32), (33, 47), (17, 16), (21, 30)])
def test_unet_same_padding_keeps_the_size(size):
    model = unet(3, 5, base_width=4, depth=3, padding="same").eval()
    with minicnn.no_grad():
        out = model(minicnn.randn(2, 3, *size))
    assert out.shape == (2, 5, *size)


class _TorchDoubleConv(torch.nn.Sequential):
    def __init__(self, cin, cout, padding, batch_norm):
        layers = []
        for c in (cin, cout):
            layers.append(torch.nn.Conv2d(c, cout, 3, padding=padding, bias=not batch_norm))
            if batch_norm:
                layers.append(torch.nn.BatchNorm2d(cout))
            layers.append(torch.nn.ReLU())
        super().__init__(*layers)


class _TorchUNet(torch.nn.Module):
    """U-Net in PyTorch, written from Fig. 1: the reference for the crop-and-concatenate."""

    def __init__(self, cin, classes, width, depth, padding, batch_norm):
        super().__init__()
        self.same = padding == "same"
        pad = int(self.same)
        w = [width * 2 ** i for i in range(depth + 1)]
        self.encoder = torch.nn.ModuleList(
            _TorchDoubleConv(c, o, pad, batch_norm) for c, o in zip([cin, *w[:-2]], w[:-1]))
        self.bottleneck = _TorchDoubleConv(w[-2], w[-1], pad, batch_norm)
        self.upconvs = torch.nn.ModuleList(torch.nn.ConvTranspose2d(w[i + 1], w[i], 2, 2)
                                           for i in reversed(range(depth)))
        self.decoder = torch.nn.ModuleList(_TorchDoubleConv(2 * w[i], w[i], pad, batch_norm)
                                           for i in reversed(range(depth)))
        self.classifier = torch.nn.Conv2d(width, classes, 1)

    def forward(self, x):
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
            x = torch.nn.functional.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for up, block, skip in zip(self.upconvs, self.decoder, reversed(skips)):
            x = up(x)
            if self.same:  # zero-pad to the skip's size (bottom/right first)
                dh, dw = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]
                x = torch.nn.functional.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
            else:  # crop the skip's centre
                top = (skip.shape[2] - x.shape[2]) // 2
                left = (skip.shape[3] - x.shape[3]) // 2
                skip = skip[:, :, top:top + x.shape[2], left:left + x.shape[3]]
            x = block(torch.cat([skip, x], 1))
        return self.classifier(x)


@pytest.mark.parametrize("padding,size,batch_norm", [
    ("valid", (64, 61), False), ("valid", (45, 45), True), ("same", (19, 22), True),
    ("same", (16, 16), False),
])
def test_unet_equals_a_pytorch_transcription(padding, size, batch_norm):
    minicnn.manual_seed(0)
    model = unet(2, 3, base_width=4, depth=2 if padding == "valid" else 3, padding=padding,
                 batch_norm=batch_norm)
    reference = _TorchUNet(2, 3, 4, model.depth, padding, batch_norm)
    _copy_to_torch(model, reference)
    x = np.random.default_rng(0).standard_normal((2, 2, *size))
    _compare_forward_backward(model, reference, x)


@pytest.mark.parametrize("kwargs,shape,message", [
    ({}, (1, 1, 187, 300), r"needs H, W >= 188: an input of 187x300"),
    ({"padding": "same", "depth": 3}, (1, 1, 7, 30), r"needs H, W >= 8: an input of 7x30"),
    ({"in_channels": 3}, (1, 1, 200, 200), r"expects input \(N, 3, H, W\), got shape"),
])
def test_unet_bad_input_names_the_sizes(kwargs, shape, message):
    model = unet(base_width=1, **kwargs)
    with pytest.raises(ValueError, match=message):
        model(minicnn.zeros(*shape))


def test_unet_bad_arguments():
    with pytest.raises(ValueError, match="padding must be 'valid'"):
        UNet(padding="full")
    with pytest.raises(ValueError, match="depth must be a positive integer, got 0"):
        unet(depth=0)


# ---------------------------------------------------------------- FCN-ResNet50


def _sample_photo(name: str, width: int, height: int) -> np.ndarray:
    """One of scikit-learn's sample photos, resized and normalised as torchvision's
    segmentation presets do: ``(1, 3, height, width)`` float32."""
    from PIL import Image
    from sklearn.datasets import load_sample_image

    img = Image.fromarray(load_sample_image(name)).resize((width, height), Image.BILINEAR)
    x = np.asarray(img, np.float32) / 255
    x = (x - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    return x.astype(np.float32).transpose(2, 0, 1)[None].copy()


def _torch_fcn(**kwargs):
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.segmentation.fcn_resnet50(weights=None, weights_backbone=None,
                                                        **kwargs)


def _fcn_outputs_agree(tv, model, x: np.ndarray) -> dict:
    """eval outputs: minicnn float32 against torch float64, as accurate as torch float32."""
    tv.eval()
    model.eval()
    with torch.no_grad():
        expected32 = tv(torch.from_numpy(x))
        expected = tv.double()(torch.from_numpy(x).double())
    with minicnn.no_grad():
        actual = model(minicnn.tensor(x))
    assert list(actual) == list(expected)
    errs = {}
    for key in expected:
        assert actual[key].shape == tuple(expected[key].shape) == (x.shape[0], 21, *x.shape[2:])
        torch_err = max_rel_err(expected32[key].numpy(), expected[key].numpy())
        errs[key] = max_rel_err(actual[key].numpy(), expected[key].numpy())
        assert errs[key] <= max(1e-4, 3 * torch_err), (key, errs[key], torch_err)
    return errs


def test_fcn_resnet50_matches_torchvision(tmp_path):
    """Keys, parameter count (torchvision's published 35,322,218), weights loaded through
    ``weights=``, eval outputs on a real photo (scikit-learn's china.jpg at 40x32)."""
    from minicnn.models import export_torchvision
    from minicnn.models.segmentation import fcn_resnet50
    from tests.models.harness import key_shapes, published, randomize_batchnorm_

    tv = _torch_fcn(aux_loss=True)
    randomize_batchnorm_(tv, (3, 32, 32))
    path = export_torchvision("fcn_resnet50", tmp_path / "fcn.safetensors", model=tv)
    model = fcn_resnet50(weights=path)  # aux_loss defaults to True with weights
    assert key_shapes(model.state_dict()) == key_shapes(tv.state_dict())
    assert count_params(model) == count_params(tv) == published("fcn_resnet50")["num_params"]
    assert count_params(model) == 35_322_218
    _fcn_outputs_agree(tv, model, _sample_photo("china.jpg", 40, 32))


@pytest.mark.slow
def test_fcn_resnet50_variants_and_larger_photos(tmp_path):
    """No auxiliary head (the default), other class counts, the backbone's weights from a
    resnet50 file, and both sample photos at 96x72 and 75x61 (odd sizes)."""
    import torchvision

    from minicnn.models import export_torchvision, load_weights
    from minicnn.models.segmentation import fcn_resnet50
    from tests.models.harness import key_shapes, randomize_batchnorm_

    model = fcn_resnet50(num_classes=5)
    assert model.aux_classifier is None
    assert key_shapes(model.state_dict()) == key_shapes(_torch_fcn(num_classes=5).state_dict())

    torch.manual_seed(1)
    backbone = torchvision.models.resnet50()
    path = export_torchvision("resnet50", tmp_path / "r50.safetensors", model=backbone)
    model = fcn_resnet50(weights_backbone=path)
    for key, value in model.backbone.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), backbone.state_dict()[key].numpy())

    tv = _torch_fcn(aux_loss=True)
    randomize_batchnorm_(tv, (3, 32, 32), seed=3)
    path = export_torchvision("fcn_resnet50", tmp_path / "fcn.safetensors", model=tv)
    model = fcn_resnet50(aux_loss=True)
    load_weights(model, path)
    x = np.concatenate([_sample_photo("china.jpg", 96, 72), _sample_photo("flower.jpg", 96, 72)])
    _fcn_outputs_agree(tv, model, x)
    _fcn_outputs_agree(tv.float(), model.float(), _sample_photo("flower.jpg", 75, 61))


def test_fcn_resnet50_bad_input():
    from minicnn.models.segmentation import fcn_resnet50

    model = fcn_resnet50(num_classes=2)
    with pytest.raises(ValueError, match=r"fcn_resnet50 expects input \(N, 3, H, W\)"):
        model(minicnn.zeros(1, 1, 32, 32))
    with pytest.raises(TypeError, match="unexpected arguments"):
        fcn_resnet50(pretrained=True)


# ---------------------------------------------------------------- DeconvNet


class _TorchDeconvNet(torch.nn.Module):
    """DeconvNet in PyTorch for a VGG-style ``cfg`` (Noh et al. 2015, Table 1 mirrored), with
    minicnn's attribute names: the reference for the switches and the unpooling."""

    def __init__(self, cfg, num_classes, in_channels, fc_channels):
        super().__init__()
        layers, stages, stage, cin = [], [], [], in_channels
        for v in cfg:
            if v == "M":
                layers.append(torch.nn.MaxPool2d(2, 2, return_indices=True))
                stages.append(stage)
                stage = []
            else:
                layers += [torch.nn.Conv2d(cin, v, 3, padding=1), torch.nn.ReLU()]
                stage.append((cin, v))
                cin = v

        def cbr(conv, c):
            return torch.nn.Sequential(conv, torch.nn.BatchNorm2d(c), torch.nn.ReLU())

        self.features = torch.nn.Sequential(*layers)
        self.fc6 = cbr(torch.nn.Conv2d(cin, fc_channels, 7), fc_channels)
        self.fc7 = cbr(torch.nn.Conv2d(fc_channels, fc_channels, 1), fc_channels)
        self.deconv_fc6 = cbr(torch.nn.ConvTranspose2d(fc_channels, cin, 7), cin)
        self.unpool = torch.nn.MaxUnpool2d(2, 2)
        self.decoder = torch.nn.ModuleList()
        for i in reversed(range(len(stages))):
            mods = []
            for j, (a, b) in enumerate(reversed(stages[i])):
                out = b if i == 0 and j == len(stages[i]) - 1 else a
                mods += list(cbr(torch.nn.ConvTranspose2d(b, out, 3, padding=1), out))
            self.decoder.append(torch.nn.Sequential(*mods))
        self.classifier = torch.nn.Conv2d(stages[0][-1][1], num_classes, 1)

    def forward(self, x):
        switches, sizes = [], []
        for m in self.features:
            if isinstance(m, torch.nn.MaxPool2d):
                sizes.append(x.shape[-2:])
                x, idx = m(x)
                switches.append(idx)
            else:
                x = m(x)
        x = self.deconv_fc6(self.fc7(self.fc6(x)))
        for stage, idx, size in zip(self.decoder, reversed(switches), reversed(sizes)):
            x = stage(self.unpool(x, idx, output_size=size))
        return self.classifier(x)


SMALL_CFG = [4, "M", 6, 6, "M"]


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_deconvnet_switches_route_like_pytorch(train):
    """A two-stage DeconvNet and its PyTorch twin with the same weights: outputs and the
    gradients of the input (through both unpoolings, which scatter by the switches) agree;
    an odd width (29) exercises the unpooling's output_size."""
    from minicnn.models.segmentation import DeconvNet

    minicnn.manual_seed(0)
    model = DeconvNet(SMALL_CFG, num_classes=3, fc_channels=8)
    reference = _TorchDeconvNet(SMALL_CFG, 3, 3, 8)
    _copy_to_torch(model, reference)
    model.train(train)
    reference.train(train)
    # distinct values, so no pooling window has a tie whose switch would be ambiguous
    x = np.random.default_rng(0).permutation(2 * 3 * 28 * 29).reshape(2, 3, 28, 29) / 500.0
    errs = _compare_forward_backward(model, reference, x)
    assert model(minicnn.tensor(x)).shape == (2, 3, 28, 29)
    assert errs["grad"] <= 1e-10


def test_load_vgg16_weights_gives_vgg16_features(tmp_path):
    """torchvision's vgg16 weights (a state dict, and a file) -> the encoder computes
    torchvision's ``vgg16().features`` (float32, 1e-5 relative)."""
    import torchvision

    from minicnn.models.segmentation import DeconvNet, load_vgg16_weights
    from minicnn.serialization import save_arrays

    torch.manual_seed(0)
    # torchvision's vgg16().features (the 120M-parameter classifier is not needed)
    vgg = torch.nn.Module()
    vgg.features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"]).eval()
    for m in vgg.features:
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            torch.nn.init.normal_(m.bias, 0, 0.1)
    model = DeconvNet(fc_channels=4)  # VGG-16's encoder; small fc6/fc7 keep the test quick
    x = _sample_photo("china.jpg", 40, 32)
    with torch.no_grad():
        expected = vgg.features(torch.from_numpy(x)).numpy()
    load_vgg16_weights(model, vgg.state_dict())
    with minicnn.no_grad():
        actual = model.forward_features(minicnn.tensor(x))[0].numpy()
    assert actual.shape == expected.shape == (1, 512, 1, 1)
    assert max_rel_err(actual, expected) <= 1e-5
    features = {k: v.numpy() for k, v in vgg.state_dict().items() if k.startswith("features.")}
    save_arrays(features, tmp_path / "vgg16_features.safetensors")
    for p in model.features.parameters():
        p.data.array[...] = 0
    assert load_vgg16_weights(model, tmp_path / "vgg16_features.safetensors") is model
    for key, value in model.features.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), features[f"features.{key}"])

    with pytest.raises(ValueError, match=r"missing key 'features.28.weight'"):
        load_vgg16_weights(model, {k: v for k, v in features.items() if "28" not in k})
    bad = dict(features, **{"features.0.weight": np.zeros((64, 1, 3, 3), np.float32)})
    with pytest.raises(ValueError, match=r"features.0.weight: .*\(64, 1, 3, 3\).*\(64, 3, 3, 3\)"):
        load_vgg16_weights(model, bad)


def test_deconvnet_too_small_input():
    from minicnn.models.segmentation import DeconvNet, deconvnet

    model = DeconvNet(SMALL_CFG, fc_channels=4)
    with pytest.raises(ValueError, match=r"deconvnet expects input \(N, 3, H, W\) with H, W >= "
                                         r"28, got \(1, 3, 27, 40\)"):
        model(minicnn.zeros(1, 3, 27, 40))
    assert deconvnet.__name__ == "deconvnet" and DeconvNet(fc_channels=4).min_input_size == 224


def _deconvnet_params_from_table1(num_classes: int = 21) -> int:
    """Noh et al. 2015, Table 1, layer by layer: weights + biases, and BN's two per channel
    after fc6, fc7 and every deconvolution."""
    vgg16_convs = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256),
                   (256, 256), (256, 512), (512, 512), (512, 512), (512, 512), (512, 512),
                   (512, 512)]
    total = sum(_conv(a, b) for a, b in vgg16_convs)
    total += _conv(512, 4096, k=7) + 2 * 4096  # fc6 + BN
    total += _conv(4096, 4096, k=1) + 2 * 4096  # fc7 + BN
    total += _conv(4096, 512, k=7) + 2 * 512  # deconv-fc6 + BN
    deconvs = [(512, 512)] * 3 + [(512, 512), (512, 512), (512, 256)] \
        + [(256, 256), (256, 256), (256, 128)] + [(128, 128), (128, 64)] + [(64, 64), (64, 64)]
    total += sum(_conv(a, b) + 2 * b for a, b in deconvs)
    return total + _conv(64, num_classes, k=1)  # the output layer


@pytest.mark.slow
def test_deconvnet_paper_parameter_count_and_size():
    from minicnn.models.segmentation import deconvnet

    expected = _deconvnet_params_from_table1()
    assert expected == 251_797_205
    assert round(expected / 1e6) == 252  # SegNet (Badrinarayanan et al. 2017): 252M
    assert count_params(deconvnet()) == expected
    model = deconvnet(fc_channels=32).eval()  # the geometry of Table 1, narrow fc layers
    with minicnn.no_grad():
        for size in ((224, 224), (230, 250)):
            assert model(minicnn.randn(1, 3, *size)).shape == (1, 21, *size)


# ---------------------------------------------------------------- ResU-Net


def test_resunet_parameter_count_from_table1():
    """Zhang et al. 2018, Table I: 15 convolutions (7,782,913 parameters: the paper's "7.8
    million"); plus what the table leaves out: a 1x1 projection + BN on every shortcut that
    changes the shape, and the units' BatchNorms."""
    from minicnn.models.segmentation import resunet

    table = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512),
             (512, 512), (512 + 256, 256), (256, 256), (256 + 128, 128), (128, 128),
             (128 + 64, 64), (64, 64)]
    convs = sum(_conv(a, b) for a, b in table) + _conv(64, 1, k=1)
    assert convs == 7_782_913
    units = table[::2]  # (in, out) of the 7 units
    projections = sum(_conv(a, b, k=1) + 2 * b for a, b in units)  # all change the shape
    bns = sum(2 * b for _, b in units)  # bn2 of every unit
    bns += sum(2 * a for a, _ in units[1:])  # bn1 of every unit but the first
    model = resunet()
    table_names = [n for n, _ in model.named_parameters()
                   if ".conv" in n or n.startswith("classifier")]
    assert sum(int(np.prod(dict(model.named_parameters())[n].shape)) for n in table_names) \
        == convs
    assert count_params(model) == convs + projections + bns == 8_223_809


class _TorchUnit(torch.nn.Module):
    def __init__(self, cin, cout, stride=1, first=False):
        super().__init__()
        self.bn1 = None if first else torch.nn.BatchNorm2d(cin)
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, stride, 1)
        self.bn2 = torch.nn.BatchNorm2d(cout)
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, 1, 1)
        self.shortcut = torch.nn.Identity() if cin == cout and stride == 1 else \
            torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 1, stride), torch.nn.BatchNorm2d(cout))

    def forward(self, x):
        out = x if self.bn1 is None else torch.relu(self.bn1(x))
        return self.conv2(torch.relu(self.bn2(self.conv1(out)))) + self.shortcut(x)


class _TorchResUNet(torch.nn.Module):
    def __init__(self, cin, classes, width, depth, downsample):
        super().__init__()
        self.interp = downsample == "interpolate"
        s = 1 if self.interp else 2
        w = [width * 2 ** i for i in range(depth + 1)]
        self.encoder = torch.nn.ModuleList([_TorchUnit(cin, w[0], first=True)] + [
            _TorchUnit(w[i - 1], w[i], s) for i in range(1, depth)])
        self.bridge = _TorchUnit(w[-2], w[-1], s)
        self.decoder = torch.nn.ModuleList(_TorchUnit(w[i + 1] + w[i], w[i])
                                           for i in reversed(range(depth)))
        self.classifier = torch.nn.Conv2d(w[0], classes, 1)

    def _down(self, x):
        if not self.interp:
            return x
        return torch.nn.functional.interpolate(x, size=(x.shape[2] // 2, x.shape[3] // 2),
                                               mode="bilinear", align_corners=False)

    def forward(self, x):
        skips = []
        for i, unit in enumerate(self.encoder):
            x = unit(x if i == 0 else self._down(x))
            skips.append(x)
        x = self.bridge(self._down(x))
        for unit, skip in zip(self.decoder, reversed(skips)):
            x = torch.nn.functional.interpolate(x, size=skip.shape[2:], mode="bilinear",
                                                align_corners=False)
            x = unit(torch.cat([x, skip], 1))
        return self.classifier(x)


@pytest.mark.parametrize("downsample,size,train", [
    ("interpolate", (16, 16), True), ("interpolate", (19, 26), False), ("stride", (17, 24), True),
])
def test_resunet_equals_a_pytorch_transcription(downsample, size, train):
    from minicnn.models.segmentation import resunet

    minicnn.manual_seed(0)
    model = resunet(2, 3, base_width=4, depth=3, downsample=downsample)
    reference = _TorchResUNet(2, 3, 4, 3, downsample)
    _copy_to_torch(model, reference)
    model.train(train)
    reference.train(train)
    x = np.random.default_rng(0).standard_normal((2, 2, *size))
    _compare_forward_backward(model, reference, x)
    assert model(minicnn.tensor(x)).shape == (2, 3, *size)  # same size in and out


def test_resunet_bad_input():
    from minicnn.models.segmentation import resunet

    with pytest.raises(ValueError, match=r"resunet expects input \(N, 3, H, W\) with H, W >= 8, "
                                         r"got \(1, 3, 7, 30\)"):
        resunet(base_width=2)(minicnn.zeros(1, 3, 7, 30))
    with pytest.raises(ValueError, match="downsample must be 'interpolate' or 'stride'"):
        resunet(downsample="pool")


def test_intermediate_layer_getter():
    """torchvision's semantics: children up to the last one asked for, outputs in the
    model's order under their new names; an unknown child is an error naming it."""
    from minicnn.models import resnet18
    from minicnn.models._utils import IntermediateLayerGetter

    backbone = IntermediateLayerGetter(resnet18(), {"layer2": "deep", "layer1": "shallow"})
    assert list(backbone.keys()) == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2"]
    with minicnn.no_grad():
        out = backbone.eval()(minicnn.randn(1, 3, 32, 32))
    assert list(out) == ["shallow", "deep"]
    assert out["shallow"].shape == (1, 64, 8, 8) and out["deep"].shape == (1, 128, 4, 4)
    with pytest.raises(ValueError, match=r"\['layer5'\] are not children of ResNet"):
        IntermediateLayerGetter(resnet18(), {"layer5": "out"})
