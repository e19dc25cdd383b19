"""GoogLeNet (Inception v1): torchvision's version and the network of the paper.

Szegedy et al. 2014, "Going Deeper with Convolutions", Table 1 (input 224x224)::

    layer            size      #1x1  #3x3 reduce  #3x3  #5x5 reduce  #5x5  pool proj
    conv 7x7/2       112x112   64
    max pool 3x3/2   56x56                       (paper: then local response norm)
    conv 1x1, 3x3    56x56     64 -> 192         (paper: then local response norm)
    max pool 3x3/2   28x28
    inception (3a)   28x28     64    96           128   16           32    32
    inception (3b)   28x28     128   128          192   32           96    64
    max pool 3x3/2   14x14
    inception (4a)   14x14     192   96           208   16           48    64   <- aux1
    inception (4b)   14x14     160   112          224   24           64    64
    inception (4c)   14x14     128   128          256   24           64    64
    inception (4d)   14x14     112   144          288   32           64    64   <- aux2
    inception (4e)   14x14     256   160          320   32           128   128
    max pool 3x3/2   7x7                         (torchvision: 2x2/2)
    inception (5a)   7x7       256   160          320   32           128   128
    inception (5b)   7x7       384   192          384   48           128   128
    avg pool 7x7     1x1       (adaptive to 1x1 here, the same at 224)
    dropout, linear  1000      (dropout 40% in the paper, 20% in torchvision)

An Inception module runs four branches on the same input and concatenates them along
the channels: a 1x1 convolution; 1x1 ("reduce") then 3x3; 1x1 then 5x5; 3x3 max pool
(stride 1) then a 1x1 "pool projection". Every convolution is followed by ReLU.

Two variants, one class:

* ``googlenet``: torchvision's, with BatchNorm (eps 0.001) after every convolution
  (``BasicConv2d``), no LRN, the "5x5" branch using a 3x3 kernel (a known torchvision
  bug, pytorch/vision#906, kept so that its weights load), a 2x2 max pool before 5a and
  auxiliary classifiers that pool adaptively to 4x4. 6,624,904 parameters without the
  auxiliary classifiers, 1.498 G mult-adds at 224x224.
* ``googlenet_paper``: the paper's, no BatchNorm (``ConvReLU``: convolution with bias,
  ReLU), LRN in the stem, true 5x5 kernels, a 3x3/2 max pool before 5a, dropout 0.4, and
  the auxiliary classifiers of Section 5: 5x5 average pool with stride 3 (14x14 -> 4x4),
  1x1 convolution with 128 filters + ReLU, fully connected 1024 + ReLU, dropout 0.7, linear
  to the classes. Their losses are added with weight 0.3 (:func:`googlenet_loss`).
  LRN constants are those of the authors' Caffe model (bvlc_googlenet: n=5, alpha=1e-4,
  beta=0.75, k=1, alpha divided by n as ``nn.LocalResponseNorm`` does); initialization is
  bvlc_googlenet's ("xavier": uniform in +-sqrt(3 / fan_in), biases 0.2, classifier
  biases 0).

**How many parameters: the deck's "~5M" against 6.6-7.0 M.** Szegedy et al. 2014 state no
total: Section 1 says the network "uses 12x fewer parameters than" AlexNet (~60M), i.e.
about 5M, and the Inception-v3 paper (Szegedy et al. 2015, Section 1) repeats "GoogLeNet
employed only 5 million parameters". Table 1's "params" column adds up to about 6.8M, 1.0M
of it the final linear layer. Measured here (``sum(p.numel() for p in
model.parameters())``, 1000 classes)::

                                        googlenet_paper   googlenet (torchvision)
    convolutions (+ their biases / BN)      5,973,552         5,599,904
    final linear layer 1024 -> 1000         1,025,000         1,025,000
    total, as used at test time             6,998,552         6,624,904
    each auxiliary classifier              ~3,190,000        ~3,190,000
    total while training (aux_logits)      13,378,280        13,004,888

So the ~5M is the convolutional body counted loosely (5.6-6.0 M here, without the 1M of
the classifier); with the classifier minicnn gives 6.6 M (torchvision's BatchNorm
variant: no convolution biases, its "5x5" branch a 3x3) and 7.0 M (the paper's true 5x5
kernels and biases), close to Table 1's 6.8M. The auxiliary classifiers (6.4 M together,
mostly their 2048 -> 1024 fully connected layers) are discarded at inference (Section 5).

In training mode with ``aux_logits=True`` the network returns
``GoogLeNetOutputs(logits, aux_logits2, aux_logits1)``, otherwise the logits alone, as
torchvision does. ``transform_input=True`` maps inputs normalized with ImageNet's
mean/std to the (x - 0.5) / 0.5 normalization the ported Google weights expect.
"""

