"""The :class:`Moments` hand-off type: raw Chebyshev moments per sample, with the rescaling,
the operators, the density D/Ω and provenance that reconstruction needs; and
:func:`concatenate`, which joins the samples of several runs of one expansion.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from gpukpm.engine.spectrum import Rescaling
from gpukpm.engine.stats import mean_and_stderr

__all__ = ["Moments", "concatenate"]


@dataclass
class Moments:
    """Raw Chebyshev moments with everything reconstruction needs.

    ``mu_samples`` has shape (S, n_left, N, N) for 2D moments (S samples: one
    per random vector, or a single exact-trace sample) or (S, n_left, N) for
    1D moments.  ``a``, ``b`` (eV) define H̃ = (H − b)/a; ``emin``, ``emax`` are
    the estimated spectral edges (eV); ``num_orbitals`` D and ``area`` Ω (nm²)
    give the density D/Ω that turns per-orbital traces into per-area values.
    """

    mu_samples: np.ndarray
    a: float
    b: float
    emin: float
    emax: float
    num_orbitals: float
    area: float
    left: tuple
    right: str | None
    trace: str  # "exact", "stochastic" or "kspace"
    sample_realisations: np.ndarray
    sample_vectors: np.ndarray
    seed: int = 0
    epsilon: float = 0.01
    hermitian: bool = True
    parameters: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    @property
    def num_moments(self) -> int:
        return int(self.mu_samples.shape[2])

    @property
    def num_samples(self) -> int:
        return int(self.mu_samples.shape[0])

    @property
    def ndim(self) -> int:
        """1 for 1D moments μ_n, 2 for 2D moments μ_nm."""
        return self.mu_samples.ndim - 2

    @property
    def scaling(self) -> Rescaling:
        return Rescaling(self.a, self.b, self.emin, self.emax, self.epsilon)

    @property
    def mu(self) -> np.ndarray:
        """Mean moments, shape (n_left, N, N) (or (n_left, N))."""
        return mean_and_stderr(self.mu_samples, self.sample_realisations)[0]

    @property
    def stderr(self) -> np.ndarray:
        """Standard error of :attr:`mu` (complex: errors of real and imaginary parts)."""
        return mean_and_stderr(self.mu_samples, self.sample_realisations)[1]

    @property
    def orbital_density(self) -> float:
        """D/Ω (orbitals per nm²)."""
        return self.num_orbitals / self.area

    def truncated(self, num_moments: int) -> "Moments":
        """The same moments with only the first ``num_moments`` orders."""
        if not 2 <= num_moments <= self.num_moments:
            raise ValueError(f"num_moments must be in [2, {self.num_moments}], got {num_moments}")
        sl = (slice(None), slice(None)) + (slice(0, num_moments),) * self.ndim
        return replace(self, mu_samples=self.mu_samples[sl])



def concatenate(parts) -> Moments:
    """One Moments holding the samples of several runs of the same expansion.

    The runs must share a, b, N, operators, trace kind, seed and model
    parameters other than the realisation; samples keep their realisation
    and vector ids, in the order given.
    """
    parts = list(parts)
    if not parts:
        raise ValueError("concatenate needs at least one Moments")
    first = parts[0]
    for other in parts[1:]:
        for key in ("a", "b", "left", "right", "trace", "seed", "num_moments", "epsilon"):
            if getattr(other, key) != getattr(first, key):
                raise ValueError(f"cannot combine moments with different {key}: "
                                 f"{getattr(first, key)!r} vs {getattr(other, key)!r}")
        if other.provenance.get("estimator") != first.provenance.get("estimator"):
            raise ValueError(f"cannot combine moments with different estimator: "
                             f"{first.provenance.get('estimator')!r} vs {other.provenance.get('estimator')!r}")
    samples = np.concatenate([p.mu_samples for p in parts])
    params = {k: v for k, v in first.parameters.items() if k != "realisation"}
    params["realisations"] = sorted({int(r) for p in parts for r in p.sample_realisations})
    return replace(
        first, mu_samples=samples,
        emin=min(p.emin for p in parts), emax=max(p.emax for p in parts),
        sample_realisations=np.concatenate([p.sample_realisations for p in parts]),
        sample_vectors=np.concatenate([p.sample_vectors for p in parts]),
        parameters=params,
        provenance=dict(first.provenance, parts=[p.provenance for p in parts]),
    )
