"""Emulated ``cupy.cublas.gemm``: CuPy's argument rules, and a count of the operand copies it makes.

CuPy hands cuBLAS a C- or F-contiguous operand for op = 'N'/'T' as it is (a C-ordered array is
the transpose of an F-ordered one), but an operand of op = 'H' must be F-contiguous, and any
other layout is first copied to Fortran order.  Every such copy adds one to
:data:`operand_copies`, so tests can assert that gpukpm's GEMMs run on its blocks in place.
"""
from __future__ import annotations

import numpy as _np

from . import ndarray

operand_copies = 0

_OPS = {"N": 0, "T": 1, "H": 2}


def _passes_in_place(a, op: int) -> bool:
    """CuPy's ``_decide_ld_and_trans``: can ``a`` go to cuBLAS without a copy?"""
    flags = a._a.flags
    return flags.f_contiguous or (op in (0, 1) and flags.c_contiguous)


def _op(a, op: int):
    return a if op == 0 else (a.T if op == 1 else a.T.conj())


def gemm(transa, transb, a, b, out=None, alpha=1.0, beta=0.0):
    """``out = alpha·op(a) @ op(b) + beta·out`` (op: 'N', 'T' or 'H'), a new F-ordered array when
    ``out`` is None."""
    global operand_copies
    if not (isinstance(a, ndarray) and isinstance(b, ndarray)):
        raise TypeError(f"cublas.gemm needs device arrays, got {type(a)} and {type(b)}")
    assert a.ndim == b.ndim == 2
    assert a.dtype == b.dtype
    if a.dtype.char not in "fdFD":
        raise TypeError("invalid dtype")
    if transa not in _OPS or transb not in _OPS:
        raise ValueError(f"invalid trans (actual: {transa!r}, {transb!r})")
    ta, tb = _OPS[transa], _OPS[transb]
    m, k = a.shape if ta == 0 else a.shape[::-1]
    n = b.shape[1] if tb == 0 else b.shape[0]
    assert (b.shape[0] if tb == 0 else b.shape[1]) == k
    if out is None:
        out = ndarray(_np.empty((m, n), dtype=a.dtype, order="F"))
        beta = 0.0
    else:
        assert out.ndim == 2 and out.shape == (m, n) and out.dtype == a.dtype
    # CuPy's fast path (no op 'H', both operands contiguous, out F- or C-ordered) copies nothing;
    # otherwise every operand that is not F-ordered is copied to F order, and so is out
    fast = (2 not in (ta, tb) and _passes_in_place(a, ta) and _passes_in_place(b, tb)
            and (out._a.flags.f_contiguous or out._a.flags.c_contiguous))
    if not fast:
        operand_copies += (not _passes_in_place(a, ta)) + (not _passes_in_place(b, tb)) \
            + (not out._a.flags.f_contiguous)
    product = _op(a._a, ta) @ _op(b._a, tb)
    out._a[...] = alpha * product + (beta * out._a if beta != 0 else 0)
    return out


def dotc(x, y, out=None):
    """``x.conj() @ y`` for 1-D device arrays (cuBLAS ``cdotc``/``zdotc``; ``dot`` for real ones).

    CuPy passes ``x.data.ptr`` with increment 1 and checks no layout, so a strided vector would be
    read wrongly on a device: refused here.  With ``out`` (a device array of the result's dtype,
    0-d) the result is written there on the device, nothing allocated; other ``out`` dtypes get a
    temporary and a copy, as in CuPy.
    """
    for name, v in (("x", x), ("y", y)):
        if not isinstance(v, ndarray):
            raise TypeError(f"cublas.dotc: {name} must be a device array, got {type(v)}")
    if x.dtype.char not in "fdFD":
        raise TypeError("invalid dtype")
    if x.ndim != 1 or y.ndim != 1:
        raise ValueError(f"x and y must be 1D arrays (actual: {x.ndim} and {y.ndim})")
    if x.size != y.size:
        raise ValueError(f"x and y must be the same size (actual: {x.size} and {y.size})")
    if x.dtype != y.dtype:
        raise TypeError(f"x and y must be the same dtype (actual: {x.dtype} and {y.dtype})")
    if not (x._a.flags.c_contiguous and y._a.flags.c_contiguous):
        raise ValueError("emulated cublas.dotc: CuPy passes increment 1, the vectors must be contiguous")
    value = _np.vdot(x._a, y._a)
    if out is None or out.dtype != x.dtype:
        result = ndarray(_np.asarray(value, dtype=x.dtype))
        if out is None:
            return result
        out._a[...] = result._a
        return out
    out._a[...] = value
    return out
