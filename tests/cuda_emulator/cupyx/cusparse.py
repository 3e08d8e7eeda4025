"""Emulated ``cupyx.cusparse.spmm`` with CuPy's checks.

CuPy requires F-contiguous dense operands and a canonical CSR matrix, and casts all three to
a common dtype — which *replaces* ``c`` by a new array when its dtype differs, so an in-place
update through ``c`` is lost.  The emulation does exactly that.
"""
from __future__ import annotations

import functools

import numpy as _np

import cupy
from cupyx.scipy.sparse import csr_matrix


def check_availability(name: str) -> bool:
    return True


def _cast_common_type(*xs):
    dtype = functools.reduce(_np.promote_types, [x.dtype for x in xs if x is not None])
    return [x.astype(dtype) if x is not None and x.dtype != dtype else x for x in xs]


def spmm(a, b, c=None, alpha=1, beta=0, transa=False, transb=False):
    """``c = alpha·op(a)·op(b) + beta·c`` for a CSR ``a`` and F-contiguous device arrays ``b``, ``c``."""
    if not isinstance(a, csr_matrix):
        raise TypeError(f"unsupported type (actual: {type(a)})")
    for name, x in (("b", b), ("c", c)):
        if x is not None and not isinstance(x, cupy.ndarray):
            raise TypeError(f"spmm: {name} must be a device array, got {type(x)}")
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError("expected 2-D matrices")
    if not b.flags.f_contiguous:
        raise ValueError("expected F-contiguous array for b")
    if c is not None and not c.flags.f_contiguous:
        raise ValueError("expected F-contiguous array for c")
    a_shape = a.shape[::-1] if transa else a.shape
    b_shape = b.shape[::-1] if transb else b.shape
    if a_shape[1] != b_shape[0]:
        raise ValueError("dimension mismatch")
    if not a.has_canonical_format:
        raise ValueError("expected canonical format for a")
    m, n = a_shape[0], b_shape[1]
    a, b, c = _cast_common_type(a, b, c)
    if c is None:
        c = cupy.ndarray(_np.zeros((m, n), a.dtype, order="F"))
    elif c.shape != (m, n):
        raise ValueError("dimension mismatch")
    if a.nnz == 0:
        c.fill(0)
        return c
    A = a._m.T if transa else a._m
    B = b._a.T if transb else b._a
    c._a[...] = alpha * (A @ B) + (beta * c._a if beta != 0 else 0)
    return c
