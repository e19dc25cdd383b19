"""``minicnn.data``: datasets, transforms and the DataLoader. NumPy only (no autograd)."""

from minicnn.data import joint_transforms, landmarks, transforms
from minicnn.data.catalog import DATASET_NAMES, DATASET_TASKS, channel_stats, load_data
from minicnn.data.dataloader import DataLoader, default_collate
from minicnn.data.dataset import Dataset, Subset, TensorDataset, TransformedDataset
from minicnn.data.datasets import (
    ImageDataset,
    ImageFolder,
    cifar,
    digits,
    load_image,
    mnist,
    read_cifar_bin,
    read_idx,
)
from minicnn.data.detection import SceneDataset, check_target, detection_collate
from minicnn.data.digit_scenes import (
    DIGIT_SCENE_CLASSES,
    DigitScenes,
    digit_scenes,
    make_digit_scene,
)
from minicnn.data.noise import GaussianNoise, MRINoise, PoissonGaussianNoise
from minicnn.data.photos import PHOTOS, load_photo, load_photos, photo_names
from minicnn.data.raw import RawPatches, bayer_mosaic, demosaic_bilinear, pack_bayer, unpack_bayer
from minicnn.data.restoration import NoisyImages, NoisyPatches, noisy_photos
from minicnn.data.segmentation import (
    IGNORE_INDEX,
    SegmentationScenes,
    check_mask,
    segmentation_collate,
    semantic_mask,
)
from minicnn.data.shapes import (
    SHAPE_CLASSES,
    SHAPE_KEYPOINT_FLIP,
    Shapes,
    ShapeScenes,
    make_scene,
    shape_scenes,
    shapes,
)

DATASETS = {"digits": digits, "shapes": shapes, "digit_scenes": digit_scenes}

__all__ = [
    "DATASETS",
    "DATASET_NAMES",
    "DATASET_TASKS",
    "DIGIT_SCENE_CLASSES",
    "DataLoader",
    "Dataset",
    "DigitScenes",
    "IGNORE_INDEX",
    "ImageDataset",
    "ImageFolder",
    "SHAPE_CLASSES",
    "SHAPE_KEYPOINT_FLIP",
    "SceneDataset",
    "SegmentationScenes",
    "ShapeScenes",
    "Shapes",
    "Subset",
    "TensorDataset",
    "TransformedDataset",
    "channel_stats",
    "cifar",
    "check_mask",
    "check_target",
    "default_collate",
    "detection_collate",
    "digit_scenes",
    "digits",
    "joint_transforms",
    "landmarks",
    "load_data",
    "load_image",
    "make_digit_scene",
    "make_scene",
    "mnist",
    "read_cifar_bin",
    "read_idx",
    "segmentation_collate",
    "semantic_mask",
    "shape_scenes",
    "shapes",
    "transforms",
    # restoration: photographs, noise models, RAW
    "GaussianNoise", "MRINoise", "NoisyImages", "NoisyPatches", "PHOTOS", "PoissonGaussianNoise",
    "RawPatches", "bayer_mosaic", "demosaic_bilinear", "load_photo", "load_photos",
    "noisy_photos", "pack_bayer", "photo_names", "unpack_bayer",
]
