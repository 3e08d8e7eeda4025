"""k-space moments: identity with real space, grids, normalisation, window, chunking, bad input.

Units: eV, nm; μ_nm = Tr[A T_n(H̃) B T_m(H̃)]/D (CONVENTIONS "KPM conventions").
"""
import math

import numpy as np
import pytest

from gpukpm.engine.spectrum import margin_for
from gpukpm import kpm, models
from gpukpm.run import io
from gpukpm.response import kernels
from gpukpm.engine.kgrid import MonkhorstPack, PolarGrid, SquareGrid, make_grid
from gpukpm.engine.kspace import kspace_moments
from gpukpm.response.kubo import kubo_response, window_usable_range
from gpukpm.engine.spectrum import SpectrumLeakError

RNG = np.random.default_rng(20261201)
OPERATORS = ("sx", "sy", "sz", "jx", "jy")


def _unit(rng):
    v = rng.normal(size=3)
    return tuple(v / np.linalg.norm(v))


def _relative(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


# ----------------------------------------------------------------------------- identity with real space
@pytest.mark.parametrize("shape, right", [((3, 4), "jx"), ((5, 2), "jy")])
def test_graphene_kspace_equals_exact_real_space(shape, right):
    """Pristine periodic L1 × L2 honeycomb: k space on the matching grid = exact trace in real space.

    Random m̂, Rashba, exchange and mass; the same bounds for both so that a, b agree.  Also checks
    the position gauge (the real-space current is built from bond vectors, the k-space one is −∂H/∂k).
    """
    rng = np.random.default_rng(7 + shape[0])
    model = models.GrapheneRashba(t=2.7, rashba=rng.uniform(0.2, 0.6), exchange=rng.uniform(0.2, 0.8),
                                  mass=rng.uniform(0.1, 0.4), magnetization=_unit(rng))
    ks = kspace_moments(model, shape, left=OPERATORS, right=right, num_moments=40, progress=False)
    system = model.real_space(shape)
    rs = kpm.kubo_moments(system, left=OPERATORS, right=right, num_moments=40, trace="exact",
                          bounds=(ks.emin, ks.emax), progress=False)
    assert (ks.a, ks.b, ks.num_orbitals, ks.area) == pytest.approx((rs.a, rs.b, rs.num_orbitals, rs.area),
                                                                   rel=1e-14)
    assert ks.mu.shape == rs.mu.shape == (5, 40, 40)
    for k in range(len(OPERATORS)):
        assert _relative(ks.mu[k], rs.mu[k]) < 1e-10


def test_square_2deg_kspace_equals_exact_real_space():
    model = models.Rashba2DEGLattice(mass=0.4, rashba=0.3, exchange=0.25, magnetization=_unit(RNG),
                                     lattice_constant=0.5)
    ks = kspace_moments(model, (3, 5), left=OPERATORS, num_moments=32, progress=False)
    rs = kpm.kubo_moments(model.real_space((3, 5)), left=OPERATORS, num_moments=32, trace="exact",
                          bounds=(ks.emin, ks.emax), progress=False)
    for k in range(len(OPERATORS)):
        assert _relative(ks.mu[k], rs.mu[k]) < 1e-10


def test_moments_are_hermitian_and_the_kpm_export():
    assert kpm.kspace_moments is kspace_moments
    model = models.GrapheneRashba(rashba=0.3, exchange=0.5, mass=0.1, magnetization=_unit(RNG))
    mom = kspace_moments(model, (4, 4), num_moments=20, progress=False)
    assert mom.trace == "kspace" and mom.hermitian and mom.num_samples == 1
    assert list(mom.sample_vectors) == [-1] and list(mom.sample_realisations) == [0]
    mu = mom.mu
    assert np.abs(mu - np.conj(np.swapaxes(mu, 1, 2))).max() < 1e-14 * np.abs(mu).max()


# ----------------------------------------------------------------------------- grids
def test_monkhorst_pack_is_the_lattice_kgrid_and_patches_wrap():
    lattice = models.GrapheneRashba().lattice
    grid = MonkhorstPack(lattice, (4, 6))
    k, rho = grid.points(0, grid.num_points)
    np.testing.assert_array_equal(k, lattice.kgrid(4, 6))
    assert np.all(rho == 1) and grid.area == pytest.approx(24 * lattice.cell_area, rel=1e-15)
    patch = MonkhorstPack(lattice, (4, 6), patch=((-1, 2), (4, 3)))  # n1 ∈ {3, 0}, n2 ∈ {4, 5, 0}
    n1, n2 = patch.indices(0, patch.num_points)
    assert list(zip(n1, n2)) == [(3, 4), (3, 5), (3, 0), (0, 4), (0, 5), (0, 0)]
    full = {tuple(np.round(p, 12)) for p in k}
    assert {tuple(np.round(p, 12)) for p in patch.points(0, 6)[0]} <= full
    assert patch.area == grid.area  # a patch is its share of the full supercell


def test_chunks_of_a_grid_are_the_whole_grid():
    for grid in (PolarGrid(2.0, 7, 5, k_min=0.5, radial_rule="gauss"), SquareGrid(1.5, 9),
                 MonkhorstPack(models.GrapheneRashba().lattice, (5, 3))):
        whole = grid.points(0, grid.num_points)
        parts = [grid.points(s, min(s + 4, grid.num_points)) for s in range(0, grid.num_points, 4)]
        np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), whole[0])
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), whole[1])
        assert whole[1].mean() == pytest.approx(1.0, rel=1e-12)  # ρ has mean 1 by construction of Ω


