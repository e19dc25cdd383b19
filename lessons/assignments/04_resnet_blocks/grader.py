"""Grader of assignment 04 (residual blocks): each block loaded into ``minicnn.models.resnet``'s
block of the same configuration gives the same outputs (training and evaluation mode) and the
same gradients; the small ResNet reaches 90% test accuracy on the 8x8 digits."""

import numpy as np
import pytest

import minicnn
from minicnn import nn
from minicnn.homework import assert_close, load_submission, points
from minicnn.models import resnet

sub = load_submission("resnet_blocks")
BLOCKS = {  # name: (kind, inplanes, planes, stride)
    "basic_identity": ("BasicBlock", 16, 16, 1),
    "basic_projection": ("BasicBlock", 8, 16, 2),
    "bottleneck_identity": ("Bottleneck", 32, 8, 1),
    "bottleneck_projection": ("Bottleneck", 16, 8, 2),
}



def close(name, got, want, tol=1e-4):
    assert_close(name, got, want, tol)


def pair(case):
    """The student's block and the reference block holding the same (random) weights."""
    kind, inplanes, planes, stride = BLOCKS[case]
    minicnn.manual_seed(0)
    mine = getattr(sub, kind)(inplanes, planes, stride)
    out = planes * getattr(resnet, kind).expansion
    down = None
    if stride != 1 or inplanes != out:
        down = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False),
                             nn.BatchNorm2d(out))
    ref = getattr(resnet, kind)(inplanes, planes, stride, downsample=down)
    state = ref.state_dict()
    rng = np.random.default_rng(1)
    for key, value in state.items():  # non-trivial BN statistics and affine parameters too
        if key.endswith("num_batches_tracked"):
            continue
        data = rng.standard_normal(value.shape).astype(np.float32) * 0.5
        if key.endswith("running_var"):
            data = np.abs(data) + 0.5
        value.data.array[...] = data
    missing = sorted(set(state) - set(mine.state_dict()))
    extra = sorted(set(mine.state_dict()) - set(state))
    assert not missing and not extra, \
        f"{kind}: state_dict keys differ from torchvision's: missing {missing}, unexpected {extra}"
    mine.load_state_dict(state)
    x = np.random.default_rng(2).standard_normal((2, inplanes, 8, 8)).astype(np.float32)
    return mine, ref, x


@points(2)
@pytest.mark.parametrize("case", BLOCKS)
def test_block_forward(case):
    mine, ref, x = pair(case)
    for mode in ("train", "eval"):
        getattr(mine, mode)()
        getattr(ref, mode)()
        close(f"{case} ({mode} mode)", mine(minicnn.tensor(x)).detach().numpy(),
              ref(minicnn.tensor(x)).detach().numpy())


@points(2)
@pytest.mark.parametrize("case", BLOCKS)
def test_block_backward(case):
    mine, ref, x = pair(case)
    grads = []
    for model in (mine, ref):
        xt = minicnn.tensor(x, requires_grad=True)
        out = model(xt)
        out.backward(minicnn.tensor(np.linspace(-1, 1, out.numel(), dtype=np.float32)
                                    .reshape(out.shape)))
        grads.append({"input": xt.grad.numpy(),
                      **{k: p.grad.numpy() for k, p in model.named_parameters()}})
    for key, want in grads[1].items():
        close(f"{case}: gradient of {key}", grads[0][key], want, tol=1e-3)


@points(4)
def test_training_reaches_90_percent():
    acc = sub.train_digits(epochs=3, seed=0)
    assert acc >= 0.9, f"test accuracy {acc:.3f} after 3 epochs, expected at least 0.90"
