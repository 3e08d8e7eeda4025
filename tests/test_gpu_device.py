"""Checks of issue 19's GPU code that only a real CUDA device can answer (``pytest -m gpu``; skipped
without a device, and on the CUDA emulator, whose answers these are checked against).

Run by ``benchmarks/gpu_check.sh``.  They pin what the emulator assumes: cuSOLVER's syevjBatched
workspace per matrix (the k-space chunk cap and memory plan use :data:`SYEVJ_WORK_PER_MATRIX`),
the fused CSR step kernel compiled by NVRTC, cuBLAS's strided GEMM and dotc as gpukpm calls them,
and that a process opens a context on its own device only.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from gpukpm.engine.backend import gpu_status



def _real_device() -> bool:
    if not gpu_status()[0]:
        return False
    import cupy

    return not cupy.__version__.endswith("+emulated")


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not _real_device(), reason="needs a real CUDA device")]


def _syevj_workspace(n: int, batch: int) -> int:
    import cupy
    from cupy.cuda import device
    from cupy_backends.cuda.libs import cublas, cusolver

    a = cupy.empty((batch, n, n), dtype=np.complex128)
    w = cupy.empty((batch, n), dtype=np.float64)
    params = cusolver.createSyevjInfo()
    try:
        return int(cusolver.zheevjBatched_bufferSize(device.get_cusolver_handle(), cusolver.CUSOLVER_EIG_MODE_VECTOR,
                                                     cublas.CUBLAS_FILL_MODE_LOWER, n, a.data.ptr, n, w.data.ptr,
                                                     params, batch))
    finally:
        cusolver.destroySyevjInfo(params)


@pytest.mark.parametrize("n", [2, 4])
def test_syevj_batched_workspace_within_the_model(n):
    """cuSOLVER's workspace per matrix is at most what the memory plan and the chunk cap assume."""
    from gpukpm.engine import kspace

    batch = 4096
    per_matrix = _syevj_workspace(n, batch) / batch
    print(f"syevjBatched workspace: {per_matrix:.1f} complex128 elements per {n}x{n} matrix")
    assert per_matrix <= kspace._syevj_work_elements(n)


def test_fused_csr_step_and_cublas_calls_match_on_the_device():
    import cupy
    import scipy.sparse

    from gpukpm.engine import gpu_kernels
    from gpukpm.engine.backend import get_backend

    gpu = get_backend("gpu")
    assert gpu_kernels.csr_usable(gpu.device_id)  # NVRTC compile + agreement with cuSPARSE
    rng = np.random.default_rng(0)
    R, D = 3, 1000
    M = scipy.sparse.random(D, D, density=0.01, random_state=1, dtype=np.complex128, format="csr")
    x, y = ((rng.normal(size=(R, D)) + 1j * rng.normal(size=(R, D))) for _ in range(2))
    out = cupy.empty((R, D), dtype=np.complex128)
    gpu_kernels.csr_step_into(gpu.csr(M), cupy.asarray(x), cupy.asarray(y), out)
    np.testing.assert_allclose(out.get(), (M @ x.T).T - y, rtol=0, atol=1e-12)
    block = cupy.asarray(rng.normal(size=(5, R, D)) + 1j * rng.normal(size=(5, R, D)))
    P, Q = block[:2, 1], block[2:, 1]
    np.testing.assert_allclose(gpu.conj_gemm(P, Q).get(), P.get().conj() @ Q.get().T, atol=1e-9)
    np.testing.assert_allclose(gpu.real_gemm(P, Q).get(), (P.get().conj() @ Q.get().T).real, atol=1e-9)
    dots = gpu.row_dots(block[0], block[1])
    np.testing.assert_allclose(dots.get(), np.einsum("ij,ij->i", block[0].get().conj(), block[1].get()), rtol=1e-12)


def test_a_process_touches_only_its_device():
    """A fresh process told to use the last device creates no context on device 0 (nvidia-smi's
    compute apps list its pid on one GPU only)."""
    import cupy

    count = cupy.cuda.runtime.getDeviceCount()
    if count < 2:
        pytest.skip("needs two devices to see a context on the wrong one")
    code = ("import os, time, gpukpm.engine.backend as b; be = b.get_backend('gpu'); be.xp.zeros(1); "
            "print(os.getpid(), flush=True); time.sleep(3)")
    env = dict(os.environ, GPUKPM_DEVICE=str(count - 1))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    pid = proc.stdout.readline().strip()
    apps = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,gpu_bus_id", "--format=csv,noheader"],
                          capture_output=True, text=True).stdout
    proc.wait()
    assert len([line for line in apps.splitlines() if line.split(",")[0].strip() == pid]) == 1
