"""DeconvNet: Noh, Hong & Han 2015, "Learning Deconvolution Network for Semantic
Segmentation" (ICCV), Table 1 and Fig. 2.

An encoder-decoder. The encoder is VGG-16's 13 convolutions (configuration D) whose five
2x2 max pools remember *where* each maximum came from (the "switches",
``return_indices=True``); VGG-16's first two fully connected layers become convolutions
(fc6: 7x7 over the 7x7x512 map of pool5, fc7: 1x1). The decoder mirrors the encoder:
``deconv-fc6`` (a 7x7 transposed convolution) grows the 1x1 code back to 7x7, and each
stage *unpools* (:func:`~minicnn.nn.functional.max_unpool2d`: every value goes back to the
position its pooling switch recorded, zeros elsewhere -- a sparse map that keeps the
object's exact locations) and then *deconvolves* (3x3 transposed convolutions, which
densify the sparse map). Every convolution and deconvolution of fc6 onwards is followed by
BatchNorm and ReLU. Table 1, for a 224x224 input::

    encoder                                   decoder
    conv1_1, 1_2   3x3  224 x 224 x 64        deconv1_1, 1_2  3x3   224 x 224 x 64
    pool1          2x2  112 x 112 x 64        unpool1         2x2   224 x 224 x 64
    conv2_1, 2_2   3x3  112 x 112 x 128       deconv2_1, 2_2  3x3   112 x 112 x 128, 64
    pool2          2x2   56 x  56 x 128       unpool2         2x2   112 x 112 x 128
    conv3_1..3_3   3x3   56 x  56 x 256       deconv3_1..3_3  3x3    56 x  56 x 256, 256, 128
    pool3          2x2   28 x  28 x 256       unpool3         2x2    56 x  56 x 256
    conv4_1..4_3   3x3   28 x  28 x 512       deconv4_1..4_3  3x3    28 x  28 x 512, 512, 256
    pool4          2x2   14 x  14 x 512       unpool4         2x2    28 x  28 x 512
    conv5_1..5_3   3x3   14 x  14 x 512       deconv5_1..5_3  3x3    14 x  14 x 512
    pool5          2x2    7 x   7 x 512       unpool5         2x2    14 x  14 x 512
    fc6            7x7    1 x   1 x 4096      deconv-fc6      7x7     7 x   7 x 512
    fc7            1x1    1 x   1 x 4096      output          1x1   224 x 224 x 21

(the decoder column reads bottom to top). The paper gives no parameter total; summed from
the table: 251,797,205 with the BatchNorm layers here (the SegNet paper, Badrinarayanan et
al. 2017, quotes 252M for DeconvNet).

Where this differs from the paper: the encoder is torchvision's ``vgg16().features``
without BatchNorm (the paper puts BN after every layer, encoder included), so that
:func:`load_vgg16_weights` copies torchvision's ``vgg16`` weights and the encoder
computes exactly VGG-16's features; ``encoder_batch_norm=True`` gives the paper's BN
encoder instead (torchvision's ``vgg16_bn`` weights load into it). The output layer is a
1x1 convolution (the paper's is a 1x1 deconvolution: the same map). Any input of at least
224x224 works (pool5 must be at least 7x7 for fc6); the output has the input's size.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from minicnn import nn
from minicnn.models.input_check import check_image_input
from minicnn.models.vgg import VGG_CONFIGS, make_layers
from minicnn.serialization import load_arrays

__all__ = ["DeconvNet", "deconvnet", "load_vgg16_weights"]

FC_KERNEL = 7  # fc6 sees the whole 7x7 pool5 map of a 224x224 image


def _conv_bn_relu(conv: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


def _stages(cfg: list[int | str], in_channels: int) -> list[list[tuple[int, int]]]:
    """The encoder's convolutions ``(in, out)`` grouped by stage (the runs between pools)."""
    stages, current, cin = [], [], in_channels
    for v in cfg:
        if v == "M":
            stages.append(current)
            current = []
        else:
            current.append((cin, v))
            cin = v
    if current or not stages:
        raise ValueError(f"DeconvNet: cfg must end with a pool 'M' and have one, got {cfg}")
    return stages


