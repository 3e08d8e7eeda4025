"""Bravais lattices with sublattices and nearest-neighbour bonds.

Lengths are in nm, wave vectors in nm⁻¹.  A :class:`Lattice` holds the
primitive vectors ``a1, a2`` (rows of :attr:`Lattice.vectors`), the sublattice
positions ``τ_α`` inside the cell and a list of :class:`Bond`.  A bond joins
sublattice ``source`` of cell ``R_i`` to sublattice ``target`` of cell
``R_i + n1 a1 + n2 a2``; its vector is ``d = r_j − r_i = n1 a1 + n2 a2 +
τ_target − τ_source``.  Each unordered pair of neighbours is listed once: the
reverse bond (vector ``−d``) is implied by hermiticity.

Finite ``L1 × L2`` supercells are periodic.  Cell ``(i1, i2)`` has index
``c = i1 L2 + i2`` and site ``(c, α)`` has index ``num_sublattices c + α``; the
orbital layout on top of the sites is the models' business.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Bond", "Lattice", "honeycomb", "square", "check_shape", "index_dtype"]


def check_shape(shape) -> tuple[int, int]:
    """Validate a supercell shape ``(L1, L2)`` of positive integers."""
    try:
        sizes = tuple(shape)
    except TypeError:
        sizes = ()
    if len(sizes) != 2 or any(
        isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 for n in sizes
    ):
        raise ValueError(f"shape must be two positive integers (L1, L2), got {shape!r}")
    return int(sizes[0]), int(sizes[1])


def index_dtype(size: int) -> type:
    """``int32`` when every index below ``size`` fits, else ``int64``."""
    return np.int32 if size <= np.iinfo(np.int32).max else np.int64


def _frozen(array) -> np.ndarray:
    out = np.array(array, dtype=float)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class Bond:
    """A hopping from sublattice ``source`` to sublattice ``target`` in the cell
    shifted by ``offset = (n1, n2)``; ``vector`` is ``d = r_target − r_source`` (nm)."""

    source: int
    target: int
    offset: tuple[int, int]
    vector: np.ndarray


class Lattice:
    """A 2D Bravais lattice with a basis and a list of bonds.

    Parameters
    ----------
    vectors : (2, 2) array_like
        Primitive vectors ``a1, a2`` as rows (nm).
    sublattices : (ns, 2) array_like
        Positions ``τ_α`` of the sublattices inside the cell (nm).
    bonds : sequence of ``(source, target, (n1, n2))``
        One entry per unordered pair of neighbours.
    name : str
        A label for provenance records.
    """

    def __init__(self, vectors, sublattices, bonds, name: str = "lattice"):
        self.vectors = _frozen(vectors)
        self.sublattices = _frozen(np.atleast_2d(sublattices))
        if self.vectors.shape != (2, 2) or self.sublattices.shape[1:] != (2,):
            raise ValueError("vectors must be (2, 2) and sublattices (ns, 2)")
        if abs(np.linalg.det(self.vectors)) < 1e-12:
            raise ValueError("lattice vectors must be linearly independent")
        self.name = name
        ns = len(self.sublattices)
        checked = []
        for source, target, offset in bonds:
            if not (0 <= source < ns and 0 <= target < ns):
                raise ValueError(f"bond sublattices must lie in 0..{ns - 1}, got {(source, target)}")
            n1, n2 = (int(n) for n in offset)
            vector = n1 * self.vectors[0] + n2 * self.vectors[1] + self.sublattices[target] - self.sublattices[source]
            checked.append(Bond(int(source), int(target), (n1, n2), _frozen(vector)))
        self.bonds = tuple(checked)

    def __repr__(self) -> str:
        return f"Lattice({self.name!r}, sublattices={self.num_sublattices}, bonds={len(self.bonds)})"

    @property
    def num_sublattices(self) -> int:
        return len(self.sublattices)

    @property
    def cell_area(self) -> float:
        """Area of the primitive cell ``|a1 × a2|`` (nm²)."""
        return float(abs(np.linalg.det(self.vectors)))

    @property
    def reciprocal_vectors(self) -> np.ndarray:
        """Rows ``b1, b2`` with ``a_i · b_j = 2π δ_ij`` (nm⁻¹)."""
        return 2 * np.pi * np.linalg.inv(self.vectors).T

    def kgrid(self, L1: int, L2: int) -> np.ndarray:
        """The ``L1 × L2`` Monkhorst-Pack grid of the periodic ``L1 × L2`` supercell.

        ``k = (n1/L1) b1 + (n2/L2) b2`` for ``n_i = 0 … L_i − 1`` (Γ included),
        row ``n1 L2 + n2`` of the returned ``(L1 L2, 2)`` array (nm⁻¹).  These
        are exactly the wave vectors with ``exp(i k·L_i a_i) = 1``.
        """
        L1, L2 = check_shape((L1, L2))
        n1, n2 = np.meshgrid(np.arange(L1) / L1, np.arange(L2) / L2, indexing="ij")
        fractions = np.stack([n1.ravel(), n2.ravel()], axis=-1)
        return fractions @ self.reciprocal_vectors

    def cell_indices(self, shape) -> tuple[np.ndarray, np.ndarray]:
        """Integer coordinates ``(i1, i2)`` of every cell, in cell-index order."""
        L1, L2 = check_shape(shape)
        cells = np.arange(L1 * L2, dtype=index_dtype(L1 * L2 * self.num_sublattices))
        return cells // L2, cells % L2

    def site_positions(self, shape) -> np.ndarray:
        """Positions ``R + τ_α`` of all sites of an ``L1 × L2`` supercell, ``(num_sites, 2)`` nm."""
        i1, i2 = self.cell_indices(shape)
        cells = np.outer(i1, self.vectors[0]) + np.outer(i2, self.vectors[1])
        return (cells[:, None, :] + self.sublattices[None, :, :]).reshape(-1, 2)

    def bond_sites(self, bond: Bond, shape) -> tuple[np.ndarray, np.ndarray]:
        """Site indices ``(i, j)`` joined by ``bond`` in every cell of the periodic supercell."""
        L1, L2 = check_shape(shape)
        ns = self.num_sublattices
        i1, i2 = self.cell_indices(shape)
        n1, n2 = bond.offset
        target_cells = ((i1 + n1) % L1) * L2 + (i2 + n2) % L2
        return ns * (i1 * L2 + i2) + bond.source, ns * target_cells + bond.target

    def minimum_image(self, displacements, shape) -> np.ndarray:
        """Shortest vector equivalent to each displacement modulo ``L1 a1`` and ``L2 a2``.

        Fractional coordinates are first folded into ``[−1/2, 1/2)``, then the
        eight neighbouring images are compared, so the result is the Euclidean
        minimum image also for oblique lattices.  Input ``(..., 2)`` nm.
        """
        L1, L2 = check_shape(shape)
        d = np.asarray(displacements, dtype=float)
        supercell = self.vectors * np.array([[L1], [L2]])
        fractional = d @ np.linalg.inv(supercell)
        fractional -= np.floor(fractional + 0.5)
        shifts = np.array([(s1, s2) for s1 in (-1, 0, 1) for s2 in (-1, 0, 1)], dtype=float)
        candidates = (fractional[..., None, :] + shifts) @ supercell
        best = np.argmin(np.einsum("...ij,...ij->...i", candidates, candidates), axis=-1)
        return np.take_along_axis(candidates, best[..., None, None], axis=-2)[..., 0, :]


def honeycomb(a: float = 0.246) -> Lattice:
    """Graphene's honeycomb lattice (lattice constant ``a`` in nm).

    ``a1 = a(1, 0)``, ``a2 = a(1/2, √3/2)``, A at the origin, B at ``(0, a/√3)``.
    The three bonds from A to its B neighbours have offsets ``(0, 0)``,
    ``(1, −1)`` and ``(0, −1)`` and vectors ``(0, a/√3)``,
    ``(a/2, −a/(2√3))`` and ``(−a/2, −a/(2√3))``.  The valleys are
    ``K = (4π/(3a), 0)`` and ``K' = −K``.
    """
    vectors = a * np.array([[1.0, 0.0], [0.5, math.sqrt(3) / 2]])
    sublattices = np.array([[0.0, 0.0], [0.0, a / math.sqrt(3)]])
    bonds = [(0, 1, (0, 0)), (0, 1, (1, -1)), (0, 1, (0, -1))]
    return Lattice(vectors, sublattices, bonds, name="honeycomb")


def square(a: float) -> Lattice:
    """Square lattice of constant ``a`` (nm), one site per cell, bonds ``+a x̂`` and ``+a ŷ``."""
    return Lattice(a * np.eye(2), [[0.0, 0.0]], [(0, 0, (1, 0)), (0, 0, (0, 1))], name="square")
