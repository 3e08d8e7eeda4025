"""Device traffic and limits of the GPU path, counted on the CUDA emulator (issue 19).

No timing: the emulator counts device allocations (and their bytes), device-to-device copies and
cuBLAS operand copies (:func:`cupy._emulator.counts`), so a Chebyshev step that regains a copy or a
full-size temporary fails here.  Also: cuSOLVER's batched eigh limit and workspace in the k-space
memory plan, and the Gershgorin pass of k space on the device.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse

from gpukpm import models
from gpukpm.engine import backend, gpu_kernels, kspace
from gpukpm.engine.chebyshev import ChebyshevChain, RescaledOperator
from gpukpm.engine.kgrid import MonkhorstPack
from gpukpm.engine.spectrum import rescaling

from conftest import needs_compiler


@pytest.fixture(scope="module")
def cupy(cupy_emulator):
    return cupy_emulator


@pytest.fixture(scope="module")
def gpu(cupy):
    return backend.get_backend("gpu", device_id=0)


@pytest.fixture(scope="module")
def system():
    model = models.GrapheneRashba(t=2.7, rashba=0.4, exchange=0.3, mass=0.1, magnetization=(0.6, 0.0, 0.8))
    return model.real_space(shape=(6, 5), disorder=1.0, seed=3)


def _counts():
    from cupy import _emulator

    return _emulator.counts()


def _delta(before):
    after = _counts()
    return {k: after[k] - before[k] for k in after}


def _vectors(cupy, R, D, seed=0, dtype=np.complex128):
    rng = np.random.default_rng(seed)
    return cupy.asarray((rng.normal(size=(R, D)) + 1j * rng.normal(size=(R, D))).astype(dtype))


@needs_compiler
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_csr_step_into_reads_and_writes_once(gpu, cupy, system, monkeypatch, dtype):
    """``out ← 2H̃x − y`` on the CSR route: the fused kernel, no copy of y into out, no allocation;
    cuSPARSE's route (kernel off) needs that copy — the counter sees it."""
    assert gpu_kernels.csr_usable(0)
    op = RescaledOperator(system.hamiltonian, rescaling(system.hamiltonian, backend="cpu"), gpu, dtype=dtype)
    assert op.route == "csr"
    R, D = 3, op.dim
    x, y, out = _vectors(cupy, R, D, 1, dtype), _vectors(cupy, R, D, 2, dtype), cupy.empty((R, D), dtype=dtype)
    H2 = op.H2.get()
    expected = (H2 @ x.get().T).T - y.get()
    before = _counts()
    op.step_into(x, y, out)
    assert _delta(before) == {"allocations": 0, "allocated_bytes": 0, "copies": 0, "copied_bytes": 0,
                              "operand_copies": 0}
    tol = 1e-12 if dtype == np.complex128 else 1e-5
    np.testing.assert_allclose(out.get(), expected, rtol=0, atol=tol * np.abs(expected).max())
    monkeypatch.setenv("GPUKPM_GPU_CSR_KERNEL", "0")
    gpu_kernels.csr_usable.cache_clear()
    try:
        before = _counts()
        op.step_into(x, y, out)
        assert _delta(before)["copies"] == 1  # cuSPARSE: out ← y first
        np.testing.assert_allclose(out.get(), expected, rtol=0, atol=tol * np.abs(expected).max())
    finally:
        gpu_kernels.csr_usable.cache_clear()


def test_in_place_step_and_apply_rows_allocate_nothing(gpu, cupy, system):
    op = RescaledOperator(system.hamiltonian, rescaling(system.hamiltonian, backend="cpu"), gpu)
    R, D = 2, op.dim
    x, y, out = _vectors(cupy, R, D, 1), _vectors(cupy, R, D, 2), cupy.empty((R, D), dtype=np.complex128)
    H2 = op.H2.get()
    expected = (H2 @ x.get().T).T
    before = _counts()
    gpu.apply_rows(op.H2, x, out=out)  # spmm(M, xᵀ, c=outᵀ): straight into out
    op.step(x, y)
    assert _delta(before) == {"allocations": 0, "allocated_bytes": 0, "copies": 0, "copied_bytes": 0,
                              "operand_copies": 0}
    np.testing.assert_allclose(out.get(), expected, rtol=0, atol=1e-13)


