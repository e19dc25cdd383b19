# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 01: automatic differentiation
#
# Training a network means following the gradient of a loss with respect to millions of
# parameters. Nobody writes those derivatives by hand: the framework records every operation
# of the forward pass in a *computational graph* and then walks the graph backwards, applying
# the chain rule once per node. That is **reverse-mode automatic differentiation**, or
# *backpropagation*, and it is what this lesson takes apart.
#
# What you will do:
#
# 1. (a) build the graph of a tiny neuron by hand and differentiate it with the chain rule,
#    in plain Python floats;
# 2. (b) do the same with minicnn Tensors and look at the graph autograd recorded;
# 3. (c) do it once more with PyTorch and check that all three agree;
# 4. (d) write your own differentiable operation (a `minicnn.Function`);
# 5. (e) see why gradients are *summed* over broadcast axes and why they *accumulate*;
# 6. (f) train a small network with nothing but tensor operations;
# 7. (g) meet `no_grad` and `retain_graph`.
#
# Run it as a script, `python lessons/01_autograd.py` (add `--quick` for a fast run with
# fewer training steps, as CI does), or open it as a notebook with
# `jupytext --to notebook lessons/01_autograd.py`. Figures go to `lessons/out/`.
#
# Every claim below is checked with an `assert`, most of them against PyTorch: if the lesson
# runs to the end, what it says is true of the code you have.

# %%
import argparse
import math
import os
import sys
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")  # a script only writes files; a notebook keeps its inline figures
import matplotlib.pyplot as plt
import numpy as np
import torch

import minicnn
from minicnn.autograd.engine import unbroadcast
from minicnn.autograd.tensor import float32, float64
from minicnn.backend import array_module

parser = argparse.ArgumentParser(description="Lesson 01: automatic differentiation")
parser.add_argument("--quick", action="store_true", help="fewer training steps (for CI)")
args, _ = parser.parse_known_args()  # parse_known_args: Jupyter adds arguments of its own

try:
    OUT = Path(__file__).resolve().parent / "out"
except NameError:  # inside a notebook there is no __file__
    OUT = Path("out")
OUT.mkdir(parents=True, exist_ok=True)

minicnn.manual_seed(0)
torch.manual_seed(0)
print(f"quick mode: {args.quick}; figures go to {OUT}")

# %% [markdown]
# ## (a) A computational graph, by hand
#
# Take one neuron with two inputs, a `tanh` activation and a squared-error loss against a
# target `t`:
#
# $$ L = \big(\tanh(x_1 w_1 + x_2 w_2 + b) - t\big)^2 $$
#
# Break it into elementary operations, each producing one named intermediate value. Those
# values are the nodes of the computational graph:
#
# ```
# a = x1 * w1        c = x2 * w2
# s = a + c          n = s + b          (the pre-activation)
# o = tanh(n)        (the neuron's output)
# d = o - t          L = d * d          (the loss)
# ```
#
# The **forward pass** computes the nodes from top to bottom. The **backward pass** computes,
# for every node `v`, the *adjoint* `dL/dv`, from the bottom up. Each step only needs the
# *local derivative* of one operation and the adjoint of its output (the chain rule):
#
# $$ \frac{\partial L}{\partial \text{input}} =
#    \frac{\partial L}{\partial \text{output}} \cdot
#    \frac{\partial\, \text{output}}{\partial \text{input}} $$
#
# | operation     | local derivatives                         |
# |---------------|-------------------------------------------|
# | `u + v`       | 1 for both inputs (a sum passes its gradient through) |
# | `u * v`       | `v` for `u`, `u` for `v` (a product swaps its inputs) |
# | `tanh(u)`     | `1 - tanh(u)^2`, reusing the forward output |
# | `d * d`       | `2 d`                                      |

# %%
x1, x2 = 2.0, -1.0  # inputs
w1, w2 = -0.5, 1.5  # weights
b = 0.8  # bias
t = 0.5  # target

# forward pass: top to bottom, keeping every intermediate value
a = x1 * w1
c = x2 * w2
s = a + c
n = s + b
o = math.tanh(n)
d = o - t
L = d * d

