"""Tests of gpukpm.semiclassical (Boltzmann closed forms of the paper, electron signs).

Three independent routes are compared:

* the parabolic closed forms (Eqs. 13, 14, ``rashba_2deg``),
* the general isotropic formulas (Eqs. 6-10, ``isotropic_2deg``, numerical
  quadrature and root finding),
* a direct numerical evaluation of Eq. 4 for a 2x2 (or 4x4) k-space
  Hamiltonian: numerical diagonalisation on a polar k grid, Fermi contours by
  root finding along each ray, the Fermi-surface term with the ELECTRON
  occupation ``δf = −(eτ/ħ) δ(ε_F − E)(E·∇_k E)`` (from ``ħ k̇ = −eE``), and the
  Fermi-sea term from the adiabatic spin correction
  ``δs_n = 2e Im(<n|E·∇_k H|m><m|s|n>)/(E_n − E_m)²`` (checked against the
  paper's Eq. 5 below).

Units: eV, nm, s, e = 1; χ in (V·nm)⁻¹.
"""

import math

import numpy as np
import pytest
from scipy import optimize

from gpukpm import semiclassical as sc

MASS = 1.0  # m_e
A = sc.HBAR2_OVER_2ME / MASS  # ħ²/(2m), eV·nm²
LAM = 0.02  # eV·nm
ES = LAM**2 / (2 * A)  # m λ²/ħ² (the paper's energy scale), eV
TAU = 1e-13  # s
J_EXCH = 40 * ES  # exchange-dominated (paper Fig. 4a)
J_RASH = 0.1 * ES  # Rashba-dominated (paper Fig. 4b)
# Energies inside the pseudogap (|ε| < J/2, one band) and above it (two bands).
E_EXCH = np.array([-0.45, -0.2, 0.0, 0.3, 0.49, 0.51, 0.8, 1.5, 3.0]) * J_EXCH
# Rashba-dominated: band-edge region with two contours of band + (−0.1),
# pseudogap (−0.03 … 0.03; J/2 = 0.05 ES) and above.
E_RASH = np.array([-0.1, -0.03, 0.0, 0.03, 0.06, 0.2, 1.0, 3.0]) * ES
KEYS = ("chi_FL", "chi_DL", "chi_par", "chi_torqueless")

PAULI = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=complex)


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------
def parabolic_general(energies, exchange, lam=LAM, mass=MASS, analytic=False, **kwargs):
    """The parabolic 2DEG through the general isotropic route."""
    a = sc.HBAR2_OVER_2ME / mass
    e = np.atleast_1d(energies)
    k_max = 3 * math.sqrt((e.max() + abs(exchange) + lam**2 / a) / a)
    derivs = {"dh0": lambda k: 2 * a * k, "drashba": lambda k: lam + 0 * k} if analytic else {}
    return sc.isotropic_2deg(e, lambda k: a * k**2, lambda k: lam * k, exchange, TAU, k_max, **derivs, **kwargs)


def paper_eq14(energies, exchange, lam=LAM, mass=MASS):
    """Eqs. 13, 14a-d transcribed literally, paper signs, band by band, ħ = 1 form.

    ``m_eff = 1/(2a)`` in eV⁻¹·nm⁻²; the ħ of 14a/14d is the τ → τ/ħ of SI units.
    Returns {key: array (2, n)} for μ = +, − (NaN where k_μ² <= 0).
    """
    m = mass / (2 * sc.HBAR2_OVER_2ME)
    e = np.asarray(energies, float)
    J, lr = exchange, lam
    out = {key: np.full((2, e.size), np.nan) for key in KEYS}
    for row, mu in enumerate((1, -1)):
        k2 = 2 * m * e + m**2 * lr**2 / 2 + mu * m * np.sqrt(J**2 + 2 * m * lr**2 * e + m**2 * lr**4 / 4)
        ok = k2 > 0
        k2 = np.where(ok, k2, np.nan)
        b = np.sqrt(J**2 + lr**2 * k2)
        out["chi_FL"][row] = mu * TAU * lr * k2 / (4 * np.pi * sc.HBAR * b)
        out["chi_DL"][row] = mu / (2 * np.pi * lr) * (1 - J / b)
        out["chi_par"][row] = (
            -mu
            / (2 * np.pi * lr)
            * (1 - J / b - J * lr**2 * k2 / (2 * b**3) * (1 + m * lr**2 / (2 * mu * b - m * lr**2)))
        )
        out["chi_torqueless"][row] = mu * TAU * J**2 * lr * k2 / (4 * np.pi * sc.HBAR * b**3)
    return out


