"""SLURM resources of a pipeline job from its size: a small stand-in cost model.

Used by ``workflow/rules/common.smk`` for the ``moments`` and ``kspace_moments`` rules so that every
job asks for what it needs (GPUs = MPI ranks = its gpukpm tasks, runtime and memory from its
size) instead of fixed guesses.  It is deliberately simple and named to be swapped for gpukpm's
plan/cost model (issue 16) once that exists: :func:`moments_job_resources` and
:func:`kspace_job_resources` are the two entry points the rules call.

Real-space moments job (D orbitals, nnz non-zeros of H, N moments, n_left left operators,
V random vectors in T gpukpm tasks, run on K = min(T, ranks per node) ranks):

    GEMM flops per vector   F = 8 N² D n_left                (μ_nm for every n, m: complex MACs)
    SpMV bytes per vector   B = 4 N (20 nnz + 48 D)          (≈ 4N Chebyshev steps incl. regeneration)
    seconds per vector      t = F / RATE + B / BANDWIDTH     (RATE, BANDWIDTH per backend below)
    runtime (minutes)       ⌈SAFETY · ⌈T/K⌉ · (V/T) · t / 60⌉ + STARTUP_MIN, at least MIN_RUNTIME_MIN
    host memory (MB)        ⌈SAFETY_MEM · (K · build + samples) / 2²⁰⌉ + BASE_MEM_MB,
                            build = 4 (1 + n_ops) · 20 nnz (H and the operators, SciPy temporaries)
                                    + on the CPU the rank's block memory (memory_budget_gb or 8 GB),
                            samples = 2 · V · n_left · N² · 16 (the job's μ samples, merged on rank 0)

The rates are sustained, not peak, figures (FP64 GEMM 10 Tflop/s and 1.5 TB/s streaming on an
H100-class GPU; 50 Gflop/s and 20 GB/s per CPU rank); SAFETY = 3 covers their error.
"""
from __future__ import annotations

import math

RATE = {"gpu": 10e12, "cpu": 50e9}  # flop/s, sustained
BANDWIDTH = {"gpu": 1.5e12, "cpu": 20e9}  # bytes/s, sustained
SAFETY = 3.0
SAFETY_MEM = 1.5
STARTUP_MIN = 10  # imports, system build, HDF5 writes, queue-side start
MIN_RUNTIME_MIN = 15
BASE_MEM_MB = 2000
CPU_BLOCK_BYTES = 8 * 2**30  # a CPU rank's Chebyshev blocks when memory_budget_gb is not set
DEFAULT_RANKS_PER_NODE = 4  # GPUs of a node (GPUKPM_GPUS_PER_NODE in the environment of snakemake)


def moments_tasks(num_realisations: int, trace, vectors_per_task) -> int:
    """gpukpm tasks of one moments job (as gpukpm.run.parallel.make_tasks counts them)."""
    if trace == "exact":
        return num_realisations
    return num_realisations * math.ceil(int(trace) / (vectors_per_task or int(trace)))


def moments_seconds_per_vector(num_orbitals: int, nnz: int, num_moments: int, num_left: int,
                               backend: str) -> float:
    """Seconds of one random vector's 2D moments (module formula)."""
    flops = 8.0 * num_moments**2 * num_orbitals * num_left
    traffic = 4.0 * num_moments * (20.0 * nnz + 48.0 * num_orbitals)
    return flops / RATE[backend] + traffic / BANDWIDTH[backend]


def moments_job_resources(*, num_orbitals: int, nnz: int, num_moments: int, num_left: int, num_ops: int,
                          num_realisations: int, trace, vectors_per_task=None, gpu: bool = True,
                          ranks_per_node: int = DEFAULT_RANKS_PER_NODE, memory_budget_gb=None) -> dict:
    """``{tasks, gpu, runtime, mem_mb}`` of one real-space moments job (module formula).

    ``tasks`` (MPI ranks) is the number of gpukpm tasks of the job, at most ``ranks_per_node``;
    ``gpu`` equals it on a GPU backend (one GPU per rank), 0 on the CPU.
    """
    backend = "gpu" if gpu else "cpu"
    tasks = moments_tasks(num_realisations, trace, vectors_per_task)
    ranks = max(1, min(tasks, ranks_per_node))
    vectors = num_realisations * (num_orbitals if trace == "exact" else int(trace))
    seconds = SAFETY * math.ceil(tasks / ranks) * (vectors / tasks) * moments_seconds_per_vector(
        num_orbitals, nnz, num_moments, num_left, backend)
    runtime = max(MIN_RUNTIME_MIN, math.ceil(seconds / 60.0) + STARTUP_MIN)
    build = 4.0 * (1 + num_ops) * 20.0 * nnz
    if not gpu:
        build += memory_budget_gb * 2**30 if memory_budget_gb else CPU_BLOCK_BYTES
    samples = 2.0 * vectors * num_left * num_moments**2 * 16
    mem_mb = math.ceil(SAFETY_MEM * (ranks * build + samples) / 2**20) + BASE_MEM_MB
    return {"tasks": ranks, "gpu": ranks if gpu else 0, "runtime": int(runtime), "mem_mb": int(mem_mb)}


def kspace_job_resources(*, num_points: int, bands: int, num_moments: int, gpu: bool = True) -> dict:
    """``{tasks, gpu, runtime, mem_mb}`` of one k-space moments job (one process, one GPU).

    Work ≈ every k point's bound and a share of them diagonalised (≈ 200·n³ flops each) plus the
    kept pairs' Chebyshev tables (≈ 8 N flops per pair, ≤ n² pairs per point): an upper bound
    that assumes every point is kept.  Memory: gpukpm's own memory plan takes half the free
    memory of the device; the host needs the grid chunk and the records, ≈ 4 GB here.
    """
    backend = "gpu" if gpu else "cpu"
    flops = num_points * (200.0 * bands**3 + 8.0 * num_moments * bands**2)
    seconds = SAFETY * flops / RATE[backend] * 10  # small batched kernels run far below the GEMM rate
    runtime = max(MIN_RUNTIME_MIN, math.ceil(seconds / 60.0) + STARTUP_MIN)
    return {"tasks": 1, "gpu": 1 if gpu else 0, "runtime": int(runtime), "mem_mb": 4000 + BASE_MEM_MB}