class DeconvNet(nn.Module):
    """``x: (N, in_channels, H, W) -> (N, num_classes, H, W)`` logits per pixel.

    ``cfg`` is the encoder in VGG's notation (numbers: 3x3 conv widths, "M": a 2x2 pool with
    switches), VGG-16's by default; the decoder mirrors it: each stage's convolutions
    ``(in, out)`` become deconvolutions ``(out, in)`` in reverse order (the first stage's
    last one keeps its width: ``64 -> 64`` rather than ``64 -> 3``). ``fc_channels``: the
    width of fc6/fc7 (4096). ``H, W >= 7 * 2 ** pools`` (224).

    Modules: ``features`` (torchvision's ``vgg16().features`` layout, so its keys are
    VGG-16's), ``fc6``, ``fc7``, ``deconv_fc6``, ``unpool``, ``decoder`` (one Sequential
    per stage, deepest first) and ``classifier``.
    """

    def __init__(self, cfg: list[int | str] | None = None, num_classes: int = 21,
                 in_channels: int = 3, fc_channels: int = 4096,
                 encoder_batch_norm: bool = False, name: str = "deconvnet"):
        super().__init__()
        cfg = list(VGG_CONFIGS["D"] if cfg is None else cfg)
        stages = _stages(cfg, in_channels)
        self.name, self.in_channels, self.num_classes = name, in_channels, num_classes
        self.min_input_size = FC_KERNEL * 2 ** len(stages)
        self.features = make_layers(cfg, encoder_batch_norm, in_channels)
        for m in self.features:
            if isinstance(m, nn.MaxPool2d):
                m.return_indices = True  # keep the switches
        width = stages[-1][-1][1]
        self.fc6 = _conv_bn_relu(nn.Conv2d(width, fc_channels, FC_KERNEL), fc_channels)
        self.fc7 = _conv_bn_relu(nn.Conv2d(fc_channels, fc_channels, 1), fc_channels)
        self.deconv_fc6 = _conv_bn_relu(nn.ConvTranspose2d(fc_channels, width, FC_KERNEL),
                                        width)
        self.unpool = nn.MaxUnpool2d(2, 2)
        self.decoder = nn.ModuleList()
        for i, stage in reversed(list(enumerate(stages))):
            layers = []
            for j, (cin, cout) in enumerate(reversed(stage)):
                out = cout if i == 0 and j == len(stage) - 1 else cin
                layers += list(_conv_bn_relu(nn.ConvTranspose2d(cout, out, 3, padding=1), out))
            self.decoder.append(nn.Sequential(*layers))
        self.classifier = nn.Conv2d(stages[0][-1][1], num_classes, 1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward_features(self, x):
        """The encoder: ``x -> (pool5 output (N, 512, H / 32, W / 32), switches, sizes)``,
        the pooling switches and the sizes before each pool, first pool first."""
        switches, sizes = [], []
        for m in self.features:
            if isinstance(m, nn.MaxPool2d):
                sizes.append(tuple(x.shape[-2:]))
                x, indices = m(x)
                switches.append(indices)
            else:
                x = m(x)
        return x, switches, sizes

    def forward(self, x):
        check_image_input(x, self.name, self.in_channels, self.min_input_size)
        x, switches, sizes = self.forward_features(x)
        x = self.deconv_fc6(self.fc7(self.fc6(x)))
        for stage, indices, size in zip(self.decoder, reversed(switches), reversed(sizes),
                                        strict=True):
            x = stage(self.unpool(x, indices, output_size=size))
        return self.classifier(x)


def load_vgg16_weights(model: DeconvNet, source) -> DeconvNet:
    """Copy VGG-16's convolution weights into ``model.features``, in place; returns ``model``.

    ``source``: a VGG-16 (minicnn's ``vgg16()``/``vgg16_bn()``, e.g. after
    ``load_weights(vgg, "vgg16.safetensors")``), any mapping with torchvision's ``vgg16``
    keys (``features.0.weight`` ...; a torch ``state_dict`` works) or the path of a
    ``.safetensors``/``.npz`` file with them (``minicnn export-torchvision vgg16 ...``).
    The classifier's weights are not used (fc6/fc7 here have other shapes). A missing key
    or a shape that does not fit raises a ValueError naming them.
    """
    if isinstance(source, (str, os.PathLike)):
        where, state = str(source), load_arrays(source)
    elif isinstance(source, nn.Module):
        where, state = type(source).__name__, source.state_dict()
    elif isinstance(source, Mapping):
        where, state = "the state dict", source
    else:
        raise TypeError(f"load_vgg16_weights: source must be a VGG model, a state dict or a "
                        f"file path, got {type(source).__name__}")
    wanted = model.features.state_dict()
    problems = [f"missing key 'features.{k}'" for k in wanted if f"features.{k}" not in state]
    problems += [
        f"features.{k}: {where} has shape {tuple(state[f'features.{k}'].shape)}, the encoder "
        f"expects {tuple(v.shape)}"
        for k, v in wanted.items()
        if f"features.{k}" in state and tuple(state[f"features.{k}"].shape) != tuple(v.shape)]
    if problems:
        raise ValueError(f"load_vgg16_weights: {where} does not fit the VGG-16 encoder of "
                         f"{model.name}: " + "; ".join(problems[:5]))
    model.features.load_state_dict(
        {k: np.asarray(state[f"features.{k}"]) for k in wanted})
    return model


def deconvnet(num_classes: int = 21, in_channels: int = 3, fc_channels: int = 4096,
              encoder_batch_norm: bool = False,
              vgg16_weights: str | os.PathLike | None = None) -> DeconvNet:
    """DeconvNet (Noh et al. 2015, Table 1): VGG-16 encoder with pooling switches, fc6/fc7 as
    convolutions, the mirrored unpooling + deconvolution decoder; 21 classes (PASCAL VOC).
    251,797,205 parameters (summed from Table 1 in the tests). ``vgg16_weights``: a file
    of torchvision's ``vgg16`` (``vgg16_bn`` with ``encoder_batch_norm``) weights to start
    the encoder from, as the paper does (:func:`load_vgg16_weights`)."""
    model = DeconvNet(None, num_classes, in_channels, fc_channels, encoder_batch_norm)
    if vgg16_weights is not None:
        load_vgg16_weights(model, vgg16_weights)
    return model
