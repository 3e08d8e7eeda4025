"""Models: continuum limits, real space vs k space, disorder, validation."""
import json
import math

import numpy as np
import pytest
import scipy.sparse
import scipy.stats

from gpukpm.models import hamiltonians
from gpukpm.models import HBAR2_OVER_2ME, Dirac, GrapheneRashba, Rashba2DEG, Rashba2DEGLattice, model_from_dict
from gpukpm.models.random import disorder_generator


def random_unit(rng):
    m = rng.normal(size=3)
    return m / np.linalg.norm(m)


def random_graphene(rng, **overrides):
    params = dict(
        rashba=rng.uniform(-0.3, 0.3),
        exchange=rng.uniform(-0.3, 0.3),
        mass=rng.uniform(-0.2, 0.2),
        magnetization=random_unit(rng),
    )
    params.update(overrides)
    return GrapheneRashba(**params)


def random_2deg_lattice(rng):
    return Rashba2DEGLattice(
        mass=rng.uniform(0.3, 2.0),
        rashba=rng.uniform(-0.2, 0.2),
        exchange=rng.uniform(-0.2, 0.2),
        magnetization=random_unit(rng),
    )


def valleys_from_reciprocal(model):
    b1, b2 = model.lattice.reciprocal_vectors
    K = (2 * b1 + b2) / 3
    return K, -K


# --------------------------------------------------------------------------- honeycomb at K
def test_valleys_are_the_dirac_points():
    g = GrapheneRashba()
    K, Kp = valleys_from_reciprocal(g)
    np.testing.assert_allclose(g.valleys, [K, Kp], atol=1e-12)
    np.testing.assert_allclose(K, [4 * np.pi / (3 * 0.246), 0.0], rtol=1e-14)
    for k in (K, Kp):  # pure hopping: fourfold zero energy
        np.testing.assert_allclose(np.linalg.eigvalsh(g.bloch(k)), 0.0, atol=1e-13)


@pytest.mark.parametrize("trial", range(8))
def test_graphene_at_K_matches_continuum_at_k0(trial):
    """Eigenvalues of H(K) equal those of Δσ_z − (λ_R/2)(s × σ)·ẑ − (J_ex/2) m̂·s (checks λ_R/3)."""
    rng = np.random.default_rng(100 + trial)
    g = random_graphene(rng)
    K, Kp = valleys_from_reciprocal(g)
    dirac = Dirac.from_graphene(g)
    expected = np.linalg.eigvalsh(dirac.bloch(np.zeros(2)))
    np.testing.assert_allclose(np.linalg.eigvalsh(g.bloch(K)), expected, atol=1e-12)
    # K' is the time-reversed partner of K: its k = 0 spectrum is that of the continuum with −m̂.
    expected_kp = np.linalg.eigvalsh(dirac.with_magnetization(-np.asarray(g.magnetization)).bloch(np.zeros(2)))
    np.testing.assert_allclose(np.linalg.eigvalsh(g.bloch(Kp)), expected_kp, atol=1e-12)


def test_graphene_at_K_prime_with_out_of_plane_m_without_mass():
    """For m̂ = ±ẑ and Δ = 0 both valleys share the continuum spectrum at k = 0."""
    rng = np.random.default_rng(7)
    g = random_graphene(rng, mass=0.0, magnetization=(0.0, 0.0, -1.0))
    expected = np.linalg.eigvalsh(Dirac.from_graphene(g).bloch([0.0, 0.0]))
    for k in g.valleys:
        np.testing.assert_allclose(np.linalg.eigvalsh(g.bloch(k)), expected, atol=1e-12)