@pytest.mark.parametrize("rule", ["midpoint", "gauss"])
def test_polar_weights_integrate_d2k_over_2pi2(rule):
    """Σ w = (k_max² − k_min²)/(4π) exactly; a smooth integral converges as h² (midpoint) or at once (Gauss)."""
    exact = (np.exp(-0.25) - np.exp(-9.0)) / (4 * np.pi)  # ∫ e^{−q²} d²q/(2π)² over 0.5 < q < 3
    errors = []
    for num_radial in (40, 80):
        grid = PolarGrid(3.0, num_radial, 6, k_min=0.5, centre=(0.3, -0.2), radial_rule=rule)
        k, rho = grid.points(0, grid.num_points)
        w = rho / grid.area
        assert w.sum() == pytest.approx((3.0**2 - 0.5**2) / (4 * np.pi), rel=1e-13)
        q2 = np.sum((k - [0.3, -0.2]) ** 2, axis=1)
        errors.append(abs(np.sum(w * np.exp(-q2)) / exact - 1))
    if rule == "gauss":
        assert max(errors) < 1e-13
    else:
        assert errors[0] < 1e-3 and 3.9 < errors[0] / errors[1] < 4.1


def test_square_grid_disc_and_square():
    disc = SquareGrid(2.0, 200, centre=(1.0, 0.5))
    k, rho = disc.points(0, disc.num_points)
    r = np.hypot(k[:, 0] - 1.0, k[:, 1] - 0.5)
    assert r.max() < 2.0 and np.all(rho == 1)
    h = disc.spacing
    # every midpoint of the square inside the disc is there, no other
    axis = -2.0 + (np.arange(200) + 0.5) * h
    X, Y = np.meshgrid(axis, axis)
    assert disc.num_points == np.count_nonzero(X**2 + Y**2 < 4.0)
    w = rho / disc.area
    assert w.sum() == pytest.approx(disc.num_points * h**2 / (2 * np.pi) ** 2, rel=1e-13)
    assert w.sum() == pytest.approx(4.0 / (4 * np.pi), rel=2e-3)
    square = SquareGrid(2.0, 10, cutoff="square")
    assert square.num_points == 100 and square.area == pytest.approx((2 * np.pi / 0.4) ** 2, rel=1e-14)


def test_grid_mappings_round_trip():
    graphene = models.GrapheneRashba()
    cont = models.Rashba2DEG(rashba=0.02, exchange=0.1)
    for model, grid in ((cont, PolarGrid(1.0, 5, 4, radial_rule="gauss")), (cont, SquareGrid(1.0, 6)),
                        (graphene, MonkhorstPack(graphene.lattice, (3, 4), patch=((1, 2), (0, 4))))):
        again = make_grid(model, grid.to_dict())
        assert type(again) is type(grid) and again.to_dict() == grid.to_dict()
    assert make_grid(cont, {"kind": "polar", "k_max": 1.0, "num_k": 3, "num_phi": 2}).num_points == 6
    assert isinstance(make_grid(graphene, [2, 3]), MonkhorstPack)