@needs_compiler
def test_chebyshev_block_cost_does_not_grow_with_its_length(gpu, cupy, system):
    """Allocations and copies of a block of b orders are the same for b = 8 and b = 24: none per step
    (only the start copy, the checkpoint and the norm guard's small arrays, once per block)."""
    op = RescaledOperator(system.hamiltonian, rescaling(system.hamiltonian, backend="cpu"), gpu)
    start = _vectors(cupy, 2, op.dim, 5)
    costs = []
    for b in (8, 8, 24):  # the first one also runs the one-time kernel self-check
        chain = ChebyshevChain(op, start, num_moments=2 * b, block_size=b)
        out = cupy.empty((b, 2, op.dim), dtype=np.complex128)
        before = _counts()
        chain.block(0, out=out)
        costs.append(_delta(before))
    assert costs[1] == costs[2]
    assert costs[1]["copies"] <= 2 and costs[1]["allocated_bytes"] <= 4 * 2 * op.dim * 16


def test_dos_dots_make_no_full_size_temporaries(gpu, cupy, system):
    """⟨p_r|q_r⟩ per row by cuBLAS dotc into the result: no (R, D) temporary."""
    R, D = 4, system.num_orbitals
    p, q = _vectors(cupy, R, D, 1), _vectors(cupy, R, D, 2)
    out = cupy.zeros((R, 3), dtype=np.complex128)
    before = _counts()
    gpu.row_dots(p, q, out=out[:, 1])
    delta = _delta(before)
    assert delta["allocated_bytes"] < D * 16 and delta["copies"] == 0
    np.testing.assert_allclose(out.get()[:, 1], np.einsum("ij,ij->i", p.get().conj(), q.get()), rtol=1e-13)
    np.testing.assert_allclose(backend.get_backend("cpu").row_dots(p.get(), q.get()),
                               np.einsum("ij,ij->i", p.get().conj(), q.get()), rtol=1e-13)


@pytest.mark.parametrize("real", [False, True])
def test_multi_vector_gemm_takes_strided_rows(gpu, cupy, real):
    """One vector of a multi-vector block (row stride R·D) goes to cuBLAS with a leading dimension:
    the only allocation is the result, no operand copy."""
    width, n, R, D = 3, 4, 3, 10
    tile, Y = _vectors(cupy, width * R, D, 1).reshape(width, R, D), _vectors(cupy, n * R, D, 2).reshape(n, R, D)
    for r in range(R):
        P, Q = tile[:, r], Y[:, r]
        assert not P.flags.c_contiguous
        before = _counts()
        G = (gpu.real_gemm if real else gpu.conj_gemm)(P, Q)
        delta = _delta(before)
        assert (delta["allocations"], delta["operand_copies"], delta["copies"]) == (1, 0, 0)
        expected = P.get().conj() @ Q.get().T
        np.testing.assert_allclose(G.get(), expected.real if real else expected, rtol=0, atol=1e-12)
        cpu = backend.get_backend("cpu")
        np.testing.assert_allclose((cpu.real_gemm if real else cpu.conj_gemm)(P.get(), Q.get()),
                                   expected.real if real else expected, rtol=0, atol=1e-12)


