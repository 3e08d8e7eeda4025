r"""KPM kernels and the broadening they imply.

A truncated Chebyshev series is damped by kernel factors ``g_n`` (Weiße et
al., Rev. Mod. Phys. 78, 275 (2006)):

* Jackson: ``g_n = [(N − n + 1) cos(πn/(N+1)) + sin(πn/(N+1)) cot(π/(N+1))]/(N+1)``;
  a δ function becomes a near-Gaussian of width ``≈ π/N`` in rescaled units, so
  ``η ≈ π a/N`` eV at the band centre.
* Lorentz: ``g_n = sinh(λ(1 − n/N))/sinh λ``; the series then equals the
  Green function at complex energy, a Lorentzian of half-width
  ``η(ε) = (λ a/N) √(1 − x²)`` with ``x = (ε − b)/a`` (``η = λa/N`` at the band
  centre, CONVENTIONS).  ``τ = ħ/(2η)``.

``a`` is the half-width of the rescaling ``H̃ = (H − b)/a`` (eV).

Relaxation time of a kernel (comparisons with Boltzmann theory)
---------------------------------------------------------------
The Fermi-surface (intraband) term is ``∝ ∫ dE δ_K(ε − E)² F(E)`` with δ_K the
kernel-broadened δ function; for a smooth F it is ``F(ε) ∫ δ_K²``.  A
Lorentzian of half-width η has ``∫ δ_η² = 1/(2πη)``, and Boltzmann theory
maps that to ``τ/ħ = 1/(2η)``.  In θ = arccos x the kernel's δ at θ₀ is, away
from the edges, ``K(θ − θ₀)/(a sin θ₀)`` with ``K(φ) = (1/2π)(1 + 2Σ_{n≥1} g_n cos nφ)``,
so by Parseval ``∫ δ_K² dE = (1 + 2Σ_{n≥1} g_n²)/(2π a sin θ₀)``.  The Lorentzian
with the same integral has the *effective* half-width and relaxation time

    η_eff(ε) = a √(1 − x²) / (1 + 2 Σ_{n=1}^{N−1} g_n²),    τ(ε) = ħ/(2 η_eff(ε)).

For the Lorentz kernel this is λa√(1 − x²)/N to O(1/N) (0.995 of it at λ = 4);
for the Jackson kernel ``τ ≈ 1.85 ħ/(2η_J(ε))`` with η_J = πa√(1 − x²)/N
(:func:`relaxation_time`; tested against the Kubo surface part and the
Boltzmann closed forms in ``tests/test_kspace_physics.py``).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = [
    "KERNELS",
    "jackson",
    "lorentz",
    "kernel_factors",
    "broadening",
    "broadening_at",
    "num_moments_for",
    "effective_broadening",
    "relaxation_time",
    "DEFAULT_LORENTZ_LAMBDA",
]

HBAR = 6.582119569e-16  # eV·s (CONVENTIONS)

DEFAULT_LORENTZ_LAMBDA = 4.0
KERNELS = ("jackson", "lorentz")


def _check_n(num_moments) -> int:
    if isinstance(num_moments, bool) or int(num_moments) != num_moments or num_moments < 2:
        raise ValueError(f"num_moments must be an integer >= 2, got {num_moments!r}")
    return int(num_moments)


def jackson(num_moments: int) -> np.ndarray:
    """Jackson kernel factors g_n, n = 0..N−1."""
    N = _check_n(num_moments)
    n = np.arange(N)
    q = math.pi / (N + 1)
    return ((N - n + 1) * np.cos(q * n) + np.sin(q * n) / math.tan(q)) / (N + 1)


def lorentz(num_moments: int, lam: float = DEFAULT_LORENTZ_LAMBDA) -> np.ndarray:
    """Lorentz kernel factors ``g_n = sinh(λ(1 − n/N))/sinh λ``."""
    N = _check_n(num_moments)
    if not (np.isfinite(lam) and lam > 0):
        raise ValueError(f"lorentz_lambda must be > 0, got {lam!r}")
    n = np.arange(N)
    return np.sinh(lam * (1.0 - n / N)) / math.sinh(lam)


def kernel_factors(kernel: str, num_moments: int, lam: float = DEFAULT_LORENTZ_LAMBDA) -> np.ndarray:
    """Kernel factors by name (``"jackson"`` or ``"lorentz"``)."""
    if kernel == "jackson":
        return jackson(num_moments)
    if kernel == "lorentz":
        return lorentz(num_moments, lam)
    raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")


def broadening(kernel: str, a: float, num_moments: int, lam: float = DEFAULT_LORENTZ_LAMBDA) -> float:
    """Broadening η (eV) at the band centre: π a/N (Jackson) or λ a/N (Lorentz)."""
    N = _check_n(num_moments)
    if kernel == "jackson":
        return math.pi * a / N
    if kernel == "lorentz":
        return lam * a / N
    raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")


def broadening_at(kernel: str, energies, a: float, b: float, num_moments: int,
                  lam: float = DEFAULT_LORENTZ_LAMBDA) -> np.ndarray:
    """Energy-dependent broadening η(ε) = η_centre √(1 − x²), x = (ε − b)/a (eV)."""
    x = (np.asarray(energies, dtype=float) - b) / a
    return broadening(kernel, a, num_moments, lam) * np.sqrt(np.clip(1.0 - x**2, 0.0, 1.0))


def num_moments_for(kernel: str, eta: float, a: float, lam: float = DEFAULT_LORENTZ_LAMBDA) -> int:
    """Smallest N whose band-centre broadening is ≤ η (eV)."""
    if not (np.isfinite(eta) and eta > 0):
        raise ValueError(f"eta must be > 0 eV, got {eta!r}")
    scale = {"jackson": math.pi, "lorentz": lam}.get(kernel)
    if scale is None:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    return max(2, math.ceil(scale * a / eta - 1e-9))


def effective_broadening(kernel: str, energies, a: float, b: float, num_moments: int,
                         lam: float = DEFAULT_LORENTZ_LAMBDA) -> np.ndarray:
    """Lorentzian-equivalent half-width ``η_eff(ε) = a√(1 − x²)/(1 + 2Σ_{n≥1} g_n²)`` (eV).

    The η of the Lorentzian whose ``∫ δ²`` equals the kernel's (module docstring):
    the broadening that sets a Fermi-surface response, for any kernel.
    """
    g = kernel_factors(kernel, num_moments, lam)
    x = (np.asarray(energies, dtype=float) - b) / a
    return a * np.sqrt(np.clip(1.0 - x**2, 0.0, 1.0)) / (1.0 + 2.0 * float(np.sum(g[1:] ** 2)))


def relaxation_time(kernel: str, energies, a: float, b: float, num_moments: int,
                    lam: float = DEFAULT_LORENTZ_LAMBDA) -> np.ndarray:
    """Momentum relaxation time ``τ(ε) = ħ/(2 η_eff(ε))`` (s) equivalent to a KPM kernel.

    Use it for the Fermi-surface terms of a Boltzmann comparison (they are
    linear in τ); the Fermi-sea terms do not depend on τ.  Raises at the
    expansion edges (|x| ≥ 1), where no finite τ corresponds.
    """
    eta = effective_broadening(kernel, energies, a, b, num_moments, lam)
    if np.any(eta <= 0):
        raise ValueError(f"energies must lie strictly inside the expansion interval ({b - a:.6g}, {b + a:.6g}) eV "
                         "to have a relaxation time")
    return HBAR / (2.0 * eta)