# backward pass: bottom to top, one local derivative per step
dL_dL = 1.0
dL_dd = dL_dL * 2 * d  # L = d*d
dL_do = dL_dd * 1.0  # d = o - t
dL_dn = dL_do * (1 - o**2)  # o = tanh(n): uses the forward value o
dL_ds = dL_dn * 1.0  # n = s + b
dL_db = dL_dn * 1.0
dL_da = dL_ds * 1.0  # s = a + c
dL_dc = dL_ds * 1.0
dL_dx1, dL_dw1 = dL_da * w1, dL_da * x1  # a = x1 * w1: the product swaps its inputs
dL_dx2, dL_dw2 = dL_dc * w2, dL_dc * x2

print(f"{'node':>4} {'value':>10} {'dL/dnode':>10}")
for name, value, grad in [
    ("x1", x1, dL_dx1), ("w1", w1, dL_dw1), ("x2", x2, dL_dx2), ("w2", w2, dL_dw2),
    ("b", b, dL_db), ("a", a, dL_da), ("c", c, dL_dc), ("s", s, dL_ds), ("n", n, dL_dn),
    ("o", o, dL_do), ("d", d, dL_dd), ("L", L, dL_dL),
]:
    print(f"{name:>4} {value:>10.5f} {grad:>10.5f}")
hand = {"x1": dL_dx1, "w1": dL_dw1, "x2": dL_dx2, "w2": dL_dw2, "b": dL_db}


# %% [markdown]
# Is the chain rule right? Nudge one input by a tiny `h` and watch the loss move: the slope
# `(L(w1 + h) - L(w1 - h)) / 2h` must match `dL/dw1`. (Lesson 02 is all about this check.)


# %%
def loss_of(x1, w1, x2, w2, b):
    return (math.tanh(x1 * w1 + x2 * w2 + b) - t) ** 2


point = {"x1": x1, "w1": w1, "x2": x2, "w2": w2, "b": b}
h = 1e-6
for name in point:
    plus, minus = dict(point), dict(point)
    plus[name] += h
    minus[name] -= h
    slope = (loss_of(**plus) - loss_of(**minus)) / (2 * h)
    print(f"dL/d{name}: chain rule {hand[name]:+.8f}   finite difference {slope:+.8f}")
    assert abs(slope - hand[name]) < 1e-7, name

# %% [markdown]
# ## (b) The same with minicnn Tensors
#
# A `Tensor` created with `requires_grad=True` is a *leaf* of the graph: a value we want the
# gradient for. Every operation on it calls a `Function` that computes the result *and*
# records a graph node, stored in the result's `grad_fn`. Calling `.backward()` on the loss
# walks those nodes in reverse and leaves `dL/dleaf` in each leaf's `.grad`.
#
# We use float64 so that the numbers match the Python floats above to the last digits.
# `retain_grad()` asks autograd to keep the gradient of the intermediate `o` too (normally
# only leaves keep theirs, to save memory).

# %%
X1 = minicnn.tensor(x1, dtype=float64, requires_grad=True)
W1 = minicnn.tensor(w1, dtype=float64, requires_grad=True)
X2 = minicnn.tensor(x2, dtype=float64, requires_grad=True)
W2 = minicnn.tensor(w2, dtype=float64, requires_grad=True)
B = minicnn.tensor(b, dtype=float64, requires_grad=True)

O = (X1 * W1 + X2 * W2 + B).tanh()
O.retain_grad()
D = O - t
Loss = D * D
print("loss:", Loss)
print("O.grad_fn =", O.grad_fn, "  Loss.grad_fn =", Loss.grad_fn, "  X1.grad_fn =", X1.grad_fn)
assert X1.is_leaf and not O.is_leaf
assert abs(Loss.item() - L) < 1e-15

