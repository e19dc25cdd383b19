"""Reusable checks of a minicnn model against its torchvision twin (for every model family).

    from tests.models.harness import compare_with_torchvision, check_mult_adds

    report = compare_with_torchvision("resnet18", (3, 64, 64), tmp_path=tmp_path)
    check_mult_adds("resnet18")

:func:`compare_with_torchvision` does, for ``torchvision.models.<name>()`` and
``minicnn.models.MODELS[name]()`` (or ``build()``):

1. the ``state_dict`` keys (in order) and shapes are identical;
2. the parameter counts are identical (and equal torchvision's published ``num_params``
   when the model has 1000 classes);
3. weights go torch -> safetensors -> minicnn through the public path
   (``export_torchvision`` then ``load_weights``), after the torch model's BatchNorm layers
   got random affine parameters and running statistics calibrated on another random batch
   (so eval mode is neither the identity nor the batch statistics);
4. eval-mode outputs agree on the same random float32 input: minicnn's float32 output is
   compared with torch's float64 output and must be as accurate as torch's own float32
   output (``err <= max(1e-4, 3 * err_torch_float32)``);
5. in training mode (Dropout / StochasticDepth switched off in both, since their random
   masks cannot match), both models converted to float64: the gradients of
   ``sum(out * w)`` (fixed random ``w``) with respect to the input and to a few
   parameters (first, middle, last) agree, and so do the BatchNorm running statistics
   after that forward pass.

Errors are ``max|minicnn - torch| / max(1, max|torch|)``. Eval (float32): at most
``max(1e-4, 3 * err_torch_float32)``; torch's own float32 error (against float64) reaches
1.7e-4 for SE-ResNet-50 at 32x32 and 5e-4 for ResNet-152 at 64x64 with random BN
statistics, so a fixed 1e-4 would be stricter than PyTorch itself. Training-mode
gradients (float64): at most ``1e-6``. Why float64 there: a training-mode backward
through ~50 batch norms over a batch of 2 small images is badly conditioned -- each BN
divides by the standard deviation of a few values -- so float32 rounding alone moves the
input gradient of ResNet-50 at 64x64 by 1.3% (torch float32 against torch float64). In
float64 minicnn and torch agree to ~1e-13 (ResNet-18 at 64x64), ~1e-7 where layer4 sees
1x1 maps of a batch of 2 (32x32 inputs: use a batch of 4 there).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch
import torchvision

import minicnn
from minicnn.models import MODELS, export_torchvision, load_weights
from tests.helpers import max_rel_err

OUTPUT_TOL = 1e-4  # float32 eval outputs
GRAD_TOL = 1e-6  # float64 training-mode gradients
_STOCHASTIC = ("Dropout", "StochasticDepth")  # class-name parts of layers with random masks


def published(name: str) -> dict:
    """torchvision's published metadata for ``name`` (``num_params``, ``_ops`` in GFLOPS...).

    Read from the weights enum: no download happens.
    """
    return dict(torchvision.models.get_model_weights(name).DEFAULT.meta)


def count_params(model) -> int:
    """Number of parameters (not buffers) of a minicnn or torch model."""
    return sum(int(np.prod(p.shape)) for p in model.parameters())


def key_shapes(state_dict) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in state_dict.items()]


def randomize_batchnorm_(model: torch.nn.Module, input_size, seed: int = 0) -> None:
    """Give every BatchNorm of a torch model random ``weight``/``bias`` and running statistics
    measured on a random batch (one train-mode pass with momentum 1), so that eval mode
    does something non-trivial; the momentum is restored afterwards."""
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for m in bns:
            if m.affine:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))
        momenta = [m.momentum for m in bns]
        for m in bns:
            m.momentum = 1.0
        was_training = model.training
        model.train()
        model(torch.randn((4, *input_size), generator=g))
        model.train(was_training)
        for m, momentum in zip(bns, momenta, strict=True):
            m.momentum = momentum


def _stochastic_layers_off(model) -> None:
    """Eval mode for Dropout-like layers only (their random masks differ between libraries)."""
    for m in model.modules():
        if any(part in type(m).__name__ for part in _STOCHASTIC):
            m.eval()


def _main(output):
    """The logits of a model's output (GoogLeNet/Inception return (logits, aux...) in training)."""
    return output[0] if isinstance(output, tuple | list) else output


def _assert_close(actual, expected, tol: float, what: str) -> float:
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    err = max_rel_err(actual, expected)
    assert err <= tol, f"{what}: max |minicnn - torch| / max(1, max|torch|) = {err:.3g} > {tol}"
    return err


