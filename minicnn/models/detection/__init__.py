"""``minicnn.models.detection``: the detectors, in torchvision's files and names.

Train mode: ``model(images, targets)`` -> a dict of loss Tensors; eval mode:
``model(images)`` -> one ``{"boxes", "scores", "labels"}`` dict per image.
"""

# SSD (ssd.py, ssdlite.py) and its parts (_utils.py, anchor_utils.py, transform.py)
from minicnn.models.detection._utils import BoxCoder, Matcher, SSDMatcher
from minicnn.models.detection.anchor_utils import DefaultBoxGenerator
from minicnn.models.detection.image_list import ImageList
from minicnn.models.detection.ssd import SSD, SSDHead, ssd300_vgg16
from minicnn.models.detection.ssdlite import SSDLiteHead, ssdlite320_mobilenet_v3_large
from minicnn.models.detection.transform import GeneralizedRCNNTransform

__all__ = ["BoxCoder", "DefaultBoxGenerator", "GeneralizedRCNNTransform", "ImageList",
           "Matcher", "SSD", "SSDHead", "SSDLiteHead", "SSDMatcher", "ssd300_vgg16",
           "ssdlite320_mobilenet_v3_large"]
