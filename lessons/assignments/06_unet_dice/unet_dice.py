# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Assignment 06: U-Net and the Dice loss
#
# Ronneberger et al. (2015), Fig. 1: a contracting path of 3x3 convolutions and 2x2 max
# pools, an expansive path of 2x2 up-convolutions, and between them the long skips: each
# encoder map is *cropped* to the centre of the decoder's map and concatenated with it
# (`[skip, up]`, skip first). Write:
#
# 1. `center_crop`, the paper's "copy and crop";
# 2. `SmallUNet.forward` (the modules are built for you, with the names of
#    `minicnn.models.segmentation.UNet`, whose weights the grader loads into yours);
# 3. `dice_loss`, the soft Dice loss of per-pixel softmax probabilities `p` against the
#    one-hot target `t`, per class `c` summed over the batch and every pixel:
#    `L_c = 1 - (2 sum(p_c t_c) + smooth) / (sum(p_c) + sum(t_c) + smooth)`, averaged over
#    the classes. The grader compares it with `minicnn.nn.functional.dice_loss`.

# %%
import numpy as np

import minicnn
import minicnn.nn.functional as F
from minicnn import nn
from minicnn.models.segmentation.unet import DoubleConv


# %%
def center_crop(x, height: int, width: int):
    """The centre height x width of x: (N, C, H, W) Tensor -> (N, C, height, width); when
    H - height is odd the extra row is cut at the bottom (the same for columns)."""
    ### BEGIN SOLUTION
    top = (x.shape[2] - height) // 2
    left = (x.shape[3] - width) // 2
    return x[:, :, top:top + height, left:left + width]
    ### END SOLUTION


class SmallUNet(nn.Module):
    """U-Net with unpadded ("valid") convolutions, as the paper.
    x: (N, in_channels, H, W) -> (N, num_classes, H_out, W_out) logits."""

    def __init__(self, in_channels: int = 1, num_classes: int = 2, base_width: int = 8,
                 depth: int = 2):
        super().__init__()
        widths = [base_width * 2 ** i for i in range(depth + 1)]
        self.encoder = nn.ModuleList(DoubleConv(cin, cout) for cin, cout
                                     in zip([in_channels, *widths[:-2]], widths[:-1]))
        self.pool = nn.MaxPool2d(2, 2)
        self.bottleneck = DoubleConv(widths[-2], widths[-1])
        self.upconvs = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                     for i in reversed(range(depth)))
        self.decoder = nn.ModuleList(DoubleConv(2 * widths[i], widths[i])
                                     for i in reversed(range(depth)))
        self.classifier = nn.Conv2d(base_width, num_classes, 1)

    def forward(self, x):
        """encoder blocks (keep each output, then pool), bottleneck, then per level:
        up-convolution, concatenate [cropped skip, x] on channels, decoder block; classifier."""
        ### BEGIN SOLUTION
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for upconv, block, skip in zip(self.upconvs, self.decoder, reversed(skips)):
            x = upconv(x)
            x = block(minicnn.cat([center_crop(skip, x.shape[2], x.shape[3]), x], 1))
        return self.classifier(x)
        ### END SOLUTION


# %%
def dice_loss(logits, target, smooth: float = 1.0):
    """Soft Dice loss. logits: (N, C, H, W) Tensor, target: (N, H, W) int array of class
    indices -> a scalar Tensor, the mean over the C classes."""
    ### BEGIN SOLUTION
    num_classes = logits.shape[1]
    onehot = np.moveaxis(np.eye(num_classes, dtype=np.float64)[target], -1, 1)
    t = minicnn.tensor(onehot.astype(logits.dtype))
    p = F.softmax(logits, 1)
    dims = (0, 2, 3)
    intersection = (p * t).sum(dims)
    total = p.sum(dims) + t.sum(dims)
    return (1 - (2 * intersection + smooth) / (total + smooth)).mean()
    ### END SOLUTION


# %% [markdown]
# ## Check yourself

# %%
if __name__ == "__main__":
    x = minicnn.randn(1, 1, 44, 44)
    out = SmallUNet(num_classes=3)(x)
    print("SmallUNet:", tuple(x.shape), "->", tuple(out.shape))
    assert out.shape == (1, 3, 4, 4)
    assert center_crop(minicnn.randn(1, 2, 7, 6), 4, 4).shape == (1, 2, 4, 4)
    rng = np.random.default_rng(0)
    logits = minicnn.tensor(rng.standard_normal((2, 3, 5, 5)), requires_grad=True)
    target = rng.integers(0, 3, (2, 5, 5))
    loss = dice_loss(logits, target)
    assert 0 < loss.item() < 1
    ### BEGIN HIDDEN TESTS
    assert minicnn.gradcheck(lambda z: dice_loss(z, target), [logits])
    ### END HIDDEN TESTS
    print("assignment 06: all checks passed")
