r"""Kubo-Bastin against Boltzmann theory with one broadening: the conventional torques at m̂ = ẑ.

The semiclassical closed forms (:mod:`gpukpm.torque.semiclassical`) are exact at
``m̂ = ẑ`` and first order in the in-plane components of m̂, so the comparison
is made where both sides are defined without an angular fit: with ``E ∥ x̂``
and ``m̂ = ẑ`` the decomposition gives ``S_y = χ_FL`` and ``S_x = χ_DL``, and

* ``χ_DL`` is the Fermi-sea ``S_x``: independent of τ, compared as it is
  (from Jackson moments it carries no kernel bias; the Lorentz kernel's tails
  cut at the band bottom bias it, see ``kubo_response``'s warning);
* ``χ_FL`` is the Fermi-surface ``S_y``: linear in τ, compared with the
  Boltzmann value at the relaxation time of the kernel actually used,
  ``τ(ε) = ħ/(2η_eff(ε))`` (:func:`gpukpm.response.kernels.relaxation_time`:
  ≈ 1.85 ħ/(2η_J) for Jackson, ħ/(2η(ε)) for Lorentz).

Torque fits over many m̂ also absorb the higher angular harmonics that the
first-order theory leaves out (relative order (λ_R k_F/J_ex)² in the exchange-
dominated 2DEG), so their χ_DL differs from the m̂ = ẑ value by that much.
"""
from __future__ import annotations

import numpy as np

from gpukpm.torque import semiclassical
from gpukpm.models.hamiltonians import Dirac, GrapheneRashba, Rashba2DEG, Rashba2DEGLattice

__all__ = ["boltzmann_reference", "boltzmann_threshold", "conventional_torques", "dirac_semigap"]


def boltzmann_reference(model, energies, tau, valleys: int | None = None) -> tuple[dict, str]:
    """Semiclassical χ's ((V·nm)⁻¹) of a gpukpm model, and a label naming the closed form used.

    GrapheneRashba and Dirac: the Dirac mapping with ``ħv = (√3/2) t a``
    (two valleys for graphene unless ``valleys`` says otherwise, one for the
    continuum Dirac model); Rashba2DEG and Rashba2DEGLattice (its continuum
    limit): the parabolic 2DEG, Eqs. 13-14.  ``tau``: relaxation time (s), a
    scalar or one per energy.
    """
    if isinstance(model, GrapheneRashba):
        dirac = Dirac.from_graphene(model)
        valleys = 2 if valleys is None else valleys
    elif isinstance(model, Dirac):
        dirac, valleys = model, 1 if valleys is None else valleys
    elif isinstance(model, (Rashba2DEG, Rashba2DEGLattice)):
        return (semiclassical.rashba_2deg(energies, model.mass, model.rashba, model.exchange, tau),
                "semiclassical (Rashba 2DEG, Eqs. 13-14)")
    else:
        raise ValueError(f"no semiclassical closed form for model {type(model).__name__}")
    values = semiclassical.dirac(energies, dirac.hbar_v, dirac.rashba, dirac.exchange, dirac.mass, tau,
                                 valleys=valleys)
    return values, f"semiclassical (Dirac mapping, {valleys} valley{'s' if valleys > 1 else ''})"


def conventional_torques(sea, surface) -> dict:
    """χ_DL = Fermi-sea S_x and χ_FL = Fermi-surface S_y of responses at m̂ = ẑ (module docstring).

    ``sea``, ``surface``: :class:`gpukpm.response.kubo.Response` of (sx, sy, sz) with
    magnetisation (0, 0, 1).  Returns ``{"chi_DL", "chi_DL_stderr", "chi_FL",
    "chi_FL_stderr", "tau"}`` over the energies, τ (s) that of the surface
    response's kernel.
    """
    for resp in (sea, surface):
        m = resp.metadata.get("magnetization")
        if m is None or not np.allclose(m, (0.0, 0.0, 1.0), atol=1e-12):
            raise ValueError(f"the conventional torques need responses at m = (0, 0, 1), got magnetization {m}")
    if sea.part != "sea" or surface.part != "surface":
        raise ValueError(f"need a 'sea' and a 'surface' response, got {sea.part!r} and {surface.part!r}")
    return {"chi_DL": sea["sx"], "chi_DL_stderr": sea.error("sx"),
            "chi_FL": surface["sy"], "chi_FL_stderr": surface.error("sy"),
            "tau": surface.relaxation_time()}


def _dirac_like(model) -> bool:
    return isinstance(model, (GrapheneRashba, Dirac))


def boltzmann_threshold(model, eta: float) -> tuple[float, bool]:
    """Where Boltzmann theory is compared (eV): ``(threshold, absolute)``.

    Dirac-like models (GrapheneRashba, Dirac): away from charge neutrality, ``|ε_F| > |J_ex|/2 + |Δ| + 3η``
    (``absolute`` True); the 2DEGs: above the pseudogap, ``ε_F > |J_ex|/2 + 3η``.
    """
    mass = abs(model.mass) if _dirac_like(model) else 0.0
    return abs(model.exchange) / 2 + mass + 3 * eta, _dirac_like(model)


def dirac_semigap(model, eta: float) -> tuple[float, float] | None:
    """The Dirac semi-gap ``|J_ex/2 − Δ| < |ε_F| < J_ex/2 + Δ`` shrunk by 3η at both edges (eV), where one spin
    band crosses the Fermi level and τ = (ħ/J_ex)|χ_FL/χ_DL|; None for the 2DEGs or J_ex = 0."""
    if not _dirac_like(model) or model.exchange == 0:
        return None
    half, mass = abs(model.exchange) / 2, abs(model.mass)
    return abs(half - mass) + 3 * eta, half + mass - 3 * eta
