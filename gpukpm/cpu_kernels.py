r"""Fused, multithreaded CPU kernel for the Chebyshev step (Numba).

SciPy's CSR product is single-threaded and writes a temporary; the step
``y ← 2H̃x − y`` then needs a second pass.  The kernel below does the whole
step in one pass over the matrix, rows split over threads (``prange``):

    y[r, i] ← Σ_k data[k] · x[r, indices[k]] − y[r, i],   k ∈ [indptr[i], indptr[i+1])

for every stacked vector r of x, y shaped (R, D).  Each matrix row is read
once for all R vectors.  ``apply_rows`` is the same product without the
subtraction (operators A† applied to blocks of Chebyshev vectors).  ``available()`` is False when Numba is missing, and
:mod:`gpukpm.backend` then falls back to SciPy; ``GPUKPM_NUMBA=0`` disables
the kernel.
"""
from __future__ import annotations

import functools
import os

__all__ = ["available", "chebyshev_step", "apply_rows"]


@functools.lru_cache(maxsize=1)
def _kernel():
    if os.environ.get("GPUKPM_NUMBA", "1") == "0":
        return None
    try:
        import numba
    except ImportError:
        return None

    @numba.njit(parallel=True, cache=True, nogil=True)
    def step(indptr, indices, data, x, y):  # pragma: no cover - compiled
        R, D = x.shape
        for i in numba.prange(D):
            lo, hi = indptr[i], indptr[i + 1]
            for r in range(R):
                acc = 0.0 * data[0]
                for k in range(lo, hi):
                    acc += data[k] * x[r, indices[k]]
                y[r, i] = acc - y[r, i]

    @numba.njit(parallel=True, cache=True, nogil=True)
    def rows(indptr, indices, data, x, out):  # pragma: no cover - compiled
        R, D = x.shape
        for i in numba.prange(out.shape[1]):
            lo, hi = indptr[i], indptr[i + 1]
            for r in range(R):
                acc = 0.0 * data[0]
                for k in range(lo, hi):
                    acc += data[k] * x[r, indices[k]]
                out[r, i] = acc

    return step, rows


def available() -> bool:
    """True when the Numba kernel can be used."""
    return _kernel() is not None


def chebyshev_step(H2, x, y) -> None:
    """In place ``y ← H2·x − y`` for C-contiguous (R, D) x, y and a SciPy CSR H2."""
    _kernel()[0](H2.indptr, H2.indices, H2.data, x, y)


def apply_rows(M, x, out) -> None:
    """``out[r] ← M·x[r]`` for C-contiguous (R, D) x, out: the product in row layout, no transposes."""
    _kernel()[1](M.indptr, M.indices, M.data, x, out)