# %% [markdown]
# ### Looking at the graph
#
# A node (`grad_fn`) knows its `function` and its `inputs`: the Tensors it was applied to
# (`None` stands for a plain number such as the target `t`). Following `inputs` from the loss
# reaches every node. Backward must visit a node only after *all* the nodes that use its
# output, because its adjoint is the sum of what they send back. That order is a **reverse
# topological order** of the graph. Here is one, found with a depth-first search that emits a
# node once all its inputs are emitted (forward order), then reversed.
#
# Notice that `D` is used twice (both factors of `D * D`): its node appears once, with two
# arrows into the final product, and backward adds the two contributions before going further.


# %%
def topological_order(root):
    """Graph nodes reachable from Tensor ``root``, each after the nodes it consumes."""
    order, seen = [], set()

    def visit(node):
        if id(node) in seen:
            return
        seen.add(id(node))
        for inp in node.inputs:
            if inp is not None and inp.grad_fn is not None:
                visit(inp.grad_fn)
        order.append(node)  # all inputs are in `order` already

    visit(root.grad_fn)
    return order


leaf_names = {id(X1): "x1", id(W1): "w1", id(X2): "x2", id(W2): "w2", id(B): "b"}
forward_order = topological_order(Loss)
number = {id(node): i for i, node in enumerate(forward_order)}


def describe(inp):
    if inp is None:
        return "constant"
    if inp.grad_fn is None:
        return "leaf " + leaf_names.get(id(inp), "?")
    return f"#{number[id(inp.grad_fn)]}"


print("forward (topological) order:")
for i, node in enumerate(forward_order):
    print(f"  #{i} {node.name():<14} inputs: {', '.join(describe(x) for x in node.inputs)}")
print("backward visits:", " -> ".join(n.name() for n in reversed(forward_order)))

names = [node.name() for node in forward_order]
assert names.count("TanhBackward") == 1 and names[-1] == "MulBackward"
assert len(forward_order) == 7  # a, c, s, n, o, d, L: one node per line of the hand graph
assert forward_order[-1].inputs[0] is forward_order[-1].inputs[1] is D

# %% [markdown]
# Now the backward pass. Afterwards the graph is *freed*: every node drops its inputs and
# the arrays it saved for backward (the forward values such as `tanh(n)`), which is what lets
# a training loop run for hours without filling memory. Section (g) shows how to keep it.

# %%
Loss.backward()
mine = {"x1": X1.grad.item(), "w1": W1.grad.item(), "x2": X2.grad.item(),
        "w2": W2.grad.item(), "b": B.grad.item()}
for name in hand:
    print(f"dL/d{name}: by hand {hand[name]:+.12f}   minicnn {mine[name]:+.12f}")
    assert abs(mine[name] - hand[name]) < 1e-14, name
assert abs(O.grad.item() - dL_do) < 1e-14  # the retained intermediate gradient
assert all(node.freed and node.inputs == () for node in forward_order)

# %% [markdown]
# ## (c) The same with PyTorch
#
# PyTorch's autograd works the same way; even the node names match (PyTorch adds a version
# number: `TanhBackward0`).

# %%
tx = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in point.items()}
tO = (tx["x1"] * tx["w1"] + tx["x2"] * tx["w2"] + tx["b"]).tanh()
tD = tO - t
tLoss = tD * tD
print("torch:", tLoss, " O.grad_fn:", tO.grad_fn.name())
tLoss.backward()
for name in hand:
    print(f"dL/d{name}: torch {tx[name].grad.item():+.12f}   minicnn {mine[name]:+.12f}")
    assert abs(tx[name].grad.item() - mine[name]) < 1e-14, name

