"""The backward engine and Tensor basics: traversal order, accumulation, graph freeing,
grad modes, custom Functions, conversions, and the errors for bad input."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

import minicnn
from minicnn.autograd import Function, ops
from minicnn.autograd.engine import unbroadcast


def _counting(log: list, name: str):
    """A Function that doubles its input and records each backward call in ``log``."""

    class Double(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, grad):
            log.append(name)
            return grad * 2

    Double.__name__ = name
    return Double


# ---------------------------------------------------------------- traversal


def test_diamond_graph_runs_each_backward_once_in_reverse_topological_order():
    log: list[str] = []
    A, B, C, D = (_counting(log, n) for n in "ABCD")
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    a = A.apply(x)  # x -> a -> (b, c) -> d: a diamond
    b = B.apply(a)
    c = C.apply(a)
    d = D.apply(b + c)
    d.sum().backward()
    assert sorted(log) == ["A", "B", "C", "D"]  # once each
    assert log[0] == "D" and log[-1] == "A"  # D before B and C, both before A
    np.testing.assert_array_equal(x.grad.numpy(), [16.0, 16.0])  # 2 * (2*2 + 2*2)


def test_wide_fan_out_and_shared_subgraphs():
    log: list[str] = []
    (A,) = (_counting(log, "A"),)
    x = minicnn.tensor(1.5, dtype=np.float64, requires_grad=True)
    a = A.apply(x)
    total = sum(a * k for k in range(1, 11))  # a used ten times
    total.backward()
    assert log == ["A"]
    assert x.grad.item() == 2 * 55


def test_gradient_matches_torch_on_a_tangled_graph():
    xv = np.array([[0.3, -1.2, 2.0], [1.1, 0.4, -0.7]])
    m, t = minicnn.tensor(xv, requires_grad=True), torch.tensor(xv, requires_grad=True)

    def f(x, lib):
        y = lib.exp(x) * x
        z = y[:, :2] + y.sum(1, keepdim=True)
        return (z @ z.T).sum() + (y * y.tanh()).mean()

    f(m, minicnn).backward()
    f(t, torch).backward()
    np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), rtol=1e-12)


# ---------------------------------------------------------------- accumulation and freeing


def test_gradients_accumulate_across_backward_calls_into_leaves():
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3 + 2, 3 + 4])
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_backward_on_a_leaf():
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    x.backward(minicnn.tensor([0.5, 4.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [0.5, 4.0])
    s = minicnn.tensor(3.0, requires_grad=True)
    s.backward()
    assert s.grad.item() == 1.0


def test_leaf_grad_is_not_aliased_to_the_incoming_gradient():
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    g = np.array([1.0, 1.0], dtype=np.float32)
    x.backward(g)
    g[0] = 100.0
    assert x.grad.numpy()[0] == 1.0


def test_retain_graph_allows_a_second_backward():
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)


def test_second_backward_without_retain_graph_is_a_clear_error():
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(
        RuntimeError, match="backward through the graph a second time.*retain_graph=True"
    ):
        y.backward()
    z = x * 2
    z.sum().backward()
    with pytest.raises(RuntimeError, match=r"MulBackward a second time.*retain_graph=True"):
        z.mean().backward()  # a new root, but it reaches the freed Mul node


def test_graph_is_freed_after_backward():
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    z = (y * x).sum()
    node = z.grad_fn
    z.backward()
    assert node.freed and node.inputs == () and node.saved_tensors == ()
    assert y.grad_fn.freed and y.grad_fn.saved_tensors == ()


def test_backward_through_part_of_a_graph_leaves_the_rest():
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    shared = x * 3
    a, b = shared.sum(), (shared * shared).sum()
    a.backward(retain_graph=True)
    b.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 3 + 2 * 9 * np.array([1.0, 2.0]))


# ---------------------------------------------------------------- grad modes


def test_no_grad_builds_no_graph():
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    with minicnn.no_grad():
        y = x * 2 + 1
        assert not minicnn.is_grad_enabled()
    assert minicnn.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None


def test_no_grad_as_decorator_with_and_without_parentheses():
    @minicnn.no_grad()
    def f(x):
        return x * 2

    @minicnn.no_grad
    def g(x):
        return x * 2

    x = minicnn.tensor([1.0], requires_grad=True)
    assert not f(x).requires_grad and not g(x).requires_grad
    assert minicnn.is_grad_enabled()
    assert g.__name__ == "g"


def test_decorated_recursion_restores_the_mode():
    @minicnn.no_grad()
    def depth(n):
        return minicnn.is_grad_enabled() if n == 0 else depth(n - 1)

    assert depth(3) is False
    assert minicnn.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = minicnn.tensor([1.0], requires_grad=True)
    with minicnn.no_grad():
        with minicnn.enable_grad():
            y = x * 2
        z = x * 2
    assert y.requires_grad and not z.requires_grad
    y.backward(np.ones(1))
    assert x.grad.item() == 2.0


def test_set_grad_enabled():
    from minicnn.autograd import set_grad_enabled

    x = minicnn.tensor([1.0], requires_grad=True)
    with set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert minicnn.is_grad_enabled()
    set_grad_enabled(False)
    try:
        assert not minicnn.is_grad_enabled()
    finally:
        set_grad_enabled(True)
    assert (x * 2).requires_grad


def test_grad_mode_survives_an_exception():
    with pytest.raises(ZeroDivisionError), minicnn.no_grad():
        _ = 1 / 0
    assert minicnn.is_grad_enabled()


def test_grad_mode_is_per_thread():
    seen = []
    entered, release = threading.Event(), threading.Event()

    def other():
        entered.wait()
        seen.append(minicnn.is_grad_enabled())
        release.set()

    thread = threading.Thread(target=other)
    thread.start()
    with minicnn.no_grad():
        entered.set()
        release.wait(5)
    thread.join(5)
    assert seen == [True]


# ---------------------------------------------------------------- custom Functions


class RecordNeeds(Function):
    """a * b, recording ctx.needs_input_grad and which gradients backward computed."""

    calls: list = []

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        ga, gb = ctx.needs_input_grad
        RecordNeeds.calls.append((ga, gb))
        return (grad * b if ga else None), (grad * a if gb else None)


def test_gradients_only_for_inputs_that_need_them():
    RecordNeeds.calls = []
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    c = minicnn.tensor([3.0, 4.0])
    RecordNeeds.apply(x, c).sum().backward()
    RecordNeeds.apply(c, x).sum().backward()
    RecordNeeds.apply(x, 5.0).sum().backward()
    assert RecordNeeds.calls == [(True, False), (False, True), (True, False)]
    assert c.grad is None
    np.testing.assert_array_equal(x.grad.numpy(), [3 + 3 + 5, 4 + 4 + 5])


def test_no_node_when_no_input_needs_grad():
    out = RecordNeeds.apply(minicnn.tensor([1.0]), minicnn.tensor([2.0]))
    assert out.grad_fn is None and not out.requires_grad


def test_function_returning_too_few_or_too_many_gradients():
    class TooFew(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, grad):
            return grad

    class TooMany(TooFew):
        @staticmethod
        def backward(ctx, grad):
            return grad, grad, grad

    x, y = minicnn.ones(2, requires_grad=True), minicnn.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="TooFewBackward returned 1 gradients for 2 inputs"):
        TooFew.apply(x, y).sum().backward()
    with pytest.raises(RuntimeError, match="TooManyBackward returned 3 gradients for 2 inputs"):
        TooMany.apply(x, y).sum().backward()


def test_function_returning_a_gradient_of_the_wrong_shape():
    class BadShape(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 1

        @staticmethod
        def backward(ctx, grad):
            return grad[:1]

    x = minicnn.ones(3, requires_grad=True)
    with pytest.raises(
        RuntimeError, match=r"BadShapeBackward: gradient for input 0.*\(1,\).*\(3,\)"
    ):
        BadShape.apply(x).sum().backward()


def test_unbroadcast():
    g = np.ones((2, 3, 4))
    assert unbroadcast(g, (3, 4)).shape == (3, 4) and unbroadcast(g, (3, 4))[0, 0] == 2
    assert unbroadcast(g, (1, 4)).tolist() == [[6.0] * 4]
    assert unbroadcast(g, (2, 1, 1)).shape == (2, 1, 1)
    assert unbroadcast(g, ()).item() == 24
    with pytest.raises(ValueError, match="cannot reduce to shape"):
        unbroadcast(np.ones(3), (2, 3))


# ---------------------------------------------------------------- non-leaf gradients, depth


def test_retain_grad_for_a_non_leaf():
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.retain_grad()
    z = y * y
    z.sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [6.0, 12.0])
    w = x * 2  # without retain_grad a non-leaf keeps no gradient
    w.sum().backward()
    assert w.grad is None


def test_retain_grad_on_the_root():
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.retain_grad()
    y.backward(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(y.grad.numpy(), [1.0, 1.0])


def test_a_deep_chain_does_not_hit_the_recursion_limit():
    x = minicnn.tensor([1.0], dtype=np.float64, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001**5000], rtol=1e-10)


def test_a_deep_graph_is_garbage_collected_without_recursion_errors():
    x = minicnn.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(20000):
        y = y + 1.0
    del y  # dropped without backward: the chain of nodes is torn down without recursing


# ---------------------------------------------------------------- Tensor basics


def test_to_float64_keeps_the_graph():
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    y = x.to(np.float64)
    assert y.dtype == np.float64 and y.requires_grad and y.grad_fn is not None
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    assert x.to(np.float32) is x  # nothing to do: the same tensor
    assert x.to("cpu") is x
    assert x.double().dtype == np.float64 and x.long().dtype == np.int64
    assert not x.long().requires_grad  # integer results carry no gradient


def test_detach():
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    y = (x * 2).detach()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    z = x.detach()
    z.array[0] = 7.0  # shares memory, as in PyTorch
    assert x.array[0] == 7.0
    w = x * 2
    w.detach_()
    assert w.grad_fn is None and not w.requires_grad


def test_item():
    assert minicnn.tensor([[2.5]]).item() == 2.5
    assert isinstance(minicnn.tensor(3).item(), int)
    assert isinstance(minicnn.tensor(3.0).item(), float)
    with pytest.raises(ValueError, match=r"item\(\) needs a one-element tensor, got shape \(2,\)"):
        minicnn.tensor([1.0, 2.0]).item()


def test_numpy():
    x = minicnn.tensor([1.0, 2.0])
    a = x.numpy()
    assert isinstance(a, np.ndarray) and a.dtype == np.float32
    a[0] = 5.0
    assert x.array[0] == 5.0  # shares memory on the CPU
    with pytest.raises(RuntimeError, match=r"requires grad; call detach\(\)\.numpy\(\)"):
        minicnn.tensor([1.0], requires_grad=True).numpy()
    assert np.asarray(minicnn.tensor([1.0], requires_grad=True)).tolist() == [1.0]


def test_repr():
    assert repr(minicnn.tensor([1.5, 2.0])) == "tensor([1.5, 2. ])"
    assert repr(minicnn.tensor([1.5], requires_grad=True)) == "tensor([1.5], requires_grad=True)"
    assert repr(minicnn.tensor(2.0, requires_grad=True) * 2) == "tensor(4., grad_fn=<MulBackward>)"
    assert repr(minicnn.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(minicnn.tensor([1.0], dtype=np.float64)) == "tensor([1.], dtype=float64)"


def test_creation_dtypes_follow_torch():
    for data in [
        1.5,
        [1.5, 2.0],
        3,
        [1, 2],
        True,
        np.float64(2.0),
        np.float32(2.0),
        np.array([1, 2], dtype=np.int32),
    ]:
        got, expected = minicnn.tensor(data), torch.tensor(data)
        assert got.dtype == torch.empty(0, dtype=expected.dtype).numpy().dtype, data


def test_requires_grad_needs_floating_point():
    with pytest.raises(
        TypeError, match="only floating-point tensors can require gradients, got dtype int64"
    ):
        minicnn.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="got dtype int64"):
        minicnn.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="only be switched off on leaf tensors"):
        (minicnn.ones(2, requires_grad=True) * 2).requires_grad_(False)


# ---------------------------------------------------------------- bad input


def test_backward_on_a_non_scalar_without_gradient_names_the_shape():
    y = minicnn.ones(2, 3, requires_grad=True) * 2
    with pytest.raises(
        RuntimeError, match=r"needs a scalar \(one-element\) tensor, got shape \(2, 3\)"
    ):
        y.backward()


def test_backward_with_a_gradient_of_the_wrong_shape():
    y = minicnn.ones(2, 3, requires_grad=True) * 2
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\), expected \(2, 3\)"):
        y.backward(np.ones(3))


def test_backward_on_a_tensor_without_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        minicnn.ones(2).sum().backward()


def test_engine_in_a_fresh_interpreter_with_a_low_recursion_limit():
    """The traversal is iterative: 3000 nodes under a recursion limit of 200."""
    code = (
        "import sys, minicnn\n"
        "x = minicnn.ones(1, requires_grad=True)\n"
        "y = x\n"
        "for _ in range(3000): y = y + 1\n"
        "sys.setrecursionlimit(200)\n"
        "y.sum().backward()\n"
        "print(x.grad.item())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1.0"


def test_ops_on_plain_numbers_give_tensors():
    assert ops.add(1, 2).item() == 3 and ops.add(1, 2).dtype == np.int64
    assert ops.div(1, 2).dtype == np.float32


# ---------------------------------------------------------------- creation and randomness


def test_creation_functions_follow_torch_defaults():
    cases = [
        (minicnn.zeros(2, 3), torch.zeros(2, 3)),
        (minicnn.ones((2, 3)), torch.ones((2, 3))),
        (minicnn.full((2,), 1.5), torch.full((2,), 1.5)),
        (minicnn.full((2,), 3), torch.full((2,), 3)),
        (minicnn.arange(5), torch.arange(5)),
        (minicnn.arange(0, 1, 0.25), torch.arange(0, 1, 0.25)),
        (
            minicnn.zeros_like(minicnn.ones(2, dtype=np.float64)),
            torch.zeros(2, dtype=torch.float64),
        ),
    ]
    for got, expected in cases:
        assert got.shape == tuple(expected.shape)
        assert got.dtype == torch.empty(0, dtype=expected.dtype).numpy().dtype
        np.testing.assert_array_equal(got.numpy(), expected.numpy())
    assert minicnn.randn(2, 3).dtype == np.float32 and minicnn.rand(4).dtype == np.float32
    assert minicnn.randn(2, dtype=np.float64, requires_grad=True).requires_grad
    with pytest.raises(ValueError, match="size must be non-negative ints"):
        minicnn.zeros(2, -1)


def test_manual_seed_repeats_the_random_numbers():
    from minicnn import random as mrandom

    minicnn.manual_seed(123)
    a = (minicnn.randn(3).numpy(), minicnn.rand(2).numpy(), minicnn.randint(0, 10, (5,)).numpy())
    state = mrandom.get_state()
    later = minicnn.randn(4).numpy()
    minicnn.manual_seed(123)
    b = (minicnn.randn(3).numpy(), minicnn.rand(2).numpy(), minicnn.randint(0, 10, (5,)).numpy())
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    mrandom.set_state(state)
    np.testing.assert_array_equal(minicnn.randn(4).numpy(), later)
    r = minicnn.rand(1000).numpy()
    assert r.min() >= 0 and r.max() < 1
    k = minicnn.randint(3, 7, (1000,)).numpy()
    assert k.min() == 3 and k.max() == 6 and k.dtype == np.int64


def test_manual_seed_arguments():
    minicnn.manual_seed(np.int64(5))
    minicnn.manual_seed(-1)  # a negative seed is its 64-bit two's complement, as in torch
    first = minicnn.rand(2).numpy()
    minicnn.manual_seed(2**64 - 1)
    np.testing.assert_array_equal(minicnn.rand(2).numpy(), first)
    with pytest.raises(TypeError, match=r"manual_seed\(seed\) needs an int, got float"):
        minicnn.manual_seed(1.5)
    with pytest.raises(ValueError, match=r"needs an int in \[-2\*\*63, 2\*\*64\)"):
        minicnn.manual_seed(2**64)


def test_tolist_works_with_requires_grad():
    x = minicnn.tensor([[1.0, 2.0]], requires_grad=True)
    assert x.tolist() == [[1.0, 2.0]] and minicnn.tensor(3).tolist() == 3
