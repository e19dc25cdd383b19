"""A noise-aware denoiser: one network for every noise level, told the noise at each pixel.

A blind denoiser (DnCNN-B) must guess the noise level from the image; a DnCNN-S trained at
σ = 25 assumes it. When the noise is *known* -- as in medical imaging, where the scanner's
physics gives it: MRI noise has a known standard deviation per coil, and parallel imaging
multiplies it by a spatially varying *g-factor* map -- the denoiser should be given it.
This network follows FFDNet (Zhang, Zuo & Zhang 2018, "FFDNet: Toward a Fast and Flexible
Solution for CNN-Based Image Denoising", IEEE TIP 27(9)):

* the noise level enters as an extra input channel, a *noise map* ``M`` of the standard
  deviation at every pixel (a constant σ, or σ times a g-factor map), so one network covers
  all levels and spatially varying noise;
* the image and the map are pixel-unshuffled by ``downscale`` (2: four sub-images at half
  resolution) before the convolutions and shuffled back after, which quadruples the
  receptive field for the same depth and makes each convolution 4x cheaper;
* unlike FFDNet, it keeps DnCNN's residual learning and batch normalisation: the
  convolutions predict the noise, the output is ``y - R(y, M)``.

Units: train and test it in the same units. In *SNR units* (the image divided by the noise
standard deviation σ, so the noise has unit variance and the signal is measured in
multiples of the noise), ``M`` is 1 everywhere for uniform noise, or the g-factor map; in
``[0, 1]`` intensity units ``M`` is σ / 255 (σ on the 0-255 scale) times the map. The map
may be given as a full ``(N, 1, H, W)`` tensor, one value per image ``(N,)``, or a number.

``snr_units=True`` makes the conversion part of the network, for images in intensity units
with their noise map ``M`` (the standard deviation at each pixel): the convolutions see
``z = y / M`` (SNR units: unit noise everywhere, whatever σ) beside ``M`` itself, predict the
*standardised* noise ``r`` (unit variance at every level, so the last layer's scale does not
depend on σ), and the output is ``y - M r``. Every level gives the convolutions the same
task, the medical-imaging denoiser's idea (work in SNR units, with knowledge of the noise).

Layout::

    y: (N, C, H, W), M: (N, 1, H, W) -> cat -> (N, C + 1, H, W)
      -> pixel unshuffle -> (N, (C + 1) s^2, H / s, W / s)
      -> Conv+ReLU -> (Conv+BN+ReLU) x (depth - 2) -> Conv -> (N, C s^2, H / s, W / s)
      -> pixel shuffle -> R: (N, C, H, W);  output y - R
    (snr_units: y / M instead of y at the input, output y - M R)

An odd ``H`` or ``W`` is padded (replicating the border) to a multiple of ``s`` and the
output cropped back. ``state_dict`` keys: ``model.0`` ... as :class:`DnCNN`. Defaults
(depth 15, 64 features) are FFDNet's grey network's size: 488,708 parameters for one
channel (with BN and biases, summed in the tests).
"""

from __future__ import annotations

from numbers import Real

from minicnn import nn
from minicnn.autograd.creation import full
from minicnn.autograd.ops import cat
from minicnn.autograd.tensor import Tensor
from minicnn.models.input_check import check_image_input
from minicnn.nn import functional as F

__all__ = ["NoiseAwareDenoiser", "noise_aware_denoiser"]


class NoiseAwareDenoiser(nn.Module):
    """``(y: (N, channels, H, W), noise_map) -> (N, channels, H, W)`` denoised.

    Args:
        channels: image channels (1 grey, 3 colour).
        depth: number of convolutions (15); at least 2.
        features: channels of the hidden convolutions (64).
        downscale: the pixel-unshuffle factor ``s`` (2, as FFDNet; 1 turns it off).
        batch_norm: BN after the hidden convolutions.
        snr_units: divide the image by the noise map before the convolutions and multiply
            their noise estimate by it (see the module's docstring); the map must be > 0.
    """

    def __init__(self, channels: int = 1, depth: int = 15, features: int = 64,
                 downscale: int = 2, batch_norm: bool = True, snr_units: bool = False):
        super().__init__()
        for arg, value in (("channels", channels), ("depth", depth), ("features", features),
                           ("downscale", downscale)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"noise_aware_denoiser: {arg} must be a positive integer, "
                                 f"got {value!r}")
        if depth < 2:
            raise ValueError(f"noise_aware_denoiser: depth must be at least 2, got {depth}")
        self.channels, self.downscale, self.snr_units = channels, downscale, bool(snr_units)
        s2 = downscale * downscale
        layers: list[nn.Module] = [nn.Conv2d((channels + 1) * s2, features, 3, padding=1),
                                   nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers.append(nn.Conv2d(features, features, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(features))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(features, channels * s2, 3, padding=1))
        self.model = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def _noise_map(self, y: Tensor, noise_map) -> Tensor:
        """``noise_map`` as an ``(N, 1, H, W)`` tensor like ``y``."""
        n, _, h, w = y.shape
        if isinstance(noise_map, Real) and not isinstance(noise_map, bool):
            return full((n, 1, h, w), float(noise_map), dtype=y.dtype, device=y.device)
        if not isinstance(noise_map, Tensor):
            raise TypeError(f"noise_aware_denoiser: noise_map must be a number or a Tensor of "
                            f"shape (N,) or (N, 1, H, W), got {type(noise_map).__name__}")
        shape = tuple(noise_map.shape)
        if shape == (n,):
            return noise_map.reshape(n, 1, 1, 1).expand(n, 1, h, w)
        if shape != (n, 1, h, w):
            raise ValueError(f"noise_aware_denoiser: noise_map must have shape ({n},) or "
                             f"({n}, 1, {h}, {w}) for an input of shape {tuple(y.shape)}, "
                             f"got {shape}")
        return noise_map

    def noise(self, y: Tensor, noise_map) -> Tensor:
        """The estimated noise ``R(y, M)``: ``(N, channels, H, W)``, in ``y``'s units."""
        check_image_input(y, "noise_aware_denoiser", self.channels, 1)
        s = self.downscale
        h, w = y.shape[2], y.shape[3]
        m = self._noise_map(y, noise_map).to(y.device)
        x = cat([y / m if self.snr_units else y, m], 1)
        pad_h, pad_w = -h % s, -w % s
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        r = F.pixel_shuffle(self.model(F.pixel_unshuffle(x, s)), s)
        r = r[:, :, :h, :w] if pad_h or pad_w else r
        return m * r if self.snr_units else r

    def forward(self, y: Tensor, noise_map) -> Tensor:
        return y - self.noise(y, noise_map)


def noise_aware_denoiser(channels: int = 1, depth: int = 15, features: int = 64,
                         downscale: int = 2, batch_norm: bool = True,
                         snr_units: bool = False) -> NoiseAwareDenoiser:
    """The noise-aware (FFDNet-like) denoiser: image + noise-map channel, one network for all
    noise levels (``snr_units``: the convolutions work on the image in SNR units). Defaults:
    FFDNet's grey size (15 convolutions of 64 channels on 2x2 pixel-unshuffled input),
    488,708 parameters for one channel."""
    return NoiseAwareDenoiser(channels, depth, features, downscale, batch_norm, snr_units)
