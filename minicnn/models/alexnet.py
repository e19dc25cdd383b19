"""AlexNet: torchvision's version and the network of the paper.

Krizhevsky, Sutskever & Hinton 2012, "ImageNet Classification with Deep Convolutional
Neural Networks", Section 3 and Figure 2 (input 227x227 -- the paper says 224, but only
227 gives its 55x55 first layer: (227 - 11) / 4 + 1 = 55)::

    layer   paper (alexnet_paper)                         torchvision (alexnet)
    conv1   96 11x11/4, ReLU, LRN, max pool 3/2   55->27  64 11x11/4 pad 2, ReLU, max pool 3/2
    conv2   256 5x5 pad 2 (2 groups), ReLU, LRN,  27->13  192 5x5 pad 2, ReLU, max pool 3/2
            max pool 3/2
    conv3   384 3x3 pad 1, ReLU                   13      384 3x3 pad 1, ReLU
    conv4   384 3x3 pad 1 (2 groups), ReLU        13      256 3x3 pad 1, ReLU
    conv5   256 3x3 pad 1 (2 groups), ReLU,       13->6   256 3x3 pad 1, ReLU, max pool 3/2
            max pool 3/2
    avgpool adaptive 6x6 (the identity at 227)            adaptive 6x6
    fc6     9216 -> 4096, ReLU, dropout 0.5               dropout 0.5, 9216 -> 4096, ReLU
    fc7     4096 -> 4096, ReLU, dropout 0.5               dropout 0.5, 4096 -> 4096, ReLU
    fc8     4096 -> 1000                                  4096 -> 1000

"(2 groups)": the paper trained on two GPUs, each holding half of every layer's kernels;
conv2, conv4 and conv5 only see the kernel maps of their own GPU, conv3 and the fully
connected layers see all of them (Figure 2). ``alexnet_paper(grouped=True)`` (the default)
reproduces that with ``groups=2``: 60,965,224 parameters -- "60 million parameters" in the
paper's abstract. ``grouped=False`` is the single-tower network, 62,378,344 parameters.

Local response normalization (Section 3.3) is
``b_c = a_c / (k + alpha * sum_{c' within n/2 of c} a_c'^2) ** beta`` with ``k=2, n=5,
alpha=1e-4, beta=0.75``. ``nn.LocalResponseNorm`` (like PyTorch and Caffe) divides its
``alpha`` by ``n``, so the paper's formula is ``nn.LocalResponseNorm(5, alpha=5 * 1e-4,
beta=0.75, k=2)``. The pools overlap (3x3 windows, stride 2, Section 3.4).

Initialization: torchvision's ``alexnet`` keeps the layers' default initialization;
``alexnet_paper`` uses the paper's (Section 5): weights from N(0, 0.01^2), biases 1 in
conv2, conv4, conv5 and the hidden fully connected layers, 0 elsewhere.

The adaptive 6x6 average pool is torchvision's addition: at the paper's 227x227 it is the
identity, and it lets the network take other sizes (at least ``min_input_size``).
"""

from __future__ import annotations

from typing import NamedTuple

from minicnn import nn
from minicnn.models.input_check import check_image_input

__all__ = ["ALEXNET_CONFIGS", "AlexNet", "Conv", "alexnet", "alexnet_paper"]


# ---------------------------------------------------------------- the table, as data


class Conv(NamedTuple):
    """A convolution followed by ReLU: ``out_channels`` filters ``kernel x kernel``."""

    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    groups: int = 1


LRN = "LRN"  # local response normalization, the paper's parameters
POOL = "M"  # overlapping max pool, 3x3 windows, stride 2

# name: (feature layers, min input size)
ALEXNET_CONFIGS: dict[str, tuple[list, int]] = {
    "alexnet": ([Conv(64, 11, 4, 2), POOL, Conv(192, 5, 1, 2), POOL, Conv(384, 3, 1, 1),
                 Conv(256, 3, 1, 1), Conv(256, 3, 1, 1), POOL], 63),
    "alexnet_paper": ([Conv(96, 11, 4, 0), LRN, POOL, Conv(256, 5, 1, 2, groups=2), LRN, POOL,
                       Conv(384, 3, 1, 1), Conv(384, 3, 1, 1, groups=2),
                       Conv(256, 3, 1, 1, groups=2), POOL], 67),
}

LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 1e-4, 0.75, 2.0  # Section 3.3


