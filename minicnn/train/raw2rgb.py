"""The RAW-to-RGB recipe: PyNET trained on RAW images simulated from the training
photographs, measured each epoch on the held-out photographs beside bilinear demosaicing.

    train, test = raw2rgb_data()                       # simulated RAW of the colour photographs
    model = build_raw2rgb("pynet_narrow")              # PyNET's CPU variant (width 8)
    trainer = Raw2RGBTrainer(model, optim.Adam(model.parameters(), 2e-3), linear=True,
                             run_dir="runs/pynet")
    trainer.fit(DataLoader(train, 8, shuffle=True), DataLoader(test, 1), epochs=20)

The simulation (:func:`minicnn.data.raw.simulate_raw`): a camera records linear light (the
sRGB gamma of the photograph undone), one colour per pixel through an RGGB Bayer filter,
with shot and read noise (Poisson-Gaussian, :data:`DEFAULTS` ``raw_noise`` = ``(a, b)``: the
variance ``a x + b`` at signal ``x``; ``(1e-2, 1e-4)``: about 100 photons at full scale,
read noise 0.01, :class:`~minicnn.data.raw.RawPatches`' own default: a small sensor in dim
light).
The network gets the packed RAW ``(N, 4, H/2, W/2)`` and must output the photograph
``(N, 3, H, W)`` in sRGB: it learns demosaicing, denoising and the tone curve at once.
The CPU default ``pynet_narrow`` is PyNET's CPU variant (see
:mod:`minicnn.models.restoration.pynet`): residual (not in the paper; VDSR's global
residual learning): each level's image is the bilinear ISP's plus a learnt correction that
starts at zero, so the untrained network already develops the RAW as the baseline does and
training learns the denoising and the detail; with a sub-pixel level 0, upsampling with
``align_corners=False``, dilated 3x3 branches and instance norm on level 1 only. ``pynet``
is the published network (a sigmoid image per level, learnt from nothing).

Training: PyNET's authors train its levels one after the other, coarsest first (level 5
at 1/32 of the size, then 4, ... then 0 at full size). For the CPU the recipe trains the
levels at once: the loss is a weighted sum over levels of the mean squared error of each
level's image against the photograph averaged down to that level's size
(:data:`LEVEL_WEIGHTS`: level 0 with weight 1, level 1 with 0.5). The coarse levels' own
images have no loss by default: the residual's ISP already gets the colours and the light
right, which is what they would teach, and their losses slowed the training in a measured
run; their layers still learn, as the features that level 1 builds on.

Each epoch records ``train_loss``, ``train_mse`` (level 0's), and on the test photographs
(noise fixed by a seed) ``val_psnr``, ``val_ssim`` and ``baseline_psnr`` /
``baseline_ssim``: the same for the bilinear demosaic of the same noisy RAW
(:func:`minicnn.baselines.bilinear_raw_to_rgb`: then the sRGB gamma when the RAW is
linear, clipped to [0, 1] as the network's output is). The run folder gets
``figures/curves.png`` and ``figures/raw2rgb.png`` (RAW mosaic / bilinear / network /
truth crops of a test photograph).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from minicnn.autograd import no_grad, tensor
from minicnn.baselines import bilinear_raw_to_rgb
from minicnn.data.noise import PoissonGaussianNoise
from minicnn.data.photos import center_crop
from minicnn.data.raw import bayer_masks, linear_to_srgb, raw_photos, simulate_raw, unpack_bayer
from minicnn.metrics.image_quality import psnr
from minicnn.nn import functional as F
from minicnn.serialization import save_json
from minicnn.train.denoise import DenoiseTrainer

__all__ = ["DEFAULTS", "DEFAULT_RAW2RGB", "MULTIPLE", "RAW2RGB_MODELS", "Raw2RGBTrainer",
           "build_raw2rgb", "mosaic_colours", "raw2rgb_data", "raw2rgb_image",
           "raw_noise", "simulate_file_raw"]


def _pynet_narrow(restoration, linear: bool):
    return restoration.pynet_narrow(linear=linear)


def _pynet(restoration, linear: bool):
    return restoration.pynet()


# the networks of minicnn.models.restoration this recipe trains
RAW2RGB_MODELS: dict[str, Callable] = {"pynet_narrow": _pynet_narrow, "pynet": _pynet}
DEFAULT_RAW2RGB = "pynet_narrow"
# the recipe's settings (the command line's defaults for --task raw2rgb)
DEFAULTS = {
    "epochs": 20,
    "batch_size": 8,
    "lr": 2e-3,
    "weight_decay": 0.0,
    "optimizer": "adam",
    "scheduler": "cosine",  # from the peak rate at once: a warm-up wastes the short budget
    "patch_size": 64,  # RGB pixels: packed RAW of 32x32, the least PyNET takes
    "num_patches": 640,  # per epoch
    "test_crop": 256,  # the central square of each test photograph
    "raw_noise": [1e-2, 1e-4],  # Poisson-Gaussian (a, b): variance a x + b at signal x
    "linear": True,  # the sensor records linear light; the network outputs sRGB
}
MULTIPLE = 32  # PyNET's input (H/2, W/2) must be multiples of 16: H and W of 32
FIGURE_CROP = 96  # the side of the crops in figures/raw2rgb.png
# the weight of each level's loss (level: weight); level 0 is the full-size image. Levels
# 2-5 get none (their images stay the ISP's, averaged down). Measured on the CPU variant
# (then with align_corners=True), after 160 steps: every level's loss (0.25 for level 2,
# 0.1 for 3-5), the gradients' norm clipped at 0.5: +0.61 dB over bilinear; levels 0 and 1
# alone, no clipping: +1.00 dB
LEVEL_WEIGHTS = {0: 1.0, 1: 0.5}


def build_raw2rgb(name: str, linear: bool = DEFAULTS["linear"]):
    """The network ``name`` of :data:`RAW2RGB_MODELS`: ``"pynet_narrow"`` (PyNET's CPU
    variant at base width 8, 2,325,063 parameters, a correction of the bilinear ISP's
    image: the default) or ``"pynet"`` (the published network, 47,554,738 parameters).
    ValueError for another name. ``linear``: the RAW records linear light (the residual's
    ISP applies the sRGB curve)."""
    if name not in RAW2RGB_MODELS:
        raise ValueError(f"unknown RAW-to-RGB model {name!r}; expected one of "
                         f"{', '.join(RAW2RGB_MODELS)}")
    from minicnn.models import restoration

    return RAW2RGB_MODELS[name](restoration, linear)


def raw_noise(noise: Sequence[float] | None) -> PoissonGaussianNoise | None:
    """The sensor noise of ``noise`` = ``(a, b)`` (None or ``(0, 0)``: none)."""
    if noise is None:
        return None
    if len(noise) != 2 or min(noise) < 0:
        raise ValueError(f"raw noise must be (a, b) with a, b >= 0, got {noise!r}")
    a, b = (float(v) for v in noise)
    if a == 0 and b == 0:
        return None
    if a == 0:
        raise ValueError(f"raw noise: a (the shot noise) must be positive when b is, got "
                         f"{noise!r}")
    return PoissonGaussianNoise(a, b)


def raw2rgb_data(noise: Sequence[float] | None = DEFAULTS["raw_noise"],
                 patch_size: int = DEFAULTS["patch_size"],
                 num_patches: int = DEFAULTS["num_patches"],
                 test_crop: int | None = DEFAULTS["test_crop"], linear: bool = DEFAULTS["linear"],
                 seed: int = 0):
    """``(train, test)``: random ``patch_size`` patches of the training photographs (stored
    in colour) as ``(packed RAW (4, p/2, p/2), RGB (3, p, p))``, the sensor ``noise``
    (``(a, b)``) drawn per sample, and the test photographs (central ``test_crop``
    squares, cropped to multiples of :data:`MULTIPLE`) with noise fixed by ``seed``."""
    return raw_photos(raw_noise(noise), patch_size, num_patches, test_crop, linear, seed,
                      multiple=MULTIPLE)


def mosaic_colours(raw: np.ndarray, linear: bool) -> np.ndarray:
    """What the sensor saw, for the eye: each pixel of the packed RAW ``(4, H/2, W/2)`` in
    its filter's colour ``(3, H, W)`` (a red, green or blue dot), in sRGB."""
    mosaic = unpack_bayer(np.asarray(raw, dtype=np.float32))
    rgb = mosaic * bayer_masks(mosaic.shape[1:])
    return linear_to_srgb(rgb) if linear else np.clip(rgb, 0.0, 1.0)


