"""σ_xx of clean graphene against the closed form of the Lorentzian-broadened Kubo-Greenwood bubble.

For Dirac fermions with a constant broadening η (g = 4 spin × valley):

    σ(μ) = g e²/(2πh) [1 + (μ² + η²)/(μη) · arctan(μ/η)],      σ(0) = g e²/(πh) = 4/π e²/h.

With the Lorentz kernel the broadening is η(ε) = η_c √(1 − x²) (kernels.broadening_at).
An independent check of the overall normalisation of the Kubo machinery (units e²/h).
"""
import numpy as np

from gpukpm import kpm, models
from gpukpm.response import kernels
from gpukpm.engine.kgrid import MonkhorstPack


def _closed_form(mu, eta, g=4):
    mu = np.asarray(mu, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        bracket = np.where(mu == 0, 2.0, 1 + (mu**2 + eta**2) / (mu * eta) * np.arctan(mu / eta))
    return g / (2 * np.pi) * bracket


def test_graphene_conductivity_matches_the_lorentzian_closed_form():
    model = models.GrapheneRashba(t=2.7)  # spin-degenerate graphene
    grid = MonkhorstPack(model.lattice, (800, 800))  # ħv·Δk = 0.02 eV ≪ η
    mom = kpm.kspace_moments(model, grid, left=("jx",), right="jx", num_moments=160, window=(-2.0, 2.0),
                             progress=False)
    energies = np.array([0.0, 0.2, 0.4])
    sigma = kpm.conductivity(mom, energies, kernel="lorentz", eta=0.08)
    eta_local = kernels.broadening_at("lorentz", energies, mom.a, mom.b, sigma.num_moments)
    expected = _closed_form(energies, eta_local)
    assert abs(sigma.values[0, 0] - 4 / np.pi) < 0.02 * 4 / np.pi  # the minimal conductivity 4e²/(πh)
    np.testing.assert_allclose(sigma.values[0], expected, rtol=0.02)
