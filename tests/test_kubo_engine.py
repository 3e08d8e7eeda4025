"""2D moments and Kubo-Bastin reconstruction against exact diagonalisation and identities."""
import warnings

import numpy as np
import pytest
import scipy.integrate
import scipy.sparse

from gpukpm import kpm, models
from gpukpm.response import kernels
from gpukpm.engine.spectrum import SpectrumLeakError

RNG = np.random.default_rng(20261201)


def _random_unit(rng):
    v = rng.normal(size=3)
    return tuple(v / np.linalg.norm(v))


@pytest.fixture(scope="module")
def disordered():
    """Small disordered honeycomb with Rashba, exchange along a random m̂ and mass."""
    m = _random_unit(RNG)
    model = models.GrapheneRashba(t=2.7, rashba=0.4, exchange=0.6, mass=0.2, magnetization=m)
    return model.real_space(shape=(5, 6), disorder=1.5, seed=11, realisation=2)


def _ed_moments(eigenbasis, system, left, right, mom):
    """μ_nm = Σ_ij A_ij T_n(E_j) B_ji T_m(E_i) / D in the eigenbasis (A_ij = ⟨i|A|j⟩)."""
    E, (A, B) = eigenbasis(system, left, right)
    T = np.cos(np.arange(mom.num_moments)[None, :] * np.arccos((E - mom.b) / mom.a)[:, None])
    return np.einsum("jn,ij,ji,im->nm", T, A, B, T) / len(E)


def test_exact_moments_match_exact_diagonalisation(disordered, eigenbasis):
    mom = kpm.kubo_moments(disordered, left=("sx", "sy", "sz"), right="jx", num_moments=24, trace="exact",
                           progress=False)
    assert mom.mu.shape == (3, 24, 24)
    for k, name in enumerate(("sx", "sy", "sz")):
        ref = _ed_moments(eigenbasis, disordered, name, "jx", mom)
        assert np.abs(mom.mu[k] - ref).max() <= 1e-10 * np.abs(ref).max()


def test_moments_do_not_depend_on_block_size(disordered):
    runs = [kpm.kubo_moments(disordered, num_moments=21, trace="exact", block_size=b, progress=False).mu
            for b in (1, 7, 21)]
    scale = np.abs(runs[0]).max()
    for other in runs[1:]:
        assert np.abs(other - runs[0]).max() <= 1e-13 * scale
    stochastic = [kpm.kubo_moments(disordered, num_moments=21, trace=3, seed=4, block_size=b,
                                   progress=False).mu_samples for b in (1, 7, 21)]
    for other in stochastic[1:]:
        assert np.abs(other - stochastic[0]).max() <= 1e-13 * np.abs(stochastic[0]).max()


def test_left_operators_together_equal_separate_runs(disordered):
    together = kpm.kubo_moments(disordered, left=("sx", "sy", "sz"), num_moments=16, trace=2, seed=3,
                                progress=False)
    for k, name in enumerate(("sx", "sy", "sz")):
        alone = kpm.kubo_moments(disordered, left=(name,), num_moments=16, trace=2, seed=3, progress=False)
        np.testing.assert_allclose(together.mu_samples[:, k], alone.mu_samples[:, 0], rtol=0, atol=1e-14)


def _kernel_function_reference(eigenbasis, system, left, mom, kernel, energies, lam=4.0):
    """Eq. 3 evaluated by ED with the same truncated kernel series (an independent quadrature)."""
    N = mom.num_moments
    E, (A, B) = eigenbasis(system, left, "jx")
    M = B * A.T  # M_ij = B_ij A_ji: Tr[B δ A ∂G] = Σ_ij B_ij δ(E_j) A_ji ∂G(E_i)
    n = np.arange(N)
    g = kernels.kernel_factors(kernel, N, lam) / np.where(n == 0, 2.0, 1.0)
    TE = np.cos(n * np.arccos((E - mom.b) / mom.a)[:, None])
    eta = (lam if kernel == "lorentz" else np.pi) / N
    x_low = max((mom.emin - mom.b) / mom.a - 5 * eta, -1 + mom.epsilon / 4)
    out = []
    for ef in energies:
        x = np.linspace(x_low, (ef - mom.b) / mom.a, 20001)
        th = np.arccos(x)[:, None]
        w = (2 / np.pi) * g * np.cos(n * th) / np.sin(th)
        c = -2j * g * np.exp(-1j * n * th) * (np.cos(th) + 1j * n * np.sin(th)) / np.sin(th) ** 3
        F = np.einsum("gj,ij,gi->g", w @ TE.T, M, c @ TE.T)
        out.append(-2 / system.area / mom.a**2 * scipy.integrate.simpson(F.imag, x=x))
    return np.array(out)


@pytest.mark.parametrize("kernel", ["jackson", "lorentz"])
def test_reconstruction_matches_kernel_series_by_ed(disordered, eigenbasis, kernel):
    mom = kpm.kubo_moments(disordered, left=("sx",), num_moments=64, trace="exact", progress=False)
    energies = np.array([-2.0, -0.4, 0.5, 1.7])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = kpm.kubo_response(mom, energies, kernel=kernel, part="total").values[0]
    ref = _kernel_function_reference(eigenbasis, disordered, "sx", mom, kernel, energies)
    assert np.abs(got - ref).max() <= 2e-6 * np.abs(ref).max()  # 7e-7 reached at oversample 32


