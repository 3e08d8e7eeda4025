"""A CPU stand-in for the part of CuPy gpukpm uses: its GPU code paths, run without a GPU.

Put ``tests/cuda_emulator`` first on ``sys.path`` (``PYTHONPATH``) and ``import cupy`` gives
this package instead of CuPy; ``cupy.cuda.is_available()`` is then true and gpukpm's ``gpu``
backend runs every line it runs on a device, on NumPy/SciPy arrays underneath.  It checks the
*contract* of the device code, not the device: which arrays live where, and the argument rules
of the CuPy calls gpukpm makes.  It is strict where CuPy is strict, so what passes here does
not fail there for these reasons:

* :class:`ndarray` is not a ``numpy.ndarray``.  Implicit conversion to NumPy (``np.asarray``,
  h5py, ``float`` of a large array) raises ``TypeError`` as CuPy does; mixing a device array
  with a host array in one operation raises ``TypeError``; ``.get()`` copies to the host;
  ``cupy.asarray(host)`` copies to the device.  Reductions return 0-d device arrays.
* ``cupyx.cusparse.spmm`` and ``cupy.cublas.gemm`` follow CuPy's checks (F-contiguous dense
  operands of ``spmm``, canonical CSR, the dtype cast that silently replaces ``c``) and count the
  operand copies CuPy would make (:data:`cupy.cublas.operand_copies`).
* ``cupy.RawKernel`` compiles the CUDA source with the host C++ compiler (``__global__`` and the
  thread indices defined away, the grid run as a loop) and checks every argument against the
  kernel's parameter list, as the CUDA launch would *not*: a Python ``int`` passed for an ``int``
  parameter is 8 bytes in CuPy and shifts every later argument, so it is refused here.
* Device memory: ``CUPY_EMULATOR_MEMORY`` bytes per device (default 8 GiB, 90 % of it free);
  ``CUPY_EMULATOR_DEVICES`` devices (default 1).
* CUDA contexts per process and compute modes (:mod:`cupy._emulator`): which devices this process
  touched (``Device.use()``, ``with Device(d)`` and its exit, allocations, ``mem_info``), and
  ``CUPY_EMULATOR_COMPUTE_MODE=exclusive_process`` refuses a device another process holds.
* ``cupy.linalg.eigh`` of a stack is cuSOLVER's ``syevjBatched``: its workspace is a 32-bit
  element count, so a stack whose workspace would overflow it raises, as a real device fails.
* Counters (:func:`cupy._emulator.counts`): device allocations, device-to-device copies and cuBLAS
  operand copies, so tests assert that a Chebyshev step allocates and copies nothing.

Only what gpukpm calls is emulated; anything else raises ``AttributeError`` or
``NotImplementedError`` naming it, so a new CuPy call in gpukpm shows up here first.
"""
from __future__ import annotations

import numbers
import types

import numpy as _np
from numpy.lib.mixins import NDArrayOperatorsMixin

from . import _emulator

__version__ = "14.2.0+emulated"

IMPLICIT_CONVERSION = ("Implicit conversion to a NumPy array is not allowed. "
                       "Please use `.get()` to construct a NumPy array explicitly.")


def _unwrap(obj, host_ok: bool = False):
    """NumPy arrays under device arrays (recursively in lists, tuples and dicts); a host
    ``numpy.ndarray`` is refused unless ``host_ok`` (the array constructors accept one)."""
    if isinstance(obj, ndarray):
        return obj._a
    if isinstance(obj, _np.ndarray):
        if host_ok:
            return obj
        raise TypeError(f"Unsupported type {type(obj)} (a host array where CuPy wants a device array)")
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap(o, host_ok) for o in obj)
    if isinstance(obj, dict):
        return {k: _unwrap(v, host_ok) for k, v in obj.items()}
    return obj


def _wrap(obj):
    """Device arrays over NumPy results; NumPy scalars become 0-d device arrays, as in CuPy."""
    if isinstance(obj, _np.ndarray):
        return ndarray(obj)
    if isinstance(obj, _np.generic):
        return ndarray(_np.asarray(obj))
    if isinstance(obj, tuple):
        return tuple(_wrap(o) for o in obj)
    if isinstance(obj, list):
        return [_wrap(o) for o in obj]
    return obj


class _Memory:
    """``ndarray.data``: the device pointer."""

    def __init__(self, ptr: int):
        self.ptr = ptr


