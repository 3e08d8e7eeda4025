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
:mod:`gpukpm.engine.backend` then falls back to SciPy; ``GPUKPM_NUMBA=0`` disables
the kernel.  ``stencil_step_into`` / ``stencil_apply`` are the same step and
product for a :class:`~gpukpm.models.stencil.CellStencil` (cells split over
threads; no matrix is streamed, only the vectors and the diagonal).  Away
from the supercell's edges a kernel generated for the stencil's pattern does
the work with every entry unrolled and its index shift a literal (2× the
generic loop, measured); it is written once to :func:`kernel_directory` and
cached there by Numba, so later processes load it instead of compiling.
"""
from __future__ import annotations

import functools
import os
import sys

import numpy as np

from gpukpm.atomic import atomic_text
from gpukpm import envflags

__all__ = ["available", "chebyshev_step", "chebyshev_step_into", "apply_rows", "stencil_step_into",
           "stencil_apply", "limit_threads"]


def limit_threads(count: int) -> None:
    """Run the Numba kernels on at most ``count`` threads (MPI ranks sharing a node's cores)."""
    if _kernel() is None:
        return
    import numba

    numba.set_num_threads(max(1, min(int(count), numba.config.NUMBA_NUM_THREADS)))


@functools.lru_cache(maxsize=1)
def _kernel():
    if not envflags.get("GPUKPM_NUMBA"):
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

    @numba.njit(parallel=True, cache=True, nogil=True)
    def stencil(L2, O, rows_tab, cols_tab, reach, row_start, entry_offset, entry_orbital, entry_shift,
                entry_value, diagonal, has_diagonal, x, y, out, subtract, edges_only):  # pragma: no cover
        R = x.shape[0]
        L1 = rows_tab.shape[1]
        for i1 in numba.prange(L1):
            inner_row = reach[0] <= i1 < L1 - reach[0]
            for i2 in range(L2):
                c = i1 * L2 + i2
                base = c * O
                inner = inner_row and reach[1] <= i2 < L2 - reach[1]
                if inner and edges_only:
                    continue
                for r in range(R):
                    for o in range(O):
                        acc = 0.0 * entry_value[0]
                        if inner:  # no wrap-around: the neighbour is a fixed shift away
                            for e in range(row_start[o], row_start[o + 1]):
                                acc += entry_value[e] * x[r, base + entry_shift[e]]
                        else:
                            for e in range(row_start[o], row_start[o + 1]):
                                k = entry_offset[e]
                                acc += entry_value[e] * x[r, (rows_tab[k, i1] + cols_tab[k, i2]) * O + entry_orbital[e]]
                        i = base + o
                        if has_diagonal:
                            acc += diagonal[i] * x[r, i]
                        if subtract:
                            acc -= y[r, i]
                        out[r, i] = acc

    return rows, step_into, stencil


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


def _stencil_call(S, x, y, out, subtract: bool) -> None:
    """Interior cells by the kernel generated for S's pattern, edge cells (wrap-around) by the generic one."""
    rows_tab, cols_tab, reach, shift, diagonal, interior = _plan(S)
    if interior is not None:
        interior(S.cells[0], S.cells[1], S.entry_value, diagonal, S.diagonal is not None, x, y, out, subtract)
    _kernel()[2](S.cells[1], S.orbitals, rows_tab, cols_tab, reach, S.row_start, S.entry_offset, S.entry_orbital,
                 shift, S.entry_value, diagonal, S.diagonal is not None, x, y, out, subtract, interior is not None)


_INTERIOR_TEMPLATE = '''"""Generated by gpukpm.engine.cpu_kernels for one stencil pattern (do not edit)."""
import numba


@numba.njit(parallel=True, cache=True, nogil=True)
def interior(L1, L2, v, diagonal, has_diagonal, x, y, out, subtract):
    L2O = L2 * {O}
    for i1 in numba.prange({r1}, L1 - {r1}):
        for r in range(x.shape[0]):
            xr, yr, outr = x[r], y[r], out[r]
            for i2 in range({r2}, L2 - {r2}):
                base = (i1 * L2 + i2) * {O}
{body}
'''


def _interior_source(S) -> str:
    """Source of the interior kernel of S: every entry unrolled, its index shift a literal
    ``n1·L2O + n2·O + p`` (away from the edges no cell offset wraps), values read from ``v``."""
    O = S.orbitals
    rows = []
    for o in range(O):
        terms = [f"v[{e}] * xr[base + {int(S.offsets[S.entry_offset[e], 0])} * L2O + "
                 f"{int(S.offsets[S.entry_offset[e], 1] * O + S.entry_orbital[e])}]"
                 for e in range(S.row_start[o], S.row_start[o + 1])]
        rows.append(f"                acc = {' + '.join(terms) if terms else '0.0 * v[0]'}\n"
                    f"                if has_diagonal:\n                    acc += diagonal[base + {o}] * xr[base + {o}]\n"
                    f"                if subtract:\n                    acc -= yr[base + {o}]\n"
                    f"                outr[base + {o}] = acc")
    r1, r2 = (int(r) for r in np.abs(S.offsets).max(axis=0))
    return _INTERIOR_TEMPLATE.format(O=O, r1=r1, r2=r2, body="\n".join(rows))


def kernel_directory() -> str:
    """Where generated kernels (and Numba's cache of them) live: ``GPUKPM_KERNEL_DIR``, else
    ``~/.cache/gpukpm/kernels``, else the temporary directory."""
    import tempfile

    for candidate in (envflags.get("GPUKPM_KERNEL_DIR"), os.path.join(os.path.expanduser("~"), ".cache", "gpukpm",
                                                                          "kernels"),
                      os.path.join(tempfile.gettempdir(), "gpukpm-kernels")):
        if not candidate:
            continue
        try:
            os.makedirs(candidate, exist_ok=True)
        except OSError:
            continue
        if os.access(candidate, os.W_OK):
            return candidate
    raise OSError("no writable directory for generated kernels (set GPUKPM_KERNEL_DIR)")


@functools.lru_cache(maxsize=None)
def _compiled_interior(source: str):
    import hashlib
    import importlib.util

    name = "gpukpm_stencil_" + hashlib.sha1(source.encode()).hexdigest()[:20]
    path = os.path.join(kernel_directory(), name + ".py")
    if not os.path.exists(path):  # atomic: a concurrent process sees the whole file or none
        atomic_text(path, source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # Numba's cache re-imports the module by name
    spec.loader.exec_module(module)
    return module.interior


def _plan(S):
    """Everything a stencil call needs besides the vectors, computed once per stencil:
    wrap-around tables, the reach (max |n1|, max |n2|) of the offsets, per entry the index shift
    ``(n1 L2 + n2)·O + p`` from the start of the cell, the diagonal (a 1-element placeholder when
    there is none) and the compiled interior kernel (None when the lattice has no interior cells)."""
    plan = getattr(S, "_plan_cache", None)
    if plan is None:
        rows_tab, cols_tab = S.neighbour_tables()
        reach = np.abs(S.offsets).max(axis=0).astype(np.int64)
        delta = S.offsets[S.entry_offset]
        shift = ((delta[:, 0] * S.cells[1] + delta[:, 1]) * S.orbitals + S.entry_orbital).astype(np.int64)
        diagonal = S.diagonal if S.diagonal is not None else np.zeros(1, dtype=S.entry_value.real.dtype)
        has_interior = S.cells[0] > 2 * reach[0] and S.cells[1] > 2 * reach[1] and len(S.entry_value) > 0
        interior = _compiled_interior(_interior_source(S)) if has_interior else None
        plan = (rows_tab, cols_tab, reach, shift, diagonal, interior)
        object.__setattr__(S, "_plan_cache", plan)
    return plan


def stencil_step_into(S, x, y, out) -> None:
    """``out ← S·x − y`` for a :class:`~gpukpm.models.stencil.CellStencil` S (out may be y, never x)."""
    _stencil_call(S, x, y, out, True)


def stencil_apply(S, x, out) -> None:
    """``out[r] ← S·x[r]`` (out distinct from x)."""
    _stencil_call(S, x, x, out, False)


def apply_rows(M, x, out) -> None:
    """``out[r] ← M·x[r]`` for C-contiguous (R, D) x, out: the product in row layout, no transposes."""
    _kernel()[0](M.indptr, M.indices, M.data, x, out)