# %% [markdown]
# ## (d) Writing your own differentiable operation
#
# Every operation in minicnn is a `Function` with two static methods working on raw arrays
# (NumPy on the CPU, CuPy on the GPU):
#
# * `forward(ctx, *inputs, **params)` computes the output and stores in `ctx` whatever
#   backward will need: `ctx.save_for_backward(...)` for arrays, plain attributes for the rest.
# * `backward(ctx, grad)` receives `dL/doutput` (shaped like the output) and returns
#   `dL/dinput` for each positional input: the *vector-Jacobian product*. For an element-wise
#   operation that is simply `grad * f'(x)`.
#
# `Swish.apply(x, beta=...)` runs forward and records the node. Our example is the
# Swish activation (called SiLU when `beta = 1`):
#
# $$ \mathrm{swish}(x) = x\,\sigma(\beta x), \qquad
#    \frac{d}{dx}\mathrm{swish}(x) = \sigma(\beta x) + \beta x\,\sigma(\beta x)\,
#    \big(1 - \sigma(\beta x)\big) $$
#
# Two habits worth copying: compute with `xp = array_module(x)` instead of `np`, so the same
# code runs on the GPU; and save the sigmoid from forward rather than recomputing it.
# We write `sigma(z) = (1 + tanh(z / 2)) / 2`, an identity that never overflows (unlike
# `1 / (1 + exp(-z))` for large negative `z`).


# %%
class Swish(minicnn.Function):
    """swish(x) = x * sigmoid(beta * x), element-wise. x: any shape -> same shape."""

    @staticmethod
    def forward(ctx, x, beta=1.0):
        xp = array_module(x)
        sig = (1 + xp.tanh(beta * x / 2)) / 2
        ctx.save_for_backward(x, sig)
        ctx.beta = beta
        return x * sig

    @staticmethod
    def backward(ctx, grad):
        x, sig = ctx.saved_tensors
        return grad * (sig + ctx.beta * x * sig * (1 - sig))


x = minicnn.randn(4, 5, dtype=float64, requires_grad=True)
y = Swish.apply(x, beta=1.5)
print("y.grad_fn:", y.grad_fn, "saved:", [a.shape for a in y.grad_fn.saved_tensors])
assert y.grad_fn.name() == "SwishBackward"

# %% [markdown]
# Is the backward right? `minicnn.gradcheck` compares it with central finite differences in
# float64, element by element (lesson 02 explains how). Then PyTorch, in float32 and float64,
# forward and backward.

# %%
assert minicnn.gradcheck(lambda x: Swish.apply(x, beta=1.5), [x])
print("gradcheck passed")

for dtype, tol in [(float32, 1e-5), (float64, 1e-12)]:
    data = minicnn.random.generator().standard_normal((3, 7)).astype(dtype) * 3
    xm = minicnn.tensor(data, requires_grad=True)
    xt = torch.tensor(data, requires_grad=True)
    ym, yt = Swish.apply(xm, beta=1.0), torch.nn.functional.silu(xt)
    upstream = np.linspace(-1, 1, ym.numel()).reshape(ym.shape).astype(dtype)
    ym.backward(upstream)
    yt.backward(torch.tensor(upstream))
    np.testing.assert_allclose(ym.detach().numpy(), yt.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=tol, atol=tol)
    assert xm.grad.dtype == dtype
    print(f"{dtype}: Swish matches torch.nn.functional.silu, forward and backward")

# %% [markdown]
# ## (e) Broadcasting sums gradients; `.grad` accumulates
#
# ### Broadcasting
#
# Adding a bias `b` of shape `(4,)` to a batch `A` of shape `(3, 4)` *broadcasts* `b`: the same
# four numbers are used in all three rows. Each use contributes to the loss, so `dL/db` is the
# **sum** of the upstream gradient over the broadcast axis (the multivariable chain rule: add
# up every path from `b` to the loss). A Function's backward returns the gradient in the
# broadcast shape `(3, 4)`; the engine sums it back to each input's shape in one helper,
# `minicnn.autograd.engine.unbroadcast`. Axes that were *added* (on the left) are summed away;
# axes of size 1 that were *stretched* are summed with `keepdims`.

# %%
A = minicnn.randn(3, 4, dtype=float64, requires_grad=True)
bias = minicnn.randn(4, dtype=float64, requires_grad=True)
col = minicnn.randn(3, 1, dtype=float64, requires_grad=True)
upstream = np.arange(12.0).reshape(3, 4)
((A + bias) * col).backward(upstream)

