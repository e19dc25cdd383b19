# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 02: checking gradients with finite differences
#
# Every operation in minicnn has a hand-written backward, and a wrong backward does not crash:
# the network still trains, only worse, and nothing tells you why. So every backward is tested
# against a second, independent way of computing the same derivative: **finite differences**,
# which need nothing but the forward pass.
#
# What you will learn:
#
# 1. forward, backward and central differences, and how large their errors are;
# 2. why the error against the step size `eps` is V-shaped (truncation against round-off),
#    where its best point lies, and why float64 matters;
# 3. how `minicnn.gradcheck` applies this to whole tensors (full and directional modes);
# 4. what a failing check looks like, and why gradcheck weights outputs at random.
#
# Run: `python lessons/02_gradient_check.py` (`--quick` for CI: smaller tensors).
# The figure goes to `lessons/out/02_error_vs_eps.png`.

# %%
import argparse
import os
import re
import sys
import time
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")  # a script only writes files; a notebook keeps its inline figures
import matplotlib.pyplot as plt
import numpy as np

import minicnn
from minicnn import GradcheckError
from minicnn.autograd.tensor import float32, float64

parser = argparse.ArgumentParser(description="Lesson 02: gradient checking")
parser.add_argument("--quick", action="store_true", help="smaller tensors (for CI)")
args, _ = parser.parse_known_args()  # parse_known_args: Jupyter adds arguments of its own

try:
    OUT = Path(__file__).resolve().parent / "out"
except NameError:  # inside a notebook there is no __file__
    OUT = Path("out")
OUT.mkdir(parents=True, exist_ok=True)
minicnn.manual_seed(0)

# %% [markdown]
# ## 1. Three finite differences
#
# The derivative is a limit, $f'(x) = \lim_{\epsilon \to 0} (f(x+\epsilon) - f(x)) /
# \epsilon$. Stopping at a small but finite $\epsilon$ gives an estimate. Taylor's
# theorem, $f(x \pm \epsilon) = f(x) \pm \epsilon f'(x) + \tfrac{\epsilon^2}{2}
# f''(x) \pm \tfrac{\epsilon^3}{6} f'''(x) + \dots$, tells us how good it is:
#
# | name | formula | leading error term | order |
# |------|---------|--------------------|-------|
# | forward | $(f(x+\epsilon) - f(x))/\epsilon$ | $+\epsilon f''/2$ | $O(\epsilon)$ |
# | backward | $(f(x) - f(x-\epsilon))/\epsilon$ | $-\epsilon f''/2$ | $O(\epsilon)$ |
# | central | $(f(x+\epsilon) - f(x-\epsilon))/2\epsilon$ | $\epsilon^2 f'''/6$ | $O(\epsilon^2)$ |
#
# In the central difference the $\epsilon^2 f''$ terms of the two sides cancel: for the
# price of one more evaluation (two instead of one, when $f(x)$ is known) the error drops
# from first to second order. Halve $\epsilon$ and the forward error halves, the central
# error quarters.
#
# We test on $f(x) = \sin x$, whose derivative $\cos x$ we know exactly.

# %%
f, df = np.sin, np.cos


def forward_diff(f, x, eps):
    return (f(x + eps) - f(x)) / eps


def backward_diff(f, x, eps):
    return (f(x) - f(x - eps)) / eps


def central_diff(f, x, eps):
    return (f(x + eps) - f(x - eps)) / (2 * eps)


METHODS = {"forward": forward_diff, "backward": backward_diff, "central": central_diff}

x0 = 1.0
print(f"f'(1) = cos(1) = {df(x0):.12f}")
print(f"{'eps':>8} {'forward error':>14} {'backward error':>15} {'central error':>14}")
for eps in [1e-1, 5e-2, 2.5e-2, 1.25e-2]:
    errs = [abs(m(f, x0, eps) - df(x0)) for m in METHODS.values()]
    print(f"{eps:>8.4g} {errs[0]:>14.3e} {errs[1]:>15.3e} {errs[2]:>14.3e}")

