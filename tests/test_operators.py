"""Operators and lattices: hermiticity, ĵ = −i[H, X], position-gauge Bloch forms, helpers."""
import math

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse

from gpukpm.models.lattice import honeycomb, square
from gpukpm.models import Dirac, GrapheneRashba, Rashba2DEG, Rashba2DEGLattice
from gpukpm.models.operators import PAULI, as_operator, spin_operator

NAMES = ("sx", "sy", "sz", "jx", "jy")


def random_unit(rng):
    m = rng.normal(size=3)
    return m / np.linalg.norm(m)


def lattice_models(seed):
    rng = np.random.default_rng(seed)
    graphene = GrapheneRashba(
        rashba=rng.uniform(-0.3, 0.3),
        exchange=rng.uniform(-0.3, 0.3),
        mass=rng.uniform(-0.2, 0.2),
        magnetization=random_unit(rng),
    )
    square_2deg = Rashba2DEGLattice(
        mass=rng.uniform(0.3, 2), rashba=rng.uniform(-0.2, 0.2), exchange=0.1, magnetization=random_unit(rng)
    )
    return [graphene, square_2deg]


def all_models(seed):
    rng = np.random.default_rng(seed + 1)
    return lattice_models(seed) + [
        Rashba2DEG(mass=0.8, rashba=0.12, exchange=0.04, magnetization=random_unit(rng)),
        Dirac(hbar_v=0.6, rashba=0.01, exchange=0.06, mass=0.008, magnetization=random_unit(rng)),
    ]


def bloch_unitary(system):
    """Columns |k, a⟩ = Σ_R e^{ik·(R + τ_a)} |R, a⟩ / √N on the system's k grid (position gauge)."""
    model = system.model
    n = model.orbitals_per_cell
    k = model.lattice.kgrid(*system.shape)
    num_cells = system.shape[0] * system.shape[1]
    local = np.arange(system.num_orbitals) % n
    phases = np.exp(1j * system.positions @ k.T) / math.sqrt(num_cells)  # (orbitals, nk)
    u = np.zeros((system.num_orbitals, len(k), n), dtype=complex)
    for a in range(n):
        u[local == a, :, a] = phases[local == a]
    return u.reshape(system.num_orbitals, -1), k


def block_diagonal(blocks):
    return scipy.linalg.block_diag(*blocks)


# --------------------------------------------------------------------------- hermiticity
@pytest.mark.parametrize("index", [0, 1], ids=["graphene", "2deg"])
def test_real_space_operators_are_hermitian(index):
    model = lattice_models(1)[index]
    system = model.real_space((4, 3), disorder=0.8, seed=2)
    for matrix in [system.hamiltonian] + [system.operator(n) for n in NAMES]:
        assert matrix.shape == (system.num_orbitals, system.num_orbitals)
        assert abs(matrix - matrix.getH()).max() < 1e-15 * max(1.0, abs(matrix).max())
        assert matrix.dtype == np.complex128 and matrix.has_sorted_indices


@pytest.mark.parametrize("index", range(4), ids=["graphene", "2deg-lattice", "2deg", "dirac"])
def test_bloch_operators_are_hermitian(index):
    model = all_models(2)[index]
    k = np.random.default_rng(3).normal(scale=2.0, size=(3, 4, 2))
    n = model.orbitals_per_cell
    for matrix in [model.bloch(k)] + [model.bloch_operator(name, k) for name in NAMES]:
        assert matrix.shape == (3, 4, n, n)
        np.testing.assert_allclose(matrix, np.conj(np.swapaxes(matrix, -1, -2)), atol=1e-14)


@pytest.mark.parametrize("index", range(4), ids=["graphene", "2deg-lattice", "2deg", "dirac"])
def test_bloch_is_vectorised(index):
    model = all_models(4)[index]
    k = np.random.default_rng(5).normal(scale=2.0, size=(2, 3, 2))
    stacked = model.bloch_derivative(k)
    assert stacked.shape == (2, 3, 2, model.orbitals_per_cell, model.orbitals_per_cell)
    for idx in np.ndindex(2, 3):
        np.testing.assert_allclose(model.bloch(k)[idx], model.bloch(k[idx]), atol=1e-14)
        np.testing.assert_allclose(stacked[idx], model.bloch_derivative(k[idx]), atol=1e-14)


# --------------------------------------------------------------------------- spin operators
def test_spin_operators_are_pauli_on_every_site():
    ops = {c: spin_operator(c, 3).toarray() for c in "xyz"}
    for c, matrix in ops.items():
        np.testing.assert_array_equal(matrix, np.kron(np.eye(3), PAULI[c]))
        np.testing.assert_allclose(np.linalg.eigvalsh(matrix), [-1] * 3 + [1] * 3, atol=1e-15)
    assert ops["y"][0, 1] == -1j and ops["x"][1, 0] == 1  # s_y = [[0, −i], [i, 0]]
    np.testing.assert_allclose(ops["x"] @ ops["y"], 1j * ops["z"], atol=1e-15)
    assert spin_operator("x", 3).nnz == 6  # no stored zeros


