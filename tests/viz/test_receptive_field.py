"""Receptive fields against the published values and against a brute-force gradient probe.

Published: Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural
Networks", Distill 2019, Table 1: VGG-16 212 px (effective stride 32) at pool5; AlexNet
195 px (stride 32) at the end of its features (conv5's stage, after its max pool; conv5
itself sees 163 px); ResNet-50 v1 (the stride in a block's first 1x1) 483 px. VGG-16's
conv5_3 is pool5 less one 2x2 pool at jump 16: 212 - 16 = 196 px. torchvision's (and
minicnn's) ResNet-50 is v1.5, the stride in the 3x3, which gives 427 px; the stages' values
are worked out in the test's comments.
"""

from __future__ import annotations

import numpy as np
import pytest

import minicnn
from minicnn import nn
from minicnn.models import alexnet
from minicnn.models.vgg import VGG_CONFIGS, make_layers
from minicnn.viz import plot_receptive_field, receptive_box, receptive_field
from minicnn.viz.receptive_field import receptive_field_table


def _by_name(rows):
    return {r.name: r for r in rows}


def test_vgg16_conv5_3_and_pool5():
    rows = _by_name(receptive_field(make_layers(VGG_CONFIGS["D"]), (3, 32, 32)))
    assert rows["28"].kind == "Conv2d" and rows["28"].size == (196, 196)  # conv5_3
    assert rows["30"].kind == "MaxPool2d" and rows["30"].size == (212, 212)  # pool5
    assert rows["30"].jump == (32, 32)
    assert rows["0"].size == (3, 3) and rows["2"].size == (5, 5)  # two 3x3 see 5x5


def test_alexnet_conv5_and_its_pool():
    rows = _by_name(receptive_field(alexnet(num_classes=10), (3, 64, 64)))
    # conv1 11/4 -> 11; pool 3/2 -> 19; conv2 5 -> 51; pool -> 67; conv3-5 -> 99, 131, 163
    assert [rows[f"features.{i}"].size[0] for i in (0, 2, 3, 5, 6, 8, 10)] == [
        11, 19, 51, 67, 99, 131, 163]
    assert rows["features.12"].size == (195, 195) and rows["features.12"].jump == (32, 32)


def test_resnet50_stages():
    from minicnn.models import resnet50

    rows = _by_name(receptive_field(resnet50(num_classes=10), (3, 32, 32)))
    # stem 7/2 -> 7, pool 3/2 -> 11; each 3x3 adds 2 * jump: layer1 11 + 3*8 = 35;
    # layer2 35 + 8 (stride-2 3x3 at jump 4) + 3*16 = 91; layer3 91 + 16 + 5*32 = 267;
    # layer4 267 + 32 + 2*64 = 427 (v1.5: the stride sits in the 3x3)
    got = {n: rows[n].size[0] for n in ("maxpool", "layer1", "layer2", "layer3", "layer4")}
    assert got == {"maxpool": 11, "layer1": 35, "layer2": 91, "layer3": 267, "layer4": 427}
    assert [rows[n].jump[0] for n in ("layer1", "layer2", "layer3", "layer4")] == [4, 8, 16, 32]


class Branches(nn.Module):
    """A stem, then a 3x3 branch and a 5x5 dilated branch added (functional add and ReLU:
    the field follows the graph between modules), then a strided pool."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 2, 3, stride=2, padding=0)
        self.a = nn.Conv2d(2, 2, 3, padding=1)
        self.b = nn.Conv2d(2, 2, 3, padding=2, dilation=2)
        self.pool = nn.AvgPool2d(3, stride=2, padding=1)
        self.head = nn.Conv2d(2, 1, (3, 1), padding=(0, 0))

    def forward(self, x):
        x = self.stem(x)
        return self.head(self.pool(minicnn.nn.functional.relu(self.a(x) + self.b(x))))


SMALL_NETS = {
    "chain": lambda: nn.Sequential(nn.Conv2d(1, 2, 5, stride=2, padding=1), nn.ReLU(),
                                   nn.AvgPool2d(2), nn.Conv2d(2, 2, 3, padding=1, dilation=1),
                                   nn.Conv2d(2, 1, 3, stride=2, padding=2, dilation=2)),
    "branches": Branches,
    "same": lambda: nn.Sequential(nn.Conv2d(1, 2, 4, padding="same"), nn.AvgPool2d(3, 1),
                                  nn.Conv2d(2, 1, 1)),
}


@pytest.mark.parametrize("name", sorted(SMALL_NETS))
def test_fields_equal_a_gradient_probe(name):
    """With positive weights and inputs no gradient cancels, so the input pixels an output
    pixel depends on are exactly where its gradient is non-zero: their bounding box must
    be the receptive box, clipped to the image, for every output pixel."""
    minicnn.manual_seed(0)
    net = SMALL_NETS[name]()
    for p in net.parameters():
        p.data = minicnn.tensor(np.abs(p.detach().numpy()) + 0.1)
    size = 29
    rows = receptive_field(net, (1, size, size))
    last = rows[-1]
    x = minicnn.tensor(np.random.default_rng(0).uniform(0.5, 1.0, (1, 1, size, size))
                       .astype(np.float32), requires_grad=True)
    out = net(x)
    assert tuple(out.shape) == last.output_shape
    for r in range(out.shape[2]):
        for c in range(out.shape[3]):
            x.grad = None
            seed = np.zeros(out.shape, dtype=np.float32)
            seed[0, 0, r, c] = 1
            out.backward(minicnn.tensor(seed), retain_graph=True)
            ys, xs = np.nonzero(x.grad.numpy()[0, 0])
            probe = (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)
            assert probe == receptive_box(last, r, c, (size, size)), (name, r, c, last)


def test_functional_geometry_is_refused_and_table_prints(tmp_path):
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3)

        def forward(self, x):
            return minicnn.nn.functional.max_pool2d(self.conv(x), 2)

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Functional()

        def forward(self, x):
            return self.inner(x)

    with pytest.raises(ValueError, match="MaxPool2d changes the geometry outside a module"):
        receptive_field(Outer(), (1, 12, 12))
    rows = receptive_field(SMALL_NETS["chain"](), (1, 20, 20))
    table = receptive_field_table(rows)
    assert table.splitlines()[0].split() == ["layer", "type", "output", "size", "jump",
                                             "start"]
    assert len(table.splitlines()) == len(rows) + 2
    image = np.random.default_rng(0).random((1, 20, 20)).astype(np.float32)
    plot_receptive_field(image, rows, tmp_path / "rf.png")
    assert (tmp_path / "rf.png").stat().st_size > 1000
    with pytest.raises(ValueError, match=r"input_size must be \(C, H, W\)"):
        receptive_field(SMALL_NETS["chain"](), (20, 20))