from __future__ import annotations

from collections import namedtuple

from minicnn import nn
from minicnn.autograd.ops import cat
from minicnn.models.input_check import check_image_input
from minicnn.nn import functional as F

__all__ = [
    "BasicConv2d", "ConvReLU", "GOOGLENET_VARIANTS", "GoogLeNet", "GoogLeNetOutputs",
    "INCEPTION_TABLE", "Inception", "InceptionAux", "googlenet", "googlenet_loss",
    "googlenet_paper",
]

GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])

# ---------------------------------------------------------------- the table, as data

# Table 1: module: (in, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj); None is a
# 3x3 max pool with stride 2 between the stages (the last one 2x2 in torchvision)
INCEPTION_TABLE: dict[str, tuple[int, int, int, int, int, int, int] | None] = {
    "inception3a": (192, 64, 96, 128, 16, 32, 32),
    "inception3b": (256, 128, 128, 192, 32, 96, 64),
    "maxpool3": None,
    "inception4a": (480, 192, 96, 208, 16, 48, 64),
    "inception4b": (512, 160, 112, 224, 24, 64, 64),
    "inception4c": (512, 128, 128, 256, 24, 64, 64),
    "inception4d": (512, 112, 144, 288, 32, 64, 64),
    "inception4e": (528, 256, 160, 320, 32, 128, 128),
    "maxpool4": None,
    "inception5a": (832, 256, 160, 320, 32, 128, 128),
    "inception5b": (832, 384, 192, 384, 48, 128, 128),
}
AUX_INPUTS = {"aux1": "inception4a", "aux2": "inception4d"}  # classifier: after this module

# variant: what differs between torchvision's network and the paper's
GOOGLENET_VARIANTS: dict[str, dict] = {
    "googlenet": {"conv_block": "BasicConv2d", "kernel_5x5": 3, "lrn": False,
                  "maxpool4_kernel": 2, "aux_pool": "adaptive", "dropout": 0.2,
                  "min_input_size": 15, "min_aux_input_size": 15},
    "googlenet_paper": {"conv_block": "ConvReLU", "kernel_5x5": 5, "lrn": True,
                        "maxpool4_kernel": 3, "aux_pool": "paper", "dropout": 0.4,
                        "min_input_size": 31, "min_aux_input_size": 79},
}
TRANSFORM_MEAN, TRANSFORM_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def renormalize_imagenet_input(x):
    """ImageNet-normalized input -> ``(x - 0.5) / 0.5`` normalized input, per channel
    (``transform_input=True`` of GoogLeNet and Inception v3, as torchvision)."""
    channels = [x[:, c:c + 1] * (std / 0.5) + (mean - 0.5) / 0.5
                for c, (mean, std) in enumerate(zip(TRANSFORM_MEAN, TRANSFORM_STD, strict=True))]
    return cat(channels, 1)


# ---------------------------------------------------------------- blocks


class BasicConv2d(nn.Module):
    """Convolution (no bias), BatchNorm (eps 0.001), ReLU: torchvision's GoogLeNet and
    Inception v3 unit. ``kwargs`` go to ``nn.Conv2d`` (kernel_size, stride, padding)."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class ConvReLU(nn.Module):
    """Convolution with bias, ReLU: the paper's unit (2014, before BatchNorm)."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=True, **kwargs)

    def forward(self, x):
        return F.relu(self.conv(x))


CONV_BLOCKS = {"BasicConv2d": BasicConv2d, "ConvReLU": ConvReLU}


