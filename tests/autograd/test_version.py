"""Version counters: an in-place change of a tensor saved for backward is an error, as in PyTorch.

Each case runs the same code in PyTorch and in minicnn: both must raise, or both must give
the same gradient. The counters themselves (``_version``) are compared step by step.
"""

import numpy as np
import pytest
import torch

import minicnn
from minicnn import nn, optim

INPLACE_ERROR = "modified by an inplace operation"


def _both(build):
    """Run ``build(lib)`` for torch and minicnn; each returns w.grad as an array or the error."""
    out = []
    for lib in (torch, minicnn):
        try:
            out.append(np.asarray(build(lib)))
        except RuntimeError as e:
            out.append(str(e))
    return out


def _mul_then(change):
    def build(lib):
        w = lib.tensor([2.0, 3.0], requires_grad=True)
        x = lib.tensor([5.0, 7.0])
        y = (w * x).sum()
        change(x)
        y.backward()
        return w.grad.numpy()

    return build


def _add_inplace(x):
    x += 100


def _setitem(x):
    x[0] = 100


def _view_setitem(x):
    x.view(-1)[1] = 1


def _detach_add(x):
    x.detach().add_(1)


def _mul_(x):
    x.mul_(2)


def _fill_(x):
    x.fill_(0)


def _zero_(x):
    x.zero_()


def _copy_(x):
    x.copy_(x * 2)


def _clamp_(x):
    x.clamp_(0, 6)


@pytest.mark.parametrize(
    "change", [_add_inplace, _setitem, _view_setitem, _detach_add, _mul_, _fill_, _zero_, _copy_,
               _clamp_],
)
def test_changing_a_saved_tensor_raises_as_in_pytorch(change):
    theirs, ours = _both(_mul_then(change))
    assert isinstance(theirs, str) and INPLACE_ERROR in theirs
    assert isinstance(ours, str) and INPLACE_ERROR in ours
    assert "is at version" in ours and "expected version 0" in ours


def test_the_issue_example_names_the_versions():
    w = minicnn.tensor([2.0, 3.0], requires_grad=True)
    x = minicnn.tensor([5.0, 7.0])
    y = (w * x).sum()
    x += 100
    with pytest.raises(RuntimeError, match=r"input 1 of MulBackward .* is at version 1; "
                                           r"expected version 0"):
        y.backward()
    assert w.grad is None  # no wrong gradient was written


def _through_data(x):
    x.data.add_(1)  # .data has its own counter: unseen, in PyTorch too


def _unsaved_add(lib):
    w = lib.tensor([2.0, 3.0], requires_grad=True)
    x = lib.tensor([5.0, 7.0])
    y = (w + x).sum()  # add saves nothing: changing x afterwards is harmless
    x[0] = 100
    y.backward()
    return w.grad.numpy()


@pytest.mark.parametrize("build", [_mul_then(_through_data), _unsaved_add])
def test_changes_autograd_does_not_need_to_see_pass_as_in_pytorch(build):
    theirs, ours = _both(build)
    assert not isinstance(theirs, str) and not isinstance(ours, str)
    np.testing.assert_array_equal(ours, theirs)


def _output_changed(lib):
    w = lib.tensor([0.5, 1.0], requires_grad=True)
    y = w.exp()  # exp saves its output
    y.detach().mul_(3)
    y.sum().backward()
    return w.grad.numpy()


def test_a_saved_output_changed_through_detach_raises_as_in_pytorch():
    theirs, ours = _both(_output_changed)
    assert INPLACE_ERROR in theirs and INPLACE_ERROR in ours


def _sequence(lib):
    x = lib.zeros(4)
    d, v = x.detach(), x.view(2, 2)
    seen = [x._version]
    for step in (lambda: x.add_(1), lambda: d.mul_(2), lambda: v.__setitem__((0, 0), 5.0),
                 lambda: x.__isub__(1), lambda: x.zero_(), lambda: x.data.add_(1)):
        step()
        seen.append((x._version, d._version, v._version))
    return seen


def test_version_numbers_match_pytorch():
    assert _sequence(minicnn) == _sequence(torch)


def test_inplace_on_a_leaf_that_requires_grad():
    for lib in (torch, minicnn):
        w = lib.ones(3, requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf"):
            w.add_(1)
        with lib.no_grad():  # how optimizers update parameters
            w.add_(1)
            w -= 0.5
        np.testing.assert_array_equal(w.detach().numpy(), [1.5, 1.5, 1.5])


def test_int_tensor_plus_float_in_place_is_refused_as_in_pytorch():
    with pytest.raises(RuntimeError):
        t = torch.tensor([1, 2])
        t += 0.5
    with pytest.raises(TypeError, match="can't be cast"):
        x = minicnn.tensor([1, 2])
        x += 0.5


def test_training_with_batchnorm_and_optimizers_never_trips_the_check():
    minicnn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 3))
    for opt in (optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                optim.Adam(model.parameters(), lr=1e-3)):
        for _ in range(3):
            x = minicnn.randn(8, 1, 6, 6)
            loss = nn.functional.cross_entropy(model(x), minicnn.randint(0, 3, (8,)))
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    out = model(minicnn.randn(2, 1, 6, 6))
    out.sum().backward()  # eval mode saves the running statistics: untouched, no error


def _step_before_backward(lib):
    w = lib.nn.Parameter(lib.tensor([2.0, 3.0]))
    opt = lib.optim.SGD([w], lr=0.1)
    y = (w * w).sum()
    w.grad = lib.ones(2)
    opt.step()  # changes w in place while the graph still needs it
    y.backward()
    return w.grad.numpy()


def _init_before_backward(lib):
    w = lib.nn.Parameter(lib.tensor([2.0, 3.0]))
    y = (w * w).sum()
    lib.nn.init.constant_(w, 1.0)
    y.backward()
    return w.grad.numpy()


@pytest.mark.parametrize("build", [_step_before_backward, _init_before_backward])
def test_optimizer_steps_and_init_count_as_inplace_changes(build):
    theirs, ours = _both(build)
    assert INPLACE_ERROR in theirs and INPLACE_ERROR in ours
