"""``minicnn.models.segmentation``: per-pixel classifiers, one file per network (torchvision's
names where torchvision has the network).

* :func:`deconvnet` (``deconvnet.py``): DeconvNet (Noh et al. 2015), unpooling with switches.
* :func:`fcn_resnet50` (``fcn.py``): FCN on a dilated ResNet-50, torchvision's.
* :func:`landmark_unet`, :func:`landmark_regressor` (``landmarks.py``): landmark heatmaps on a
  U-Net and the L2 coordinate-regression baseline on its encoder.
* :func:`resunet` (``resunet.py``): ResU-Net (Zhang et al. 2018), residual units in a U-Net.
* :func:`unet` (``unet.py``): U-Net (Ronneberger et al. 2015), the paper's and a same-padding one.
"""

from minicnn.models.segmentation.deconvnet import DeconvNet, deconvnet, load_vgg16_weights
from minicnn.models.segmentation.fcn import FCN, FCNHead, fcn_resnet50
from minicnn.models.segmentation.landmarks import (
    LandmarkRegressor,
    LandmarkUNet,
    landmark_regressor,
    landmark_unet,
)
from minicnn.models.segmentation.resunet import ResidualUnit, ResUNet, resunet
from minicnn.models.segmentation.unet import UNet, unet, unet_output_size

__all__ = ["DeconvNet", "FCN", "FCNHead", "ResUNet", "ResidualUnit", "UNet", "deconvnet",
           "fcn_resnet50", "load_vgg16_weights", "resunet", "unet", "unet_output_size"]
__all__ += ["LandmarkRegressor", "LandmarkUNet", "landmark_regressor", "landmark_unet"]
