r"""Translation-invariant cell stencils: H, ĵ and s of a lattice model without column indices.

A periodic ``L1 × L2`` supercell of a lattice model with ``O`` orbitals per
cell (orbital ``O·(i1 L2 + i2) + o``, the layout of :mod:`gpukpm.models.hamiltonians`) has
operators of the form

    (M x)_{c,o} = Σ_e v_e · x_{c + δ_{k(e)}, p(e)} + w_{c,o} x_{c,o},      e ∈ entries(o),

the same few entries ``(o, δ, p, v)`` in every cell ``c`` (cell offsets δ
taken modulo the supercell) plus an optional real per-orbital diagonal
``w`` (the Anderson energies).  A :class:`CellStencil` stores exactly that:
``O`` row pointers, the entries and ``w``, a few hundred bytes instead of the
CSR's ``nnz`` values and column indices.  A Chebyshev step then streams only
the vectors (and ``w``), which is what makes it several times faster than
the CSR product on a bandwidth-bound machine.

:func:`lattice_stencil` builds H, ``ĵ_μ = −i[H, X_μ]`` (eV·nm, each hopping
weighted by ``−i d_μ`` of its own bond, as :func:`gpukpm.models.operators.current_operator`)
and ``s_c = 1 ⊗ σ_c`` from a model's on-site and bond blocks; :meth:`CellStencil.to_csr`
gives the CSR matrix it represents (tests check it equals the assembled one).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse

from gpukpm.models.lattice import index_dtype
from gpukpm.models.operators import CURRENT_NAMES, PAULI, SPIN_NAMES, check_dtype

__all__ = ["CellStencil", "lattice_stencil", "STENCIL_NAMES"]

STENCIL_NAMES = ("H",) + SPIN_NAMES + CURRENT_NAMES


@dataclass(frozen=True, eq=False)
class CellStencil:
    """``M`` of an ``L1 × L2`` supercell as per-cell entries (see the module docstring).

    ``cells`` is (L1, L2); ``offsets`` (K, 2) cell offsets δ; ``row_start`` (O + 1) pointers into
    the entries ordered by output orbital o; ``entry_offset`` (index k into
    ``offsets``), ``entry_orbital`` (p) and ``entry_value`` (v, complex) per
    entry; ``diagonal`` (D,) real or ``None``.
    """

    cells: tuple[int, int]
    orbitals: int
    offsets: np.ndarray
    row_start: np.ndarray
    entry_offset: np.ndarray
    entry_orbital: np.ndarray
    entry_value: np.ndarray
    diagonal: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return self.cells[0] * self.cells[1] * self.orbitals

    @property
    def shape(self) -> tuple[int, int]:
        """(D, D), as for a matrix."""
        return self.dim, self.dim

    @property
    def dtype(self) -> np.dtype:
        return self.entry_value.dtype

    @property
    def nnz(self) -> int:
        """Stored non-zeros of the matrix it represents (entries × cells + diagonal)."""
        cells = self.cells[0] * self.cells[1]
        return int(len(self.entry_value) * cells + (0 if self.diagonal is None else self.dim))

    @classmethod
    def from_entries(cls, shape, orbitals: int, entries, diagonal=None, dtype=np.complex128) -> "CellStencil":
        """Collect ``(o, (n1, n2), p, v)`` tuples: duplicates summed, exact zeros dropped."""
        dtype = check_dtype(dtype)
        summed: dict[tuple[int, tuple[int, int], int], complex] = {}
        for o, delta, p, value in entries:
            key = (int(o), (int(delta[0]), int(delta[1])), int(p))
            summed[key] = summed.get(key, 0.0) + complex(value)
        kept = sorted((key, v) for key, v in summed.items() if v != 0)
        offsets = sorted({key[1] for key, _ in kept}) or [(0, 0)]
        where = {delta: k for k, delta in enumerate(offsets)}
        row_start = np.zeros(orbitals + 1, dtype=np.int64)
        for (o, _, _), _ in kept:
            row_start[o + 1] += 1
        real = np.float32 if dtype == np.complex64 else np.float64
        return cls(
            cells=(int(shape[0]), int(shape[1])),
            orbitals=int(orbitals),
            offsets=np.array(offsets, dtype=np.int64).reshape(-1, 2),
            row_start=np.cumsum(row_start),
            entry_offset=np.array([where[key[1]] for key, _ in kept], dtype=np.int64),
            entry_orbital=np.array([key[2] for key, _ in kept], dtype=np.int64),
            entry_value=np.array([v for _, v in kept], dtype=dtype),
            diagonal=None if diagonal is None else np.ascontiguousarray(diagonal, dtype=real),
        )

    def astype(self, dtype) -> "CellStencil":
        """The stencil in ``dtype`` (itself when it already is: its compiled plan is kept)."""
        dtype = check_dtype(dtype)
        if dtype == self.dtype:
            return self
        real = np.float32 if dtype == np.complex64 else np.float64
        return replace(self, entry_value=self.entry_value.astype(dtype),
                       diagonal=None if self.diagonal is None else self.diagonal.astype(real))

    def rescaled(self, factor: float, shift: float) -> "CellStencil":
        """``factor · (M − shift·1)``: the Chebyshev operator ``2H̃ = (2/a)(H − b)`` from H."""
        entries = [(o, self.offsets[k], p, v) for o, k, p, v in self._rows()]
        entries += [(o, (0, 0), o, -shift) for o in range(self.orbitals)]
        entries = [(o, d, p, factor * v) for o, d, p, v in entries]
        diagonal = None if self.diagonal is None else factor * self.diagonal
        return CellStencil.from_entries(self.cells, self.orbitals, entries, diagonal, self.dtype)

    def _rows(self):
        for o in range(self.orbitals):
            for e in range(self.row_start[o], self.row_start[o + 1]):
                yield o, int(self.entry_offset[e]), int(self.entry_orbital[e]), complex(self.entry_value[e])

    def neighbour_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, cols)``: ``rows[k, i1] = ((i1 + n1_k) mod L1)·L2``, ``cols[k, i2] = (i2 + n2_k) mod L2``,
        so the cell ``c + δ_k`` of cell ``(i1, i2)`` is ``rows[k, i1] + cols[k, i2]`` without a division."""
        L1, L2 = self.cells
        n1, n2 = self.offsets[:, :1], self.offsets[:, 1:]
        rows = ((np.arange(L1)[None, :] + n1) % L1) * L2
        cols = (np.arange(L2)[None, :] + n2) % L2
        return np.ascontiguousarray(rows, dtype=np.int64), np.ascontiguousarray(cols, dtype=np.int64)

    def to_csr(self) -> scipy.sparse.csr_matrix:
        """The (D, D) CSR matrix this stencil represents (duplicates summed)."""
        L1, L2 = self.cells
        O = self.orbitals
        rows_tab, cols_tab = self.neighbour_tables()
        i1, i2 = np.divmod(np.arange(L1 * L2), L2)
        idx = index_dtype(self.dim)
        rows, cols, data = [], [], []
        for o, k, p, v in self._rows():
            rows.append((np.arange(L1 * L2) * O + o).astype(idx))
            cols.append(((rows_tab[k, i1] + cols_tab[k, i2]) * O + p).astype(idx))
            data.append(np.full(L1 * L2, v, dtype=self.dtype))
        if self.diagonal is not None:
            rows.append(np.arange(self.dim, dtype=idx))
            cols.append(np.arange(self.dim, dtype=idx))
            data.append(self.diagonal.astype(self.dtype))
        if not rows:
            return scipy.sparse.csr_matrix((self.dim, self.dim), dtype=self.dtype)
        coo = scipy.sparse.coo_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
                                      shape=(self.dim, self.dim))
        return coo.tocsr()


