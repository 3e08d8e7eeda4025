"""The GPU stencil kernel (gpukpm.engine.gpu_kernels): its CUDA build (nvcc, when on the PATH) and, on a
CUDA device, the CuPy route against the CPU.  Without a device the kernel runs on the CUDA
emulator: ``tests/test_gpu_kernels_emulated.py`` (a separate module, so that the emulator, which
stands in for ``cupy`` while a module uses it, never hides the device from the tests here).
"""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from gpukpm.engine import gpu_kernels
from gpukpm.engine.backend import gpu_status
from gpukpm.models import GrapheneRashba, Rashba2DEGLattice
from gpukpm.models.stencil import lattice_stencil


def stencil_cases():
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


@pytest.mark.gpu
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_cuda_source_compiles(tmp_path):
    """The CUDA build (PTX for the H200's sm_90) of every test stencil, both precisions."""
    for dtype in (np.complex128, np.complex64):
        for label, S in stencil_cases():
            source = tmp_path / "kernel.cu"
            source.write_text(gpu_kernels.kernel_source(S.astype(dtype)))
            run = subprocess.run(["nvcc", "-arch=sm_90", "--ptx", str(source), "-o", str(tmp_path / "kernel.ptx")],
                                 capture_output=True, text=True)
            assert run.returncode == 0, f"{label}: {run.stderr}"


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_status()[0], reason="no usable CUDA device")
def test_device_kernel_matches_cpu():
    import cupy

    from gpukpm.engine.backend import get_backend

    assert gpu_kernels.usable(0), "the self-check against cuSPARSE failed"
    gpu = get_backend("gpu")
    assert gpu.uses_stencils()
    rng = np.random.default_rng(9)
    for label, S in stencil_cases():
        x = (rng.normal(size=(2, S.dim)) + 1j * rng.normal(size=(2, S.dim)))
        y = (rng.normal(size=(2, S.dim)) + 1j * rng.normal(size=(2, S.dim)))
        expected = (S.to_csr() @ x.T).T - y
        xd, yd = cupy.asarray(x), cupy.asarray(y)
        gpu.chebyshev_step(S, xd, yd)
        np.testing.assert_allclose(yd.get(), expected, atol=1e-12 * np.abs(expected).max(), err_msg=label)
