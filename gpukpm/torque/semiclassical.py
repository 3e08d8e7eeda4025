r"""Semiclassical (Boltzmann) spin-orbit torques: the closed forms of the paper.

This module evaluates the Boltzmann-theory results of Medina Dueñas, García and
Roche, "Emerging Spin-Orbit Torques in Low Dimensional Dirac Materials"
(``shared/paper``: main-text Eqs. 4-7, supplement Eqs. 8-14 and the section on
the Dirac system), in the units and sign conventions of ``CONVENTIONS.md``.

Units
-----
Energies in eV, momenta ``k`` in nm⁻¹, the 2DEG Rashba constant ``λ_R`` in
eV·nm, ``ħv`` in eV·nm, effective masses in units of ``m_e``
(``ħ²/(2m_e) = 0.0380998 eV·nm²``), relaxation times ``τ`` in seconds,
``ħ = 6.582119569e-16 eV·s`` and ``e = 1``.  Every response ``χ`` is in
(V·nm)⁻¹ (= 1/(eV·nm) with e = 1): spin density (Pauli ``s``, eigenvalues ±1,
per nm²) per electric field (V/nm).  The paper sets ħ = 1; here ħ is restored:
the paper's ``k²/(2m)`` is ``ħ²k²/(2 m m_e) = (0.0380998/m) k²`` eV, only the
Fermi-surface terms carry ``τ/ħ``, and the Fermi-sea terms carry no ħ (the
``eħ`` of the paper's Eq. 5 is the ħ = 1 bookkeeping of ``∇_p = ∇_k/ħ``).

Model
-----
``H_k = H0(k) − ½ Λ_R(k) φ̂·s − ½ J_ex m̂·s``, ``φ̂ = ẑ × k̂`` (paper Eq. 7 of
the main text / supplement Eq. 12).  To leading order the bands are
``E_μ(k) = H0(k) − (μ/2) B0(k)``, ``B0 = (J_ex² + Λ_R²)^{1/2}``, with spin
texture ``s_μ = μ B̂`` (``μ = +``: majority, lower band).  The magnetisation
enters at first order through ``−(μ/2)(J_ex Λ_R/B0)(m̂·φ̂)`` (Eq. 8), so the
theory is an expansion in ``J_ex Λ_R/B0²`` (exchange- or Rashba-dominated).

Output and decomposition (CONVENTIONS "Torque decomposition")
-------------------------------------------------------------
Every public function returns a dict of numpy arrays over ``energies``::

    chi_FL, chi_DL, chi_par, chi_perp, xi_FL, chi_torqueless

to be read in ``S/E = χ_FL (1 − ξ_FL sin²θ) H_SOC − χ_DL m̂ × H_SOC
− (χ_∥ cos φ + χ_⊥ cos θ sin φ) sin θ ẑ − χ_tl (m̂·H_SOC) m̂`` with
``H_SOC = ẑ × Ê`` (``= ŷ`` for ``E ∥ x̂``), θ, φ the polar angle and azimuth
(from E) of m̂.  ``chi_perp`` and ``xi_FL`` are zeros (see "Validity").

Signs: what is flipped relative to the paper, and why
-----------------------------------------------------
The Fermi-sea (adiabatic) terms of the paper are derived with the electron
equation of motion ``ħ k̇ = −eE`` (Eq. 5), and the paper's Eq. 10b reads, for
``E ∥ x̂``, ``S^sea = −χ_DL m̂ × ŷ E − χ_∥ m_x E ẑ`` with the paper's
Eqs. 7/14b and 10b/14c: **chi_DL and chi_par keep the paper's sign.**

The paper's Fermi-surface occupation ``δf = +(eτ/ħ) δ(ε_F − E)(E·∇_k E)``
is that of carriers drifting along +E.  For electrons the Boltzmann equation
``k̇·∇_k f = −δf/τ`` with ``ħ k̇ = −eE`` gives
``δf = −τ k̇·∇_k f0 = (eτ/ħ)(E·∇_k E) ∂f0/∂E = −(eτ/ħ) δ(ε_F − E)(E·∇_k E)``,
the opposite sign.  The whole Fermi-surface term (Eq. 10a) therefore flips:
**chi_FL = −(paper Eq. 6/14a)** and **chi_torqueless = −(paper's torque-less
coefficient)**, ``S_tl = −χ_tl (m̂·H_SOC) m̂`` having the same form in the
paper (Eq. 14d) and in CONVENTIONS.  With ``m̂ = ẑ`` this gives
``S_x = +χ_DL^paper`` (sea) and ``S_y = −χ_FL^paper`` (surface), as
CONVENTIONS states for the Kubo-Bastin sea/surface split.  A consequence: in
the exchange-dominated limit the paper's ``χ_DL = (ħ/(τ J_ex)) χ_FL`` reads
``chi_DL = −(ħ/(τ J_ex)) chi_FL`` here (the paper's
``τ = (ħ/J_ex) χ_FL/χ_DL`` holds for magnitudes).

The relaxation time of a Lorentzian broadening ``η`` (imaginary part of the
Green-function energy, ``G⁺ = (ε − H + iη)⁻¹``) is ``τ = ħ/(2η)``
(:func:`tau_from_broadening`).

The torque-less term: a term missing from the paper's Eq. 10a
-------------------------------------------------------------
Eq. 10a evaluates the surface integral on the isotropic contour ``k_μ`` and
drops the contour shift ``δk_μ (m̂·φ̂)`` of Eq. 9, which the paper does keep in
the sea term (10b).  At the same (first) order in ``m̂·φ̂`` the shift adds to
the ``(H_SOC·m̂) m̂`` coefficient, per contour,
``e τ J² k Λ_R² ∂_kΛ_R / (8π ħ B0⁴ |∂_k E_μ|)`` (paper sign); for the parabolic
2DEG ``e τ J² λ³ k² / (4π ħ B³ |4aB − μλ²|)``.  It is 1-2 % of Eq. 14d in the
exchange-dominated regime but dominates in the Rashba-dominated one, where it
reverses the sign of Eq. 14d.  A direct numerical evaluation of Eq. 4 for a
slightly tilted ``m̂`` (``tests/test_semiclassical.py``) agrees with the
complete coefficient and not with Eq. 14d.  ``chi_torqueless`` is the complete
coefficient; ``paper_torqueless=True`` returns Eq. 10a/14d as printed (sign
flipped as above) to reproduce the paper's curves.

Validity
--------
The first-order formulas are exact consequences of Eq. 4 (Boltzmann +
adiabatic spin texture, Eq. 5) for ``m̂ = ẑ`` and to linear order in the
in-plane component of ``m̂`` (checked numerically to 1e-7).  For a finite
in-plane component the exact Eq. 4 has corrections of relative order
``(J Λ_R/B0²)² sin²θ``; in particular ``χ_⊥ = ξ_FL = 0`` is a statement of the
first-order theory (to first order in ``m̂·φ̂`` the surface term has only the
structures ``H_SOC`` and ``(H_SOC·m̂) m̂``, and the out-of-plane sea term only
``(m̂·E) ẑ``), and these two coefficients are returned as zeros.  Two
consequences for comparisons with Kubo fits over many m̂: (i) near ``m̂ = ẑ``
the surface ``S_z ∝ m_y m_z`` is what a fit shares between ``χ_tl`` and
``χ_⊥``; this theory assigns it to ``χ_tl``; (ii) in the exchange-dominated
regime ``χ_∥/χ_DL`` is itself ``O((Λ_R/J)²)``, the size of the neglected
in-plane corrections to the DL term, so at ``m̂ = x̂`` the exact ``S_z`` is not
``−(χ_DL + χ_∥)`` to better than that order.

General isotropic formulas (what :func:`isotropic_2deg` evaluates)
-----------------------------------------------------------------
Per band μ, the Fermi contours are all roots ``k_i`` of ``E_μ(k) = ε_F`` with
velocity sign ``σ_i = sign ∂_k E_μ(k_i)`` (σ = −1: hole-like contour, occupied
states at ``k > k_i``); the Fermi sea is ``Θ(ε_F − E_μ(k))``.  Writing
``Λ_i = Λ_R(k_i)``, ``Λ'_i = ∂_kΛ_R(k_i)``, ``B_i = B0(k_i)``,
``v_i = ∂_k E_μ(k_i)``::

    chi_FL         = −Σ_μ Σ_i μ σ_i e τ k_i Λ_i / (4π ħ B_i)                     (6, 10a)
    chi_torqueless = −Σ_μ Σ_i e τ J² [μ σ_i k_i Λ_i / B_i³
                                      + k_i Λ_i² Λ'_i / (2 B_i⁴ |v_i|)] / (4π ħ)  (10a + shift)
    chi_DL         =  Σ_μ μ (e J/4π) ∫_0^∞ dk Θ(ε_F − E_μ) ∂_k(kΛ_R)/B0³           (7)
    chi_par        =  Σ_μ [ Σ_i (e J/8π) Λ_i³ / (B_i⁴ |v_i|)
                            − μ (3 e J/4π) ∫_0^∞ dk Θ(ε_F − E_μ) Λ_R³/B0⁵ ]       (10b)

For an electron-like contour (σ = +1) these are term by term Eqs. 6, 7, 10a,
10b (with the FL/torque-less sign flip and the contour-shift term above); the
hole-like generalisation follows from the same δ-function and step-function
integrals (the shift ``δk_μ`` of Eq. 9 enters through
``δ(ε_F − E_μ) = δ(k − k_i)/|∂_k E_μ|``).  Because the sea integrands do not
depend on μ, the band sums are evaluated as
``∫ [Θ(ε_F − E_+) − Θ(ε_F − E_−)] (...)``: a fully occupied pair of bands
cancels point by point and the integrals stay finite (Dirac valence bands).
A band with no Fermi contour contributes no surface term.  Near a band edge at
finite ``k`` (``∂_k E_μ → 0``) the ``1/|v_i|`` terms diverge: the expansion
fails there, as the paper warns (Fig. 4b, yellow region).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy import integrate, optimize

__all__ = [
    "HBAR",
    "HBAR2_OVER_2ME",
    "tau_from_broadening",
    "isotropic_2deg",
    "rashba_2deg",
    "dirac",
]

HBAR = 6.582119569e-16  # eV·s
HBAR2_OVER_2ME = 0.0380998  # ħ²/(2 m_e), eV·nm²
_E = 1.0  # elementary charge (CONVENTIONS: e = 1)

_KEYS = ("chi_FL", "chi_DL", "chi_par", "chi_perp", "xi_FL", "chi_torqueless")


# --------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------
def _finite(name: str, value, *, positive: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and not x > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return x


def _relaxation_times(tau, size: int) -> np.ndarray:
    """τ (s) as an array over the ``size`` energies: a scalar or one value per energy, all > 0 and finite."""
    try:
        t = np.asarray(tau, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"tau must be a real number or a 1-D array over energies (s), got {tau!r}") from None
    if t.ndim > 1 or (t.ndim == 1 and t.size != size):
        raise ValueError(f"tau must be a scalar or a 1-D array with one value per energy ({size}), got shape {t.shape}")
    if not (np.all(np.isfinite(t)) and np.all(t > 0)):
        raise ValueError(f"tau must be finite and > 0 (s), got {tau!r}")
    return np.broadcast_to(t, (size,)).copy()


def _energies(energies) -> np.ndarray:
    try:
        e = np.atleast_1d(np.asarray(energies, dtype=float))
    except (TypeError, ValueError):
        raise ValueError(f"energies must be real numbers, got {energies!r}") from None
    if e.ndim != 1 or e.size == 0:
        raise ValueError(f"energies must be a non-empty scalar or 1-D array, got shape {e.shape}")
    if not np.all(np.isfinite(e)):
        raise ValueError("energies must be finite")
    return e


def _result(n: int) -> dict[str, np.ndarray]:
    return {key: np.zeros(n) for key in _KEYS}


def tau_from_broadening(eta) -> float:
    """Momentum relaxation time ``τ = ħ/(2η)`` in seconds for a broadening η in eV.

    ``η`` is the imaginary part of the Green-function energy,
    ``G⁺(ε) = (ε − H + iη)⁻¹`` (CONVENTIONS; the paper's ``τ = ħ/η`` uses another
    definition of η).
    """
    eta = _finite("eta", eta, positive=True)
    return HBAR / (2.0 * eta)


# --------------------------------------------------------------------------
# general isotropic route
# --------------------------------------------------------------------------
def _numerical_derivative(f: Callable, step: float) -> Callable:
    """Fourth-order finite-difference derivative of ``f`` for ``k >= 0``.

    Central differences where ``k >= 2·step``, the one-sided five-point formula
    below that.
    """

    def df(k):
        k = np.asarray(k, dtype=float)
        h = step  # |k − h|: the central branch is discarded where k < 2h, but f sees k >= 0 only
        central = (-f(k + 2 * h) + 8 * f(k + h) - 8 * f(np.abs(k - h)) + f(np.abs(k - 2 * h))) / (12 * h)
        forward = (-25 * f(k) + 48 * f(k + h) - 36 * f(k + 2 * h) + 16 * f(k + 3 * h) - 3 * f(k + 4 * h)) / (12 * h)
        return np.where(k >= 2 * h, central, forward)

    return df


class _Band:
    """One band ``E_μ(k) = H0 − (μ/2) B0`` on ``[0, k_max]`` split into monotonic pieces."""

    def __init__(self, mu: int, h0, lam, dh0, dlam, exchange: float, k_max: float, n_grid: int):
        self.mu = mu
        self._h0, self._lam, self._dh0, self._dlam, self._j = h0, lam, dh0, dlam, exchange
        grid = np.linspace(0.0, k_max, n_grid)
        values = self.energy(grid)
        if not np.all(np.isfinite(values)):
            raise ValueError("h0 and rashba_field must be finite on [0, k_max]")
        nodes = [0.0]
        slope = np.sign(np.diff(values))
        for j in range(1, n_grid - 1):
            if slope[j - 1] != 0 and slope[j] != 0 and slope[j - 1] != slope[j]:
                sgn = 1.0 if slope[j - 1] < 0 else -1.0  # minimum: +, maximum: −
                res = optimize.minimize_scalar(
                    lambda k: sgn * float(self.energy(k)),
                    bounds=(grid[j - 1], grid[j + 1]),
                    method="bounded",
                    options={"xatol": 1e-13 * k_max},
                )
                nodes.append(float(res.x))
        nodes.append(k_max)
        self.nodes = np.array(nodes)
        self.node_values = self.energy(self.nodes)

    def energy(self, k):
        return self._h0(k) - 0.5 * self.mu * np.hypot(self._j, self._lam(k))

    def velocity(self, k):
        """``∂_k E_μ = H0' − (μ/2) Λ Λ'/B0`` (eV·nm)."""
        lam = self._lam(k)
        b0 = np.hypot(self._j, lam)
        return self._dh0(k) - 0.5 * self.mu * np.where(b0 > 0, lam * self._dlam(k) / np.where(b0 > 0, b0, 1.0), 0.0)

    def contours(self, ef: float) -> list[float]:
        """All ``k`` in ``[0, k_max)`` with ``E_μ(k) = ε_F`` (one per monotonic piece)."""
        roots = []
        f = self.node_values - ef
        for a, b, fa, fb in zip(self.nodes[:-1], self.nodes[1:], f[:-1], f[1:]):
            if fa == 0.0:
                roots.append(float(a))
            elif fa * fb < 0:
                roots.append(
                    optimize.brentq(lambda k: float(self.energy(k)) - ef, a, b, xtol=1e-15 * self.nodes[-1], rtol=1e-15)
                )
        return sorted(set(roots))


def isotropic_2deg(
    energies,
    h0: Callable,
    rashba_field: Callable,
    exchange,
    tau,
    k_max,
    *,
    dh0: Callable | None = None,
    drashba: Callable | None = None,
    n_grid: int = 4001,
    paper_torqueless: bool = False,
) -> dict[str, np.ndarray]:
    r"""Boltzmann SOT of a general isotropic 2DEG (paper Eqs. 6-10, electron signs).

    ``H_k = H0(k) − ½ Λ_R(k) φ̂·s − ½ J_ex m̂·s``.  Evaluates the formulas of the
    module docstring ("General isotropic formulas") at each Fermi energy: all
    Fermi contours of both bands μ = ± (hole-like ones with the velocity sign),
    sea integrals over ``Θ(ε_F − E_μ(k))`` by adaptive quadrature.

    Parameters
    ----------
    energies : float or 1-D array
        Fermi energies ε_F (eV).
    h0, rashba_field : callable
        ``H0(k)`` and ``Λ_R(k)`` in eV for ``k >= 0`` in nm⁻¹; must accept numpy
        arrays.
    exchange : float
        ``J_ex`` (eV); ``J_ex = 0`` gives ``chi_DL = chi_par = chi_torqueless = 0``.
    tau : float or 1-D array
        Momentum relaxation time (s), > 0: a scalar or one value per energy.
    k_max : float
        Momentum cutoff (nm⁻¹): every Fermi contour must lie below it and, at
        ``k_max``, the two bands must be both empty or both occupied at every
        energy (checked: a ``ValueError`` otherwise).
    dh0, drashba : callable, optional
        ``∂_k H0`` and ``∂_k Λ_R`` (eV·nm); fourth-order finite differences with
        step ``1e-4 k_max`` if omitted.
    n_grid : int
        Points of the grid on ``[0, k_max]`` used to locate band extrema (the
        contours are then found exactly between consecutive extrema).
    paper_torqueless : bool
        If True, ``chi_torqueless`` is Eq. 10a as printed (without the
        contour-shift term, see the module docstring).

    Returns
    -------
    dict of 1-D arrays over ``energies``: ``chi_FL``, ``chi_DL``, ``chi_par``,
    ``chi_perp`` (zeros), ``xi_FL`` (zeros), ``chi_torqueless``, in (V·nm)⁻¹
    (``xi_FL`` dimensionless).
    """
    ef_all = _energies(energies)
    j = _finite("exchange", exchange)
    taus = _relaxation_times(tau, ef_all.size)
    k_max = _finite("k_max", k_max, positive=True)
    if not callable(h0):
        raise ValueError("h0 must be callable")
    if not callable(rashba_field):
        raise ValueError("rashba_field must be callable")
    if int(n_grid) != n_grid or n_grid < 16:
        raise ValueError(f"n_grid must be an integer >= 16, got {n_grid!r}")
    step = 1e-4 * k_max
    dh0 = dh0 if dh0 is not None else _numerical_derivative(h0, step)
    dlam = drashba if drashba is not None else _numerical_derivative(rashba_field, step)
    bands = {mu: _Band(mu, h0, rashba_field, dh0, dlam, j, k_max, int(n_grid)) for mu in (1, -1)}

    def sea_integrands(k):
        lam = rashba_field(k)
        b0 = np.hypot(j, lam)
        return np.array([(lam + k * dlam(k)) / b0**3, lam**3 / b0**5], dtype=float)

    out = _result(ef_all.size)
    for n, ef in enumerate(ef_all):
        tau = taus[n]
        fl = tl = par = dl = 0.0
        roots = []
        for mu, band in bands.items():
            for k in band.contours(ef):
                roots.append(k)
                lam = float(rashba_field(k))
                b0 = math.hypot(j, lam)
                v = float(band.velocity(k))
                if b0 == 0.0 or k == 0.0 or v == 0.0:
                    continue
                sigma = math.copysign(1.0, v)
                fl += mu * sigma * _E * tau * k * lam / (4 * math.pi * HBAR * b0)
                tl += mu * sigma * _E * tau * k * lam * j**2 / (4 * math.pi * HBAR * b0**3)
                if not paper_torqueless:  # contour shift δk_μ, missing from Eq. 10a
                    tl += _E * tau * j**2 * k * lam**2 * float(dlam(k)) / (8 * math.pi * HBAR * b0**4 * abs(v))
                par += _E * j * lam**3 / (8 * math.pi * b0**4 * abs(v))
        occ = {mu: band.energy(k_max) < ef for mu, band in bands.items()}
        if occ[1] != occ[-1]:
            raise ValueError(
                f"k_max = {k_max} too small: at ε_F = {ef} one band is occupied at k_max and the other is not"
            )
        if j != 0.0:
            edges = np.unique(np.concatenate([[0.0, k_max], roots]))
            for a, b in zip(edges[:-1], edges[1:]):
                mid = 0.5 * (a + b)
                weight = float(bands[1].energy(mid) < ef) - float(bands[-1].energy(mid) < ef)
                if weight == 0.0 or b <= a:
                    continue
                val, _ = integrate.quad_vec(sea_integrands, a, b, epsabs=0.0, epsrel=1e-11, limit=500)
                dl += weight * _E * j * val[0] / (4 * math.pi)
                par -= weight * 3 * _E * j * val[1] / (4 * math.pi)
        out["chi_FL"][n] = -fl
        out["chi_torqueless"][n] = -tl
        out["chi_DL"][n] = dl
        out["chi_par"][n] = par
    return out


# --------------------------------------------------------------------------
# parabolic 2DEG: closed forms (Eqs. 13, 14a-d)
# --------------------------------------------------------------------------
def rashba_2deg(energies, mass, rashba, exchange, tau, *, paper_torqueless: bool = False) -> dict[str, np.ndarray]:
    r"""Closed-form Boltzmann SOT of the parabolic Rashba 2DEG (paper Eqs. 13, 14).

    ``H_k = a k² − (λ_R k/2) φ̂·s − (J_ex/2) m̂·s`` with ``a = ħ²/(2 m m_e)
    = 0.0380998/mass`` eV·nm² (the paper's ``1/(2 m_eff)`` at ħ = 1).

    Fermi contours (Eq. 13 with ħ restored): ``k² = ε_F/a + λ²/(8a²) ± (1/2a) S^{1/2}``,
    ``S = J² + ε_F λ²/a + λ⁴/(16 a²)``; each positive root is assigned to its band
    ``μ_b = sign(a k² − ε_F)`` and velocity sign ``σ = sign(4 a B − μ_b λ²)``,
    ``B = (J² + λ² k²)^{1/2}``, and ``c = μ_b σ``.  Then, per contour,
    with ``r = |J|/B``::

        chi_FL         = −c e τ λ k²/(4π ħ B)                     (−Eq. 14a)
        chi_torqueless = −c e τ J² λ k²/(4π ħ B³)                 (−Eq. 14d)
                         − e τ J² λ³ k²/(4π ħ B³ |4aB − μ_b λ²|)  (contour shift)
        chi_DL         =  c sgn(J) e (1 − r)/(2π λ)               ( Eq. 14b)
        chi_par        =  e J λ³ k²/(4π B³ |4aB − μ_b λ²|)
                          − c sgn(J) e (1 − r)² (2 + r)/(4π λ)    ( Eq. 14c)

    summed over contours.  ``(1 − r)/λ = λk²/(B(B + |J|))`` is used, so λ → 0 is
    regular.  For electron-like contours (σ = +1, μ_b = the ± of Eq. 13) and
    ``J ≥ 0`` this is Eqs. 14a–d term by term (14b, 14c as printed assume J ≥ 0;
    the ``sgn(J)``, ``|J|`` form follows from the integrals of Eqs. 7 and 10b).
    The only other case is the Rashba-dominated band-edge region
    ``ε_edge < ε_F < −J/2`` (``J < mλ²/2``), where the "−" root of Eq. 13 is the
    inner, hole-like contour of band +: there c = −1 reproduces 14a, 14b, 14d
    and the sea part of 14c with μ = −, but the contour term of 14c must use
    ``|∂_k E_+|`` (``|4aB − λ²|``), not the printed ``2μB − mλ²`` with μ = −.

    The contour-shift term of ``chi_torqueless`` is missing from the paper's
    Eqs. 10a/14d (module docstring); ``paper_torqueless=True`` drops it.

    Parameters: ``energies`` (eV), ``mass`` (m_e, > 0), ``rashba`` λ_R (eV·nm),
    ``exchange`` J_ex (eV), ``tau`` (s, > 0; a scalar or one value per energy, e.g.
    :func:`gpukpm.response.kernels.relaxation_time` of the KPM kernel being compared).  Returns the dict described in the
    module docstring, (V·nm)⁻¹.
    """
    ef = _energies(energies)
    mass = _finite("mass", mass, positive=True)
    lam = _finite("rashba", rashba)
    j = _finite("exchange", exchange)
    tau = _relaxation_times(tau, ef.size)
    a = HBAR2_OVER_2ME / mass
    aj = abs(j)
    sgn_j = float(np.sign(j))
    out = _result(ef.size)
    disc = j**2 + ef * lam**2 / a + lam**4 / (16 * a**2)
    for s in (1.0, -1.0):
        with np.errstate(invalid="ignore"):
            k2 = ef / a + lam**2 / (8 * a**2) + s * np.sqrt(disc) / (2 * a)
        valid = (disc > 0) & (k2 > 0)
        k2 = np.where(valid, k2, 0.0)
        b = np.sqrt(j**2 + lam**2 * k2)
        mu_b = np.sign(a * k2 - ef)
        slope = 4 * a * b - mu_b * lam**2
        valid &= (b > 0) & (mu_b != 0) & (slope != 0)
        c = np.where(valid, mu_b * np.sign(slope), 0.0)
        bs = np.where(valid, b, 1.0)
        r = aj / bs
        one_minus_r_over_lam = lam * k2 / (bs * (bs + aj))
        out["chi_FL"] -= c * _E * tau * lam * k2 / (4 * math.pi * HBAR * bs)
        abs_slope = np.where(valid, np.abs(slope), 1.0)
        out["chi_torqueless"] -= c * _E * tau * j**2 * lam * k2 / (4 * math.pi * HBAR * bs**3)
        if not paper_torqueless:
            out["chi_torqueless"] -= np.where(
                valid, _E * tau * j**2 * lam**3 * k2 / (4 * math.pi * HBAR * bs**3 * abs_slope), 0.0
            )
        out["chi_DL"] += c * sgn_j * _E * one_minus_r_over_lam / (2 * math.pi)
        out["chi_par"] += np.where(
            valid,
            _E * j * lam**3 * k2 / (4 * math.pi * bs**3 * abs_slope)
            - c * sgn_j * _E * one_minus_r_over_lam * (1 - r) * (2 + r) / (4 * math.pi),
            0.0,
        )
    return out


# --------------------------------------------------------------------------
# Dirac mapping
# --------------------------------------------------------------------------
def dirac(
    energies,
    hbar_v,
    rashba,
    exchange,
    mass,
    tau,
    *,
    valleys: int = 1,
    k_max=None,
    n_grid: int = 4001,
    paper_torqueless: bool = False,
) -> dict[str, np.ndarray]:
    r"""Boltzmann SOT of the massive Dirac model via the paper's 2DEG mapping.

    Model (one valley): ``ħv k·σ + Δσ_z − (λ_R/2)(s × σ)·ẑ − (J_ex/2) m̂·s``.
    To first order in λ_R each pseudospin sector ν = ± (conduction/valence) is
    an isotropic 2DEG (supplement, last section) with::

        H0_ν(k) = ν (x² + Δ²)^{1/2},   Λ_R,ν(k) = −ν λ_R x/(x² + Δ²)^{1/2},   x = ħv k,

    and the result is ``valleys × Σ_ν`` :func:`isotropic_2deg` (each sector summed
    over μ = ±).  Fully occupied band pairs (the valence sector for ε_F above it)
    cancel point by point in the sea integrals, so nothing depends on the
    cutoff.  The mapping neglects spin-pseudospin correlations and fails near
    band crossings (charge neutrality), as the paper states.

    Parameters
    ----------
    energies : Fermi energies (eV).
    hbar_v : ħv (eV·nm), > 0.
    rashba : λ_R (eV) of the Dirac model.
    exchange : J_ex (eV).
    mass : Δ (eV); only Δ² enters.
    tau : relaxation time (s), > 0: a scalar or one value per energy (the surface terms are
        linear in τ, the sea terms independent of it).
    valleys : int, default 1
        The model above is ONE valley and the result is per valley; it is
        multiplied by ``valleys``.  A graphene lattice has two valleys: the K'
        Hamiltonian (Kane-Mele valley form ``ħv(η k_x σ_x + k_y σ_y)``,
        ``(λ_R/2)(η σ_x s_y − σ_y s_x)``, η = −1) is the K one with Δ → −Δ
        after the pseudospin rotation ``σ_y (·) σ_y``, which leaves the spin
        untouched, and only Δ² enters here, so the two valleys contribute
        equally; pass ``valleys=2`` to compare with a lattice
        calculation (per unit area of the lattice).
    k_max : float, optional
        Momentum cutoff (nm⁻¹); default ``(2 max|ε_F| + 2 (J² + λ²)^{1/2} + |Δ|)/ħv``
        (at least 1 meV/ħv), beyond every Fermi contour.
    n_grid, paper_torqueless :
        As in :func:`isotropic_2deg`.

    Returns the dict described in the module docstring, (V·nm)⁻¹.
    """
    ef = _energies(energies)
    hv = _finite("hbar_v", hbar_v, positive=True)
    lam = _finite("rashba", rashba)
    j = _finite("exchange", exchange)
    delta = _finite("mass", mass)
    tau = _relaxation_times(tau, ef.size)
    if isinstance(valleys, bool) or int(valleys) != valleys or valleys < 1:
        raise ValueError(f"valleys must be a positive integer, got {valleys!r}")
    if k_max is None:
        k_max = max(2 * float(np.max(np.abs(ef))) + 2 * math.hypot(j, lam) + abs(delta), 1e-3) / hv
    k_max = _finite("k_max", k_max, positive=True)

    total = _result(ef.size)
    for nu in (1, -1):

        def radius(k):
            return np.hypot(hv * np.asarray(k, dtype=float), delta)

        def unit(k):  # x/R, with its k → 0⁺ limit 1 when Δ = 0
            r = radius(k)
            return np.where(r > 0, hv * np.asarray(k, dtype=float) / np.where(r > 0, r, 1.0), 1.0)

        def h0(k, nu=nu):
            return nu * radius(k)

        def dh0(k, nu=nu):
            return nu * hv * unit(k)

        def lam_nu(k, nu=nu):
            return -nu * lam * unit(k)

        def dlam_nu(k, nu=nu):
            r = radius(k)
            return np.where(r > 0, -nu * lam * hv * delta**2 / np.where(r > 0, r, 1.0) ** 3, 0.0)

        part = isotropic_2deg(
            ef, h0, lam_nu, j, tau, k_max, dh0=dh0, drashba=dlam_nu, n_grid=n_grid, paper_torqueless=paper_torqueless
        )
        for key in _KEYS:
            total[key] += part[key]
    for key in _KEYS:
        total[key] *= int(valleys)
    return total