def _lorentzian_ed(eigenbasis, system, left, energies, eta_of, lower):
    """Eq. 3 by ED with a Lorentzian broadening η(ε): sea and surface parts.

    ``eta_of(ε)`` → (η, dη/dε); the sea integrand uses ∂_ε G⁺(ε; η(ε)) with the chain rule.
    """
    E, (A, B) = eigenbasis(system, left, "jx")
    M = B * A.T  # Σ_ij δ(E_j) M_ij ∂G(E_i) = Tr[B δ A ∂G]
    sea = []
    for ef in energies:
        eg = np.linspace(lower, ef, 6001)
        eta, deta = eta_of(eg)
        delta = (eta[:, None] / np.pi) / ((eg[:, None] - E) ** 2 + eta[:, None] ** 2)
        dg_bar = (-(1 + 1j * deta[:, None]) / (eg[:, None] - E + 1j * eta[:, None]) ** 2).real
        F = np.sum((dg_bar @ M) * delta, axis=1)  # Σ_ij δ_gj M_ij dG_gi
        sea.append(-2 / system.area * scipy.integrate.simpson(F.imag, x=eg))
    eta_f = eta_of(energies)[0][:, None]
    d = (eta_f / np.pi) / ((energies[:, None] - E) ** 2 + eta_f**2)
    surface = np.pi / system.area * np.sum((d @ M) * d, axis=1).real
    return np.array(sea), surface


@pytest.mark.slow
def test_lorentz_kernel_converges_to_lorentzian_broadening(eigenbasis):
    """Lorentz kernel vs ED with a Lorentzian of the kernel's width η(ε) = (λa/N)√(1 − x²).

    The Lorentz kernel's δ is a Poisson kernel in θ = arccos x whose width λ/N → 0; it differs from a
    Lorentzian in ε of the same width η(ε) at order η/a at least, so the Fermi-sea difference must
    shrink at least as 1/N: by at least 2 per doubling of N (measured 2.0e-2, 4.1e-3, 1.0e-3 of the
    response scale for N = 128, 256, 512 on this 12×14 lattice).  The surface part is not compared:
    while η is a few level spacings it depends on the kernel's shape, not only its width (a few %;
    the kernel series itself is checked against ED in ``test_reconstruction_matches_kernel_series_by_ed``).
    """
    model = models.GrapheneRashba(t=2.7, rashba=0.4, exchange=0.6, mass=0.2, magnetization=(0.6, 0.0, 0.8))
    system = model.real_space(shape=(12, 14), disorder=1.5, seed=3)
    energies = np.array([-2.0, -0.5, 0.3, 1.5])
    lam = 4.0
    errors = []
    for N in (128, 256, 512):
        mom = kpm.kubo_moments(system, left=("sy",), num_moments=N, trace="exact", progress=False)

        def eta_of(e, mom=mom, N=N):
            x = (np.asarray(e) - mom.b) / mom.a
            root = np.sqrt(np.clip(1 - x**2, 1e-12, None))
            return lam * mom.a * root / N, -lam * x / (root * N)

        lower = mom.emin - 2.0  # the Lorentzian tails below the spectrum are part of Eq. 3
        sea_ed, surf_ed = _lorentzian_ed(eigenbasis, system, "sy", energies, eta_of, lower)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sea = kpm.kubo_response(mom, energies, kernel="lorentz", part="sea").values[0]
        scale = np.abs(sea_ed).max() + np.abs(surf_ed).max()
        errors.append(np.abs(sea - sea_ed).max() / scale)
    assert errors[1] < errors[0] / 2 and errors[2] < errors[1] / 2


def test_total_is_sea_plus_surface_and_current_current_identities(disordered):
    mom = kpm.kubo_moments(disordered, left=("sx", "sy", "jx"), num_moments=96, trace="exact",
                           progress=False)
    energies = np.linspace(-3.0, 3.0, 13)
    parts = {p: kpm.kubo_response(mom, energies, part=p) for p in ("total", "sea", "surface")}
    scale = np.abs(parts["total"].values).max()
    np.testing.assert_allclose(parts["total"].values, parts["sea"].values + parts["surface"].values,
                               rtol=0, atol=1e-5 * scale)
    # A = B = ĵ_x: no Fermi-sea part, Kubo-Greenwood σ_xx ≥ 0
    assert np.abs(parts["sea"]["jx"]).max() <= 1e-12 * np.abs(parts["surface"]["jx"]).max()
    sigma = kpm.conductivity(mom, energies)
    assert sigma.units == "e^2/h" and np.all(sigma.values >= 0)
    np.testing.assert_allclose(sigma.values[0], 2 * np.pi * parts["surface"]["jx"], rtol=1e-14)


