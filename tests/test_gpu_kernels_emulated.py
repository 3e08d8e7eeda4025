"""The GPU stencil kernel (gpukpm.engine.gpu_kernels) on the CUDA emulator, against the CSR matrix its
stencil represents.

The emulator (``tests/cuda_emulator``) compiles the kernel's own CUDA source with the host C++
compiler (the grid run as a loop) and checks every launch argument against the kernel's
parameters; the kernel is called through gpukpm's own launch code (``stencil_apply``,
``stencil_step_into``).
"""
from __future__ import annotations

import numpy as np
import pytest

from gpukpm.engine import gpu_kernels

from conftest import needs_compiler
from test_gpu_kernels import stencil_cases


def _random_rows(rng, R, dim, dtype):
    return (rng.normal(size=(R, dim)) + 1j * rng.normal(size=(R, dim))).astype(dtype)


@needs_compiler
@pytest.mark.parametrize("dtype, tol", [(np.complex128, 1e-13), (np.complex64, 2e-6)])
def test_emulated_kernel_matches_csr(cupy_emulator, dtype, tol):
    rng = np.random.default_rng(5)
    for label, S in stencil_cases():
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
    from gpukpm.models.stencil import CellStencil

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
