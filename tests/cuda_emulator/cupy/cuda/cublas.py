"""Emulated low-level ``cupy.cuda.cublas`` (``cupy_backends.cuda.libs.cublas``): ``?gemm`` on raw
device pointers with leading dimensions, as cuBLAS takes them.

Matrices are column-major; an operand ``rows × cols`` with leading dimension ``ld`` is read from its
pointer with strides ``(1, ld)`` elements.  cuBLAS's argument checks are applied (``ld ≥ rows``), and
every operand must lie inside one live device buffer of the emulator, so a wrong pointer or leading
dimension fails here instead of reading another array's memory.  Scalars are read from host
pointers (``CUBLAS_POINTER_MODE_HOST``, the only mode emulated).
"""
from __future__ import annotations

import ctypes

import numpy as _np

from .. import _emulator

CUBLAS_OP_N, CUBLAS_OP_T, CUBLAS_OP_C = 0, 1, 2
CUBLAS_POINTER_MODE_HOST, CUBLAS_POINTER_MODE_DEVICE = 0, 1
_modes: dict[int, int] = {}


class CUBLASError(RuntimeError):
    pass


def getPointerMode(handle: int) -> int:
    return _modes.get(handle, CUBLAS_POINTER_MODE_HOST)


def setPointerMode(handle: int, mode: int) -> None:
    _modes[handle] = int(mode)


def _device_matrix(ptr: int, rows: int, cols: int, ld: int, dtype, name: str):
    dtype = _np.dtype(dtype)
    if ld < max(1, rows):
        raise CUBLASError(f"CUBLAS_STATUS_INVALID_VALUE: ld{name} = {ld} < {rows} rows")
    nbytes = ((cols - 1) * ld + rows) * dtype.itemsize
    _emulator.check_device_range(int(ptr), nbytes, f"gemm operand {name}")
    flat = _np.frombuffer((ctypes.c_char * nbytes).from_address(int(ptr)), dtype=dtype)
    return _np.lib.stride_tricks.as_strided(flat, shape=(rows, cols), strides=(dtype.itemsize, ld * dtype.itemsize))


def _scalar(ptr: int, dtype, handle: int):
    if getPointerMode(handle) != CUBLAS_POINTER_MODE_HOST:
        raise NotImplementedError("emulated cuBLAS: only CUBLAS_POINTER_MODE_HOST scalars")
    return _np.frombuffer((ctypes.c_char * _np.dtype(dtype).itemsize).from_address(int(ptr)), dtype=dtype)[0]


def _gemm(dtype):
    def gemm(handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
        """``C = alpha·op(A)·op(B) + beta·C`` (column-major; op: N, T or C)."""
        a = _device_matrix(A, m if transa == CUBLAS_OP_N else k, k if transa == CUBLAS_OP_N else m, lda, dtype, "a")
        b = _device_matrix(B, k if transb == CUBLAS_OP_N else n, n if transb == CUBLAS_OP_N else k, ldb, dtype, "b")
        c = _device_matrix(C, m, n, ldc, dtype, "c")
        ops = {CUBLAS_OP_N: lambda x: x, CUBLAS_OP_T: lambda x: x.T, CUBLAS_OP_C: lambda x: x.conj().T}
        product = ops[transa](a) @ ops[transb](b)
        al, be = _scalar(alpha, dtype, handle), _scalar(beta, dtype, handle)
        c[...] = al * product + (be * c if be != 0 else 0)

    gemm.__name__ = {"f": "sgemm", "d": "dgemm", "F": "cgemm", "D": "zgemm"}[_np.dtype(dtype).char]
    return gemm


sgemm, dgemm, cgemm, zgemm = (_gemm(t) for t in (_np.float32, _np.float64, _np.complex64, _np.complex128))
