"""The super-resolution recipe: SRCNN trained on aligned patches of the degraded training
photographs, measured each epoch on the held-out photographs beside bicubic interpolation.

    train, test = superres_data(scale=3)              # Y channel, bicubic down and up
    model = build_superres_model("srcnn")
    trainer = SuperResTrainer(model, optim.Adam(model.parameters(), 2e-3), run_dir=None)
    trainer.fit(DataLoader(train, 32, shuffle=True), DataLoader(test, 1), epochs=20)

The model maps the bicubic-upscaled luminance ``(N, 1, H, W)`` to the sharp luminance of
the same shape (:mod:`minicnn.data.superres` makes the pairs); the loss is the mean squared
error, as the paper's. Each epoch records ``train_loss`` and, on the test photographs,
``val_psnr`` and ``val_ssim`` of the network's output (clipped to [0, 1], as an image is
saved) and ``bicubic_psnr`` / ``bicubic_ssim`` of its input, the bicubic baseline (means
over the photographs; data range 1; scikit-image's definitions; the network and the
baseline are measured on the same pixels, a border of ``scale`` pixels left out as
super-resolution benchmarks do). ``val_psnr - bicubic_psnr`` is what the network adds.

The run folder gets ``figures/curves.png`` (loss, PSNR against bicubic's) and
``figures/superres.png`` (low-resolution / bicubic / network / sharp crops of a test
photograph). On the command line: ``minicnn train --task superres --model srcnn --scale 3``
(the settings of :data:`DEFAULTS`), and ``minicnn upscale IN OUT --run RUN`` enlarges any
image file with a trained run (:func:`upscale_image`).
"""

from __future__ import annotations

import numpy as np

from minicnn.autograd import no_grad, tensor
from minicnn.backend import to_device
from minicnn.data.color import rgb_to_ycbcr, ycbcr_to_rgb
from minicnn.data.photos import center_crop
from minicnn.data.superres import bicubic_resize, check_scale, superres_photos
from minicnn.metrics.image_quality import psnr, ssim
from minicnn.nn import functional as F
from minicnn.serialization import save_json
from minicnn.train.denoise import denoise_image
from minicnn.train.metrics import RunningMean
from minicnn.train.trainer import Trainer

__all__ = ["DEFAULTS", "DEFAULT_MODEL", "MODEL_KWARGS", "SUPERRES_MODELS", "SuperResTrainer",
           "build_superres_model", "superres_data", "upscale_image"]

# the networks of minicnn.models.restoration this recipe trains
SUPERRES_MODELS = ("srcnn",)
# how the recipe builds them: SRCNN with global residual learning (the paper's SRCNN must
# first learn to copy its input, far beyond a CPU budget; see minicnn.models.restoration.srcnn)
MODEL_KWARGS = {"srcnn": {"residual": True}}
DEFAULT_MODEL = "srcnn"
# the recipe's settings (the command line's defaults for --task superres)
DEFAULTS = {
    "epochs": 20,
    "batch_size": 32,
    "lr": 2e-3,
    "weight_decay": 0.0,
    "optimizer": "adam",
    "scheduler": "onecycle",
    "scale": 3,
    "patch_size": 33,  # SRCNN's sub-images
    "num_patches": 3200,  # per epoch
    "test_crop": 192,  # the central square of each test photograph (a multiple of 2, 3, 4)
}
FIGURE_CROP = 96  # the side of the crops in figures/superres.png
# SSIM as Wang et al. (a Gaussian window of sigma 1.5), as the denoising recipe measures it
WANG_SSIM = {"gaussian_weights": True, "use_sample_covariance": False}


def build_superres_model(name: str = "srcnn", channels: int = 1):
    """``minicnn.models.restoration.<name>(channels, **MODEL_KWARGS[name])`` (SRCNN with
    ``residual=True``); ValueError for a name not in :data:`SUPERRES_MODELS`."""
    if name not in SUPERRES_MODELS:
        raise ValueError(f"unknown super-resolution model {name!r}; expected one of "
                         f"{', '.join(SUPERRES_MODELS)}")
    from minicnn.models import restoration

    return getattr(restoration, name)(channels, **MODEL_KWARGS.get(name, {}))


def superres_data(scale: int = DEFAULTS["scale"], patch_size: int = DEFAULTS["patch_size"],
                  num_patches: int = DEFAULTS["num_patches"],
                  test_crop: int | None = DEFAULTS["test_crop"]):
    """``(train, test)`` of :func:`minicnn.data.superres.superres_photos`: random aligned
    ``(blurry, sharp)`` Y patches of the training photographs (every window of every
    photograph equally likely: drawn by area), whole test photographs (central
    ``test_crop`` squares)."""
    return superres_photos(scale, patch_size, num_patches, test_crop)


