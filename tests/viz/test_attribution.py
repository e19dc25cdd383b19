"""Occlusion, saliency and Grad-CAM against PyTorch on the same weights (and the occlusion
map against a direct loop over the square's positions)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minicnn.viz import grad_cam, occlusion_map, plot_attribution, saliency_map
from tests.viz.nets import images, twin


def test_saliency_equals_torch_autograd():
    model, reference = twin()
    x = images()
    classes = np.array([1, 0, 4])
    xt = torch.tensor(x, requires_grad=True)
    reference(xt)[torch.arange(3), torch.tensor(classes)].sum().backward()
    expected = xt.grad.abs().amax(1).numpy()
    np.testing.assert_allclose(saliency_map(model, x, classes), expected, rtol=1e-4, atol=1e-7)
    predicted = reference(torch.tensor(x)).argmax(1).numpy()
    np.testing.assert_allclose(saliency_map(model, x), saliency_map(model, x, predicted))


@pytest.mark.parametrize("layer", [4, 5])
def test_grad_cam_equals_torch_hooks(layer):
    model, reference = twin(seed=3, bn=True)
    x = images(seed=3)
    caught = {}

    def keep(module, args, output):
        output.retain_grad()
        caught["A"] = output

    handle = reference[layer + 1].register_forward_hook(keep)  # +1: the BatchNorm at 1
    scores = reference(torch.tensor(x))
    handle.remove()
    target = scores.argmax(1)
    scores[torch.arange(3), target].sum().backward()
    a, g = caught["A"], caught["A"].grad
    cam = torch.relu((g.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True)).detach()
    up = torch.nn.functional.interpolate(cam, size=(16, 16), mode="bilinear",
                                         align_corners=False)[:, 0].numpy()
    ours_small = grad_cam(model, x, str(layer + 1), upsample=False)
    np.testing.assert_allclose(ours_small, cam[:, 0].numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(grad_cam(model, x, str(layer + 1)), up, rtol=1e-4, atol=1e-6)
    assert up.max() > 0


def test_occlusion_equals_a_direct_loop():
    model, reference = twin(seed=4)
    x = images(n=2, seed=4)
    size, stride, value = 6, 5, 0.25
    ours = occlusion_map(model, x, target=[2, 3], size=size, stride=stride, value=value,
                         batch_size=3)
    rows = (16 - size) // stride + 1
    assert ours.shape == (2, rows, rows)
    for i, k in enumerate([2, 3]):
        for r in range(rows):
            for c in range(rows):
                occluded = x[i:i + 1].copy()
                occluded[..., r * stride:r * stride + size, c * stride:c * stride + size] = value
                with torch.no_grad():
                    p = torch.softmax(reference(torch.tensor(occluded)), 1)[0, k].item()
                assert abs(ours[i, r, c] - p) < 1e-5, (i, r, c)


def test_occlusion_default_target_is_the_prediction_and_bad_sizes_are_named():
    model, reference = twin(seed=4)
    x = images(n=2, seed=5)
    predicted = reference(torch.tensor(x)).argmax(1).numpy()
    np.testing.assert_allclose(occlusion_map(model, x), occlusion_map(model, x, predicted))
    with pytest.raises(ValueError, match="size must be in 1..16"):
        occlusion_map(model, x, size=17)
    with pytest.raises(ValueError, match="target 7 out of range for 5 classes"):
        saliency_map(model, x, 7)
    with pytest.raises(ValueError, match="expected feature maps"):
        grad_cam(model, x, "8")  # a Linear layer


def test_attribution_figure_is_saved_and_returned(tmp_path):
    model, _ = twin()
    x = images(n=1)
    maps = {"saliency": saliency_map(model, x)[0], "Grad-CAM": grad_cam(model, x, "4")[0],
            "occlusion": occlusion_map(model, x, size=4, stride=4)[0]}
    fig = plot_attribution(x[0], maps, tmp_path / "a.png", title="t")
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    assert len(fig.axes) >= 4
