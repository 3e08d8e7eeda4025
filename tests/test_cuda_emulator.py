"""gpukpm's GPU code paths run on the CUDA emulator (``tests/cuda_emulator``), without a GPU.

The emulator stands in for CuPy with NumPy arrays underneath and CuPy's rules on top (device
arrays never convert to the host implicitly; cuSPARSE/cuBLAS argument checks; the stencil
``RawKernel`` built for the host, its arguments checked against the kernel's parameters).
Here it is first shown to catch the bug classes it is for; then every GPU branch of gpukpm —
the probe, provenance, fused cuSPARSE step, stencil kernel and its self-check, cuBLAS GEMMs,
block size from free memory, complex64, k space, device per MPI rank, the command line —
must give what the CPU backend gives.

The same emulator runs any test module on the ``gpu`` backend:
``GPUKPM_BACKEND=gpu PYTHONPATH=tests/cuda_emulator python -m pytest tests/…``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from gpukpm import kpm, models
from gpukpm.engine import backend
from gpukpm.engine import gpu_kernels
from gpukpm.run import io
from gpukpm.run import parallel
from gpukpm.engine.kgrid import MonkhorstPack, PolarGrid, SquareGrid
from gpukpm.engine.kspace import kspace_moments

from conftest import EMULATOR, needs_compiler

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cupy(cupy_emulator):
    return cupy_emulator


@pytest.fixture(scope="module")
def gpu(cupy):
    return backend.get_backend("gpu")


@pytest.fixture(scope="module")
def system():
    model = models.GrapheneRashba(t=2.7, rashba=0.4, exchange=0.3, mass=0.1, magnetization=(0.6, 0.0, 0.8))
    return model.real_space(shape=(6, 5), disorder=1.0, seed=3)


def _relative(a, b) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


# ----------------------------------------------------------------------------- the emulator is strict
def test_emulator_refuses_host_device_mixing(cupy, tmp_path):
    x = cupy.asarray(np.arange(6.0))
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(x)
    with pytest.raises(TypeError, match="Unsupported type"):
        x + np.ones(6)
    with pytest.raises(TypeError, match="Unsupported type"):
        cupy.concatenate([x, np.ones(2)])
    with pytest.raises(TypeError, match="Implicit conversion"):
        with h5py.File(tmp_path / "f.h5", "w") as fh:
            fh["x"] = x
    with pytest.raises(ValueError, match="cannot be used for fill"):
        x[:3] = np.ones(3)  # CuPy takes a host array only under an index array
    x[cupy.asarray(np.arange(3))] = np.ones(3)
    with pytest.raises(TypeError):
        np.block([x, x])  # no cupy.block: NumPy functions CuPy lacks fail here too
    with pytest.raises(AttributeError):
        x.ctypes  # not an attribute of cupy.ndarray
    host = np.zeros(3)
    d = cupy.asarray(host)
    host[0] = 1.0  # asarray copied to the device
    assert float(d[0]) == 0.0 and isinstance(d.sum(), cupy.ndarray) and isinstance(x.get(), np.ndarray)


def test_emulator_checks_cusparse_and_cublas_arguments(cupy):
    import scipy.sparse
    from cupyx import cusparse
    from cupyx.scipy.sparse import csr_matrix

    A = csr_matrix(scipy.sparse.random(8, 8, density=0.4, random_state=1, format="csr", dtype=complex))
    X = cupy.asarray(np.ones((3, 8), dtype=complex))
    with pytest.raises(ValueError, match="F-contiguous array for b"):
        cusparse.spmm(A, X, alpha=1.0)
    Y = cupy.asarray(np.ones((3, 8), dtype=np.complex64))
    assert cusparse.spmm(A, X.T, c=Y.T, alpha=1.0, beta=-1.0) is not Y.T  # the cast replaced c: Y is untouched
    assert float(abs(Y - 1).max()) == 0.0
    with pytest.raises(TypeError):
        A @ np.ones((8, 2))

    from cupy import cublas

    before = cublas.operand_copies
    P = cupy.asarray(np.ones((4, 8), dtype=complex))
    cublas.gemm("H", "N", P.T, P.T)  # F-contiguous operands: in place
    assert cublas.operand_copies == before
    cublas.gemm("H", "N", P, P)  # a C-ordered operand of op 'H' is copied
    assert cublas.operand_copies == before + 1
    with pytest.raises(ValueError, match="supported"):
        csr_matrix(scipy.sparse.identity(4, dtype=np.int64, format="csr"))


@needs_compiler
def test_emulator_raw_kernel_checks_arguments(cupy):
    kernel = cupy.RawKernel('extern "C" __global__ void add(int n, const double* x, double* y)\n'
                            "{ int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) y[i] += x[i]; }", "add")
    x, y = cupy.asarray(np.arange(5.0)), cupy.asarray(np.ones(5))
    kernel((2,), (4,), (np.int32(5), x, y))
    np.testing.assert_array_equal(y.get(), 1.0 + np.arange(5.0))
    with pytest.raises(TypeError, match="as 8 bytes"):
        kernel((2,), (4,), (5, x, y))  # CuPy would pass 8 bytes for the 4-byte int
    with pytest.raises(TypeError, match="device array"):
        kernel((2,), (4,), (np.int32(5), np.arange(5.0), y))
    with pytest.raises(ValueError, match="grid"):
        kernel((1, 70000), (4,), (np.int32(5), x, y))
    with pytest.raises(TypeError, match="expected tuple"):
        kernel([2], (4,), (np.int32(5), x, y))


# ----------------------------------------------------------------------------- gpukpm on the emulator
def test_probe_selects_the_device_and_records_it(gpu, cupy, monkeypatch):
    assert backend.gpu_status()[0] and backend.get_backend("auto").is_gpu
    info = gpu.device_info()
    assert info["backend"] == "gpu" and info["cupy"] == cupy.__version__ and "Emulated" in info["device_name"]
    monkeypatch.setenv("CUPY_EMULATOR_MEMORY", str(10**9))
    assert gpu.free_memory() == 9 * 10**8


@needs_compiler
def test_stencil_kernel_passes_its_self_check(gpu):
    assert gpu_kernels.usable(0) and gpu.uses_stencils()


@needs_compiler
@pytest.mark.parametrize("stencils", ["1", "0"], ids=["stencil", "csr"])
@pytest.mark.parametrize("dtype, tol", [(np.complex128, 1e-13), (np.complex64, 2e-5)], ids=["c128", "c64"])
@pytest.mark.parametrize("trace", ["exact", 3])
def test_kubo_moments_equal_cpu(gpu, cupy, system, monkeypatch, stencils, dtype, tol, trace):
    """μ of the GPU routes (stencil kernel or cuSPARSE; cuBLAS GEMMs) = the CPU's, with no GEMM operand copied."""
    monkeypatch.setenv("GPUKPM_GPU_STENCIL", stencils)
    gpu_kernels.usable.cache_clear()
    from cupy import cublas

    kw = dict(left=("sx", "sy", "sz", "jx"), right="jy", num_moments=48, trace=trace, seed=5, bounds=(-10, 10),
              progress=False)
    cpu = kpm.kubo_moments(system, backend="cpu", **kw)
    before = cublas.operand_copies
    dev = kpm.kubo_moments(system, backend=gpu, dtype=dtype, **kw)
    assert cublas.operand_copies == before
    assert dev.provenance["backend"] == "gpu" and dev.provenance["dtype"] == np.dtype(dtype).name
    assert dev.provenance["operator_route"] == ("stencil" if stencils == "1" else "csr")
    assert _relative(dev.mu_samples, cpu.mu_samples) <= tol


