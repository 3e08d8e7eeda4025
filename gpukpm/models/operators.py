"""Sparse spin and current operators built from a model's bonds.

Orbital layout: every site carries ``n`` internal states (``n = 2``: spin
↑, ↓ for all gpukpm models), orbital ``n·site + a``.  Operators are SciPy CSR
matrices with int32 indices whenever the dimension allows.

* Spin ``s_c = 1_sites ⊗ σ_c`` (Pauli matrices, eigenvalues ±1, dimensionless).
* Current (ħ-free, eV·nm) ``ĵ_μ = −i[H, X_μ]``: element ``(i, j)`` is
  ``−i H_ij d_ij,μ`` with ``d_ij = r_j − r_i`` the vector of the bond that
  carries the hopping ``H_ij``.  It is assembled term by term from the same
  :class:`Hopping` list as H, so when a small periodic lattice makes two bonds
  join the same pair of sites each keeps its own vector (the sum
  ``Σ_b −i t_b d_b`` is what the Bloch form ``−∂H/∂k`` gives on the matching
  k grid); on-site terms carry ``d = 0`` and give nothing.  Absolute positions
  are never used.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse

from gpukpm.models.lattice import index_dtype

__all__ = [
    "PAULI",
    "SPIN_NAMES",
    "CURRENT_NAMES",
    "OPERATOR_NAMES",
    "check_dtype",
    "Hopping",
    "OnSite",
    "assemble",
    "spin_operator",
    "current_operator",
    "as_operator",
]

PAULI = {
    "0": np.eye(2, dtype=complex),
    "x": np.array([[0, 1], [1, 0]], dtype=complex),
    "y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "z": np.array([[1, 0], [0, -1]], dtype=complex),
}
SPIN_NAMES = ("sx", "sy", "sz")
CURRENT_NAMES = ("jx", "jy")
OPERATOR_NAMES = SPIN_NAMES + CURRENT_NAMES
_DIRECTIONS = {"x": 0, "y": 1}
_DTYPES = (np.dtype(np.complex64), np.dtype(np.complex128))


def check_dtype(dtype) -> np.dtype:
    """Accept complex64 or complex128 (the models are complex Hermitian)."""
    try:
        out = np.dtype(dtype)
    except TypeError:
        out = None
    if out not in _DTYPES:
        raise ValueError(f"dtype must be complex64 or complex128, got {dtype!r}")
    return out


@dataclass(frozen=True, eq=False)
class Hopping:
    """Hoppings ``H[n i + a, n j + b] = matrix[a, b]`` for every site pair
    ``(i, j) = (rows[p], cols[p])``, all along the bond vector ``d = r_j − r_i``
    (nm).  The Hermitian conjugate ``H[n j + b, n i + a] = conj(matrix[a, b])``
    (vector ``−d``) is implied."""

    rows: np.ndarray
    cols: np.ndarray
    matrix: np.ndarray
    vector: np.ndarray


@dataclass(frozen=True, eq=False)
class OnSite:
    """On-site blocks ``H[n i + a, n i + b] = matrix[a, b] + δ_ab energies[p]``
    for the sites ``i = sites[p]``; ``energies`` (eV) may be ``None``."""

    sites: np.ndarray
    matrix: np.ndarray
    energies: np.ndarray | None = None


def _entries(onsite, hoppings, n, weight):
    """Yield COO pieces ``(site_rows, a, site_cols, b, value)``.

    ``weight(d)`` multiplies a hopping of vector ``d``; the reverse hopping
    gets ``conj(weight(d) t)``, valid for ``weight(−d) = conj(weight(d))``
    (``1`` and ``−i d_μ``).  Constant entries that are exactly zero are
    skipped; per-site energies are always kept.
    """
    for term in onsite:
        for a in range(n):
            for b in range(n):
                value = term.matrix[a, b]
                if a == b and term.energies is not None:
                    yield term.sites, a, term.sites, b, value + term.energies
                elif value != 0:
                    yield term.sites, a, term.sites, b, value
    for hop in hoppings:
        w = 1.0 if weight is None else weight(hop.vector)
        for a in range(n):
            for b in range(n):
                value = w * hop.matrix[a, b]
                if value != 0:
                    yield hop.rows, a, hop.cols, b, value
                    yield hop.cols, b, hop.rows, a, np.conj(value)


def assemble(dim: int, n: int, onsite=(), hoppings=(), weight=None, dtype=np.complex128):
    """CSR matrix ``Σ on-site blocks + Σ_hoppings weight(d) (t + h.c.)`` of size ``dim``.

    All pieces are written into preallocated COO arrays (int32 indices when
    ``dim`` allows) and converted once; duplicate entries are summed.
    """
    dtype = check_dtype(dtype)
    pieces = list(_entries(onsite, hoppings, n, weight))
    nnz = sum(len(p[0]) for p in pieces)
    idx = index_dtype(max(dim, nnz))
    rows = np.empty(nnz, dtype=idx)
    cols = np.empty(nnz, dtype=idx)
    data = np.empty(nnz, dtype=dtype)
    start = 0
    for site_rows, a, site_cols, b, value in pieces:
        stop = start + len(site_rows)
        np.add(site_rows.astype(idx, copy=False) * n, a, out=rows[start:stop])
        np.add(site_cols.astype(idx, copy=False) * n, b, out=cols[start:stop])
        data[start:stop] = value
        start = stop
    matrix = scipy.sparse.coo_matrix((data, (rows, cols)), shape=(dim, dim))
    del rows, cols, data
    return matrix.tocsr()


def spin_operator(component: str, num_sites: int, dtype=np.complex128):
    """``s_c = 1_sites ⊗ σ_c`` for ``component`` in ``"x", "y", "z"`` (dimensionless, CSR)."""
    if component not in ("x", "y", "z"):
        raise ValueError(f"spin component must be 'x', 'y' or 'z', got {component!r}")
    sites = np.arange(num_sites, dtype=index_dtype(2 * num_sites))
    return assemble(2 * num_sites, 2, onsite=[OnSite(sites, PAULI[component])], dtype=dtype)


def current_operator(direction: str, hoppings, dim: int, n: int = 2, dtype=np.complex128):
    """ħ-free current ``ĵ_μ = −i[H, X_μ]`` (eV·nm): entries ``−i t d_μ`` of every hopping.

    ``direction`` is ``"x"`` or ``"y"``; ``hoppings`` the :class:`Hopping`
    list of H (on-site terms do not contribute).
    """
    if direction not in _DIRECTIONS:
        raise ValueError(f"current direction must be 'x' or 'y', got {direction!r}")
    mu = _DIRECTIONS[direction]
    return assemble(dim, n, hoppings=hoppings, weight=lambda d: -1j * d[mu], dtype=dtype)


def as_operator(matrix, dim: int, dtype=None):
    """Validate a user operator and return it as CSR of shape ``(dim, dim)``.

    Accepts any SciPy sparse matrix/array or a dense 2D array; raises
    ``ValueError`` naming the expected shape, or when an entry is not finite.
    """
    if scipy.sparse.issparse(matrix):
        out = scipy.sparse.csr_matrix(matrix)
    else:
        array = np.asarray(matrix)
        if array.ndim != 2:
            raise ValueError(f"operator must be a ({dim}, {dim}) matrix, got an array of shape {array.shape}")
        out = scipy.sparse.csr_matrix(array)
    if out.shape != (dim, dim):
        raise ValueError(f"operator must have shape ({dim}, {dim}) (the number of orbitals), got {out.shape}")
    if dtype is not None:
        out = out.astype(check_dtype(dtype))
    if not np.all(np.isfinite(out.data)):
        raise ValueError("operator has non-finite entries")
    out.sort_indices()
    return out
