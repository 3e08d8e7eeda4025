r"""Spectral bounds and the KPM rescaling ``H̃ = (H − b)/a``.

The Chebyshev recursion is stable only when the spectrum of ``H̃`` lies inside
[−1, 1].  Bounds come from a Lanczos estimate on the active backend (extreme
Ritz values lie inside the spectrum, so they are padded by the Ritz residual
and a fraction of the width) or from Gershgorin discs (rigorous, looser).
The rescaling then puts the padded interval on ``[−1 + ε, 1 − ε]``:

    a = (E_max − E_min) / (2 − 2ε),   b = (E_max + E_min)/2.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.sparse

from gpukpm.engine.backend import get_backend

__all__ = ["Rescaling", "lanczos_bounds", "gershgorin_bounds", "rescaling", "SpectrumLeakError",
           "margin_for", "sweep_bounds", "sweep_rescaling"]

DEFAULT_EPSILON = 0.01


def margin_for(num_moments: int | None) -> float:
    """Margin ε for N moments: ``max(0.01, min(0.2, 3000/N²))``.

    The Fermi-sea integral must stop short of x = −1 (there the 1/sin³θ factors
    amplify truncation error).  Edge states at x = −1 + ε sit at θ = π − √(2ε);
    their kernel broadening has width ≈ λ/N in θ (Lorentz; π/N Jackson), and
    the Lorentzian tails beyond the integration start are lost.  ε = 3000/N²
    keeps the start ≈ 10 Lorentz widths below the edge (≈ 3 % of an edge
    state's tail weight; negligible for Jackson), and costs nothing for the
    large N of production runs (ε = 0.01 for N ≥ 548).
    """
    if num_moments is None:
        return DEFAULT_EPSILON
    return float(max(DEFAULT_EPSILON, min(0.2, 3000.0 / float(num_moments) ** 2)))


class SpectrumLeakError(RuntimeError):
    """The rescaled spectrum is not inside [−1, 1]: the recursion diverges."""


@dataclass(frozen=True)
class Rescaling:
    """``H̃ = (H − b)/a`` with the estimated spectral edges (eV)."""

    a: float
    b: float
    emin: float  # estimated lowest eigenvalue (unpadded)
    emax: float  # estimated highest eigenvalue (unpadded)
    epsilon: float = DEFAULT_EPSILON

    def to_rescaled(self, energies):
        return (np.asarray(energies, dtype=float) - self.b) / self.a

    def from_rescaled(self, x):
        return self.a * np.asarray(x, dtype=float) + self.b


def gershgorin_bounds(hamiltonian) -> tuple[float, float]:
    """Rigorous bounds ``min_i (H_ii − R_i), max_i (H_ii + R_i)``, R_i = Σ_{j≠i} |H_ij| (eV)."""
    H = scipy.sparse.csr_matrix(hamiltonian)
    diag = H.diagonal().real
    radius = np.asarray(abs(H).sum(axis=1)).ravel() - np.abs(H.diagonal())
    return float((diag - radius).min()), float((diag + radius).max())


def lanczos_bounds(hamiltonian, steps: int = 80, backend=None, seed: int = 20240229) -> tuple[float, float, float]:
    """Extreme Ritz values of ``steps`` Lanczos iterations and the larger residual (eV).

    No reorthogonalisation: ghost copies do not move the extreme Ritz values.
    Returns ``(θ_min, θ_max, residual)``; the true edges lie within
    ``residual`` outside [θ_min, θ_max] once the extreme Ritz pairs converge.
    """
    be = get_backend(backend)
    xp = be.xp
    H = be.csr(hamiltonian, dtype=np.complex128)  # the Lanczos vectors are complex
    dim = H.shape[0]
    steps = int(min(steps, dim))
    rng = np.random.default_rng(seed)
    v = be.asarray(rng.standard_normal(dim) + 1j * rng.standard_normal(dim))
    v /= xp.linalg.norm(v)
    v_prev = xp.zeros_like(v)
    alphas, betas = [], []
    beta = 0.0
    for _ in range(steps):
        w = H @ v - beta * v_prev
        alpha = float(xp.vdot(v, w).real)
        w -= alpha * v
        beta = float(xp.linalg.norm(w))
        alphas.append(alpha)
        betas.append(beta)
        if beta < 1e-12 * max(1.0, abs(alpha)):
            break
        v_prev, v = v, w / beta
    T = np.diag(alphas) + np.diag(betas[:-1], 1) + np.diag(betas[:-1], -1)
    theta, s = np.linalg.eigh(T)
    residuals = abs(betas[-1] * s[-1, :])
    return float(theta[0]), float(theta[-1]), float(max(residuals[0], residuals[-1]))


def rescaling(hamiltonian, bounds=None, method: str = "lanczos", epsilon: float = DEFAULT_EPSILON,
              pad: float = 0.01, backend=None) -> Rescaling:
    """The rescaling (a, b) for a Hamiltonian.

    ``bounds``: (E_min, E_max) given by hand (eV) — used as they are;
    otherwise ``method`` ``"lanczos"`` (padded by the Ritz residual plus
    ``pad`` × width) or ``"gershgorin"``.  ``epsilon`` is the margin kept
    inside [−1, 1].
    """
    if not (0 < epsilon < 0.5):
        raise ValueError(f"epsilon must be in (0, 0.5), got {epsilon!r}")
    if bounds is not None:
        emin, emax = (float(v) for v in bounds)
        if not (np.isfinite(emin) and np.isfinite(emax) and emax > emin):
            raise ValueError(f"bounds must be finite with E_max > E_min, got {bounds!r}")
        lo, hi = emin, emax
    elif method == "gershgorin":
        emin, emax = gershgorin_bounds(hamiltonian)
        lo, hi = emin, emax
    elif method == "lanczos":
        emin, emax, res = lanczos_bounds(hamiltonian, backend=backend)
        width = max(emax - emin, 1e-12)
        lo, hi = emin - res - pad * width, emax + res + pad * width
        g_lo, g_hi = gershgorin_bounds(hamiltonian)
        lo, hi = max(lo, g_lo), min(hi, g_hi)  # Gershgorin is rigorous: never pad beyond it
    else:
        raise ValueError(f"method must be 'lanczos' or 'gershgorin', got {method!r}")
    if hi <= lo:
        hi, lo = lo + 1.0, lo - 1.0  # a scalar spectrum: any interval around it
    a = (hi - lo) / (2.0 - 2.0 * epsilon)
    b = (hi + lo) / 2.0
    return Rescaling(a=float(a), b=float(b), emin=float(emin), emax=float(emax), epsilon=float(epsilon))


def sweep_bounds(model, disorders) -> tuple[float, float]:
    """Rigorous spectral bounds (eV) valid for every m̂ and every Anderson W of a sweep.

    Gershgorin discs of the exchange-free pristine lattice model (translation
    invariant: a 6 × 6 periodic supercell gives those of the infinite lattice),
    widened by ``|J_ex|/2 + max(W)/2``: the exchange ``−(J/2) m̂·s`` has norm
    |J|/2 for every m̂ and the disorder norm ≤ W/2, and no eigenvalue moves
    further than the norm of what is added (Weyl).
    """
    disorders = [float(w) for w in disorders]
    if not disorders or min(disorders) < 0 or not all(np.isfinite(disorders)):
        raise ValueError(f"disorders must be a non-empty list of W >= 0 (eV), got {disorders!r}")
    if not hasattr(model, "real_space"):
        raise ValueError(f"sweep_bounds needs a lattice model with a real-space form, got {type(model).__name__}")
    exchange = float(getattr(model, "exchange", 0.0))
    bare = dataclasses.replace(model, exchange=0.0) if exchange else model
    lo, hi = gershgorin_bounds(bare.real_space(shape=(6, 6)).hamiltonian)
    pad = 0.5 * abs(exchange) + 0.5 * max(disorders)
    return lo - pad, hi + pad


def sweep_rescaling(model, disorders, *, num_moments: int | None = None, eta: float | None = None,
                    kernel: str = "jackson", lorentz_lambda: float = 4.0, bounds=None) -> tuple[Rescaling, int]:
    """One rescaling and one N for a whole disorder sweep, so that every W has the same η(ε).

    The bounds are ``bounds`` (E_min, E_max) when given, else :func:`sweep_bounds` (those of the largest W), the margin
    ε = :func:`margin_for` (N).  Give ``num_moments`` N, or ``eta`` (eV, the
    band-centre broadening of ``kernel``): then N is the smallest with
    η(N) ≤ eta at the sweep's a(N) (ε, hence a, depends on N: an upward
    scan from the bound of the smallest a).  Returns ``(rescaling, N)``; ``gpukpm moments`` given these bounds
    and N reproduces the rescaling exactly.
    """
    from gpukpm.response.kernels import broadening, num_moments_for

    if (num_moments is None) == (eta is None):
        raise ValueError("give num_moments or eta (one of them)")
    lo, hi = sweep_bounds(model, disorders) if bounds is None else (float(bounds[0]), float(bounds[1]))
    if num_moments is not None:
        return rescaling(None, bounds=(lo, hi), epsilon=margin_for(num_moments)), int(num_moments)
    def eta_of(n: int) -> tuple[float, Rescaling]:
        scaling = rescaling(None, bounds=(lo, hi), epsilon=margin_for(n))
        return broadening(kernel, scaling.a, n, lorentz_lambda), scaling

    # η(N) decreases with N (a shrinks as ε = margin_for(N) does); the smallest a gives a lower bound on N
    N = num_moments_for(kernel, eta, (hi - lo) / (2 - 2 * DEFAULT_EPSILON), lorentz_lambda)
    while (found := eta_of(N))[0] > eta:
        N += 1
    return found[1], N