# ----------------------------------------------------------------------------- normalisation
def test_continuum_normalisation_is_the_k_integral():
    """(D/Ω) μ_nm = Σ_k w_k tr_k[A T_n B T_m]: for A = B = s_x and n = m = 0, 2 Σ_k w_k = 2 k_max²/(4π)."""
    model = models.Rashba2DEG(mass=0.5, rashba=0.03, exchange=0.05, magnetization=_unit(RNG))
    grid = PolarGrid(1.3, 30, 7)
    mom = kspace_moments(model, grid, left=("sx", "sy"), right="sx", num_moments=8, progress=False)
    assert mom.num_orbitals == 2 * grid.num_points
    assert mom.orbital_density * mom.mu[0, 0, 0].real == pytest.approx(2 * 1.3**2 / (4 * np.pi), rel=1e-13)
    assert mom.mu[0, 0, 0] == pytest.approx(1.0, rel=1e-13)
    # direct sum with the grid weights for a higher moment
    k, rho = grid.points(0, grid.num_points)
    E, V = np.linalg.eigh(model.bloch(k))
    T = np.cos(np.arange(8)[None, None, :] * np.arccos((E - mom.b) / mom.a)[..., None])  # (k, i, n)
    vh = np.conj(np.swapaxes(V, -1, -2))
    A = vh @ model.bloch_operator("sy", k) @ V
    B = vh @ model.bloch_operator("sx", k) @ V
    direct = np.einsum("k,kij,kjn,kji,kim->nm", rho / grid.area, A, T, B, T)
    assert _relative(mom.orbital_density * mom.mu[1], direct) < 1e-12


# ----------------------------------------------------------------------------- chunking
def test_moments_do_not_depend_on_chunk_or_batch_size():
    model = models.GrapheneRashba(rashba=0.4, exchange=0.6, mass=0.2, magnetization=_unit(RNG))
    runs = [kspace_moments(model, (6, 5), num_moments=30, chunk_size=c, memory_budget=m, progress=False)
            for c, m in ((None, None), (1, None), (7, 2**20), (30, 10**9))]
    assert runs[2].provenance["gemm_calls"] > runs[3].provenance["gemm_calls"] > 0
    for other in runs[1:]:
        assert (other.a, other.b) == (runs[0].a, runs[0].b)
        assert _relative(other.mu, runs[0].mu) < 1e-12


# ----------------------------------------------------------------------------- energy window
MASS, LAM = 1.0, 0.02  # m_e, eV·nm
ES = LAM**2 * MASS / (2 * models.HBAR2_OVER_2ME)  # m λ²/ħ² (eV)
J2DEG = 40 * ES


def _2deg_grid(e_top):
    k_max = 1.02 * math.sqrt((e_top + J2DEG) * MASS / models.HBAR2_OVER_2ME)
    return PolarGrid(k_max, 160, 4)


def test_window_results_converge_as_the_window_widens():
    """Fixed a, b (bounds by hand): only the projector changes.  At ε_F well inside, the sea and
    surface responses approach the full-grid ones as E_hi grows (the pairs E_+ < ε_F < E_− across
    the window top are the ones a narrow window drops).  The narrowest window (error 5.9e-2
    measured before the guard existed) puts ε_F within a spin splitting + 3η of its top: refused."""
    model = models.Rashba2DEG(mass=MASS, rashba=LAM, exchange=J2DEG)
    grid = _2deg_grid(200 * ES)
    energies = np.array([25, 30, 35]) * ES
    kw = dict(left=("sx", "sy"), num_moments=160, epsilon=0.1, progress=False)
    full = kspace_moments(model, grid, **kw)
    kw["bounds"] = (full.emin, full.emax)

    def response(window):
        mom = kspace_moments(model, grid, window=window, **kw)
        return np.concatenate([kubo_response(mom, energies, "lorentz", part).values.ravel()
                               for part in ("sea", "surface")]), mom

    ref, _ = response(None)
    with pytest.raises(ValueError, match=r"lie within .* of the k-space window .* Usable Fermi energies"):
        response((-25 * ES, 60 * ES))
    errors, kept = [], []
    for top in (90, 120):
        values, mom = response((-25 * ES, top * ES))
        errors.append(np.abs(values - ref).max() / np.abs(ref).max())
        kept.append(mom.provenance["kept_fraction_states"])
        assert mom.provenance["window_cuts"] == [False, True]  # the bottom lies below the band bottom
    assert kept[0] < kept[1] < 1
    # measured: 4.4e-4, 7.1e-5
    assert errors[0] < 1e-3 and errors[1] < errors[0] / 3


def _count_eigh(monkeypatch):
    counter = {"matrices": 0, "calls": 0}
    original = np.linalg.eigh

    def counting(a, *args, **kwargs):
        counter["matrices"] += int(np.prod(np.shape(a)[:-2]))
        counter["calls"] += 1
        return original(a, *args, **kwargs)

    monkeypatch.setattr(np.linalg, "eigh", counting)
    return counter


