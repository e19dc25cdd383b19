"""``minicnn.data``: datasets, transforms and the DataLoader. NumPy only (no autograd)."""

from minicnn.data import transforms
from minicnn.data.catalog import DATASET_NAMES, channel_stats, load_data
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
from minicnn.data.shapes import SHAPE_CLASSES, Shapes, make_scene, shapes

DATASETS = {"digits": digits, "shapes": shapes}

__all__ = [
    "DATASETS",
    "DATASET_NAMES",
    "DataLoader",
    "Dataset",
    "ImageDataset",
    "ImageFolder",
    "SHAPE_CLASSES",
    "Shapes",
    "Subset",
    "TensorDataset",
    "TransformedDataset",
    "channel_stats",
    "cifar",
    "default_collate",
    "digits",
    "load_data",
    "load_image",
    "make_scene",
    "mnist",
    "read_cifar_bin",
    "read_idx",
    "shapes",
    "transforms",
]
