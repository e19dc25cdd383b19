"""SSD (``ssd300_vgg16``, ``ssdlite320_mobilenet_v3_large`` and the ``SSD`` class) against
torchvision.

* torchvision's state_dict keys, shapes and parameter counts (its published ``num_params``);
* a small SSD (the ``SSD`` class on a two-convolution backbone, same code path as the big
  ones: transform, default boxes, matching, loss, postprocessing) in float64: detections,
  both loss terms and every parameter gradient equal torchvision's, including images
  without boxes and tied classification losses in the hard-negative mining;
* the two named models with torchvision's (seeded, random) weights copied over, on
  scikit-learn's two sample photographs: eval detections (boxes, scores, labels) and the
  training loss dict equal torchvision's in float32. The default sample runs SSDLite with
  5 classes; the 91-class models are marked slow.

Before the photo comparisons the torch model's BatchNorm statistics are calibrated on a
random batch and the classification convolutions get random biases: with torchvision's
initialisation alone (weights N(0, 0.03^2) through BN layers that expect unit variance) the
features hardly depend on the image, and many default boxes get exactly the same scores,
whose order no library defines.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
import torchvision
from sklearn.datasets import load_sample_images
from torchvision.models.detection import ssd as tv_ssd
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator as TvDefaultBoxGenerator

import minicnn
from minicnn import nn
from minicnn.models import detection
from minicnn.models.detection import SSD, DefaultBoxGenerator
from minicnn.nn import functional as F
from tests.helpers import max_rel_err
from tests.models.harness import count_params, key_shapes

slow = pytest.mark.slow


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _copy_weights(model, tv_model, dtype=np.float32):
    model.load_state_dict({k: v.detach().numpy() for k, v in tv_model.state_dict().items()})
    return model.to(dtype=dtype)


def assert_same_detections(ours: dict, theirs: dict, box_tol: float, score_tol: float) -> None:
    """The same detections: equal counts and labels in order, and each of torchvision's
    matched one to one by a detection with the same label, a score within ``score_tol`` and
    a box within ``box_tol`` pixels (scores closer than float32 rounding may swap places)."""
    labels, labels_t = ours["labels"].numpy(), theirs["labels"].numpy()
    assert len(labels) == len(labels_t), f"{len(labels)} detections != {len(labels_t)}"
    assert labels.dtype == np.int64
    boxes, scores = ours["boxes"].numpy(), ours["scores"].numpy()
    boxes_t, scores_t = theirs["boxes"].numpy(), theirs["scores"].numpy()
    free = np.ones(len(labels), bool)
    for j in range(len(labels_t)):
        near = (free & (labels == labels_t[j]) & (np.abs(scores - scores_t[j]) <= score_tol)
                & (np.abs(boxes - boxes_t[j]).max(axis=1) <= box_tol))
        assert near.any(), (f"torchvision's detection {j} (label {labels_t[j]}, score "
                            f"{scores_t[j]}, box {boxes_t[j]}) has no match")
        free[np.flatnonzero(near)[0]] = False
    # and in torchvision's order wherever the scores are not nearly tied
    assert (np.diff(scores) <= score_tol).all()


# ---------------------------------------------------------------- structure


def test_ssd300_vgg16_state_dict_and_param_count_match_torchvision():
    with torch.device("meta"):
        tv = torchvision.models.detection.ssd300_vgg16(weights=None, weights_backbone=None)
    model = detection.ssd300_vgg16()
    assert key_shapes(model.state_dict()) == key_shapes(tv.state_dict())
    published = tv_ssd.SSD300_VGG16_Weights.COCO_V1.meta["num_params"]
    assert count_params(model) == count_params(tv) == published == 35_641_826
    assert model.backbone.features[16].ceil_mode  # pool3: 75 -> 38
    assert len(model.anchor_generator.num_anchors_per_location()) == 6


def test_ssdlite320_state_dict_and_param_count_match_torchvision():
    from torchvision.models.detection import ssdlite as tv_ssdlite

    with torch.device("meta"):
        tv = torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None,
                                                                       weights_backbone=None)
    model = detection.ssdlite320_mobilenet_v3_large()
    assert key_shapes(model.state_dict()) == key_shapes(tv.state_dict())
    published = tv_ssdlite.SSDLite320_MobileNet_V3_Large_Weights.COCO_V1.meta["num_params"]
    assert count_params(model) == count_params(tv) == published == 3_440_060
    bn = model.head.classification_head.module_list[0][0][1]
    assert (bn.eps, bn.momentum) == (0.001, 0.03)


def _frozen_after_backbone_file(tmp_path, ctor, backbone, trainable: int) -> list[str]:
    """The frozen parameters of ``ctor(weights_backbone=<backbone's weights>)``."""
    from minicnn.serialization import save_arrays

    path = tmp_path / "backbone.safetensors"
    save_arrays({k: v.numpy() for k, v in backbone.state_dict().items()}, path)
    model = ctor(weights_backbone=path, trainable_backbone_layers=trainable)
    first = next(iter(backbone.state_dict()))
    np.testing.assert_array_equal(model.backbone.state_dict()[first.replace(
        "features.", "features.0.", 1) if "mobilenet" in ctor.__name__ else first].numpy(),
        backbone.state_dict()[first].numpy())
    return [n for n, p in model.backbone.named_parameters() if not p.requires_grad]


@pytest.mark.parametrize("trainable", [0, 3, 6])
def test_ssdlite_trainable_backbone_layers_freeze_as_torchvision(tmp_path, trainable):
    """With a backbone weight file, the first stages are frozen as torchvision freezes them
    (its ``_mobilenet_extractor`` on the same MobileNetV3, full tail)."""
    from torchvision.models.detection import ssdlite as tv_ssdlite

    norm = tv_ssdlite.partial(torch.nn.BatchNorm2d, eps=0.001, momentum=0.03)
    with torch.device("meta"):
        tv = tv_ssdlite._mobilenet_extractor(
            torchvision.models.mobilenet_v3_large(norm_layer=norm), trainable, norm)
    frozen = _frozen_after_backbone_file(tmp_path, detection.ssdlite320_mobilenet_v3_large,
                                         minicnn.models.mobilenet_v3_large(), trainable)
    assert frozen == [n for n, p in tv.named_parameters() if not p.requires_grad]
    assert (len(frozen) > 0) == (trainable < 6)
    with pytest.warns(UserWarning, match="trainable_backbone_layers"):
        detection.ssdlite320_mobilenet_v3_large(trainable_backbone_layers=3)


@slow
def test_ssd300_trainable_backbone_layers_freeze_as_torchvision(tmp_path):
    with torch.device("meta"):
        tv = tv_ssd._vgg_extractor(torchvision.models.vgg16(), False, 2)
    frozen = _frozen_after_backbone_file(tmp_path, detection.ssd300_vgg16,
                                         minicnn.models.vgg16(), 2)
    assert frozen == [n for n, p in tv.named_parameters() if not p.requires_grad]
    assert len(frozen) == 14  # conv1_1 .. conv3_3, weights and biases


# ---------------------------------------------------------------- a small SSD, float64


class TinyBackbone(nn.Module):
    """Two stride-2 convolutions; both maps are outputs (what SSD's backbones return)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.out_channels = [8, 16]

    def forward(self, x):
        a = F.relu(self.conv1(x))
        return OrderedDict([("0", a), ("1", F.relu(self.conv2(a)))])


class TorchTinyBackbone(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.out_channels = [8, 16]

    def forward(self, x):
        a = torch.relu(self.conv1(x))
        return OrderedDict([("0", a), ("1", torch.relu(self.conv2(a)))])


TINY = dict(size=(64, 48), num_classes=4, score_thresh=0.2, topk_candidates=50,
            detections_per_img=40, image_mean=[0.4, 0.5, 0.6], image_std=[0.2, 0.25, 0.3])


def tiny_pair(seed: int = 0, **overrides):
    """The small SSD in minicnn and torchvision, same float64 weights."""
    kwargs = {**TINY, **overrides}
    size, num_classes = kwargs.pop("size"), kwargs.pop("num_classes")
    torch.manual_seed(seed)
    tv = tv_ssd.SSD(TorchTinyBackbone(), TvDefaultBoxGenerator([[2], [2, 3]]), size,
                    num_classes, **kwargs)
    with torch.no_grad():  # class scores that differ from box to box
        for conv in tv.head.classification_head.module_list:
            conv.weight.mul_(4.0)
            conv.bias.normal_(0.0, 1.0)
    model = SSD(TinyBackbone(), DefaultBoxGenerator([[2], [2, 3]]), size, num_classes, **kwargs)
    return _copy_weights(model, tv, np.float64), tv.double()


def tiny_data(seed: int = 0):
    """Three images of different sizes; the second has no objects."""
    rng = np.random.default_rng(seed)
    images = [rng.random((3, 40, 70)), rng.random((3, 55, 45)), rng.random((3, 48, 64))]
    targets = [
        {"boxes": np.array([[5.0, 4.0, 30.0, 30.0], [40.0, 10.0, 68.0, 38.0],
                            [10.0, 20.0, 12.5, 23.0]]), "labels": np.array([1, 3, 2])},
        {"boxes": np.zeros((0, 4)), "labels": np.zeros(0, np.int64)},
        {"boxes": np.array([[0.0, 0.0, 64.0, 48.0]]), "labels": np.array([2])},
    ]
    return images, targets


def _as_minicnn(images, targets, requires_grad=False):
    ims = [minicnn.tensor(i, requires_grad=requires_grad) for i in images]
    return ims, [{k: minicnn.tensor(v) for k, v in t.items()} for t in targets]


def _as_torch(images, targets, requires_grad=False):
    ims = [torch.tensor(i, requires_grad=requires_grad) for i in images]
    return ims, [{k: torch.from_numpy(v) for k, v in t.items()} for t in targets]


def test_tiny_ssd_detections_equal_torchvision_float64():
    model, tv = tiny_pair()
    images, _ = tiny_data()
    model.eval()
    tv.eval()
    with minicnn.no_grad():
        ours = model(_as_minicnn(images, [])[0])
    with torch.no_grad():
        theirs = tv(_as_torch(images, [])[0])
    assert len(ours) == 3
    for o, t in zip(ours, theirs, strict=True):
        assert 10 <= len(t["scores"]) <= TINY["detections_per_img"]
        np.testing.assert_array_equal(o["labels"].numpy(), t["labels"].numpy())
        assert max_rel_err(o["scores"], t["scores"]) <= 1e-12
        assert max_rel_err(o["boxes"], t["boxes"]) <= 1e-12
    # an (N, 3, H, W) Tensor works like the list of its images
    batch = np.stack([images[2], images[2]])
    with minicnn.no_grad():
        stacked = model(minicnn.tensor(batch))
    np.testing.assert_array_equal(stacked[1]["boxes"].numpy(), ours[2]["boxes"].numpy())


def test_tiny_ssd_loss_and_gradients_equal_torchvision_float64():
    """Both loss terms, and the gradient of their sum for every parameter and the images."""
    model, tv = tiny_pair()
    images, targets = tiny_data()
    model.train()
    tv.train()
    ims, tgs = _as_minicnn(images, targets, requires_grad=True)
    losses = model(ims, tgs)
    ims_t, tgs_t = _as_torch(images, targets, requires_grad=True)
    losses_t = tv(ims_t, tgs_t)
    assert set(losses) == {"bbox_regression", "classification"}
    for key in losses_t:
        assert max_rel_err(losses[key].item(), losses_t[key].item()) <= 1e-12, key
    (losses["bbox_regression"] + losses["classification"]).backward()
    (losses_t["bbox_regression"] + losses_t["classification"]).backward()
    grads_t = dict(tv.named_parameters())
    for name, p in model.named_parameters():
        assert max_rel_err(p.grad, grads_t[name].grad) <= 1e-10, name
    for im, im_t in zip(ims, ims_t, strict=True):
        assert max_rel_err(im.grad, im_t.grad) <= 1e-10


def test_hard_negative_mining_ties_as_torchvision():
    """Hard negatives among exactly tied losses. The loss equals torchvision's and so do the
    positives and the number and loss values of the negatives picked. Which of several tied
    negatives torchvision picks is unspecified (``torch.sort`` is not stable beyond a few
    elements); minicnn picks the first in index order (a stable sort)."""
    model, tv = tiny_pair()
    images, targets = tiny_data()
    _, tgs = _as_minicnn(images[:1], targets[:1])
    _, tgs_t = _as_torch(images[:1], targets[:1])
    anchors = model.anchor_generator(
        detection.ImageList(minicnn.zeros(1, 3, 48, 64, dtype=np.float64), [(48, 64)]),
        [minicnn.zeros(1, 1, 24, 32, dtype=np.float64),
         minicnn.zeros(1, 1, 12, 16, dtype=np.float64)])
    num_anchors = anchors[0].shape[0]
    rng = np.random.default_rng(5)
    logits = np.zeros((1, num_anchors, 4))  # all negatives tie ...
    logits[0, rng.choice(num_anchors, 6, replace=False)] = rng.normal(size=(6, 4))  # ... but 6
    logits[0, ::97, 0] = -1.0  # and a group with a higher loss, also tied
    regression = rng.normal(size=(1, num_anchors, 4))
    matched = model.proposal_matcher(minicnn.ops.box_iou(tgs[0]["boxes"], anchors[0]))
    cls = minicnn.tensor(logits, requires_grad=True)
    out = model.compute_loss(tgs, {"bbox_regression": minicnn.tensor(regression),
                                   "cls_logits": cls}, anchors, [matched])
    cls_t = torch.tensor(logits, requires_grad=True)
    anchors_t = [torch.from_numpy(anchors[0].numpy())]
    out_t = tv.compute_loss(tgs_t, {"bbox_regression": torch.from_numpy(regression),
                                    "cls_logits": cls_t}, anchors_t,
                            [torch.from_numpy(matched.numpy())])
    for key in out_t:
        assert max_rel_err(out[key].item(), out_t[key].item()) <= 1e-13, key
    out["classification"].backward()
    out_t["classification"].backward()

    positive = matched.numpy() >= 0
    num_pos = int(positive.sum())
    picked = np.abs(cls.grad.numpy()[0]).sum(-1) > 0
    picked_t = np.abs(cls_t.grad.numpy()[0]).sum(-1) > 0
    assert num_pos >= 3 and picked.sum() == picked_t.sum() == 4 * num_pos
    np.testing.assert_array_equal(picked[positive], picked_t[positive])
    np.testing.assert_allclose(cls.grad.numpy()[0, positive], cls_t.grad.numpy()[0, positive],
                               rtol=1e-13)
    target = np.zeros(num_anchors, np.int64)  # background everywhere but the positives
    per_box = torch.nn.functional.cross_entropy(
        torch.from_numpy(logits[0]), torch.from_numpy(target), reduction="none").numpy()
    negatives, negatives_t = picked & ~positive, picked_t & ~positive
    np.testing.assert_array_equal(np.sort(per_box[negatives]), np.sort(per_box[negatives_t]))
    boundary = per_box[negatives].min()  # the tied group the choice cut through
    tied = np.flatnonzero(~positive & (per_box == boundary))
    assert negatives[tied].sum() < len(tied)  # the test does cut through a tie
    chosen = np.flatnonzero(negatives & (per_box == boundary))
    np.testing.assert_array_equal(chosen, tied[:len(chosen)])  # the first ones


def test_backbone_without_out_channels_gets_them_from_a_forward_pass():
    """As torchvision: without ``backbone.out_channels`` the head's input channels come from
    a forward pass at the model's size (in eval mode; the backbone's mode is restored)."""
    from minicnn.models.detection._utils import retrieve_out_channels

    backbone = TinyBackbone()
    del backbone.out_channels
    assert retrieve_out_channels(backbone, (64, 48)) == [8, 16]
    assert backbone.training
    model = SSD(backbone, DefaultBoxGenerator([[2], [2, 3]]), (64, 48), 3)
    assert model.head.classification_head.module_list[1].in_channels == 16


def test_ssd_bad_targets_and_images():
    model, _ = tiny_pair()
    images, targets = tiny_data()
    ims, tgs = _as_minicnn(images, targets)
    with pytest.raises(ValueError, match="targets must be given in training mode"):
        model(ims)
    with pytest.raises(ValueError, match="3 images but 2 targets"):
        model(ims, tgs[:2])
    bad = [dict(t) for t in tgs]
    bad[2] = {"boxes": minicnn.tensor([[10.0, 5.0, 8.0, 20.0]]), "labels": minicnn.tensor([1])}
    with pytest.raises(ValueError,
                       match=r"positive width and height.*targets\[2\]\['boxes'\]\[0\]"):
        model(ims, bad)
    bad[2] = {"boxes": minicnn.tensor([[1.0, 5.0, 8.0, 20.0]]), "labels": minicnn.tensor([4])}
    with pytest.raises(ValueError, match=r"targets\[2\]\['labels'\] must be in \[1, 3\]"):
        model(ims, bad)
    bad[2] = {"boxes": minicnn.tensor([[1.0, 5.0, 8.0, 20.0]]), "labels": minicnn.tensor([0])}
    with pytest.raises(ValueError, match="0 is the background"):
        model(ims, bad)
    bad[2] = {"boxes": minicnn.tensor([1.0, 5.0, 8.0, 20.0]), "labels": minicnn.tensor([1])}
    with pytest.raises(ValueError, match=r"targets\[2\]\['boxes'\] must be a float Tensor of "
                                         r"shape \(K, 4\)"):
        model(ims, bad)
    bad[2] = {"boxes": minicnn.tensor([[1.0, 5.0, 8.0, 20.0]]), "labels": minicnn.tensor([1, 2])}
    with pytest.raises(ValueError, match=r"targets\[2\]\['labels'\] must be an integer Tensor"):
        model(ims, bad)
    bad[2] = {"boxes": np.array([[1.0, 5.0, 8.0, 20.0]]), "labels": minicnn.tensor([1])}
    with pytest.raises(TypeError, match=r"targets\[2\]\['boxes'\] must be a Tensor"):
        model(ims, bad)
    bad[2] = {"labels": minicnn.tensor([1])}
    with pytest.raises(ValueError, match=r"targets\[2\] must be a dict with 'boxes'"):
        model(ims, bad)
    model.eval()
    with pytest.raises(ValueError, match=r"images\[0\] must be a \(3, H, W\) Tensor"):
        model([minicnn.zeros(1, 3, 8, 8)])
    with pytest.raises(ValueError, match="images must be a list"):
        model(minicnn.zeros(3, 8, 8))
    with pytest.raises(TypeError, match="non-empty list"):
        model([])
    with pytest.raises(ValueError, match="num_classes"):
        SSD(TinyBackbone(), DefaultBoxGenerator([[2], [2, 3]]), (64, 48), 1)
    with pytest.raises(ValueError, match="aspect-ratio lists"):
        SSD(TinyBackbone(), DefaultBoxGenerator([[2]]), (64, 48), 3)


# ---------------------------------------------------------------- the named models on photos


def _photos(n: int, dtype=np.float32) -> list[np.ndarray]:
    """scikit-learn's sample photographs (china.jpg, flower.jpg, 427x640), subsampled to two
    different sizes, as (3, H, W) in [0, 1]."""
    china, flower = load_sample_images().images
    photos = [china[::2, ::2], flower[::3, ::3]][:n]
    return [np.ascontiguousarray(p.transpose(2, 0, 1)).astype(dtype) / 255 for p in photos]


PHOTO_TARGETS = [  # in the coordinates of _photos(2): 214x320 and 143x214
    {"boxes": np.array([[40.0, 20.0, 180.0, 200.0], [150.5, 90.0, 310.0, 150.0],
                        [5.0, 5.0, 30.0, 40.0]], np.float32), "labels": np.array([1, 3, 2])},
    {"boxes": np.array([[20.0, 10.0, 200.0, 140.0]], np.float32), "labels": np.array([4])},
]


def _named_pair(name: str, num_classes: int, **kwargs):
    """minicnn's and torchvision's ``name`` with the same weights: torchvision's seeded
    initialisation, BatchNorm statistics calibrated on a random batch, random biases on
    the classification convolutions."""
    torch.manual_seed(0)
    tv = torchvision.models.get_model(name, weights=None, weights_backbone=None,
                                      num_classes=num_classes, **kwargs)
    g = torch.Generator().manual_seed(1)
    bns = [m for m in tv.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for conv in tv.head.classification_head.module_list:
            last = conv if isinstance(conv, torch.nn.Conv2d) else conv[-1]
            last.bias.copy_(torch.randn(last.bias.shape, generator=g))
        if bns:
            for m in bns:
                m.momentum = 1.0
            tv.train()
            batch, _ = tv.transform([torch.rand(3, 200, 300, generator=g) for _ in range(2)])
            tv.head(list(tv.backbone(batch.tensors).values()))
            for m in bns:
                m.momentum = 0.03
    tv.eval()
    model = getattr(detection, name)(num_classes=num_classes, **kwargs)
    return _copy_weights(model, tv).eval(), tv


@pytest.fixture(scope="module")
def ssdlite_small():
    return _named_pair("ssdlite320_mobilenet_v3_large", 5, score_thresh=0.5)


def _check_eval(model, tv, photos) -> None:
    with minicnn.no_grad():
        ours = model([minicnn.tensor(p) for p in photos])
    with torch.no_grad():
        theirs = tv([torch.from_numpy(p) for p in photos])
    for o, t, p in zip(ours, theirs, photos, strict=True):
        assert len(t["scores"]) >= 20
        assert o["boxes"].dtype == np.float32
        assert_same_detections(o, t, box_tol=1e-2, score_tol=1e-4)
        assert (o["boxes"].numpy()[:, 2] <= p.shape[2] + 1e-3).all()  # in the original image


def _check_loss(model, tv, photos) -> None:
    model.train()
    tv.train()
    try:
        ims, tgs = _as_minicnn(photos, PHOTO_TARGETS)
        with minicnn.no_grad():
            losses = model(ims, tgs)
        with torch.no_grad():
            losses_t = tv(*_as_torch(photos, PHOTO_TARGETS))
    finally:
        model.eval()
        tv.eval()
    for key in ("bbox_regression", "classification"):
        assert max_rel_err(losses[key].item(), losses_t[key].item()) <= 1e-4, key


def test_weights_file_from_export_torchvision_loads(tmp_path, ssdlite_small):
    """torchvision's model -> ``export_torchvision(model=...)`` -> ``weights=`` the file."""
    from minicnn.models import export_torchvision

    model, tv = ssdlite_small
    path = export_torchvision("ssdlite320_mobilenet_v3_large", tmp_path / "ssdlite.safetensors",
                              model=tv)
    loaded = detection.ssdlite320_mobilenet_v3_large(weights=path, num_classes=5)
    for (key, value), (key_t, value_t) in zip(loaded.state_dict().items(),
                                              tv.state_dict().items(), strict=True):
        assert key == key_t
        np.testing.assert_array_equal(value.numpy(), value_t.numpy())
    with pytest.raises(ValueError, match="does not fit"):
        detection.ssdlite320_mobilenet_v3_large(weights=path)  # 91 classes


def test_ssdlite_detections_equal_torchvision_on_a_photo(ssdlite_small):
    _check_eval(*ssdlite_small, _photos(1))


def test_ssdlite_training_loss_equals_torchvision_on_photos(ssdlite_small):
    _check_loss(*ssdlite_small, _photos(2))


@slow
@pytest.mark.parametrize("name, kwargs", [
    ("ssdlite320_mobilenet_v3_large", dict(score_thresh=0.3)),
    ("ssd300_vgg16", dict(score_thresh=0.05)),
])
def test_named_models_91_classes_equal_torchvision_on_photos(name, kwargs):
    model, tv = _named_pair(name, 91, **kwargs)
    photos = _photos(2)
    _check_eval(model, tv, photos)
    _check_loss(model, tv, photos)
