"""The denoising recipe: a network trained on random noisy patches of the training
photographs, measured each epoch on the held-out photographs beside the best classical
denoiser.

    train, test = denoise_data(sigma=25)                 # grey photographs, Gaussian noise
    model = build_denoiser("dncnn", channels=1)           # CPU-sized DnCNN; "dncnn_s": the paper's
    trainer = DenoiseTrainer(model, optim.Adam(model.parameters(), 1e-2), sigma=25,
                             run_dir="runs/dncnn")
    trainer.fit(DataLoader(train, 16, shuffle=True), DataLoader(test, 1), epochs=10)

    # one noise-aware network for every level: trained on sigma drawn in NOISE_RANGE,
    # told the noise map, tested at any sigma
    train, test = denoise_data(sigma=50, train_sigma=NOISE_RANGE, noise_map=True)
    model = build_denoiser("noise_aware")

A denoiser maps the noisy image ``(N, C, H, W)`` to the clean estimate of the same shape
(DnCNN predicts the noise and subtracts it inside the model); the loss is the mean squared
error against the clean image. A noise-aware model, ``model(noisy, noise_map)``, trains on
datasets wrapped in :class:`~minicnn.data.restoration.NoiseMapInput` (samples
``((noisy, noise_map), clean)``). Each epoch records ``train_loss`` and, on the test
photographs (noise fixed by a seed), ``val_psnr`` and ``val_ssim`` (means over the
photographs; scikit-image's definitions, data range 1, SSIM with Wang et al.'s Gaussian
window) and ``baseline_psnr`` / ``baseline_ssim``: the same for the best of
scikit-image's denoisers per photograph (:func:`minicnn.baselines.best_denoiser`, told
sigma; computed once). Outputs are measured as they are, not clipped (the baselines too).
The run folder gets ``figures/curves.png`` (loss, PSNR against the baseline's) and
``figures/denoising.png`` (noisy / network / baseline / clean crops of a test photograph).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from minicnn.autograd import no_grad, tensor
from minicnn.backend import to_device
from minicnn.baselines import best_denoiser
from minicnn.data.noise import GaussianNoise
from minicnn.data.photos import center_crop, load_photos
from minicnn.data.restoration import NoiseMapInput, NoisyImages, NoisyPatches
from minicnn.metrics.image_quality import psnr, ssim
from minicnn.nn import functional as F
from minicnn.serialization import save_json
from minicnn.train.trainer import Trainer

__all__ = ["DEFAULTS", "DEFAULT_DENOISER", "DENOISERS", "MODEL_DEFAULTS", "NOISE_RANGE",
           "DenoiseTrainer", "build_denoiser", "denoise_data", "denoise_image",
           "takes_noise_map"]

# the CPU-sized DnCNN the recipe trains by default: (depth, features); the paper's DnCNN-S
# (17 convolutions of 64 channels) is "dncnn_s"
DNCNN_CPU = (10, 32)  # 75,105 parameters grey; one output pixel sees 21x21 input pixels
# the CPU-sized noise-aware denoiser (minicnn.models.restoration.noise_aware, in SNR units):
# (depth, features) on the 2x2 pixel-unshuffled image (303,428 parameters grey); a training
# step costs about two thirds of DNCNN_CPU's (measured: 0.165 s against 0.25 s, one core)
NOISE_AWARE_CPU = (10, 64)
# the noise levels (sigma on the 0-255 scale) a noise-aware denoiser trains on, one drawn per
# patch: DnCNN-B's blind range [0, 55], from 5 (SNR units divide by sigma)
NOISE_RANGE = (5.0, 55.0)


def _dncnn(restoration, channels: int):
    return restoration.dncnn(channels, depth=DNCNN_CPU[0], features=DNCNN_CPU[1])


def _dncnn_s(restoration, channels: int):
    return restoration.dncnn(channels)


def _noise_aware(restoration, channels: int):
    return restoration.noise_aware_denoiser(channels, NOISE_AWARE_CPU[0], NOISE_AWARE_CPU[1],
                                            downscale=2, snr_units=True)


# the networks of minicnn.models.restoration this recipe trains: name -> constructor of
# (minicnn.models.restoration, channels)
DENOISERS: dict[str, Callable] = {"dncnn": _dncnn, "dncnn_s": _dncnn_s,
                                  "noise_aware": _noise_aware}
DEFAULT_DENOISER = "dncnn"
# the denoisers told the noise: model(noisy, noise_map), trained on NOISE_RANGE
NOISE_MAP_DENOISERS = ("noise_aware",)
# the recipe's settings (the command line's defaults for --task denoise)
DEFAULTS = {
    "epochs": 10,
    "batch_size": 16,
    "lr": 1e-2,  # the one-cycle peak; with the zero last convolution (see build_denoiser)
    "weight_decay": 0.0,
    "optimizer": "adam",
    "scheduler": "onecycle",  # its warm-up matters at depth 10 (cosine from 1e-2 diverged)
    "noise": 25.0,  # sigma on the 0-255 scale
    "patch_size": 40,  # DnCNN-S's patches
    "num_patches": 3200,  # per epoch: 2,000 steps of 16 in all (about 9 min of CPU, one core)
    "test_crop": 128,  # the central square of each test photograph (keeps evaluation short)
}
# the noise-aware denoiser's epochs: one network for every noise level needs more training
# than a DnCNN for one. At 20 (4,000 steps, 1.1 times the DnCNN's CPU time) it is 0.23 dB
# below DnCNN at sigma 25 on the test photographs (0.59 dB at 10 epochs, 0.41 dB at 14)
NOISE_AWARE_EPOCHS = 20
# the settings that differ for one denoiser (over DEFAULTS, the command line's defaults
# for --model NAME)
MODEL_DEFAULTS = {"noise_aware": {"epochs": NOISE_AWARE_EPOCHS}}
FIGURE_CROP = 96  # the side of the crops in figures/denoising.png


def takes_noise_map(name: str) -> bool:
    """Whether the recipe's denoiser ``name`` is told the noise: ``model(noisy, noise_map)``
    (trained on :data:`NOISE_RANGE`), rather than ``model(noisy)``."""
    return name in NOISE_MAP_DENOISERS


def build_denoiser(name: str, channels: int = 1):
    """The denoiser ``name`` of :data:`DENOISERS` for ``channels`` (1 grey, 3 colour):
    ``"dncnn"`` the CPU-sized DnCNN (:data:`DNCNN_CPU`: depth and width), ``"dncnn_s"`` the
    paper's DnCNN-S (17 convolutions of 64 channels), ``"noise_aware"`` the CPU-sized
    noise-aware denoiser in SNR units (:data:`NOISE_AWARE_CPU`), ``model(noisy, noise_map)``.

    The last convolution's weights start at zero: the network starts as the identity,
    predicting no noise, rather than a random noise estimate many times the true one (with
    a learning rate of 1e-2 this trains much faster than the paper's initialisation).
    ValueError for another name or an installation without
    :mod:`minicnn.models.restoration`."""
    if name not in DENOISERS:
        raise ValueError(f"unknown denoiser {name!r}; expected one of {', '.join(DENOISERS)}")
    try:
        from minicnn.models import restoration
    except ImportError:
        raise ValueError(f"denoiser {name!r} is not available in this installation of minicnn "
                         f"(no minicnn.models.restoration)") from None
    from minicnn import nn

    model = DENOISERS[name](restoration, channels)
    last = [m for m in model.modules() if isinstance(m, nn.Conv2d)][-1]
    nn.init.zeros_(last.weight)
    return model


def denoise_data(sigma: float = DEFAULTS["noise"], mode: str = "grey",
                 patch_size: int = DEFAULTS["patch_size"],
                 num_patches: int = DEFAULTS["num_patches"],
                 test_crop: int | None = DEFAULTS["test_crop"], seed: int = 0,
                 train_sigma: float | tuple[float, float] | None = None,
                 noise_map: bool = False):
    """``(train, test)``: random ``patch_size`` patches of the training photographs with
    Gaussian noise of ``train_sigma`` (0-255 scale; a level or a range ``(low, high)``, one
    level drawn per patch; default ``sigma``) drawn per sample, and the test photographs
    (central ``test_crop`` squares) with noise of ``sigma`` fixed by ``seed``; ``mode``
    "grey" or "rgb". ``noise_map``: samples ``((noisy, noise_map), clean)``
    (:class:`~minicnn.data.restoration.NoiseMapInput`) for a noise-aware denoiser."""
    if mode not in ("grey", "rgb"):
        raise ValueError(f"denoise_data: mode must be 'grey' or 'rgb', got {mode!r}")
    train_noise = GaussianNoise(sigma if train_sigma is None else train_sigma)
    train = NoisyPatches(load_photos("train", mode), train_noise, patch_size, num_patches,
                         return_noise_map=noise_map)
    test = NoisyImages(load_photos("test", mode, crop=test_crop), GaussianNoise(sigma), seed,
                       return_noise_map=noise_map)
    return (NoiseMapInput(train), NoiseMapInput(test)) if noise_map else (train, test)


def _receptive_radius(model) -> int:
    """How many pixels of context each output pixel of ``model``'s convolutions sees on
    each side (the sum of their half kernels times their dilations; for a model working on
    pixel-unshuffled input, ``downscale`` times that plus one sub-pixel block)."""
    from minicnn import nn

    radius = sum(((m.kernel_size[0] - 1) // 2) * m.dilation[0] for m in model.modules()
                 if isinstance(m, nn.Conv2d))
    s = getattr(model, "downscale", 1)
    return (radius + 1) * s if s > 1 else radius


def denoise_image(model, image: np.ndarray, rows: int = 256,
                  noise_level: float | None = None) -> np.ndarray:
    """``model`` (a denoiser, in eval mode) applied to one image ``(C, H, W)`` in [0, 1]:
    the denoised ``(C, H, W)`` float32, clipped to [0, 1]. ``noise_level``: the noise's
    standard deviation in the image's units (e.g. 25 / 255), for a noise-aware model
    (``model(noisy, noise_map)``); None for a model that takes the image alone.

    A tall image goes through in strips of ``rows`` rows (rounded up to a multiple of the
    model's pixel-unshuffle factor), each with the model's receptive radius of context
    above and below (so the result equals one pass over the whole image, in less memory)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3:
        raise ValueError(f"denoise_image: image must be (C, H, W), got shape {image.shape}")
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise ValueError(f"denoise_image: rows must be a positive integer, got {rows!r}")
    if noise_level is not None and not (np.isfinite(noise_level) and noise_level > 0):
        raise ValueError(f"denoise_image: noise_level must be a positive number (the noise's "
                         f"standard deviation in the image's units) or None, got "
                         f"{noise_level!r}")
    s = getattr(model, "downscale", 1)
    rows = -(-rows // s) * s
    margin, height = _receptive_radius(model), image.shape[1]
    out = np.empty_like(image)
    extra = () if noise_level is None else (float(noise_level),)
    with no_grad():
        for top in range(0, height, rows):
            lo, hi = max(0, top - margin), min(height, top + rows + margin)
            strip = model(tensor(image[None, :, lo:hi]), *extra).numpy()[0]
            out[:, top:top + rows] = strip[:, top - lo:top - lo + min(rows, height - top)]
    return np.clip(out, 0.0, 1.0)


class DenoiseTrainer(Trainer):
    """:class:`~minicnn.train.Trainer` for denoisers (see the module docstring).

    The loaders yield ``(noisy, clean)`` batches ``(N, C, H, W)``; the test loader one
    photograph per batch (their sizes differ). ``sigma``: the noise level on the 0-255
    scale the baselines are told, for images in [0, 1] (None: no baseline).
    ``data_range`` for PSNR and SSIM: 1 for images in [0, 1] (for MRI data in SNR units:
    the SNR of a pixel of value 1).
    """

    def __init__(self, model, optimizer, sigma: float | None = None, data_range: float = 1.0,
                 **kwargs):
        super().__init__(model, optimizer, loss_fn=F.mse_loss, **kwargs)
        self.sigma, self.data_range = sigma, data_range
        self._baselines: list | None = None  # per test photograph, computed once

    def _inputs(self, noisy):
        """The model's inputs as Tensors: ``noisy``, or ``(noisy, noise_map)`` for a
        noise-aware model (batches of :class:`~minicnn.data.restoration.NoiseMapInput`)."""
        parts = noisy if isinstance(noisy, tuple | list) else (noisy,)
        return tuple(tensor(np.asarray(p, dtype=np.float32), device=self.device) for p in parts)

    def _batch(self, noisy, clean):
        return (self._inputs(noisy),
                tensor(np.asarray(clean, dtype=np.float32), device=self.device))

    def training_step(self, x, y) -> tuple:
        """The mean squared error of the network's output against the clean patches."""
        return self.loss_fn(self.model(*x), y), {}

    def denoise(self, noisy) -> np.ndarray:
        """The network's output for ``noisy`` ``(N, C, H, W)`` (or ``(noisy, noise_map)``),
        as a NumPy array."""
        self.model.eval()
        with no_grad():
            out = self.model(*self._inputs(noisy))
        return np.asarray(to_device(out.array, "cpu"))

    def evaluate(self, loader, num_classes: int | None = None) -> dict:
        """PSNR and SSIM of the network (and of the best classical denoiser, with
        ``sigma``) on every test photograph: ``val_psnr``, ``val_ssim``,
        ``baseline_psnr``, ``baseline_ssim`` (means), ``per_image`` and the first
        photograph's images (``example``)."""
        scores, example, pairs = [], None, []
        for noisy_batch, clean_batch in loader:
            out_batch = self.denoise(noisy_batch)
            if isinstance(noisy_batch, tuple | list):  # (noisy, noise_map)
                noisy_batch = noisy_batch[0]
            for noisy, clean, out in zip(np.asarray(noisy_batch), np.asarray(clean_batch),
                                         out_batch):
                pairs.append((noisy, clean))
                scores.append((psnr(clean, out, self.data_range), self._ssim(clean, out)))
                if example is None:
                    example = {"noisy": noisy, "clean": clean, "network": out}
        if not scores:
            raise ValueError("evaluate: the loader yielded no images, expected at least one "
                             "(an empty test set?)")
        result = {"val_psnr": float(np.mean([s[0] for s in scores])),
                  "val_ssim": float(np.mean([s[1] for s in scores])),
                  "per_image": [{"psnr": p, "ssim": s} for p, s in scores]}
        if self.sigma is not None:
            if self._baselines is None or len(self._baselines) != len(pairs):
                sigma = self.sigma / 255.0
                self._baselines = [best_denoiser(n, c, sigma, data_range=self.data_range)
                                   for n, c in pairs]
            base = self._baselines
            result["baseline_psnr"] = float(np.mean([b.psnr for b in base]))
            result["baseline_ssim"] = float(np.mean([self._ssim(c, b.image)
                                                     for (_, c), b in zip(pairs, base)]))
            for row, b in zip(result["per_image"], base):
                row.update(baseline=b.method, baseline_psnr=b.psnr)
            example["baseline"] = base[0].image
            example["baseline_method"] = base[0].method
        result["example"] = example
        return result

    def _ssim(self, clean: np.ndarray, image: np.ndarray) -> float:
        """SSIM of ``(C, H, W)`` images as Wang et al. (Gaussian window, sigma 1.5)."""
        return ssim(clean, image, data_range=self.data_range, channel_axis=0,
                    gaussian_weights=True, use_sample_covariance=False)

    def _val_row(self, evaluation: dict) -> dict:
        return {k: evaluation[k] for k in ("val_psnr", "val_ssim", "baseline_psnr",
                                           "baseline_ssim") if k in evaluation}

    def _val_message(self, row: dict) -> str:
        base = (f" (best classical {row['baseline_psnr']:.2f} dB, {row['baseline_ssim']:.4f})"
                if "baseline_psnr" in row else "")
        return (f"epoch {row['epoch']}: train loss {row['train_loss']:.6f}, test PSNR "
                f"{row['val_psnr']:.2f} dB, SSIM {row['val_ssim']:.4f}{base}")

    def _write_figures(self, val_loader, evaluation) -> None:
        from minicnn.viz.restoration import plot_restoration, plot_restoration_curves

        figures = self.run_dir / "figures"
        figures.mkdir(parents=True, exist_ok=True)
        plot_restoration_curves(self.history, figures / "curves.png")
        if evaluation is None:
            return
        ex = evaluation["example"]
        clean = ex["clean"]
        panels = [(f"noisy {psnr(clean, ex['noisy'], self.data_range):.2f} dB", ex["noisy"]),
                  (f"network {psnr(clean, ex['network'], self.data_range):.2f} dB",
                   ex["network"])]
        if "baseline" in ex:
            score = psnr(clean, ex["baseline"], self.data_range)
            panels.append((f"{ex['baseline_method']} {score:.2f} dB", ex["baseline"]))
        panels.append(("clean", clean))
        plot_restoration([(label, center_crop(image, FIGURE_CROP)) for label, image in panels],
                         figures / "denoising.png",
                         title=f"the first test photograph, central {FIGURE_CROP}x{FIGURE_CROP} "
                               f"(PSNR of the whole photograph)")
        final = {k: v for k, v in evaluation.items() if k != "example"}
        save_json({"history": self.history, "final": final}, self.run_dir / "metrics.json")
