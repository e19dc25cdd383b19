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
from tests.models.harness import count_params


def _rel_err(actual, expected) -> float:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(actual - expected)) / max(1.0, float(np.max(np.abs(expected)))))


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
    errs = {"out": _rel_err(out_m.detach().numpy(), out_t.detach().numpy()),
            "grad": _rel_err(xm.grad.numpy(), xt.grad.numpy())}
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
        torch_err = _rel_err(expected32[key].numpy(), expected[key].numpy())
        errs[key] = _rel_err(actual[key].numpy(), expected[key].numpy())
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