def test_system_spin_operators_act_on_spin_index():
    system = GrapheneRashba().real_space((2, 3))
    for name in ("sx", "sy", "sz"):
        np.testing.assert_array_equal(system.operator(name).toarray(), np.kron(np.eye(12), PAULI[name[1]]))
        assert system.operator(name) is system.operator(name)  # cached


# --------------------------------------------------------------------------- currents
@pytest.mark.parametrize("index", [0, 1], ids=["graphene", "2deg"])
def test_current_is_commutator_with_minimum_image_positions(index):
    """ĵ_μ = −i[H, X_μ]: (i, j) element −i H_ij (r_j − r_i)_μ with minimum-image displacements."""
    model = lattice_models(6)[index]
    shape = (4, 5)
    system = model.real_space(shape, disorder=1.0, seed=4)
    h = system.hamiltonian.toarray()
    r = system.positions
    d = model.lattice.minimum_image(r[None, :, :] - r[:, None, :], shape)
    for mu, name in enumerate(("jx", "jy")):
        expected = -1j * h * d[..., mu]
        np.testing.assert_allclose(system.operator(name).toarray(), expected, atol=1e-14)
        assert abs(system.operator(name)).max() > 0.1


@pytest.mark.parametrize("index", [0, 1], ids=["graphene", "2deg"])
@pytest.mark.parametrize("shape", [(3, 4), (4, 5)])
def test_real_space_equals_bloch_under_fourier_transform(index, shape):
    """U† O U = ⊕_k O(k) for H and all operators, U the position-gauge Bloch basis."""
    model = lattice_models(7)[index]
    system = model.real_space(shape)
    u, k = bloch_unitary(system)
    np.testing.assert_allclose(u.conj().T @ u, np.eye(len(u)), atol=1e-12)
    matrices = {"H": (system.hamiltonian, model.bloch(k))}
    matrices.update({n: (system.operator(n), model.bloch_operator(n, k)) for n in NAMES})
    for name, (real, bloch) in matrices.items():
        np.testing.assert_allclose(u.conj().T @ real.toarray() @ u, block_diagonal(bloch), atol=1e-12, err_msg=name)


def test_cell_gauge_would_fail():
    """The check above is sensitive to the gauge: cell-gauge phases do not block-diagonalise ĵ."""
    model = lattice_models(8)[0]
    system = model.real_space((3, 4))
    u, k = bloch_unitary(system)
    cells = np.repeat(system.lattice.site_positions(system.shape)[::2], 4, axis=0)  # R of every orbital
    u_cell = u * np.exp(1j * np.repeat((cells - system.positions) @ k.T, 4, axis=1))
    jx = system.operator("jx").toarray()
    cell_gauge = u_cell.conj().T @ jx @ u_cell
    assert np.abs(cell_gauge - block_diagonal(model.bloch_operator("jx", k))).max() > 0.1


@pytest.mark.parametrize("index, shape", [(0, (1, 1)), (0, (2, 1)), (0, (1, 3)), (1, (1, 1)), (1, (2, 2)), (1, (1, 3))])
def test_duplicate_bonds_are_summed_consistently(index, shape):
    """On tiny lattices several bonds join the same pair; H and ĵ still equal the k-grid Bloch forms."""
    model = lattice_models(9)[index]
    system = model.real_space(shape)
    u, k = bloch_unitary(system)
    for name, real, bloch in [("H", system.hamiltonian, model.bloch(k))] + [
        (n, system.operator(n), model.bloch_operator(n, k)) for n in ("jx", "jy")
    ]:
        matrix = real.toarray()
        np.testing.assert_allclose(matrix, matrix.conj().T, atol=1e-14)
        np.testing.assert_allclose(u.conj().T @ matrix @ u, block_diagonal(bloch), atol=1e-12, err_msg=name)


def test_duplicate_bonds_example():
    """2 × 1 square lattice: ±x bonds join the same two sites, so ĵ_x cancels there while H doubles."""
    model = Rashba2DEGLattice(rashba=0.0)
    system = model.real_space((2, 1))
    t = model.hopping
    h = system.hamiltonian.toarray()
    assert h[0, 2] == pytest.approx(-2 * t)  # +x and −x neighbours are the same site
    np.testing.assert_allclose(system.operator("jx").toarray(), 0.0, atol=1e-15)


@pytest.mark.parametrize("index", range(4), ids=["graphene", "2deg-lattice", "2deg", "dirac"])
def test_bloch_current_is_minus_dH_dk(index):
    """j_μ(k) = −∂H/∂k_μ by central differences (h = 1e-4 nm⁻¹: truncation + round-off < 1e-10 eV·nm)."""
    model = all_models(10)[index]
    k = np.random.default_rng(11).normal(scale=3.0, size=(5, 2))
    h = 1e-4
    for mu, name in enumerate(("jx", "jy")):
        step = np.zeros(2)
        step[mu] = h
        finite = -(model.bloch(k + step) - model.bloch(k - step)) / (2 * h)
        np.testing.assert_allclose(model.bloch_operator(name, k), finite, atol=1e-9)
        np.testing.assert_array_equal(model.bloch_operator(name, k), -model.bloch_derivative(k)[:, mu])


