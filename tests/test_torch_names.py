"""The names PyTorch code reaches for exist in minicnn and behave like torch's."""

import numpy as np
import pytest
import torch

import minicnn


def _dtype(t) -> np.dtype:
    return np.dtype(str(t.dtype).removeprefix("torch."))


def test_the_package_face_shows_no_stray_modules():
    names = dir(minicnn)
    assert "os" not in names and "sys" not in names
    for name in ("utils", "cuda", "device", "linspace", "eye", "inference_mode", "is_tensor"):
        assert name in names and name in minicnn.__all__


@pytest.mark.parametrize("name", ["long", "int", "short", "float", "double", "half", "bool",
                                  "uint8", "int8", "int16", "int32", "int64", "float16",
                                  "float32", "float64"])
def test_dtype_aliases_are_torchs(name):
    ours = getattr(minicnn, name)
    theirs = getattr(torch, name)
    assert ours == np.dtype(str(theirs).removeprefix("torch."))
    assert minicnn.zeros(2, dtype=ours).dtype == _dtype(torch.zeros(2, dtype=theirs))


@pytest.mark.parametrize("args", [(0, 1, 5), (-2.5, 7, 11), (3, 3, 1), (0, 1, 0), (1, -1, 4)])
def test_linspace(args):
    ours, theirs = minicnn.linspace(*args), torch.linspace(*args)
    assert ours.dtype == _dtype(theirs)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(minicnn.linspace(*args, dtype=minicnn.float64).numpy(),
                               torch.linspace(*args, dtype=torch.float64).numpy(), rtol=1e-15)


@pytest.mark.parametrize("args", [(3,), (2, 4), (4, 2), (0,)])
def test_eye(args):
    ours, theirs = minicnn.eye(*args), torch.eye(*args)
    assert ours.dtype == _dtype(theirs)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert minicnn.eye(*args, dtype=minicnn.long).dtype == np.int64


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_like_constructors(dtype):
    base = np.arange(6).reshape(2, 3).astype(dtype)
    ours, theirs = minicnn.tensor(base), torch.tensor(base)
    for name in ("zeros_like", "ones_like"):
        a, b = getattr(minicnn, name)(ours), getattr(torch, name)(theirs)
        assert a.dtype == _dtype(b) and a.shape == tuple(b.shape)
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    a, b = minicnn.full_like(ours, 2.7), torch.full_like(theirs, 2.7)
    assert a.dtype == _dtype(b)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-7)
    for name in ("randn_like", "rand_like"):
        if dtype == "int64":
            with pytest.raises((TypeError, RuntimeError)):
                getattr(torch, name)(theirs)
            with pytest.raises(TypeError, match="floating-point"):
                getattr(minicnn, name)(ours)
            continue
        a, b = getattr(minicnn, name)(ours), getattr(torch, name)(theirs)
        assert a.dtype == _dtype(b) and a.shape == tuple(b.shape)
    u = minicnn.rand_like(minicnn.zeros(1000))
    assert 0 <= float(u.min()) and float(u.max()) < 1 and abs(float(u.mean()) - 0.5) < 0.05
    with pytest.raises(TypeError, match="zeros_like: input must be a minicnn Tensor"):
        minicnn.zeros_like(np.zeros(3))


def test_is_tensor():
    assert minicnn.is_tensor(minicnn.zeros(1)) and torch.is_tensor(torch.zeros(1))
    assert not minicnn.is_tensor(np.zeros(1)) and not torch.is_tensor(np.zeros(1))


def test_inference_mode_as_context_and_decorator():
    x = minicnn.ones(2, requires_grad=True)
    with minicnn.inference_mode():
        assert not minicnn.is_grad_enabled() and not (x * 2).requires_grad
    assert minicnn.is_grad_enabled()

    @minicnn.inference_mode
    def bare():
        return (x * 2).requires_grad

    @minicnn.inference_mode()
    def called():
        return (x * 2).requires_grad

    assert not bare() and not called() and minicnn.is_grad_enabled()
    with minicnn.inference_mode(False):
        assert minicnn.is_grad_enabled()  # as torch: mode=False changes nothing
    with minicnn.no_grad(), minicnn.inference_mode(False):
        assert not minicnn.is_grad_enabled()


@pytest.mark.parametrize("args", [("cpu",), ("cuda",), ("cuda:1",), ("cuda", 0)])
def test_device_like_torchs(args):
    ours, theirs = minicnn.device(*args), torch.device(*args)
    assert (ours.type, ours.index) == (theirs.type, theirs.index)
    assert str(ours) == str(theirs) and repr(ours) == repr(theirs)
    assert ours == minicnn.device(str(theirs)) and hash(ours) == hash(minicnn.device(str(ours)))


def test_device_errors_and_use():
    for bad in ("gpu", "cuda:x", "cpu:1"):
        with pytest.raises(ValueError, match="device"):
            minicnn.device(bad)
    with pytest.raises(TypeError, match="device"):
        minicnn.device(3)
    cpu = minicnn.device("cpu")
    t = minicnn.ones(2, dtype=minicnn.float64)
    assert t.to(cpu) is t and t.to(cpu, minicnn.float32).dtype == np.float32
    assert minicnn.zeros(2, device=cpu).device == "cpu"


def test_cuda_availability_agrees_with_the_backend():
    if minicnn.cuda.is_available():
        assert minicnn.cuda.device_count() >= 1
    else:
        assert minicnn.cuda.device_count() == 0
        with pytest.raises(RuntimeError, match="minicnn\\[gpu\\]"):
            minicnn.ones(2).to(minicnn.device("cuda"))


@pytest.mark.parametrize("bad", ["abc", ["a", "b"], np.array(["x", "y"]), [{}],
                                 np.array([object()], dtype=object), [None, 1]])
def test_non_numeric_data_is_refused(bad):
    with pytest.raises((TypeError, ValueError, RuntimeError)):  # torch refuses each one too
        torch.tensor(bad)
    with pytest.raises(TypeError, match=r"tensor: data must be numbers .*, got "):
        minicnn.tensor(bad)


def test_ragged_lists_are_refused():
    with pytest.raises(ValueError, match="expected sequence of length 2"):
        torch.tensor([[1, 2], [3]])
    with pytest.raises(ValueError, match=r"must be rectangular.*got list \[\[1, 2\], \[3\]\]"):
        minicnn.tensor([[1, 2], [3]])


def test_data_is_a_detached_tensor_sharing_storage():
    w = minicnn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    d = w.data
    assert isinstance(d, minicnn.Tensor) and not d.requires_grad and d.grad_fn is None
    d[0] = 10.0  # shares storage, as in PyTorch
    assert w.detach().numpy()[0] == 10.0 and w.array is d.array
    y = (w * 2).sum()
    assert y.data.item() == 30.0 and y.data.grad_fn is None
    w.data = minicnn.tensor([5.0, 5.0])  # replaces the storage
    assert w.shape == (2,) and w.requires_grad and w.tolist() == [5.0, 5.0]
    with pytest.raises(TypeError, match="Tensor.data"):
        w.data = [1.0]
    values, indices = minicnn.max(minicnn.tensor([[1.0, 3.0], [4.0, 2.0]]).data, 1)
    assert values.tolist() == [3.0, 4.0] and indices.tolist() == [1, 0]
