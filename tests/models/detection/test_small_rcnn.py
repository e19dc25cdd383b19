"""The CPU-sized Faster / Mask R-CNN (minicnn.models.detection.small_rcnn) against the same
network built from torchvision's modules (its ``BasicBlock``, ``BackboneWithFPN``,
``FasterRCNN``/``MaskRCNN`` and heads), with torchvision's weights copied:

* the state dict keys and shapes, the parameter counts the docstring states;
* eval mode, float64: the same boxes, labels, scores and pasted masks;
* train mode, float64, the samplers' draws replayed: the same five losses and the same
  gradient of the box classifier (tests.models.detection.test_faster_rcnn's checks);
* on a 64 x 64 ``shapes`` scene: the output keys and shapes, and a gradient in every
  trainable parameter after one backward pass.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torchvision.models.detection import backbone_utils as tv_bu
from torchvision.models.detection import faster_rcnn as tv_frcnn
from torchvision.models.detection import mask_rcnn as tv_mrcnn
from torchvision.models.resnet import BasicBlock as TvBasicBlock

import minicnn
from minicnn.autograd import Tensor
from minicnn.data import load_data
from minicnn.models import detection
from minicnn.models.detection import small_rcnn
from tests.models.detection.test_faster_rcnn import _compare_eval, _compare_train, _randomize_
from tests.models.harness import count_params, key_shapes


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tv_stage(inplanes: int, planes: int) -> torch.nn.Sequential:
    downsample = torch.nn.Sequential(torch.nn.Conv2d(inplanes, planes, 1, 2, bias=False),
                                     torch.nn.BatchNorm2d(planes))
    return torch.nn.Sequential(TvBasicBlock(inplanes, planes, 2, downsample))


def _tv_small(mask: bool, num_classes: int, **kwargs):
    """small_rcnn's detector from torchvision's modules, with small_rcnn's sizes."""
    c0, c1, c2, c3 = small_rcnn.SMALL_WIDTHS
    body = torch.nn.Sequential()
    body.add_module("stem", torch.nn.Sequential(
        torch.nn.Conv2d(3, c0, 3, 2, 1, bias=False), torch.nn.BatchNorm2d(c0),
        torch.nn.ReLU(inplace=True)))
    body.add_module("layer1", _tv_stage(c0, c1))
    body.add_module("layer2", _tv_stage(c1, c2))
    body.add_module("layer3", _tv_stage(c2, c3))
    out = small_rcnn.FPN_CHANNELS
    backbone = tv_bu.BackboneWithFPN(body, {"layer1": "0", "layer2": "1", "layer3": "2"},
                                     [c1, c2, c3], out)
    sizes = small_rcnn.ANCHOR_SIZES
    rep = small_rcnn.REPRESENTATION_SIZE
    parts = dict(
        rpn_anchor_generator=torchvision.models.detection.anchor_utils.AnchorGenerator(
            sizes, ((0.5, 1.0, 2.0),) * len(sizes)),
        box_roi_pool=torchvision.ops.MultiScaleRoIAlign(["0", "1", "2"], 7, 2),
        box_head=tv_frcnn.TwoMLPHead(out * 49, rep),
        box_predictor=tv_frcnn.FastRCNNPredictor(rep, num_classes))
    if not mask:
        return tv_frcnn.FasterRCNN(backbone, None, **{**small_rcnn.SMALL_DEFAULTS, **parts,
                                                      **kwargs})
    layers = small_rcnn.MASK_LAYERS
    parts.update(mask_roi_pool=torchvision.ops.MultiScaleRoIAlign(["0", "1", "2"], 14, 2),
                 mask_head=tv_mrcnn.MaskRCNNHeads(out, layers, 1),
                 mask_predictor=tv_mrcnn.MaskRCNNPredictor(layers[-1], layers[-1], num_classes))
    return tv_mrcnn.MaskRCNN(backbone, None, **{**small_rcnn.SMALL_DEFAULTS, **parts, **kwargs})


def _pair(mask: bool, num_classes: int = 5, **kwargs):
    torch.manual_seed(0)
    tv_model = _tv_small(mask, num_classes, **kwargs)
    _randomize_(tv_model)
    ctor = detection.maskrcnn_small if mask else detection.fasterrcnn_small
    ours = ctor(num_classes=num_classes, **kwargs)
    assert key_shapes(ours.state_dict()) == key_shapes(tv_model.state_dict())
    ours.load_state_dict({k: v.detach().numpy() for k, v in tv_model.state_dict().items()})
    return ours.to(dtype=np.float64), tv_model.double()


@pytest.mark.parametrize("mask", [False, True])
def test_small_rcnn_parameter_counts(mask):
    """The counts of the module docstring, equal to the torchvision twin's."""
    expected = {(False, 5): 1_341_368, (True, 5): 1_431_997,
                (False, 11): 1_349_078, (True, 11): 1_440_097}
    ctor = detection.maskrcnn_small if mask else detection.fasterrcnn_small
    for k in (5, 11):
        model = ctor(num_classes=k)
        assert count_params(model) == sum(p.numel() for p in _tv_small(mask, k).parameters())
        assert count_params(model) == expected[mask, k]


# the Mask R-CNN runs the Faster R-CNN's code and more: only it in the default suite
@pytest.mark.parametrize("mask", [pytest.param(False, marks=pytest.mark.slow), True])
def test_small_rcnn_eval_equals_torchvision(mask):
    _compare_eval(*_pair(mask, box_score_thresh=0.1), mask)


@pytest.mark.parametrize("mask", [pytest.param(False, marks=pytest.mark.slow), True])
def test_small_rcnn_train_losses_equal_torchvision(mask):
    _compare_train(*_pair(mask), mask)


def test_maskrcnn_small_on_a_scene():
    """A 64 x 64 shapes scene: eval dicts with masks (D, 1, 64, 64) in [0, 1]; the train
    losses are finite and reach every trainable parameter."""
    train, _ = load_data("shapes", subset=2, task="detect")
    image, target = train[0]
    model = detection.maskrcnn_small(num_classes=len(train.classes))
    model.eval()
    with minicnn.no_grad():
        (out,) = model(Tensor(image[None]))
    assert list(out) == ["boxes", "labels", "scores", "masks"]
    d = out["boxes"].shape[0]
    assert d <= small_rcnn.SMALL_DEFAULTS["box_detections_per_img"]
    assert out["masks"].shape == (d, 1, 64, 64)
    masks = out["masks"].numpy()
    assert masks.min() >= 0 and masks.max() <= 1
    model.train()
    t = {k: Tensor(np.asarray(target[k])) for k in ("boxes", "labels", "masks")}
    losses = model(Tensor(image[None]), [t])
    assert sorted(losses) == ["loss_box_reg", "loss_classifier", "loss_mask",
                              "loss_objectness", "loss_rpn_box_reg"]
    assert all(np.isfinite(v.item()) for v in losses.values())
    sum(losses.values()).backward()
    missing = [k for k, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []


def test_bad_num_classes():
    with pytest.raises(ValueError, match=r"maskrcnn_small: num_classes must be an int >= 2"):
        detection.maskrcnn_small(num_classes=1)
    with pytest.raises(ValueError, match=r"fasterrcnn_small: num_classes .* got 'x'"):
        detection.fasterrcnn_small(num_classes="x")
