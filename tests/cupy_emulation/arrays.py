"""``cupy.ndarray`` and the NumPy-shaped functions of the emulated ``cupy`` module.

A ``cupy.ndarray`` here is a NumPy array of a subclass, so ``backend_of`` routes it to the
cupy backend. Like CuPy, it refuses to be mixed with NumPy arrays (``cupy_array +
numpy_array``, ``np.concatenate([cupy_array, numpy_array])`` raise ``TypeError``): data
crosses between host and device only by ``cupy.asarray`` and ``cupy.asnumpy``/``.get()``,
so a test that passes here does not lean on an implicit transfer a GPU would refuse.
Reductions give 0-d arrays, as CuPy's do. Not caught: ``np.asarray(cupy_array)`` (NumPy
hands a subclass through without asking it).
"""

from __future__ import annotations

import types

import numpy as np


class ndarray(np.ndarray):  # noqa: N801 (CuPy's name)
    """An array "on the device": NumPy memory, CuPy's rules for mixing with host arrays."""

    __array_priority__ = 100.0
    __module__ = "cupy"  # as type(array).__module__ reads for CuPy's arrays

    def __array_wrap__(self, array, context=None, return_scalar=False):
        return array.view(ndarray) if isinstance(array, np.ndarray) else array

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        _refuse_host(inputs, f"numpy.{ufunc.__name__}")
        out = kwargs.get("out")
        if out is not None:
            _refuse_host(out, f"numpy.{ufunc.__name__}(out=...)")
            kwargs["out"] = tuple(_host(o) for o in out)
        result = getattr(ufunc, method)(*_host(inputs), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _device(result)

    def __array_function__(self, func, types_, args, kwargs):
        _refuse_host((args, kwargs), f"numpy.{func.__name__}")
        return _device(func(*_host(args), **_host(kwargs)))

    def get(self, stream=None, order="C", out=None) -> np.ndarray:
        """A copy in host memory (a plain NumPy array)."""
        host = np.array(self.view(np.ndarray), order=order, copy=True)
        if out is not None:
            out[...] = host
            return out
        return host

    def set(self, array, stream=None) -> None:
        """Copy the host array ``array`` into this one."""
        self.view(np.ndarray)[...] = array

    @property
    def device(self):
        from tests.cupy_emulation import Device

        return Device(0)

    def __repr__(self) -> str:
        return "cupy:" + repr(self.view(np.ndarray))


def _refuse_host(obj, where: str) -> None:
    """Raise as CuPy does when a NumPy array (host memory) meets a CuPy operation.

    A 0-d NumPy array passes, as a scalar would.
    """
    if isinstance(obj, np.ndarray) and not isinstance(obj, ndarray) and obj.ndim:
        raise TypeError(
            f"{where}: unsupported type numpy.ndarray next to a cupy.ndarray; move it with "
            "cupy.asarray first (CuPy does not mix host and device arrays)"
        )
    if isinstance(obj, list | tuple):
        for o in obj:
            _refuse_host(o, where)
    elif isinstance(obj, dict):
        for o in obj.values():
            _refuse_host(o, where)


def _host(obj):
    """``obj`` with every cupy.ndarray viewed as a plain NumPy array (same memory)."""
    if isinstance(obj, ndarray):
        return obj.view(np.ndarray)
    if isinstance(obj, list | tuple):
        return type(obj)(_host(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _host(v) for k, v in obj.items()}
    return obj


def _device(obj):
    """``obj`` with every NumPy array as a cupy.ndarray and NumPy scalars as 0-d arrays."""
    if isinstance(obj, np.ndarray):
        return obj if isinstance(obj, ndarray) else obj.view(ndarray)
    if isinstance(obj, np.generic):
        return np.asarray(obj).view(ndarray)
    if isinstance(obj, tuple | list):
        return type(obj)(_device(o) for o in obj)
    return obj


def asarray(a, dtype=None, order=None, *, blocking=False):
    """``a`` on the device: the same array if it is already there, else a copy of it."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == np.dtype(dtype) else a.astype(dtype)
    return np.array(_host(a), dtype=dtype, order=order or "K", copy=True).view(ndarray)


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    """A new device array (a copy unless ``copy=False`` allows reusing a device array)."""
    if isinstance(obj, ndarray) and not copy:
        return asarray(obj, dtype)
    return np.array(_host(obj), dtype=dtype, copy=True, order=order, ndmin=ndmin).view(ndarray)


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True) -> np.ndarray:
    """``a`` in host memory (a plain NumPy array; a copy of a device array)."""
    if isinstance(a, ndarray):
        return a.get(order=order, out=out)
    host = np.asarray(a, order=order)
    if out is not None:
        out[...] = host
        return out
    return host


def get_array_module(*args) -> types.ModuleType:
    import cupy

    return cupy if any(isinstance(a, ndarray) for a in args) else np


class Forward(types.ModuleType):
    """A module that answers with NumPy's function of the same name, returning device arrays.

    Functions of NumPy (``zeros``, ``einsum``, ``where``...) are wrapped; types (``float32``,
    ``dtype``), ufuncs and constants are NumPy's own, as they are in CuPy.
    """

    def __init__(self, name: str, numpy_module: types.ModuleType):
        super().__init__(name)
        self._numpy = numpy_module

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        target = getattr(self._numpy, name)  # AttributeError names the missing function
        if isinstance(target, types.ModuleType):
            value = Forward(f"{self.__name__}.{name}", target)
        elif callable(target) and not isinstance(target, type | np.ufunc):
            value = _wrap(target)
        else:
            value = target
        setattr(self, name, value)  # cached: found once
        return value


def _wrap(function):
    def on_device(*args, **kwargs):
        _refuse_host((args, kwargs), f"cupy.{function.__name__}")
        return _device(function(*_host(args), **_host(kwargs)))

    on_device.__name__ = function.__name__
    on_device.__doc__ = function.__doc__
    return on_device