class ndarray(NDArrayOperatorsMixin):
    """A device array: a NumPy array that never converts to the host implicitly."""

    __array_priority__ = 1000

    def __init__(self, host):
        if not isinstance(host, _np.ndarray):
            raise TypeError(f"emulated cupy.ndarray wraps a numpy.ndarray, got {type(host)}")
        _emulator.allocated(host)  # a context on the current device; counts fresh buffers
        object.__setattr__(self, "_a", host)
        object.__setattr__(self, "_device_id", _emulator.current())

    # -- host interaction ------------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError(IMPLICIT_CONVERSION)

    def get(self, stream=None, order="C", out=None, blocking=True):
        """Copy to the host (a ``numpy.ndarray``)."""
        if out is not None:
            if not isinstance(out, _np.ndarray):
                raise TypeError("Only numpy.ndarray can be obtained from cupy.ndarray")
            if out.dtype != self.dtype or out.shape != self.shape:
                raise ValueError(f"out has dtype {out.dtype} and shape {out.shape}, the array {self.dtype} "
                                 f"and {self.shape}")
            out[...] = self._a
            return out
        return _np.array(self._a, order=order, copy=True)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """NumPy ufuncs on device arrays, as CuPy takes them: ufuncs CuPy has, array or scalar
        operands (no lists), one output array."""
        from ._names import CUPY_NAMES

        if ufunc.__name__ not in CUPY_NAMES or any(isinstance(i, (list, tuple)) for i in inputs):
            return NotImplemented
        out = kwargs.get("out")
        if out is not None:
            if len(out) != 1:
                raise ValueError("The 'out' parameter must have exactly one array value")
            kwargs["out"] = (_unwrap(out[0]),)
        result = getattr(ufunc, method)(*_unwrap(inputs), **kwargs)
        return out[0] if out is not None else _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        """``numpy.f(device array)`` runs when CuPy has ``cupy.f`` (or ``cupy.linalg.f``), as in CuPy."""
        from ._names import CUPY_NAMES, LINALG_NAMES

        known = LINALG_NAMES if func.__module__ == "numpy.linalg" else CUPY_NAMES
        if func.__name__ not in known:
            return NotImplemented
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))

    # -- scalars ---------------------------------------------------------------------------
    def __float__(self):
        return float(self._a)

    def __complex__(self):
        return complex(self._a)

    def __int__(self):
        return int(self._a)

    def __bool__(self):
        return bool(self._a)

    # -- container ---------------------------------------------------------------------------
    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(row) for row in self._a)

    def __getitem__(self, key):
        """As CuPy: a basic index that selects one element gives a 0-d *view*, writable in place."""
        key = _unwrap(key, host_ok=True)
        result = self._a[key]
        if isinstance(result, _np.generic):
            result = self._a[(key if isinstance(key, tuple) else (key,)) + (Ellipsis,)]
        return _wrap(result)

    def __setitem__(self, key, value):
        """As CuPy: a host array (not 0-d) or a list as the value only under an index array."""
        if isinstance(value, list) or (isinstance(value, _np.ndarray) and value.ndim > 0):
            keys = key if isinstance(key, tuple) else (key,)
            if not any(isinstance(k, (ndarray, _np.ndarray, list)) for k in keys):
                raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
        if isinstance(value, ndarray) and value.size > 1:
            _emulator.copied(value.nbytes)  # a device-to-device copy kernel
        self._a[_unwrap(key, host_ok=True)] = _unwrap(value, host_ok=True)

    def __repr__(self):
        return f"emulated-cupy {self._a!r}"

    # -- attributes CuPy has and NumPy spells differently ----------------------------------------
    @property
    def data(self):
        return _Memory(self._a.ctypes.data)

    @property
    def _c_contiguous(self):
        return self._a.flags.c_contiguous

    @property
    def _f_contiguous(self):
        return self._a.flags.f_contiguous

    @property
    def device(self):
        from .cuda import Device

        return Device(self._device_id)

    def __getattr__(self, name):
        """The attributes ``cupy.ndarray`` has (no ``__array_interface__`` & co.: they convert silently)."""
        from ._names import NDARRAY_NAMES

        if name not in NDARRAY_NAMES:
            raise AttributeError(f"'cupy.ndarray' (emulated CuPy 14.2) object has no attribute {name!r}")
        attribute = getattr(self._a, name)
        if callable(attribute):
            return lambda *args, **kwargs: _wrap(attribute(*_unwrap(args), **_unwrap(kwargs)))
        return _wrap(attribute)

    def __setattr__(self, name, value):
        setattr(self._a, name, _unwrap(value))


# -- module functions ----------------------------------------------------------------------------
def asarray(a, dtype=None, order=None, blocking=False):
    """A device array; copies host data to the device, returns device arrays unchanged."""
    if isinstance(a, ndarray) and (dtype is None or _np.dtype(dtype) == a.dtype) and order in (None, "K", "A"):
        return a
    if isinstance(a, ndarray):
        return ndarray(_np.asarray(a._a, dtype=dtype, order=order))
    return ndarray(_np.array(_unwrap(a, host_ok=True), dtype=dtype, order=order or "K", copy=True))


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, blocking=False):
    return ndarray(_np.array(_unwrap(obj, host_ok=True), dtype=dtype, copy=True, order=order, ndmin=ndmin))


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    if isinstance(a, ndarray):
        return a.get(order=order, out=out)
    return _np.asarray(a, order=order)


def get_array_module(*args):
    import sys

    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else _np


class _MemoryPool:
    def free_bytes(self) -> int:
        return 0

    def used_bytes(self) -> int:
        return 0

    def total_bytes(self) -> int:
        return 0

    def free_all_blocks(self) -> None:
        pass


_POOL = _MemoryPool()


def get_default_memory_pool():
    return _POOL


def get_default_pinned_memory_pool():
    return _POOL


def _device_function(func):
    def call(*args, **kwargs):
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))

    call.__name__ = getattr(func, "__name__", "function")
    call.__doc__ = f"Emulated cupy.{call.__name__} (numpy.{call.__name__} on device arrays)."
    return call


def __getattr__(name):
    """Everything else NumPy has, with CuPy's rule: device arrays in, device arrays out."""
    from ._names import CUPY_NAMES

    if name not in CUPY_NAMES:
        raise AttributeError(f"module 'cupy' (emulated CuPy 14.2) has no attribute {name!r}")
    attribute = getattr(_np, name)
    if isinstance(attribute, types.ModuleType):
        raise AttributeError(f"module 'cupy' (emulated) has no attribute {name!r}")
    if isinstance(attribute, type) or isinstance(attribute, (numbers.Number, _np.dtype)) or attribute is None:
        return attribute  # dtypes, scalar types, constants, newaxis
    if callable(attribute):
        return _device_function(attribute)
    return attribute


from . import cuda, cublas, linalg  # noqa: E402,F401  (submodules need ndarray)
from ._raw_kernel import RawKernel  # noqa: E402,F401

float32, float64, complex64, complex128 = _np.float32, _np.float64, _np.complex64, _np.complex128
