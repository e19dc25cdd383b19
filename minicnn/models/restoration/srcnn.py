"""SRCNN: Dong, Loy, He & Tang 2014/2016, "Image Super-Resolution Using Deep Convolutional
Networks" (ECCV 2014; IEEE TPAMI 38(2)), Fig. 2.

SRCNN does not upscale: its input is the low-resolution image already upscaled to the target
size by bicubic interpolation (``minicnn.data``'s super-resolution pairs make it), and it
restores the detail bicubic blurred away. It works on the luminance (Y of YCbCr) only, the
channel where the eye sees detail; Cb and Cr are upscaled bicubically. The 9-1-5 network::

    Y: (N, 1, H, W) -> conv 9x9, 64 + ReLU   "patch extraction and representation"
                    -> conv 1x1, 32 + ReLU   "non-linear mapping" (one 64-vector to a 32-vector
                                              per pixel: a high-resolution patch code)
                    -> conv 5x5, 1           "reconstruction" (averages overlapping patches)

9*9*64 + 64 + 64*32 + 32 + 5*5*32 + 1 = 8,129 parameters for one channel (the paper's
"8,032" counts weights only, Sec. 4.1: 9*9*64 + 64*32 + 5*5*32 = 8,032).

``padding="valid"`` is the paper (no padding: the output is 12 pixels smaller than the
input in each dimension, 6 on each side, and the loss is taken on the centre); ``"same"``
(the default, as most PyTorch re-implementations) zero-pads every convolution so the output
has the input's size. ``state_dict`` keys ``conv1``, ``conv2``, ``conv3``. Initialisation as
the paper: weights Gaussian with std 0.001, biases 0 (for ``residual=False``).

``residual=True`` (not in the paper; VDSR's global residual learning, Kim, Lee & Lee 2016)
adds the input to the output: the three layers then learn only the detail bicubic lost.
Without it SRCNN must first learn to copy its input (an untrained one outputs ~0, about
10 dB PSNR), which the paper's 10^8 back-propagations afford and a few minutes of CPU
training do not; the parameters are the same 8,129. A residual SRCNN is initialised as
VDSR: He's normal initialisation for the first two layers (std ``sqrt(2 / fan_in)``) and
zeros for the last layer's weights, so the untrained network returns its input exactly
(bicubic's quality) and the first two layers' gradients are not crushed: with the paper's
std 0.001 in all three layers, the gradient reaching the first layer carries the product
of the other two layers' tiny weights (~1e-6 smaller), below Adam's epsilon, and those
layers barely move in a short training.
"""

from __future__ import annotations

from minicnn import nn
from minicnn.models.input_check import check_image_input

__all__ = ["SRCNN", "srcnn"]

PADDINGS = ("same", "valid")


class SRCNN(nn.Module):
    """``x: (N, channels, H, W)`` bicubic-upscaled -> ``(N, channels, H, W)`` (``"same"``)
    or ``(N, channels, H - 12, W - 12)`` (``"valid"``, the paper).

    Args:
        channels: 1 (the Y channel, the paper's main model) or 3 (RGB, the paper's Sec. 5).
        f1, f2, f3: kernel sizes of the three layers (9, 1, 5).
        n1, n2: widths of the first two layers (64, 32).
        padding: "same" or "valid".
        residual: add the input to the output (its centre, for "valid"); initialised as
            VDSR (He normal, the last layer's weights zero).
    """

    def __init__(self, channels: int = 1, f1: int = 9, f2: int = 1, f3: int = 5, n1: int = 64,
                 n2: int = 32, padding: str = "same", residual: bool = False):
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"srcnn: padding must be 'same' or 'valid' (the paper), "
                             f"got {padding!r}")
        for arg, value in (("channels", channels), ("f1", f1), ("f2", f2), ("f3", f3),
                           ("n1", n1), ("n2", n2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"srcnn: {arg} must be a positive integer, got {value!r}")
        for arg, value in (("f1", f1), ("f2", f2), ("f3", f3)):
            if value % 2 == 0:
                raise ValueError(f"srcnn: {arg} must be odd (a centred kernel), got {value}")
        self.channels, self.padding, self.residual = channels, padding, residual
        self.trim = 0 if padding == "same" else (f1 - 1) + (f2 - 1) + (f3 - 1)
        same = padding == "same"
        self.conv1 = nn.Conv2d(channels, n1, f1, padding=f1 // 2 if same else 0)
        self.conv2 = nn.Conv2d(n1, n2, f2, padding=f2 // 2 if same else 0)
        self.conv3 = nn.Conv2d(n2, channels, f3, padding=f3 // 2 if same else 0)
        self.relu = nn.ReLU(inplace=True)
        for conv in (self.conv1, self.conv2, self.conv3):
            if residual:  # VDSR's initialisation (see the module docstring)
                nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            else:  # the paper's
                nn.init.normal_(conv.weight, std=0.001)
            nn.init.zeros_(conv.bias)
        if residual:
            nn.init.zeros_(self.conv3.weight)

    def forward(self, x):
        check_image_input(x, "srcnn", self.channels, self.trim + 1)
        out = self.relu(self.conv1(x))
        out = self.relu(self.conv2(out))
        out = self.conv3(out)
        if not self.residual:
            return out
        t = self.trim // 2
        return out + (x[:, :, t:x.shape[2] - t, t:x.shape[3] - t] if t else x)


def srcnn(channels: int = 1, padding: str = "same", residual: bool = False) -> SRCNN:
    """SRCNN 9-1-5 with 64/32 filters (Dong et al. 2016): 8,129 parameters for one channel.
    ``residual=True`` adds the input to the output (see the module docstring)."""
    return SRCNN(channels, padding=padding, residual=residual)
