"""Detection data: ``digit_scenes`` and ``shapes`` scenes (targets checked against
independent references), the detection collate, and the joint transforms against
torchvision.transforms.v2 on the same images, boxes, masks and keypoints."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from sklearn.datasets import load_digits
from torchvision import tv_tensors
from torchvision.ops import masks_to_boxes
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F2

from minicnn import data
from minicnn.data import joint_transforms as J
from minicnn.data import rng as data_rng
from minicnn.data.digit_scenes import INK_THRESHOLD, DigitScenes, make_digit_scene
from minicnn.utils import data as udata


def tight_boxes(masks):
    """torchvision's masks_to_boxes gives the last row/column; a box ends one pixel later."""
    return (masks_to_boxes(torch.from_numpy(masks.astype(bool))) + torch.tensor([0, 0, 1, 1])
            ).numpy()


@pytest.fixture(scope="module")
def scenes():
    return data.digit_scenes(True, n=40), data.digit_scenes(False, n=40)


# ---------------------------------------------------------------- digit_scenes


def test_digit_scene_targets_follow_torchvision(scenes):
    train, _ = scenes
    assert train.classes == ["__background__"] + [str(d) for d in range(10)]
    counts = []
    for i in range(len(train)):
        image, target = train[i]
        k = len(target["boxes"])
        counts.append(k)
        assert image.shape == (3, 64, 64) and image.dtype == np.float32
        assert 0 <= image.min() and image.max() <= 1
        assert target["boxes"].dtype == np.float32 and target["boxes"].shape == (k, 4)
        assert target["labels"].dtype == np.int64 and target["labels"].shape == (k,)
        assert target["masks"].dtype == np.uint8 and target["masks"].shape == (k, 64, 64)
        assert target["image_id"] == i
        np.testing.assert_array_equal(target["iscrowd"], np.zeros(k))
        np.testing.assert_array_equal(target["area"], target["masks"].sum((1, 2)))
        assert 1 <= target["labels"].min() and target["labels"].max() <= 10
        # boxes tight around the masks (torchvision's masks_to_boxes as the reference)
        np.testing.assert_array_equal(target["boxes"], tight_boxes(target["masks"]))
        # masks of different digits never share a pixel
        assert target["masks"].sum(0).max() <= 1
    assert 1 <= min(counts) and max(counts) <= 5 and len(set(counts)) >= 4


def test_digit_scene_masks_are_the_visible_ink_of_each_scan(scenes):
    """Re-draw every digit from its scan with PyTorch's bilinear interpolation, threshold it,
    place it and remove what later digits cover: that is the mask; the label is the scan's
    class + 1."""
    train, test = scenes
    raw = load_digits()
    overlapped = 0
    for dataset in (train, test):
        for i in range(len(dataset)):
            scene = dataset.scene(i)
            _, target = dataset[i]
            inks, near = [], np.zeros((64, 64), bool)
            for scan, (left, top, side) in zip(scene["scans"], scene["placements"]):
                small = torch.from_numpy(raw.images[scan] / 16.0)[None, None].float()
                big = TF.interpolate(small, size=(side, side), mode="bilinear",
                                     align_corners=False)[0, 0].numpy()
                ink = np.zeros((64, 64), bool)
                ink[top : top + side, left : left + side] = big >= INK_THRESHOLD
                # pixels within rounding of the threshold may fall either way
                near[top : top + side, left : left + side] |= (
                    np.abs(big - INK_THRESHOLD) < 1e-5)
                inks.append(ink)
            expected = np.stack([ink & ~np.any(inks[k + 1 :], axis=0) if k + 1 < len(inks)
                                 else ink for k, ink in enumerate(inks)])
            overlapped += int((np.sum(inks, 0) > 1).any())
            differ = (target["masks"] != expected).any(0)
            assert not (differ & ~near).any(), f"scene {i}: masks differ at {np.argwhere(differ)}"
            assert differ.sum() <= 2
            np.testing.assert_array_equal(target["labels"], raw.target[scene["scans"]] + 1)
    assert overlapped >= 5  # some scenes do have digits that overlap


