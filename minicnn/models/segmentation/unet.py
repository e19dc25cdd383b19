"""U-Net: Ronneberger, Fischer & Brox 2015, "U-Net: Convolutional Networks for Biomedical
Image Segmentation" (MICCAI), Fig. 1.

The paper's network, one row per resolution (sizes for its 572x572 input tile)::

    contracting path                     expansive path
    572 -> 570 -> 568  1 -> 64 -> 64    -> crop, concat ->  392 -> 390 -> 388  128 -> 64 -> 64
     | max pool 2x2                                          ^ up-conv 2x2 (128 -> 64)
    284 -> 282 -> 280  64 -> 128 -> 128 -> crop, concat ->  200 -> 198 -> 196  256 -> 128 -> 128
     |                                                       ^ up-conv 2x2 (256 -> 128)
    140 -> 138 -> 136  128 -> 256 -> 256 -> crop, concat -> 104 -> 102 -> 100  512 -> 256 -> 256
     |                                                       ^ up-conv 2x2 (512 -> 256)
     68 ->  66 ->  64  256 -> 512 -> 512 -> crop, concat ->  56 ->  54 ->  52  1024 -> 512 -> 512
     |                                                       ^ up-conv 2x2 (1024 -> 512)
     32 ->  30 ->  28  512 -> 1024 -> 1024 (the bottleneck) -'
                                     then a 1x1 conv 64 -> 2 classes: 388 x 388 x 2

Every arrow within a row is an unpadded ("valid") 3x3 convolution + ReLU, so each one
trims a pixel on every side; a 2x2 max pool (stride 2) halves the size and the channels
double; a 2x2 up-convolution (a transposed convolution, stride 2) doubles the size and
halves the channels; the encoder's feature map is cropped to the centre of the
decoder's and concatenated with it (a "long-range skip": the decoder gets back the fine
detail the pooling threw away). The output is smaller than the input (the network sees
a 92-pixel margin on each side of every output pixel); the paper tiles large images
("overlap-tile") with mirrored borders.

``padding="same"`` (not in the paper, the common modern variant) pads every 3x3
convolution by 1, so the output has the input's size for any input of at least
``2 ** depth`` pixels: an odd size that a pool rounds down is restored by zero-padding
the up-convolution's output to the skip's size before the concatenation.

``base_width`` (64) is the width of the first level, ``depth`` (4) the number of
poolings; ``batch_norm=True`` puts a BatchNorm after every 3x3 convolution (not in the
paper; it makes training from scratch on small data much easier). Initialization as the
paper: Gaussian with std ``sqrt(2 / fan_in)`` (Kaiming normal), biases 0.
"""

from __future__ import annotations

from minicnn import nn
from minicnn.autograd.ops import cat
from minicnn.nn import functional as F

__all__ = ["DoubleConv", "UNet", "contract", "unet", "unet_output_size"]

PADDINGS = ("valid", "same")


