"""Which pixels a class score depends on: occlusion, gradient saliency and Grad-CAM.

* **Occlusion** (Zeiler & Fergus 2014, Section 4.2): slide a grey square over the image
  and record the probability of the class at every position of the square; where the
  probability drops, the network was looking.
* **Saliency** (Simonyan, Vedaldi & Zisserman 2014, "Deep Inside Convolutional Networks"):
  the gradient of the class score with respect to the pixels, its absolute value, the
  maximum over the colour channels.
* **Grad-CAM** (Selvaraju et al. 2017): the feature maps ``A^k`` of a late convolution
  layer weighted by the average gradient of the class score over each map,
  ``relu(sum_k alpha_k A^k)`` with ``alpha_k = mean_ij d y^c / d A^k_ij``, upsampled
  (bilinear) to the image.

Each returns arrays; :func:`plot_attribution` draws them over the image.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from minicnn.autograd import Tensor, no_grad
from minicnn.nn import Module
from minicnn.nn import functional as F
from minicnn.viz.features import as_input, inspecting, with_grad
from minicnn.viz.figure import finish, new_figure, show

__all__ = ["grad_cam", "occlusion_map", "plot_attribution", "saliency_map"]


def _targets(scores: np.ndarray, target) -> np.ndarray:
    """One class per image: ``target`` (an int or one per image) or the predicted class."""
    n, k = scores.shape
    if target is None:
        return scores.argmax(axis=1)
    units = np.broadcast_to(np.asarray(target, dtype=np.int64), (n,))
    if np.any(units < 0) or np.any(units >= k):
        raise ValueError(f"target {target} out of range for {k} classes")
    return units.copy()


def _one_hot(classes: np.ndarray, k: int) -> Tensor:
    hot = np.zeros((len(classes), k), dtype=np.float32)
    hot[np.arange(len(classes)), classes] = 1.0
    return Tensor(hot)


def _scores(model: Module, x: Tensor) -> Tensor:
    out = model(x)
    out = out[0] if isinstance(out, tuple | list) else out
    if not isinstance(out, Tensor) or out.ndim != 2:
        raise ValueError(f"the model must return class scores (N, K), got "
                         f"{getattr(out, 'shape', type(out).__name__)}")
    return out


def saliency_map(model: Module, images, target: int | Sequence[int] | None = None
                 ) -> np.ndarray:
    """``images (N, C, H, W) -> (N, H, W)``: ``max_c |d y_target / d x_c|``, the gradient
    of each image's class score (``target``: a class or one per image; default the
    predicted class) with respect to its pixels (Simonyan et al. 2014)."""
    x = as_input(images)
    with inspecting(model):
        scores, _ = with_grad(model, x, [], stop=False)
        scores = scores[0] if isinstance(scores, tuple | list) else scores
        classes = _targets(scores.detach().numpy(), target)
        (scores * _one_hot(classes, scores.shape[1])).sum().backward()
    return np.abs(x.grad.numpy()).max(axis=1)


def grad_cam(model: Module, images, layer: str, target: int | Sequence[int] | None = None,
             upsample: bool = True) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017) of ``layer`` (a ``named_modules`` name whose output
    is ``(N, K, h, w)``) for each image's class ``target`` (default: the predicted class):
    ``relu(sum_k alpha_k A^k)``, ``alpha_k`` the mean over ``(h, w)`` of the gradient of the
    class score (before the softmax) with respect to ``A^k``. ``images (N, C, H, W) ->
    (N, H, W)`` (bilinear upsampling, ``align_corners=False``), or ``(N, h, w)`` when
    ``upsample`` is False. Not normalised."""
    x = as_input(images)
    with inspecting(model):
        scores, caught = with_grad(model, x, [layer], stop=False)
        scores = scores[0] if isinstance(scores, tuple | list) else scores
        maps = caught[layer]
        if maps.ndim != 4:
            raise ValueError(f"grad_cam: layer {layer!r} outputs {tuple(maps.shape)}; expected "
                             "feature maps (N, K, h, w)")
        maps.retain_grad()
        classes = _targets(scores.detach().numpy(), target)
        (scores * _one_hot(classes, scores.shape[1])).sum().backward()
        a, g = maps.detach().numpy(), maps.grad.numpy()
    cam = np.maximum((g.mean(axis=(2, 3), keepdims=True) * a).sum(axis=1), 0)
    if not upsample:
        return cam
    with no_grad():
        up = F.interpolate(Tensor(cam[:, None].astype(np.float32)), size=tuple(x.shape[2:]),
                           mode="bilinear", align_corners=False)
    return up.numpy()[:, 0]


def occlusion_map(model: Module, images, target: int | Sequence[int] | None = None,
                  size: int = 8, stride: int = 4, value: float = 0.5,
                  batch_size: int = 64) -> np.ndarray:
    """Zeiler & Fergus's occlusion experiment: a ``size`` x ``size`` square of ``value``
    (grey) slid over each image with ``stride``; ``images (N, C, H, W) -> (N, rows, cols)``,
    the softmax probability of each image's class ``target`` (default: the predicted class
    on the whole image) with the square's top-left corner at ``(r * stride, c * stride)``,
    ``rows = (H - size) // stride + 1`` (likewise ``cols``)."""
    x = as_input(images).numpy()
    n, _, h, w = x.shape
    if not (0 < size <= min(h, w)) or stride < 1:
        raise ValueError(f"occlusion_map: size must be in 1..{min(h, w)} and stride >= 1, got "
                         f"size={size}, stride={stride}")
    rows, cols = (h - size) // stride + 1, (w - size) // stride + 1
    out = np.empty((n, rows * cols), dtype=np.float32)
    with inspecting(model), no_grad():
        classes = _targets(_scores(model, Tensor(x)).numpy(), target)
        for i in range(n):
            batch = np.repeat(x[i:i + 1], rows * cols, axis=0)
            for k in range(rows * cols):
                r, c = divmod(k, cols)
                batch[k, :, r * stride:r * stride + size, c * stride:c * stride + size] = value
            for start in range(0, len(batch), batch_size):
                probs = F.softmax(_scores(model, Tensor(batch[start:start + batch_size])), 1)
                out[i, start:start + batch_size] = probs.numpy()[:, classes[i]]
    return out.reshape(n, rows, cols)


def plot_attribution(image: np.ndarray, maps: Mapping[str, np.ndarray],
                     path: str | os.PathLike | None = None, title: str | None = None,
                     overlay: bool = True):
    """One image ``(C, H, W)`` and one panel per map ``(h, w)`` (e.g. ``{"saliency": ...,
    "Grad-CAM": ...}``); maps of the image's size are laid over it (``overlay``), smaller
    ones (an occlusion map) are shown on their own grid with a colour bar. Returns the
    Figure; saves it when ``path`` is given."""
    image = np.asarray(image)
    fig = new_figure(2.4 * (1 + len(maps)), 2.7)
    axes = fig.subplots(1, 1 + len(maps), squeeze=False)[0]
    show(axes[0], image, "image")
    for ax, (name, m) in zip(axes[1:], maps.items(), strict=True):
        m = np.asarray(m, dtype=np.float32)
        if overlay and m.shape == image.shape[-2:]:
            show(ax, image, name)
            ax.imshow(m, cmap="jet", alpha=0.5, interpolation="bilinear")
        else:
            shown = ax.imshow(m, cmap="viridis", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(name, fontsize=8)
            fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return finish(fig, path)