@needs_compiler
def test_small_device_memory_splits_the_blocks(gpu, system, monkeypatch):
    kw = dict(left=("sx", "sz"), num_moments=64, trace=2, seed=1, bounds=(-10, 10), progress=False)
    whole = kpm.kubo_moments(system, backend=gpu, **kw)
    monkeypatch.setenv("CUPY_EMULATOR_MEMORY", str(system.num_orbitals * 16 * 2 * 16 * 3))
    split = kpm.kubo_moments(system, backend=gpu, **kw)
    assert split.provenance["block_size"] < 64 == whole.provenance["block_size"]
    assert _relative(split.mu_samples, whole.mu_samples) <= 1e-13


@needs_compiler
def test_dos_moments_equal_cpu(gpu, system):
    kw = dict(num_moments=40, trace=2, seed=4, progress=False)
    cpu, dev = kpm.dos_moments(system, backend="cpu", **kw), kpm.dos_moments(system, backend=gpu, **kw)
    assert _relative(dev.mu_samples, cpu.mu_samples) <= 1e-13


@pytest.mark.parametrize("model", [models.GrapheneRashba(rashba=0.1, exchange=0.2, mass=0.05),
                                   models.Rashba2DEGLattice(), models.Rashba2DEG(rashba=0.2, exchange=0.1),
                                   models.Dirac(rashba=0.1, exchange=0.1, mass=0.02)], ids=lambda m: type(m).__name__)