class DoubleConv(nn.Sequential):
    """Two 3x3 convolutions, each followed by (BatchNorm and) ReLU: one row of Fig. 1.

    ``x: (N, in_channels, H, W) -> (N, out_channels, H - 4, W - 4)`` for ``padding=0`` (the
    paper), ``(N, out_channels, H, W)`` for ``padding=1``.
    """

    def __init__(self, in_channels: int, out_channels: int, padding: int = 0,
                 batch_norm: bool = False):
        layers: list[nn.Module] = []
        for cin in (in_channels, out_channels):
            layers.append(nn.Conv2d(cin, out_channels, 3, padding=padding, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


def unet_output_size(size: int, depth: int = 4, padding: str = "valid") -> int:
    """The output size (height or width) of a U-Net for an input of ``size`` pixels, or 0 if
    some feature map would vanish (572 -> 388 for the paper's network)."""
    trim = 4 if padding == "valid" else 0  # two 3x3 convolutions
    sizes = []
    for _ in range(depth):
        size -= trim
        if size < 2:
            return 0
        sizes.append(size)
        size //= 2
    size -= trim  # the bottleneck
    for skip in reversed(sizes):
        size = (2 * size if padding == "valid" else skip) - trim
        if size < 1:
            return 0
    return size if size >= 1 else 0


def _resize_to(x, height: int, width: int):
    """Centre-crop (valid: the paper's "copy and crop") or zero-pad (same) the last two
    dimensions of ``x`` to ``height x width``."""
    dh, dw = height - x.shape[2], width - x.shape[3]
    if dh == 0 and dw == 0:
        return x
    top = dh // 2 if dh >= 0 else -((-dh) // 2)
    left = dw // 2 if dw >= 0 else -((-dw) // 2)
    return F.pad(x, (left, dw - left, top, dh - top))


def contract(x, encoder, pool, bottleneck) -> tuple:
    """The contracting path: each ``encoder`` block then ``pool``, then the ``bottleneck``.
    Returns ``(bottleneck features, [each block's output, finest first])`` -- the skips the
    expansive path concatenates (U-Net) or nothing uses (a regression head on the encoder,
    ``landmarks.py``)."""
    skips = []
    for block in encoder:
        x = block(x)
        skips.append(x)
        x = pool(x)
    return bottleneck(x), skips


class UNet(nn.Module):
    """``x: (N, in_channels, H, W) -> (N, num_classes, H_out, W_out)`` logits per pixel.

    ``H_out = unet_output_size(H, depth, padding)``: 388 for 572 (``padding="valid"``, the
    paper); ``H`` itself for ``padding="same"``. An input too small for the depth raises a
    ValueError naming the smallest size that works.

    Modules: ``encoder`` (``depth`` :class:`DoubleConv`), ``pool``, ``bottleneck``,
    ``upconvs`` (``depth`` 2x2 transposed convolutions), ``decoder`` (``depth``
    :class:`DoubleConv`, deepest first) and ``classifier`` (the 1x1 convolution).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, base_width: int = 64,
                 depth: int = 4, padding: str = "valid", batch_norm: bool = False,
                 name: str = "unet"):
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"{name}: padding must be 'valid' (the paper) or 'same', "
                             f"got {padding!r}")
        for arg, value in (("in_channels", in_channels), ("num_classes", num_classes),
                           ("base_width", base_width), ("depth", depth)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: {arg} must be a positive integer, got {value!r}")
        self.name, self.in_channels, self.num_classes = name, in_channels, num_classes
        self.depth, self.padding = depth, padding
        pad = 0 if padding == "valid" else 1
        widths = [base_width * 2 ** i for i in range(depth + 1)]  # 64 ... 1024
        self.encoder = nn.ModuleList(
            DoubleConv(cin, cout, pad, batch_norm)
            for cin, cout in zip([in_channels, *widths[:-2]], widths[:-1], strict=True))
        self.pool = nn.MaxPool2d(2, 2)
        self.bottleneck = DoubleConv(widths[-2], widths[-1], pad, batch_norm)
        self.upconvs = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                     for i in reversed(range(depth)))
        self.decoder = nn.ModuleList(DoubleConv(2 * widths[i], widths[i], pad, batch_norm)
                                     for i in reversed(range(depth)))
        self.classifier = nn.Conv2d(base_width, num_classes, 1)
        self.min_input_size = next(s for s in range(1, 2 ** (depth + 4))
                                   if unet_output_size(s, depth, padding) > 0)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _check(self, x) -> None:
        shape = tuple(x.shape)
        if len(shape) != 4 or shape[1] != self.in_channels:
            raise ValueError(f"{self.name} expects input (N, {self.in_channels}, H, W), got "
                             f"shape {shape}")
        if min(unet_output_size(s, self.depth, self.padding) for s in shape[2:]) < 1:
            raise ValueError(
                f"{self.name} (padding={self.padding!r}, depth {self.depth}) needs H, W >= "
                f"{self.min_input_size}: an input of {shape[2]}x{shape[3]} vanishes before "
                f"the last layer")

    def forward(self, x):
        self._check(x)
        x, skips = contract(x, self.encoder, self.pool, self.bottleneck)
        for upconv, block, skip in zip(self.upconvs, self.decoder, reversed(skips),
                                       strict=True):
            x = upconv(x)
            if self.padding == "valid":  # copy and crop
                skip = _resize_to(skip, x.shape[2], x.shape[3])
            else:  # an odd size rounded down by the pool: pad back to the skip's size
                x = _resize_to(x, skip.shape[2], skip.shape[3])
            x = block(cat([skip, x], 1))
        return self.classifier(x)


def unet(in_channels: int = 1, num_classes: int = 2, base_width: int = 64, depth: int = 4,
         padding: str = "valid", batch_norm: bool = False) -> UNet:
    """U-Net (Ronneberger et al. 2015). The defaults are the paper's network (Fig. 1: one
    input channel, two classes, 64 -> 1024 channels, valid convolutions, 572 -> 388):
    31,030,658 parameters (summed from Fig. 1 in the tests). ``padding="same"`` keeps the
    input size; ``base_width``/``depth`` scale it down (e.g. 16 and 3 for small images)."""
    return UNet(in_channels, num_classes, base_width, depth, padding, batch_norm)
