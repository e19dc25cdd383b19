"""``minicnn.models.restoration``: networks that output images, one file per network.

* :func:`dncnn` (``dncnn.py``): DnCNN (Zhang et al. 2017), residual learning of the noise;
  the paper's DnCNN-S, DnCNN-B and CDnCNN-B.
* :func:`noise_aware_denoiser` (``noise_aware.py``): an FFDNet-like denoiser told the noise
  level (or a g-factor map) at every pixel; one network for every noise level.
* :func:`srcnn` (``srcnn.py``): SRCNN (Dong et al. 2016), 9-1-5 super-resolution on the Y
  channel of a bicubic-upscaled image.
* :func:`pynet` (``pynet.py``): PyNET (Ignatov et al. 2020), RAW Bayer to RGB by a pyramid
  of five levels; :func:`pynet_narrow` trains on a CPU.

Images are float32 in [0, 1], ``(N, C, H, W)``.
"""

from minicnn.models.restoration.dncnn import DnCNN, cdncnn_b, dncnn, dncnn_b, dncnn_s
from minicnn.models.restoration.noise_aware import NoiseAwareDenoiser, noise_aware_denoiser
from minicnn.models.restoration.pynet import PyNET, pynet, pynet_narrow
from minicnn.models.restoration.srcnn import SRCNN, srcnn

__all__ = ["DnCNN", "NoiseAwareDenoiser", "PyNET", "SRCNN", "cdncnn_b", "dncnn", "dncnn_b",
           "dncnn_s", "noise_aware_denoiser", "pynet", "pynet_narrow", "srcnn"]
