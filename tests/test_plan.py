"""The plan of a 2D-moment run (gpukpm.engine.plan) and ``gpukpm plan`` (gpukpm.run.planning).

* the plan's SpMV count and held memory equal what the engine counts and allocates
  (``provenance["spmv_count"]``, ``provenance["held_bytes"]``), exactly, on every route;
* ``kubo_moments`` = ``plan_kubo(...).run()`` bit for bit; the cost model's closed forms;
* a pilot's per-vector std, scaled by √(D_pilot/D), predicts the standard error of a larger run;
* a task of several vector batches killed after its first batch resumes without recomputing it
  and gives the moments of an uninterrupted run.
"""
import json
import math

import numpy as np
import pytest
import yaml

from gpukpm import models
from gpukpm.engine.plan import kubo_cost, plan_kubo, spin_pairs
from gpukpm.kpm import kubo_moments, kubo_response
from gpukpm.run import io, parallel, planning
from gpukpm.run.cli import main
from gpukpm.run.parallel import SerialComm, TaskFailed, run_moments, tasks_folder

MODEL = models.GrapheneRashba(t=2.7, rashba=0.3, exchange=0.4, mass=0.1, magnetization=(0.6, 0.0, 0.8))
FAKE_CALIBRATION = dict(cpu="test CPU", t_orb=1e-9, gemm_flops_per_s=1e10, date="-", load_average=[0.0])

CASES = {
    "spin-resolved, one vector per batch": dict(left=("sx", "sy", "sz"), trace=3, num_moments=24, block_size=10),
    "spin-resolved, batches of 2, regenerated blocks": dict(left=("sx", "sy", "sz"), trace=5, num_moments=24,
                                                          vectors_per_batch=2, block_size=7),
    "per-operator with a real GEMM (A = B)": dict(left=("sx", "jx"), trace=2, num_moments=21),
    "spin-diluted": dict(left=("sx", "sy"), trace=2, num_moments=20, estimator="spin_diluted", block_size=7),
    "exact trace, Hermitian blocks": dict(left=("sx", "jx"), trace="exact", num_moments=20, block_size=6,
                                          shape=(3, 3)),
    "complex64": dict(left=("sx",), right="jy", trace=2, num_moments=16, dtype=np.complex64),
    "CSR operators": dict(left=("sy",), trace=2, num_moments=20, block_size=9, custom=True),
}


@pytest.fixture(scope="module")
def system():
    return MODEL.real_space(shape=(6, 6), disorder=1.0, seed=1, realisation=0)


@pytest.mark.parametrize("name", list(CASES))
def test_plan_counts_equal_the_engine_provenance(system, name):
    kw = dict(CASES[name])
    if "shape" in kw:
        system = MODEL.real_space(shape=kw.pop("shape"), disorder=1.0, seed=1, realisation=0)
    if kw.pop("custom", False):  # a user matrix: the CSR route for it
        kw["left"] = (system.operator("sy"),)
    plan = plan_kubo(system, seed=2, backend="cpu", **kw)
    moments = plan.run(progress=False)
    prov = moments.provenance
    assert plan.cost.spmv_count == prov["spmv_count"]
    assert plan.cost.held_bytes == prov["held_bytes"]
    assert (plan.block_size, plan.tile_size, plan.gemm_route, plan.operator_route, plan.nnz) == \
        (prov["block_size"], prov["tile_size"], prov["gemm_route"], prov["operator_route"], prov["nnz"])
    json.dumps(plan.summary())  # JSON-ready


def test_kubo_moments_is_plan_then_run(system):
    kw = dict(left=("sx", "sy", "sz"), trace=3, num_moments=24, vectors_per_batch=2, block_size=7, seed=2,
              backend="cpu")
    reference = kubo_moments(system, progress=False, **kw)
    planned = plan_kubo(system, **kw).run(progress=False)
    assert np.array_equal(reference.mu_samples, planned.mu_samples)
    assert reference.provenance["spmv_count"] == planned.provenance["spmv_count"]


