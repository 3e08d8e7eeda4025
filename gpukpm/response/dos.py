r"""Density of states from 1D moments ``μ_n = Tr[T_n(H̃)]/D``.

    ρ(ε) = (D/N_cells) (1/a) Σ_n g_n μ_n T_n(x) · 2/((1 + δ_n0) π √(1 − x²)),   x = (ε − b)/a,

in states per unit cell per eV (spin included), so that ∫ρ dε equals the
number of orbitals per cell.  Errors are the standard errors over samples.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpukpm.response import kernels as _kernels
from gpukpm.engine.moments import Moments
from gpukpm.engine.stats import mean_and_stderr

__all__ = ["DensityOfStates", "dos"]


@dataclass
class DensityOfStates:
    energies: np.ndarray  # eV
    values: np.ndarray  # states / (cell eV)
    stderr: np.ndarray
    kernel: str
    num_moments: int
    eta: float  # band-centre broadening (eV)
    orbitals_per_cell: float
    units: str = "1/(eV cell)"


def dos(moments: Moments, energies, kernel: str = "jackson", *, orbitals_per_cell: float | None = None,
        num_moments: int | None = None, lorentz_lambda: float = _kernels.DEFAULT_LORENTZ_LAMBDA
        ) -> DensityOfStates:
    """Kernel-broadened DOS per unit cell per eV on ``energies`` (eV)."""
    if not isinstance(moments, Moments) or moments.ndim != 1:
        raise ValueError("dos needs 1D moments (from dos_moments)")
    energies = np.atleast_1d(np.asarray(energies, dtype=float))
    x = (energies - moments.b) / moments.a
    if np.any(np.abs(x) >= 1):
        lo, hi = moments.b - moments.a, moments.b + moments.a
        raise ValueError(f"energies must lie inside the expansion interval ({lo:.6g}, {hi:.6g}) eV")
    N = moments.num_moments if num_moments is None else int(num_moments)
    if not 2 <= N <= moments.num_moments:
        raise ValueError(f"num_moments must be in [2, {moments.num_moments}], got {num_moments}")
    if orbitals_per_cell is None:
        shape = moments.parameters.get("shape")
        orbitals_per_cell = moments.num_orbitals / np.prod(shape) if shape else 1.0
    g = _kernels.kernel_factors(kernel, N, lorentz_lambda)
    n = np.arange(N)
    basis = np.cos(n[None, :] * np.arccos(x)[:, None])  # T_n(x)
    weight = 2.0 * g / np.where(n == 0, 2.0, 1.0) / (np.pi * moments.a)
    per_sample = (moments.mu_samples[:, 0, :N].real * weight) @ basis.T / np.sqrt(1 - x**2)
    per_sample *= orbitals_per_cell
    mean, err = mean_and_stderr(per_sample, moments.sample_realisations)
    return DensityOfStates(energies=energies, values=mean, stderr=err, kernel=kernel, num_moments=N,
                           eta=_kernels.broadening(kernel, moments.a, N, lorentz_lambda),
                           orbitals_per_cell=float(orbitals_per_cell))
