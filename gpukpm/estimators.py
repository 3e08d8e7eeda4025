r"""Unbiased variance reductions of the stochastic trace (dilution by orbital colouring).

The plain estimator of ``μ_nm = Tr[A T_n B T_m]/D`` takes one random-phase
vector ``|r⟩`` per sample, ``⟨r|X|r⟩ = Σ_ij r_i* X_ij r_j``; its variance is
``Σ_{i≠j} |X_ij|²`` (Hutchinson with phases: no diagonal noise).

Dilution splits the orbitals into colour classes c = 0..k−1 (projectors
``P_c``, ``Σ_c P_c = 1``) and replaces one sample by

    ⟨r|X|r⟩_diluted = Σ_c ⟨P_c r| X |P_c r⟩ = Σ_c Σ_{i,j ∈ c} r_i* X_ij r_j,

whose expectation is still ``Tr X`` (every diagonal term is kept) and whose
variance is ``Σ_c Σ_{i≠j ∈ c} |X_ij|²``: the noise of the matrix elements
between colours is gone, at k times the cost (k Chebyshev chain pairs per
sample).  The sample is the sum over colours, so standard errors over samples
stay those of independent, identically distributed draws.

It wins where X is concentrated between colours.  With spin-independent
disorder and weak spin-orbit coupling, ``H ≈ H_0 ⊗ 1``, so for A = s_x or
s_y (spin flips) and B = ĵ_x (spin conserving) ``X ≈ f(H_0) ĵ_x ⊗ σ_{x,y}``
is spin off-diagonal in the s_z basis: dilution by s_z removes its dominant
part (``benchmarks/bench_variance.py`` measures it; sublattice or cell
colourings do not help, X is spread over every sublattice pair).

Colourings (orbital index ``2·site + spin``, ``site = n_s·cell + α``,
:mod:`gpukpm.lattice`):

* ``"plain"``: one class (the plain estimator);
* ``"spin_diluted"``: the spin s_z = ↑, ↓ (k = 2);
* ``"sublattice_diluted"``: the sublattice α (k = n_s);
* ``"spin_sublattice_diluted"``: both (k = 2 n_s).
"""
from __future__ import annotations

import numpy as np

__all__ = ["ESTIMATORS", "check_estimator", "colours", "dilute"]

ESTIMATORS = ("plain", "spin_diluted", "sublattice_diluted", "spin_sublattice_diluted")


def check_estimator(estimator) -> str:
    """Validate an estimator name (one of :data:`ESTIMATORS`)."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    return estimator


def _num_sublattices(system) -> int:
    lattice = getattr(system, "lattice", None)
    return int(getattr(lattice, "num_sublattices", 1))


def colours(system, estimator: str, dim: int) -> tuple[np.ndarray, int]:
    """``(colour of each orbital (D,), number of colours k)`` for ``estimator``.

    Orbital ``i`` has spin ``i mod 2`` and sublattice ``(i // 2) mod n_s``.
    """
    estimator = check_estimator(estimator)
    index = np.arange(int(dim))
    ns = _num_sublattices(system)
    spin, sublattice = index % 2, (index // 2) % ns
    if estimator == "plain":
        return np.zeros(dim, dtype=np.int64), 1
    if estimator == "spin_diluted":
        return spin, 2
    if estimator == "sublattice_diluted":
        return sublattice, ns
    return 2 * sublattice + spin, 2 * ns


def dilute(rows: np.ndarray, colour: np.ndarray, num_colours: int) -> np.ndarray:
    """Rows ``P_c r`` for every row r of ``rows`` (R, D) and colour c: shape (R·k, D),
    vector-major (row ``k·v + c`` is colour c of vector v)."""
    R, D = rows.shape
    out = np.zeros((R, num_colours, D), dtype=rows.dtype)
    for c in range(num_colours):
        mask = colour == c
        out[:, c, mask] = rows[:, mask]
    return out.reshape(R * num_colours, D)
