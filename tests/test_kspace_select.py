"""k-space speed paths: k points selected by a spectral bound, moments by a type-1 NUFFT.

Units: eV, nm.  ``select="bound"`` must keep exactly the states that ``select="all"`` keeps, so
the moments agree to the round-off of a reordered pair sum (1e-12 relative to max|μ| over
all left operators: each μ_nm is a sum of ~10⁴ products of O(1) numbers, whose round-off
in any order is ≲ 1e-14 of max|μ|).  The NUFFT route computes the same sum as
``cos nθ = T_n(cos θ)`` to finufft's precision ``NUFFT_EPS`` = 1e-14 relative to Σ|c_p|;
with the arccos conditioning (≈ N ε_mach / √(2ε) per term) both routes agree to 1e-12 of max|μ|.
"""
import importlib.util
import math
import sys

import numpy as np
import pytest

from gpukpm import models
from gpukpm.engine.kspace import (NUFFT_EPS, MonkhorstPack, PolarGrid, SquareGrid, kspace_moments,
                           nufft_is_cheaper)

needs_finufft = pytest.mark.skipif(importlib.util.find_spec("finufft") is None, reason="finufft not installed")

RNG = np.random.default_rng(20261206)
FIG2 = dict(t=2.7, rashba=0.008, exchange=0.060, mass=0.008)
LEFT = ("sx", "sy", "sz")


def _unit(rng):
    v = rng.normal(size=3)
    return tuple(v / np.linalg.norm(v))


def _relative(a, b):
    """Largest deviation relative to the largest |μ| over all left operators."""
    return np.abs(a - b).max() / np.abs(b).max()


def _models():
    m = _unit(RNG)
    return [
        models.GrapheneRashba(t=2.7, rashba=0.3, exchange=0.5, mass=0.2, magnetization=m),
        models.GrapheneRashba(**FIG2, magnetization=m),
        models.Rashba2DEGLattice(mass=0.4, rashba=0.3, exchange=0.25, magnetization=m, lattice_constant=0.5),
        models.Rashba2DEG(mass=0.3, rashba=0.2, exchange=0.1, magnetization=m),
        models.Dirac(rashba=0.1, exchange=0.2, mass=0.05, magnetization=m),
    ]


# ----------------------------------------------------------------------------- the bound itself
@pytest.mark.parametrize("model", _models(), ids=lambda m: type(m).__name__)
def test_every_eigenvalue_lies_within_the_bound(model):
    """Weyl: each eigenvalue of H(k) is within ‖V‖ ≤ radius of an eigenvalue of the spin-free part."""
    k = RNG.uniform(-30.0, 30.0, size=(4000, 2))
    energies = np.linalg.eigvalsh(model.bloch(k))
    centres, radius = model.spectral_bound(k)
    distance = np.abs(energies[:, :, None] - centres[:, None, :]).min(axis=-1)
    assert np.all(distance <= np.asarray(radius)[..., None] * (1 + 1e-12) + 1e-12)


@pytest.mark.parametrize("model", [m for m in _models() if hasattr(m, "spectral_lipschitz")],
                         ids=lambda m: type(m).__name__)
def test_lattice_bound_centres_are_lipschitz(model):
    """``|c_i(k) − c_i(k')| ≤ L |k − k'|`` for the sorted centres (Weyl on ‖H₀(k) − H₀(k')‖)."""
    k = RNG.uniform(-30.0, 30.0, size=(4000, 2))
    dk = RNG.normal(size=(4000, 2)) * np.logspace(-4, 1, 4000)[:, None]
    c0, _ = model.spectral_bound(k)
    c1, _ = model.spectral_bound(k + dk)
    step = np.abs(c1 - c0).max(axis=1)
    assert np.all(step <= model.spectral_lipschitz * np.linalg.norm(dk, axis=1) * (1 + 1e-12) + 1e-13)


def test_graphene_radius_is_exchange_plus_rashba_and_tight_at_k():
    """v = |J_ex|/2 + |λ_R| (three bonds of Rashba norm |λ_R|/3); at K with only λ_R, max|E| = |λ_R| = v."""
    model = models.GrapheneRashba(rashba=-0.3, exchange=0.5, mass=0.2, magnetization=_unit(RNG))
    assert model.spectral_bound(model.valleys)[1] == pytest.approx(0.25 + 0.3, rel=1e-14)
    rashba_only = models.GrapheneRashba(rashba=0.3)
    e_k = np.linalg.eigvalsh(rashba_only.bloch(rashba_only.valleys[0]))
    assert np.abs(e_k).max() == pytest.approx(rashba_only.spectral_bound(rashba_only.valleys[:1])[1], rel=1e-12)