# by hand: d/dbias of sum(upstream * (A + bias) * col) sums over the rows
expected_bias = (upstream * col.detach().numpy()).sum(axis=0)
expected_col = (upstream * (A.detach().numpy() + bias.detach().numpy())).sum(axis=1, keepdims=True)
print("bias.grad:", bias.grad, "\ncol.grad:", col.grad.numpy().ravel())
assert bias.grad.shape == (4,) and col.grad.shape == (3, 1)
np.testing.assert_allclose(bias.grad.numpy(), expected_bias, rtol=1e-12)
np.testing.assert_allclose(col.grad.numpy(), expected_col, rtol=1e-12)
np.testing.assert_allclose(unbroadcast(upstream, (1, 4)), upstream.sum(0, keepdims=True))

tA, tb, tc = (torch.tensor(v.detach().numpy(), requires_grad=True) for v in (A, bias, col))
((tA + tb) * tc).backward(torch.tensor(upstream))
for mine_t, theirs in [(A, tA), (bias, tb), (col, tc)]:
    np.testing.assert_allclose(mine_t.grad.numpy(), theirs.grad.numpy(), rtol=1e-12)
print("broadcast gradients match PyTorch")

# %% [markdown]
# ### Accumulation
#
# Backward **adds** into `.grad`; it never overwrites. Two reasons:
#
# * inside one graph, a tensor used several times receives one contribution per use, and they
#   must be added (above, `O` was used twice; below, `w * w + 3 * w` gives `2w + 3`);
# * across backward calls, adding lets you split a batch that does not fit in memory into
#   *micro-batches*: run backward on each (with the loss scaled by 1/number of micro-batches)
#   and the summed gradient is the big batch's gradient.
#
# The price: **you must reset the gradients before each new step** (`p.grad = None`, or
# `optimizer.zero_grad()` later in the course). Forget it and every step uses the sum of all
# previous gradients.

# %%
w = minicnn.tensor([1.0, -2.0, 0.5], dtype=float64, requires_grad=True)
(w * w + 3 * w).sum().backward()
np.testing.assert_allclose(w.grad.numpy(), 2 * w.detach().numpy() + 3)

w.grad = None  # start from zero once, then never again: the gradient grows with every call
for step in range(1, 4):
    (w * w).sum().backward()
    print(f"call {step} without zeroing: w.grad = {w.grad.numpy()}")
    np.testing.assert_allclose(w.grad.numpy(), step * 2 * w.detach().numpy())

# micro-batches: 4 chunks of 8 rows give the gradient of the whole batch of 32
data = minicnn.randn(32, 3, dtype=float64)
w.grad = None
((data @ w) ** 2).mean().backward()
full_batch = w.grad.numpy().copy()
w.grad = None
for chunk in data.chunk(4):
    (((chunk @ w) ** 2).mean() / 4).backward()
np.testing.assert_allclose(w.grad.numpy(), full_batch, rtol=1e-12)
print("4 accumulated micro-batches == 1 full batch:", w.grad.numpy())

# %% [markdown]
# ## (f) Training a network with raw tensor operations
#
# Everything needed for learning is now in place. We fit a two-layer perceptron
#
# $$ \hat y = \tanh(x W_1 + b_1)\, W_2 + b_2 $$
#
# to noisy samples of `sin(2x)` by **gradient descent** on the mean squared error: forward,
# backward, then move each parameter a small step against its gradient,
# `p <- p - lr * dL/dp`, and reset the gradient. The update changes `p.data` directly: it is
# not part of the model, so it must not be recorded in the graph.
#
# The same loop runs in PyTorch from the same starting weights; the two loss curves must
# agree to float32 rounding.

# %%
steps = 300 if args.quick else 5000
hidden, n_points, lr = 32, 256, 0.05
g = minicnn.random.generator()
xs = np.linspace(-2, 2, n_points, dtype=np.float32)[:, None]  # (N, 1)
ys = (np.sin(2 * xs) + 0.1 * g.standard_normal(xs.shape)).astype(np.float32)  # (N, 1)
init = [
    g.standard_normal((1, hidden)).astype(np.float32),  # W1: (1, H)
    np.zeros(hidden, np.float32),  # b1: (H,)
    (g.standard_normal((hidden, 1)) / np.sqrt(hidden)).astype(np.float32),  # W2: (H, 1)
    np.zeros(1, np.float32),  # b2: (1,)
]