def ham_isotropic(h0, lam, exchange, m):
    """``H(kx, ky) = H0(k) − ½Λ(k) φ̂·s − ½J m̂·s`` as (..., 2, 2) arrays, φ̂ = ẑ × k̂."""
    mvec = np.asarray(m, float)
    zeeman = -0.5 * exchange * np.einsum("i,ijk->jk", mvec, PAULI)

    def ham(kx, ky):
        kx, ky = np.broadcast_arrays(np.asarray(kx, float), np.asarray(ky, float))
        k = np.hypot(kx, ky)
        g = np.where(k > 0, lam(k) / np.where(k > 0, k, 1.0), 0.0)  # Λ/k
        rashba = (-ky * g)[..., None, None] * PAULI[0] + (kx * g)[..., None, None] * PAULI[1]
        return h0(k)[..., None, None] * np.eye(2) - 0.5 * rashba + zeeman

    return ham


def ham_parabolic(exchange, m, lam=LAM):
    return ham_isotropic(lambda k: A * k**2, lambda k: lam * k, exchange, m)


def boltzmann(ham, ef, tau, k_cut, *, spin_ops=PAULI, sea=True, n_phi=128, n_scan=400, n_gauss=48, dk=1e-6):
    """Direct evaluation of Eq. 4 for E = x̂ (unit field): returns (S_surface, S_sea).

    Bands are the numerical eigenvalues in ascending order; every Fermi contour
    is found along each of ``n_phi`` rays.  Surface: Σ_b ∫ d²k/(2π)² δf_b s_b with
    δf_b = −(τ/ħ) δ(ε_F − E_b) ∂_x E_b (electrons, e = 1), the δ function
    resolved on each ray as δ(k − k_F)/|∂_k E_b|, velocities by Hellmann-Feynman
    with ∂H from central differences.  Sea: Σ_{n occupied, m empty} of the
    adiabatic correction (pairs of occupied bands cancel), Gauss-Legendre in k
    between consecutive contours.
    """
    phis = 2 * np.pi * (np.arange(n_phi) + 0.5) / n_phi
    xg, wg = np.polynomial.legendre.leggauss(n_gauss)
    grid = np.linspace(0.0, k_cut, n_scan)
    s_surf = np.zeros(len(spin_ops))
    s_sea = np.zeros(len(spin_ops))
    dphi = 2 * np.pi / n_phi

    def dhx(kx, ky):
        return (ham(kx + dk, ky) - ham(kx - dk, ky)) / (2 * dk)

    def dhy(kx, ky):
        return (ham(kx, ky + dk) - ham(kx, ky - dk)) / (2 * dk)

    for phi in phis:
        c, s = math.cos(phi), math.sin(phi)
        levels = np.linalg.eigvalsh(ham(grid * c, grid * s))
        n_band = levels.shape[1]
        contour = []
        for b in range(n_band):
            f = levels[:, b] - ef
            assert f[-1] > 0 or np.all(f < 0), "k_cut too small"
            for i in np.nonzero(f[:-1] * f[1:] < 0)[0]:
                k = optimize.brentq(
                    lambda q: np.linalg.eigvalsh(ham(q * c, q * s))[b] - ef, grid[i], grid[i + 1], xtol=1e-14
                )
                contour.append(k)
                _, vec = np.linalg.eigh(ham(k * c, k * s))
                u = vec[:, b]
                vx = np.real(u.conj() @ dhx(k * c, k * s) @ u)
                vy = np.real(u.conj() @ dhy(k * c, k * s) @ u)
                spin = np.real(np.einsum("i,aij,j->a", u.conj(), spin_ops, u))
                s_surf += -(tau / sc.HBAR) * vx * spin * k / abs(c * vx + s * vy) / (4 * np.pi**2) * dphi
        if not sea:
            continue
        edges = np.concatenate([[0.0], np.sort(contour), [k_cut]])
        for lo, hi in zip(edges[:-1], edges[1:]):
            mid = 0.5 * (lo + hi)
            occ = np.linalg.eigvalsh(ham(mid * c, mid * s)) < ef
            if occ.all() or not occ.any():
                continue
            kk = 0.5 * (hi - lo) * xg + 0.5 * (hi + lo)
            ww = 0.5 * (hi - lo) * wg
            w, v = np.linalg.eigh(ham(kk * c, kk * s))
            dh = dhx(kk * c, kk * s)
            for n in np.nonzero(occ)[0]:
                for m in np.nonzero(~occ)[0]:
                    a1 = np.einsum("qi,qij,qj->q", v[:, :, n].conj(), dh, v[:, :, m])
                    a2 = np.einsum("qi,aij,qj->qa", v[:, :, m].conj(), spin_ops, v[:, :, n])
                    ds = 2 * np.imag(a1[:, None] * a2) / ((w[:, n] - w[:, m]) ** 2)[:, None]
                    s_sea += np.sum((ww * kk)[:, None] * ds, axis=0) / (4 * np.pi**2) * dphi
    return s_surf, s_sea