# ----------------------------------------------------------------------------- bound == all
def _grid(model):
    if isinstance(model, models.GrapheneRashba):
        return (60, 60) if model.rashba > 0.1 else MonkhorstPack(model.lattice, (300, 300), patch=((170, 60),
                                                                                                  (60, 70)))
    if isinstance(model, models.Rashba2DEGLattice):
        return (48, 40)
    if isinstance(model, models.Rashba2DEG):
        return PolarGrid(3.0, 40, 36, radial_rule="gauss")
    return SquareGrid(2.0, 80)


WINDOWS = {"GrapheneRashba": [(-1.2, 0.9), (-0.3, 0.3)], "Rashba2DEGLattice": [(0.05, 0.6)],
           "Rashba2DEG": [(0.02, 0.5)], "Dirac": [(0.1, 0.3)]}


@pytest.mark.parametrize("model", _models(), ids=lambda m: type(m).__name__)
def test_bound_selection_keeps_exactly_the_states_of_all(model):
    """Windows that cut through bands: same kept states, same rescaling, μ equal to 1e-12."""
    window = WINDOWS[type(model).__name__][0 if getattr(model, "rashba", 0) > 0.1 or
                                           not isinstance(model, models.GrapheneRashba) else 1]
    kw = dict(left=LEFT, num_moments=48, window=window, moments_route="gemm", progress=False)
    grid = _grid(model)
    ref = kspace_moments(model, grid, select="all", **kw)
    mom = kspace_moments(model, grid, **kw)
    p, q = mom.provenance, ref.provenance
    assert p["select"] == "bound" and q["select"] == "all"
    assert p["num_grid_k"] == q["num_grid_k"] == q["num_diagonalised_k"]
    assert 0 < p["num_kept_k"] == q["num_kept_k"] <= p["num_diagonalised_k"] < p["num_grid_k"]
    assert p["num_kept_states"] == q["num_kept_states"] and p["num_pairs"] == q["num_pairs"]
    assert (mom.emin, mom.emax, mom.a, mom.b) == (ref.emin, ref.emax, ref.a, ref.b)
    assert p["max_band_splitting"] == q["max_band_splitting"]
    assert _relative(mom.mu, ref.mu) < 1e-12


def test_bound_selection_on_a_wrapping_patch_with_bounds():
    """A patch across the zone boundary (starts < 0) with bounds given: same moments as 'all'."""
    model = models.GrapheneRashba(**FIG2, magnetization=_unit(RNG))
    grid = MonkhorstPack(model.lattice, (90, 90), patch=((-40, 70), (20, 45)))
    kw = dict(left=LEFT, num_moments=32, window=(-0.9, 0.8), bounds=(-1.0, 1.0), moments_route="gemm",
              chunk_size=50, progress=False)
    ref, mom = kspace_moments(model, grid, select="all", **kw), kspace_moments(model, grid, **kw)
    assert mom.provenance["num_kept_k"] == ref.provenance["num_kept_k"] > 0
    assert mom.provenance["num_diagonalised_k"] < grid.num_points
    assert _relative(mom.mu, ref.mu) < 1e-12


def test_fig2_window_diagonalises_under_two_percent_of_the_grid():
    """2000² graphene at the Fig. 2 couplings, ±0.3 eV: the kept region is two discs |q| ≲ 0.6 nm⁻¹
    (≈ 0.3 % of the zone); the bound widens it by (|J_ex|/2 + |λ_R|)/ħv ≈ 0.07 nm⁻¹."""
    model = models.GrapheneRashba(**FIG2, magnetization=(0.0, 0.0, 1.0))
    mom = kspace_moments(model, (2000, 2000), num_moments=2, window=(-0.3, 0.3), progress=False)
    p = mom.provenance
    assert p["num_grid_k"] == 2000**2
    assert p["num_kept_k"] <= p["num_diagonalised_k"] < 0.02 * p["num_grid_k"]


def test_without_a_window_every_point_is_diagonalised():
    model = models.Rashba2DEGLattice(rashba=0.2, exchange=0.1)
    mom = kspace_moments(model, (6, 5), num_moments=8, progress=False)
    assert mom.provenance["num_diagonalised_k"] == mom.provenance["num_grid_k"] == 30


