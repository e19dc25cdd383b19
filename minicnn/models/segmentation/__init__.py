"""``minicnn.models.segmentation``: per-pixel classifiers, one file per network (torchvision's
names where torchvision has the network).

* :func:`unet` (``unet.py``): U-Net (Ronneberger et al. 2015), the paper's and a same-padding one.
"""

from minicnn.models.segmentation.unet import UNet, unet, unet_output_size

__all__ = ["UNet", "unet", "unet_output_size"]