@pytest.mark.parametrize("window, budget, source", [
    ((-3.0, 2.5), None, "kept eigenvalues"),
    (None, None, "kept eigenvalues"),
    ((-3.0, 2.5), 2**16, "window"),  # the stored records outgrow half the budget
    (None, 2**16, "gershgorin"),
])
@pytest.mark.parametrize("select", ["all", "bound"])
def test_each_k_point_is_diagonalised_once(monkeypatch, window, budget, source, select):
    """Every k point (select="all"; "bound": every selected one) goes through eigh once, in full chunks."""
    model = models.GrapheneRashba(rashba=0.1, exchange=0.2, mass=0.05, magnetization=_unit(RNG))
    grid = MonkhorstPack(model.lattice, (24, 24))
    E = np.linalg.eigvalsh(model.bloch(grid.points(0, grid.num_points)[0]))
    counter = _count_eigh(monkeypatch)
    mom = kspace_moments(model, grid, num_moments=12, window=window, chunk_size=100, memory_budget=budget,
                         select=select, progress=False)
    prov = mom.provenance
    num = prov["num_diagonalised_k"]
    assert counter["matrices"] == prov["num_diagonalised"] == num
    assert num == grid.num_points if select == "all" or window is None else num < grid.num_points
    assert counter["calls"] == prov["eigh_calls"] == math.ceil(num / 100)
    assert prov["bounds_source"] == source
    inside = np.ones(E.shape, bool) if window is None else (E >= window[0]) & (E <= window[1])
    assert prov["num_kept_states"] == inside.sum()
    assert prov["kept_fraction_k"] == pytest.approx(inside.any(axis=1).mean(), rel=1e-15)
    assert prov["kept_fraction_states"] == pytest.approx(inside.mean(), rel=1e-15)
    # emin/emax are the kept extremes in every case (eigvalsh and eigh agree to round-off)
    assert (mom.emin, mom.emax) == pytest.approx((E[inside].min(), E[inside].max()), rel=1e-13)
    if source == "kept eigenvalues":
        lo, hi = E[inside].min(), E[inside].max()
    elif source == "window":
        lo, hi = window
    else:
        H = model.bloch(grid.points(0, grid.num_points)[0])
        radius = np.abs(H).sum(-1) - np.abs(np.diagonal(H, axis1=1, axis2=2))
        lo = (np.diagonal(H, axis1=1, axis2=2).real - radius).min()
        hi = (np.diagonal(H, axis1=1, axis2=2).real + radius).max()
    eps = margin_for(12)  # the default margin for N = 12
    # b = (hi + lo)/2 ≈ 0 here: absolute round-off of eigh vs eigvalsh, a few n ε_mach max|E| (n = 4)
    assert (mom.a, mom.b) == pytest.approx(((hi - lo) / (2 - 2 * eps), (hi + lo) / 2), rel=1e-13,
                                           abs=1e-14 * max(abs(lo), abs(hi)))


def test_fallback_bounds_give_the_moments_of_those_bounds():
    """Overflowing the record budget changes only the rescaling: the same moments as bounds by hand."""
    model = models.GrapheneRashba(rashba=0.1, exchange=0.2, mass=0.05, magnetization=_unit(RNG))
    kw = dict(num_moments=16, window=(-3.0, 2.5), chunk_size=50, progress=False)
    over = kspace_moments(model, (20, 20), memory_budget=2**16, **kw)
    given = kspace_moments(model, (20, 20), bounds=(-3.0, 2.5), **kw)
    assert over.provenance["bounds_source"] == "window" and given.provenance["bounds_source"] == "given"
    assert _relative(over.mu, given.mu) < 1e-12


def test_window_excluding_the_energies_raises_at_reconstruction():
    model = models.Rashba2DEG(mass=MASS, rashba=LAM, exchange=J2DEG)
    mom = kspace_moments(model, _2deg_grid(60 * ES), num_moments=40, window=(-25 * ES, 60 * ES),
                         progress=False)
    assert mom.emax <= 60 * ES and mom.emin >= -25 * ES
    kubo_response(mom, [0.0], "lorentz", "sea")  # inside the window's usable range: fine
    with pytest.raises(ValueError, match=r"within [0-9.]+ eV of the k-space window"):
        kubo_response(mom, [30 * ES], "lorentz", "sea")  # inside the window, but within its margin
    with pytest.raises(ValueError, match="outside the expansion interval"):
        kubo_response(mom, [70 * ES], "lorentz", "sea")
    with pytest.raises(ValueError, match="contains no eigenvalue"):
        kspace_moments(model, _2deg_grid(60 * ES), num_moments=40, window=(-0.9, -0.8), progress=False)