def test_bloch_matrices_and_grids_on_the_device(cupy, model):
    """k, H(k) and the operators are made on the device (no host arrays in a GPU k-space run)."""
    grids = [PolarGrid(k_max=0.5, num_radial=4, num_angular=6), SquareGrid(k_max=0.5, num=7)]
    if hasattr(model, "lattice"):
        grids.append(MonkhorstPack(model.lattice, (5, 6), patch=((-2, 4), (1, 5))))
    for grid in grids:
        k_host, rho_host = grid.points(1, grid.num_points - 1)
        k, rho = grid.points(1, grid.num_points - 1, xp=cupy)
        assert isinstance(k, cupy.ndarray) and isinstance(rho, cupy.ndarray)
        np.testing.assert_allclose(k.get(), k_host, rtol=0, atol=1e-15)
        np.testing.assert_allclose(rho.get(), rho_host, rtol=1e-15)
        H = model.bloch(k, xp=cupy)
        assert isinstance(H, cupy.ndarray)
        np.testing.assert_allclose(H.get(), model.bloch(k_host), rtol=0, atol=1e-14)
        for name in ("sx", "sz", "jx", "jy"):
            np.testing.assert_allclose(model.bloch_operator(name, k, xp=cupy).get(),
                                       model.bloch_operator(name, k_host), rtol=0, atol=1e-14)


def test_kspace_moments_equal_cpu(gpu):
    model = models.GrapheneRashba(t=2.7, rashba=0.4, exchange=0.3, mass=0.1, magnetization=(0.0, 0.6, 0.8))
    kw = dict(left=("sx", "sy", "sz"), num_moments=32, window=(-1.0, 1.0), progress=False)
    cpu, dev = kspace_moments(model, (9, 9), backend="cpu", **kw), kspace_moments(model, (9, 9), backend=gpu, **kw)
    assert dev.provenance["backend"] == "gpu"
    assert _relative(dev.mu_samples, cpu.mu_samples) <= 1e-12
    # the bound-selected k points (indices from the host) on the device; GEMM route on the GPU
    ref = kspace_moments(model, (9, 9), backend="cpu", select="all", moments_route="gemm", **kw)
    assert dev.provenance["select"] == "bound" and dev.provenance["moments_route"] == "gemm"
    assert ref.provenance["num_kept_k"] == dev.provenance["num_kept_k"] <= dev.provenance["num_diagonalised_k"] < 81
    assert _relative(dev.mu_samples, ref.mu_samples) <= 1e-12
    with pytest.raises(ValueError, match="moments_route"):
        kspace_moments(model, (9, 9), backend=gpu, moments_route="nufft", **kw)


@needs_compiler
def test_wrong_stencil_kernel_is_caught_and_csr_used(gpu, system, monkeypatch):
    """A kernel that disagrees with cuSPARSE is switched off by the self-check; μ stays right."""
    real_source = gpu_kernels.kernel_source
    monkeypatch.setattr(gpu_kernels, "kernel_source",
                        lambda S: real_source(S).replace("re -= a.re", "re += a.re"))
    gpu_kernels.usable.cache_clear()
    gpu_kernels._raw_kernel.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="stencil kernel disabled"):
            assert not gpu.uses_stencils()
        kw = dict(left=("sx",), num_moments=24, trace=2, seed=2, bounds=(-10, 10), progress=False)
        dev = kpm.kubo_moments(system, backend=gpu, **kw)
        assert dev.provenance["operator_route"] == "csr"
        assert _relative(dev.mu_samples, kpm.kubo_moments(system, backend="cpu", **kw).mu_samples) <= 1e-13
    finally:
        gpu_kernels.usable.cache_clear()
        gpu_kernels._raw_kernel.cache_clear()