@pytest.mark.parametrize("trial", range(6))
def test_dirac_is_graphene_expansion_near_K(trial):
    """H_graphene(K + q) = H_Dirac(q) + O(t (qa)²) + O(λ_R qa); K' + q ≅ Dirac(−q, −m̂).

    The Dirac model keeps the hopping to first order in q but the Rashba term
    at zeroth order (as usual, λ_R ≪ t).  Bounds from the Taylor series of the
    three bond terms (|q·δ| ≤ qa/√3): the second-order hopping term is at most
    (t/2)(qa)², the first-order Rashba term at most |λ_R| qa/√3; Weyl's
    inequality carries the matrix bound over to the eigenvalues.  K' is the
    time-reversed partner of K: spec H(K' + q; m̂) = spec H(K − q; −m̂).
    """
    rng = np.random.default_rng(200 + trial)
    g = random_graphene(rng, rashba=0.0) if trial % 2 == 0 else random_graphene(rng)
    a = g.lattice_constant
    dirac = Dirac.from_graphene(g)
    dirac_tr = dirac.with_magnetization(-np.asarray(g.magnetization))
    K, Kp = valleys_from_reciprocal(g)
    phi = rng.uniform(0, 2 * np.pi)
    direction = np.array([math.cos(phi), math.sin(phi)])
    errors = []
    for qa in (0.02, 0.01):
        q = qa / a * direction
        bound = (g.t / 2 * qa**2 + abs(g.rashba) / math.sqrt(3) * qa) * (1 + qa)
        diff = np.linalg.norm(g.bloch(K + q) - dirac.bloch(q), 2)
        assert diff <= bound
        errors.append(diff)
        e_graphene = np.linalg.eigvalsh(g.bloch(K + q))
        assert np.abs(e_graphene - np.linalg.eigvalsh(dirac.bloch(q))).max() <= bound
        e_graphene_kp = np.linalg.eigvalsh(g.bloch(Kp + q))
        assert np.abs(e_graphene_kp - np.linalg.eigvalsh(dirac_tr.bloch(-q))).max() <= bound
    if g.rashba == 0.0:
        assert 3.5 < errors[0] / errors[1] < 4.5  # quadratic in q


def test_dirac_velocity():
    g = GrapheneRashba(t=3.1, lattice_constant=0.25)
    assert Dirac.from_graphene(g).hbar_v == pytest.approx(math.sqrt(3) / 2 * 3.1 * 0.25, rel=1e-15)
    k = np.array([0.3, -0.2])
    e = np.linalg.eigvalsh(Dirac(hbar_v=0.5).bloch(k))
    np.testing.assert_allclose(e, 0.5 * np.linalg.norm(k) * np.array([-1, -1, 1, 1]), atol=1e-14)


# --------------------------------------------------------------------------- square 2DEG
@pytest.mark.parametrize("trial", range(4))
def test_square_lattice_reduces_to_continuum_2deg(trial):
    """Relative error ‖H_lat(k) − H_2DEG(k)‖ / ‖H_2DEG(k) − H_2DEG(0)‖ ≤ (ka)²/6, and ∝ k²."""
    rng = np.random.default_rng(300 + trial)
    lat = random_2deg_lattice(rng)
    cont = Rashba2DEG(mass=lat.mass, rashba=lat.rashba, exchange=lat.exchange, magnetization=lat.magnetization)
    a = lat.lattice_constant
    phi = rng.uniform(0, 2 * np.pi)
    direction = np.array([math.cos(phi), math.sin(phi)])
    relative = []
    for ka in (0.02, 0.01):
        k = ka / a * direction
        diff = np.linalg.norm(lat.bloch(k) - cont.bloch(k), 2)
        scale = np.linalg.norm(cont.bloch(k) - cont.bloch(np.zeros(2)), 2)
        relative.append(diff / scale)
        assert diff / scale <= ka**2 / 6
    assert 3.5 < relative[0] / relative[1] < 4.5


def test_2deg_lattice_band_bottom_and_hopping():
    lat = Rashba2DEGLattice(mass=0.5, lattice_constant=0.2)
    assert lat.hopping == pytest.approx(HBAR2_OVER_2ME / (0.5 * 0.04), rel=1e-15)
    np.testing.assert_allclose(np.linalg.eigvalsh(lat.bloch([0.0, 0.0])), 0.0, atol=1e-14)
    corner = np.pi / 0.2 * np.ones(2)
    np.testing.assert_allclose(np.linalg.eigvalsh(lat.bloch(corner)), 8 * lat.hopping, rtol=1e-14)


