"""PyNET: Ignatov, Van Gool & Timofte 2020, "Replacing Mobile Camera ISP with a Single Deep
Learning Model" (CVPR Workshops), Fig. 2: a camera's RAW Bayer image to an RGB photo.

The RAW mosaic (H x W, one colour per pixel) is packed into four half-resolution channels
(R, G1, G2, B of each 2x2 Bayer cell): the input is ``(N, 4, H/2, W/2)``. PyNET is an
inverted pyramid over five scales: an encoder pools the features four times (levels 1-5,
from H/2 down to H/32), then the image is rebuilt from the coarsest level up. Each level
refines the upsampled features of the level below with multi-scale blocks and emits its own
RGB image (a 3x3 convolution and a sigmoid), so the network is trained level by level,
coarsest first: level 5 learns global colour and brightness at 1/32 of the size, level 1
the fine texture, and level 0 (a transposed step on top) upsamples to the full H x W.

Building blocks (the paper's Fig. 2, layer names and ``state_dict`` keys as the authors'
PyTorch code, aiff22/PyNET-PyTorch ``model.py``, so their weights load):

* ``ConvLayer``: reflection padding, a convolution (``conv2d``), an optional affine
  instance norm (``instance``), LeakyReLU(0.2);
* ``ConvMultiBlock(cin, cout, k)``: parallel branches of two 3x3, two 5x5, ... up to two
  ``k x k`` convolutions (``conv_3a``, ``conv_3b``, ``conv_5a`` ...), concatenated: it outputs
  ``cout * (k + 1) / 2`` channels (``k`` in 3, 5, 7, 9);
* ``UpsampleConvLayer``: bilinear x2 (align_corners=True), a 3x3 convolution, LeakyReLU.

``BLOCKS`` below is the layer table in multiples of the base width ``w`` (32 in the paper:
levels 1..5 have w, 2w, 4w, 8w, 16w channels). The full network (w = 32, instance norm
on levels 2-5 and on level 1's middle blocks, as the authors train it) has 47,554,738
parameters, counted from the authors' model definition; at w = 8 it has 1/16 of that
(2,985,370), and ``pynet_narrow``, its CPU variant (below), trains on a CPU.

``x: (N, 4, H/2, W/2) -> (N, 3, H, W)`` at level 0, ``(N, 3, H/2^level, W/2^level)`` at
level ``level`` >= 1; ``H/2`` and ``W/2`` must be multiples of 16 (four poolings) and at
least 32 (level 5's reflection padding needs 2x2 pixels).

``residual=True`` (not in the paper): global residual learning as VDSR's (Kim, Lee &
Lee 2016). Every level's image is the classical ISP's -- bilinear demosaicing of the
packed RGGB RAW, then the sRGB curve (``linear=True``; clipped to [0, 1] otherwise),
exactly :func:`minicnn.baselines.bilinear_raw_to_rgb` (:func:`bilinear_isp`), averaged
over ``2^level`` x ``2^level`` blocks for level ``level`` -- plus the level's output
convolution, without the sigmoid; those convolutions start at zero, so the untrained
network IS the bilinear ISP and training only has to learn the denoising and the detail.
Level 0's last convolution (``conv_l0_d1``) also reads the ISP's image beside the
upsampled features (3 more input channels, 81 more weights than the published head).

``pynet_narrow()``, this project's CPU variant (w = 8, 2,325,063 parameters; the
published narrow network has 2,985,370), is residual and departs from the paper in four
more ways, each found by measuring why the narrow network first trained (residual, the
rest as published: 26.03 dB after 640 steps, +0.86 dB over bilinear demosaicing) fell
behind a fixed Gaussian blur of the bilinear image (26.38 dB) and a plain 6-layer CNN on
the packed RAW (+2.55 dB after 1,280 steps):

* ``subpixel``: level 0 is the ISP's image plus a sub-pixel convolution (ESPCN's, Shi et
  al. 2016) of level 1's features -- ``conv_t0``, 3x3 to 12 maps, pixel-shuffled to 3 at
  full size, one correction per colour and Bayer site -- plus a 3x3 filter of the ISP's
  image (``conv_l0_d1``). The published head upsamples level 1's features bilinearly to
  ``w / 2`` maps that one zero-initialised convolution reads; there the trained network
  corrected the image about as much as the 3x3 filter of the ISP's image alone did
  (25.54 dB after 160 steps with the features path cut, 25.55 dB with it).
* ``align_corners=False`` in the five upsampling layers: with ``True`` (the authors')
  each x2 upsampling stretches the map by one pixel, a shift of up to a quarter of the
  coarser map's pixel at the borders, so the features of level ``k`` reach level 1
  shifted by up to ``2^(k-2) - 1/2`` of its pixels (7.5 from level 5); the pyramid's
  coarse features then hurt level 1 more than they helped (cutting them off improved it
  by +0.35 dB after 320 steps). With ``False``: +1.74 dB after 720 steps and +1.87 dB
  after 960, against +1.37 after 720 with ``True`` (the same settings otherwise).
* ``dilated``: the multi-scale blocks' 5x5, 7x7 and 9x9 convolutions are 3x3 ones with
  dilation 2, 3, 4: the same windows at 9 taps, so a step costs about 0.6 of the
  published one (the branches' receptive fields, PyNET's multi-scale idea, are kept; the
  same PSNR after 320 steps, within the runs' spread of about 0.2 dB).
* instance norm on level 1's middle blocks only, not on levels 2-5: on the 64x64
  training patches levels 4 and 5 are 4x4 and 2x2 maps whose instance statistics are
  mostly noise (+0.26 dB after 320 steps, measured with the gradients' norm clipped at
  0.5; the recipe, which trains levels 0 and 1 only, is stable without clipping).
  Without it on level 1 too the training
  diverged (at Adam 0.002) or learnt slower (+0.78 against +1.23 dB after 320 steps): the
  norm is kept there.

The numbers above are exploration runs on the recipe's data and settings (seed 0, a
PyTorch transcription of these layers, as in the tests); the recipe's own measured run
is in :mod:`minicnn.train.raw2rgb` and the README.
As published, PyNET must first learn the whole mapping from RAW to sRGB (demosaicing,
the tone curve, the colours), which the authors' days of GPU training afford and a
quarter of an hour of CPU does not: the narrow network trained as published for 400
steps reached 17 dB on the test photographs, 8 dB below bilinear demosaicing. The ISP has
no parameters. The output is not clipped (the loss sees it as it is);
:func:`minicnn.train.raw2rgb.raw2rgb_image` clips it.
"""

