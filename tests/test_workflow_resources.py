"""SLURM resources of the pipeline's jobs derived from the job (issue 19) by gpukpm plan's cost model
(:func:`gpukpm.run.planning.job_resources`): GPUs = MPI ranks = the job's gpukpm tasks, runtime and memory
from the plan, not fixed guesses.  Snakemake's dry run of config/paper.yaml with the SLURM profile:
tests/test_workflow.py."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from gpukpm import kpm, models
from gpukpm.run import planning
from gpukpm.run.pipeline import Pipeline

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def paper_job():
    """One moments job of config/paper.yaml (1024², N = 1867, one realisation, one vector), at the largest W."""
    pipe = Pipeline(yaml.safe_load((REPO / "config" / "paper.yaml").read_text()), "paper.yaml")
    w_max = max(pipe.w_values, key=pipe.w_values.get)
    return pipe.moments_job(w_max, pipe.mag_labels[0], next(iter(pipe.chunks)))


def _with(job, **system_or_kpm):
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in job.items()}
    for key, value in system_or_kpm.items():
        section = "system" if key in ("shape", "realisations") else "kpm"
        out[section][key] = value
    return out


def test_one_task_one_rank_one_gpu(paper_job):
    """config/paper.yaml: one realisation and one vector per job → one rank on one GPU (not 4), far below
    the 720 min and 240 GB the profile used to ask for."""
    res = planning.job_resources(paper_job, gpu=True)
    assert (res["tasks"], res["gpu"]) == (1, 1)
    assert planning.MIN_RUNTIME_MIN <= res["runtime"] < 720 and res["mem_mb"] < 240000


def test_ranks_follow_the_tasks_up_to_a_node(paper_job):
    two = planning.job_resources(_with(paper_job, realisations=[0, 1]), gpu=True)
    many = planning.job_resources(_with(paper_job, realisations=[0, 1, 2, 3], trace=8, vectors_per_task=2), gpu=True)
    assert (two["tasks"], two["gpu"]) == (2, 2) and (many["tasks"], many["gpu"]) == (4, 4)
    cpu = planning.job_resources(_with(paper_job, realisations=[0, 1]), gpu=False)
    assert cpu["gpu"] == 0 and cpu["runtime"] > two["runtime"]


@pytest.mark.parametrize("gpu", [False, True])
def test_the_probe_plan_scaled_to_the_job_is_the_jobs_own_plan(gpu):
    """full_size_plans: the plan of an 8×8 probe scaled to 48² has the SpMV count, GEMM flops, bytes and
    held memory of the plan of the 48² system itself (D and nnz scale with the cells of a periodic lattice)."""
    from gpukpm.run.config import load_config

    job = load_config({"model": {"name": "GrapheneRashba", "t": 2.7, "rashba": 0.3, "exchange": 0.4, "mass": 0.1,
                                 "magnetization": [0, 0, 1]},
                       "system": {"shape": [48, 48], "disorder": 1.0, "realisations": [0]},
                       "kpm": {"num_moments": 64, "trace": 2, "seed": 1, "bounds": [-10.0, 10.0]}, "backend": "cpu"})
    (scaled, count), = planning.full_size_plans(job, gpu=gpu, probe_shape=(8, 8))[0]
    system = models.GrapheneRashba(rashba=0.3, exchange=0.4, mass=0.1, magnetization=(0, 0, 1)).real_space(
        shape=(48, 48), disorder=1.0, seed=1)
    direct = kpm.plan_kubo(system, num_moments=64, trace=2, seed=1, bounds=(-10.0, 10.0), backend="cpu")
    spec = planning.DEVICES["H100"] if gpu else planning.NOMINAL_CPU_RANK
    direct = direct.retarget(gpu=gpu, memory_budget=int(0.5 * spec["memory_gb"] * 1e9),
                             operator_route="stencil" if gpu else None)
    assert count == 1 and (scaled.dim, scaled.nnz) == (direct.dim, direct.nnz)
    assert scaled.cost == direct.cost
    seconds = planning.gpu_time(direct, spec)["seconds"]
    res = planning.job_resources(job, gpu=gpu, probe_shape=(8, 8))
    assert res["runtime"] == max(planning.MIN_RUNTIME_MIN,
                                 math.ceil(planning.RESOURCE_SAFETY * seconds / 60.0) + planning.STARTUP_MIN)


def test_kspace_job_resources_are_one_gpu():
    k = planning.kspace_job_resources(num_points=14691**2, bands=4, num_moments=581)
    assert (k["tasks"], k["gpu"]) == (1, 1) and k["runtime"] >= planning.MIN_RUNTIME_MIN


def test_slurm_profile_leaves_the_derived_resources_to_the_rules():
    profile = yaml.safe_load((REPO / "cluster" / "slurm" / "config.yaml").read_text())
    for rule in ("moments", "kspace_moments"):
        fixed = set(profile["set-resources"][rule]) & {"tasks", "gpu", "runtime", "mem_mb"}
        assert not fixed, f"{rule}: {fixed} would override the derived resources"
    assert profile["set-resources"]["moments"]["tasks_per_gpu"] == 1
