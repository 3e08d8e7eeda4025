"""Emulated ``cupyx.scipy.sparse.csr_matrix``: a SciPy CSR matrix held "on the device".

``csr_matrix(scipy_matrix)`` copies it to the device; ``A @ X`` takes a device array only and
returns an F-ordered result, as cuSPARSE's csrmm does; ``.get()`` copies back.
"""
from __future__ import annotations

import numpy as _np
import scipy.sparse as _sp

import cupy

__all__ = ["csr_matrix", "issparse", "isspmatrix", "isspmatrix_csr"]


class csr_matrix:
    """Compressed sparse row matrix on the emulated device."""

    format = "csr"
    ndim = 2
    __array_ufunc__ = None  # NumPy defers to __rmatmul__ & co.

    def __init__(self, arg1, shape=None, dtype=None, copy=False):
        if isinstance(arg1, csr_matrix):
            m = arg1._m.copy() if copy else arg1._m
        elif _sp.issparse(arg1):
            m = _sp.csr_matrix(arg1, copy=True)
        elif isinstance(arg1, tuple) and len(arg1) == 3:
            data, indices, indptr = (a._a if isinstance(a, cupy.ndarray) else a for a in arg1)
            for a in arg1:
                if isinstance(a, _np.ndarray):
                    raise TypeError("emulated csr_matrix((data, indices, indptr)) needs device arrays")
            m = _sp.csr_matrix((data, indices, indptr), shape=shape, copy=copy)
        else:
            raise NotImplementedError(f"emulated csr_matrix from {type(arg1)}")
        if dtype is not None:
            m = m.astype(dtype)
        if m.dtype.char not in "?fdFD":
            raise ValueError("Only bool, float32, float64, complex64 and complex128 are supported")
        self._m = m
        from cupy import _emulator

        for part in (m.data, m.indices, m.indptr):  # CuPy holds these as device arrays from here on
            _emulator.allocated(part)

    shape = property(lambda self: self._m.shape)
    dtype = property(lambda self: self._m.dtype)
    nnz = property(lambda self: self._m.nnz)
    has_canonical_format = property(lambda self: bool(self._m.has_canonical_format))
    data = property(lambda self: cupy.ndarray(self._m.data))
    indices = property(lambda self: cupy.ndarray(self._m.indices))
    indptr = property(lambda self: cupy.ndarray(self._m.indptr))

    def get(self, stream=None):
        return self._m.copy()

    def sum_duplicates(self):
        self._m.sum_duplicates()

    def sort_indices(self):
        self._m.sort_indices()

    def astype(self, dtype):
        return csr_matrix(self._m.astype(dtype))

    def conj(self, copy=True):
        return csr_matrix(self._m.conj())

    conjugate = conj

    def copy(self):
        return csr_matrix(self._m.copy())

    def toarray(self, order=None):
        return cupy.ndarray(self._m.toarray(order=order))

    def diagonal(self, k=0):
        return cupy.ndarray(self._m.diagonal(k))

    def __matmul__(self, other):
        if isinstance(other, csr_matrix):
            return csr_matrix(self._m @ other._m)
        if isinstance(other, cupy.ndarray):
            if other.ndim == 1:
                return cupy.ndarray(self._m @ other._a)
            return cupy.ndarray(_np.asfortranarray(self._m @ other._a))
        return NotImplemented  # host arrays: TypeError, as in CuPy

    dot = __matmul__

    def _not_emulated(self, *args, **kwargs):
        raise NotImplementedError("emulated csr_matrix: transposes (csc_matrix in CuPy) are not emulated")

    T = property(_not_emulated)
    transpose = _not_emulated

    def __repr__(self):
        return f"emulated-cupyx {self._m!r}"


def issparse(x) -> bool:
    return isinstance(x, csr_matrix)


isspmatrix = isspmatrix_csr = issparse