def test_digit_scene_split_is_disjoint_by_scan(scenes):
    train, test = scenes
    assert not set(train.scans) & set(test.scans)
    assert len(train.scans) == 1437 and len(test.scans) == 360
    # the split is digits' own: no test scene uses a scan a training digit image uses
    np.testing.assert_array_equal(np.sort(test.scans), np.sort(data.datasets.digits_split(False)))
    used_train = np.concatenate([train.scene(i)["scans"] for i in range(len(train))])
    used_test = np.concatenate([test.scene(i)["scans"] for i in range(len(test))])
    assert set(used_train) <= set(train.scans) and set(used_test) <= set(test.scans)
    assert not set(used_train) & set(used_test)


def test_digit_scenes_are_reproducible_and_differ_by_seed():
    a, b = data.digit_scenes(True, n=3), data.digit_scenes(True, n=3)
    np.testing.assert_array_equal(a[2][0], b[2][0])
    other = DigitScenes(a.scans, n=3, seed=5)
    assert not np.array_equal(a[2][0], other[2][0])
    with pytest.raises(IndexError, match="out of range for 3 scenes"):
        a[3]


def test_digit_scene_errors():
    with pytest.raises(ValueError, match="size must be an int of at least 16"):
        DigitScenes([0, 1], size=8)
    with pytest.raises(ValueError, match="do not fit a 20x20 canvas"):
        DigitScenes([0, 1], size=20)
    with pytest.raises(ValueError, match="scans is empty"):
        make_digit_scene(0, [])
    with pytest.raises(TypeError, match="transforms must be callable"):
        DigitScenes([0, 1], transforms=3)


# ---------------------------------------------------------------- shapes scenes


def test_shape_scenes_targets():
    ds = data.shape_scenes(False, n=20)
    assert ds.classes == ["__background__", "circle", "square", "triangle", "cross"]
    for i in range(len(ds)):
        scene = ds.scene(i)
        image, target = ds[i]
        np.testing.assert_array_equal(image, scene["image"])
        np.testing.assert_array_equal(target["labels"], scene["labels"] + 1)
        np.testing.assert_array_equal(target["boxes"], tight_boxes(target["masks"]))
        np.testing.assert_array_equal(target["masks"], scene["masks"])
        kp = target["keypoints"]
        assert kp.shape == (len(target["boxes"]), 5, 3)
        np.testing.assert_array_equal(kp[..., :2], scene["keypoints"])
        np.testing.assert_array_equal(kp[..., 2], 1)
    # make_scene's boxes (now from canvas.boxes_from_masks) are still tight
    scene = data.make_scene(7, 48, 3)
    np.testing.assert_array_equal(scene["boxes"], tight_boxes(scene["masks"]))


def test_load_data_detection_and_task_errors():
    train, test = data.load_data("digit_scenes", subset=4)
    assert len(train) == len(test) == 4 and train.classes[0] == "__background__"
    assert train[0][0].shape == (3, 64, 64) and set(train[0][1]) >= {"boxes", "labels"}
    s_train, _ = data.load_data("shapes", task="detect", image_size=48, subset=2)
    assert s_train[1][0].shape == (3, 48, 48) and s_train.classes[1] == "circle"
    assert isinstance(data.load_data("shapes", subset=1)[0][0][1], int)  # still classification
    with pytest.raises(ValueError,
                       match="'digit_scenes' is for detect or segment or instance, not 'classify'"):
        data.load_data("digit_scenes", task="classify")
    with pytest.raises(ValueError, match="'digits' is for classify, not 'detect'.*digit_scenes"):
        data.load_data("digits", task="detect")


# ---------------------------------------------------------------- collate and checks