def test_cost_closed_forms():
    """Stochastic, no Hermitian blocks: (N − 1)(1 + n_blocks) products per start vector; a complex GEMM
    of 8·N²·D flops per operator and start vector, half for the real one, 4·N²·D per spin pair."""
    D, N, b = 1000, 50, 20
    per_op = kubo_cost(dim=D, num_moments=N, batches=[2, 2, 1], block_size=b, tile_size=16, num_left=2,
                       gemm_route="per-operator", real_left=[False, True])
    assert per_op.spmv_count == 5 * (N - 1) * (1 + math.ceil(N / b))
    assert per_op.gemm_flops == 5 * (8 + 4) * N * N * D
    assert per_op.operator_products == 5 * (1 + 2 * N * math.ceil(N / b))
    spin = kubo_cost(dim=D, num_moments=N, batches=[1], block_size=N, tile_size=16, num_left=3,
                     gemm_route="spin-resolved", pairs=spin_pairs(("sx", "sy", "sz")))
    assert spin.gemm_flops == 4 * 4 * N * N * D  # all four pairs: two full GEMMs for three operators
    assert spin_pairs(("sz",)) == [(0, 0), (1, 1)]


def test_retarget_to_a_gpu_uses_per_operator_gemms(system):
    plan = plan_kubo(system, left=("sx", "sy", "sz"), num_moments=32, trace=2, backend="cpu")
    gpu = plan.retarget(gpu=True, memory_budget=40 * 2**30, operator_route="stencil")
    assert plan.gemm_route == "spin-resolved" and gpu.gemm_route == "per-operator"
    assert gpu.cost.gemm_flops == 2 * 3 * 8 * 32 * 32 * plan.dim
    assert gpu.cost.gemm_flops == pytest.approx(1.5 * plan.cost.gemm_flops)
    more = plan.retarget(num_vectors=6)
    assert more.cost.spmv_count == 3 * plan.cost.spmv_count
    with pytest.raises(RuntimeError, match="cannot run"):
        gpu.run()
    t = planning.gpu_time(gpu, planning.DEVICES["H100"])
    assert t["seconds"] == pytest.approx(gpu.cost.stream_bytes / 3.35e12 + max(
        gpu.cost.gemm_flops / 67e12, gpu.cost.gemm_bytes / 3.35e12))


# ----------------------------------------------------------------------------- pilot → target
PILOT_CONFIG = {
    "model": {"name": "GrapheneRashba", "rashba": 0.3, "exchange": 0.4, "mass": 0.1, "magnetization": [0, 0, 1]},
    "system": {"shape": [24, 24], "disorder": 1.5, "realisations": 1},
    "kpm": {"num_moments": 24, "trace": 64, "seed": 5, "left": ["sx", "sy"], "bounds": [-10.0, 10.0],
            "vectors_per_batch": 16},
    "response": {"energies": {"start": -1.5, "stop": 1.5, "num": 61}},
    "backend": "cpu",
}


