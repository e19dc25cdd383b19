"""Segmentation data: semantic and binary masks of the scenes, checked against the
detection targets they come from; joint transforms on (image, mask); one-line errors."""

import numpy as np
import pytest

from minicnn.data import (
    DataLoader,
    SegmentationScenes,
    check_mask,
    digit_scenes,
    load_data,
    segmentation_collate,
    semantic_mask,
    shape_scenes,
)
from minicnn.data import joint_transforms as J


@pytest.mark.parametrize("make", [lambda: shape_scenes(False, n=6),
                                  lambda: digit_scenes(False, n=6)])
def test_semantic_mask_labels_each_objects_visible_pixels(make):
    scenes = make()
    seg = SegmentationScenes(scenes)
    binary = SegmentationScenes(scenes, binary=True)
    assert seg.classes == scenes.classes and binary.classes == ["__background__", "object"]
    for i in range(len(scenes)):
        image, target = scenes[i]
        _, mask = seg[i]
        _, bmask = binary[i]
        assert mask.dtype == np.int64 and mask.shape == image.shape[1:]
        # the visible masks never overlap, so the label map is their label-weighted sum
        masks = target["masks"].astype(np.int64)
        assert masks.sum(0).max() <= 1
        np.testing.assert_array_equal(mask, (masks * target["labels"][:, None, None]).sum(0))
        np.testing.assert_array_equal(bmask, masks.sum(0))
        for label in np.unique(target["labels"]):  # pixels per class = the objects' areas
            assert (mask == label).sum() == target["area"][target["labels"] == label].sum()


def test_semantic_mask_later_objects_win_and_checks_its_input():
    masks = np.zeros((2, 4, 4), bool)
    masks[0, :2] = True
    masks[1, 1:3] = True
    out = semantic_mask(masks, [3, 1])
    np.testing.assert_array_equal(out[:, 0], [3, 1, 1, 0])
    with pytest.raises(ValueError, match=r"masks must be \(K, H, W\) with one label each, got "
                                         r"masks \(2, 4, 4\) and 3 labels"):
        semantic_mask(masks, [1, 2, 3])


def test_load_data_segment_for_shapes_and_digit_scenes():
    train, test = load_data("shapes", task="segment", subset=3, image_size=48)
    image, mask = train[0]
    assert image.shape == (3, 48, 48) and mask.shape == (48, 48)
    assert train.classes[0] == "__background__" and len(train.classes) == 5
    # held-out scenes: other seeds than the training scenes
    assert not np.array_equal(train[0][0], test[0][0])
    train, _ = load_data("digit_scenes", task="segment", subset=2)
    assert len(train.classes) == 11 and train[1][1].max() <= 10
    with pytest.raises(ValueError, match="dataset 'digits' is for classify, not 'segment'"):
        load_data("digits", task="segment")


def test_joint_transforms_move_the_mask_with_the_image():
    image, mask = SegmentationScenes(shape_scenes(False, n=1))[0]
    fimage, fmask = J.hflip(image, mask)
    np.testing.assert_array_equal(fmask, mask[:, ::-1])
    np.testing.assert_array_equal(fimage, image[:, :, ::-1])
    cimage, cmask = J.crop(image, mask, 5, 7, 30, 20)
    np.testing.assert_array_equal(cmask, mask[5:35, 7:27])
    # resizing takes the nearest label: no new labels in between (as torch's "nearest")
    import torch

    rimage, rmask = J.resize(image, mask, 40)
    ref = torch.nn.functional.interpolate(torch.from_numpy(mask[None, None].astype(np.float32)),
                                          size=(40, 40), mode="nearest")[0, 0].numpy()
    np.testing.assert_array_equal(rmask, ref.astype(np.int64))
    assert set(np.unique(rmask)) <= set(np.unique(mask))
    # a random pipeline on the dataset keeps image and mask aligned
    seg = SegmentationScenes(shape_scenes(False, n=1),
                             transforms=J.Compose([J.RandomHorizontalFlip(1.0)]))
    np.testing.assert_array_equal(seg[0][1], mask[:, ::-1])


def test_check_mask_errors_name_sizes_and_labels():
    with pytest.raises(ValueError, match="mask: is 30x32, expected the image's size 32x32"):
        check_mask(np.zeros((30, 32), np.int64), (32, 32))
    with pytest.raises(ValueError, match=r"has the labels \[5, 7\], expected 0..4 or the ignore "
                                         r"index 255 for 5 classes"):
        check_mask(np.array([[0, 5], [7, 255]]), num_classes=5)
    with pytest.raises(ValueError, match=r"has the labels \[-1\]"):
        check_mask(np.array([[0, -1]]), num_classes=5)
    np.testing.assert_array_equal(check_mask(np.array([[0, 4], [255, 1]]), num_classes=5),
                                  [[0, 4], [255, 1]])
    with pytest.raises(ValueError, match=r"has the labels \[255\], expected 0..4 for 5"):
        check_mask(np.array([[255]]), num_classes=5, ignore_index=None)
    with pytest.raises(TypeError, match="must hold integer class labels, got dtype float32"):
        check_mask(np.zeros((2, 2), np.float32))


def test_segmentation_collate_stacks_and_refuses_mismatched_masks():
    seg = SegmentationScenes(shape_scenes(False, n=4, size=32))
    images, masks = next(iter(DataLoader(seg, 4, collate_fn=segmentation_collate)))
    assert images.shape == (4, 3, 32, 32) and masks.shape == (4, 32, 32)
    assert masks.dtype == np.int64
    image, mask = seg[0]
    with pytest.raises(ValueError, match="sample 1's mask: is 31x32, expected the image's "
                                         "size 32x32"):
        segmentation_collate([(image, mask), (image, mask[:31])])
    with pytest.raises(ValueError, match="no samples"):
        segmentation_collate([])


def test_a_transform_that_breaks_the_mask_is_caught():
    def shrink(image, mask):
        return image, mask[:-1]

    seg = SegmentationScenes(shape_scenes(False, n=1, size=32), transforms=shrink)
    with pytest.raises(ValueError, match=r"SegmentationScenes\[0\]'s mask: is 31x32, expected "
                                         r"the image's size 32x32"):
        seg[0]
    with pytest.raises(TypeError, match="scenes must be a detection scene dataset"):
        SegmentationScenes(load_data("digits")[1])
