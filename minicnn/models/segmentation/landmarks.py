"""Landmark detection on the U-Net: heatmaps (landmarks as segmentation) and the L2
coordinate-regression baseline, on the same encoder.

* :class:`LandmarkUNet` (:func:`landmark_unet`): a same-padding U-Net with one output
  channel per landmark, trained towards Gaussian heatmaps (Tompson et al. 2014, "Joint
  Training of a Convolutional Network and a Graphical Model for Human Pose Estimation";
  Newell et al. 2016, "Stacked Hourglass Networks"). Every output pixel votes with the
  context its receptive field sees, and the long skips keep full resolution, so a
  landmark is found where the evidence is, and an occluded one from the shape around it.
* :class:`LandmarkRegressor` (:func:`landmark_regressor`): DeepPose's formulation (Toshev &
  Szegedy 2014): the same contracting path (:func:`~minicnn.models.segmentation.unet.contract`)
  flattened into fully connected layers that output the ``2K`` coordinates, trained with
  an L2 loss. It must learn the mapping from features to numbers globally, with no
  translation equivariance.

Both take ``(N, in_channels, H, W)`` images; the heatmap net returns ``(N, K, H, W)``
heatmaps (decode them with ``minicnn.data.landmarks.decode_heatmaps`` or the
differentiable ``minicnn.nn.functional.soft_argmax``), the regressor ``(N, K, 2)``
coordinates ``(x, y)`` in pixels. Each says which in its ``output`` attribute
(``"heatmaps"`` or ``"coordinates"``).
"""

from __future__ import annotations

from minicnn import nn
from minicnn.models.segmentation.unet import UNet, contract

__all__ = ["LandmarkRegressor", "LandmarkUNet", "landmark_regressor", "landmark_unet"]


class LandmarkUNet(UNet):
    """``x: (N, in_channels, H, W) -> (N, num_landmarks, H, W)`` heatmaps: a same-padding
    :class:`~minicnn.models.segmentation.unet.UNet` with batch norm and one output channel
    per landmark, whose 1x1 classifier starts at zero (every heatmap flat)."""

    output = "heatmaps"

    def __init__(self, num_landmarks: int = 5, in_channels: int = 3, base_width: int = 16,
                 depth: int = 3):
        super().__init__(in_channels, num_landmarks, base_width, depth, padding="same",
                         batch_norm=True, name="landmark_unet")
        self.num_landmarks = num_landmarks
        nn.init.zeros_(self.classifier.weight)  # flat heatmaps at first: no landmark favoured


class LandmarkRegressor(nn.Module):
    """``x: (N, in_channels, S, S) -> (N, num_landmarks, 2)`` coordinates in pixels.

    The contracting path of :class:`LandmarkUNet` (``encoder``, ``pool``, ``bottleneck``:
    the same modules, widths and initialization) followed by ``head``: flatten, a hidden
    fully connected layer of ``hidden`` units with ReLU, and ``2 K`` outputs, read as
    offsets from the image centre in units of the image size. Fixed input size
    ``image_size`` (a multiple of ``2 ** depth``).
    """

    output = "coordinates"

    def __init__(self, num_landmarks: int = 5, in_channels: int = 3, base_width: int = 16,
                 depth: int = 3, image_size: int = 32, hidden: int = 128):
        super().__init__()
        if image_size < 2**depth or image_size % 2**depth:
            raise ValueError(f"landmark_regressor: image_size must be a positive multiple of "
                             f"2 ** depth = {2**depth}, got {image_size}")
        unet = UNet(in_channels, num_landmarks, base_width, depth, padding="same",
                    batch_norm=True, name="landmark_regressor")
        self.encoder, self.pool, self.bottleneck = unet.encoder, unet.pool, unet.bottleneck
        side = image_size // 2**depth
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(base_width * 2**depth * side * side, hidden), nn.ReLU(True),
            nn.Linear(hidden, 2 * num_landmarks))
        self.num_landmarks, self.in_channels, self.image_size = num_landmarks, in_channels, \
            image_size

    def forward(self, x):
        shape = tuple(x.shape)
        if len(shape) != 4 or shape[1:] != (self.in_channels, self.image_size, self.image_size):
            raise ValueError(f"landmark_regressor expects input (N, {self.in_channels}, "
                             f"{self.image_size}, {self.image_size}), got shape {shape}")
        features, _ = contract(x, self.encoder, self.pool, self.bottleneck)
        offsets = self.head(features).reshape(shape[0], self.num_landmarks, 2)
        return (offsets + 0.5) * self.image_size


def landmark_unet(num_landmarks: int = 5, in_channels: int = 3, base_width: int = 16,
                  depth: int = 3) -> LandmarkUNet:
    """The heatmap landmark detector: a same-padding U-Net, ``num_landmarks`` heatmaps."""
    return LandmarkUNet(num_landmarks, in_channels, base_width, depth)


def landmark_regressor(num_landmarks: int = 5, in_channels: int = 3, base_width: int = 16,
                       depth: int = 3, image_size: int = 32, hidden: int = 128
                       ) -> LandmarkRegressor:
    """The L2-regression baseline on :func:`landmark_unet`'s encoder: ``2 K`` coordinates."""
    return LandmarkRegressor(num_landmarks, in_channels, base_width, depth, image_size, hidden)