def test_ranks_are_spread_over_the_devices(cupy, monkeypatch):
    """Rank r of a node uses device r mod n; the first rank of a shared device warns."""
    monkeypatch.setenv("CUPY_EMULATOR_DEVICES", "2")
    monkeypatch.setenv("GPUKPM_DEVICE", "0")  # select_backend exports the choice; restored afterwards
    with pytest.warns(RuntimeWarning, match="4 ranks on this node share 2 GPU"):
        be, sharing = parallel.select_backend("gpu", local_rank=1, local_size=4)
    assert (be.device_id, sharing, os.environ["GPUKPM_DEVICE"]) == (1, 2, "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert parallel.select_backend("gpu", local_rank=3, local_size=4)[0].device_id == 1
        be, sharing = parallel.select_backend("gpu", local_rank=0, local_size=2)
    assert (be.device_id, sharing) == (0, 1)


@needs_compiler
def test_command_line_job_on_the_gpu_backend(tmp_path):
    """``gpukpm moments`` with ``backend: gpu`` in a fresh process writes what the CPU job writes."""
    config = {"model": {"name": "GrapheneRashba", "t": 2.7, "rashba": 0.3, "exchange": 0.4, "mass": 0.1},
              "system": {"shape": [5, 4], "disorder": 0.5, "realisations": 1},
              "kpm": {"num_moments": 32, "trace": 2, "seed": 1, "bounds": [-10, 10]}}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(EMULATOR), str(REPO)]), GPUKPM_QUIET="1")
    for name in ("cpu", "gpu"):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(dict(config, backend=name)))
        proc = subprocess.run([sys.executable, "-m", "gpukpm", "moments", str(path), "-o", str(tmp_path / f"{name}.h5"),
                               "-q"], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    cpu, dev = io.load_moments(tmp_path / "cpu.h5"), io.load_moments(tmp_path / "gpu.h5")
    assert dev.provenance["backend"] == "gpu" and "Emulated" in dev.provenance["device_name"]
    assert _relative(dev.mu_samples, cpu.mu_samples) <= 1e-13


@needs_compiler
@pytest.mark.parametrize("script, arguments", [
    ("bench_chebyshev.py", ["--sizes", "12", "--widths", "1", "2", "--min-time", "0.01", "--copy-bytes", "100000"]),
    ("bench_kubo.py", ["--sizes", "8", "--moments", "16", "--sigma-L", "8", "--sigma-N", "16",
                       "--sigma-energies", "5"]),
    ("bench_kspace.py", ["--grid", "60", "--reference-grid", "30", "--num-moments", "16"]),
    ("bench_job.py", ["--L", "8", "--N", "16", "--energies", "11"]),
], ids=lambda v: v if isinstance(v, str) else None)
def test_gpu_benchmarks_run_on_the_emulator(tmp_path, script, arguments):
    """The benchmarks of ``benchmarks/gpu_check.sh`` on the ``gpu`` backend, tiny: no device time is
    lost to a script that fails on the GPU route."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(EMULATOR), str(REPO)]), GPUKPM_QUIET="1")
    output = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--backend", "gpu", *arguments,
                           "--output", str(output)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    device = json.loads(output.read_text())["machine"]["device"]
    assert device["backend"] == "gpu" and device["cupy"].endswith("+emulated")


@needs_compiler
def test_device_only_tests_pass_on_the_emulator(tmp_path):
    """The tests that skip themselves without a CUDA device (GPU = CPU moments, the device kernel, the
    stencil suite's gpu cases) run here on the emulator, so they are known to work before a device
    runs them."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(EMULATOR), str(REPO)]), GPUKPM_QUIET="1")
    tests = REPO / "tests"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           f"{tests / 'test_backend_dos.py'}::test_gpu_moments_equal_cpu",
                           f"{tests / 'test_gpu_kernels.py'}::test_device_kernel_matches_cpu",
                           str(tests / "test_stencil.py"), "-k", "gpu or device"],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0 and "skipped" not in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]