from __future__ import annotations

import numpy as np

from minicnn import nn
from minicnn.autograd import no_grad, tensor
from minicnn.autograd.ops import cat
from minicnn.models.input_check import check_image_input
from minicnn.nn import functional as F

__all__ = ["BLOCKS", "ConvLayer", "ConvMultiBlock", "PyNET", "UpsampleConvLayer",
           "bilinear_isp", "pynet", "pynet_narrow"]

# block name: (input channels / w, branch output channels / w, largest kernel, norm)
# input None: the RAW input's channels. norm: "in" instance norm (if enabled), "l1" instance
# norm on level 1 (if enabled), None never. Upsampling layers: conv_t*: (in / w, out / w).
BLOCKS = {
    # the encoder: level 1 (H/2) .. level 4 (H/16), a 2x2 max pool between levels
    "conv_l1_d1": (None, 1, 3, None),
    "conv_l2_d1": (1, 2, 3, "in"),
    "conv_l3_d1": (2, 4, 3, "in"),
    "conv_l4_d1": (4, 8, 3, "in"),
    # level 5 (H/32)
    "conv_l5_d1": (8, 16, 3, "in"),
    "conv_l5_d2": (16, 16, 3, "in"),
    "conv_l5_d3": (16, 16, 3, "in"),
    "conv_l5_d4": (16, 16, 3, "in"),
    # level 4 (H/16)
    "conv_l4_d3": (16, 8, 3, "in"),
    "conv_l4_d4": (8, 8, 3, "in"),
    "conv_l4_d5": (8, 8, 3, "in"),
    "conv_l4_d6": (8, 8, 3, "in"),
    "conv_l4_d8": (16, 8, 3, "in"),
    # level 3 (H/8)
    "conv_l3_d3": (8, 4, 5, "in"),
    "conv_l3_d4": (8, 4, 5, "in"),
    "conv_l3_d5": (8, 4, 5, "in"),
    "conv_l3_d6": (8, 4, 5, "in"),
    "conv_l3_d8": (16, 4, 3, "in"),
    # level 2 (H/4)
    "conv_l2_d3": (4, 2, 5, "in"),
    "conv_l2_d5": (6, 2, 7, "in"),
    "conv_l2_d6": (6, 2, 7, "in"),
    "conv_l2_d7": (6, 2, 7, "in"),
    "conv_l2_d8": (6, 2, 7, "in"),
    "conv_l2_d10": (8, 2, 5, "in"),
    "conv_l2_d12": (6, 2, 3, "in"),
    # level 1 (H/2)
    "conv_l1_d3": (2, 1, 5, None),
    "conv_l1_d5": (3, 1, 7, "l1"),
    "conv_l1_d6": (3, 1, 9, "l1"),
    "conv_l1_d7": (4, 1, 9, "l1"),
    "conv_l1_d8": (4, 1, 9, "l1"),
    "conv_l1_d9": (4, 1, 9, "l1"),
    "conv_l1_d10": (4, 1, 7, "l1"),
    "conv_l1_d12": (4, 1, 5, "l1"),
    "conv_l1_d14": (4, 1, 3, None),
}
# upsampling layers: (input channels / w, output channels / w); conv_t0's output is w / 2
UPSAMPLERS = {"conv_t4a": (16, 8), "conv_t4b": (16, 8), "conv_t3a": (8, 4), "conv_t3b": (8, 4),
              "conv_t2a": (4, 2), "conv_t2b": (4, 2), "conv_t1a": (2, 1), "conv_t1b": (2, 1)}