def train(lib):
    """Full-batch gradient descent with ``lib`` (minicnn or torch); returns losses and fit."""
    params = [lib.tensor(p.copy(), requires_grad=True) for p in init]
    W1_, b1_, W2_, b2_ = params
    X, Y = lib.tensor(xs), lib.tensor(ys)
    losses = []
    for _ in range(steps):
        pred = (X @ W1_ + b1_).tanh() @ W2_ + b2_  # forward: (N, 1)
        loss = ((pred - Y) ** 2).mean()
        loss.backward()  # backward: fills p.grad
        for p in params:  # update, outside the graph, then reset the gradient
            p.data -= lr * p.grad.data
            p.grad = None
        losses.append(loss.item())
    return np.array(losses), pred.detach().numpy()


losses, fit = train(minicnn)
torch_losses, _ = train(torch)
print(f"loss: step 0 {losses[0]:.4f} -> step {steps - 1} {losses[-1]:.4f}")
np.testing.assert_allclose(losses, torch_losses, rtol=1e-4)
assert losses[-1] < 0.1 * losses[0]

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
ax1.semilogy(losses, label="minicnn")
ax1.semilogy(torch_losses, "--", label="PyTorch")
ax1.set(xlabel="step", ylabel="mean squared error", title="training loss")
ax1.legend()
ax2.plot(xs, ys, ".", ms=3, alpha=0.5, label="data")
ax2.plot(xs, np.sin(2 * xs), "k:", label="sin(2x)")
ax2.plot(xs, fit, label="network")
ax2.set(xlabel="x", ylabel="y", title=f"fit after {steps} steps")
ax2.legend()
fig.tight_layout()
fig.savefig(OUT / "01_loss.png", dpi=100)
plt.close(fig)
print("saved", OUT / "01_loss.png")

# %% [markdown]
# ## (g) `no_grad` and `retain_graph`
#
# Inside `with minicnn.no_grad():` operations build no graph: the results have no `grad_fn`,
# and nothing is saved for backward. Use it for evaluation and for anything that is not part
# of the model (such as parameter updates): it is faster and uses less memory.

# %%
p = minicnn.randn(3, requires_grad=True)
with minicnn.no_grad():
    q = p * 2 + 1
print("inside no_grad:", q, "requires_grad:", q.requires_grad)
assert q.grad_fn is None and not q.requires_grad
assert (p * 2).requires_grad  # recording is back on after the block

# %% [markdown]
# Backward frees the graph it walked, so a second backward through it fails with a clear
# error. Pass `retain_graph=True` to keep it (for example to backpropagate two losses that share
# a graph); the second call then adds to `.grad` once more.

# %%
p.grad = None
y = (p * p).sum()
y.backward(retain_graph=True)
y.backward()  # works: the graph was kept, and the gradients add up
np.testing.assert_allclose(p.grad.numpy(), 2 * 2 * p.detach().numpy(), rtol=1e-6)
try:
    y.backward()  # the second call freed the graph
    raise AssertionError("a third backward should fail")
except RuntimeError as err:
    print("third backward:", err)
    assert "retain_graph=True" in str(err)

# %% [markdown]
# ## Summary
#
# * A graph node stores what its backward needs; backward visits the nodes in reverse
#   topological order and applies one local chain-rule step per node.
# * A `Function` is a pair of formulas: forward, and the vector-Jacobian product backward.
#   Check every new one with `minicnn.gradcheck` and against PyTorch.
# * Gradients are summed over broadcast axes and over repeated uses, and they accumulate in
#   `.grad` across calls: reset them every step.
# * `no_grad` stops recording; `retain_graph=True` keeps a graph for a second backward.
#
# Next, lesson 02: how finite differences check gradients, and why in float64.

# %%
print("lesson 01: all checks passed")