def _pynet_pass(model, raw: np.ndarray) -> np.ndarray:
    """One pass of ``model`` over packed RAW ``(4, h, w)``, padded by reflection to
    multiples of 16 (at least 32) and the output ``(3, 2h, 2w)`` cropped back."""
    h, w = raw.shape[1:]
    ph, pw = (max(32, -(-s // 16) * 16) - s for s in (h, w))
    mode = "reflect" if ph < h and pw < w else "symmetric"
    padded = np.pad(raw, ((0, 0), (0, ph), (0, pw)), mode=mode)
    with no_grad():
        out = model(tensor(padded[None])).numpy()[0]
    return out[:, :2 * h, :2 * w]


def raw2rgb_image(model, raw: np.ndarray, tile: int = 128, margin: int = 16) -> np.ndarray:
    """``model`` (a PyNET, in eval mode) applied to one packed RAW image ``(4, h, w)``:
    the RGB ``(3, 2h, 2w)`` float32 in [0, 1].

    The image goes through in tiles of ``tile`` x ``tile`` packed pixels (the size of the
    recipe's test crops, 256 x 256 RGB), each with ``margin`` pixels of context on every
    side, so the memory stays bounded for any photograph (a full-size pass over a 12 MP
    RAW would need gigabytes for level 1's 9x9 convolutions). Sides that are not multiples
    of 16 (PyNET's four poolings) are padded by reflection and the output cropped back.
    Instance norm sees each tile's statistics, as it saw each patch's in training."""
    raw = np.asarray(raw, dtype=np.float32)
    if raw.ndim != 3 or raw.shape[0] != 4:
        raise ValueError(f"raw2rgb_image: raw must be packed RAW (4, H/2, W/2), got shape "
                         f"{raw.shape}")
    for name, value, least in (("tile", tile, 1), ("margin", margin, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"raw2rgb_image: {name} must be an int >= {least}, got {value!r}")
    h, w = raw.shape[1:]
    out = np.empty((3, 2 * h, 2 * w), dtype=np.float32)
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            y0, x0 = max(0, top - margin), max(0, left - margin)
            y1, x1 = min(h, top + tile + margin), min(w, left + tile + margin)
            part = _pynet_pass(model, raw[:, y0:y1, x0:x1])
            th, tw = min(tile, h - top), min(tile, w - left)
            out[:, 2 * top:2 * (top + th), 2 * left:2 * (left + tw)] = \
                part[:, 2 * (top - y0):2 * (top - y0 + th), 2 * (left - x0):2 * (left - x0 + tw)]
    return np.clip(out, 0.0, 1.0)


def _downsample(images: np.ndarray, factor: int) -> np.ndarray:
    """``(N, C, H, W)`` averaged over ``factor`` x ``factor`` blocks."""
    if factor == 1:
        return images
    n, c, h, w = images.shape
    return images.reshape(n, c, h // factor, factor, w // factor, factor).mean(axis=(3, 5))


class Raw2RGBTrainer(DenoiseTrainer):
    """:class:`~minicnn.train.Trainer` for RAW-to-RGB (see the module docstring); the
    loop is the Trainer's, the evaluation's PSNR/SSIM are :class:`DenoiseTrainer`'s.

    The loaders yield ``(packed RAW (N, 4, H/2, W/2), RGB (N, 3, H, W))``; the test loader
    one photograph per batch. ``linear``: the RAW records linear light (the baseline's
    demosaic goes through the sRGB gamma). ``level_weights``: ``{level: weight}`` of the
    pyramid's losses (default :data:`LEVEL_WEIGHTS`; a model without ``pyramid``: level 0
    only).
    """

    def __init__(self, model, optimizer, linear: bool = DEFAULTS["linear"],
                 level_weights: dict[int, float] | None = None, **kwargs):
        super().__init__(model, optimizer, sigma=None, **kwargs)
        self.linear = linear
        weights = dict(LEVEL_WEIGHTS if level_weights is None else level_weights)
        if not hasattr(model, "pyramid"):  # one output: level 0's
            weights = {0: weights.get(0, 1.0)}
        self.level_weights = {level: w for level, w in weights.items() if w}
        self._bilinear: list | None = None  # per test photograph, computed once

    def _batch(self, raw, rgb):
        rgb = np.asarray(rgb, dtype=np.float32)
        targets = {level: tensor(_downsample(rgb, 2 ** level), device=self.device)
                   for level in self.level_weights}
        return self._inputs(raw), targets

    def training_step(self, x, targets) -> tuple:
        """The weighted sum over the pyramid's levels of the mean squared error of each
        level's image against the photograph at that size; logs level 0's (``mse``)."""
        if hasattr(self.model, "pyramid"):
            images = self.model.pyramid(*x)
        else:
            images = {0: self.model(*x)}
        losses = {level: F.mse_loss(images[level], target)
                  for level, target in targets.items()}
        loss = sum(self.level_weights[level] * value for level, value in losses.items())
        n = x[0].shape[0]
        return loss, ({"mse": losses[0].item() * n} if 0 in losses else {})

    def denoise(self, raw) -> np.ndarray:
        """The network's RGB images for packed RAW ``(N, 4, H/2, W/2)``, clipped to [0, 1]
        as the bilinear baseline is (a residual PyNET's output is not bounded)."""
        return np.clip(super().denoise(raw), 0.0, 1.0)

    def evaluate(self, loader, num_classes: int | None = None) -> dict:
        """PSNR and SSIM of the network and of the bilinear demosaic on every test
        photograph: ``val_psnr``, ``val_ssim``, ``baseline_psnr``, ``baseline_ssim``
        (means), ``per_image`` and the first photograph's images (``example``)."""
        rows, example, raws, truths = [], None, [], []
        for raw_batch, rgb_batch in loader:
            out_batch = self.denoise(raw_batch)
            for raw, rgb, out in zip(np.asarray(raw_batch), np.asarray(rgb_batch), out_batch):
                raws.append(raw)
                truths.append(rgb)
                rows.append({"psnr": psnr(rgb, out, self.data_range),
                             "ssim": self._ssim(rgb, out)})
                if example is None:
                    example = {"raw": raw, "clean": rgb, "network": out}
        if not rows:
            raise ValueError("evaluate: the loader yielded no images, expected at least one "
                             "(an empty test set?)")
        if self._bilinear is None or len(self._bilinear) != len(raws):
            self._bilinear = [bilinear_raw_to_rgb(raw, linear=self.linear) for raw in raws]
        for row, rgb, base in zip(rows, truths, self._bilinear):
            row.update(baseline_psnr=psnr(rgb, base, self.data_range),
                       baseline_ssim=self._ssim(rgb, base))
        example["baseline"] = self._bilinear[0]
        return {**{f"{prefix}_{k}": float(np.mean([r[f"{key}{k}"] for r in rows]))
                   for prefix, key in (("val", ""), ("baseline", "baseline_"))
                   for k in ("psnr", "ssim")},
                "per_image": rows, "example": example}

    def _val_message(self, row: dict) -> str:
        return (f"epoch {row['epoch']}: train loss {row['train_loss']:.6f}, test PSNR "
                f"{row['val_psnr']:.2f} dB, SSIM {row['val_ssim']:.4f} (bilinear demosaic "
                f"{row['baseline_psnr']:.2f} dB, {row['baseline_ssim']:.4f})")

    def _write_figures(self, val_loader, evaluation) -> None:
        from minicnn.viz.restoration import plot_restoration, plot_restoration_curves

        figures = self.run_dir / "figures"
        figures.mkdir(parents=True, exist_ok=True)
        plot_restoration_curves(self.history, figures / "curves.png")
        if evaluation is None:
            return
        ex = evaluation["example"]
        clean = ex["clean"]
        panels = [("RAW (Bayer mosaic)", mosaic_colours(ex["raw"], self.linear)),
                  (f"bilinear {psnr(clean, ex['baseline'], self.data_range):.2f} dB",
                   ex["baseline"]),
                  (f"network {psnr(clean, ex['network'], self.data_range):.2f} dB",
                   ex["network"]),
                  ("truth", clean)]
        plot_restoration([(label, center_crop(image, FIGURE_CROP)) for label, image in panels],
                         figures / "raw2rgb.png",
                         title=f"the first test photograph, central {FIGURE_CROP}x{FIGURE_CROP} "
                               f"(PSNR of the whole photograph)")
        final = {k: v for k, v in evaluation.items() if k != "example"}
        save_json({"history": self.history, "final": final}, self.run_dir / "metrics.json")


def simulate_file_raw(rgb: np.ndarray, noise, linear: bool, seed: int = 0) -> np.ndarray:
    """The packed RAW the recipe's camera would record of an RGB image ``(3, H, W)``
    (cropped to even sides first), noise drawn from a generator seeded by ``seed``."""
    h, w = rgb.shape[1:]
    rgb = np.ascontiguousarray(rgb[:, :h - h % 2, :w - w % 2])
    return simulate_raw(rgb, raw_noise(noise), np.random.default_rng(seed), linear=linear)
