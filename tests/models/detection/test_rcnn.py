"""R-CNN and Fast R-CNN (``minicnn.models.detection.rcnn``) against independent references:
R-CNN's warped crops against PyTorch's ``interpolate`` of the same crop and torchvision's
``roi_align`` on the image; both detectors' box features against PyTorch's convolution
followed by that crop (R-CNN) or by torchvision's ``roi_pool`` (Fast R-CNN); the proposal
targets against torchvision's IoU and box coder; gradients by finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torchvision.models.detection import _utils as tv_utils

import minicnn
from minicnn import nn
from minicnn.autograd import Tensor
from minicnn.autograd.gradcheck import gradcheck
from minicnn.models.detection import (
    RCNN,
    FastRCNN,
    make_proposals,
    proposal_targets,
    rcnn_box_head,
    warp_proposals,
)
from minicnn.models.detection.roi_heads import fastrcnn_loss

RNG = np.random.default_rng(0)
IMAGES = RNG.normal(size=(2, 3, 40, 50)).astype(np.float32)
# integer boxes, larger and smaller than the crop, wide and tall
INT_BOXES = [np.array([[0, 0, 50, 40], [3, 5, 20, 12], [10, 2, 14, 30]], np.float32),
             np.array([[20, 10, 45, 38], [7, 7, 9, 9]], np.float32)]


def _torch_crops(images, boxes, size):
    """Reference: slice each integer box out of the image, resize it with torch."""
    crops = []
    for i, b in enumerate(boxes):
        for x1, y1, x2, y2 in b.astype(int):
            crop = torch.tensor(images[i:i + 1, :, y1:y2, x1:x2])
            crops.append(torch.nn.functional.interpolate(crop, size=size, mode="bilinear",
                                                         align_corners=False))
    return torch.cat(crops).numpy()


@pytest.mark.parametrize("size", [8, (6, 11)])
def test_warp_equals_torch_interpolate_of_the_crop(size):
    got = warp_proposals(Tensor(IMAGES), [Tensor(b) for b in INT_BOXES], size)
    shape = (size, size) if isinstance(size, int) else size
    assert got.shape == (5, 3, *shape)
    np.testing.assert_allclose(got.numpy(), _torch_crops(IMAGES, INT_BOXES, shape), atol=1e-5)


def test_warp_equals_torchvision_roi_align_on_the_image():
    """For a box at least as large as the crop, the bilinear warp samples the same points as
    RoIAlign on the image with one sample per bin and half-pixel alignment."""
    size = (5, 7)
    boxes = [np.array([[0, 0, 50, 40], [3, 5, 20, 12], [10, 2, 17, 30]], np.float32),
             np.array([[20, 10, 45, 38], [1, 30, 50, 35]], np.float32)]
    got = warp_proposals(Tensor(IMAGES), [Tensor(b) for b in boxes], size).numpy()
    ref = torchvision.ops.roi_align(torch.tensor(IMAGES), [torch.tensor(b) for b in boxes],
                                    size, spatial_scale=1.0, sampling_ratio=1,
                                    aligned=True).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_warp_rounds_boxes_outwards_and_clips_them_to_the_image():
    images = Tensor(IMAGES)
    fractional = warp_proposals(images, [Tensor(np.array([[2.3, 1.7, 9.2, 8.1]], np.float32)),
                                         Tensor(np.array([[-5, -3, 70, 80]], np.float32))], 6)
    whole = warp_proposals(images, [Tensor(np.array([[2, 1, 10, 9]], np.float32)),
                                    Tensor(np.array([[0, 0, 50, 40]], np.float32))], 6)
    np.testing.assert_array_equal(fractional.numpy(), whole.numpy())
    empty = warp_proposals(images, [Tensor(np.zeros((0, 4), np.float32))] * 2, 6)
    assert empty.shape == (0, 3, 6, 6)


def _tiny_backbone():
    """3x3 convolution (3 -> 4 channels) + ReLU + 2x2 max pool: stride 2."""
    minicnn.manual_seed(1)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))


def _torch_backbone(ours, x):
    conv = ours[0]
    y = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(conv.weight.detach().numpy()),
                                   torch.tensor(conv.bias.detach().numpy()), padding=1)
    return torch.nn.functional.max_pool2d(torch.relu(y), 2)


def test_fast_rcnn_pools_the_feature_map_as_torchvision_roi_pool():
    backbone = _tiny_backbone()
    model = FastRCNN(backbone, rcnn_box_head(4, 3, 5), pool_size=3, spatial_scale=0.5)
    boxes = [np.array([[0, 0, 50, 40], [3.4, 5.2, 20.7, 12.1], [10, 2, 14, 30]], np.float32),
             np.array([[20, 10, 45, 38], [7, 7, 9, 9]], np.float32)]
    got = model.box_features(Tensor(IMAGES), [Tensor(b) for b in boxes]).detach().numpy()
    ref = torchvision.ops.roi_pool(_torch_backbone(backbone, IMAGES),
                                   [torch.tensor(b) for b in boxes], 3, 0.5).numpy()
    assert got.shape == (5, 4, 3, 3)
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_rcnn_runs_the_backbone_on_each_warped_crop():
    backbone = _tiny_backbone()
    model = RCNN(backbone, rcnn_box_head(4, 3, 5), crop_size=6)
    got = model.box_features(Tensor(IMAGES), [Tensor(b) for b in INT_BOXES]).detach().numpy()
    ref = _torch_backbone(backbone, _torch_crops(IMAGES, INT_BOXES, (6, 6))).numpy()
    assert got.shape == (5, 4, 3, 3)
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_both_detectors_share_the_head_and_output_per_proposal():
    backbone, head = _tiny_backbone(), rcnn_box_head(4, 3, 5, representation_size=16)
    fast, slow = FastRCNN(backbone, head, 3, 0.5), RCNN(backbone, head, 6)
    proposals = [Tensor(b) for b in INT_BOXES]
    for model in (fast, slow):
        logits, deltas = model(Tensor(IMAGES), proposals)
        assert logits.shape == (5, 5) and deltas.shape == (5, 20)
        # the head alone, on the model's features, gives the same numbers
        again = head(model.box_features(Tensor(IMAGES), proposals))
        np.testing.assert_array_equal(logits.detach().numpy(), again[0].detach().numpy())
    assert sum(p.numel() for p in fast.parameters()) == sum(p.numel() for p in slow.parameters())


def test_proposal_targets_match_torchvision_iou_and_box_coder():
    gt = np.array([[5, 5, 20, 25], [25, 10, 45, 30]], np.float32)
    proposals = make_proposals(gt, (40, 50), num_jittered=6, num_random=10,
                               rng=np.random.default_rng(3))
    targets = [{"boxes": Tensor(gt), "labels": Tensor(np.array([3, 7], np.int64))}]
    labels, regression = proposal_targets([Tensor(proposals)], targets)
    iou = torchvision.ops.box_iou(torch.tensor(gt), torch.tensor(proposals)).numpy()
    best = iou.argmax(0)
    expected = np.where(iou.max(0) >= 0.5, np.array([3, 7])[best], 0)
    assert 0 < (expected > 0).sum() < len(proposals)  # both kinds are present
    np.testing.assert_array_equal(labels[0].numpy(), expected)
    ref = tv_utils.BoxCoder((10.0, 10.0, 5.0, 5.0)).encode_single(
        torch.tensor(gt[best]), torch.tensor(proposals)).numpy()
    np.testing.assert_allclose(regression[0].numpy(), ref, rtol=1e-5, atol=1e-5)
    # an image without objects: all background
    labels, _ = proposal_targets([Tensor(proposals)], [{"boxes": Tensor(np.zeros((0, 4),
                                 np.float32)), "labels": Tensor(np.zeros(0, np.int64))}])
    assert (labels[0].numpy() == 0).all()


def test_make_proposals_jitters_the_objects_and_stays_inside_the_image():
    gt = np.array([[5, 5, 20, 25], [30, 2, 49, 12]], np.float32)
    boxes = make_proposals(gt, (40, 50), num_jittered=20, num_random=30, jitter=0.1,
                           min_size=3.0, rng=np.random.default_rng(0))
    assert boxes.shape == (70, 4) and boxes.dtype == np.float32
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 50).all()
    assert (boxes[:, 1] >= 0).all() and (boxes[:, 3] <= 40).all()
    assert (boxes[:, 2:] - boxes[:, :2] >= 3.0 - 1e-5).all()
    iou = torchvision.ops.box_iou(torch.tensor(gt), torch.tensor(boxes)).numpy()
    assert np.median(iou[0, :20]) > 0.6 and np.median(iou[1, 20:40]) > 0.6


@pytest.mark.parametrize("kind", ["rcnn", "fast"])
def test_gradients_of_a_tiny_detector_by_finite_differences(kind):
    minicnn.manual_seed(2)
    backbone = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.AvgPool2d(2))
    head = rcnn_box_head(2, 2, 3, representation_size=3)
    model = (RCNN(backbone, head, 4) if kind == "rcnn" else FastRCNN(backbone, head, 2, 0.5))
    model.double()
    rng = np.random.default_rng(4)
    image = Tensor(rng.normal(size=(1, 1, 8, 9)), requires_grad=True)
    proposals = [Tensor(np.array([[1, 1, 7, 8], [3.5, 2.2, 9.0, 7.6]], np.float64))]
    targets = [{"boxes": Tensor(np.array([[1, 1, 7, 7]], np.float64)),
                "labels": Tensor(np.array([2], np.int64))}]
    labels, regression = proposal_targets(proposals, targets)
    assert labels[0].numpy().tolist() == [2, 0]
    weights = [head[0].fc6.weight, backbone[0].weight]
    for w in weights:
        w.requires_grad_(True)

    def loss(image, *_):
        cls, box = fastrcnn_loss(*model(image, proposals), labels, regression)
        return cls + box

    assert gradcheck(loss, [image, *weights], eps=1e-6, atol=1e-7, rtol=1e-4)


def test_bad_proposals_are_one_line_errors():
    model = FastRCNN(_tiny_backbone(), rcnn_box_head(4, 3, 5), 3, 0.5)
    with pytest.raises(ValueError, match="one \\(K_i, 4\\) Tensor per image"):
        model(Tensor(IMAGES), [Tensor(INT_BOXES[0])])
    with pytest.raises(ValueError, match="proposals\\[1\\] must be \\(K, 4\\)"):
        warp_proposals(Tensor(IMAGES), [Tensor(INT_BOXES[0]), Tensor(np.zeros(4, np.float32))], 4)
    with pytest.raises(ValueError, match="crop_size"):
        RCNN(_tiny_backbone(), rcnn_box_head(4, 3, 5), crop_size=0)
    with pytest.raises(ValueError, match="spatial_scale"):
        FastRCNN(_tiny_backbone(), rcnn_box_head(4, 3, 5), 3, 0.0)