# halving eps: forward error / 2, central error / 4 (the leading Taylor terms)
e1, e2 = (abs(forward_diff(f, x0, e) - df(x0)) for e in (1e-2, 5e-3))
c1, c2 = (abs(central_diff(f, x0, e) - df(x0)) for e in (1e-2, 5e-3))
assert abs(e1 / e2 - 2) < 0.05 and abs(c1 / c2 - 4) < 0.05
assert abs(e1 - 1e-2 / 2 * abs(np.sin(x0))) < 1e-4  # eps/2 |f''|, f'' = -sin

# %% [markdown]
# ## 2. Smaller is not always better: the V-shaped error
#
# So take $\epsilon$ tiny? No. A computer stores $f(x)$ with a relative error of about the
# *machine epsilon* $u$ (the gap between 1 and the next float: $u \approx 1.2\cdot10^{-7}$ in
# float32, $2.2\cdot10^{-16}$ in float64). Subtracting two nearly equal numbers
# $f(x+\epsilon) - f(x)$ keeps that absolute error, $\approx u\,|f(x)|$, while the true
# difference shrinks with $\epsilon$; dividing by $\epsilon$ gives a **round-off error**
# $\approx u |f| / \epsilon$, which *grows* as $\epsilon$ shrinks. The total is
#
# $$ \text{error}(\epsilon) \approx \underbrace{C\,\epsilon^{p}}_{\text{truncation}}
#    + \underbrace{u\,|f| / \epsilon}_{\text{round-off}}, \qquad
#    p = 1 \text{ (forward, backward)}, \; p = 2 \text{ (central)} $$
#
# On log-log axes that is a **V**: a line of slope $p$ on the right, slope $-1$ on the left.
# Setting the derivative to zero puts the bottom at
#
# * one-sided: $\epsilon^* \sim \sqrt{u}$, best error $\sim \sqrt{u}$
#   ($\approx 10^{-8}$ in float64, $3\cdot10^{-4}$ in float32);
# * central: $\epsilon^* \sim u^{1/3}$, best error $\sim u^{2/3}$
#   ($\approx 10^{-11}$ in float64, $2\cdot10^{-5}$ in float32).
#
# Let us measure it. Round-off errors behave like random noise, so at a single point the
# curve is jagged; we take the **median error over 101 points** $x \in [0.5, 1.5]$ to see the
# trend. Every operation (`x + eps`, `sin`, the division) runs in the dtype being studied.
# At the far left, $x + \epsilon$ rounds to $x$ itself: the difference is exactly 0 and the
# error flattens at $|f'(x)|$.
#
# Expect forward and backward differences to lie on top of each other (same order, errors of
# opposite sign), and the central one to reach far lower, further right.

# %%
xs = np.linspace(0.5, 1.5, 101)[:, None]  # (101, 1): the points
epsilons = np.logspace(-16, 0, 161)[None, :]  # (1, 161): the step sizes
errors = {}  # (dtype name, method) -> median error over the points, shape (161,)
for dtype in (float32, float64):
    x, h = xs.astype(dtype), epsilons.astype(dtype)
    for name, method in METHODS.items():
        estimate = method(f, x, h)  # (101, 161), computed in `dtype`
        assert estimate.dtype == dtype
        errors[dtype.name, name] = np.median(np.abs(estimate - df(xs)), axis=0)
eps_axis = epsilons[0]

print(f"{'dtype':>8} {'method':>9} {'best error':>11} {'at eps':>8} {'theory eps*':>12}")
best = {}
for (dname, name), err in errors.items():
    u = np.finfo(dname).eps
    i = int(np.argmin(err))
    theory = np.sqrt(u) if name != "central" else np.cbrt(u)
    best[dname, name] = (err[i], eps_axis[i])
    print(f"{dname:>8} {name:>9} {err[i]:>11.2e} {eps_axis[i]:>8.1e} {theory:>12.1e}")
    assert theory / 10 < eps_axis[i] < theory * 10, (dname, name)  # bottom where theory says

# %% [markdown]
# The claims, checked:
#
# * central differences beat one-sided ones by orders of magnitude at their best;
# * float64 beats float32 by many orders of magnitude, for every method;
# * on the right the slopes are 1 and 2 (truncation), on the left -1 (round-off).