def test_response_vanishes_above_the_spectrum(disordered):
    top = np.linalg.eigvalsh(disordered.hamiltonian.toarray()).max()
    mom = kpm.kubo_moments(disordered, left=("sx", "sy"), num_moments=256, trace="exact", progress=False,
                           bounds=(-top - 3.0, top + 3.0))  # room above the spectrum (η = 0.16 eV)
    energies = np.linspace(-1.0, 1.0, 5)
    inside = kpm.kubo_response(mom, energies, part="total").values
    above = kpm.kubo_response(mom, [top + 2.0], part="total").values
    assert np.abs(above).max() < 1e-6 * np.abs(inside).max()


def test_time_reversal_parity_of_sea_and_surface():
    m = np.array(_random_unit(np.random.default_rng(5)))
    base = dict(t=2.7, rashba=0.4, exchange=0.6, mass=0.2)
    up = models.GrapheneRashba(magnetization=tuple(m), **base).real_space(shape=(4, 5), disorder=1.0, seed=2)
    down = models.GrapheneRashba(magnetization=tuple(-m), **base).real_space(shape=(4, 5), disorder=1.0, seed=2)
    bounds = (-10.0, 10.0)
    mu_up = kpm.kubo_moments(up, num_moments=48, bounds=bounds, progress=False)
    mu_dn = kpm.kubo_moments(down, num_moments=48, bounds=bounds, progress=False)
    np.testing.assert_allclose(mu_up.mu, np.conj(mu_dn.mu), atol=1e-12 * np.abs(mu_up.mu).max())
    energies = np.linspace(-2, 2, 9)
    for part, parity in (("surface", 1), ("sea", -1)):
        a = kpm.kubo_response(mu_up, energies, part=part).values
        b = kpm.kubo_response(mu_dn, energies, part=part).values
        np.testing.assert_allclose(a, parity * b, atol=1e-10 * np.abs(a).max())


def test_swapping_operators_flips_the_sea_part(disordered):
    forward = kpm.kubo_moments(disordered, left=("sy",), right="jx", num_moments=64, progress=False)
    backward = kpm.kubo_moments(disordered, left=("jx",), right="sy", num_moments=64, progress=False)
    energies = np.linspace(-2, 2, 7)
    a = kpm.kubo_response(forward, energies, part="sea").values
    b = kpm.kubo_response(backward, energies, part="sea").values
    np.testing.assert_allclose(a, -b, atol=1e-8 * np.abs(a).max())


def test_stochastic_trace_converges_and_errors_cover():
    model = models.GrapheneRashba(t=2.7, rashba=0.5, exchange=0.5, mass=0.1, magnetization=(0, 0, 1))
    system = model.real_space(shape=(10, 10), disorder=1.0, seed=1)
    exact = kpm.kubo_moments(system, left=("sx", "sy"), num_moments=12, trace="exact", progress=False)
    scaled = []
    for R in (4, 16, 64):
        est = kpm.kubo_moments(system, left=("sx", "sy"), num_moments=12, trace=R, seed=9, progress=False)
        err = np.abs(est.mu - exact.mu)
        se = np.abs(est.stderr.real) + np.abs(est.stderr.imag)
        # the reported standard error covers the true error (no element beyond 5 SE; most within 2 SE)
        ok = err <= 2 * np.sqrt(2) * se + 1e-15
        assert ok.mean() > 0.85 and np.all(err <= 5 * np.sqrt(2) * se + 1e-15)
        scaled.append(np.sqrt(np.mean(err**2)) * np.sqrt(R * system.num_orbitals))
    # error ∝ 1/√(R·D): the scaled error stays within a factor 2
    assert max(scaled) / min(scaled) < 2.0


def test_bad_inputs_are_rejected(disordered):
    D = disordered.num_orbitals
    with pytest.raises(ValueError, match="must be \\(%d, %d\\)" % (D, D)):
        kpm.kubo_moments(disordered, left=(scipy.sparse.identity(D + 1, format="csr"),), num_moments=8)
    with pytest.raises(ValueError, match="num_moments"):
        kpm.kubo_moments(disordered, num_moments=1)
    with pytest.raises(ValueError, match="trace"):
        kpm.kubo_moments(disordered, num_moments=8, trace=0)
    mom = kpm.kubo_moments(disordered, num_moments=16, progress=False)
    with pytest.raises(ValueError, match="outside the expansion interval"):
        kpm.kubo_response(mom, [mom.b + 2 * mom.a])
    with pytest.raises(ValueError, match="part"):
        kpm.kubo_response(mom, [0.0], part="bulk")
    tiny = models.GrapheneRashba(rashba=0.3).real_space(shape=(2, 2), disorder=1.0)  # 16 levels
    fine = kpm.kubo_moments(tiny, left=("sx",), num_moments=64, progress=False)
    with pytest.warns(UserWarning, match="level spacing"):
        kpm.kubo_response(fine, [0.0], part="surface")
    with pytest.raises(SpectrumLeakError, match="leaks outside"):
        kpm.kubo_moments(disordered, num_moments=64, bounds=(-1.0, 1.0), progress=False)
