"""Grader of assignment 06 (U-Net and Dice): the U-Net loaded with the weights of
``minicnn.models.segmentation.unet`` gives its outputs and input gradients; the Dice loss
equals ``F.dice_loss`` and passes ``minicnn.gradcheck``."""

import numpy as np
import pytest

import minicnn
import minicnn.nn.functional as F
from minicnn.homework import assert_close, load_submission, points
from minicnn.models.segmentation import unet, unet_output_size

sub = load_submission("unet_dice")



def close(name, got, want, tol=1e-4):
    assert_close(name, got, want, tol)


@points(1)
@pytest.mark.parametrize("size", [(7, 6), (8, 8)])
def test_center_crop(size):
    data = np.random.default_rng(0).standard_normal((1, 2, *size))
    got = sub.center_crop(minicnn.tensor(data), 4, 3).numpy()
    top, left = (size[0] - 4) // 2, (size[1] - 3) // 2
    close("center_crop", got, data[:, :, top:top + 4, left:left + 3])


def pair(depth=2, size=44):
    minicnn.manual_seed(0)
    ref = unet(in_channels=1, num_classes=3, base_width=4, depth=depth, padding="valid")
    mine = sub.SmallUNet(in_channels=1, num_classes=3, base_width=4, depth=depth)
    mine.load_state_dict(ref.state_dict())
    x = np.random.default_rng(1).standard_normal((2, 1, size, size)).astype(np.float32)
    return mine, ref, x


@points(3)
@pytest.mark.parametrize("depth, size", [(2, 44), (3, 92)])
def test_unet_forward(depth, size):
    mine, ref, x = pair(depth, size)
    out = unet_output_size(size, depth)
    got = mine(minicnn.tensor(x)).detach().numpy()
    assert got.shape == (2, 3, out, out), f"SmallUNet output {got.shape}, expected " \
        f"(2, 3, {out}, {out}) (valid convolutions: {size} -> {out})"
    close("SmallUNet", got, ref(minicnn.tensor(x)).detach().numpy())


@points(2)
def test_unet_input_gradient():
    mine, ref, x = pair()
    grads = []
    for model in (mine, ref):
        xt = minicnn.tensor(x, requires_grad=True)
        model(xt).sum().backward()
        grads.append(xt.grad.numpy())
    close("SmallUNet: gradient of the input", grads[0], grads[1], tol=1e-3)


def dice_case(seed, n=2, c=3, h=5, w=4):
    rng = np.random.default_rng(seed)
    return (minicnn.tensor(rng.standard_normal((n, c, h, w)), requires_grad=True),
            rng.integers(0, c, (n, h, w)))


@points(2)
@pytest.mark.parametrize("smooth", [1.0, 0.1])
def test_dice_loss_value(smooth):
    logits, target = dice_case(2)
    want = F.dice_loss(logits, minicnn.tensor(target), smooth=smooth).item()
    close("dice_loss", sub.dice_loss(logits, target, smooth=smooth).item(), want, tol=1e-10)


@points(3)
def test_dice_loss_gradient():
    logits, target = dice_case(3)
    minicnn.gradcheck(lambda z: sub.dice_loss(z, target), [logits])


### BEGIN HIDDEN TESTS
@points(2)
def test_dice_loss_with_an_absent_class():
    logits, target = dice_case(4, c=4)
    target[target == 2] = 0  # class 2 is in no pixel
    want = F.dice_loss(logits, minicnn.tensor(target)).item()
    close("dice_loss (a class absent)", sub.dice_loss(logits, target).item(), want, tol=1e-10)
    minicnn.gradcheck(lambda z: sub.dice_loss(z, target), [logits])
### END HIDDEN TESTS