# %%
def slope(err, lo, hi):
    """Least-squares slope of log10(err) against log10(eps) for lo < eps < hi."""
    keep = (eps_axis > lo) & (eps_axis < hi)
    return np.polyfit(np.log10(eps_axis[keep]), np.log10(err[keep]), 1)[0]


for dname in ("float32", "float64"):
    ratio = best[dname, "forward"][0] / best[dname, "central"][0]
    print(f"{dname}: best central error is {ratio:.0f}x smaller than best forward error")
    assert ratio > (10 if dname == "float32" else 100)
for name in METHODS:
    gain = best["float32", name][0] / best["float64", name][0]
    print(f"{name}: float64's best error is {gain:.1e}x smaller than float32's")
    assert gain > 1e3

slopes = {name: slope(errors["float64", name], 1e-3, 1e-1) for name in METHODS}
print("truncation slopes (float64, 1e-3 < eps < 1e-1):",
      {k: round(float(v), 2) for k, v in slopes.items()})
assert abs(slopes["forward"] - 1) < 0.1 and abs(slopes["backward"] - 1) < 0.1
assert abs(slopes["central"] - 2) < 0.1
for dname, (lo, hi) in {"float32": (1e-6, 1e-4), "float64": (1e-14, 1e-10)}.items():
    for name in METHODS:
        s = slope(errors[dname, name], lo, hi)
        assert abs(s + 1) < 0.2, (dname, name, s)
print("round-off slopes are all close to -1")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
styles = {"forward": ("tab:blue", "-"), "backward": ("tab:green", ":"), "central": ("tab:red", "-")}
for ax, dname in zip(axes, ("float32", "float64"), strict=True):
    for name, (color, line) in styles.items():
        ax.loglog(eps_axis, errors[dname, name], line, color=color, lw=1.8, label=name)
    u = np.finfo(dname).eps
    for x_line, label in ((np.sqrt(u), r"$\sqrt{u}$"), (np.cbrt(u), r"$u^{1/3}$")):
        ax.axvline(x_line, color="gray", ls="--", lw=0.8)
        ax.text(x_line, 3e-13, " " + label, color="dimgray")
    ax.set(xlabel="step size eps", title=f"{dname} (machine epsilon u = {u:.1e})", ylim=(1e-13, 10))
    ax.legend(loc="lower left")
axes[0].set_ylabel("|estimate - cos(x)|, median over 101 points")
fig.suptitle("finite-difference error of d/dx sin(x): round-off (left arm), truncation (right arm)")
fig.tight_layout()
fig.savefig(OUT / "02_error_vs_eps.png", dpi=100)
plt.close(fig)
print("saved", OUT / "02_error_vs_eps.png")

# %% [markdown]
# ## 3. From one number to a whole tensor
#
# For a function of a tensor $x$ with a scalar result $L$, do the central difference once per
# element: nudge $x_i$ by $\pm\epsilon$, leave the rest alone. This is the whole idea of
# a gradient check; here it is in a few lines, against autograd.


# %%
def numeric_grad(fn, x, eps):
    """Central-difference gradient of the scalar ``fn`` at array ``x``, one element at a time."""
    grad = np.zeros_like(x)
    for i in range(x.size):
        step = np.zeros_like(x)
        step.flat[i] = eps
        grad.flat[i] = (fn(x + step) - fn(x - step)) / (2 * eps)
    return grad


gen = minicnn.random.generator()
x_data = gen.standard_normal((3, 4))
w_data = gen.standard_normal((3, 4))


def loss_fn(a):  # L(x) = sum(tanh(x) * w), on plain arrays, returning a Python float
    return (minicnn.tensor(a).tanh() * minicnn.tensor(w_data.astype(a.dtype))).sum().item()


x = minicnn.tensor(x_data, requires_grad=True)
(x.tanh() * minicnn.tensor(w_data)).sum().backward()
numeric = numeric_grad(loss_fn, x_data, 1e-6)
print("max |autograd - numeric|:", np.abs(x.grad.numpy() - numeric).max())
np.testing.assert_allclose(x.grad.numpy(), numeric, rtol=1e-7, atol=1e-9)

