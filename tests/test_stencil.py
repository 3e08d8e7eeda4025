"""Cell stencils equal the assembled CSR operators, and the engine gives the same moments with either."""
import numpy as np
import pytest

from gpukpm import kpm, models
from gpukpm.engine import cpu_kernels
from gpukpm.engine.backend import get_backend, gpu_status
from gpukpm.models.stencil import STENCIL_NAMES, CellStencil, lattice_stencil

MODELS = [
    (models.GrapheneRashba(t=2.7, rashba=0.3, exchange=0.4, mass=0.1, magnetization=(0.6, 0.0, 0.8)), (5, 4)),
    (models.GrapheneRashba(t=2.7, rashba=0.3, exchange=0.4), (2, 3)),  # small: every cell wraps
    (models.Rashba2DEGLattice(rashba=0.1, exchange=0.05, magnetization=(1, 0, 0)), (6, 5)),
]
needs_numba = pytest.mark.skipif(not cpu_kernels.available(), reason="stencil kernels need Numba")


class CSROnly:
    """The same system without ``stencil``: the engine then takes the CSR route."""

    def __init__(self, system):
        self._s = system
        self.hamiltonian, self.area, self.num_orbitals = system.hamiltonian, system.area, system.num_orbitals
        self.parameters = system.parameters

    def operator(self, name):
        return self._s.operator(name)


@pytest.mark.parametrize("model,shape", MODELS)
@pytest.mark.parametrize("name", STENCIL_NAMES)
def test_stencil_is_the_assembled_operator(model, shape, name):
    system = model.real_space(shape, disorder=0.7, seed=3)
    ref = system.hamiltonian if name == "H" else system.operator(name)
    stencil = system.stencil(name)
    assert isinstance(stencil, CellStencil) and stencil.shape == ref.shape
    assert abs(stencil.to_csr() - ref).max() < 1e-14


@needs_numba
@pytest.mark.parametrize("model,shape", MODELS + [(MODELS[0][0], (12, 9))])
def test_stencil_kernels_match_the_csr_product(model, shape):
    system = model.real_space(shape, disorder=0.7, seed=3)
    rng = np.random.default_rng(0)
    D = system.num_orbitals
    x = rng.normal(size=(2, D)) + 1j * rng.normal(size=(2, D))
    y = rng.normal(size=(2, D)) + 1j * rng.normal(size=(2, D))
    for name in ("H", "jx", "sy"):
        S = system.stencil(name).rescaled(0.3, 0.2) if name == "H" else system.stencil(name)
        M = S.to_csr()
        out = np.empty_like(x)
        cpu_kernels.stencil_step_into(S, x, y, out)
        assert np.abs(out - ((M @ x.T).T - y)).max() < 1e-13
        cpu_kernels.stencil_apply(S, x, out)
        assert np.abs(out - (M @ x.T).T).max() < 1e-13
        inplace = y.copy()
        cpu_kernels.stencil_step_into(S, x, inplace, inplace)
        assert np.abs(inplace - ((M @ x.T).T - y)).max() < 1e-13


def test_stencil_rejects_unknown_names():
    with pytest.raises(ValueError, match="stencil name"):
        lattice_stencil(MODELS[0][0], (3, 3), "jz")


STENCIL_BACKENDS = [pytest.param("cpu", marks=needs_numba),
                    pytest.param("gpu", marks=[pytest.mark.gpu, pytest.mark.skipif(not gpu_status()[0],
                                                                                     reason="no usable CUDA device")])]


@pytest.mark.parametrize("backend", STENCIL_BACKENDS)
@pytest.mark.parametrize("trace", ["exact", 3])
def test_moments_with_stencils_equal_the_csr_route(trace, backend):
    """Same μ through the stencil kernels (CPU: Numba; GPU: the generated CUDA kernel) and CSR."""
    system = MODELS[0][0].real_space((6, 5), disorder=0.5, seed=1)
    kw = dict(left=("sx", "jx", "sz"), right="jx", num_moments=40, trace=trace, seed=2, bounds=(-9.5, 9.5),
              progress=False, backend=backend)
    assert get_backend(backend).uses_stencils()
    fast = kpm.kubo_moments(system, **kw)
    slow = kpm.kubo_moments(CSROnly(system), **kw)
    scale = np.abs(slow.mu_samples).max()
    assert np.abs(fast.mu_samples - slow.mu_samples).max() < 1e-12 * scale


def test_real_gemm_is_the_real_part_of_the_inner_products():
    be = get_backend("cpu")
    rng = np.random.default_rng(1)
    P = rng.normal(size=(5, 37)) + 1j * rng.normal(size=(5, 37))
    Q = rng.normal(size=(7, 37)) + 1j * rng.normal(size=(7, 37))
    assert np.abs(be.real_gemm(P, Q) - (np.conj(P) @ Q.T).real).max() < 1e-12


@pytest.mark.parametrize("block_size", [None, 7, 13])
def test_same_operator_left_and_right_gives_the_real_part(block_size):
    """A = B: μ is real symmetric; the engine's real GEMM equals the complex route's real part."""
    system = MODELS[0][0].real_space((4, 4), disorder=0.5, seed=1)
    kw = dict(num_moments=30, trace=2, seed=4, bounds=(-9.5, 9.5), progress=False, block_size=block_size)
    real = kpm.kubo_moments(system, left=("jx",), right="jx", **kw)
    # the same matrix passed as a custom operator takes the complex route
    cplx = kpm.kubo_moments(system, left=(system.operator("jx").copy(),), right="jx", **kw)
    assert np.abs(real.mu_samples.imag).max() == 0.0
    assert np.abs(real.mu_samples - cplx.mu_samples.real).max() < 1e-12 * np.abs(cplx.mu_samples).max()
    exact = kpm.kubo_moments(system, left=("jx",), right="jx", **dict(kw, trace="exact"))
    mu = exact.mu_samples[0, 0]
    assert np.abs(mu - mu.T).max() < 1e-12 * np.abs(mu).max()
