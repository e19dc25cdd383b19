"""PyTorch transcriptions of the restoration networks, written from the papers' layer tables
(and, for PyNET, the wiring of the authors' published model) with torch's own layers: the
independent references for tests/models/test_restoration.py. Their ``state_dict`` keys equal
minicnn's, so weights copy across by name."""

from __future__ import annotations

import torch
from torch import nn


class DnCNN(nn.Module):
    """Conv+ReLU, (Conv+BN+ReLU) x (depth - 2), Conv; output ``y - R(y)``."""

    def __init__(self, channels=1, depth=17, features=64):
        super().__init__()
        layers = [nn.Conv2d(channels, features, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1), nn.BatchNorm2d(features),
                       nn.ReLU()]
        layers.append(nn.Conv2d(features, channels, 3, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, y):
        return y - self.model(y)


class SRCNN(nn.Module):
    def __init__(self, channels=1, padding="same", residual=False):
        super().__init__()
        same = padding == "same"
        self.residual, self.margin = residual, 0 if same else 6
        self.conv1 = nn.Conv2d(channels, 64, 9, padding=4 if same else 0)
        self.conv2 = nn.Conv2d(64, 32, 1)
        self.conv3 = nn.Conv2d(32, channels, 5, padding=2 if same else 0)

    def forward(self, x):
        out = self.conv3(torch.relu(self.conv2(torch.relu(self.conv1(x)))))
        if not self.residual:
            return out
        m = self.margin
        return out + (x[:, :, m:-m, m:-m] if m else x)


class NoiseAware(nn.Module):
    """cat(image, map) -> pad to a multiple of s (replicate) -> unshuffle -> DnCNN body ->
    shuffle -> crop; output image - noise. ``snr``: the image divided by the map going in,
    the noise multiplied by it coming out."""

    def __init__(self, channels=1, depth=15, features=64, s=2, snr=False):
        super().__init__()
        self.s, self.snr = s, snr
        self.model = DnCNN(channels, depth, features).model
        self.model[0] = nn.Conv2d((channels + 1) * s * s, features, 3, padding=1)
        self.model[-1] = nn.Conv2d(features, channels * s * s, 3, padding=1)

    def forward(self, y, noise_map):
        h, w = y.shape[2:]
        x = torch.cat([y / noise_map if self.snr else y, noise_map], 1)
        x = nn.functional.pad(x, (0, -w % self.s, 0, -h % self.s), mode="replicate")
        r = nn.functional.pixel_shuffle(self.model(nn.functional.pixel_unshuffle(x, self.s)),
                                        self.s)[:, :, :h, :w]
        return y - (noise_map * r if self.snr else r)


# ---------------------------------------------------------------- PyNET


class _Conv(nn.Module):
    def __init__(self, cin, cout, k, relu=True, norm=False, dilated=False):
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(k // 2)
        # dilated (the CPU variant): a 3x3 kernel over the k x k window
        self.conv2d = nn.Conv2d(cin, cout, 3, dilation=k // 2) if dilated and k > 3 \
            else nn.Conv2d(cin, cout, k)
        self.instance = nn.InstanceNorm2d(cout, affine=True) if norm else None
        self.act = nn.LeakyReLU(0.2) if relu else None

    def forward(self, x):
        x = self.conv2d(self.reflection_pad(x))
        x = self.instance(x) if self.instance is not None else x
        return self.act(x) if self.act is not None else x


class _Multi(nn.Module):
    def __init__(self, cin, cout, kmax, norm, dilated=False):
        super().__init__()
        self.ks = list(range(3, kmax + 1, 2))
        for k in self.ks:
            self.add_module(f"conv_{k}a", _Conv(cin, cout, k, norm=norm, dilated=dilated))
            self.add_module(f"conv_{k}b", _Conv(cout, cout, k, norm=norm, dilated=dilated))

    def forward(self, x):
        return torch.cat([getattr(self, f"conv_{k}b")(getattr(self, f"conv_{k}a")(x))
                          for k in self.ks], 1)


class _Up(nn.Module):
    def __init__(self, cin, cout, align_corners=True):
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(1)
        self.conv2d = nn.Conv2d(cin, cout, 3)
        self.align_corners = align_corners

    def forward(self, x):
        x = nn.functional.interpolate(x, scale_factor=2, mode="bilinear",
                                      align_corners=self.align_corners)
        return nn.functional.leaky_relu(self.conv2d(self.reflection_pad(x)), 0.2)


class PyNET(nn.Module):
    """Ignatov et al. 2020 at base width ``w``, every level computed; ``forward`` returns the
    images of levels 5 .. 0.

    ``cpu=True``: this project's CPU variant (``pynet_narrow``), written out from its
    description: the k x k convolutions (k > 3) as 3x3 ones dilated (k - 1) / 2, instance
    norm on level 1 only, bilinear upsampling with align_corners=False, every level's image
    the ISP's image ``base`` (given to ``forward``, averaged down) plus its output
    convolution, and level 0 the ISP's image plus a pixel shuffle of 12 maps of level 1's
    features plus a 3x3 filter of ``base``."""

    def __init__(self, w=32, cpu=False):
        super().__init__()
        self.cpu = cpu

        def m(cin, cout, kmax, norm, level_1=False):
            return _Multi(cin, cout, kmax, norm and (level_1 or not cpu), dilated=cpu)

        def u(cin, cout):
            return _Up(cin, cout, align_corners=not cpu)

        self.conv_l1_d1 = m(4, w, 3, False)
        self.conv_l2_d1 = m(w, 2 * w, 3, True)
        self.conv_l3_d1 = m(2 * w, 4 * w, 3, True)
        self.conv_l4_d1 = m(4 * w, 8 * w, 3, True)
        self.conv_l5_d1 = m(8 * w, 16 * w, 3, True)
        for i in (2, 3, 4):
            self.add_module(f"conv_l5_d{i}", m(16 * w, 16 * w, 3, True))
        self.conv_t4a, self.conv_t4b = u(16 * w, 8 * w), u(16 * w, 8 * w)
        self.conv_l5_out = _Conv(16 * w, 3, 3, relu=False)
        self.conv_l4_d3 = m(16 * w, 8 * w, 3, True)
        for i in (4, 5, 6):
            self.add_module(f"conv_l4_d{i}", m(8 * w, 8 * w, 3, True))
        self.conv_l4_d8 = m(16 * w, 8 * w, 3, True)
        self.conv_t3a, self.conv_t3b = u(8 * w, 4 * w), u(8 * w, 4 * w)
        self.conv_l4_out = _Conv(8 * w, 3, 3, relu=False)
        for i in (3, 4, 5, 6):
            self.add_module(f"conv_l3_d{i}", m(8 * w, 4 * w, 5, True))
        self.conv_l3_d8 = m(16 * w, 4 * w, 3, True)
        self.conv_t2a, self.conv_t2b = u(4 * w, 2 * w), u(4 * w, 2 * w)
        self.conv_l3_out = _Conv(4 * w, 3, 3, relu=False)
        self.conv_l2_d3 = m(4 * w, 2 * w, 5, True)
        for i in (5, 6, 7, 8):
            self.add_module(f"conv_l2_d{i}", m(6 * w, 2 * w, 7, True))
        self.conv_l2_d10 = m(8 * w, 2 * w, 5, True)
        self.conv_l2_d12 = m(6 * w, 2 * w, 3, True)
        self.conv_t1a, self.conv_t1b = u(2 * w, w), u(2 * w, w)
        self.conv_l2_out = _Conv(2 * w, 3, 3, relu=False)
        self.conv_l1_d3 = m(2 * w, w, 5, False)
        self.conv_l1_d5 = m(3 * w, w, 7, True, level_1=True)
        self.conv_l1_d6 = m(3 * w, w, 9, True, level_1=True)
        for i in (7, 8, 9):
            self.add_module(f"conv_l1_d{i}", m(4 * w, w, 9, True, level_1=True))
        self.conv_l1_d10 = m(4 * w, w, 7, True, level_1=True)
        self.conv_l1_d12 = m(4 * w, w, 5, True, level_1=True)
        self.conv_l1_d14 = m(4 * w, w, 3, False)
        self.conv_l1_out = _Conv(w, 3, 3, relu=False)
        if cpu:
            self.conv_t0 = _Conv(w, 12, 3, relu=False)
            self.conv_l0_d1 = _Conv(3, 3, 3, relu=False)
        else:
            self.conv_t0 = u(w, w // 2)
            self.conv_l0_d1 = _Conv(w // 2, 3, 3, relu=False)

    def forward(self, x, base=None):
        if self.cpu:
            out = self._forward(x)
            images = {k: v + nn.functional.avg_pool2d(base, 2 ** k)
                      for k, v in out.items() if k > 0}
            images[0] = (nn.functional.pixel_shuffle(out[0], 2) + self.conv_l0_d1(base)
                         + base)
            return images
        out = self._forward(x)
        return {k: torch.sigmoid(v) for k, v in out.items()}

    def _forward(self, x):
        """Every level's output convolution's map (level 0: conv_t0's in the CPU variant,
        conv_l0_d1's otherwise)."""
        pool = nn.functional.max_pool2d
        l1 = self.conv_l1_d1(x)
        l2 = self.conv_l2_d1(pool(l1, 2))
        l3 = self.conv_l3_d1(pool(l2, 2))
        l4 = self.conv_l4_d1(pool(l3, 2))
        z = pool(l4, 2)
        for i in (1, 2, 3, 4):
            z = getattr(self, f"conv_l5_d{i}")(z)
        out5, ta, tb = self.conv_l5_out(z), self.conv_t4a(z), self.conv_t4b(z)
        d3 = self.conv_l4_d3(torch.cat([l4, ta], 1))
        d4 = self.conv_l4_d4(d3) + d3
        d5 = self.conv_l4_d5(d4) + d4
        z = self.conv_l4_d8(torch.cat([self.conv_l4_d6(d5), tb], 1))
        out4, ta, tb = self.conv_l4_out(z), self.conv_t3a(z), self.conv_t3b(z)
        d2 = torch.cat([l3, ta], 1)
        d3 = self.conv_l3_d3(d2) + d2
        d4 = self.conv_l3_d4(d3) + d3
        d5 = self.conv_l3_d5(d4) + d4
        z = self.conv_l3_d8(torch.cat([self.conv_l3_d6(d5), l3, tb], 1))
        out3, ta, tb = self.conv_l3_out(z), self.conv_t2a(z), self.conv_t2b(z)
        d4 = torch.cat([self.conv_l2_d3(torch.cat([l2, ta], 1)), l2], 1)
        d5 = self.conv_l2_d5(d4) + d4
        d6 = self.conv_l2_d6(d5) + d5
        d7 = self.conv_l2_d7(d6) + d6
        d10 = self.conv_l2_d10(torch.cat([self.conv_l2_d8(d7), l2], 1))
        z = self.conv_l2_d12(torch.cat([d10, tb], 1))
        out2, ta, tb = self.conv_l2_out(z), self.conv_t1a(z), self.conv_t1b(z)
        d4 = torch.cat([self.conv_l1_d3(torch.cat([l1, ta], 1)), l1], 1)
        d6 = self.conv_l1_d6(self.conv_l1_d5(d4))
        d7 = self.conv_l1_d7(d6) + d6
        d8 = self.conv_l1_d8(d7) + d7
        d9 = self.conv_l1_d9(d8) + d8
        d12 = self.conv_l1_d12(torch.cat([self.conv_l1_d10(d9), l1], 1))
        z = self.conv_l1_d14(torch.cat([d12, tb, l1], 1))
        out1 = self.conv_l1_out(z)
        out0 = self.conv_t0(z) if self.cpu else self.conv_l0_d1(self.conv_t0(z))
        return {5: out5, 4: out4, 3: out3, 2: out2, 1: out1, 0: out0}
