"""SLURM resources of the pipeline's jobs derived from the job (issue 19): GPUs = MPI ranks = the job's
gpukpm tasks, runtime and memory from its size (workflow/scripts/jobcost.py), not fixed guesses.
Snakemake's dry run of config/paper.yaml with the SLURM profile: tests/test_workflow.py."""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
import jobcost  # noqa: E402

PAPER = dict(num_orbitals=1024 * 1024 * 4, nnz=int(9 * 1024 * 1024 * 4), num_moments=1867, num_left=3, num_ops=4)


def test_one_task_one_rank_one_gpu():
    """config/paper.yaml: one realisation and one vector per job → one rank on one GPU (not 4)."""
    res = jobcost.moments_job_resources(**PAPER, num_realisations=1, trace=1)
    assert (res["tasks"], res["gpu"]) == (1, 1)
    assert jobcost.MIN_RUNTIME_MIN <= res["runtime"] < 720 and res["mem_mb"] < 240000


def test_ranks_follow_the_tasks_up_to_a_node():
    assert jobcost.moments_tasks(2, 8, 2) == 8 and jobcost.moments_tasks(3, "exact", None) == 3
    two = jobcost.moments_job_resources(**PAPER, num_realisations=2, trace=1)
    many = jobcost.moments_job_resources(**PAPER, num_realisations=4, trace=8, vectors_per_task=2)
    assert (two["tasks"], two["gpu"]) == (2, 2) and (many["tasks"], many["gpu"]) == (4, 4)
    cpu = jobcost.moments_job_resources(**PAPER, num_realisations=2, trace=1, gpu=False)
    assert cpu["gpu"] == 0 and cpu["runtime"] > two["runtime"]


def test_runtime_and_memory_grow_with_the_job():
    small = jobcost.moments_job_resources(**PAPER, num_realisations=1, trace=1)
    more_vectors = jobcost.moments_job_resources(**PAPER, num_realisations=1, trace=64)
    assert more_vectors["runtime"] > small["runtime"] and more_vectors["mem_mb"] > small["mem_mb"]
    t1 = jobcost.moments_seconds_per_vector(PAPER["num_orbitals"], PAPER["nnz"], 1000, 3, "gpu")
    t2 = jobcost.moments_seconds_per_vector(PAPER["num_orbitals"], PAPER["nnz"], 2000, 3, "gpu")
    assert 3.5 < t2 / t1 < 4.0  # N² GEMM dominates
    k = jobcost.kspace_job_resources(num_points=14691**2, bands=4, num_moments=581)
    assert (k["tasks"], k["gpu"]) == (1, 1) and k["runtime"] >= jobcost.MIN_RUNTIME_MIN


def test_slurm_profile_leaves_the_derived_resources_to_the_rules():
    profile = yaml.safe_load((REPO / "cluster" / "slurm" / "config.yaml").read_text())
    for rule in ("moments", "kspace_moments"):
        fixed = set(profile["set-resources"][rule]) & {"tasks", "gpu", "runtime", "mem_mb"}
        assert not fixed, f"{rule}: {fixed} would override the derived resources"
    assert profile["set-resources"]["moments"]["tasks_per_gpu"] == 1
