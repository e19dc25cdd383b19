"""The super-resolution recipe: SRCNN trained on aligned patches of the degraded training
photographs, measured each epoch on the held-out photographs beside bicubic interpolation.

    train, test = superres_data(scale=3)              # Y channel, bicubic down and up
    model = build_superres_model("srcnn")
    trainer = SuperResTrainer(model, optim.Adam(model.parameters(), 1e-3), run_dir=None)
    trainer.fit(DataLoader(train, 32, shuffle=True), DataLoader(test, 1), epochs=10)

The model maps the bicubic-upscaled luminance ``(N, 1, H, W)`` to the sharp luminance of
the same shape (:mod:`minicnn.data.superres` makes the pairs); the loss is the mean squared
error, as the paper's. Each epoch records ``train_loss`` and, on the test photographs,
``val_psnr`` and ``val_ssim`` of the network's output (clipped to [0, 1], as an image is
saved) and ``bicubic_psnr`` / ``bicubic_ssim`` of its input, the bicubic baseline (means
over the photographs; data range 1; scikit-image's definitions; the network and the
baseline are measured on the same pixels, a border of ``scale`` pixels left out as
super-resolution benchmarks do). ``val_psnr - bicubic_psnr`` is what the network adds.

Not on the command line yet (``minicnn train --task superres`` is for the lead to wire as the
other recipes; see :data:`DEFAULTS` for the settings it would use).
"""

from __future__ import annotations

import numpy as np

from minicnn.autograd import no_grad, tensor
from minicnn.backend import to_device
from minicnn.data.superres import check_scale, superres_photos
from minicnn.metrics.image_quality import psnr, ssim
from minicnn.nn import functional as F
from minicnn.serialization import save_json
from minicnn.train.metrics import RunningMean
from minicnn.train.trainer import Trainer

__all__ = ["DEFAULTS", "MODEL_KWARGS", "SUPERRES_MODELS", "SuperResTrainer", "build_superres_model",
           "superres_data"]

# the networks of minicnn.models.restoration this recipe trains
SUPERRES_MODELS = ("srcnn",)
# how the recipe builds them: SRCNN with global residual learning (the paper's SRCNN must
# first learn to copy its input, far beyond a CPU budget; see minicnn.models.restoration.srcnn)
MODEL_KWARGS = {"srcnn": {"residual": True}}
# the recipe's settings (what `minicnn train --task superres` would default to)
DEFAULTS = {
    "epochs": 10,
    "batch_size": 32,
    "lr": 1e-3,
    "weight_decay": 0.0,
    "optimizer": "adam",
    "scheduler": "onecycle",
    "scale": 3,
    "patch_size": 33,  # SRCNN's sub-images
    "num_patches": 1600,  # per epoch
    "test_crop": 192,  # the central square of each test photograph (a multiple of 2, 3, 4)
}


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
    ``(blurry, sharp)`` Y patches of the training photographs, whole test photographs
    (central ``test_crop`` squares)."""
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
        number of images, and the first image's (blurry, output, sharp) as ``example``."""
        self.model.eval()
        loss_avg, scores, example = RunningMean(), [], None
        b = self.scale
        with no_grad():
            for blurry, sharp in loader:
                x, y = self._batch(blurry, sharp)
                out = self.model(x)
                loss_avg.update(self.loss_fn(out, y).item(), len(sharp))
                out = np.clip(to_device(out.array, "cpu"), 0, 1)
                for bl, o, s in zip(np.asarray(blurry), out, np.asarray(sharp), strict=True):
                    crop = (slice(None), slice(b, -b), slice(b, -b))
                    s, o, bl = s[crop], o[crop], bl[crop]
                    scores.append((psnr(s, o, data_range=1), _ssim(s, o),
                                   psnr(s, bl, data_range=1), _ssim(s, bl)))
                    if example is None:
                        example = (bl, o, s)
        if not scores:
            raise ValueError("evaluate: the loader yielded no images, expected at least one "
                             "(an empty test set?)")
        means = np.mean(scores, axis=0)
        return {"val_loss": loss_avg.mean, "val_psnr": float(means[0]),
                "val_ssim": float(means[1]), "bicubic_psnr": float(means[2]),
                "bicubic_ssim": float(means[3]), "images": len(scores), "example": example}

    def _val_row(self, evaluation: dict) -> dict:
        return {k: evaluation[k] for k in ("val_loss", "val_psnr", "val_ssim", "bicubic_psnr",
                                           "bicubic_ssim")}

    def _val_message(self, row: dict) -> str:
        return (f"epoch {row['epoch']}: train loss {row['train_loss']:.5f}, test PSNR "
                f"{row['val_psnr']:.2f} dB (bicubic {row['bicubic_psnr']:.2f} dB, "
                f"{row['val_psnr'] - row['bicubic_psnr']:+.2f}), SSIM {row['val_ssim']:.4f} "
                f"(bicubic {row['bicubic_ssim']:.4f})")

    def _write_figures(self, val_loader, evaluation) -> None:
        from minicnn import viz

        figures = self.run_dir / "figures"
        figures.mkdir(parents=True, exist_ok=True)
        viz.plot_curves(self.history, figures / "curves.png")
        if evaluation is not None:
            final = {k: v for k, v in evaluation.items() if k != "example"}
            save_json({"history": self.history, "final": final}, self.run_dir / "metrics.json")


def _ssim(sharp: np.ndarray, image: np.ndarray) -> float:
    """SSIM of ``(C, H, W)`` images in [0, 1] as Wang et al. (Gaussian window, sigma 1.5)."""
    return ssim(sharp, image, data_range=1, channel_axis=0, gaussian_weights=True,
                use_sample_covariance=False)
