# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 10: seeing inside a CNN, as ZFNet did
#
# Zeiler & Fergus (2014), "Visualizing and Understanding Convolutional Networks", opened
# the black box with a few tools that every later paper reuses:
#
# 1. the **filters** of the first layer and the **feature maps** each layer computes;
# 2. the **deconvnet projection**: take the strongest activation of one feature map, set
#    everything else in the layer to zero, and run it back to the pixels (unpool with the
#    recorded switches, rectify, apply the transposed filters) to see *what pattern* made
#    it fire; guided backpropagation (Springenberg et al. 2015) is the same with one change;
# 3. **occlusion**: slide a grey square over the image and watch the class probability;
#    where it drops, the network was looking. Gradient saliency (Simonyan et al. 2014)
#    and Grad-CAM (Selvaraju et al. 2017) answer the same question from gradients.
#
# We apply each to LeNet trained on the handwritten digits and to a deeper, VGG-style
# network trained on the `shapes` images, with `minicnn.viz`: every tool computes arrays
# (tested against PyTorch on the same weights in `tests/viz/`) and a second function draws
# them. Run it as a script, `python lessons/10_zfnet_visualization.py` (`--quick` for a
# short run), or as a notebook. Figures go to `lessons/out/`.

# %%
import argparse
import os
import sys
import time
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import minicnn
import minicnn.nn.functional as F
from minicnn import nn, optim
from minicnn.data import load_data
from minicnn.models import lenet
from minicnn.viz import (
    autograd_graph,
    deconvnet_projection,
    feature_maps,
    grad_cam,
    guided_backprop,
    occlusion_map,
    plot_attribution,
    plot_feature_maps,
    plot_filters,
    plot_graph,
    receptive_box,
    receptive_field,
    saliency_map,
    top_activations,
)

parser = argparse.ArgumentParser(description="Lesson 10: seeing inside a CNN")
parser.add_argument("--quick", action="store_true", help="small subsets, short training (CI)")
args, _ = parser.parse_known_args()
OUT = Path(__file__).resolve().parent / "out" if "__file__" in globals() else Path("out")
OUT.mkdir(parents=True, exist_ok=True)
minicnn.manual_seed(0)

# %% [markdown]
# ## 1. Two trained networks
#
# LeNet-5 (`minicnn.models.lenet`) on the 32×32 digits, and a VGG-style network of five 3×3
# convolutions (with batch norm) in three blocks on the 32×32 `shapes` images (circle,
# square, triangle, cross on textured backgrounds). The pixels stay in [0, 1] (no
# normalisation), so that "grey" and "background" mean what they say in the occlusion
# experiment. Adam, mini-batches of 32; the test accuracy is printed for each.


# %%
def arrays(dataset, n=None):
    n = len(dataset) if n is None else min(n, len(dataset))
    x = np.stack([dataset[i][0] for i in range(n)]).astype(np.float32)
    y = np.array([dataset[i][1] for i in range(n)], dtype=np.int64)
    return x, y


def accuracy(model, x, y):
    model.eval()
    with minicnn.no_grad():
        predicted = np.concatenate([model(minicnn.tensor(x[i:i + 256])).numpy().argmax(1)
                                    for i in range(0, len(x), 256)])
    return float((predicted == y).mean())


def train(model, x, y, epochs, lr=2e-3, batch=32):
    optimizer = optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(0)
    for _ in range(epochs):
        model.train()
        for idx in np.array_split(rng.permutation(len(x)), len(x) // batch):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(minicnn.tensor(x[idx])), minicnn.tensor(y[idx]))
            loss.backward()
            optimizer.step()
    return model.eval()


def block(c_in: int, c_out: int) -> list:
    """3x3 convolution, batch norm, ReLU."""
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]