def compare_with_torchvision(name: str, input_size=(3, 64, 64), *, tmp_path=None, build=None,
                             reference=None, batch_size: int = 2, seed: int = 0, grad_params=None,
                             check_train: bool = True, output_tol: float = OUTPUT_TOL,
                             grad_tol: float = GRAD_TOL, **model_kwargs) -> dict:
    """Run checks 1-5 of the module docstring for ``name``; returns the measured errors.

    ``build`` makes the minicnn model (default ``MODELS[name]``); ``reference`` the torch
    model (default ``torchvision.models.get_model(name)``; give one for models torchvision
    lacks, written in PyTorch with the same attribute names). Both get ``model_kwargs``
    (e.g. ``num_classes=10``). ``grad_params``: parameter names whose
    gradients are compared (default: the first, the middle and the last parameter).
    ``tmp_path``: folder for the safetensors file (a temporary one if None).
    """
    build = build or MODELS[name]
    torch.manual_seed(seed)
    minicnn.manual_seed(seed)
    if reference is None:
        tv = torchvision.models.get_model(name, weights=None, **model_kwargs)
    else:
        tv = reference(**model_kwargs)
    model = build(**model_kwargs)

    # 1-2: structure
    assert key_shapes(model.state_dict()) == key_shapes(tv.state_dict()), \
        _diff_keys(model.state_dict(), tv.state_dict())
    n_params = count_params(model)
    assert n_params == count_params(tv)
    if reference is None and model_kwargs.get("num_classes", 1000) == 1000:
        assert n_params == published(name)["num_params"]

    # 3: torch -> safetensors -> minicnn
    randomize_batchnorm_(tv, input_size, seed)
    with contextlib.ExitStack() as stack:
        if tmp_path is None:
            import tempfile

            tmp_path = stack.enter_context(tempfile.TemporaryDirectory())
        path = export_torchvision(name, Path(tmp_path) / f"{name}.safetensors", model=tv)
        load_weights(model, path)

    # 4: eval outputs
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch_size, *input_size)).astype(np.float32)
    tv.eval()
    model.eval()
    with torch.no_grad():
        expected32 = tv(torch.from_numpy(x)).numpy()
        expected = tv.double()(torch.from_numpy(x).double()).numpy()
    with minicnn.no_grad():
        actual = model(minicnn.tensor(x)).numpy()
    torch_err = max_rel_err(expected32, expected)
    report = {"params": n_params, "torch_float32_err": torch_err,
              "eval_err": _assert_close(actual, expected, max(output_tol, 3 * torch_err),
                                        f"{name} eval output (float32, against torch float64)")}
    if not check_train:
        return report

    # 5: training-mode gradients and running statistics, in float64
    tv.train()
    model.double().train()
    _stochastic_layers_off(tv)
    _stochastic_layers_off(model)
    x = x.astype(np.float64)
    w = rng.standard_normal(expected.shape)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    (_main(tv(xt)) * torch.from_numpy(w)).sum().backward()
    xm = minicnn.tensor(x.copy(), requires_grad=True)
    (_main(model(xm)) * minicnn.tensor(w, dtype=np.float64)).sum().backward()
    report["input_grad_err"] = _assert_close(xm.grad.numpy(), xt.grad.numpy(), grad_tol,
                                             f"{name} d loss / d input")
    names = [n for n, _ in tv.named_parameters()]
    grad_params = grad_params or [names[0], names[len(names) // 2], names[-1]]
    tv_params, mc_params = dict(tv.named_parameters()), dict(model.named_parameters())
    for pname in grad_params:
        report[f"grad_err[{pname}]"] = _assert_close(
            mc_params[pname].grad.numpy(), tv_params[pname].grad.numpy(), grad_tol,
            f"{name} d loss / d {pname}")
    tv_state, mc_state = tv.state_dict(), model.state_dict()
    running = [k for k in tv_state if k.endswith(("running_mean", "running_var"))]
    for key in running[:2] + running[-2:]:
        report[f"running_err[{key}]"] = _assert_close(
            mc_state[key].numpy(), tv_state[key].numpy(), grad_tol, f"{name} {key}")
    return report


def _diff_keys(mine, theirs) -> str:
    a, b = dict(key_shapes(mine)), dict(key_shapes(theirs))
    lines = [f"only in minicnn: {k} {a[k]}" for k in a if k not in b]
    lines += [f"only in torchvision: {k} {b[k]}" for k in b if k not in a]
    lines += [f"shape of {k}: minicnn {a[k]}, torchvision {b[k]}" for k in a
              if k in b and a[k] != b[k]]
    if not lines and list(a) != list(b):
        lines.append("same keys in a different order")
    return "state_dict differs from torchvision's:\n" + "\n".join(lines[:20])


def mult_adds(model, input_size=(3, 224, 224)) -> int:
    """minicnn.summary's multiply-adds of ``model`` for one image of ``input_size``."""
    from minicnn.summary import summary

    return summary(model, input_size).total_mult_adds


def check_mult_adds(name: str, build=None, rel: float = 0.01) -> tuple[float, float]:
    """minicnn.summary's multiply-adds at 224x224 within ``rel`` of torchvision's published
    GFLOPS (``meta["_ops"]``, which counts multiply-adds). Returns (measured, published) in G."""
    build = build or MODELS[name]
    measured = mult_adds(build()) / 1e9
    expected = published(name)["_ops"]
    assert abs(measured - expected) <= rel * expected, \
        f"{name}: {measured:.3f} G mult-adds, torchvision publishes {expected} G"
    return measured, expected


def one_step_lowers_loss(model, input_size, num_classes: int, batch_size: int = 4,
                         lr: float = 0.05, backend: str = "numba", seed: int = 0) -> tuple:
    """One SGD step on a fixed random batch (cross-entropy, training mode, ``backend``)
    lowers the loss on that batch. Returns (loss before, loss after)."""
    import minicnn.nn.functional as F
    from minicnn.optim import SGD

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch_size, *input_size)).astype(np.float32)
    y = rng.integers(0, num_classes, batch_size)
    with minicnn.use_backend(backend):
        model.train()
        xm, ym = minicnn.tensor(x), minicnn.tensor(y)
        optimizer = SGD(model.parameters(), lr=lr)
        loss = F.cross_entropy(model(xm), ym)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        after = F.cross_entropy(model(xm), ym)
    before, after = loss.item(), after.item()
    assert np.isfinite(before) and after < before, f"loss {before:.4f} -> {after:.4f}"
    return before, after
