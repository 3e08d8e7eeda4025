"""The GPU stencil kernel (gpukpm.gpu_kernels) against the CSR matrix its stencil represents.

Without a device the kernel runs on the CUDA emulator (``tests/cuda_emulator``: its own CUDA
source compiled by the host C++ compiler, the grid run as a loop, every launch argument checked
against the kernel's parameters), through gpukpm's own launch code; with nvcc on the PATH its
CUDA build is checked too; on a CUDA device the CuPy route is compared with the CPU.
"""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from gpukpm import gpu_kernels
from gpukpm.backend import gpu_status
from gpukpm.models import GrapheneRashba, Rashba2DEGLattice
from gpukpm.stencil import lattice_stencil

needs_compiler = pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                                    reason="the emulated RawKernel needs a host C++ compiler")


def _stencils():
    """(label, stencil): the built-in lattices' H (rescaled, with disorder), currents and spins,
    a 2 × 3 supercell where every neighbour wraps, and the self-check stencil."""
    graphene = GrapheneRashba(rashba=0.1, exchange=0.1, mass=0.05)
    rng = np.random.default_rng(11)
    shape = (5, 4)
    energies = rng.uniform(-0.5, 0.5, size=graphene.lattice.num_sublattices * shape[0] * shape[1])
    H = lattice_stencil(graphene, shape, "H", energies)
    yield "graphene H~", H.rescaled(2 / 9.1, 0.3)
    for name in ("jx", "jy", "sx", "sz"):
        yield f"graphene {name}", lattice_stencil(graphene, shape, name)
    yield "graphene H 2x3", lattice_stencil(graphene, (2, 3), "H", rng.uniform(-1, 1, size=12))
    yield "square 2DEG jy", lattice_stencil(Rashba2DEGLattice(), (3, 4), "jy")
    yield "self-check", gpu_kernels.check_stencil()


def _random_rows(rng, R, dim, dtype):
    return (rng.normal(size=(R, dim)) + 1j * rng.normal(size=(R, dim))).astype(dtype)


@needs_compiler
@pytest.mark.parametrize("dtype, tol", [(np.complex128, 1e-13), (np.complex64, 2e-6)])
def test_emulated_kernel_matches_csr(cupy_emulator, dtype, tol):
    rng = np.random.default_rng(5)
    for label, S in _stencils():
        S = S.astype(dtype)
        M = S.to_csr()
        x, y = _random_rows(rng, 3, S.dim, dtype), _random_rows(rng, 3, S.dim, dtype)
        expected = (M @ x.T).T
        scale = np.abs(expected).max()
        xd, yd = cupy_emulator.asarray(x), cupy_emulator.asarray(y)
        out = cupy_emulator.asarray(np.full_like(x, np.nan))
        gpu_kernels.stencil_apply(S, xd, out)
        assert np.abs(out.get() - expected).max() <= tol * scale, label
        gpu_kernels.stencil_step_into(S, xd, yd, yd)  # in place, y ← Sx − y, as the recursion calls it
        assert np.abs(yd.get() - (expected - y)).max() <= tol * scale, label


@needs_compiler
def test_emulated_kernel_wraps_offsets_longer_than_the_supercell(cupy_emulator):
    """An offset of 3 cells on a 2-cell direction takes the modulo branch."""
    from gpukpm.stencil import CellStencil

    S = CellStencil.from_entries((2, 5), 1, [(0, (3, -1), 0, 1.0 + 0.5j), (0, (0, 0), 0, -0.25)])
    assert "%" in gpu_kernels.kernel_source(S)
    x = np.exp(2j * np.pi * np.random.default_rng(0).random((1, S.dim)))
    out = cupy_emulator.empty(x.shape, dtype=x.dtype)
    gpu_kernels.stencil_apply(S, cupy_emulator.asarray(x), out)
    np.testing.assert_allclose(out.get()[0], S.to_csr() @ x[0], atol=1e-14)


@needs_compiler
def test_more_vectors_than_the_grid_holds_are_launched_in_slices(cupy_emulator, monkeypatch):
    """The grid's y dimension (≤ 65535 vectors) is sliced; here a slice of 2 vectors for 5."""
    monkeypatch.setattr(gpu_kernels, "MAX_GRID_Y", 2)
    S = gpu_kernels.check_stencil()
    rng = np.random.default_rng(1)
    x, y = _random_rows(rng, 5, S.dim, S.dtype), _random_rows(rng, 5, S.dim, S.dtype)
    yd = cupy_emulator.asarray(y)
    gpu_kernels.stencil_step_into(S, cupy_emulator.asarray(x), yd, yd)
    np.testing.assert_allclose(yd.get(), (S.to_csr() @ x.T).T - y, atol=1e-13)


def test_launch_rejects_layouts_the_kernel_cannot_read(cupy_emulator):
    S = gpu_kernels.check_stencil()
    x = cupy_emulator.asarray(np.zeros((S.dim, 2), dtype=S.dtype)).T  # F-ordered (2, D)
    with pytest.raises(ValueError, match="C-contiguous"):
        gpu_kernels.stencil_apply(S, x, cupy_emulator.empty((2, S.dim), dtype=S.dtype))


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_cuda_source_compiles(tmp_path):
    """The CUDA build (PTX for the H200's sm_90) of every test stencil, both precisions."""
    for dtype in (np.complex128, np.complex64):
        for label, S in _stencils():
            source = tmp_path / "kernel.cu"
            source.write_text(gpu_kernels.kernel_source(S.astype(dtype)))
            run = subprocess.run(["nvcc", "-arch=sm_90", "--ptx", str(source), "-o", str(tmp_path / "kernel.ptx")],
                                 capture_output=True, text=True)
            assert run.returncode == 0, f"{label}: {run.stderr}"


@pytest.mark.skipif(not gpu_status()[0], reason="no usable CUDA device")
def test_device_kernel_matches_cpu():
    import cupy

    from gpukpm.backend import get_backend

    assert gpu_kernels.usable(0), "the self-check against cuSPARSE failed"
    gpu = get_backend("gpu")
    assert gpu.uses_stencils()
    rng = np.random.default_rng(9)
    for label, S in _stencils():
        x = (rng.normal(size=(2, S.dim)) + 1j * rng.normal(size=(2, S.dim)))
        y = (rng.normal(size=(2, S.dim)) + 1j * rng.normal(size=(2, S.dim)))
        expected = (S.to_csr() @ x.T).T - y
        xd, yd = cupy.asarray(x), cupy.asarray(y)
        gpu.chebyshev_step(S, xd, yd)
        np.testing.assert_allclose(yd.get(), expected, atol=1e-12 * np.abs(expected).max(), err_msg=label)