def k_cut_parabolic(ef, exchange):
    return 2 * math.sqrt((ef + abs(exchange) + LAM**2 / A) / A)


def tilted(theta, phi):
    return [math.sin(theta) * math.cos(phi), math.sin(theta) * math.sin(phi), math.cos(theta)]


# ----------------------------------------------------------------------------
# closed forms vs general isotropic route
# ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "exchange, energies, lam",
    [
        (J_EXCH, E_EXCH, LAM),
        (J_RASH, E_RASH, LAM),
        (-J_EXCH, E_EXCH, LAM),  # J < 0: the sgn(J), |J| form of 14b/14c
        (J_RASH, E_RASH, -LAM),  # λ < 0: reversed helicity
    ],
)
@pytest.mark.parametrize("analytic", [False, True])
def test_closed_forms_equal_general_route(exchange, energies, lam, analytic):
    closed = sc.rashba_2deg(energies, MASS, lam, exchange, TAU)
    general = parabolic_general(energies, exchange, lam=lam, analytic=analytic)
    for key in KEYS:
        np.testing.assert_allclose(general[key], closed[key], rtol=1e-8, atol=0, err_msg=key)
    for key in ("chi_perp", "xi_FL"):
        assert np.all(closed[key] == 0) and np.all(general[key] == 0)
    general_paper = parabolic_general(energies, exchange, lam=lam, analytic=analytic, paper_torqueless=True)
    closed_paper = sc.rashba_2deg(energies, MASS, lam, exchange, TAU, paper_torqueless=True)
    np.testing.assert_allclose(general_paper["chi_torqueless"], closed_paper["chi_torqueless"], rtol=1e-8)


@pytest.mark.parametrize("exchange, energies", [(J_EXCH, E_EXCH), (J_RASH, E_RASH[1:])])
def test_closed_forms_are_paper_eq14_with_electron_signs(exchange, energies):
    """Where every contour is electron-like, the module is Eq. 14 with FL and torque-less flipped."""
    paper = paper_eq14(energies, exchange)
    mod = sc.rashba_2deg(energies, MASS, LAM, exchange, TAU, paper_torqueless=True)
    sign = {"chi_FL": -1, "chi_DL": 1, "chi_par": 1, "chi_torqueless": -1}
    for key in KEYS:
        np.testing.assert_allclose(mod[key], sign[key] * np.nansum(paper[key], axis=0), rtol=1e-10, err_msg=key)


def test_eq14c_fails_on_the_hole_like_contour():
    """Rashba-dominated band edge: the '−' root of Eq. 13 is the inner, hole-like contour of band +.

    14a, 14b, 14d (with μ = −) still hold there, but the contour term of 14c must
    use |∂_k E_+| (the numerical Boltzmann test below confirms the module).
    """
    e = E_RASH[:1]
    paper = paper_eq14(e, J_RASH)
    mod = sc.rashba_2deg(e, MASS, LAM, J_RASH, TAU, paper_torqueless=True)
    assert np.all(np.isfinite(paper["chi_par"]))  # both roots of Eq. 13 exist
    np.testing.assert_allclose(mod["chi_FL"], -np.sum(paper["chi_FL"], axis=0), rtol=1e-10)
    np.testing.assert_allclose(mod["chi_DL"], np.sum(paper["chi_DL"], axis=0), rtol=1e-10)
    np.testing.assert_allclose(mod["chi_torqueless"], -np.sum(paper["chi_torqueless"], axis=0), rtol=1e-10)
    literal = np.sum(paper["chi_par"], axis=0)
    assert abs(literal[0] / mod["chi_par"][0] - 1) > 0.3