# each level's RGB output: the channels / w it reads
OUTPUTS = {"conv_l5_out": 16, "conv_l4_out": 8, "conv_l3_out": 4, "conv_l2_out": 2,
           "conv_l1_out": 1}


# bilinear demosaicing's kernels (see minicnn.data.raw.demosaic_bilinear): red, green, blue
_DEMOSAIC_KERNELS = np.array([[[1, 2, 1], [2, 4, 2], [1, 2, 1]],
                              [[0, 1, 0], [1, 4, 1], [0, 1, 0]],
                              [[1, 2, 1], [2, 4, 2], [1, 2, 1]]], dtype=np.float32)[:, None]


def _rggb_masks(h: int, w: int) -> np.ndarray:
    """``(1, 3, h, w)`` float32: 1 where the RGGB mosaic records red, green, blue."""
    masks = np.zeros((1, 3, h, w), dtype=np.float32)
    masks[0, 0, 0::2, 0::2] = 1
    masks[0, 1, 0::2, 1::2] = masks[0, 1, 1::2, 0::2] = 1
    masks[0, 2, 1::2, 1::2] = 1
    return masks


def bilinear_isp(x, linear: bool = True):
    """The classical ISP on packed RGGB RAW, as a network's first step:
    ``x: (N, 4, H/2, W/2) -> (N, 3, H, W)``: the mosaic (a pixel shuffle undoes the
    packing), bilinear demosaicing by normalised convolution (every missing colour the
    mean of its recorded neighbours; at the border, of those that exist), then the sRGB
    curve of the values clipped to [0, 1] (``linear``) or the clipping alone. The same as
    :func:`minicnn.baselines.bilinear_raw_to_rgb` on each image, on any device; computed
    without gradients (the input is data)."""
    with no_grad():
        mosaic = F.pixel_shuffle(x, 2)  # channel dy*2 + dx -> pixel (2i + dy, 2j + dx)
        masks = _rggb_masks(*mosaic.shape[2:])
        kernels = tensor(_DEMOSAIC_KERNELS, dtype=x.dtype, device=x.device)
        weights = F.conv2d(tensor(masks, dtype=x.dtype, device=x.device), kernels, padding=1,
                           groups=3)
        rgb = F.conv2d(mosaic * tensor(masks, dtype=x.dtype, device=x.device), kernels,
                       padding=1, groups=3) / weights
        rgb = rgb.clamp(0.0, 1.0)
        if not linear:
            return rgb
        curve = 1.055 * rgb.maximum(0.0031308) ** (1 / 2.4) - 0.055
        return (rgb * 12.92).where(rgb <= 0.0031308, curve)