def lattice_stencil(model, shape, name: str, site_energies=None, dtype=np.complex128) -> CellStencil:
    """Stencil of operator ``name`` ("H", "sx", "sy", "sz", "jx", "jy") of a lattice model's supercell.

    * ``"H"``: on-site spin blocks, every bond ``t`` and its conjugate, and
      ``site_energies`` (eV, one per site, both spins) as the diagonal;
    * ``"jx"``, ``"jy"``: every bond weighted by ``−i d_μ`` (nm) and its
      conjugate weighted by ``+i d_μ`` (eV·nm);
    * ``"sx"``, ``"sy"``, ``"sz"``: ``σ_c`` on every site.
    """
    if name not in STENCIL_NAMES:
        raise ValueError(f"stencil name must be one of {STENCIL_NAMES}, got {name!r}")
    lattice = model.lattice
    entries = []
    if name in SPIN_NAMES:
        onsite = [PAULI[name[1]]] * lattice.num_sublattices
    elif name == "H":
        onsite = list(model._onsite_blocks())
    else:
        onsite = []
    for alpha, block in enumerate(onsite):
        entries += [(2 * alpha + a, (0, 0), 2 * alpha + b, block[a, b]) for a in range(2) for b in range(2)]
    if name == "H" or name in CURRENT_NAMES:
        mu = {"jx": 0, "jy": 1}.get(name)
        for bond, block in zip(lattice.bonds, model._bond_blocks()):
            weight = 1.0 if mu is None else -1j * bond.vector[mu]
            n1, n2 = bond.offset
            for a in range(2):
                for b in range(2):
                    value = weight * block[a, b]
                    entries.append((2 * bond.source + a, (n1, n2), 2 * bond.target + b, value))
                    entries.append((2 * bond.target + b, (-n1, -n2), 2 * bond.source + a, np.conj(value)))
    diagonal = None
    if name == "H" and site_energies is not None:
        diagonal = np.repeat(np.asarray(site_energies, dtype=float), 2)
    return CellStencil.from_entries(shape, model.orbitals_per_cell, entries, diagonal, dtype)
