"""DnCNN: Zhang, Zuo, Chen, Meng & Zhang 2017, "Beyond a Gaussian Denoiser: Residual
Learning of Deep CNN for Image Denoising" (IEEE TIP 26(7)), Fig. 1.

The network, ``depth`` 3x3 convolutions of ``features`` (64) channels::

    noisy y -> Conv+ReLU -> (Conv+BN+ReLU) x (depth - 2) -> Conv -> noise estimate R(y)
    output: the clean estimate y - R(y)

Residual learning: the convolutions predict the *noise* ``v = y - x``, not the clean image
``x``; the paper's loss ``||R(y) - (y - x)||^2`` equals ``||(y - R(y)) - x||^2``, so training
the output ``y - R(y)`` against the clean image with a mean-squared error is the paper's
training. Noise is nearly a zero-mean Gaussian whatever the image is, which is what makes
batch normalisation (whose statistics it stabilises) and residual learning work so well
together (the paper's Sec. III-C). Every convolution is zero-padded by 1: the output has the
input's size.

The paper's configurations (``CONFIGS``):

* **DnCNN-S** (one known noise level, e.g. σ = 25): depth 17, grey (1 channel),
  trained on 40x40 patches.
* **DnCNN-B** (blind Gaussian denoising, σ in [0, 55]): depth 20, grey.
* **CDnCNN-B** (blind colour denoising): depth 20, 3 channels.

Layer layout and ``state_dict`` keys follow the authors' PyTorch code (KAIR,
``models/network_dncnn.py``: ``model.0`` the first convolution, then ``model.2``,
``model.3`` (BN) ... in one ``nn.Sequential``, every convolution with a bias), so the
authors' released weights (``dncnn_25.pth``, ``dncnn_gray_blind.pth``,
``dncnn_color_blind.pth``) load with ``load_state_dict``. Parameter counts, summed from that
layer table (and checked against an equal PyTorch model in the tests): DnCNN-S grey
557,057; DnCNN-B grey 668,225; CDnCNN-B colour 670,531.

Initialisation: Kaiming normal (fan-in) for the convolutions as the paper ("the method in
[He et al.]"), biases 0; BN weights 1, biases 0.
"""

from __future__ import annotations

from minicnn import nn
from minicnn.models.input_check import check_image_input

__all__ = ["CONFIGS", "DnCNN", "cdncnn_b", "dncnn", "dncnn_b", "dncnn_s"]

# name: (depth, channels): the paper's Sec. IV-A
CONFIGS = {
    "dncnn_s": (17, 1),
    "dncnn_b": (20, 1),
    "cdncnn_b": (20, 3),
}


def _positive_int(name: str, arg: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: {arg} must be a positive integer, got {value!r}")
    return value


class DnCNN(nn.Module):
    """``y: (N, channels, H, W)`` noisy -> ``(N, channels, H, W)`` denoised, ``y - R(y)``.

    :meth:`noise` returns ``R(y)`` itself, the network's estimate of the noise.

    Args:
        channels: image channels (1 grey, 3 colour).
        depth: number of convolutions (17 for DnCNN-S, 20 for DnCNN-B); at least 2.
        features: channels of every hidden convolution (64).
        batch_norm: BN after the hidden convolutions (the paper); False gives DnCNN without
            BN (the paper's ablation, Fig. 2).
    """

    def __init__(self, channels: int = 1, depth: int = 17, features: int = 64,
                 batch_norm: bool = True, name: str = "dncnn"):
        super().__init__()
        self.name = name
        self.channels = _positive_int(name, "channels", channels)
        _positive_int(name, "features", features)
        if _positive_int(name, "depth", depth) < 2:
            raise ValueError(f"{name}: depth must be at least 2 (first and last convolution), "
                             f"got {depth}")
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, padding=1),
                                   nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers.append(nn.Conv2d(features, features, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(features))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(features, channels, 3, padding=1))
        self.model = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def noise(self, y):
        """The estimated noise ``R(y)``: ``(N, channels, H, W) -> (N, channels, H, W)``."""
        check_image_input(y, self.name, self.channels, 1)
        return self.model(y)

    def forward(self, y):
        return y - self.noise(y)


def dncnn(channels: int = 1, depth: int = 17, features: int = 64,
          batch_norm: bool = True) -> DnCNN:
    """DnCNN (Zhang et al. 2017). The defaults are DnCNN-S, grey: 17 convolutions of 64
    channels, 557,057 parameters. ``features``/``depth`` scale it down for the CPU."""
    return DnCNN(channels, depth, features, batch_norm)


def dncnn_s(channels: int = 1) -> DnCNN:
    """DnCNN-S: one known noise level, depth 17 (557,057 parameters grey)."""
    return DnCNN(channels, CONFIGS["dncnn_s"][0], name="dncnn_s")


def dncnn_b(channels: int = 1) -> DnCNN:
    """DnCNN-B: blind Gaussian denoising, depth 20 (668,225 parameters grey)."""
    return DnCNN(channels, CONFIGS["dncnn_b"][0], name="dncnn_b")


def cdncnn_b() -> DnCNN:
    """CDnCNN-B: blind colour denoising, depth 20, 3 channels (670,531 parameters)."""
    depth, channels = CONFIGS["cdncnn_b"]
    return DnCNN(channels, depth, name="cdncnn_b")
