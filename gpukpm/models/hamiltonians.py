"""Model parameters → real-space systems and Bloch Hamiltonians.

Units (see CONVENTIONS.md): energies in eV, lengths in nm, wave vectors in
nm⁻¹, effective masses in m_e, continuum λ_R and ħv in eV·nm.  Spin operators
are Pauli matrices ``s`` (eigenvalues ±1); the exchange term is
``−(J_ex/2) m̂·s`` on every site.

Lattice models (:class:`GrapheneRashba`, :class:`Rashba2DEGLattice`) give

* ``real_space(shape, disorder, seed, realisation, dtype)`` → :class:`System`,
  a periodic ``L1 × L2`` supercell with H and the operators as SciPy CSR;
* ``bloch(k)``, ``bloch_derivative(k)``, ``bloch_operator(name, k)`` in the
  position gauge, ``H_αβ(k) = Σ_bonds t e^{ik·(R + τ_β − τ_α)}``; each takes
  ``xp=`` (default NumPy; CuPy builds the matrices on the device, as the
  k-space engine does on the GPU backend).

Continuum models (:class:`Rashba2DEG`, :class:`Dirac`) give the Bloch
functions only.  Every model gives ``spectral_bound(k)`` → ``(centres,
radius)`` (eV): each eigenvalue of ``bloch(k)`` lies within ``radius`` of a
centre (the spin-free dispersion; Weyl's inequality), and lattice models
``spectral_lipschitz`` (eV·nm), how fast the centres move with k — the
k-space engine selects k points with them (``gpukpm.engine.kspace``).  Orbitals: ``2 × sublattice + spin`` inside a cell (spin
innermost, ↑ before ↓), cell ``(i1, i2)`` of an ``L1 × L2`` supercell at index
``i1 L2 + i2``, so the honeycomb orbital of cell c is ``4c + 2α + s``.

Every model is a frozen dataclass validated in ``__post_init__``; ``to_dict``
and ``from_dict`` give JSON-able provenance and its inverse.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from gpukpm.models import lattice as _lattice
from gpukpm.models.operators import (
    CURRENT_NAMES,
    OPERATOR_NAMES,
    PAULI,
    SPIN_NAMES,
    Hopping,
    OnSite,
    assemble,
    check_dtype,
    current_operator,
    spin_operator,
)
from gpukpm.models.random import check_seed, disorder_generator
from gpukpm.models.stencil import lattice_stencil

__all__ = [
    "HBAR2_OVER_2ME",
    "GrapheneRashba",
    "Rashba2DEGLattice",
    "Rashba2DEG",
    "Dirac",
    "System",
    "MODELS",
    "model_from_dict",
]

HBAR2_OVER_2ME = 0.0380998  # ħ²/(2 m_e), eV·nm²
_UNIT_TOLERANCE = 1e-9


# --------------------------------------------------------------------------- validation
def _param(default, check: str, unit: str = ""):
    """A dataclass field with a validation rule: ``"real"``, ``"positive"`` or ``"unit"``."""
    return field(default=default, metadata={"check": check, "unit": unit})


def _real(owner: str, name: str, value, check: str = "real", unit: str = "") -> float:
    rule = {"real": "a finite real number", "positive": "a finite number > 0", "nonnegative": "a finite number ≥ 0"}
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    ok = ok and math.isfinite(value)
    ok = ok and not (check == "positive" and value <= 0) and not (check == "nonnegative" and value < 0)
    if not ok:
        units = f" ({unit})" if unit else ""
        raise ValueError(f"{owner}: {name} must be {rule[check]}{units}, got {value!r}")
    return float(value)


def _unit_vector(owner: str, name: str, value) -> tuple[float, float, float]:
    try:
        m = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        m = np.full(1, np.nan)
    if m.shape != (3,) or not np.all(np.isfinite(m)):
        raise ValueError(f"{owner}: {name} must be a finite 3-vector, got {value!r}")
    norm = float(np.linalg.norm(m))
    if abs(norm - 1.0) > _UNIT_TOLERANCE:
        raise ValueError(
            f"{owner}: {name} must be a unit vector (|m| = 1 within {_UNIT_TOLERANCE:g}; "
            f"it is not normalised for you), got {value!r} with |m| = {norm:.12g}"
        )
    return tuple(float(x) for x in m)


def _as_k(k, xp=np):
    """k as a float array of the array module ``xp`` (NumPy, or CuPy for device-resident k)."""
    k = xp.asarray(k, dtype=float)
    if k.ndim < 1 or k.shape[-1] != 2:
        raise ValueError(f"k must have shape (..., 2) (k_x, k_y in nm⁻¹), got shape {k.shape}")
    return k


def _spin_matrix(vector) -> np.ndarray:
    """``v·s`` for a 3-vector ``v``."""
    return vector[0] * PAULI["x"] + vector[1] * PAULI["y"] + vector[2] * PAULI["z"]


def _rashba_bond_matrix(unit_bond) -> np.ndarray:
    """``[(s × d̂)·ẑ] = s_x d̂_y − s_y d̂_x`` for an in-plane unit vector ``d̂``."""
    return unit_bond[1] * PAULI["x"] - unit_bond[0] * PAULI["y"]


def _spin_split(blocks) -> tuple[np.ndarray, np.ndarray]:
    """Spin-free parts ``tr M/2`` (..., ns, ns) and spin-part spectral norms ``‖M − (tr M/2) 1‖``
    (..., ns, ns) of the 2×2 spin blocks of ``blocks`` (..., ns, 2, ns, 2)."""
    free = np.einsum("...aibi->...ab", blocks) / 2
    spin = blocks - free[..., :, None, :, None] * np.eye(2)[:, None, :]
    return free, np.linalg.norm(np.moveaxis(spin, -3, -2), ord=2, axis=(-2, -1))


def _hermitian_eigenvalues(h, xp=np):
    """Ascending eigenvalues (..., m) of Hermitian (..., m, m): closed form for m ≤ 2, else ``eigvalsh``."""
    m = h.shape[-1]
    if m == 1:
        return xp.real(h[..., 0, :])
    if m == 2:
        mean = 0.5 * xp.real(h[..., 0, 0] + h[..., 1, 1])
        half = xp.sqrt((0.5 * xp.real(h[..., 0, 0] - h[..., 1, 1])) ** 2 + xp.abs(h[..., 0, 1]) ** 2)
        return xp.stack([mean - half, mean + half], axis=-1)
    return xp.linalg.eigvalsh(h)


class _Model:
    """Validation, provenance and Bloch operators shared by all models."""

    orbitals_per_cell: int

    def __post_init__(self):
        owner = type(self).__name__
        for f in dataclasses.fields(self):
            check, unit = f.metadata["check"], f.metadata["unit"]
            value = getattr(self, f.name)
            if check == "unit":
                value = _unit_vector(owner, f.name, value)
            else:
                value = _real(owner, f.name, value, check, unit)
            object.__setattr__(self, f.name, value)

    @classmethod
    def from_dict(cls, mapping):
        """Build from a mapping of field values (an optional ``"model"`` key must name this class)."""
        data = dict(mapping)
        name = data.pop("model", cls.__name__)
        if name != cls.__name__:
            raise ValueError(f"model: expected {cls.__name__!r}, got {name!r}")
        allowed = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown parameter(s) {unknown}; allowed: {allowed}")
        return cls(**data)

    def to_dict(self) -> dict:
        """JSON-able ``{"model": class name, field: value, ...}`` (inverse of :meth:`from_dict`)."""
        out = {"model": type(self).__name__}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def with_magnetization(self, magnetization):
        """Copy with another unit vector m̂ (validated, not normalised)."""
        return dataclasses.replace(self, magnetization=magnetization)

    def bloch_operator(self, name: str, k, xp=np):
        """Bloch form ``(..., n, n)`` of ``"sx", "sy", "sz"`` (k independent) or of the
        ħ-free currents ``"jx" = −∂H/∂k_x``, ``"jy" = −∂H/∂k_y`` (eV·nm), in array module ``xp``."""
        k = _as_k(k, xp)
        n = self.orbitals_per_cell
        if name in SPIN_NAMES:
            matrix = xp.asarray(np.kron(np.eye(n // 2), PAULI[name[1]]))
            return xp.broadcast_to(matrix, k.shape[:-1] + (n, n)).copy()
        if name in CURRENT_NAMES:
            return -self.bloch_derivative(k, xp)[..., CURRENT_NAMES.index(name), :, :]
        raise ValueError(f"operator name must be one of {OPERATOR_NAMES}, got {name!r}")


class _LatticeModel(_Model):
    """Tight-binding model on a :class:`~gpukpm.models.lattice.Lattice`, two spin states per site.

    Subclasses give ``lattice``, ``_onsite_blocks()`` (one 2×2 spin block per
    sublattice, eV) and ``_bond_blocks()`` (one 2×2 hopping ``t_ij`` per
    lattice bond, eV).  Real space and k space are built from these alone.
    """

    @property
    def lattice(self) -> _lattice.Lattice:
        raise NotImplementedError

    @property
    def orbitals_per_cell(self) -> int:
        return 2 * self.lattice.num_sublattices

    @property
    def cell_area(self) -> float:
        """Primitive cell area (nm²)."""
        return self.lattice.cell_area

    # -- k space ---------------------------------------------------------------
    @cached_property
    def _bloch_terms(self):
        """``(H0, D, M)``: on-site matrix, bond vectors ``(nb, 2)`` and hoppings
        ``(nb, n, n)`` embedded in the sublattice blocks, so that
        ``H(k) = H0 + F + F†`` with ``F = Σ_b M_b e^{ik·d_b}``."""
        n = self.orbitals_per_cell
        h0 = np.zeros((n, n), dtype=complex)
        for alpha, block in enumerate(self._onsite_blocks()):
            h0[2 * alpha : 2 * alpha + 2, 2 * alpha : 2 * alpha + 2] = block
        bonds = self.lattice.bonds
        hops = np.zeros((len(bonds), n, n), dtype=complex)
        for b, (bond, block) in enumerate(zip(bonds, self._bond_blocks())):
            hops[b, 2 * bond.source : 2 * bond.source + 2, 2 * bond.target : 2 * bond.target + 2] = block
        vectors = np.array([bond.vector for bond in bonds])
        return h0, vectors, hops

    def bloch(self, k, xp=np):
        """``H_αβ(k) = Σ_bonds t e^{ik·d}`` (position gauge, eV) for k of shape ``(..., 2)`` nm⁻¹,
        computed in array module ``xp`` (``cupy``: on the device, from device or host k)."""
        h0, vectors, hops = (xp.asarray(a) for a in self._bloch_terms)
        forward = xp.einsum("...b,bij->...ij", xp.exp(1j * (_as_k(k, xp) @ vectors.T)), hops)
        return h0 + forward + xp.conj(xp.swapaxes(forward, -1, -2))

    def bloch_derivative(self, k, xp=np):
        """``(∂H/∂k_x, ∂H/∂k_y)`` of shape ``(..., 2, n, n)`` (eV·nm)."""
        _, vectors, hops = (xp.asarray(a) for a in self._bloch_terms)
        phases = xp.exp(1j * (_as_k(k, xp) @ vectors.T))
        forward = xp.einsum("...b,bm,bij->...mij", phases, 1j * vectors, hops)
        return forward + xp.conj(xp.swapaxes(forward, -1, -2))

    # -- spectral bound (k-point selection) ------------------------------------
    @cached_property
    def _spin_free_terms(self):
        """``(h0, hops, v, L)`` of the split ``H(k) = H₀(k) ⊗ 1_spin + V(k)``.

        Every 2×2 spin block ``M = m·1 + b·s`` splits into its spin-free part
        ``m = tr M/2`` and the rest.  ``h0`` (ns, ns) and ``hops`` (nb, ns, ns)
        are the spin-free on-site matrix and bond hoppings (``H₀ = h0 + F + F†``,
        ``F = Σ_b hops_b e^{ik·d_b}``, ns = sublattices).  Bounds from the
        block-norm (Schur) test ``‖X‖ ≤ max_α Σ_β ‖X_αβ‖`` (Hermitian block matrices):

        * ``v = max_α Σ_β (‖V⁰_αβ‖ + Σ_{b: α→β} ‖V_b‖ + Σ_{b: β→α} ‖V_b‖) ≥ ‖V(k)‖``
          for every k (eV; ‖·‖ the 2×2 spectral norm of the spin part of a block,
          ``|e^{ik·d}| = 1``); for graphene ``v = |J_ex|/2 + |λ_R|`` (three bonds of
          Rashba norm |λ_R|/3), exact at K;
        * ``L = max_α Σ_β Σ_{b: α→β or β→α} |hops_b| |d_b|`` (eV·nm), since
          ``|e^{ik·d} − e^{ik'·d}| ≤ |d| |k − k'|``: ``‖H₀(k) − H₀(k')‖ ≤ L |k − k'|``.
        """
        h0, vectors, hops = self._bloch_terms
        ns = self.lattice.num_sublattices
        onsite_free, onsite_spin = _spin_split(h0.reshape(1, ns, 2, ns, 2))
        hops_free, hops_spin = _spin_split(hops.reshape(len(hops), ns, 2, ns, 2))
        lengths = np.linalg.norm(vectors, axis=1)[:, None, None]
        v_blocks = onsite_spin[0] + (hops_spin + np.swapaxes(hops_spin, 1, 2)).sum(axis=0)
        l_blocks = (lengths * (np.abs(hops_free) + np.swapaxes(np.abs(hops_free), 1, 2))).sum(axis=0)
        return onsite_free[0], hops_free, float(v_blocks.sum(axis=1).max()), float(l_blocks.sum(axis=1).max())

    @property
    def spectral_lipschitz(self) -> float:
        """L (eV·nm): the centres of :meth:`spectral_bound` (sorted) move by at most ``L |k − k'|`` (Weyl)."""
        return self._spin_free_terms[3]

    def spectral_bound(self, k, xp=np):
        """``(centres, radius)``: every eigenvalue of ``bloch(k)`` lies within ``radius`` of a centre (eV).

        Centres (..., ns), ascending: the eigenvalues of the spin-free part ``H₀(k)``
        (closed form for one or two sublattices); radius: the k-independent
        ``v ≥ ‖H(k) − H₀(k) ⊗ 1‖`` of :attr:`_spin_free_terms`.  Weyl's inequality
        ``|E_i(H₀ + V) − E_i(H₀)| ≤ ‖V‖`` for the sorted spectra gives the claim.
        """
        h0, hops, v, _ = self._spin_free_terms
        phases = xp.exp(1j * (_as_k(k, xp) @ xp.asarray(self._bloch_terms[1]).T))
        forward = xp.einsum("...b,bij->...ij", phases, xp.asarray(hops))
        h = xp.asarray(h0) + forward + xp.conj(xp.swapaxes(forward, -1, -2))
        return _hermitian_eigenvalues(h, xp), v

    # -- real space ------------------------------------------------------------
    def _onsite_terms(self, shape, energies) -> list[OnSite]:
        ns = self.lattice.num_sublattices
        num_cells = shape[0] * shape[1]
        cells = np.arange(num_cells, dtype=_lattice.index_dtype(ns * num_cells))
        terms = []
        for alpha, block in enumerate(self._onsite_blocks()):
            sites = ns * cells + alpha
            terms.append(OnSite(sites, block, None if energies is None else energies[sites]))
        return terms

    def _hopping_terms(self, shape) -> list[Hopping]:
        return [
            Hopping(*self.lattice.bond_sites(bond, shape), block, bond.vector)
            for bond, block in zip(self.lattice.bonds, self._bond_blocks())
        ]

    def real_space(self, shape, disorder=0.0, seed=0, realisation=0, dtype=np.complex128) -> System:
        """Periodic ``L1 × L2`` supercell with Anderson disorder of strength ``W = disorder`` (eV).

        One on-site energy per site, uniform in ``[−W/2, W/2]``, the same for
        both spins, drawn as ``disorder_generator(seed, realisation).uniform(
        −W/2, W/2, size=num_sites)`` (sites in orbital order); it depends on
        ``(seed, realisation)`` only, not on m̂.
        """
        shape = _lattice.check_shape(shape)
        disorder = _real("real_space", "disorder", disorder, "nonnegative", "eV")
        seed = check_seed(seed)
        realisation = check_seed(realisation, "realisation")
        dtype = check_dtype(dtype)
        num_sites = shape[0] * shape[1] * self.lattice.num_sublattices
        energies = None
        if disorder > 0:
            energies = disorder_generator(seed, realisation).uniform(-disorder / 2, disorder / 2, size=num_sites)
        hamiltonian = assemble(
            2 * num_sites, 2, self._onsite_terms(shape, energies), self._hopping_terms(shape), dtype=dtype
        )
        return System(self, shape, disorder, seed, realisation, dtype, hamiltonian, energies)


# --------------------------------------------------------------------------- lattice models
@dataclass(frozen=True)
class GrapheneRashba(_LatticeModel):
    """Honeycomb graphene with Rashba SOC, exchange and staggered mass.

    ``H = −t Σ_⟨ij⟩ c_i†c_j + Δ Σ_i ξ_i c_i†c_i + i(λ_R/3) Σ_⟨ij⟩ c_i† [(s × d̂_ij)·ẑ] c_j
    − (J_ex/2) Σ_i c_i† m̂·s c_i`` with ``ξ = +1`` on A, ``−1`` on B and ``d̂_ij``
    the unit bond vector from i to j.  At K this reduces to the continuum
    ``Δσ_z − (λ_R/2)(s × σ)·ẑ − (J_ex/2) m̂·s`` (:class:`Dirac`).

    Parameters (eV, nm): ``t`` > 0, ``rashba`` λ_R, ``exchange`` J_ex, ``mass``
    Δ, ``magnetization`` m̂ (unit vector), ``lattice_constant`` a > 0.
    """

    t: float = _param(2.7, "positive", "eV")
    rashba: float = _param(0.0, "real", "eV")
    exchange: float = _param(0.0, "real", "eV")
    mass: float = _param(0.0, "real", "eV")
    magnetization: tuple = _param((0.0, 0.0, 1.0), "unit")
    lattice_constant: float = _param(0.246, "positive", "nm")

    @cached_property
    def lattice(self) -> _lattice.Lattice:
        return _lattice.honeycomb(self.lattice_constant)

    @property
    def valleys(self) -> np.ndarray:
        """Rows ``K = (4π/(3a), 0)`` and ``K' = −K`` (nm⁻¹)."""
        kx = 4 * np.pi / (3 * self.lattice_constant)
        return np.array([[kx, 0.0], [-kx, 0.0]])

    def _onsite_blocks(self):
        exchange = -0.5 * self.exchange * _spin_matrix(self.magnetization)
        return [self.mass * PAULI["0"] + exchange, -self.mass * PAULI["0"] + exchange]

    def _bond_blocks(self):
        blocks = []
        for bond in self.lattice.bonds:
            unit = bond.vector / np.linalg.norm(bond.vector)
            blocks.append(-self.t * PAULI["0"] + 1j * (self.rashba / 3) * _rashba_bond_matrix(unit))
        return blocks


@dataclass(frozen=True)
class Rashba2DEGLattice(_LatticeModel):
    """Square-lattice discretisation of the Rashba 2DEG (:class:`Rashba2DEG`).

    ``H(k) = 2t(2 − cos k_x a − cos k_y a) − (λ_R/2)(s_y sin(k_x a) − s_x sin(k_y a))/a
    − (J_ex/2) m̂·s`` with ``t = ħ²/(2 m a²)``: on-site ``4t − (J_ex/2) m̂·s``
    (band bottom at 0) and, along each bond ``d``, the hopping
    ``−t − i(λ_R/(4a)) [(s × d̂)·ẑ]``.  It equals the continuum model up to
    relative corrections ``(ka)²/6``.

    Parameters: ``mass`` in m_e (> 0), ``rashba`` λ_R in eV·nm, ``exchange``
    J_ex in eV, ``magnetization`` m̂, ``lattice_constant`` a in nm (> 0).  The
    default a = 0.25 nm gives t ≈ 0.61 eV for m = m_e: at ε_F = 0.1 eV the
    band dispersion deviates from the parabola by ≈ 1.4 %, while a 1024²
    supercell still spans 256 nm.
    """

    mass: float = _param(1.0, "positive", "m_e")
    rashba: float = _param(0.0, "real", "eV·nm")
    exchange: float = _param(0.0, "real", "eV")
    magnetization: tuple = _param((0.0, 0.0, 1.0), "unit")
    lattice_constant: float = _param(0.25, "positive", "nm")

    @cached_property
    def lattice(self) -> _lattice.Lattice:
        return _lattice.square(self.lattice_constant)

    @property
    def hopping(self) -> float:
        """``t = ħ²/(2 m a²)`` (eV)."""
        return HBAR2_OVER_2ME / (self.mass * self.lattice_constant**2)

    def _onsite_blocks(self):
        return [4 * self.hopping * PAULI["0"] - 0.5 * self.exchange * _spin_matrix(self.magnetization)]

    def _bond_blocks(self):
        rashba = self.rashba / (4 * self.lattice_constant)
        return [
            -self.hopping * PAULI["0"] - 1j * rashba * _rashba_bond_matrix(bond.vector / np.linalg.norm(bond.vector))
            for bond in self.lattice.bonds
        ]


# --------------------------------------------------------------------------- continuum models
@dataclass(frozen=True)
class Rashba2DEG(_Model):
    """Continuum Rashba 2DEG (the paper's Eq. 12), basis ↑ ↓.

    ``H(k) = ħ²k²/(2m) − (λ_R k/2) φ̂·s − (J_ex/2) m̂·s`` with ``φ̂ = ẑ × k̂``,
    i.e. ``−(λ_R/2)(k_x s_y − k_y s_x)``.  ``mass`` in m_e, ``rashba`` in eV·nm,
    ``exchange`` in eV.
    """

    mass: float = _param(1.0, "positive", "m_e")
    rashba: float = _param(0.0, "real", "eV·nm")
    exchange: float = _param(0.0, "real", "eV")
    magnetization: tuple = _param((0.0, 0.0, 1.0), "unit")

    orbitals_per_cell = 2

    def bloch(self, k, xp=np):
        k = _as_k(k, xp)
        s = {name: xp.asarray(PAULI[name]) for name in ("0", "x", "y")}
        kx, ky = k[..., 0, None, None], k[..., 1, None, None]
        kinetic = HBAR2_OVER_2ME / self.mass * (kx**2 + ky**2) * s["0"]
        rashba = -0.5 * self.rashba * (kx * s["y"] - ky * s["x"])
        return kinetic + rashba - 0.5 * self.exchange * xp.asarray(_spin_matrix(self.magnetization))

    def spectral_bound(self, k, xp=np):
        """``(centres, radius)`` (eV): both eigenvalues lie within ``|λ_R| |k|/2 + |J_ex|/2``
        of ``ħ²k²/(2m)`` (exactly: ``E = ħ²k²/(2m) ± |b|``, ``|b| ≤ |λ_R k|/2 + |J_ex|/2``)."""
        k = _as_k(k, xp)
        k2 = (k**2).sum(axis=-1)
        return (HBAR2_OVER_2ME / self.mass * k2)[..., None], 0.5 * abs(self.rashba) * xp.sqrt(k2) + 0.5 * abs(
            self.exchange)

    def bloch_derivative(self, k, xp=np):
        """``(∂H/∂k_x, ∂H/∂k_y) = (ħ²k_x/m − (λ_R/2) s_y, ħ²k_y/m + (λ_R/2) s_x)`` (eV·nm)."""
        k = _as_k(k, xp)
        velocity = 2 * HBAR2_OVER_2ME / self.mass * k[..., :, None, None] * xp.asarray(PAULI["0"])
        spin = xp.asarray(0.5 * self.rashba * np.stack([-PAULI["y"], PAULI["x"]]))
        return velocity + spin


@dataclass(frozen=True)
class Dirac(_Model):
    """Continuum massive Dirac model with Rashba SOC and exchange, basis A↑ A↓ B↑ B↓.

    ``H(k) = ħv k·σ + Δσ_z − (λ_R/2)(s × σ)·ẑ − (J_ex/2) m̂·s`` (``σ ⊗ s``
    ordering), ``(s × σ)·ẑ = s_x σ_y − s_y σ_x``.  ``hbar_v`` in eV·nm (default:
    graphene's ``(√3/2) t a``), ``rashba`` λ_R, ``exchange`` J_ex and ``mass``
    Δ in eV.

    It is graphene's expansion about K (:meth:`from_graphene`): the hopping
    to first order in q = k − K, the Rashba term at zeroth order (its
    O(λ_R q a) gradient is dropped).  The other valley is the time-reversed
    partner, ``spec H_graphene(K' + q; m̂) = spec H_Dirac(−q; −m̂)``, which
    differs from valley K for a general m̂ (already at q = 0 when Δ, λ_R and
    J_ex m_z are all non-zero): a two-valley continuum sum must add that
    partner, not count valley K twice.
    """

    hbar_v: float = _param(math.sqrt(3) / 2 * 2.7 * 0.246, "positive", "eV·nm")
    rashba: float = _param(0.0, "real", "eV")
    exchange: float = _param(0.0, "real", "eV")
    mass: float = _param(0.0, "real", "eV")
    magnetization: tuple = _param((0.0, 0.0, 1.0), "unit")

    orbitals_per_cell = 4

    @classmethod
    def from_graphene(cls, model: GrapheneRashba) -> Dirac:
        """The K-valley expansion of ``model``: ``ħv = (√3/2) t a``, same λ_R, J_ex, Δ, m̂."""
        return cls(
            hbar_v=math.sqrt(3) / 2 * model.t * model.lattice_constant,
            rashba=model.rashba,
            exchange=model.exchange,
            mass=model.mass,
            magnetization=model.magnetization,
        )

    @cached_property
    def _terms(self) -> tuple[np.ndarray, np.ndarray]:
        """``(H(0), ∂H/∂k)``: the k-independent part and ``ħv (σ_x ⊗ 1, σ_y ⊗ 1)``."""
        s, eye = PAULI, PAULI["0"]
        rashba = np.kron(s["y"], s["x"]) - np.kron(s["x"], s["y"])
        constant = (
            self.mass * np.kron(s["z"], eye)
            - 0.5 * self.rashba * rashba
            - 0.5 * self.exchange * np.kron(eye, _spin_matrix(self.magnetization))
        )
        velocity = self.hbar_v * np.stack([np.kron(s["x"], eye), np.kron(s["y"], eye)])
        return constant, velocity

    def bloch(self, k, xp=np):
        constant, velocity = (xp.asarray(a) for a in self._terms)
        return constant + xp.einsum("...m,mij->...ij", _as_k(k, xp), velocity)

    def spectral_bound(self, k, xp=np):
        """``(centres, radius)`` (eV): every eigenvalue lies within ``|λ_R| + |J_ex|/2`` of
        ``±√((ħv|k|)² + Δ²)``, the spectrum of ``ħv k·σ + Δσ_z`` (Weyl; ``‖(s × σ)·ẑ‖ = 2``,
        since ``(s_xσ_y − s_yσ_x)² = 2 − 2 s_zσ_z``)."""
        k = _as_k(k, xp)
        e0 = xp.sqrt(self.hbar_v**2 * (k**2).sum(axis=-1) + self.mass**2)
        return xp.stack([-e0, e0], axis=-1), abs(self.rashba) + 0.5 * abs(self.exchange)

    def bloch_derivative(self, k, xp=np):
        """``(∂H/∂k_x, ∂H/∂k_y) = ħv (σ_x ⊗ 1, σ_y ⊗ 1)`` (eV·nm), k independent."""
        k = _as_k(k, xp)
        velocity = xp.asarray(self._terms[1])
        return xp.broadcast_to(velocity, k.shape[:-1] + velocity.shape).copy()


MODELS = {cls.__name__: cls for cls in (GrapheneRashba, Rashba2DEGLattice, Rashba2DEG, Dirac)}


def model_from_dict(mapping):
    """Rebuild any model from its :meth:`to_dict` form (dispatch on the ``"model"`` key)."""
    name = mapping.get("model")
    if name not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}, got {name!r}")
    return MODELS[name].from_dict(mapping)


# --------------------------------------------------------------------------- real-space system
@dataclass(frozen=True, eq=False)
class System:
    """A periodic real-space supercell: H (CSR, eV) and lazily built operators.

    ``site_energies`` holds the Anderson on-site energies (eV, one per site;
    ``None`` for a pristine system).  ``operator(name)`` gives ``"sx", "sy",
    "sz"`` (Pauli, dimensionless) and the ħ-free currents ``"jx", "jy" =
    −i[H, X]`` (eV·nm), all CSR in the dtype of H, built once and cached.
    """

    model: _LatticeModel
    shape: tuple[int, int]
    disorder: float
    seed: int
    realisation: int
    dtype: np.dtype
    hamiltonian: object = field(repr=False)
    site_energies: np.ndarray | None = field(default=None, repr=False)
    _operators: dict = field(default_factory=dict, init=False, repr=False)

    @property
    def lattice(self) -> _lattice.Lattice:
        return self.model.lattice

    @property
    def num_sites(self) -> int:
        return self.shape[0] * self.shape[1] * self.lattice.num_sublattices

    @property
    def num_orbitals(self) -> int:
        return 2 * self.num_sites

    @property
    def area(self) -> float:
        """Supercell area ``L1 L2 × cell area`` (nm²)."""
        return self.shape[0] * self.shape[1] * self.model.cell_area

    @cached_property
    def positions(self) -> np.ndarray:
        """Orbital positions ``(num_orbitals, 2)`` (nm), both spins of a site at the site."""
        return np.repeat(self.lattice.site_positions(self.shape), 2, axis=0)

    @property
    def parameters(self) -> dict:
        """JSON-able record of everything that defines the system."""
        return {
            **self.model.to_dict(),
            "shape": list(self.shape),
            "disorder": self.disorder,
            "seed": self.seed,
            "realisation": self.realisation,
            "dtype": self.dtype.name,
        }

    def operator(self, name: str):
        """CSR operator ``"sx", "sy", "sz", "jx"`` or ``"jy"`` (cached)."""
        if name not in OPERATOR_NAMES:
            raise ValueError(f"operator name must be one of {OPERATOR_NAMES}, got {name!r}")
        if name not in self._operators:
            if name in SPIN_NAMES:
                matrix = spin_operator(name[1], self.num_sites, self.dtype)
            else:
                hoppings = self.model._hopping_terms(self.shape)
                matrix = current_operator(name[1], hoppings, self.num_orbitals, 2, self.dtype)
            self._operators[name] = matrix
        return self._operators[name]

    def stencil(self, name: str):
        """:class:`~gpukpm.models.stencil.CellStencil` of ``"H"`` or an operator name (cached).

        It represents the same matrix as :attr:`hamiltonian` / :meth:`operator`
        without column indices; the CPU engine steps with it.
        """
        key = ("stencil", name)
        if key not in self._operators:
            self._operators[key] = lattice_stencil(self.model, self.shape, name, self.site_energies, self.dtype)
        return self._operators[key]

    def with_magnetization(self, magnetization) -> System:
        """The same supercell and disorder realisation with another m̂."""
        return self.model.with_magnetization(magnetization).real_space(
            self.shape, self.disorder, self.seed, self.realisation, self.dtype
        )