def test_pilot_predicts_the_standard_error_of_a_larger_run(tmp_path):
    """Pilot 24² (D = 2304), 64 vectors → prediction for 48² (D = 9216), 64 vectors, at the pilot's peaks.

    The tolerance is the method's: a std estimated from R vectors is uncertain by ≈ 1/√(2(R − 1)), so the
    ratio of two independent estimates (pilot and run, R = 64 each) by ≈ √(2/126) = 0.13; 30 % is 2.4 of
    that (seeds fixed: deterministic).  Both runs share the rescaling (kpm.bounds), hence N and η(ε)."""
    pilot_file = run_moments(PILOT_CONFIG, tmp_path / "pilot.h5", progress=False, comm=SerialComm())
    target = json.loads(json.dumps(PILOT_CONFIG))
    target["system"]["shape"] = [48, 48]
    target["kpm"]["seed"] = 6
    record = planning.plan_job(target, pilot=pilot_file, devices=(), calibration=FAKE_CALIBRATION,
                               target_rel_error=0.05)
    sizing = record["sizing"]
    assert sizing["pilot"]["dim"] == 2304 and record["system"]["dim"] == 9216
    assert sizing["pilot"]["num_samples"] == 64 and not sizing["notes"]
    out = run_moments(target, tmp_path / "target.h5", progress=False, comm=SerialComm())
    energies = np.linspace(-1.5, 1.5, 61)
    resp = kubo_response(io.load_moments(out), energies, num_moments=24)
    for op, peak in sizing["pilot"]["peaks"].items():
        k, i = resp.operators.index(op), int(np.argmin(abs(energies - peak["energy"])))
        predicted = sizing["predicted_stderr_of_job"][op]
        assert predicted == pytest.approx(peak["per_sample_std"] * math.sqrt(2304 / 9216) / 8)
        assert abs(resp.stderr[k, i] / predicted - 1) < 0.30, (op, resp.stderr[k, i], predicted)
    # samples for the target: (σ₁(D)/(ε·|χ|))², vectors per realisation, device-hours per target
    for op, peak in sizing["pilot"]["peaks"].items():
        sigma = peak["per_sample_std"] * 0.5
        assert sizing["per_operator"][op] == math.ceil((sigma / (0.05 * abs(peak["mean"]))) ** 2)
    assert sizing["samples"] == max(sizing["per_operator"].values())
    assert sizing["vectors_per_realisation"] == sizing["samples"]
    hours = sizing["samples"] * record["targets"]["cpu"]["seconds"] / 64 / 3600
    assert sizing["device_hours"]["cpu"] == pytest.approx(hours)


def test_plan_command_prints_and_writes_json(tmp_path, capsys):
    cal = tmp_path / "calibration.json"
    measured = planning.calibrate_cpu(("sx", "sy"), "jx", "complex128", shape=(8, 8), num_moments=16, cache=cal)
    assert measured["t_orb"] > 0 and measured["gemm_flops_per_s"] > 0 and not measured["cached"]
    cfg = dict(PILOT_CONFIG, kpm=dict(PILOT_CONFIG["kpm"], trace=16))
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["plan", str(path), "--json", str(tmp_path / "plan.json"), "--calibration", str(cal)]) == 0
    text = capsys.readouterr().out
    assert "nominal" in text and "H100" in text and "A100" in text
    record = json.loads((tmp_path / "plan.json").read_text())
    assert record["targets"]["cpu"]["calibration"]["cached"] is True  # the cache served
    assert set(record["targets"]) == {"cpu", "H100", "H200", "A100"}
    assert record["targets"]["H100"]["nominal"] and not record["targets"]["cpu"]["nominal"]
    task = record["tasks"][0]
    assert task["count"] == 1 and task["vectors"] == 16
    # the job's SpMV count is the engine's
    system = MODEL.with_magnetization((0, 0, 1)).real_space(shape=(24, 24), disorder=1.5, seed=5, realisation=0)
    mom = kubo_moments(system, left=("sx", "sy"), num_moments=24, trace=16, seed=5, bounds=(-10, 10),
                       vectors_per_batch=16, progress=False)
    assert record["job"]["spmv_count"] == mom.provenance["spmv_count"]


# ----------------------------------------------------------------------------- per-batch checkpoints
RESUME_CONFIG = {
    "model": {"name": "GrapheneRashba", "rashba": 0.3, "exchange": 0.4, "mass": 0.1, "magnetization": [0.6, 0, 0.8]},
    "system": {"shape": [8, 8], "disorder": 1.0, "realisations": 1},
    "kpm": {"num_moments": 16, "trace": 16, "seed": 3, "vectors_per_batch": 4},
    "backend": "cpu",
}