# ----------------------------------------------------------------------------
# direct numerical Boltzmann evaluation of Eq. 4
# ----------------------------------------------------------------------------
def test_eq5_equals_adiabatic_interband_formula():
    """Eq. 5, δs_μ = −μ (e/B³) B × (E·∇_k)B (no ħ with k in nm⁻¹), is the adiabatic correction."""
    rng = np.random.default_rng(7)
    m = rng.normal(size=3)
    m /= np.linalg.norm(m)
    ham = ham_parabolic(0.5 * ES, m)
    dk = 1e-6
    for kx, ky in rng.uniform(-2, 2, size=(5, 2)):
        h = ham(kx, ky)
        dh = (ham(kx + dk, ky) - ham(kx - dk, ky)) / (2 * dk)
        bvec = -np.real(np.einsum("aij,ji->a", PAULI, h))  # H = H0 − ½B·s ⇒ B = −Tr(H s)
        dbvec = -np.real(np.einsum("aij,ji->a", PAULI, dh))
        w, v = np.linalg.eigh(h)
        for n, mu in ((0, 1), (1, -1)):
            un, um = v[:, n], v[:, 1 - n]
            interband = 2 * np.imag((un.conj() @ dh @ um) * np.einsum("i,aij,j->a", um.conj(), PAULI, un))
            interband /= (w[n] - w[1 - n]) ** 2
            eq5 = -mu * np.cross(bvec, dbvec) / np.linalg.norm(bvec) ** 3
            np.testing.assert_allclose(interband, eq5, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("exchange, ef", [(J_EXCH, -0.2 * J_EXCH), (J_EXCH, 0.8 * J_EXCH), (J_RASH, 0.0), (J_RASH, ES)])
def test_numerical_boltzmann_out_of_plane_magnetisation(exchange, ef):
    """m̂ = ẑ: surface S = χ_FL ŷ and sea S = −χ_DL ẑ × ŷ = χ_DL x̂, exactly (grid error ~1e-11)."""
    surf, sea = boltzmann(ham_parabolic(exchange, [0, 0, 1]), ef, TAU, k_cut_parabolic(ef, exchange))
    th = sc.rashba_2deg([ef], MASS, LAM, exchange, TAU)
    fl, dl = th["chi_FL"][0], th["chi_DL"][0]
    assert fl < 0 and dl > 0  # electron signs for λ > 0, J > 0
    np.testing.assert_allclose(surf[1], fl, rtol=1e-9)
    np.testing.assert_allclose(sea[0], dl, rtol=1e-9)
    assert abs(surf[0]) + abs(surf[2]) < 1e-9 * abs(fl)
    assert abs(sea[1]) + abs(sea[2]) < 1e-9 * abs(dl)


def _tilt_response(ham_of_m, ef, k_cut, theta, phi_m):
    surf, sea = boltzmann(ham_of_m(tilted(theta, phi_m)), ef, TAU, k_cut)
    mx, my, mz = tilted(theta, phi_m)
    return {
        "dl": sea[0] / mz,  # S_x^sea = χ_DL m_z
        "dl_par": -sea[2] / mx if mx else None,  # S_z^sea = −(χ_DL + χ_∥) m_x
        "perp_sea": -sea[2] / (my * mz) if my else None,  # S_z^sea = −χ_⊥ m_y m_z
        "tl": -surf[2] / (my * mz) if my else None,  # S_z^surf = −χ_tl m_y m_z
        "fl": surf[1],
    }


def _richardson(ham_of_m, ef, k_cut, phi_m, theta=0.01):
    """Linear-in-tilt coefficients, O(θ²) removed: (4 f(θ) − f(2θ))/3."""
    f1 = _tilt_response(ham_of_m, ef, k_cut, theta, phi_m)
    f2 = _tilt_response(ham_of_m, ef, k_cut, 2 * theta, phi_m)
    return {key: (4 * f1[key] - f2[key]) / 3 for key in f1 if f1[key] is not None}


@pytest.mark.parametrize(
    "exchange, ef",
    [
        (J_EXCH, -0.2 * J_EXCH),
        (J_EXCH, 0.8 * J_EXCH),
        (J_RASH, 0.0),
        (J_RASH, ES),
        (J_RASH, -0.1 * ES),  # band edge: hole-like inner contour of band +
    ],
)
def test_numerical_boltzmann_tilted_magnetisation(exchange, ef):
    """Small tilts of m̂ off ẑ: the first-order formulas are exact at linear order in m_∥.

    m̂ in the xz plane: S_z^sea/m_x = −(χ_DL + χ_∥), S_x^sea/m_z = χ_DL.
    m̂ in the yz plane: S_z^surf/(m_y m_z) = −χ_tl (complete coefficient, with the
    contour shift missing from Eq. 10a), S_z^sea = 0 (χ_⊥ = 0).
    """
    th = sc.rashba_2deg([ef], MASS, LAM, exchange, TAU)
    th = {key: val[0] for key, val in th.items()}
    paper_tl = sc.rashba_2deg([ef], MASS, LAM, exchange, TAU, paper_torqueless=True)["chi_torqueless"][0]
    k_cut = k_cut_parabolic(ef, exchange)

    def ham_of_m(m):
        return ham_parabolic(exchange, m)

    xz = _richardson(ham_of_m, ef, k_cut, 0.0)
    yz = _richardson(ham_of_m, ef, k_cut, 0.5 * np.pi)
    dl_scale = abs(th["chi_DL"])
    np.testing.assert_allclose(xz["dl"], th["chi_DL"], rtol=1e-7)
    assert abs(xz["dl_par"] - (th["chi_DL"] + th["chi_par"])) < 1e-7 * dl_scale
    assert abs(yz["perp_sea"]) < 1e-7 * dl_scale
    fl_scale = abs(th["chi_FL"])
    assert abs(yz["tl"] - th["chi_torqueless"]) < 1e-7 * fl_scale
    # Eq. 14d as printed misses the numerical value by far more than the grid error
    assert abs(yz["tl"] - paper_tl) > 1e-3 * fl_scale


@pytest.mark.parametrize("efr", [-0.2, 0.8])
def test_in_plane_magnetisation_second_order(efr):
    """m̂ = x̂ (exchange-dominated): S_z = −(χ_DL + χ_∥), S_y = χ_FL up to O((Λ_F/J)²).

    At m̂ = x̂ the first-order theory is not exact; its error must scale as the
    square of the expansion parameter, (Λ_F/J)² ∝ 1/J at fixed ε_F/J.  Quadrupling
    J must divide the relative deviation of S_z by 4, to within 10 % (the next
    order, (Λ_F/J)² ≤ 6.5 % here).  S_y is checked where one band is occupied
    (for two bands its deviation is of higher order and tiny).
    """
    dev_z, dev_y = [], []
    for jr in (40, 160):
        exchange = jr * ES
        ef = efr * exchange
        surf, sea = boltzmann(ham_parabolic(exchange, [1, 0, 0]), ef, TAU, k_cut_parabolic(ef, exchange))
        th = sc.rashba_2deg([ef], MASS, LAM, exchange, TAU)
        dev_z.append((-sea[2] - th["chi_DL"][0] - th["chi_par"][0]) / th["chi_DL"][0])
        dev_y.append(surf[1] / th["chi_FL"][0] - 1)
        k_out = math.sqrt((ef / A + LAM**2 / (8 * A**2)) + math.sqrt(exchange**2 + ef * LAM**2 / A) / (2 * A))
        eps2 = (LAM * k_out / exchange) ** 2
        assert abs(dev_z[-1]) < 2 * eps2 and abs(dev_y[-1]) < eps2
    assert 3.6 < dev_z[0] / dev_z[1] < 4.4
    if efr < 0.5:
        assert 3.6 < dev_y[0] / dev_y[1] < 4.4


def test_general_route_non_parabolic_model():
    """H0 = a k² + b k⁴, Λ = λk + λ₃k³: general formulas (with Λ' terms) vs numerical Eq. 4."""
    exchange = 2 * ES
    b4 = 0.3 * A**2 / ES  # k⁴ term comparable to k² at k ~ (ES/A)^½
    lam3 = 0.5 * LAM * A / ES

    def h0(k):
        return A * k**2 + b4 * k**4

    def lam(k):
        return LAM * k + lam3 * k**3

    ef = 0.8 * ES
    k_max = 3.0 * math.sqrt((ef + exchange) / A)
    num = sc.isotropic_2deg([ef], h0, lam, exchange, TAU, k_max)
    ana = sc.isotropic_2deg(
        [ef],
        h0,
        lam,
        exchange,
        TAU,
        k_max,
        dh0=lambda k: 2 * A * k + 4 * b4 * k**3,
        drashba=lambda k: LAM + 3 * lam3 * k**2,
    )
    for key in KEYS:
        np.testing.assert_allclose(num[key], ana[key], rtol=1e-9, err_msg=key)
    th = {key: val[0] for key, val in ana.items()}
    k_cut = 2 * math.sqrt((ef + exchange) / A)

    def ham_of_m(m):
        return ham_isotropic(h0, lam, exchange, m)

    surf, sea = boltzmann(ham_of_m([0, 0, 1]), ef, TAU, k_cut)
    np.testing.assert_allclose(surf[1], th["chi_FL"], rtol=1e-9)
    np.testing.assert_allclose(sea[0], th["chi_DL"], rtol=1e-9)
    xz = _richardson(ham_of_m, ef, k_cut, 0.0)
    yz = _richardson(ham_of_m, ef, k_cut, 0.5 * np.pi)
    assert abs(xz["dl_par"] - th["chi_DL"] - th["chi_par"]) < 1e-7 * abs(th["chi_DL"])
    assert abs(yz["tl"] - th["chi_torqueless"]) < 1e-7 * abs(th["chi_FL"])


# ----------------------------------------------------------------------------
# band sums, signs, limits
# ----------------------------------------------------------------------------
def test_pseudogap_has_only_majority_band():
    """|ε| < J/2 (exchange-dominated): only μ = + contributes; below the band bottom nothing does."""
    e = np.array([-0.45, -0.2, 0.0, 0.3, 0.49]) * J_EXCH
    paper = paper_eq14(e, J_EXCH)
    assert np.all(np.isnan(paper["chi_FL"][1]))  # no μ = − contour
    mod = sc.rashba_2deg(e, MASS, LAM, J_EXCH, TAU)
    np.testing.assert_allclose(mod["chi_FL"], -paper["chi_FL"][0], rtol=1e-12)
    np.testing.assert_allclose(mod["chi_DL"], paper["chi_DL"][0], rtol=1e-12)
    below = sc.rashba_2deg([-0.51 * J_EXCH, -J_EXCH], MASS, LAM, J_EXCH, TAU)
    gen_below = parabolic_general([-0.51 * J_EXCH, -J_EXCH], J_EXCH)
    for key in KEYS:
        assert np.all(below[key] == 0) and np.all(gen_below[key] == 0)


def test_tau_scaling():
    a = sc.rashba_2deg(E_EXCH, MASS, LAM, J_EXCH, TAU)
    b = sc.rashba_2deg(E_EXCH, MASS, LAM, J_EXCH, 3 * TAU)
    np.testing.assert_array_equal(a["chi_DL"], b["chi_DL"])
    np.testing.assert_array_equal(a["chi_par"], b["chi_par"])
    np.testing.assert_allclose(b["chi_FL"], 3 * a["chi_FL"], rtol=1e-14)
    np.testing.assert_allclose(b["chi_torqueless"], 3 * a["chi_torqueless"], rtol=1e-14)


def test_dl_fl_ratio_exchange_dominated():
    """One band (pseudogap), B0 ∈ [J, B_F]: χ_DL = −(ħ/(τJ)) χ_FL (electron sign) within (Λ_F/J)².

    The paper's χ_DL = (ħ/(τJ))χ_FL has the opposite sign because its FL term
    counts carriers drifting along +E.  Bound: with B0 monotonic between J and
    B_F, τJχ_DL/(ħχ_FL^paper) lies in [J²/B_F², B_F/J].
    """
    e = np.array([-0.45, -0.2, 0.0, 0.3, 0.49]) * J_EXCH
    r = sc.rashba_2deg(e, MASS, LAM, J_EXCH, TAU)
    ratio = r["chi_DL"] / r["chi_FL"] * TAU * J_EXCH / sc.HBAR
    k2 = e / A + LAM**2 / (8 * A**2) + np.sqrt(J_EXCH**2 + e * LAM**2 / A) / (2 * A)
    bound = LAM**2 * k2 / J_EXCH**2
    assert np.all(np.abs(ratio + 1) <= bound)
    assert np.all(np.abs(ratio + 1) > 0.1 * bound)  # the bound is not vacuous


def test_edelstein_limit_without_exchange():
    """J = 0, both bands occupied: χ_FL = −e τ λ/(8π ħ a) = −e τ m λ/(4π ħ³); DL, χ_∥, χ_tl vanish."""
    e = np.array([0.5, 2.0, 10.0]) * ES
    r = sc.rashba_2deg(e, MASS, LAM, 0.0, TAU)
    g = parabolic_general(e, 0.0)
    np.testing.assert_allclose(r["chi_FL"], -TAU * LAM / (8 * np.pi * sc.HBAR * A), rtol=1e-12)
    np.testing.assert_allclose(g["chi_FL"], r["chi_FL"], rtol=1e-9)
    for key in ("chi_DL", "chi_par", "chi_torqueless"):
        assert np.all(r[key] == 0) and np.all(g[key] == 0)


def test_tau_from_broadening():
    eta = 1e-3
    assert sc.tau_from_broadening(eta) == pytest.approx(6.582119569e-16 / 2e-3, rel=1e-15)
    assert sc.tau_from_broadening(eta) == pytest.approx(3.291059785e-13, rel=1e-9)


# ----------------------------------------------------------------------------
# Dirac mapping
# ----------------------------------------------------------------------------
HV = 0.6  # eV·nm
D_LAM, D_J, D_DELTA = 0.008, 0.06, 0.008  # paper Fig. 2: λ_R = 8 meV, J = 60 meV, Δ = 8 meV
D_E = np.linspace(-0.15, 0.15, 31)


def test_dirac_cutoff_independent_and_valleys():
    r = sc.dirac(D_E, HV, D_LAM, D_J, D_DELTA, TAU)
    r3 = sc.dirac(D_E, HV, D_LAM, D_J, D_DELTA, TAU, k_max=3 * (2 * 0.15 + 2 * math.hypot(D_J, D_LAM) + D_DELTA) / HV)
    r2 = sc.dirac(D_E, HV, D_LAM, D_J, D_DELTA, TAU, valleys=2)
    for key in KEYS:
        assert np.all(np.isfinite(r[key]))
        np.testing.assert_allclose(r3[key], r[key], rtol=1e-9, atol=1e-12 * np.max(np.abs(r[key])), err_msg=key)
        np.testing.assert_array_equal(r2[key], 2 * r[key])


def test_dirac_fully_occupied_valence_pair_cancels():
    """For ε_F above the valence sector (top at J/2 − Δ) its two bands cancel exactly."""
    e = np.array([0.03, 0.08, 0.15])
    k_max = 1.0 / HV

    def h0(k):
        return -np.hypot(HV * k, D_DELTA)

    def lam(k):
        return D_LAM * HV * k / np.hypot(HV * k, D_DELTA)

    valence = sc.isotropic_2deg(e, h0, lam, D_J, TAU, k_max)
    for key in KEYS:
        assert np.all(valence[key] == 0)


@pytest.mark.parametrize("window", [(0.023, 0.037), (-0.037, -0.023)])
def test_dirac_semigap_tau_relation(window):
    """Semi-gap (one band): τ = (ħ/J)|χ_FL/χ_DL|, i.e. χ_DL = −(ħ/(τJ))χ_FL, within (λ_R/J)².

    |Λ_R,ν| <= λ_R so B0 ∈ [J, (J² + λ_R²)^½] and the bound of the 2DEG test applies.
    """
    e = np.linspace(*window, 8)
    r = sc.dirac(e, HV, D_LAM, D_J, D_DELTA, TAU)
    ratio = r["chi_DL"] / r["chi_FL"] * TAU * D_J / sc.HBAR
    assert np.all(np.abs(ratio + 1) <= (D_LAM / D_J) ** 2)


def test_dirac_large_mass_is_parabolic_2deg():
    """Δ ≫ |ε − Δ|, J: conduction sector → 2DEG with ħ²/2m = (ħv)²/2Δ, λ_2DEG = −λ_R ħv/Δ.

    Relative corrections are O(x²/Δ²) with x² ≈ 2Δ(ε − Δ + J/2): bounded by
    2(max(ε − Δ) + J/2)/Δ, and decreasing as 1/Δ.
    """
    de = np.array([-0.02, 0.0, 0.02, 0.05, 0.1])
    errs = []
    for delta in (20.0, 200.0):
        r = sc.dirac(delta + de, HV, D_LAM, D_J, delta, TAU)
        a = HV**2 / (2 * delta)
        q = sc.rashba_2deg(de, sc.HBAR2_OVER_2ME / a, -D_LAM * HV / delta, D_J, TAU)
        err = max(np.max(np.abs(r[key] / q[key] - 1)) for key in KEYS)
        assert err < 2 * (de.max() + D_J / 2) / delta
        errs.append(err)
    assert 8 < errs[0] / errs[1] < 12


def _dirac_4x4(lam_r):
    """Continuum Dirac model, basis σ ⊗ s: ħv k·σ + Δσ_z − (λ/2)(s × σ)·ẑ − (J/2) s_z."""
    eye = np.eye(2)
    sig = [np.kron(PAULI[i], eye) for i in range(3)]
    spin = [np.kron(eye, PAULI[i]) for i in range(3)]
    const = D_DELTA * sig[2] - 0.5 * lam_r * (spin[0] @ sig[1] - spin[1] @ sig[0]) - 0.5 * D_J * spin[2]

    def ham(kx, ky):
        kx, ky = np.broadcast_arrays(np.asarray(kx, float), np.asarray(ky, float))
        return HV * (kx[..., None, None] * sig[0] + ky[..., None, None] * sig[1]) + const

    return ham, np.array(spin)


def test_dirac_mapping_against_exact_4x4_fermi_surface():
    """χ_FL of the mapping vs Eq. 4's surface term for the full 4x4 model (m̂ = ẑ).

    The mapping is first order in λ_R: the deviation must be below (λ_R/J)² and
    scale as λ_R² (halving λ_R divides it by 4, within 10 %).
    """
    devs = []
    for lam_r in (D_LAM, D_LAM / 2):
        ham, spin = _dirac_4x4(lam_r)
        r = sc.dirac([0.03, 0.1], HV, lam_r, D_J, D_DELTA, TAU)
        dev = []
        for n, ef in enumerate((0.03, 0.1)):
            surf, _ = boltzmann(ham, ef, TAU, (ef + 0.2) / HV, spin_ops=spin, sea=False, n_phi=32)
            assert abs(surf[0]) + abs(surf[2]) < 1e-9 * abs(surf[1])
            dev.append(surf[1] / r["chi_FL"][n] - 1)
        devs.append(np.array(dev))
        assert np.all(np.abs(dev) < (lam_r / D_J) ** 2)
    assert np.all((3.6 < devs[0] / devs[1]) & (devs[0] / devs[1] < 4.4))


# ----------------------------------------------------------------------------
# input validation
# ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"mass": 0.0}, "mass"),
        ({"mass": -1.0}, "mass"),
        ({"tau": 0.0}, "tau"),
        ({"tau": float("nan")}, "tau"),
        ({"rashba": float("inf")}, "rashba"),
        ({"exchange": float("nan")}, "exchange"),
        ({"energies": [0.0, float("nan")]}, "energies"),
        ({"energies": []}, "energies"),
    ],
)
def test_rashba_2deg_bad_input(kwargs, name):
    args = {"energies": [0.0], "mass": MASS, "rashba": LAM, "exchange": J_EXCH, "tau": TAU} | kwargs
    with pytest.raises(ValueError, match=name):
        sc.rashba_2deg(**args)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"hbar_v": 0.0}, "hbar_v"),
        ({"mass": float("nan")}, "mass"),
        ({"tau": -1e-13}, "tau"),
        ({"valleys": 0}, "valleys"),
        ({"valleys": 1.5}, "valleys"),
        ({"k_max": -1.0}, "k_max"),
    ],
)
def test_dirac_bad_input(kwargs, name):
    args = {"energies": [0.03], "hbar_v": HV, "rashba": D_LAM, "exchange": D_J, "mass": D_DELTA, "tau": TAU} | kwargs
    with pytest.raises(ValueError, match=name):
        sc.dirac(**args)


def test_isotropic_bad_input():
    with pytest.raises(ValueError, match="k_max"):  # a Fermi contour beyond the cutoff
        sc.isotropic_2deg([0.3 * J_EXCH], lambda k: A * k**2, lambda k: LAM * k, J_EXCH, TAU, 0.5)
    with pytest.raises(ValueError, match="h0"):
        sc.isotropic_2deg([0.0], 1.0, lambda k: LAM * k, J_EXCH, TAU, 1.0)
    with pytest.raises(ValueError, match="tau"):
        sc.isotropic_2deg([0.0], lambda k: A * k**2, lambda k: LAM * k, J_EXCH, 0.0, 1.0)
    with pytest.raises(ValueError, match="eta"):
        sc.tau_from_broadening(0.0)