def test_detection_collate_numpy_and_tensors(scenes):
    train, _ = scenes
    samples = [train[i] for i in range(5)]
    images, targets = data.detection_collate(samples)
    assert images.shape == (5, 3, 64, 64) and isinstance(targets, list) and len(targets) == 5
    for (_, target), got in zip(samples, targets):
        assert got is target
    loader = udata.DataLoader(train, batch_size=4, collate_fn=udata.detection_collate)
    images, targets = next(iter(loader))
    from minicnn.autograd import Tensor

    assert isinstance(images, Tensor) and images.shape == (4, 3, 64, 64)
    assert len(targets) == 4 and isinstance(targets[0]["boxes"], Tensor)
    assert targets[0]["boxes"].shape == (len(train[0][1]["boxes"]), 4)
    assert targets[0]["labels"].dtype == np.int64
    np.testing.assert_array_equal(targets[1]["masks"].numpy(), train[1][1]["masks"])
    # the NumPy loader gives the same batch as arrays
    images_np, targets_np = next(iter(data.DataLoader(train, 4, collate_fn=data.detection_collate)))
    assert isinstance(images_np, np.ndarray) and isinstance(targets_np[0]["boxes"], np.ndarray)


def _target(k=2, size=8):
    return {"boxes": np.array([[0, 0, 4, 4], [1, 2, 5, 7]], np.float32)[:k],
            "labels": np.array([1, 2])[:k], "masks": np.zeros((k, size, size), np.uint8)}


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.pop("boxes"), "no 'boxes'"),
        (lambda t: t.pop("labels"), "no 'labels'"),
        (lambda t: t.update(boxes=np.zeros((2, 3))), "'boxes' must be \\(K, 4\\)"),
        (lambda t: t.update(boxes=np.array([[4, 0, 1, 3], [0, 0, 1, 1]])), "x1 <= x2"),
        (lambda t: t.update(boxes=np.array([[0, 0, np.nan, 3], [0, 0, 1, 1]])), "finite"),
        (lambda t: t.update(labels=np.array([1])), "'labels' must have one row per box"),
        (lambda t: t.update(masks=np.zeros((3, 8, 8))), "'masks' must have one row per box"),
        (lambda t: t.update(masks=np.zeros((2, 8, 9))), "'masks' are 8x9, expected the image"),
        (lambda t: t.update(masks=np.zeros((2, 8))), "'masks' must be \\(K, H, W\\)"),
        (lambda t: t.update(keypoints=np.zeros((2, 5, 4))), "'keypoints' must be"),
    ],
)
def test_bad_targets_name_the_key(change, message):
    target = _target()
    change(target)
    image = np.zeros((3, 8, 8), np.float32)
    with pytest.raises(ValueError, match=message):
        data.detection_collate([(image, target)])
    with pytest.raises(ValueError, match=message):
        J.hflip(image, target)


def test_collate_errors():
    image = np.zeros((3, 8, 8), np.float32)
    with pytest.raises(ValueError, match="no samples"):
        data.detection_collate([])
    with pytest.raises(ValueError, match="sample 1's image is \\(3, 9, 8\\)"):
        data.detection_collate([(image, _target()), (np.zeros((3, 9, 8)), _target(size=9))])
    with pytest.raises(ValueError, match="must be \\(image, target\\)"):
        data.detection_collate([image])
    with pytest.raises(TypeError, match="expected a dict"):
        data.detection_collate([(image, [1, 2])])


# ---------------------------------------------------------------- joint transforms vs v2


def _scene_with_keypoints(seed=0, size=48):
    ds = data.ShapeScenes(n=1, size=size, seed=seed, max_objects=4)
    return ds[0]


def _v2_inputs(image, target):
    h, w = image.shape[1:]
    return {
        "image": tv_tensors.Image(torch.from_numpy(image)),
        "boxes": tv_tensors.BoundingBoxes(torch.from_numpy(target["boxes"]), format="XYXY",
                                          canvas_size=(h, w)),
        "masks": tv_tensors.Mask(torch.from_numpy(target["masks"])),
        "labels": torch.from_numpy(target["labels"]),
    }