def test_task_killed_after_its_first_batch_resumes_without_recomputing_it(tmp_path, monkeypatch):
    reference = io.load_moments(run_moments(RESUME_CONFIG, tmp_path / "ref.h5", progress=False, comm=SerialComm()))
    calls = []
    engine = parallel.kubo_moments

    def killed_after_first_batch(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt("job killed")  # not an Exception: nothing in the job catches it
        calls.append(kwargs["vectors"])
        return engine(*args, **kwargs)

    monkeypatch.setattr(parallel, "kubo_moments", killed_after_first_batch)
    out = tmp_path / "out.h5"
    with pytest.raises(KeyboardInterrupt):
        run_moments(RESUME_CONFIG, out, progress=False, comm=SerialComm())
    parts = sorted(p.name for p in tasks_folder(out).glob("task-*.part-*.h5"))
    assert parts == ["task-00000.part-0000.h5"] and not out.exists()

    calls.clear()

    def counting(*args, **kwargs):
        calls.append(kwargs["vectors"])
        return engine(*args, **kwargs)

    monkeypatch.setattr(parallel, "kubo_moments", counting)
    run_moments(RESUME_CONFIG, out, progress=False, comm=SerialComm())
    assert calls == [[4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]]  # batch 0 was not recomputed
    resumed = io.load_moments(out)
    assert np.array_equal(resumed.mu_samples, reference.mu_samples)
    assert np.array_equal(resumed.sample_vectors, np.arange(16))
    task = resumed.provenance["tasks"][0]
    assert task["spmv_count"] == reference.provenance["tasks"][0]["spmv_count"]
    assert not tasks_folder(out).exists()


def test_a_failing_batch_is_reported_as_the_task(tmp_path, monkeypatch):
    def failing(*args, **kwargs):
        raise RuntimeError("device lost")

    monkeypatch.setattr(parallel, "kubo_moments", failing)
    with pytest.raises(TaskFailed, match="task 0"):
        run_moments(RESUME_CONFIG, tmp_path / "x.h5", progress=False, comm=SerialComm())


# ----------------------------------------------------------------------------- the workflow's pilot switch
def test_workflow_pilot_sizes_the_production_trace(tmp_path):
    """realspace.pilot: per W a pilot job and `gpukpm plan --pilot`; the moments jobs take kpm.trace from it."""
    pytest.importorskip("snakemake")
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    cfg = {
        "title": "pilot test", "results": "results", "backend": "cpu",
        "realspace": {"model": {"name": "GrapheneRashba", "t": 2.7, "rashba": 0.3, "exchange": 0.4, "mass": 0.1},
                      "shape": [8, 8], "disorder": [1.0], "realisations": 2, "realisations_per_job": 1, "trace": 1,
                      "num_moments": 16, "seed": 3, "energies": {"start": -1.0, "stop": 1.0, "num": 11},
                      "peak_window": [-0.8, 0.8], "target_rel_error": 0.5,
                      "pilot": {"trace": 4, "shape": [6, 6], "max_trace": 5}},
        "kspace": {"enabled": False},
        "torque": {"order": 2, "subset": [0, 1, 2, 5, 6, 13]},
    }
    path = tmp_path / "pilot.yaml"
    path.write_text(yaml.safe_dump(cfg))
    results = tmp_path / "results"
    results.mkdir()
    # the key as the pipeline's own process computes it (this process's Numba thread count may differ)
    key = subprocess.run([sys.executable, "-c", "from gpukpm.run import planning; "
                          "print(planning.calibration_key(('sx', 'sy', 'sz'), 'jx', 'complex128'))"],
                         capture_output=True, text=True, check=True).stdout.strip()
    (results / "pilot_calibration.json").write_text(json.dumps({key: dict(FAKE_CALIBRATION, key=key)}))
    target = "results/realspace/W1/moments/m00/c1.yaml"
    res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(root / "workflow" / "Snakefile"),
                          "--directory", str(tmp_path), "--configfile", str(path), "--cores", "2", target],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-5000:]
    plan = json.loads((results / "realspace/W1/pilot/plan.json").read_text())
    sizing = plan["sizing"]
    assert sizing["pilot"]["num_samples"] == 4 and sizing["pilot"]["dim"] == 4 * 36
    assert plan["system"]["dim"] == 4 * 64 and plan["targets"]["cpu"]["calibration"]["cpu"] == "test CPU"
    job = yaml.safe_load((tmp_path / target).read_text())
    assert job["kpm"]["trace"] == min(5, max(1, math.ceil(sizing["samples"] / 2)))
    assert job["system"]["realisations"] == [1]
    assert io.load_moments(tmp_path / target.replace(".yaml", ".h5")).num_samples == job["kpm"]["trace"]