def test_continuum_2deg_formula():
    """Eq. 12: ε± = ħ²k²/2m ± |(λ_R/2) k φ̂ + (J/2) m̂| with φ̂ = ẑ × k̂."""
    rng = np.random.default_rng(5)
    m = random_unit(rng)
    model = Rashba2DEG(mass=0.7, rashba=0.11, exchange=0.05, magnetization=m)
    k = np.array([0.4, 0.9])
    phi_hat = np.array([-k[1], k[0], 0.0]) / np.linalg.norm(k)
    field = 0.5 * 0.11 * np.linalg.norm(k) * phi_hat + 0.5 * 0.05 * m
    kinetic = HBAR2_OVER_2ME / 0.7 * k @ k
    expected = kinetic + np.array([-1, 1]) * np.linalg.norm(field)
    np.testing.assert_allclose(np.linalg.eigvalsh(model.bloch(k)), expected, atol=1e-14)
    spin = [np.real(np.trace(model.bloch(k) @ model.bloch_operator(s, k))) / 2 for s in ("sx", "sy", "sz")]
    np.testing.assert_allclose(spin, -field, atol=1e-14)  # H = ε0 − B·s


# --------------------------------------------------------------------------- real space vs Bloch
@pytest.mark.parametrize("shape", [(3, 4), (4, 5), (5, 3)])
@pytest.mark.parametrize("make", [random_graphene, random_2deg_lattice], ids=["graphene", "2deg"])
def test_real_space_spectrum_equals_kgrid_spectrum(make, shape):
    rng = np.random.default_rng(sum(shape))
    model = make(rng)
    system = model.real_space(shape)
    real = np.linalg.eigvalsh(system.hamiltonian.toarray())
    k = model.lattice.kgrid(*shape)
    bloch = np.sort(np.linalg.eigvalsh(model.bloch(k)).ravel())
    np.testing.assert_allclose(real, bloch, atol=1e-10)


@pytest.mark.parametrize("make", [random_graphene, random_2deg_lattice], ids=["graphene", "2deg"])
def test_spin_current_trace_real_space_equals_kgrid(make):
    """Tr[s_x j_x H] and Tr[s_y j_y H²] agree between real space and Σ_k of the Bloch forms."""
    rng = np.random.default_rng(11)
    model = make(rng)
    shape = (4, 5)
    system = model.real_space(shape)
    k = model.lattice.kgrid(*shape)
    h = system.hamiltonian
    for spin, current, power in (("sx", "jx", 1), ("sy", "jy", 2)):
        real = (system.operator(spin) @ system.operator(current) @ h**power).diagonal().sum()
        hk = np.linalg.matrix_power(model.bloch(k), power)
        bloch = np.trace(model.bloch_operator(spin, k) @ model.bloch_operator(current, k) @ hk, axis1=-2, axis2=-1)
        assert abs(real - bloch.sum()) <= 1e-10 * max(1.0, abs(real))


