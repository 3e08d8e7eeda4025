"""Emulated ``cupy.linalg``: NumPy's linear algebra on device arrays (host arrays refused).

``eigh`` of a stack ``(..., n, n)`` is cuSOLVER's batched Jacobi solver in CuPy
(``cupyx.cusolver._syevj_batched``): CuPy copies the stack, and the workspace ``syevjBatched_bufferSize``
reports is an ``int`` element count for the whole batch.  The emulator allocates the same buffers
(they show in the allocation counter) and raises, as cuSOLVER fails, when the workspace of the
batch would not fit in 32 bits: :data:`SYEVJ_WORK_PER_MATRIX` elements per matrix (n ≤ 32) is the
model (≈ 16.8 kB per 4 × 4 complex128 matrix, so about 2·10⁶ matrices at most).
"""
from __future__ import annotations

import numpy as _np

from . import _device_function, _unwrap, _wrap, ndarray

SYEVJ_WORK_PER_MATRIX = 1050
INT32_MAX = 2**31 - 1


def syevj_batched_work_elements(batch: int, n: int) -> int:
    """Elements of the emulated ``syevjBatched`` workspace for ``batch`` matrices of ``n × n``."""
    return int(batch) * SYEVJ_WORK_PER_MATRIX * max(1, -(-int(n) // 4)) ** 2


def eigh(a, UPLO="L"):
    if not isinstance(a, ndarray):
        raise TypeError(f"Unsupported type {type(a)} (a host array where CuPy wants a device array)")
    if a.ndim > 2 and a.size:
        n = a.shape[-1]
        batch = int(_np.prod(a.shape[:-2]))
        work = syevj_batched_work_elements(batch, n)
        if work > INT32_MAX:
            from cupy.cuda.runtime import CUDARuntimeError

            raise CUDARuntimeError(f"CUSOLVER_STATUS_INVALID_VALUE: syevjBatched workspace of {batch} matrices "
                                   f"{n}×{n} is {work} elements, more than a 32-bit int holds")
        from . import _emulator

        _emulator.touch()
        _emulator._counts["allocations"] += 2  # CuPy's copy of the stack and the workspace (not materialised)
        _emulator._counts["allocated_bytes"] += a.nbytes + work * a.dtype.itemsize
    return _wrap(_np.linalg.eigh(_unwrap(a), UPLO=UPLO))


def __getattr__(name):
    from ._names import LINALG_NAMES

    if name not in LINALG_NAMES:
        raise AttributeError(f"module 'cupy.linalg' (emulated CuPy 14.2) has no attribute {name!r}")
    attribute = getattr(_np.linalg, name)
    if name.startswith("__") or not callable(attribute):
        return attribute
    if isinstance(attribute, type):
        return attribute
    return _device_function(attribute)