# %% [markdown]
# ### `minicnn.gradcheck`
#
# `minicnn.gradcheck(fn, inputs)` does this for every input with `requires_grad=True`, for
# functions with any number of tensor outputs. It reduces the outputs to one number with
# **fixed random weights** $v$: $L = \sum v \cdot \text{output}$. One backward then gives
# $v^\top J$ (the vector-Jacobian product that backward computes anyway), and each element is
# compared with the central difference of $L$. It passes where
# `|analytic - numeric| <= atol + rtol * |numeric|` (defaults `eps=1e-6, atol=1e-5, rtol=1e-3`).
#
# Full mode costs two evaluations of `fn` per input element. **Directional mode** checks one
# random direction $d$ through all inputs at once: $(L(x + \epsilon d) - L(x -
# \epsilon d)) / 2\epsilon$ against $\nabla L \cdot d$: two evaluations in total, however
# big the inputs. It tells you *that* something is wrong, not *where*; use it on big inputs
# and full mode on small ones.


# %%
def randn64(*shape):
    return minicnn.randn(*shape, dtype=float64, requires_grad=True)


checks = {
    "tanh": (lambda a: a.tanh(), [randn64(3, 4)]),
    "a @ b": (lambda a, b: a @ b, [randn64(3, 5), randn64(5, 2)]),
    "(a * b).sum(dim=1), b broadcast": (
        lambda a, b: (a * b).sum(dim=1), [randn64(4, 3), randn64(3)]
    ),
    "log_softmax(dim=1)": (lambda a: a.log_softmax(dim=1), [randn64(2, 5)]),
    "max(dim=1): values and indices": (lambda a: a.max(dim=1), [randn64(3, 4)]),
    "var(dim=0) / (1 + a^2)": (lambda a: a.var(dim=0) / (1 + a * a), [randn64(5, 3)]),
}
for name, (fn, inputs) in checks.items():
    for mode in ("full", "directional"):
        assert minicnn.gradcheck(fn, inputs, mode=mode), (name, mode)
    print(f"gradcheck passed (full and directional): {name}")

# %% [markdown]
# The cost difference, on a matrix product with more elements:

# %%
size = 12 if args.quick else 64
a, b = randn64(size, size), randn64(size, size)
timings = {}
for mode in ("full", "directional"):
    start = time.perf_counter()
    minicnn.gradcheck(lambda a, b: a @ b, [a, b], mode=mode)
    timings[mode] = time.perf_counter() - start
print(f"{2 * size * size} input elements: full {timings['full']:.3f} s ({4 * size * size} "
      f"evaluations), directional {timings['directional']:.4f} s (2 evaluations)")
assert timings["directional"] < timings["full"]

# %% [markdown]
# ## 4. Catching a broken backward
#
# Here is a LeakyReLU, $y = x$ for $x > 0$ and $y = 0.1\,x$ otherwise, with a typo in the
# backward: slope `0.01` instead of `0.1` on the negative side. Positive inputs are fine,
# so the bug hides in half the elements. Full mode stops at the first wrong element and
# names the input, the element, and both values.


# %%
class BadLeakyReLU(minicnn.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x > 0)
        return np.where(x > 0, x, 0.1 * x)

    @staticmethod
    def backward(ctx, grad):
        (positive,) = ctx.saved_tensors
        return np.where(positive, grad, 0.01 * grad)  # BUG: the slope is 0.1


x = minicnn.tensor([[0.5, 1.2, -0.7], [-0.3, 2.0, 0.9]], dtype=float64, requires_grad=True)
try:
    minicnn.gradcheck(BadLeakyReLU.apply, [x])
    raise AssertionError("gradcheck should have failed")
except GradcheckError as err:
    message = str(err)
print(message)
assert "input 0" in message and "element (0, 2)" in message  # the first negative element
analytic, numeric = (float(re.search(rf"{k} ([-+0-9.eE]+)", message).group(1))
                     for k in ("analytic", "numeric"))
