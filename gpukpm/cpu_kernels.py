r"""Fused, multithreaded CPU kernel for the Chebyshev step (Numba).

SciPy's CSR product is single-threaded and writes a temporary; the step
``y ← 2H̃x − y`` then needs a second pass.  The kernel below does the whole
step in one pass over the matrix, rows split over threads (``prange``):

    y[r, i] ← Σ_k data[k] · x[r, indices[k]] − y[r, i],   k ∈ [indptr[i], indptr[i+1])

for every stacked vector r of x, y shaped (R, D).  Each matrix row is read
once for all R vectors.  The same kernel writes into a third array
(``chebyshev_step_into``: T_{n+1} straight into its block slot).
``apply_rows`` is the product without the subtraction (operators A† applied
to blocks of Chebyshev vectors; parallel over vectors for wide blocks).  ``available()`` is False when Numba is missing, and
:mod:`gpukpm.backend` then falls back to SciPy; ``GPUKPM_NUMBA=0`` disables
the kernel.
"""
from __future__ import annotations

import functools
import os

__all__ = ["available", "chebyshev_step", "chebyshev_step_into", "apply_rows"]


@functools.lru_cache(maxsize=1)
def _kernel():
    if os.environ.get("GPUKPM_NUMBA", "1") == "0":
        return None
    try:
        import numba
    except ImportError:
        return None

    @numba.njit(parallel=True, cache=True, nogil=True)
    def rows(indptr, indices, data, x, out):  # pragma: no cover - compiled
        R, D = x.shape
        if R >= 8:  # many vectors: one vector per thread, contiguous gathers
            for r in numba.prange(R):
                for i in range(out.shape[1]):
                    acc = 0.0 * data[0]
                    for k in range(indptr[i], indptr[i + 1]):
                        acc += data[k] * x[r, indices[k]]
                    out[r, i] = acc
        else:
            for i in numba.prange(out.shape[1]):
                lo, hi = indptr[i], indptr[i + 1]
                for r in range(R):
                    acc = 0.0 * data[0]
                    for k in range(lo, hi):
                        acc += data[k] * x[r, indices[k]]
                    out[r, i] = acc

    @numba.njit(parallel=True, cache=True, nogil=True)
    def step_into(indptr, indices, data, x, y, out):  # pragma: no cover - compiled
        R, D = x.shape
        for i in numba.prange(D):
            lo, hi = indptr[i], indptr[i + 1]
            for r in range(R):
                acc = 0.0 * data[0]
                for k in range(lo, hi):
                    acc += data[k] * x[r, indices[k]]
                out[r, i] = acc - y[r, i]

    return rows, step_into


def available() -> bool:
    """True when the Numba kernel can be used."""
    return _kernel() is not None


def chebyshev_step(H2, x, y) -> None:
    """In place ``y ← H2·x − y`` for C-contiguous (R, D) x, y and a SciPy CSR H2.

    Safe with out = y: element (r, i) of y is read only by the iteration that writes it.
    """
    _kernel()[1](H2.indptr, H2.indices, H2.data, x, y, y)


def chebyshev_step_into(H2, x, y, out) -> None:
    """``out ← H2·x − y`` (three distinct C-contiguous (R, D) arrays)."""
    _kernel()[1](H2.indptr, H2.indices, H2.data, x, y, out)


def apply_rows(M, x, out) -> None:
    """``out[r] ← M·x[r]`` for C-contiguous (R, D) x, out: the product in row layout, no transposes."""
    _kernel()[0](M.indptr, M.indices, M.data, x, out)