class Inception(nn.Module):
    """Four branches, concatenated: ``x: (N, in, H, W) -> (N, ch1x1 + ch3x3 + ch5x5 +
    pool_proj, H, W)``. ``kernel_5x5``: the kernel of the third branch (5 in the paper,
    3 in torchvision)."""

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int,
                 ch5x5: int, pool_proj: int, conv_block=None, kernel_5x5: int = 3):
        super().__init__()
        conv_block = conv_block or BasicConv2d
        self.branch1 = conv_block(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            conv_block(in_channels, ch3x3red, kernel_size=1),
            conv_block(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(
            conv_block(in_channels, ch5x5red, kernel_size=1),
            conv_block(ch5x5red, ch5x5, kernel_size=kernel_5x5, padding=kernel_5x5 // 2))
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            conv_block(in_channels, pool_proj, kernel_size=1))

    def forward(self, x):
        return cat([self.branch1(x), self.branch2(x), self.branch3(x),
                    self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: ``x: (N, in_channels, 14, 14) -> (N, num_classes)``.

    Pool to 4x4 (``pool="adaptive"``: torchvision's adaptive average pool; ``"paper"``: a
    5x5 average pool with stride 3, then an adaptive 4x4 pool that is the identity on the
    paper's 14x14 maps), 1x1 convolution to 128 channels, fully connected 2048 -> 1024 +
    ReLU, dropout, fully connected to the classes.
    """

    def __init__(self, in_channels: int, num_classes: int, conv_block=None,
                 dropout: float = 0.7, pool: str = "adaptive"):
        super().__init__()
        if pool not in ("adaptive", "paper"):
            raise ValueError(f"InceptionAux: pool must be 'adaptive' or 'paper', got {pool!r}")
        conv_block = conv_block or BasicConv2d
        self.pool = pool
        self.conv = conv_block(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x):
        if self.pool == "paper":
            x = F.avg_pool2d(x, kernel_size=5, stride=3)
        x = F.adaptive_avg_pool2d(x, (4, 4))
        x = self.conv(x).flatten(1)
        x = self.dropout(F.relu(self.fc1(x)))
        return self.fc2(x)


# ---------------------------------------------------------------- the network


class GoogLeNet(nn.Module):
    """``x: (N, in_channels, H, W) -> (N, num_classes)`` (or :data:`GoogLeNetOutputs` in
    training mode with ``aux_logits``). ``variant``: "googlenet" (torchvision's) or
    "googlenet_paper"; the other arguments as torchvision's ``GoogLeNet``."""

    def __init__(self, num_classes: int = 1000, aux_logits: bool = True,
                 transform_input: bool = False, init_weights: bool | None = None,
                 dropout: float | None = None, dropout_aux: float = 0.7, in_channels: int = 3,
                 variant: str = "googlenet"):
        super().__init__()
        if variant not in GOOGLENET_VARIANTS:
            raise ValueError(f"GoogLeNet: variant must be one of {list(GOOGLENET_VARIANTS)}, "
                             f"got {variant!r}")
        if transform_input and in_channels != 3:
            raise ValueError(f"{variant}: transform_input=True needs in_channels=3 (RGB), got "
                             f"in_channels={in_channels}")
        cfg = GOOGLENET_VARIANTS[variant]
        conv_block = CONV_BLOCKS[cfg["conv_block"]]
        self.name, self.in_channels = variant, in_channels
        self.min_input_size, self.min_aux_input_size = cfg["min_input_size"], \
            cfg["min_aux_input_size"]
        self.aux_logits, self.transform_input = aux_logits, transform_input

        # the stem (with the paper's two local response normalizations)
        self.conv1 = conv_block(in_channels, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.lrn1 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0) if cfg["lrn"] else None
        self.conv2 = conv_block(64, 64, kernel_size=1)
        self.conv3 = conv_block(64, 192, kernel_size=3, padding=1)
        self.lrn2 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0) if cfg["lrn"] else None
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        # the Inception stages of Table 1
        for name, row in INCEPTION_TABLE.items():
            if row is None:
                kernel = cfg["maxpool4_kernel"] if name == "maxpool4" else 3
                setattr(self, name, nn.MaxPool2d(kernel, stride=2, ceil_mode=True))
            else:
                setattr(self, name, Inception(*row, conv_block=conv_block,
                                              kernel_5x5=cfg["kernel_5x5"]))

        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes, conv_block, dropout_aux, cfg["aux_pool"])
            self.aux2 = InceptionAux(528, num_classes, conv_block, dropout_aux, cfg["aux_pool"])
        else:
            self.aux1 = self.aux2 = None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=cfg["dropout"] if dropout is None else dropout)
        self.fc = nn.Linear(1024, num_classes)

        if init_weights is None or init_weights:
            if variant == "googlenet":
                init_googlenet_(self)
            else:
                init_googlenet_paper_(self)

    def _transform_input(self, x):
        return renormalize_imagenet_input(x) if self.transform_input else x

    def forward(self, x):
        with_aux = self.training and self.aux_logits
        check_image_input(x, self.name, self.in_channels,
                          self.min_aux_input_size if with_aux else self.min_input_size)
        x = self._transform_input(x)
        x = self.maxpool1(self.conv1(x))                      # N x 64 x 56 x 56
        if self.lrn1 is not None:
            x = self.lrn1(x)
        x = self.conv3(self.conv2(x))                         # N x 192 x 56 x 56
        if self.lrn2 is not None:
            x = self.lrn2(x)
        x = self.maxpool2(x)                                  # N x 192 x 28 x 28
        x = self.inception3b(self.inception3a(x))             # N x 480 x 28 x 28
        x = self.inception4a(self.maxpool3(x))                # N x 512 x 14 x 14
        aux1 = self.aux1(x) if with_aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))  # N x 528 x 14 x 14
        aux2 = self.aux2(x) if with_aux else None
        x = self.maxpool4(self.inception4e(x))                # N x 832 x 7 x 7
        x = self.inception5b(self.inception5a(x))             # N x 1024 x 7 x 7
        x = self.fc(self.dropout(self.avgpool(x).flatten(1)))  # N x num_classes
        return GoogLeNetOutputs(x, aux2, aux1) if with_aux else x


def init_googlenet_(model: nn.Module) -> None:
    """torchvision's: truncated normal (std 0.01, cut at +-2) for convolution and linear
    weights, BatchNorm weight 1 and bias 0; linear biases keep their default."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)


def init_googlenet_paper_(model: GoogLeNet) -> None:
    """bvlc_googlenet's: uniform in +-sqrt(3 / fan_in) ("xavier" in Caffe) for every weight,
    biases 0.2, except the biases of the classifiers (``fc`` and the aux ``fc2``), 0."""
    classifiers = {id(model.fc)} | {id(a.fc2) for a in (model.aux1, model.aux2) if a is not None}
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.kaiming_uniform_(m.weight, nonlinearity="linear")
            nn.init.constant_(m.bias, 0.0 if id(m) in classifiers else 0.2)


def googlenet_loss(output, target, aux_weight: float = 0.3):
    """Cross-entropy of the main classifier plus ``aux_weight`` (0.3 in the paper) times
    that of each auxiliary classifier. ``output``: :data:`GoogLeNetOutputs` or plain logits
    ``(N, num_classes)``; ``target``: class indices ``(N,)``. Returns a scalar tensor."""
    if isinstance(output, GoogLeNetOutputs):
        loss = F.cross_entropy(output.logits, target)
        for aux in (output.aux_logits1, output.aux_logits2):
            if aux is not None:
                loss = loss + aux_weight * F.cross_entropy(aux, target)
        return loss
    return F.cross_entropy(output, target)


# ---------------------------------------------------------------- named variants


def googlenet(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> GoogLeNet:
    """torchvision's GoogLeNet (BatchNorm): 6,624,904 parameters without the auxiliary
    classifiers (``aux_logits=False``), 13,004,888 with them (the default, as
    ``torchvision.models.googlenet()``); 1.498 G mult-adds at 224x224; inputs >= 15."""
    return GoogLeNet(num_classes, in_channels=in_channels, variant="googlenet", **kwargs)


def googlenet_paper(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> GoogLeNet:
    """GoogLeNet as in Szegedy et al. 2014 (no BatchNorm, LRN, 5x5 kernels, the paper's
    auxiliary classifiers; see the module docstring). Train with :func:`googlenet_loss`."""
    return GoogLeNet(num_classes, in_channels=in_channels, variant="googlenet_paper", **kwargs)