assert abs(analytic / numeric - 0.1) < 1e-6  # 0.01 where 0.1 was due: exactly the typo

try:
    minicnn.gradcheck(BadLeakyReLU.apply, [x], mode="directional")
    raise AssertionError("directional gradcheck should have failed")
except GradcheckError as err:
    print("directional mode:", err)

# %% [markdown]
# ### Why the weights are random
#
# A classic bug: a backward that forgets to multiply by the incoming `grad`, returning the
# local derivative $f'(x)$ instead of $\text{grad} \cdot f'(x)$. If we checked
# `fn(x).sum()`, the incoming gradient would be all ones, and the bug would pass unseen.
# With random weights $v$ the incoming gradient is $v$, and the bug shows.


# %%
class ForgetfulTanh(minicnn.Function):
    @staticmethod
    def forward(ctx, x):
        out = np.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return 1 - out * out  # BUG: should be grad * (1 - out * out)


x = randn64(3, 4)
ForgetfulTanh.apply(x).sum().backward()  # the all-ones check: passes, wrongly
sum_numeric = numeric_grad(lambda a: float(np.tanh(a).sum()), x.detach().numpy(), 1e-6)
np.testing.assert_allclose(x.grad.numpy(), sum_numeric, rtol=1e-7)
print("checking sum(fn(x)) misses the bug")
try:
    minicnn.gradcheck(ForgetfulTanh.apply, [x])
    raise AssertionError("gradcheck should have failed")
except GradcheckError as err:
    print("gradcheck with random weights catches it:", err)

# %% [markdown]
# ## 5. Why gradcheck insists on float64
#
# `gradcheck` refuses float32 inputs. Section 2 says why: in float32 the best central
# difference is only ~$10^{-5}$ accurate, at $\epsilon \approx 5\cdot10^{-3}$, and the
# round-off error $u|L|/\epsilon$ grows with the size of $L$ (a sum over many outputs).
# At the default $\epsilon = 10^{-6}$ float32 is hopeless: a *correct* backward would
# fail. In float64 there is a wide range of $\epsilon$ where both errors are far below
# any reasonable tolerance. The check below measures the relative error of the numeric
# gradient of the correct `tanh` (section 3) in both dtypes.

# %%
try:
    minicnn.gradcheck(lambda a: a.tanh(), [minicnn.randn(3, requires_grad=True)])
except TypeError as err:
    print("float32 input:", err)

x = minicnn.tensor(x_data, requires_grad=True)
(x.tanh() * minicnn.tensor(w_data)).sum().backward()
exact = x.grad.numpy()
print(f"{'eps':>8} {'float32 rel. error':>19} {'float64 rel. error':>19}")
rel = {}
for eps in (1e-2, 1e-3, 1e-4, 1e-6):
    for dtype in (float32, float64):
        approx = numeric_grad(loss_fn, x_data.astype(dtype), dtype.type(eps))
        rel[dtype.name, eps] = np.abs(approx - exact).max() / np.abs(exact).max()
    print(f"{eps:>8.0e} {rel['float32', eps]:>19.2e} {rel['float64', eps]:>19.2e}")
assert rel["float32", 1e-6] > 1e-3  # would fail gradcheck's rtol: a false alarm
assert rel["float64", 1e-6] < 1e-8
assert min(v for (d, _), v in rel.items() if d == "float32") > 100 * rel["float64", 1e-6]

# %% [markdown]
# ## Summary
#
# * Central differences: truncation error $O(\epsilon^2)$ against $O(\epsilon)$ for
#   one-sided ones; round-off error $\sim u/\epsilon$ for all. The error curve is a V with
#   its bottom near $u^{1/3}$ (central) or $\sqrt{u}$ (one-sided).
# * Check gradients in float64, where the bottom of the V is ~$10^{-11}$.
# * `minicnn.gradcheck` weights outputs at random (so a missing `grad *` is caught) and
#   names the input, element, analytic and numeric values on failure; `mode="directional"`
#   is a two-evaluation check for big inputs.
# * Every op in minicnn is tested this way, and against PyTorch (see `tests/`).

# %%
print("lesson 02: all checks passed")
