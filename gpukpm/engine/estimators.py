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
disorder and weak spin-orbit coupling and exchange, ``H ≈ H_0 ⊗ 1``, so for
A = s_x or s_y (spin flips) and B = ĵ_x (spin conserving)
``X ≈ f(H_0) ĵ_x ⊗ σ_{x,y}`` is spin off-diagonal in the s_z basis: dilution
by s_z removes its dominant part, and what is left is of the order of the
spin-orbit and exchange terms.  More generally the noise of s_k goes away with
colours along an axis n ⊥ k; along the magnetisation m̂ (``spin_m_diluted``)
it goes away for the two components transverse to m̂, the torques.  The
component along the axis gains nothing and pays k = 2.  Sublattice colours
remove much less (X connects every sublattice pair).  Measured on the Fig. 3
job (``benchmarks/bench_variance.py``, ``benchmarks/README.md``).

Colourings (orbital index ``2·site + spin``, ``site = n_s·cell + α``,
:mod:`gpukpm.models.lattice`):

* ``"plain"``: one class (the plain estimator);
* ``"spin_diluted"``: the spin s_z = ↑, ↓ (k = 2);
* ``"spin_m_diluted"``: the spin along the model's magnetisation m̂ (k = 2): the
  colour-c start vector puts ``r_{i,c}`` on the spinor ``|±m̂⟩`` of site i;
* ``"sublattice_diluted"``: the sublattice α (k = n_s);
* ``"spin_sublattice_diluted"``: both (s_z, k = 2 n_s).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = ["ESTIMATORS", "Dilution", "check_estimator", "colours", "control_variate", "dilution", "dilute",
           "spin_basis"]

ESTIMATORS = ("plain", "spin_diluted", "spin_m_diluted", "sublattice_diluted", "spin_sublattice_diluted")


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
    if estimator in ("spin_diluted", "spin_m_diluted"):
        return spin, 2
    if estimator == "sublattice_diluted":
        return sublattice, ns
    return 2 * sublattice + spin, 2 * ns


def spin_basis(axis) -> np.ndarray:
    """2 × 2 unitary whose columns are the spinors ``|±n⟩`` (``n·σ|±n⟩ = ±|±n⟩``), n = axis/|axis|."""
    n = np.asarray(axis, dtype=float)
    if n.shape != (3,) or not np.linalg.norm(n) > 0:
        raise ValueError(f"spin axis must be a non-zero 3-vector, got {axis!r}")
    n = n / np.linalg.norm(n)
    theta, phi = np.arccos(np.clip(n[2], -1.0, 1.0)), np.arctan2(n[1], n[0])
    c, s = np.cos(theta / 2), np.sin(theta / 2)
    return np.array([[c, -np.exp(-1j * phi) * s], [np.exp(1j * phi) * s, c]])


def dilute(rows: np.ndarray, colour: np.ndarray, num_colours: int, basis=None) -> np.ndarray:
    """Rows ``U P_c r`` for every row r of ``rows`` (R, D) and colour c: shape (R·k, D),
    vector-major (row ``k·v + c`` is colour c of vector v).

    ``basis`` U (2 × 2, columns ``|±n⟩``, :func:`spin_basis`) maps the spin pair of every site,
    ``r_{i↑}|↑⟩ + r_{i↓}|↓⟩ → r_{i↑}|+n⟩ + r_{i↓}|−n⟩``; None keeps s_z.  U is unitary, so
    ``Σ_c E[U P_c r (U P_c r)†] = 1`` and the estimate stays unbiased.
    """
    R, D = rows.shape
    out = np.zeros((R, num_colours, D), dtype=rows.dtype)
    for c in range(num_colours):
        mask = colour == c
        out[:, c, mask] = rows[:, mask]
    out = out.reshape(R * num_colours, D)
    if basis is None:
        return out
    return np.ascontiguousarray((out.reshape(-1, D // 2, 2) @ np.asarray(basis).T).reshape(out.shape), dtype=rows.dtype)


@dataclass(frozen=True)
class Dilution:
    """How one random vector becomes k start vectors (``rows``); k = 1 for the plain estimator."""

    estimator: str
    colour: np.ndarray
    num_colours: int
    axis: tuple | None = None  # spin quantisation axis of the colours (None: ẑ)

    def rows(self, vectors: np.ndarray) -> np.ndarray:
        """Start vectors (R·k, D) of the random vectors ``vectors`` (R, D)."""
        basis = None if self.axis is None else spin_basis(self.axis)
        return dilute(vectors, self.colour, self.num_colours, basis)


def dilution(system, estimator: str, dim: int) -> Dilution:
    """The :class:`Dilution` of ``estimator`` on ``system`` (``spin_m_diluted``: along the
    magnetisation ``system.model.magnetization``)."""
    colour, k = colours(system, estimator, dim)
    axis = None
    if estimator == "spin_m_diluted":
        axis = getattr(getattr(system, "model", None), "magnetization", None)
        if axis is None:
            raise ValueError("estimator 'spin_m_diluted' needs a system whose model has a magnetization")
        axis = tuple(float(v) for v in axis)
    return Dilution(estimator, colour, k, axis)


def _check_same(moments, other, name: str, keys) -> None:
    for key in keys:
        mine, theirs = getattr(moments, key), getattr(other, key)
        same = np.isclose(mine, theirs, rtol=1e-12, atol=0) if key in ("a", "b") else mine == theirs
        if not same:
            raise ValueError(f"{name} moments differ in {key}: {theirs!r} vs {mine!r}")


def control_variate(moments, control, exact):
    r"""Control-variate moments: per sample ``μ_r − μ⁰_r + μ⁰``.

    ``moments``: a stochastic run on the disordered system; ``control``: the same
    run (same seed, realisation ids, vector ids, estimator and rescaling) on the
    pristine system, whose samples ``μ⁰_r`` use the same random vectors;
    ``exact``: the exact pristine moments ``μ⁰`` with the same rescaling (the
    exact trace, or :func:`gpukpm.engine.kspace.kspace_moments` on the matching L1 × L2
    grid with ``bounds=(b − a(1 − ε), b + a(1 − ε))`` and ``epsilon=ε`` from ``moments``, which
    give back its a and b).
    ``E[μ⁰_r] = μ⁰``, so the expectation is unchanged; the variance drops when
    the noises of μ_r and μ⁰_r correlate (weak disorder: ``benchmarks/README.md``).
    The cost is both stochastic runs.  The samples stay one per vector, so the
    standard errors are those of the corrected values.
    """
    _check_same(moments, control, "control", ("a", "b", "left", "right", "seed", "num_moments"))
    _check_same(moments, exact, "exact", ("a", "b", "left", "right", "num_moments"))
    if moments.trace != "stochastic" or control.trace != "stochastic":
        raise ValueError("moments and control must be stochastic runs")
    if not (np.array_equal(control.sample_vectors, moments.sample_vectors)
            and np.array_equal(control.sample_realisations, moments.sample_realisations)
            and control.provenance.get("estimator") == moments.provenance.get("estimator")):
        raise ValueError("control must use the same vectors, realisations and estimator as moments")
    if exact.num_samples != 1 or exact.trace not in ("exact", "kspace"):
        raise ValueError(f"exact must be one exact or k-space sample, got trace={exact.trace!r} "
                         f"with {exact.num_samples} samples")
    estimator = f"{moments.provenance.get('estimator', 'plain')}+control_variate"
    return replace(moments, mu_samples=moments.mu_samples - control.mu_samples + exact.mu_samples[0],
                   provenance=dict(moments.provenance, estimator=estimator, control=control.provenance))