class SuperResTrainer(Trainer):
    """:class:`~minicnn.train.Trainer` for super-resolution (see the module docstring).

    The loaders yield ``(blurry (N, 1, H, W), sharp (N, 1, H, W))`` float32 in [0, 1];
    ``scale``: the upscaling factor, the width of the border left out of the test metrics.
    """

    def __init__(self, model, optimizer, scale: int = DEFAULTS["scale"], loss_fn=None,
                 **kwargs):
        super().__init__(model, optimizer, loss_fn=loss_fn or F.mse_loss, **kwargs)
        self.scale = check_scale(scale, "SuperResTrainer")

    def _batch(self, images, targets):
        return (tensor(np.asarray(images, np.float32), device=self.device),
                tensor(np.asarray(targets, np.float32), device=self.device))

    def training_step(self, x, y) -> tuple:
        """The mean squared error of one batch."""
        return self.loss_fn(self.model(x), y), {}

    def evaluate(self, loader, num_classes: int | None = None) -> dict:
        """On ``loader`` (no updates): ``val_loss``, the mean ``val_psnr``/``val_ssim`` of the
        network and ``bicubic_psnr``/``bicubic_ssim`` of its input over the images, the
        number of ``images``, the four scores of each (``per_image``) and the first image's
        whole (blurry, output, sharp) as ``example``."""
        self.model.eval()
        loss_avg, scores, example = RunningMean(), [], None
        b = self.scale
        with no_grad():
            for blurry, sharp in loader:
                x, y = self._batch(blurry, sharp)
                out = self.model(x)
                loss_avg.update(self.loss_fn(out, y).item(), len(sharp))
                out = np.clip(to_device(out.array, "cpu"), 0, 1)
                for bl_whole, o_whole, s_whole in zip(np.asarray(blurry), out, np.asarray(sharp),
                                                      strict=True):
                    crop = (slice(None), slice(b, -b), slice(b, -b))
                    s, o, bl = s_whole[crop], o_whole[crop], bl_whole[crop]
                    scores.append((psnr(s, o, data_range=1),
                                   ssim(s, o, data_range=1, channel_axis=0, **WANG_SSIM),
                                   psnr(s, bl, data_range=1),
                                   ssim(s, bl, data_range=1, channel_axis=0, **WANG_SSIM)))
                    if example is None:
                        example = (bl_whole, o_whole, s_whole)
        if not scores:
            raise ValueError("evaluate: the loader yielded no images, expected at least one "
                             "(an empty test set?)")
        means = np.mean(scores, axis=0)
        keys = ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim")
        return {"val_loss": loss_avg.mean, "val_psnr": float(means[0]),
                "val_ssim": float(means[1]), "bicubic_psnr": float(means[2]),
                "bicubic_ssim": float(means[3]), "images": len(scores),
                "per_image": [dict(zip(keys, map(float, row), strict=True)) for row in scores],
                "example": example}

    def _val_row(self, evaluation: dict) -> dict:
        return {k: evaluation[k] for k in ("val_loss", "val_psnr", "val_ssim", "bicubic_psnr",
                                           "bicubic_ssim")}

    def _val_message(self, row: dict) -> str:
        return (f"epoch {row['epoch']}: train loss {row['train_loss']:.5f}, test PSNR "
                f"{row['val_psnr']:.2f} dB (bicubic {row['bicubic_psnr']:.2f} dB, "
                f"{row['val_psnr'] - row['bicubic_psnr']:+.2f}), SSIM {row['val_ssim']:.4f} "
                f"(bicubic {row['bicubic_ssim']:.4f})")

    def _write_figures(self, val_loader, evaluation) -> None:
        from minicnn.viz.restoration import plot_restoration, plot_restoration_curves

        figures = self.run_dir / "figures"
        figures.mkdir(parents=True, exist_ok=True)
        # bicubic is the classical baseline the curve of the network's PSNR is drawn against
        plot_restoration_curves([{**h, "baseline_psnr": h["bicubic_psnr"]}
                                 if "bicubic_psnr" in h else h for h in self.history],
                                figures / "curves.png")
        if evaluation is None:
            return
        blurry, out, sharp = evaluation["example"]
        s = self.scale
        small = np.clip(bicubic_resize(sharp, (sharp.shape[1] // s, sharp.shape[2] // s),
                                       antialias=True), 0, 1)
        blocky = np.repeat(np.repeat(small, s, axis=1), s, axis=2)  # the low-res pixels, enlarged
        inner = (slice(None), slice(s, -s), slice(s, -s))  # measured without the border

        def score(image):
            return f"{psnr(sharp[inner], image[inner], data_range=1):.2f} dB"

        panels = [(f"low resolution (1/{s})", blocky), (f"bicubic {score(blurry)}", blurry),
                  (f"network {score(out)}", out), ("sharp", sharp)]
        plot_restoration([(label, center_crop(image, FIGURE_CROP)) for label, image in panels],
                         figures / "superres.png",
                         title=f"the first test photograph x{s}, central {FIGURE_CROP}x"
                               f"{FIGURE_CROP} (PSNR of the Y channel, whole photograph)")
        final = {k: v for k, v in evaluation.items() if k != "example"}
        save_json({"history": self.history, "final": final}, self.run_dir / "metrics.json")


def upscale_image(model, image: np.ndarray, scale: int, rows: int = 256) -> np.ndarray:
    """Enlarge ``image`` ``(C, H, W)`` in [0, 1] (C = 1 grey or 3 RGB) ``scale`` times with
    a super-resolution ``model`` trained at that scale on the Y channel (in eval mode):
    ``(C, scale * H, scale * W)`` float32 in [0, 1].

    As SRCNN's paper: the image goes to YCbCr (BT.601, :mod:`minicnn.data.color`; a grey
    image as R = G = B), all three channels are enlarged by bicubic interpolation (clipped,
    as the training inputs), the network sharpens Y (in strips of ``rows`` rows,
    :func:`minicnn.train.denoise.denoise_image`), Cb and Cr stay bicubic, and the result
    goes back to RGB (grey: one channel)."""
    scale = check_scale(scale, "upscale_image")
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"upscale_image: image must be (C, H, W) with C = 1 or 3, got shape "
                         f"{image.shape}")
    rgb = np.repeat(image, 3, axis=0) if image.shape[0] == 1 else image
    size = (scale * image.shape[1], scale * image.shape[2])
    ycbcr = np.clip(bicubic_resize(rgb_to_ycbcr(rgb), size), 0, 1)
    ycbcr[:1] = denoise_image(model, ycbcr[:1], rows)
    out = np.clip(ycbcr_to_rgb(ycbcr), 0, 1).astype(np.float32)
    return out[:1] if image.shape[0] == 1 else out