def local_response_norm() -> nn.LocalResponseNorm:
    """The paper's normalization (``alpha`` multiplied by ``n``: see the module docstring)."""
    return nn.LocalResponseNorm(LRN_SIZE, alpha=LRN_SIZE * LRN_ALPHA, beta=LRN_BETA, k=LRN_K)


def make_features(cfg: list, in_channels: int = 3, grouped: bool = True) -> nn.Sequential:
    """The convolutional part: each ``Conv`` gives Conv2d + ReLU, ``LRN`` a local response
    normalization, ``POOL`` a 3x3 max pool with stride 2. ``grouped=False`` ignores the
    ``groups`` of the table (a single-tower network)."""
    layers: list[nn.Module] = []
    for item in cfg:
        if item == POOL:
            layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
        elif item == LRN:
            layers.append(local_response_norm())
        else:
            layers.append(nn.Conv2d(in_channels, item.out_channels, item.kernel, item.stride,
                                    item.padding, groups=item.groups if grouped else 1))
            layers.append(nn.ReLU(inplace=True))
            in_channels = item.out_channels
    return nn.Sequential(*layers)


# ---------------------------------------------------------------- the network


class AlexNet(nn.Module):
    """``x: (N, in_channels, H, W) -> (N, num_classes)``, ``H, W >= min_input_size``.

    ``features`` (the convolutions), ``avgpool`` (adaptive, to 6x6), ``classifier`` (three
    fully connected layers). ``dropout_first=True`` is torchvision's order (dropout on the
    input of fc6 and fc7), ``False`` the paper's (dropout on the output of fc6 and fc7).
    """

    def __init__(self, features: nn.Sequential, num_classes: int = 1000, dropout: float = 0.5,
                 dropout_first: bool = True, in_channels: int = 3, min_input_size: int = 63,
                 name: str = "AlexNet"):
        super().__init__()
        self.name, self.in_channels, self.min_input_size = name, in_channels, min_input_size
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        last = [m for m in features.modules() if isinstance(m, nn.Conv2d)][-1].out_channels
        if dropout_first:
            self.classifier = nn.Sequential(
                nn.Dropout(p=dropout), nn.Linear(last * 6 * 6, 4096), nn.ReLU(inplace=True),
                nn.Dropout(p=dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
                nn.Linear(4096, num_classes))
        else:
            self.classifier = nn.Sequential(
                nn.Linear(last * 6 * 6, 4096), nn.ReLU(inplace=True), nn.Dropout(p=dropout),
                nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(p=dropout),
                nn.Linear(4096, num_classes))

    def forward(self, x):
        check_image_input(x, self.name, self.in_channels, self.min_input_size)
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def init_alexnet_paper_(model: AlexNet) -> None:
    """Section 5: weights ~ N(0, 0.01^2); biases 1 in conv2, conv4, conv5 and fc6, fc7
    (to give the ReLUs positive inputs early on), 0 in conv1, conv3 and fc8."""
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    ones = {id(m) for m in (convs[1], convs[3], convs[4], linears[0], linears[1])}
    for m in convs + linears:
        nn.init.normal_(m.weight, 0.0, 0.01)
        nn.init.constant_(m.bias, 1.0 if id(m) in ones else 0.0)


# ---------------------------------------------------------------- named variants


def alexnet(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> AlexNet:
    """torchvision's AlexNet ("One weird trick", Krizhevsky 2014: 64-192-384-256-256
    filters, no LRN): 61,100,840 parameters, 0.714 G mult-adds at 224x224; inputs >= 63."""
    cfg, min_size = ALEXNET_CONFIGS["alexnet"]
    return AlexNet(make_features(cfg, in_channels), num_classes, dropout, dropout_first=True,
                   in_channels=in_channels, min_input_size=min_size, name="alexnet")


def alexnet_paper(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5,
                  grouped: bool = True) -> AlexNet:
    """AlexNet as in Krizhevsky et al. 2012 (see the module docstring): 96 first filters,
    LRN after conv1 and conv2, overlapping pools, the paper's initialization.

    ``grouped=True``: the two-GPU network (conv2/4/5 in 2 groups), 60,965,224 parameters;
    ``grouped=False``: single tower, 62,378,344. Input 227x227 (at least 67x67).
    """
    cfg, min_size = ALEXNET_CONFIGS["alexnet_paper"]
    model = AlexNet(make_features(cfg, in_channels, grouped), num_classes, dropout,
                    dropout_first=False, in_channels=in_channels, min_input_size=min_size,
                    name="alexnet_paper")
    init_alexnet_paper_(model)
    return model