def _assert_same(ours, theirs, image_atol=0.0):
    image, target = ours
    np.testing.assert_allclose(image, theirs["image"].numpy(), atol=image_atol, rtol=0)
    np.testing.assert_allclose(target["boxes"], theirs["boxes"].numpy(), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(target["masks"], theirs["masks"].numpy())
    np.testing.assert_array_equal(target["labels"], theirs["labels"].numpy())


def test_hflip_equals_v2():
    image, target = _scene_with_keypoints()
    ours = J.hflip(image, target)
    _assert_same(ours, v2.RandomHorizontalFlip(p=1.0)(_v2_inputs(image, target)))
    # keypoints: v2 puts pixel centres at integers (x -> W - 1 - x), we at +0.5 (x -> W - x)
    kp = tv_tensors.KeyPoints(torch.from_numpy(target["keypoints"][..., :2] - 0.5),
                              canvas_size=image.shape[1:])
    np.testing.assert_allclose(ours[1]["keypoints"][..., :2],
                               F2.horizontal_flip(kp).numpy() + 0.5, atol=1e-5)
    # a flipped box still holds its flipped mask
    np.testing.assert_array_equal(ours[1]["boxes"], tight_boxes(ours[1]["masks"]))
    # with keypoint_flip the right and left extreme points swap back into place
    swapped = J.hflip(image, target, data.SHAPE_KEYPOINT_FLIP)[1]["keypoints"]
    np.testing.assert_array_equal(swapped[:, [0, 1, 4, 3, 2]], ours[1]["keypoints"])
    right = swapped[:, 2, 0]  # the right extreme point is the rightmost point again
    assert np.all(right >= swapped[:, :, 0].max(1) - 1e-6)


@pytest.mark.parametrize("size", [(96, 80), (30, 41), (48, 48)])
def test_resize_equals_v2(size):
    image, target = _scene_with_keypoints(1)
    ours = J.resize(image, target, size)
    theirs = v2.Resize(size, antialias=False)(_v2_inputs(image, target))
    _assert_same(ours, theirs, image_atol=1e-5)
    np.testing.assert_array_equal(ours[1]["area"], ours[1]["masks"].sum((1, 2)))
    kp = tv_tensors.KeyPoints(torch.from_numpy(target["keypoints"][..., :2]),
                              canvas_size=image.shape[1:])
    np.testing.assert_allclose(ours[1]["keypoints"][..., :2],
                               F2.resize(kp, list(size)).numpy(), rtol=1e-6)
    # a semantic (H, W) mask target is resized nearest, like v2's Mask
    semantic = (target["masks"] * target["labels"][:, None, None]).max(0).astype(np.int64)
    _, out = J.resize(image, semantic, size)
    np.testing.assert_array_equal(
        out, F2.resize(tv_tensors.Mask(torch.from_numpy(semantic)), list(size)).numpy()
    )


def test_crop_equals_v2_crop_and_sanitize():
    rng = np.random.default_rng(0)
    dropped = 0
    for seed in range(12):
        image, target = _scene_with_keypoints(seed, 64)
        h, w = (int(v) for v in rng.integers(16, 49, 2))
        top, left = int(rng.integers(0, 64 - h + 1)), int(rng.integers(0, 64 - w + 1))
        ours = J.crop(image, target, top, left, h, w)
        inputs = _v2_inputs(image, target)
        inputs["ids"] = torch.arange(len(target["boxes"]))  # which objects v2 keeps
        cropped = {k: F2.crop(v, top, left, h, w) if k in ("image", "boxes", "masks") else v
                   for k, v in inputs.items()}
        theirs = v2.SanitizeBoundingBoxes(labels_getter=lambda d: (d["labels"], d["ids"]))(
            cropped
        )
        _assert_same(ours, theirs)
        kept = theirs["ids"].numpy()
        dropped += len(target["boxes"]) - len(kept)
        np.testing.assert_array_equal(ours[1]["iscrowd"], target["iscrowd"][kept])
        np.testing.assert_array_equal(ours[1]["area"], ours[1]["masks"].sum((1, 2)))
        kp = tv_tensors.KeyPoints(torch.from_numpy(target["keypoints"][..., :2]),
                                  canvas_size=image.shape[1:])
        expected = F2.crop(kp, top, left, h, w).numpy()[kept]
        np.testing.assert_allclose(ours[1]["keypoints"][..., :2], expected)
        inside = ((expected[..., 0] >= 0) & (expected[..., 0] <= w) & (expected[..., 1] >= 0)
                  & (expected[..., 1] <= h))
        np.testing.assert_array_equal(ours[1]["keypoints"][..., 2], inside)
    assert dropped > 0  # some objects left the windows


def test_crop_errors_and_bare_mask_target():
    image, target = _scene_with_keypoints()
    with pytest.raises(ValueError, match="not inside the 48x48 image"):
        J.crop(image, target, 40, 0, 10, 10)
    mask = np.arange(48 * 48).reshape(48, 48)
    out_image, out_mask = J.crop(image, mask, 3, 5, 10, 20)
    np.testing.assert_array_equal(out_mask, mask[3:13, 5:25])
    np.testing.assert_array_equal(out_image, image[:, 3:13, 5:25])
    with pytest.raises(ValueError, match="the mask target is \\(4, 4\\)"):
        J.hflip(image, np.zeros((4, 4)))


def test_random_crop_and_compose_are_seeded_and_keep_targets_consistent():
    train = data.digit_scenes(True, n=6)
    pipeline = J.Compose([J.RandomCrop(48), J.Resize(64), J.ColorJitter(0.4, 0.4, 0.4)])
    for i in range(len(train)):
        image, target = train[i]
        with data_rng.using(np.random.default_rng(i)):
            a = pipeline(image, target)
        with data_rng.using(np.random.default_rng(i)):
            b = pipeline(image, target)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1]["boxes"], b[1]["boxes"])
        out_image, out = a
        assert out_image.shape == (3, 64, 64)
        check = data.check_target(out, (64, 64))
        assert len(check["labels"]) == len(check["masks"]) == len(check["area"])
        # every kept box holds its mask's pixels (clamped boxes may be looser; the nearest
        # resize of the mask may reach up to a pixel past the scaled box)
        for box, mask in zip(out["boxes"], out["masks"]):
            if mask.any():
                tight = tight_boxes(mask[None])[0]
                assert np.all(tight[:2] >= box[:2] - 1) and np.all(tight[2:] <= box[2:] + 1)
    # the transforms run in the DataLoader with its per-batch generator
    ds = data.digit_scenes(True, n=8, transforms=pipeline)
    first = [b[0] for b in data.DataLoader(ds, 4, collate_fn=data.detection_collate)]
    from minicnn.random import manual_seed

    manual_seed(3)
    first = [b[0] for b in data.DataLoader(ds, 4, collate_fn=data.detection_collate)]
    manual_seed(3)
    again = [b[0] for b in data.DataLoader(ds, 4, collate_fn=data.detection_collate)]
    np.testing.assert_array_equal(first[1], again[1])