class ConvLayer(nn.Module):
    """Reflection-padded ``k x k`` convolution (+ affine instance norm) (+ LeakyReLU(0.2)):
    ``(N, cin, H, W) -> (N, cout, H, W)``. ``dilated`` (not in the paper): for ``k`` > 3, a
    3x3 convolution with dilation ``(k - 1) / 2``, the same ``k x k`` window at 9 taps."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 relu: bool = True, instance_norm: bool = False, dilated: bool = False):
        super().__init__()
        # dilated: a 3x3 convolution spread over the k x k window (dilation (k - 1) / 2)
        size, dilation = (3, kernel_size // 2) if dilated and kernel_size > 3 else (kernel_size, 1)
        self.conv2d = nn.Conv2d(in_channels, out_channels, size, padding=kernel_size // 2,
                                dilation=dilation, padding_mode="reflect")
        self.instance = nn.InstanceNorm2d(out_channels, affine=True) if instance_norm else None
        self.relu = nn.LeakyReLU(0.2) if relu else None

    def forward(self, x):
        x = self.conv2d(x)
        if self.instance is not None:
            x = self.instance(x)
        return self.relu(x) if self.relu is not None else x


class ConvMultiBlock(nn.Module):
    """Parallel branches of two 3x3, 5x5, ... ``max_conv_size`` convolutions, concatenated:
    ``(N, cin, H, W) -> (N, cout * (max_conv_size + 1) // 2, H, W)``. ``dilated``: the
    branches' ``k x k`` convolutions as dilated 3x3 ones (see :class:`ConvLayer`)."""

    def __init__(self, in_channels: int, out_channels: int, max_conv_size: int,
                 instance_norm: bool, dilated: bool = False):
        super().__init__()
        if max_conv_size not in (3, 5, 7, 9):
            raise ValueError(f"ConvMultiBlock: max_conv_size must be 3, 5, 7 or 9, "
                             f"got {max_conv_size!r}")
        self.kernel_sizes = tuple(range(3, max_conv_size + 1, 2))
        for k in self.kernel_sizes:
            setattr(self, f"conv_{k}a", ConvLayer(in_channels, out_channels, k,
                                                  instance_norm=instance_norm, dilated=dilated))
            setattr(self, f"conv_{k}b", ConvLayer(out_channels, out_channels, k,
                                                  instance_norm=instance_norm, dilated=dilated))

    def forward(self, x):
        branches = [getattr(self, f"conv_{k}b")(getattr(self, f"conv_{k}a")(x))
                    for k in self.kernel_sizes]
        return branches[0] if len(branches) == 1 else cat(branches, 1)


class UpsampleConvLayer(nn.Module):
    """Bilinear x2 (``align_corners=True`` as the authors'), a reflection-padded 3x3
    convolution, LeakyReLU(0.2): ``(N, cin, H, W) -> (N, cout, 2H, 2W)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 align_corners: bool = True):
        super().__init__()
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=align_corners)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size,
                                padding=kernel_size // 2, padding_mode="reflect")
        self.relu = nn.LeakyReLU(0.2)

    def forward(self, x):
        return self.relu(self.conv2d(self.upsample(x)))


class PyNET(nn.Module):
    """``x: (N, in_channels, H/2, W/2)`` packed RAW -> ``(N, 3, H/2^level, W/2^level)`` RGB in
    (0, 1) (level 0: ``(N, 3, H, W)``).

    Args:
        level: the level whose image :meth:`forward` returns (0 = full resolution; the
            authors train 5, 4, 3, 2, 1, 0 in turn); levels below it are not computed.
        width: the base width ``w`` (32 in the paper; 8 for :func:`pynet_narrow`).
        in_channels: the packed RAW channels (4 for a Bayer mosaic).
        instance_norm: instance norm on levels 2-5 (the paper: True).
        instance_norm_level_1: instance norm on level 1's middle blocks (the authors: True).
        residual: every level's image is the bilinear ISP's (:func:`bilinear_isp`, averaged
            down to the level's size) plus its output convolution, which starts at zero
            (not in the paper; see the module's docstring). False: the paper's sigmoid.
        linear: for ``residual``, the RAW records linear light (the ISP applies the sRGB
            curve).
        dilated: the multi-scale blocks' ``k x k`` convolutions (k > 3) as 3x3 ones with
            dilation ``(k - 1) / 2`` (not in the paper; see the module's docstring).
        subpixel: for ``residual``, level 0 is the ISP's image plus a sub-pixel convolution
            of level 1's features (12 maps, pixel-shuffled to 3 at full size) plus a 3x3
            filter of the ISP's image (not in the paper; see the module's docstring).
        align_corners: the upsampling layers' bilinear x2 (the authors': True; False keeps
            the upsampled features on their pixels, see the module's docstring).
    """

    def __init__(self, level: int = 0, width: int = 32, in_channels: int = 4,
                 instance_norm: bool = True, instance_norm_level_1: bool = True,
                 residual: bool = False, linear: bool = True, dilated: bool = False,
                 subpixel: bool = False, align_corners: bool = True):
        super().__init__()
        if isinstance(level, bool) or level not in range(6):
            raise ValueError(f"pynet: level must be 0, 1, 2, 3, 4 or 5, got {level!r}")
        for arg, value in (("width", width), ("in_channels", in_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"pynet: {arg} must be a positive integer, got {value!r}")
        if width % 2:
            raise ValueError(f"pynet: width must be even (level 0 has width / 2 channels), "
                             f"got {width}")
        if residual and in_channels != 4:
            raise ValueError(f"pynet: residual=True needs the packed RGGB RAW, in_channels=4, "
                             f"got {in_channels}")
        if subpixel and not residual:
            raise ValueError("pynet: subpixel=True corrects the ISP's image, it needs "
                             "residual=True, got residual=False")
        self.level, self.width, self.in_channels = level, width, in_channels
        self.residual, self.linear = bool(residual), bool(linear)
        self.dilated, self.subpixel = bool(dilated), bool(subpixel)
        norms = {None: False, "in": instance_norm, "l1": instance_norm_level_1}
        for name, (cin, cout, k, norm) in BLOCKS.items():
            cin = in_channels if cin is None else cin * width
            setattr(self, name, ConvMultiBlock(cin, cout * width, k, norms[norm], dilated))
        for name, (cin, cout) in UPSAMPLERS.items():
            setattr(self, name, UpsampleConvLayer(cin * width, cout * width,
                                                  align_corners=align_corners))
        for name, cin in OUTPUTS.items():
            setattr(self, name, ConvLayer(cin * width, 3, 3, relu=False))
        if subpixel:  # 12 maps at H/2 -> pixel shuffle -> 3 at H; a filter of the ISP's image
            self.conv_t0 = ConvLayer(width, 12, 3, relu=False)
            self.conv_l0_d1 = ConvLayer(3, 3, 3, relu=False)
        else:
            self.conv_t0 = UpsampleConvLayer(width, width // 2, align_corners=align_corners)
            # residual: level 0's last convolution also sees the ISP's image it corrects
            self.conv_l0_d1 = ConvLayer(width // 2 + (3 if residual else 0), 3, 3, relu=False)
        self.pool = nn.MaxPool2d(2, 2)
        if residual:  # the untrained network is the bilinear ISP at every level
            for name in (*OUTPUTS, "conv_l0_d1") + (("conv_t0",) if subpixel else ()):
                nn.init.zeros_(getattr(self, name).conv2d.weight)
                nn.init.zeros_(getattr(self, name).conv2d.bias)

    # each level: (its skip from the encoder, the two upsampled inputs from below)
    # -> (its output convolution's map, the two upsampled outputs for the level above);
    # _image makes the map the level's RGB image

    def _level_5(self, x):
        for name in ("conv_l5_d1", "conv_l5_d2", "conv_l5_d3", "conv_l5_d4"):
            x = getattr(self, name)(x)
        return self.conv_l5_out(x), self.conv_t4a(x), self.conv_t4b(x)

    def _level_4(self, skip, up_a, up_b):
        x = self.conv_l4_d3(cat([skip, up_a], 1))
        x = self.conv_l4_d4(x) + x
        x = self.conv_l4_d5(x) + x
        x = self.conv_l4_d6(x)
        x = self.conv_l4_d8(cat([x, up_b], 1))
        return self.conv_l4_out(x), self.conv_t3a(x), self.conv_t3b(x)

    def _level_3(self, skip, up_a, up_b):
        x = cat([skip, up_a], 1)
        x = self.conv_l3_d3(x) + x
        x = self.conv_l3_d4(x) + x
        x = self.conv_l3_d5(x) + x
        x = self.conv_l3_d6(x)
        x = self.conv_l3_d8(cat([x, skip, up_b], 1))
        return self.conv_l3_out(x), self.conv_t2a(x), self.conv_t2b(x)

    def _level_2(self, skip, up_a, up_b):
        x = cat([self.conv_l2_d3(cat([skip, up_a], 1)), skip], 1)
        x = self.conv_l2_d5(x) + x
        x = self.conv_l2_d6(x) + x
        x = self.conv_l2_d7(x) + x
        x = self.conv_l2_d8(x)
        x = self.conv_l2_d10(cat([x, skip], 1))
        x = self.conv_l2_d12(cat([x, up_b], 1))
        return self.conv_l2_out(x), self.conv_t1a(x), self.conv_t1b(x)

    def _level_1(self, skip, up_a, up_b):
        x = cat([self.conv_l1_d3(cat([skip, up_a], 1)), skip], 1)
        x = self.conv_l1_d6(self.conv_l1_d5(x))
        x = self.conv_l1_d7(x) + x
        x = self.conv_l1_d8(x) + x
        x = self.conv_l1_d9(x) + x
        x = self.conv_l1_d12(cat([self.conv_l1_d10(x), skip], 1))
        x = self.conv_l1_d14(cat([x, up_b, skip], 1))
        return self.conv_l1_out(x), self.conv_t0(x)

    def pyramid(self, x) -> dict[int, object]:
        """The RGB image of every level from 5 down to ``self.level``: ``{level: (N, 3, h, w)}``
        with ``h = H / 2^level`` (level 0: ``H``)."""
        check_image_input(x, "pynet", self.in_channels, 32)  # level 5: >= 2x2 to reflect
        if x.shape[2] % 16 or x.shape[3] % 16:
            raise ValueError(f"pynet expects input (N, {self.in_channels}, H, W) with H and W "
                             f"multiples of 16 (four 2x2 poolings), got {tuple(x.shape)}")
        base = bilinear_isp(x, self.linear) if self.residual else None
        skips = []
        for name in ("conv_l1_d1", "conv_l2_d1", "conv_l3_d1", "conv_l4_d1"):
            x = getattr(self, name)(x)
            skips.append(x)
            x = self.pool(x)
        images = {}
        out, up_a, up_b = self._level_5(x)
        images[5] = self._image(out, 5, base)
        for level, step in ((4, self._level_4), (3, self._level_3), (2, self._level_2)):
            if self.level >= level + 1:
                return images
            out, up_a, up_b = step(skips[level - 1], up_a, up_b)
            images[level] = self._image(out, level, base)
        if self.level >= 2:
            return images
        out, up = self._level_1(skips[0], up_a, up_b)
        images[1] = self._image(out, 1, base)
        if self.level == 0:
            if self.subpixel:  # up: conv_t0's 12 maps at H/2, one per (colour, Bayer site)
                images[0] = F.pixel_shuffle(up, 2) + self.conv_l0_d1(base) + base
            else:
                if base is not None:  # the last convolution also sees the image it corrects
                    up = cat([up, base], 1)
                images[0] = self._image(self.conv_l0_d1(up), 0, base)
        return images

    @staticmethod
    def _image(out, level: int, base):
        """Level ``level``'s RGB image from its output convolution's ``out``: the sigmoid of
        it (the paper; ``base`` None) or, residual, ``out`` plus the bilinear ISP's image
        ``base`` ``(N, 3, H, W)`` averaged over ``2^level`` x ``2^level`` blocks."""
        if base is None:
            return out.sigmoid()
        if level:
            with no_grad():
                base = F.avg_pool2d(base, 2 ** level)
        return out + base

    def forward(self, x):
        return self.pyramid(x)[self.level]


def pynet(level: int = 0, width: int = 32, instance_norm: bool = True,
          instance_norm_level_1: bool = True) -> PyNET:
    """PyNET (Ignatov et al. 2020) as published: base width 32, 47,554,738 parameters (the
    authors' model definition, aiff22/PyNET-PyTorch, as their train and test scripts build
    it). ``level`` picks the output (0: full resolution)."""
    return PyNET(level, width, 4, instance_norm, instance_norm_level_1)


def pynet_narrow(level: int = 0, residual: bool = True, linear: bool = True) -> PyNET:
    """PyNET at base width 8 (levels of 8 ... 128 channels): the same inverted pyramid of
    multi-scale blocks with an image per level, small enough to train on a CPU.

    By default (``residual``) this project's CPU variant, 2,325,063 parameters; it departs
    from the paper in four ways, all measured (see the module's docstring): it learns a
    correction of the bilinear ISP's image (of linear-light RAW with ``linear``); the
    multi-scale blocks' 5x5 ... 9x9 convolutions are dilated 3x3 ones (``dilated``); level
    0 is a sub-pixel convolution of level 1's features (``subpixel``); instance norm only
    on level 1 (not on levels 2-5). ``residual=False`` is the published network at width 8
    (2,985,370 parameters; a sigmoid image per level)."""
    if not residual:
        return PyNET(level, width=8, residual=False, linear=linear)
    return PyNET(level, width=8, instance_norm=False, instance_norm_level_1=True,
                 residual=True, linear=linear, dilated=True, subpixel=True,
                 align_corners=False)