def test_emulated_cublas_refuses_a_wrong_leading_dimension(gpu, cupy):
    from cupy.cuda import cublas as lib

    a = cupy.ones((4, 3), dtype=np.float64)
    one, zero = np.ones(()), np.zeros(())
    out = cupy.empty((3, 3), dtype=np.float64, order="F")
    with pytest.raises(RuntimeError, match="INVALID_VALUE"):
        lib.dgemm(1001, lib.CUBLAS_OP_T, lib.CUBLAS_OP_N, 3, 3, 4, one.ctypes.data, a.data.ptr, 2,
                  a.data.ptr, 4, zero.ctypes.data, out.data.ptr, 3)
    with pytest.raises(ValueError, match="not inside one device buffer"):
        lib.dgemm(1001, lib.CUBLAS_OP_T, lib.CUBLAS_OP_N, 3, 3, 4, one.ctypes.data, a.data.ptr, 8,
                  a.data.ptr, 4, zero.ctypes.data, out.data.ptr, 3)


# ----------------------------------------------------------------------------- k space
def test_eigh_limit_and_workspace_in_the_memory_plan(cupy):
    """cuSOLVER's batched eigh: the cap keeps its 32-bit workspace count, the plan holds its buffers."""
    cap = kspace.max_chunk_size(4, "gpu")
    assert cap == (2**31 - 1) // kspace.SYEVJ_WORK_PER_MATRIX and 2_000_000 < cap < 2_100_000
    assert kspace.max_chunk_size(2, "gpu") == cap and kspace.max_chunk_size(4, "cpu") is None
    assert 16_000 < kspace.eigh_bytes_per_k(4, "gpu") < 17_500  # ≈ 16.8 kB of workspace per 4×4 k point
    stack = cupy.ndarray(np.broadcast_to(np.eye(4, dtype=np.complex128), (cap, 4, 4)))
    big = cupy.ndarray(np.broadcast_to(np.eye(4, dtype=np.complex128), (cap + 1, 4, 4)))
    from cupy.linalg import syevj_batched_work_elements

    assert syevj_batched_work_elements(cap, 4) <= 2**31 - 1 < syevj_batched_work_elements(cap + 1, 4)
    with pytest.raises(RuntimeError, match="32-bit"):
        cupy.linalg.eigh(big)
    del stack
    budget = 2 * 10**9
    chunk, *_ = kspace._memory_plan(budget, 4, 4, 3, 581, None, 10**9, "gpu")
    per_k_old = 4 * (2 + 2 * 4) * 4 * 4 * 16
    assert chunk * (per_k_old + kspace.eigh_bytes_per_k(4, "gpu")) <= budget // 4
    assert chunk < budget // (4 * per_k_old)  # the workspace is counted (the old plan left it out)
    huge, *_ = kspace._memory_plan(10**15, 4, 4, 3, 581, None, 10**12, "gpu")
    assert huge == kspace.DEFAULT_CHUNK_SIZE["gpu"] <= cap
    with pytest.raises(ValueError, match=f"chunk_size must be at most {cap}.*got {cap + 1}"):
        kspace._memory_plan(budget, 4, 4, 3, 581, cap + 1, 10**9, "gpu")
    assert kspace._memory_plan(budget, 4, 4, 3, 581, cap + 1, 10**9, "cpu")[0] == cap + 1


def test_kspace_chunk_size_above_the_solver_limit_is_refused(gpu):
    model = models.GrapheneRashba(t=2.7, rashba=0.4, exchange=0.3, mass=0.1)
    cap = kspace.max_chunk_size(4, "gpu")
    with pytest.raises(ValueError, match=f"chunk_size must be at most {cap}"):
        kspace.kspace_moments(model, (9, 9), num_moments=16, window=(-1, 1), backend=gpu, chunk_size=cap + 1,
                              progress=False)


def test_gershgorin_pass_runs_on_the_device(gpu, cupy):
    model = models.GrapheneRashba(t=2.7, rashba=0.4, exchange=0.3, mass=0.1, magnetization=(0.0, 0.6, 0.8))
    grid = MonkhorstPack(model.lattice, (7, 9))
    host = kspace._gershgorin_pass(model, grid, 20)
    before = _counts()
    device = kspace._gershgorin_pass(model, grid, 20, gpu)
    assert _delta(before)["allocations"] > 0  # the work happened on the device
    np.testing.assert_allclose(device, host, rtol=1e-14)