def test_orbital_layout_and_area():
    g = GrapheneRashba(t=2.5, mass=0.1, exchange=0.3, magnetization=(0, 0, 1))
    L1, L2 = 3, 4
    system = g.real_space((L1, L2))
    h = system.hamiltonian.toarray()
    assert system.num_orbitals == 4 * L1 * L2 and h.shape == (48, 48)
    np.testing.assert_allclose(np.diag(h)[:4], [0.1 - 0.15, 0.1 + 0.15, -0.1 - 0.15, -0.1 + 0.15], atol=1e-15)
    # A↑ of cell (0, 0) hops to B↑ of cells (0, 0), (1, −1) and (0, −1)
    for i1, i2 in ((0, 0), (1, L2 - 1), (0, L2 - 1)):
        assert h[0, 4 * (i1 * L2 + i2) + 2] == pytest.approx(-2.5)
    assert np.count_nonzero(h[0, 1:]) == 3
    assert system.area == pytest.approx(L1 * L2 * math.sqrt(3) / 2 * 0.246**2, rel=1e-14)
    assert system.shape == (L1, L2)
    cell, sub = divmod(np.arange(system.num_orbitals) // 2, 2)
    i1, i2 = divmod(cell, L2)
    expected = np.outer(i1, g.lattice.vectors[0]) + np.outer(i2, g.lattice.vectors[1]) + g.lattice.sublattices[sub]
    np.testing.assert_allclose(system.positions, expected, atol=1e-15)


def test_complex64_on_request():
    rng = np.random.default_rng(3)
    g = random_graphene(rng)
    s64 = g.real_space((3, 3), disorder=0.5, dtype=np.complex64)
    s128 = g.real_space((3, 3), disorder=0.5)
    assert s64.hamiltonian.dtype == np.complex64 and s64.parameters["dtype"] == "complex64"
    for name in ("sx", "sy", "sz", "jx", "jy"):
        assert s64.operator(name).dtype == np.complex64
        np.testing.assert_allclose(s64.operator(name).toarray(), s128.operator(name).toarray(), atol=1e-6)
    np.testing.assert_allclose(s64.hamiltonian.toarray(), s128.hamiltonian.toarray(), atol=1e-6)


def test_real_space_uses_int32_indices():
    system = GrapheneRashba(rashba=0.1).real_space((8, 8))
    for matrix in [system.hamiltonian] + [system.operator(n) for n in ("sx", "jx")]:
        assert isinstance(matrix, scipy.sparse.csr_matrix)
        assert matrix.indices.dtype == np.int32 and matrix.indptr.dtype == np.int32


# --------------------------------------------------------------------------- disorder
def onsite_difference(model, shape, **kwargs):
    disordered = model.real_space(shape, **kwargs).hamiltonian
    return (disordered - model.real_space(shape).hamiltonian).toarray()


@pytest.mark.parametrize("make", [random_graphene, random_2deg_lattice], ids=["graphene", "2deg"])
def test_disorder_per_site_same_for_both_spins(make):
    rng = np.random.default_rng(21)
    model = make(rng)
    W, shape = 1.3, (4, 3)
    system = model.real_space(shape, disorder=W, seed=9, realisation=4)
    expected = disorder_generator(9, 4).uniform(-W / 2, W / 2, size=system.num_sites)
    np.testing.assert_array_equal(system.site_energies, expected)
    diff = onsite_difference(model, shape, disorder=W, seed=9, realisation=4)
    np.testing.assert_allclose(diff - np.diag(np.diag(diff)), 0.0, atol=1e-15)  # purely diagonal
    np.testing.assert_allclose(np.diag(diff).real.reshape(-1, 2), np.repeat(expected[:, None], 2, axis=1), atol=1e-14)


def test_disorder_reproducible_and_independent_of_magnetization():
    rng = np.random.default_rng(22)
    g = random_graphene(rng)
    shape, W = (5, 4), 2.0
    first = g.real_space(shape, disorder=W, seed=3, realisation=1)
    again = g.real_space(shape, disorder=W, seed=3, realisation=1)
    other = g.real_space(shape, disorder=W, seed=3, realisation=2)
    rotated = g.with_magnetization(random_unit(rng)).real_space(shape, disorder=W, seed=3, realisation=1)
    np.testing.assert_array_equal(first.site_energies, again.site_energies)
    assert (first.hamiltonian != again.hamiltonian).nnz == 0
    assert np.abs(first.site_energies - other.site_energies).min() > 0
    np.testing.assert_array_equal(first.site_energies, rotated.site_energies)
    np.testing.assert_array_equal(first.with_magnetization(rotated.model.magnetization).site_energies, first.site_energies)
    # the disorder enters H identically whatever m̂ is
    d_first = onsite_difference(g, shape, disorder=W, seed=3, realisation=1)
    d_rotated = onsite_difference(rotated.model, shape, disorder=W, seed=3, realisation=1)
    np.testing.assert_allclose(d_first, d_rotated, atol=1e-14)
    # on-site terms give no current
    for name in ("jx", "jy"):
        assert (first.operator(name) != g.real_space(shape).operator(name)).nnz == 0


@pytest.mark.parametrize("make", [random_graphene, random_2deg_lattice], ids=["graphene", "2deg"])
def test_disorder_is_uniform(make):
    model = make(np.random.default_rng(23))
    W = 2.7
    energies = model.real_space((64, 64), disorder=W, seed=1, realisation=0).site_energies
    assert energies.min() >= -W / 2 and energies.max() <= W / 2
    assert energies.min() < -W / 2 + 0.01 and energies.max() > W / 2 - 0.01
    assert scipy.stats.kstest(energies, "uniform", args=(-W / 2, W)).pvalue > 1e-3
    assert abs(energies.mean()) < 4 * W / math.sqrt(12 * energies.size)


def test_pristine_has_no_disorder():
    system = GrapheneRashba().real_space((2, 2), seed=5)
    assert system.site_energies is None and system.disorder == 0.0


# --------------------------------------------------------------------------- provenance
def test_parameters_are_json_and_round_trip():
    rng = np.random.default_rng(31)
    for model in (random_graphene(rng), random_2deg_lattice(rng)):
        system = model.real_space((2, 3), disorder=0.4, seed=2, realisation=5)
        record = json.loads(json.dumps(system.parameters))
        assert record["shape"] == [2, 3] and record["disorder"] == 0.4
        assert record["seed"] == 2 and record["realisation"] == 5 and record["dtype"] == "complex128"
        assert record["model"] == type(model).__name__
        rebuilt = model_from_dict({k: v for k, v in record.items() if k not in ("shape", "disorder", "seed", "realisation", "dtype")})
        assert rebuilt == model
        assert type(model).from_dict(model.to_dict()) == model
    for model in (Rashba2DEG(rashba=0.1), Dirac(mass=0.01)):
        assert model_from_dict(json.loads(json.dumps(model.to_dict()))) == model


def test_model_attributes():
    g = GrapheneRashba()
    assert g.orbitals_per_cell == 4 and g.lattice.num_sublattices == 2
    assert g.cell_area == pytest.approx(math.sqrt(3) / 2 * 0.246**2, rel=1e-14)
    sq = Rashba2DEGLattice(lattice_constant=0.3)
    assert sq.orbitals_per_cell == 2 and sq.cell_area == pytest.approx(0.09, rel=1e-14)
    assert Rashba2DEG().orbitals_per_cell == 2 and Dirac().orbitals_per_cell == 4
    assert not hasattr(Dirac(), "real_space") and not hasattr(Rashba2DEG(), "real_space")
    m = (0.0, 0.6, 0.8)
    assert g.with_magnetization(m).magnetization == m and g.magnetization == (0.0, 0.0, 1.0)


# --------------------------------------------------------------------------- bad input
BAD_MODELS = [
    (GrapheneRashba, {"t": 0.0}, "t"),
    (GrapheneRashba, {"t": -2.7}, "t"),
    (GrapheneRashba, {"t": math.nan}, "t"),
    (GrapheneRashba, {"t": "2.7"}, "t"),
    (GrapheneRashba, {"t": True}, "t"),
    (GrapheneRashba, {"rashba": math.inf}, "rashba"),
    (GrapheneRashba, {"exchange": math.nan}, "exchange"),
    (GrapheneRashba, {"mass": -math.inf}, "mass"),
    (GrapheneRashba, {"lattice_constant": 0.0}, "lattice_constant"),
    (GrapheneRashba, {"lattice_constant": -0.246}, "lattice_constant"),
    (GrapheneRashba, {"magnetization": (0, 0, 0)}, "magnetization"),
    (GrapheneRashba, {"magnetization": (0, 0, 2)}, "magnetization"),
    (GrapheneRashba, {"magnetization": (1, 1, 0)}, "magnetization"),
    (GrapheneRashba, {"magnetization": (0, 0, 1 + 1e-8)}, "magnetization"),
    (GrapheneRashba, {"magnetization": (0, 1)}, "magnetization"),
    (GrapheneRashba, {"magnetization": (0, math.nan, 1)}, "magnetization"),
    (Rashba2DEGLattice, {"mass": 0.0}, "mass"),
    (Rashba2DEGLattice, {"mass": -1.0}, "mass"),
    (Rashba2DEGLattice, {"lattice_constant": 0.0}, "lattice_constant"),
    (Rashba2DEGLattice, {"rashba": math.nan}, "rashba"),
    (Rashba2DEG, {"mass": 0.0}, "mass"),
    (Rashba2DEG, {"exchange": math.inf}, "exchange"),
    (Dirac, {"hbar_v": 0.0}, "hbar_v"),
    (Dirac, {"magnetization": (0.5, 0, 0)}, "magnetization"),
]


@pytest.mark.parametrize("cls, kwargs, name", BAD_MODELS)
def test_bad_model_parameters(cls, kwargs, name):
    with pytest.raises(ValueError, match=rf"{cls.__name__}: {name} must be"):
        cls(**kwargs)


def test_error_messages_give_the_allowed_range():
    with pytest.raises(ValueError, match=r"t must be a finite number > 0 \(eV\), got -1"):
        GrapheneRashba(t=-1)
    with pytest.raises(ValueError, match=r"not normalised.*\|m\| = 2"):
        GrapheneRashba(magnetization=(0, 0, 2))
    with pytest.raises(ValueError, match=r"magnetization"):
        GrapheneRashba().with_magnetization((1, 0, 1))


def test_near_unit_magnetization_is_kept_as_given():
    m = (0.0, 0.0, 1 + 5e-10)
    assert GrapheneRashba(magnetization=m).magnetization == m


def test_unknown_parameters():
    with pytest.raises(TypeError):
        GrapheneRashba(lambda_r=0.1)
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['lambda_r'\].*allowed: \['t', 'rashba'"):
        GrapheneRashba.from_dict({"lambda_r": 0.1})
    with pytest.raises(ValueError, match="expected 'Dirac'"):
        Dirac.from_dict({"model": "GrapheneRashba"})
    with pytest.raises(ValueError, match="model must be one of"):
        model_from_dict({"model": "Kagome"})


BAD_REAL_SPACE = [
    ({"shape": (0, 3)}, "shape"),
    ({"shape": (-2, 3)}, "shape"),
    ({"shape": (3,)}, "shape"),
    ({"shape": (2.5, 3)}, "shape"),
    ({"shape": (3, 3), "disorder": -0.1}, "disorder"),
    ({"shape": (3, 3), "disorder": math.nan}, "disorder"),
    ({"shape": (3, 3), "seed": -1}, "seed"),
    ({"shape": (3, 3), "seed": 1.5}, "seed"),
    ({"shape": (3, 3), "realisation": -1}, "realisation"),
    ({"shape": (3, 3), "dtype": np.float64}, "dtype"),
]


@pytest.mark.parametrize("kwargs, name", BAD_REAL_SPACE)
def test_bad_real_space_arguments_fail_before_work(monkeypatch, kwargs, name):
    def no_work(*args, **kw):
        raise AssertionError("work started before validation")

    monkeypatch.setattr(hamiltonians, "assemble", no_work)
    monkeypatch.setattr(hamiltonians, "disorder_generator", no_work)
    for model in (GrapheneRashba(), Rashba2DEGLattice()):
        with pytest.raises(ValueError, match=name):
            model.real_space(**kwargs)


def test_bad_operator_and_k():
    system = GrapheneRashba().real_space((2, 2))
    with pytest.raises(ValueError, match=r"one of \('sx', 'sy', 'sz', 'jx', 'jy'\)"):
        system.operator("sw")
    with pytest.raises(ValueError, match="one of"):
        Dirac().bloch_operator("vx", [0.0, 0.0])
    with pytest.raises(ValueError, match=r"k must have shape \(\.\.\., 2\)"):
        GrapheneRashba().bloch(np.zeros((4, 3)))