def test_an_empty_patch_with_bounds_has_zero_moments():
    """A patch of a split grid with nothing in the window: μ = 0, emin/emax = the given bounds."""
    model = models.GrapheneRashba(rashba=0.01, exchange=0.06, mass=0.01)
    far = MonkhorstPack(model.lattice, (300, 300), patch=((140, 20), (-10, 20)))  # around M = b1/2
    mom = kspace_moments(model, far, num_moments=16, window=(-0.3, 0.3), bounds=(-0.3, 0.3), progress=False)
    assert mom.provenance["num_kept_k"] == 0 and np.all(mom.mu_samples == 0)
    assert (mom.emin, mom.emax) == (-0.3, 0.3) and mom.num_orbitals == 4 * 400


def test_given_bounds_that_cut_the_kept_spectrum_raise():
    model = models.GrapheneRashba(rashba=0.1, exchange=0.2)
    with pytest.raises(SpectrumLeakError, match="outside bounds"):
        kspace_moments(model, (6, 6), num_moments=8, bounds=(-1.0, 1.0), progress=False)


def test_moments_file_round_trip(tmp_path):
    model = models.Rashba2DEG(mass=MASS, rashba=LAM, exchange=J2DEG, magnetization=(0.6, 0.0, 0.8))
    mom = kspace_moments(model, _2deg_grid(60 * ES), num_moments=10, window=(-25 * ES, 60 * ES),
                         progress=False)
    assert mom.parameters["magnetization"] == [0.6, 0.0, 0.8]
    assert mom.parameters["grid"]["kind"] == "polar" and mom.parameters["window"] == [-25 * ES, 60 * ES]
    io.save_moments(tmp_path / "k.h5", mom)
    back = io.load_moments(tmp_path / "k.h5")
    np.testing.assert_array_equal(back.mu_samples, mom.mu_samples)
    assert (back.trace, back.area, back.num_orbitals, back.emin) == (mom.trace, mom.area, mom.num_orbitals,
                                                                     mom.emin)
    assert make_grid(model, back.parameters["grid"]).to_dict() == mom.parameters["grid"]


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, name", [
    ({"num_moments": 1}, "num_moments"),
    ({"num_moments": 2.5}, "num_moments"),
    ({"window": (0.3, -0.3)}, "window"),
    ({"window": (0.0, float("inf"))}, "window"),
    ({"window": (0.1,)}, "window"),
    ({"bounds": (1.0, 1.0)}, "bounds"),
    ({"left": ("sx", "spin")}, "left"),
    ({"left": ()}, "left"),
    ({"right": "jz"}, "right"),
    ({"grid": (0, 4)}, "shape"),
    ({"grid": None}, "grid"),
    ({"chunk_size": 0}, "chunk_size"),
    ({"memory_budget": -1}, "memory_budget"),
    ({"epsilon": 0.7}, "epsilon"),
    ({"backend": "tpu"}, "backend"),
    ({"select": "some", "window": (-1.0, 1.0)}, "select"),
    ({"moments_route": "dgemm"}, "moments_route"),
])
def test_bad_input_fails_before_any_work(monkeypatch, kwargs, name):
    model = models.GrapheneRashba(rashba=0.1, exchange=0.2)

    def no_work(self, k):
        raise AssertionError("a Bloch matrix was built before the input was validated")

    monkeypatch.setattr(models.GrapheneRashba, "bloch", no_work)
    args = dict(grid=(3, 3), num_moments=8, progress=False) | kwargs
    with pytest.raises(ValueError, match=name):
        kspace_moments(model, **args)


