"""Backend selection, GPU = CPU (when a device is present), and the KPM density of states."""
import numpy as np
import pytest

from gpukpm import kpm, models
from gpukpm.engine import backend
from gpukpm.response.dos import dos

GPU, GPU_REASON = backend.gpu_status()
_skip_without_gpu = pytest.mark.skipif(not GPU, reason=f"no usable CUDA device: {GPU_REASON}")


def needs_gpu(test):
    """Device-only test: skipped without a device, selected by ``pytest -m gpu``."""
    return pytest.mark.gpu(_skip_without_gpu(test))


def test_backend_names_and_forcing(monkeypatch):
    assert backend.get_backend("cpu").name == "cpu"
    monkeypatch.setenv("GPUKPM_BACKEND", "cpu")
    assert backend.get_backend().name == "cpu"
    with pytest.raises(ValueError, match="backend must be one of"):
        backend.get_backend("tpu")
    if not GPU:
        with pytest.raises(backend.BackendUnavailable, match="'gpu' was requested but"):
            backend.get_backend("gpu")


@pytest.fixture(scope="module")
def flake():
    model = models.GrapheneRashba(t=2.7, rashba=0.3, exchange=0.4, mass=0.1, magnetization=(0.0, 0.6, 0.8))
    return model.real_space(shape=(6, 7), disorder=1.2, seed=5, realisation=1)


def test_exact_dos_equals_kernel_broadened_ed(flake):
    N = 128
    mom = kpm.dos_moments(flake, num_moments=N, trace="exact", progress=False)
    E = np.linalg.eigvalsh(flake.hamiltonian.toarray())
    ref_mu = np.cos(np.arange(N)[None, :] * np.arccos((E - mom.b) / mom.a)[:, None]).mean(axis=0)
    assert np.abs(mom.mu[0] - ref_mu).max() <= 1e-10
    energies = np.linspace(-7.5, 7.5, 301)
    got = dos(mom, energies, orbitals_per_cell=4).values
    # the same kernel series evaluated from the ED eigenvalues
    from gpukpm.response.kernels import jackson

    n = np.arange(N)
    x = (energies - mom.b) / mom.a
    coeff = 2 * jackson(N) / np.where(n == 0, 2, 1) * ref_mu
    ref = 4 * (np.cos(n * np.arccos(x)[:, None]) @ coeff) / (np.pi * mom.a * np.sqrt(1 - x**2))
    assert np.abs(got - ref).max() <= 1e-10 * np.abs(ref).max()


def test_dos_integrates_to_orbitals_per_cell(flake):
    mom = kpm.dos_moments(flake, num_moments=256, trace="exact", progress=False)
    lo, hi = mom.b - 0.999 * mom.a, mom.b + 0.999 * mom.a
    energies = np.linspace(lo, hi, 20001)
    rho = dos(mom, energies, orbitals_per_cell=4).values
    assert abs(np.trapezoid(rho, energies) - 4.0) < 2e-3


def test_stochastic_dos_error_scaling_and_coverage():
    model = models.GrapheneRashba(t=2.7, rashba=0.2, exchange=0.2, magnetization=(0, 0, 1))
    energies = np.linspace(-6, 6, 41)
    scaled, covered = [], []
    for L, R in ((8, 8), (8, 32), (16, 8)):
        system = model.real_space(shape=(L, L), disorder=1.0, seed=2)
        exact = dos(kpm.dos_moments(system, num_moments=64, trace="exact", progress=False), energies).values
        est = dos(kpm.dos_moments(system, num_moments=64, trace=R, seed=3, progress=False), energies)
        err = est.values - exact
        covered.append(np.mean(np.abs(err) <= 2 * est.stderr))
        scaled.append(np.sqrt(np.mean(err**2)) * np.sqrt(R * system.num_orbitals))
    assert min(covered) > 0.8  # ≈ 95 % expected within 2 SE
    assert max(scaled) / min(scaled) < 2.0  # error ∝ 1/√(R·D)


@needs_gpu
def test_gpu_moments_equal_cpu(flake):
    kw = dict(left=("sx", "sy", "sz"), num_moments=32, trace=2, seed=7, bounds=(-10, 10), progress=False)
    cpu = kpm.kubo_moments(flake, backend="cpu", **kw)
    gpu = kpm.kubo_moments(flake, backend="gpu", **kw)
    assert np.abs(gpu.mu_samples - cpu.mu_samples).max() <= 1e-10 * np.abs(cpu.mu_samples).max()


def test_fused_cpu_step_equals_scipy():
    from gpukpm.engine import cpu_kernels

    if not cpu_kernels.available():
        pytest.skip("Numba not installed: the SciPy step is used")
    system = models.GrapheneRashba(rashba=0.2, exchange=0.3, mass=0.1).real_space(shape=(8, 8), disorder=1.0)
    H2 = system.hamiltonian.tocsr() * 0.2
    H2.sort_indices()
    rng = np.random.default_rng(0)
    for dtype, tol in ((np.complex128, 1e-13), (np.complex64, 1e-5)):
        x = (rng.random((3, H2.shape[0])) + 1j * rng.random((3, H2.shape[0]))).astype(dtype)
        y = (rng.random((3, H2.shape[0])) + 1j * rng.random((3, H2.shape[0]))).astype(dtype)
        want = (H2.astype(dtype) @ x.T).T - y
        cpu_kernels.chebyshev_step(H2.astype(dtype), x, y)
        assert np.abs(y - want).max() <= tol * np.abs(want).max()
