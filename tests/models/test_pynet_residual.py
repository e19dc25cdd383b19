"""PyNET's global residual (``residual=True``, the default of ``pynet_narrow``; not in the
paper): the in-network ISP against :func:`minicnn.baselines.bilinear_raw_to_rgb` (NumPy,
per image), every level of the untrained network against that image averaged down by
PyTorch, the parameters' gradients against central finite differences (float64), and the
published network left as it was (parameters, keys, sigmoid output)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minicnn
from minicnn.autograd import tensor
from minicnn.baselines import bilinear_raw_to_rgb
from minicnn.models.restoration import PyNET, pynet_narrow
from minicnn.models.restoration.pynet import OUTPUTS, bilinear_isp
from tests.helpers import max_rel_err
from tests.models import torch_references_restoration as ref
from tests.models.harness import count_params


def _raw(shape, seed=0):
    """Packed RAW with some values below 0 and above 1 (noise does that)."""
    return (np.random.default_rng(seed).random(shape) * 1.2 - 0.1).astype(np.float32)


@pytest.mark.parametrize("linear", [True, False])
def test_bilinear_isp_equals_the_baseline(linear):
    raw = _raw((2, 4, 6, 10))
    expected = np.stack([bilinear_raw_to_rgb(r, linear=linear) for r in raw])
    out = bilinear_isp(tensor(raw), linear)
    assert out.shape == (2, 3, 12, 20) and not out.requires_grad
    np.testing.assert_allclose(out.numpy(), expected, atol=2e-7)


def test_untrained_residual_pynet_narrow_is_bilinear():
    minicnn.manual_seed(0)
    model = pynet_narrow()  # residual by default
    assert model.residual and model.linear
    raw = _raw((1, 4, 32, 32), seed=1)
    out = model(tensor(raw)).detach().numpy()[0]
    np.testing.assert_allclose(out, bilinear_raw_to_rgb(raw[0], linear=True), atol=2e-7)


def test_every_level_is_the_averaged_bilinear_image_with_zeroed_outputs():
    """The hidden layers random (as after training), the output convolutions zeroed: every
    level returns the ISP's image averaged over 2^level blocks (torch's avg_pool2d)."""
    minicnn.manual_seed(1)
    model = PyNET(0, width=2, residual=True, linear=False)
    for name, p in model.named_parameters():
        p.data = np.random.default_rng(len(name)).standard_normal(p.shape).astype(np.float32)
    for name in (*OUTPUTS, "conv_l0_d1"):
        for p in getattr(model, name).parameters():
            p.data = np.zeros(p.shape, np.float32)
    raw = _raw((2, 4, 32, 32), seed=2)
    base = torch.from_numpy(np.stack([bilinear_raw_to_rgb(r, linear=False) for r in raw]))
    images = model.pyramid(tensor(raw))
    assert sorted(images) == [0, 1, 2, 3, 4, 5]
    for level, image in images.items():
        expected = torch.nn.functional.avg_pool2d(base, 2 ** level) if level else base
        np.testing.assert_allclose(image.detach().numpy(), expected.numpy(), atol=1e-6,
                                   err_msg=f"level {level}")


def test_residual_gradients_match_finite_differences():
    minicnn.manual_seed(2)
    model = PyNET(0, width=2, residual=True).double()
    for name in (*OUTPUTS, "conv_l0_d1"):  # away from the zero start, so every layer learns
        w = getattr(model, name).conv2d.weight
        w.data = 0.1 * np.random.default_rng(3).standard_normal(w.shape)
    raw = tensor(_raw((1, 4, 32, 32), seed=4).astype(np.float64))
    v = {lv: np.random.default_rng(10 + lv).standard_normal((1, 3, 64 >> lv, 64 >> lv))
         for lv in range(6)}

    def loss():  # a fixed random weighting of every level's image
        return sum((image * tensor(v[lv])).sum() for lv, image in model.pyramid(raw).items())

    model.zero_grad()
    loss().backward()
    # instance norm over level 5's 2x2 maps bends the loss sharply: a small step
    eps = 1e-8
    for name in ("conv_l0_d1.conv2d.weight", "conv_l2_out.conv2d.bias", "conv_t0.conv2d.bias",
                 "conv_l1_d1.conv_3a.conv2d.weight", "conv_l5_d2.conv_3b.instance.weight"):
        p = model.get_parameter(name)
        analytic = p.grad.numpy().ravel()
        for i in np.random.default_rng(5).choice(p.numel(), size=1):
            flat = p.array.reshape(-1)  # a view: the model sees the change
            old = flat[i]
            flat[i] = old + eps
            plus = loss().item()
            flat[i] = old - eps
            minus = loss().item()
            flat[i] = old
            numeric = (plus - minus) / (2 * eps)
            assert analytic[i] == pytest.approx(numeric, rel=1e-4, abs=1e-6), (name, i)


def test_published_network_is_unchanged():
    plain = pynet_narrow(residual=False)
    assert count_params(plain) == 2_985_370
    # the residual head without subpixel: level 0 also reads the ISP's image, 3x3x3x3 more
    residual = PyNET(0, width=8, residual=True)
    assert count_params(residual) == 2_985_370 + 81
    assert set(plain.state_dict()) == set(residual.state_dict())
    assert residual.conv_l0_d1.conv2d.weight.shape == (3, 4 + 3, 3, 3)
    assert PyNET().residual is False  # pynet() builds PyNET's defaults: the paper's sigmoid
    out = PyNET(0, width=2).pyramid(tensor(_raw((1, 4, 32, 32))))
    for image in out.values():
        a = image.detach().numpy()
        assert 0 < a.min() and a.max() < 1
    with pytest.raises(ValueError, match="residual=True needs the packed RGGB RAW"):
        PyNET(width=2, in_channels=3, residual=True)
    with pytest.raises(ValueError, match="subpixel=True .* needs residual=True"):
        PyNET(width=2, subpixel=True)


def test_cpu_variant_count_and_layers():
    """pynet_narrow(): 2,325,063 parameters, as the PyTorch transcription of its description
    (tests/models/torch_references_restoration.py, ``cpu=True``) has; the published keys
    (no instance norm on levels 2-5), dilated branches, the sub-pixel head."""
    model = pynet_narrow()
    assert count_params(model) == count_params(ref.PyNET(8, cpu=True)) == 2_325_063
    keys = set(model.state_dict())
    published = set(pynet_narrow(residual=False).state_dict())
    assert keys <= published and all(".instance." in k for k in published - keys)
    assert not any(k.startswith(("conv_l2", "conv_l3", "conv_l4", "conv_l5")) and ".instance."
                   in k for k in keys)
    assert "conv_l1_d7.conv_9a.instance.weight" in keys
    conv = model.conv_l1_d7.conv_9a.conv2d
    assert conv.weight.shape == (8, 32, 3, 3) and conv.dilation == (4, 4)
    assert model.conv_t0.conv2d.weight.shape == (12, 8, 3, 3)
    assert model.conv_l0_d1.conv2d.weight.shape == (3, 3, 3, 3)


@pytest.mark.parametrize("level", [0, 2])
def test_cpu_variant_matches_torch(level):
    """A tiny CPU variant (width 2; the zero-initialised output convolutions made random)
    against the PyTorch transcription: every level's image and the weights' gradients,
    float64."""
    minicnn.manual_seed(6)
    model = PyNET(level, width=2, instance_norm=False, residual=True, dilated=True,
                  subpixel=True, align_corners=False).double()
    for name in (*OUTPUTS, "conv_l0_d1", "conv_t0"):
        w = getattr(model, name).conv2d.weight
        w.data = 0.1 * np.random.default_rng(len(name)).standard_normal(w.shape)
    reference = ref.PyNET(2, cpu=True).double()
    reference.load_state_dict({k: torch.from_numpy(np.array(v.numpy()))
                               for k, v in model.state_dict().items()})
    raw = _raw((1, 4, 32, 32), seed=7).astype(np.float64)
    base = torch.from_numpy(bilinear_raw_to_rgb(raw[0], linear=True)[None].astype(np.float64))
    mine = minicnn.tensor(raw, requires_grad=True)
    images = model.pyramid(mine)
    theirs = reference(torch.tensor(raw), base)
    assert sorted(images) == list(range(level, 6))
    for lv, image in images.items():
        assert image.shape == tuple(theirs[lv].shape)
        assert max_rel_err(image, theirs[lv].detach()) < 1e-6, f"level {lv}"
    g = np.random.default_rng(8).standard_normal(images[level].shape)
    images[level].backward(minicnn.tensor(g))
    theirs[level].backward(torch.tensor(g))
    torch_params = dict(reference.named_parameters())
    for name, p in model.named_parameters():
        if p.grad is not None:
            assert max_rel_err(p.grad, torch_params[name].grad) < 1e-8, name
    assert (level == 0) == (model.conv_t0.conv2d.weight.grad is not None)
