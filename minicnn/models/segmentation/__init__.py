"""``minicnn.models.segmentation``: per-pixel classifiers, one file per network (torchvision's
names where torchvision has the network).

* :func:`fcn_resnet50` (``fcn.py``): FCN on a dilated ResNet-50, torchvision's.
* :func:`unet` (``unet.py``): U-Net (Ronneberger et al. 2015), the paper's and a same-padding one.
"""

from minicnn.models.segmentation.fcn import FCN, FCNHead, fcn_resnet50
from minicnn.models.segmentation.unet import UNet, unet, unet_output_size

__all__ = ["FCN", "FCNHead", "UNet", "fcn_resnet50", "unet", "unet_output_size"]