# ----------------------------------------------------------------------------- NUFFT == GEMM
@needs_finufft
@pytest.mark.parametrize("model, grid, window, N", [
    (models.GrapheneRashba(**FIG2, magnetization=(0.6, 0.0, 0.8)), (500, 500), (-0.3, 0.3), 300),
    (models.Rashba2DEG(mass=0.3, rashba=0.2, exchange=0.1, magnetization=(0.0, 0.6, 0.8)),
     PolarGrid(3.0, 60, 48), (0.02, 0.5), 64),
], ids=["graphene", "2deg"])
def test_nufft_route_equals_gemm_route(model, grid, window, N):
    kw = dict(left=("sx", "sy", "sz", "jx"), num_moments=N, window=window, backend="cpu", progress=False)
    gemm = kspace_moments(model, grid, moments_route="gemm", **kw)
    nufft = kspace_moments(model, grid, moments_route="nufft", **kw)
    assert gemm.provenance["moments_route"] == "gemm" and nufft.provenance["moments_route"] == "nufft"
    assert nufft.provenance["nufft_eps"] == NUFFT_EPS and nufft.provenance["nufft_calls"] >= 1
    assert _relative(nufft.mu, gemm.mu) < 1e-12
    mu = nufft.mu
    assert np.abs(mu - np.conj(np.swapaxes(mu, 1, 2))).max() < 1e-14 * np.abs(mu).max()


@needs_finufft
def test_nufft_batches_sum_to_one_call():
    """A small memory budget splits the pairs over several NUFFT calls; the sum is the same."""
    model = models.GrapheneRashba(**FIG2, magnetization=(0.0, 0.0, 1.0))
    kw = dict(left=LEFT, num_moments=200, window=(-0.3, 0.3), bounds=(-0.3, 0.3), backend="cpu",
              moments_route="nufft", progress=False)
    one = kspace_moments(model, (1000, 1000), **kw)
    many = kspace_moments(model, (1000, 1000), memory_budget=2**20, **kw)
    assert many.provenance["nufft_calls"] > one.provenance["nufft_calls"] == 1
    assert _relative(many.mu, one.mu) < 1e-13


@needs_finufft
def test_auto_route_follows_the_cost_model():
    """Small N: the N² P GEMM is cheap, auto keeps it; N = 581 with many pairs: NUFFT."""
    assert not nufft_is_cheaper(10**6, 16, 3)
    assert not nufft_is_cheaper(10, 581, 3)
    assert nufft_is_cheaper(10**5, 581, 3)
    model = models.GrapheneRashba(**FIG2, magnetization=(0.0, 0.0, 1.0))
    small = kspace_moments(model, (200, 200), num_moments=16, window=(-0.3, 0.3), backend="cpu", progress=False)
    assert small.provenance["moments_route"] == "gemm"
    big = kspace_moments(model, (600, 600), num_moments=400, window=(-0.3, 0.3), backend="cpu", progress=False)
    assert big.provenance["moments_route"] == "nufft"


def test_without_finufft_auto_takes_the_gemm_and_nufft_is_refused(monkeypatch):
    """finufft is optional: gpukpm imports without it, "auto" falls back to the GEMM."""
    monkeypatch.setitem(sys.modules, "finufft", None)  # makes `import finufft` raise ImportError
    model = models.GrapheneRashba(**FIG2, magnetization=(0.0, 0.0, 1.0))
    kw = dict(num_moments=400, window=(-0.3, 0.3), backend="cpu", progress=False)
    assert kspace_moments(model, (300, 300), **kw).provenance["moments_route"] == "gemm"
    with pytest.raises(ValueError, match="finufft"):
        kspace_moments(model, (300, 300), moments_route="nufft", **kw)


@pytest.mark.parametrize("kwargs, name", [
    ({"select": "window"}, "select"),
    ({"select": None}, "select"),
    ({"moments_route": "fft"}, "moments_route"),
])
def test_bad_select_and_route(kwargs, name):
    with pytest.raises(ValueError, match=name):
        kspace_moments(models.GrapheneRashba(), (3, 3), num_moments=8, window=(-1, 1), progress=False, **kwargs)


def test_select_bound_needs_a_model_bound():
    class Bare:  # a model with the k-space interface but no spectral bound
        orbitals_per_cell = 2

        def __init__(self):
            self._m = models.Rashba2DEG(rashba=0.1)

        def bloch(self, k, xp=np):
            return self._m.bloch(k, xp)

        def bloch_operator(self, name, k, xp=np):
            return self._m.bloch_operator(name, k, xp)

        def to_dict(self):
            return {"model": "Bare"}

    grid = PolarGrid(1.0, 4, 4)
    with pytest.raises(ValueError, match="spectral_bound"):
        kspace_moments(Bare(), grid, num_moments=8, window=(0.0, 0.1), progress=False)
    assert math.isfinite(kspace_moments(Bare(), grid, num_moments=8, window=(0.0, 0.1), select="all",
                                        progress=False).a)