def test_bloch_spin_operators_are_constant():
    g = GrapheneRashba()
    k = np.zeros((2, 2))
    np.testing.assert_array_equal(g.bloch_operator("sy", k)[1], np.kron(np.eye(2), PAULI["y"]))
    np.testing.assert_array_equal(Rashba2DEG().bloch_operator("sz", k)[0], PAULI["z"])


def test_current_operators_skip_zero_components():
    """The vertical honeycomb bond has d_x = 0 and gives no ĵ_x entries; H has no stored zeros off-site."""
    system = GrapheneRashba(rashba=0.1).real_space((4, 4))
    jx, jy = system.operator("jx"), system.operator("jy")
    assert np.all(jx.data != 0) and np.all(jy.data != 0)
    assert jx.nnz == 2 / 3 * jy.nnz


# --------------------------------------------------------------------------- user operators
def test_as_operator_accepts_sparse_and_dense():
    dense = np.arange(16.0).reshape(4, 4)
    for given in (dense, scipy.sparse.coo_matrix(dense), scipy.sparse.csc_array(dense)):
        out = as_operator(given, 4)
        assert isinstance(out, scipy.sparse.csr_matrix)
        np.testing.assert_array_equal(out.toarray(), dense)
    assert as_operator(dense, 4, dtype=np.complex64).dtype == np.complex64


def test_as_operator_rejects_bad_input():
    with pytest.raises(ValueError, match=r"shape \(6, 6\).*got \(4, 4\)"):
        as_operator(np.eye(4), 6)
    with pytest.raises(ValueError, match=r"\(6, 6\)"):
        as_operator(scipy.sparse.eye(6, 5), 6)
    with pytest.raises(ValueError, match=r"\(3, 3\) matrix"):
        as_operator(np.ones(3), 3)
    with pytest.raises(ValueError, match="non-finite"):
        as_operator(np.diag([1.0, np.nan]), 2)
    with pytest.raises(ValueError, match="dtype"):
        as_operator(np.eye(2), 2, dtype=np.float32)


# --------------------------------------------------------------------------- lattices
@pytest.mark.parametrize("lattice", [honeycomb(), square(0.3)], ids=["honeycomb", "square"])
def test_reciprocal_vectors_and_kgrid(lattice):
    np.testing.assert_allclose(lattice.vectors @ lattice.reciprocal_vectors.T, 2 * np.pi * np.eye(2), atol=1e-12)
    L1, L2 = 3, 5
    k = lattice.kgrid(L1, L2)
    assert k.shape == (L1 * L2, 2)
    np.testing.assert_array_equal(k[0], [0.0, 0.0])  # Γ included
    np.testing.assert_allclose(k[1 * L2 + 2], lattice.reciprocal_vectors[0] / L1 + 2 * lattice.reciprocal_vectors[1] / L2)
    for L, a in ((L1, lattice.vectors[0]), (L2, lattice.vectors[1])):  # periodic on the supercell
        np.testing.assert_allclose(np.exp(1j * k @ (L * a)), 1.0, atol=1e-12)
    fractions = k @ lattice.vectors.T / (2 * np.pi)
    assert len(np.unique(np.round(fractions % 1.0, 9), axis=0)) == L1 * L2


def test_honeycomb_geometry():
    lat = honeycomb(0.246)
    np.testing.assert_allclose(lat.vectors, [[0.246, 0.0], [0.123, 0.246 * math.sqrt(3) / 2]], atol=1e-15)
    np.testing.assert_allclose(lat.sublattices[1], [0.0, 0.246 / math.sqrt(3)], atol=1e-15)
    vectors = np.array([b.vector for b in lat.bonds])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 0.246 / math.sqrt(3), rtol=1e-14)
    np.testing.assert_allclose(vectors.sum(axis=0), 0.0, atol=1e-15)  # three bonds 120° apart
    assert lat.cell_area == pytest.approx(0.246**2 * math.sqrt(3) / 2, rel=1e-14)


def test_minimum_image():
    lat = honeycomb()
    shape = (4, 5)
    rng = np.random.default_rng(12)
    d = rng.normal(scale=0.2, size=(50, 2))
    shifted = d + rng.integers(-3, 4, size=(50, 1)) * 4 * lat.vectors[0] + rng.integers(-3, 4, size=(50, 1)) * 5 * lat.vectors[1]
    image = lat.minimum_image(shifted, shape)
    np.testing.assert_allclose(image, d, atol=1e-12)  # short vectors are their own minimum image
    far = rng.uniform(-3, 3, size=(200, 2))
    image = lat.minimum_image(far, shape)
    n = np.arange(-8, 9)
    images = far[:, None, None, :] + n[:, None, None] * 4 * lat.vectors[0] + n[None, :, None] * 5 * lat.vectors[1]
    shortest = np.linalg.norm(images, axis=-1).reshape(200, -1).min(axis=1)
    np.testing.assert_allclose(np.linalg.norm(image, axis=1), shortest, atol=1e-12)
    fractional = (image - far) @ np.linalg.inv(lat.vectors * [[4], [5]])
    np.testing.assert_allclose(fractional, np.round(fractional), atol=1e-9)