@pytest.mark.parametrize("factor", [0.0, 0.6, 1.0, 1.7])
def test_photometric_equals_torchvision(factor):
    image, target = _scene_with_keypoints(2)
    t = torch.from_numpy(image)
    for ours, theirs in ((J.adjust_brightness, F2.adjust_brightness),
                         (J.adjust_contrast, F2.adjust_contrast),
                         (J.adjust_saturation, F2.adjust_saturation)):
        np.testing.assert_allclose(ours(image, factor), theirs(t, factor).numpy(), atol=1e-6)
    jittered, same = J.ColorJitter(0.5, 0.5, 0.5)(image, target)
    assert same is target and jittered.shape == image.shape
    with pytest.raises(ValueError, match="brightness must be >= 0"):
        J.ColorJitter(brightness=-1)


def test_image_only_and_sanitize():
    image, target = _scene_with_keypoints()
    out, same = J.ImageOnly(lambda x: x * 2)(image, target)
    assert same is target
    np.testing.assert_array_equal(out, image * 2)
    target = dict(target, boxes=target["boxes"].copy())
    target["boxes"][0] = [3, 3, 3.5, 10]  # narrower than a pixel
    _, clean = J.SanitizeBoundingBoxes()(image, target)
    assert len(clean["boxes"]) == len(target["boxes"]) - 1
    np.testing.assert_array_equal(clean["masks"], target["masks"][1:])