class SmallVGG(nn.Module):
    """Three blocks of 3x3 convolutions (with batch norm), ReLU and 2x2 max pools; a global
    average pool and a linear classifier."""

    def __init__(self, classes: int = 4):
        super().__init__()
        self.features = nn.Sequential(
            *block(3, 16), *block(16, 16), nn.MaxPool2d(2),    # 0-6: 16x16
            *block(16, 32), *block(32, 32), nn.MaxPool2d(2),   # 7-13: 8x8
            *block(32, 64), nn.MaxPool2d(2),                   # 14-17: 4x4
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


digits_train, digits_test = load_data("digits")
shapes_train, shapes_test = load_data("shapes")
classes = shapes_train.classes
dx, dy = arrays(digits_train, 400 if args.quick else None)
dtx, dty = arrays(digits_test, 200 if args.quick else None)
sx, sy = arrays(shapes_train, 400 if args.quick else None)
stx, sty = arrays(shapes_test, 200 if args.quick else None)

start = time.perf_counter()
digits_model = train(lenet(), dx, dy, epochs=2 if args.quick else 8)
shapes_model = train(SmallVGG(), sx, sy, epochs=2 if args.quick else 6, lr=3e-3)
acc_digits, acc_shapes = accuracy(digits_model, dtx, dty), accuracy(shapes_model, stx, sty)
print(f"trained in {time.perf_counter() - start:.0f} s: digits test accuracy "
      f"{100 * acc_digits:.1f}%, shapes test accuracy {100 * acc_shapes:.1f}%")
assert acc_digits > (0.3 if args.quick else 0.95) and acc_shapes > (0.3 if args.quick
                                                                      else 0.8)

# %% [markdown]
# ## 2. Filters and feature maps
#
# A convolution's weight `(C_out, C_in, k, k)` is C_out small images. `plot_filters` draws
# them: red positive, blue negative for one input channel; in colour for RGB filters (as
# ZFNet's Figure 2 shows layer 1). `feature_maps(model, images, layers)` puts a forward hook
# on each named layer (`model.register_forward_hook`, PyTorch's semantics: the hook sees
# `(module, args, output)`), runs the model once and returns what the layers computed.

# %%
plot_filters(digits_model.features[0], OUT / "10_filters_digits.png",
             title="LeNet conv1 on digits: six 5x5 filters")
plot_filters(shapes_model.features[0], OUT / "10_filters_shapes.png",
             title="SmallVGG conv1 on shapes: sixteen 3x3 RGB filters")
maps = feature_maps(digits_model, dtx[:1], ["features.1", "features.4"])
assert maps["features.1"].shape == (1, 6, 28, 28) and maps["features.4"].shape == (1, 16, 10, 10)
with minicnn.no_grad():  # the hook saw exactly what the layers compute
    direct = digits_model.features[:2](minicnn.tensor(dtx[:1])).numpy()
assert np.array_equal(maps["features.1"], direct) and maps["features.1"].min() >= 0
plot_feature_maps(maps["features.4"][0], OUT / "10_feature_maps.png", image=dtx[0],
                  title=f"LeNet: the 16 maps after conv2 + ReLU for a {dty[0]}")
print("feature maps:", {name: m.shape for name, m in maps.items()})

# %% [markdown]
# ## 3. Deconvnet projections: what makes a feature fire
#
# For a feature map (a channel) of a layer (we take the four that respond most strongly),
# `top_activations` finds the images of the test
# set where it responds most (ZFNet shows the top 9 for each map). For each of them,
# `deconvnet_projection` keeps only that maximum and runs it back down to the pixels:
#
# * through a max pool by **unpooling**: the signal goes back to the position the maximum
#   came from (the *switch* the forward pass recorded), zeros elsewhere;
# * through a ReLU by **rectification**: `relu(signal)`;
# * through a convolution by the **transposed filters** (the same weights, flipped):
#   `conv_transpose2d`.
#
# Unpooling at the switches and the transposed filters are exactly what backpropagation
# does through a max pool and a convolution, so minicnn runs one backward pass with a
# different rule at each ReLU: the deconvnet passes the signal where it is positive,
# backpropagation where the *forward input* was positive, guided backpropagation where
# both are. One activation depends only on its receptive field, so each projection must be
# zero outside the unit's receptive box: we check that for every projection.


# %%
def projections(model, images, layer, k, n_channels=4):
    """For the ``n_channels`` channels with the largest activations (a channel that never
    fires projects nothing): the top-k images, their deconvnet and guided projections, and
    the receptive boxes of the strongest units."""
    field = {r.name: r for r in receptive_field(model, images.shape[1:])}[layer]
    strength = feature_maps(model, images, layer)[layer].max(axis=(0, 2, 3))
    channels = sorted(np.argsort(-strength)[:n_channels].tolist())
    found = []
    for c in channels:
        top = top_activations(model, images, layer, c, k=k)
        chosen = images[top.indices]
        deconv = deconvnet_projection(model, chosen, layer, c)
        guided = guided_backprop(model, chosen, layer, c)
        boxes = [receptive_box(field, r, col, images.shape[2:]) for r, col in top.positions]
        for proj in (deconv, guided):
            for p, (t, left, b, right) in zip(proj, boxes, strict=True):
                outside = p.copy()
                outside[:, t:b, left:right] = 0
                assert not outside.any(), "a projection leaked outside its receptive field"
        assert np.abs(deconv).max() > 0
        found.append((c, chosen, deconv, guided, boxes))
    print(f"{layer}: channels {channels}: top-{k} images each, deconvnet and guided "
          f"projections all inside their {field.size[0]:.0f} px receptive boxes")
    return field, found


def show_projections(found, path, title):
    k = len(found[0][1])
    fig, axes = plt.subplots(len(found), 3 * k, figsize=(1.0 * 3 * k, 1.15 * len(found)),
                             squeeze=False)
    for row, (c, chosen, deconv, guided, boxes) in zip(axes, found, strict=True):
        for i in range(k):
            image = chosen[i].transpose(1, 2, 0).squeeze()
            t, left, b, right = boxes[i]
            panels = (image[t:b, left:right], deconv[i], guided[i])
            for j, (ax, shown) in enumerate(zip(row[3 * i:3 * i + 3], panels, strict=True)):
                if j:  # a projection: stretched around zero, cropped to the field
                    shown = shown[:, t:b, left:right].transpose(1, 2, 0).squeeze()
                    shown = 0.5 + shown / (2 * max(np.abs(shown).max(), 1e-12))
                ax.imshow(np.clip(shown, 0, 1), cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([]), ax.set_yticks([])
        row[0].set_ylabel(f"ch {c}", fontsize=8)
    for j, name in enumerate(("patch", "deconvnet", "guided")):
        axes[0, j].set_title(name, fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


K = 3 if args.quick else 6
field, found = projections(digits_model, dtx, "features.5", K)
print(f"LeNet features.5 (conv2's pooled maps): receptive field {field.size[0]:.0f} px, "
      f"jump {field.jump[0]:.0f}")
show_projections(found, OUT / "10_deconvnet_digits.png",
                 f"LeNet conv2 (pooled): top-{K} test digits per channel: the patch, its "
                 "deconvnet and guided projections")
deconv, guided = found[0][2], found[0][3]
assert not np.allclose(deconv, guided), "the rules differ past the first ReLU"

field, found = projections(shapes_model, stx, "features.13", K)
print(f"SmallVGG features.13 (block 2, pooled): receptive field {field.size[0]:.0f} px, "
      f"jump {field.jump[0]:.0f}")
show_projections(found, OUT / "10_deconvnet_shapes.png",
                 f"SmallVGG block 2 (pooled): top-{K} shapes per channel: the patch, "
                 "deconvnet and guided projections")

# %% [markdown]
# ## 4. Occlusion, saliency and Grad-CAM
#
# `occlusion_map` slides a square over the image and records the probability of the class
# at each position. On the digits we occlude with the background colour (0), so a square
# that covers only background pixels changes nothing: the probability there must equal the
# unoccluded one exactly (the resized digits are exactly 0 only well away from the strokes,
# so we use a 6×6 square), and it must drop where the square hides strokes. On `shapes` we
# use ZFNet's grey (0.5). `saliency_map` is |∂ score / ∂ pixel| and `grad_cam` weighs the
# last convolution block's maps by their average gradient; both are tested against PyTorch.

# %%
SIZE, STRIDE = 6, 2
x = dtx[:4]
with minicnn.no_grad():
    clean = F.softmax(digits_model(minicnn.tensor(x)), 1).numpy()
predicted = clean.argmax(1)
occ = occlusion_map(digits_model, x, size=SIZE, stride=STRIDE, value=0.0)
for i in range(len(x)):
    p = clean[i, predicted[i]]
    blank = [(r, c) for r in range(occ.shape[1]) for c in range(occ.shape[2])
             if not x[i, :, r * STRIDE:r * STRIDE + SIZE, c * STRIDE:c * STRIDE + SIZE].any()]
    assert blank and all(abs(occ[i, r, c] - p) < 1e-5 for r, c in blank)
    assert occ[i].min() < p - 1e-3, "hiding strokes lowers the probability"
    print(f"digit {dty[i]} (predicted {predicted[i]}, p = {p:.3f}): the square over blank "
          f"background leaves p unchanged at {len(blank)} positions; the lowest p, "
          f"{occ[i].min():.3f}, with the square's corner at "
          f"{tuple(STRIDE * int(v) for v in np.unravel_index(occ[i].argmin(), occ[i].shape))}")
plot_attribution(x[0], {"occlusion p(class)": occ[0],
                        "saliency": saliency_map(digits_model, x[:1])[0],
                        "Grad-CAM conv2": grad_cam(digits_model, x[:1], "features.4")[0]},
                 OUT / "10_occlusion_digits.png",
                 title=f"LeNet on a {dty[0]}: where the evidence is")

xs = stx[:1]
occ_s = occlusion_map(shapes_model, xs, size=8, stride=2, value=0.5)
plot_attribution(xs[0], {"occlusion p(class)": occ_s[0],
                         "saliency": saliency_map(shapes_model, xs)[0],
                         "Grad-CAM block 3": grad_cam(shapes_model, xs, "features.16")[0]},
                 OUT / "10_occlusion_shapes.png",
                 title=f"SmallVGG on a {classes[sty[0]]}: where the evidence is")

# %% [markdown]
# ## 5. What the forward pass built: the autograd graph
#
# Every tool above is one forward pass and one backward pass. `autograd_graph(output)`
# walks the graph the forward pass recorded (each tensor's `grad_fn` and its inputs) and
# `plot_graph` draws it: the input and the parameters at the top, each Function with the
# shape it produced, the logits at the bottom.

# %%
for p in digits_model.parameters():
    p.requires_grad = True
logits = digits_model(minicnn.tensor(dtx[:1]))
graph = autograd_graph(logits, dict(digits_model.named_parameters()))
print("LeNet's forward pass, output first:", " <- ".join(graph.functions()))
assert graph.functions().count("Convolution2d") == 2 and graph.functions().count("Linear") == 3
plot_graph(graph, OUT / "10_graph.png", title="LeNet: the autograd graph of one forward pass")

# %% [markdown]
# ## What to try
#
# * Project other channels, or a deeper layer (`"features.17"` of SmallVGG): the fields
#   grow and the patterns get larger and more specific to a shape.
# * `guided_backprop(model, images)` with no layer explains the predicted class score.
# * Occlude with a larger square, or with noise instead of grey.

# %%
print("lesson 10: all checks passed")