@pytest.mark.parametrize("make, name", [
    (lambda: PolarGrid(0.0, 3, 3), "k_max"),
    (lambda: PolarGrid(1.0, 0, 3), "num_radial"),
    (lambda: PolarGrid(1.0, 3, -2), "num_angular"),
    (lambda: PolarGrid(1.0, 3, 3, k_min=2.0), "k_min"),
    (lambda: PolarGrid(1.0, 3, 3, radial_rule="simpson"), "radial_rule"),
    (lambda: SquareGrid(1.0, 0), "num"),
    (lambda: SquareGrid(1.0, 4, centre=(0, float("nan"))), "centre"),
    (lambda: SquareGrid(1.0, 4, cutoff="circle"), "cutoff"),
    (lambda: MonkhorstPack(models.GrapheneRashba().lattice, (3, 3), patch=((0, 4), (0, 1))), "patch"),
    (lambda: make_grid(models.Rashba2DEG(), (3, 3)), "continuum"),
    (lambda: make_grid(models.Rashba2DEG(), {"kind": "polar", "k_max": 1.0, "num_k": 3}), "num_phi"),
    (lambda: make_grid(models.Rashba2DEG(), {"kind": "polar", "k_max": 1, "num_k": 3, "num_phi": 2, "x": 1}),
     "unknown"),
    (lambda: make_grid(models.Rashba2DEGLattice(), MonkhorstPack(models.GrapheneRashba().lattice, (2, 2))),
     "lattice"),
])
def test_bad_grids(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_fig2_window_refuses_fermi_energies_in_its_edge_band():
    """Fig. 2 couplings, ±0.3 eV window: the spin splitting of the kept states is J_ex + O(λ_R) ≈ 61 meV
    (:func:`gpukpm.engine.kspace.band_splitting`), so with 3η the usable range is about ±0.23 eV; 0.25 eV
    (S_x off by −17 % before the guard) and 0.295 eV (−92 %) are refused with the margin named."""
    model = models.GrapheneRashba(rashba=0.008, exchange=0.060, mass=0.008, magnetization=(0.0, 0.0, 1.0))
    mom = kspace_moments(model, (300, 300), num_moments=128, window=(-0.3, 0.3), progress=False)
    splitting = mom.provenance["max_band_splitting"]
    assert 0.060 <= splitting <= 0.060 + 2 * 0.008  # Weyl: J_ex ≤ 2‖V‖ ≤ J_ex + 2λ_R at the window edge
    assert mom.provenance["window_cuts"] == [True, True]
    eta = kernels.broadening("jackson", mom.a, 128)
    lo, hi, margin = window_usable_range(mom, eta)
    assert margin == pytest.approx(splitting + 3 * eta) and hi == pytest.approx(0.3 - margin) and lo == -hi
    kubo_response(mom, [-0.2, 0.0, 0.2], "jackson", "total")
    for energy in (0.25, 0.295, -0.25):
        with pytest.raises(ValueError, match=rf"within {margin:.4g} eV of the k-space window \[-0.3, 0.3\].*"
                                             rf"Usable Fermi energies: \[{lo:.6g}, {hi:.6g}\] eV"):
            kubo_response(mom, [energy], "jackson", "sea")


def test_continuum_grid_edge_refuses_energies_whose_contour_leaves_the_grid():
    """Fig. 4b's grid (k_max = 0.656 nm⁻¹): the lower band reaches the edge at ħ²k²/2m − B/2 = 9.83 meV;
    above it (less 3η) a Fermi contour leaves the grid, and the response there is refused.  A Dirac
    grid also cuts its valence bands: energies below their highest edge value are refused."""
    model = models.Rashba2DEG(mass=1.0, rashba=0.02, exchange=0.0005249)
    mom = kspace_moments(model, PolarGrid(0.656, 200, 8), num_moments=340, progress=False)
    k = 0.656
    expected = models.HBAR2_OVER_2ME * k**2 - math.hypot(0.02 * k, 0.0005249) / 2  # lowest band at |k| = k_max
    lo, hi = mom.provenance["grid_edge_range"]
    assert lo is None and hi == pytest.approx(expected, rel=1e-9)
    eta = kernels.broadening("jackson", mom.a, 340)
    kubo_response(mom, [0.0, expected - 3.5 * eta], "jackson", "surface")
    with pytest.raises(ValueError, match=r"the bands on the k grid's edge \(k_max\) span to \[None, 0.0098"):
        kubo_response(mom, [expected - 2.5 * eta], "jackson", "sea")
    dirac = models.Dirac(hbar_v=0.575, rashba=0.008, exchange=0.06, mass=0.008)
    lo, hi = kspace_moments(dirac, PolarGrid(0.4, 100, 8), num_moments=64,
                            progress=False).provenance["grid_edge_range"]
    assert -0.23 < lo < -0.15 and 0.15 < hi < 0.23 and lo == pytest.approx(-hi, rel=0.2)  # ±(ħv k_max − splitting)
    lattice = kspace_moments(models.GrapheneRashba(rashba=0.01), (12, 12), num_moments=32, progress=False)
    assert lattice.provenance["grid_edge_range"] is None  # a periodic grid has no edge
