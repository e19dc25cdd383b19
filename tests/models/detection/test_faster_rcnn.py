"""Faster R-CNN and Mask R-CNN against torchvision, with torchvision's weights copied.

* the named constructors: torchvision's state_dict keys and shapes, parameter counts
  (its published ``num_params`` for 91 classes), frozen parameters;
* eval mode, float64, two images of different sizes at a small ``min_size``: the same
  boxes, labels, scores (and pasted masks) as torchvision;
* train mode, float64: with the two samplers' random draws made the same (torchvision's
  draws are recorded and replayed, after checking that both libraries sample among the
  same labels), the same ``loss_objectness``, ``loss_rpn_box_reg``, ``loss_classifier``,
  ``loss_box_reg`` (and ``loss_mask``).

The default run uses a tiny backbone and heads (the same code path as the named models);
the ResNet-50 and MobileNetV3 models are marked slow. BatchNorm statistics and the torch
model's head weights are randomised first, so that the features depend on the image.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torchvision.models.detection import backbone_utils as tv_bu
from torchvision.models.detection import faster_rcnn as tv_frcnn
from torchvision.models.detection import mask_rcnn as tv_mrcnn

import minicnn
from minicnn import nn
from minicnn.autograd import Tensor
from minicnn.models import detection
from minicnn.models.detection.backbone_utils import BackboneWithFPN
from minicnn.ops import MultiScaleRoIAlign
from tests.models.detection.test_rpn import _Replay, record_sampler
from tests.models.detection.test_ssd import assert_same_detections
from tests.models.harness import count_params, key_shapes, randomize_batchnorm_

slow = pytest.mark.slow
SMALL = dict(min_size=64, max_size=96, rpn_pre_nms_top_n_test=200, rpn_post_nms_top_n_test=60,
             rpn_pre_nms_top_n_train=200, rpn_post_nms_top_n_train=60,
             rpn_batch_size_per_image=64, box_batch_size_per_image=32)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _images():
    """Two smooth random images of different sizes (3, 48, 72) and (3, 60, 50) in [0, 1]."""
    rng = np.random.default_rng(0)
    out = []
    for h, w in ((48, 72), (60, 50)):
        coarse = rng.uniform(0, 1, (3, h // 6 + 1, w // 6 + 1))
        img = np.kron(coarse, np.ones((6, 6)))[:, :h, :w]
        out.append(np.clip(img + 0.1 * rng.standard_normal((3, h, w)), 0, 1))
    return out


def _targets(masks: bool, empty: bool = False):
    """Targets of the two images; ``empty``: the second image has no object."""
    boxes = [np.array([[4.0, 6.0, 30.0, 40.0], [20.0, 10.0, 70.0, 45.0]]),
             np.array([[5.0, 20.0, 40.0, 58.0]])]
    labels = [np.array([1, 3]), np.array([2])]
    if empty:
        boxes[1], labels[1] = np.zeros((0, 4)), np.zeros(0, np.int64)
    sizes = [(48, 72), (60, 50)]
    targets = []
    for b, lab, (h, w) in zip(boxes, labels, sizes):
        t = {"boxes": b, "labels": lab}
        if masks:
            m = np.zeros((len(b), h, w), np.uint8)
            for j, (x1, y1, x2, y2) in enumerate(b.astype(int)):
                m[j, y1:y2, x1:(x1 + x2) // 2 + 2] = 1  # a mask smaller than its box
            t["masks"] = m
        targets.append(t)
    ours = [{k: Tensor(v) for k, v in t.items()} for t in targets]
    theirs = [{k: torch.tensor(v) for k, v in t.items()} for t in targets]
    return ours, theirs


def _randomize_(tv_model) -> None:
    """Random BN statistics in the backbone, and larger random head weights, so that the
    detections depend on the image and their scores are not tied."""
    randomize_batchnorm_(tv_model.backbone.body, (3, 64, 96))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        predictor = tv_model.roi_heads.box_predictor
        std = 3 / predictor.cls_score.in_features ** 0.5  # varied scores, moderate offsets
        for p in predictor.cls_score.parameters():
            p.copy_(std * torch.randn(p.shape, generator=g, dtype=p.dtype))
        for p in predictor.bbox_pred.parameters():
            p.copy_(0.01 * torch.randn(p.shape, generator=g, dtype=p.dtype))
        for p in tv_model.rpn.head.parameters():
            p.copy_(0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype))


def _copy(ours, tv_model):
    assert key_shapes(ours.state_dict()) == key_shapes(tv_model.state_dict())
    ours.load_state_dict({k: v.detach().numpy() for k, v in tv_model.state_dict().items()})
    return ours.to(dtype=np.float64)


def _tiny_body(lib):
    """Four stride-2 conv + BN + ReLU stages (8, 8, 16, 16 channels) in ``lib`` (torch.nn or
    minicnn.nn), children named "0".."3" as IntermediateLayerGetter needs."""
    stages, c_in = [], 3
    for c in (8, 8, 16, 16):
        stages.append(lib.Sequential(lib.Conv2d(c_in, c, 3, stride=2, padding=1),
                                     lib.BatchNorm2d(c), lib.ReLU()))
        c_in = c
    return lib.Sequential(*stages)


def _tiny_parts(lib, ns, mask: bool):
    """The same small Faster/Mask R-CNN in torchvision (``ns`` = its modules) or minicnn."""
    backbone = ns["BackboneWithFPN"](_tiny_body(lib), {"1": "0", "2": "1", "3": "2"},
                                     [8, 16, 16], 16)
    kwargs = dict(
        rpn_anchor_generator=ns["AnchorGenerator"](((16,), (24,), (40,), (64,)),
                                                   ((0.5, 1.0, 2.0),) * 4),
        box_roi_pool=ns["MultiScaleRoIAlign"](["0", "1", "2"], 7, 2),
        box_head=ns["TwoMLPHead"](16 * 49, 64), box_predictor=ns["FastRCNNPredictor"](64, 4))
    if mask:
        kwargs.update(mask_roi_pool=ns["MultiScaleRoIAlign"](["0", "1", "2"], 14, 2),
                      mask_head=ns["MaskRCNNHeads"](16, (16, 16), 1),
                      mask_predictor=ns["MaskRCNNPredictor"](16, 16, 4))
    cls = ns["MaskRCNN"] if mask else ns["FasterRCNN"]
    return cls(backbone, None, box_score_thresh=0.1, **kwargs, **SMALL)


def _ours_ns() -> dict:
    return {**vars(detection), **vars(detection.faster_rcnn), **vars(detection.roi_heads),
            "BackboneWithFPN": BackboneWithFPN, "MultiScaleRoIAlign": MultiScaleRoIAlign}


def _small_pair(mask: bool):
    torch.manual_seed(0)
    tv_ns = {**vars(tv_frcnn), **vars(tv_mrcnn), **vars(tv_bu),
             "MultiScaleRoIAlign": torchvision.ops.MultiScaleRoIAlign}
    tv_model = _tiny_parts(torch.nn, tv_ns, mask)
    _randomize_(tv_model)
    ours = _tiny_parts(nn, _ours_ns(), mask)
    return _copy(ours, tv_model), tv_model.double()


def _compare_eval(ours, tv_model, mask: bool):
    ours.eval(), tv_model.eval()
    images = _images()
    with torch.no_grad():
        out_t = tv_model([torch.tensor(x) for x in images])
    with minicnn.no_grad():
        out = ours([Tensor(x) for x in images])
    assert len(out) == len(out_t) == 2
    assert sum(len(d["labels"]) for d in out) >= 3
    for d, d_t in zip(out, out_t):
        assert list(d) == list(d_t)
        assert len(d["labels"]) > 0
        assert_same_detections(d, d_t, box_tol=1e-6, score_tol=1e-9)
        if mask:
            assert d["masks"].shape == tuple(d_t["masks"].shape)
            np.testing.assert_allclose(d["masks"].numpy(), d_t["masks"].numpy(), atol=1e-9)


def _compare_train(ours, tv_model, mask: bool, empty: bool = False):
    ours.train(), tv_model.train()
    for bn in [m for m in tv_model.modules() if isinstance(m, torch.nn.BatchNorm2d)]:
        bn.eval()  # the statistics as loaded: a batch of 2 images is not the point here
    for bn in [m for m in ours.modules() if isinstance(m, nn.BatchNorm2d)]:
        bn.eval()
    images = _images()
    targets, targets_t = _targets(mask, empty)
    rpn_draws = record_sampler(tv_model.rpn)
    roi_draws = record_sampler(tv_model.roi_heads)
    losses_t = tv_model([torch.tensor(x) for x in images], targets_t)
    ours.rpn.fg_bg_sampler = _Replay(rpn_draws)
    ours.roi_heads.fg_bg_sampler = _Replay(roi_draws)
    losses = ours([Tensor(x) for x in images], targets)
    expected = ["loss_classifier", "loss_box_reg"] + (["loss_mask"] if mask else []) + [
        "loss_objectness", "loss_rpn_box_reg"]
    assert list(losses) == list(losses_t) == expected
    for k in expected:
        assert losses_t[k].item() > 0, k
        # torchvision's RPN labels are float32, so its objectness loss is float32
        rtol = 1e-6 if k == "loss_objectness" else 1e-9
        np.testing.assert_allclose(losses[k].item(), losses_t[k].item(), rtol=rtol, err_msg=k)
    sum(losses.values(), Tensor(np.float64(0))).backward()
    sum(losses_t.values()).backward()
    name = "roi_heads.box_predictor.cls_score.weight"
    grad = dict(ours.named_parameters())[name].grad.numpy()
    grad_t = dict(tv_model.named_parameters())[name].grad.numpy()
    np.testing.assert_allclose(grad, grad_t, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("mask", [False, True])
def test_small_rcnn_eval_equals_torchvision(mask):
    _compare_eval(*_small_pair(mask), mask)


@pytest.mark.parametrize("mask,empty", [(False, False), (True, False), (True, True)])
def test_small_rcnn_train_losses_equal_torchvision(mask, empty):
    _compare_train(*_small_pair(mask), mask, empty)


# ---------------------------------------------------------------- the named models


@pytest.mark.parametrize("name", ["fasterrcnn_resnet50_fpn", "fasterrcnn_mobilenet_v3_large_fpn",
                                  "maskrcnn_resnet50_fpn"])
def test_named_models_state_dict_and_param_count(name):
    tv_model = getattr(torchvision.models.detection, name)(weights=None, weights_backbone=None)
    ours = getattr(detection, name)()
    assert key_shapes(ours.state_dict()) == key_shapes(tv_model.state_dict())
    assert count_params(ours) == sum(p.numel() for p in tv_model.parameters())
    published = {"fasterrcnn_resnet50_fpn": 41_755_286,
                 "fasterrcnn_mobilenet_v3_large_fpn": 19_386_354,
                 "maskrcnn_resnet50_fpn": 44_401_393}[name]
    # the published count is the trained model's, whose BatchNorms are frozen (buffers)
    bn_affine = sum(m.weight.numel() + m.bias.numel() for m in ours.modules()
                    if isinstance(m, nn.BatchNorm2d))
    assert count_params(ours) - bn_affine == published
    trainable = [k for k, p in ours.named_parameters() if p.requires_grad]
    assert trainable == [k for k, p in tv_model.named_parameters() if p.requires_grad]


@slow
def test_trainable_layers_and_frozen_bn_with_a_weight_file(tmp_path):
    """With ``weights_backbone`` (a file of torchvision's ResNet-50, BatchNorm statistics
    included), the backbone has FrozenBatchNorm2d and layers 2..4 train, as torchvision's
    with its pretrained backbone."""
    torch.manual_seed(0)
    tv_backbone = tv_bu._resnet_fpn_extractor(
        torchvision.models.resnet50(norm_layer=torchvision.ops.FrozenBatchNorm2d), 3)
    tv_model = tv_frcnn.FasterRCNN(tv_backbone, num_classes=3)
    backbone_file = tmp_path / "r50.safetensors"
    minicnn.models.export_torchvision("resnet50", backbone_file)
    ours = detection.fasterrcnn_resnet50_fpn(weights_backbone=backbone_file, num_classes=3)
    assert key_shapes(ours.state_dict()) == key_shapes(tv_model.state_dict())
    assert "backbone.body.bn1.num_batches_tracked" not in ours.state_dict()
    trainable = [k for k, p in ours.named_parameters() if p.requires_grad]
    assert trainable == [k for k, p in tv_model.named_parameters() if p.requires_grad]
    assert trainable[0] == "backbone.body.layer2.0.conv1.weight"
    loaded = ours.state_dict()["backbone.body.layer3.0.bn2.running_var"]
    file = minicnn.serialization.load_arrays(backbone_file)["layer3.0.bn2.running_var"]
    np.testing.assert_array_equal(loaded.numpy(), file)


@slow
@pytest.mark.parametrize("name,mask", [("fasterrcnn_resnet50_fpn", False),
                                       ("maskrcnn_resnet50_fpn", True)])
def test_resnet50_models_equal_torchvision(name, mask, tmp_path):
    torch.manual_seed(0)
    tv_model = getattr(torchvision.models.detection, name)(
        weights=None, weights_backbone=None, num_classes=5, box_score_thresh=0.01, **SMALL)
    _randomize_(tv_model)
    path = tmp_path / "model.safetensors"
    minicnn.models.export_torchvision(name, path, model=tv_model)
    ours = getattr(detection, name)(num_classes=5, box_score_thresh=0.01, **SMALL)
    minicnn.models.load_weights(ours, path)  # the weight-loading path of weights=
    ours = ours.to(dtype=np.float64)
    tv_model = tv_model.double()
    _compare_eval(ours, tv_model, mask)
    _compare_train(ours, tv_model, mask)


@slow
def test_mobilenet_model_equals_torchvision():
    torch.manual_seed(0)
    tv_model = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_fpn(
        weights=None, weights_backbone=None, num_classes=4, box_score_thresh=0.01, **SMALL)
    _randomize_(tv_model)
    ours = _copy(detection.fasterrcnn_mobilenet_v3_large_fpn(num_classes=4, box_score_thresh=0.01,
                                                             **SMALL), tv_model)
    _compare_eval(ours, tv_model.double(), False)


# ---------------------------------------------------------------- bad input


def test_bad_input():
    model = _tiny_parts(nn, _ours_ns(), False)  # 4 classes
    images = [Tensor(x.astype(np.float32)) for x in _images()]
    with pytest.raises(ValueError, match="targets must be given"):
        model(images)
    targets, _ = _targets(False)
    bad = [dict(targets[0]), targets[1]]
    bad[0]["boxes"] = Tensor(np.array([[10.0, 10.0, 5.0, 20.0], [1.0, 1.0, 9.0, 9.0]]))
    with pytest.raises(ValueError, match="positive width and height"):
        model(images, bad)
    bad[0] = {"boxes": targets[0]["boxes"], "labels": Tensor(np.array([1, 4]))}
    with pytest.raises(ValueError, match=r"labels'\] must be in \[1, 3\]"):
        model(images, bad)
    model.eval()
    with pytest.raises(ValueError, match=r"images\[1\] has 1 channels"):
        model([images[0], Tensor(np.zeros((1, 40, 40), np.float32))])
    with pytest.raises(ValueError, match="num_classes"):
        detection.FasterRCNN(model.backbone, num_classes=None)
    mask_model = _tiny_parts(nn, _ours_ns(), True)
    with pytest.raises(ValueError, match="masks"):
        mask_model(images, targets)
