"""The GPU stencil kernel (gpukpm.gpu_kernels) against the CSR matrix its stencil represents.

Without a device the kernel's own source is compiled by the host C++ compiler
(:func:`gpukpm.gpu_kernels.host_source`: the CUDA grid run as a loop) and
called through ctypes; with nvcc on the PATH its CUDA build is checked too; on
a CUDA device the CuPy route is compared with the CPU.
"""
from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from gpukpm import gpu_kernels
from gpukpm.backend import gpu_status
from gpukpm.models import GrapheneRashba, Rashba2DEGLattice
from gpukpm.stencil import lattice_stencil

COMPILER = shutil.which("c++") or shutil.which("g++")
needs_compiler = pytest.mark.skipif(COMPILER is None, reason="no host C++ compiler")


def _host_kernel(S, directory):
    """ctypes ``launch`` of S's kernel built for the host."""
    source = directory / f"stencil_{abs(hash(gpu_kernels.kernel_source(S)))}.cpp"
    source.write_text(gpu_kernels.host_source(S))
    library = source.with_suffix(".so")
    subprocess.run([COMPILER, "-O1", "-shared", "-fPIC", "-Wall", "-Werror", str(source), "-o", str(library)],
                   check=True, capture_output=True, text=True)
    launch = ctypes.CDLL(str(library)).launch
    launch.restype = None
    return launch


def _run_host(launch, S, x, y, out, subtract: bool):
    real = np.float32 if S.dtype == np.complex64 else np.float64
    values = np.ascontiguousarray(S.entry_value)
    diagonal = S.diagonal if S.diagonal is not None else np.zeros(1, real)
    pointer = ctypes.c_void_p
    launch(ctypes.c_uint(gpu_kernels.grid_blocks(S)), ctypes.c_uint(x.shape[0]),
           ctypes.c_uint(gpu_kernels.THREADS_PER_BLOCK), ctypes.c_int(S.cells[0]), ctypes.c_int(S.cells[1]),
           pointer(values.ctypes.data), pointer(diagonal.ctypes.data), ctypes.c_int(S.diagonal is not None),
           pointer(x.ctypes.data), pointer(y.ctypes.data), pointer(out.ctypes.data), ctypes.c_int(subtract))


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


@needs_compiler
@pytest.mark.parametrize("dtype, tol", [(np.complex128, 1e-13), (np.complex64, 2e-6)])
def test_host_build_matches_csr(tmp_path, dtype, tol):
    rng = np.random.default_rng(5)
    for label, S in _stencils():
        S = S.astype(dtype)
        M = S.to_csr()
        launch = _host_kernel(S, tmp_path)
        R = 3
        x = (rng.normal(size=(R, S.dim)) + 1j * rng.normal(size=(R, S.dim))).astype(dtype)
        y = (rng.normal(size=(R, S.dim)) + 1j * rng.normal(size=(R, S.dim))).astype(dtype)
        expected = (M @ x.T).T
        scale = np.abs(expected).max()
        out = np.full_like(x, np.nan)
        _run_host(launch, S, x, x, out, subtract=False)
        assert np.abs(out - expected).max() <= tol * scale, label
        step = expected - y
        _run_host(launch, S, x, y, y, subtract=True)  # in place, y ← Sx − y
        assert np.abs(y - step).max() <= tol * scale, label


@needs_compiler
def test_host_build_wraps_offsets_longer_than_the_supercell(tmp_path):
    """An offset of 3 cells on a 2-cell direction takes the modulo branch."""
    from gpukpm.stencil import CellStencil

    S = CellStencil.from_entries((2, 5), 1, [(0, (3, -1), 0, 1.0 + 0.5j), (0, (0, 0), 0, -0.25)])
    assert "%" in gpu_kernels.kernel_source(S)
    launch = _host_kernel(S, tmp_path)
    x = np.exp(2j * np.pi * np.random.default_rng(0).random((1, S.dim)))
    out = np.empty_like(x)
    _run_host(launch, S, x, x, out, subtract=False)
    np.testing.assert_allclose(out[0], S.to_csr() @ x[0], atol=1e-14)


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
