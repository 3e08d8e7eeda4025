"""Distributed moments (gpukpm.run.parallel): MPI = serial, resume, refusal, rank failure, serial fallback.

Tiny honeycomb systems (6×6 cells, D = 144, N = 16, 3 realisations × 4 random
vectors in 6 tasks of 2 vectors).  MPI runs go through the real command line
under the ``mpiexec`` next to ``sys.executable`` (the pip MPICH wheel).
"""
import copy
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

import faults
from gpukpm.engine.spectrum import margin_for
from gpukpm.run import parallel
from gpukpm.run.config import build_model, load_config
from gpukpm.run.io import load_moments
from gpukpm.response.kernels import num_moments_for
from gpukpm.run.parallel import (ResumeMismatch, SerialComm, TaskFailed, Task, assign_tasks, config_fingerprint,
                             device_for_rank, make_tasks, mpi_world, run_moments, run_scaling, select_backend,
                             tasks_folder)
from gpukpm.engine.spectrum import rescaling

REPO = Path(__file__).resolve().parents[1]
MPIEXEC = os.path.join(os.path.dirname(sys.executable), "mpiexec")


def _mpi_usable() -> bool:
    try:
        from mpi4py import MPI  # noqa: F401
    except (ImportError, RuntimeError):
        return False
    return os.path.exists(MPIEXEC)


needs_mpi = pytest.mark.skipif(not _mpi_usable(), reason="needs mpi4py with an MPI library and its mpiexec")

CONFIG = {
    "model": {"name": "GrapheneRashba", "rashba": 0.3, "exchange": 0.4, "mass": 0.1,
              "magnetization": [0.6, 0.0, 0.8]},
    "system": {"shape": [6, 6], "disorder": 1.0, "realisations": 3},
    "kpm": {"num_moments": 16, "trace": 4, "vectors_per_task": 2, "seed": 7},
    "backend": "cpu",
}
NUM_TASKS = 6


def config(**sections):
    cfg = copy.deepcopy(CONFIG)
    for name, values in sections.items():
        cfg[name].update(values)
    return cfg


def write_config(path, cfg=None) -> Path:
    path.write_text(yaml.safe_dump(cfg or CONFIG))
    return path


def cli(cfg_path, out, ranks=None, env=None, timeout=60):
    """Run ``[mpiexec -n ranks] python -m gpukpm moments CFG -o OUT`` (``tests/faults.py`` for ``FAULT_*``)."""
    faulty = any(key.startswith("FAULT_") for key in (env or {}))  # tests/faults.py injects them
    entry = [str(REPO / "tests" / "faults.py")] if faulty else ["-m", "gpukpm"]
    cmd = [sys.executable, *entry, "moments", str(cfg_path), "-o", str(out)]
    if ranks:
        cmd = [MPIEXEC, "-n", str(ranks)] + cmd
    full_env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                    PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    full_env.pop("GPUKPM_QUIET", None)
    full_env.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=out.parent)


def assert_same_samples(got, ref, rtol=1e-12):
    """Sample by sample: same (realisation, vector) order and ‖Δμ_s‖ ≤ rtol ‖μ_s‖."""
    np.testing.assert_array_equal(got.sample_realisations, ref.sample_realisations)
    np.testing.assert_array_equal(got.sample_vectors, ref.sample_vectors)
    assert got.mu_samples.shape == ref.mu_samples.shape
    axes = tuple(range(1, ref.mu_samples.ndim))
    diff2 = (abs(got.mu_samples - ref.mu_samples) ** 2).sum(axis=axes)
    rel = np.sqrt(diff2 / (abs(ref.mu_samples) ** 2).sum(axis=axes))
    assert rel.max() <= rtol, rel.max()
    assert (got.a, got.b) == (ref.a, ref.b)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The serial run (in process, serial communicator)."""
    out = tmp_path_factory.mktemp("ref") / "ref.h5"
    assert run_moments(CONFIG, out, comm=SerialComm(), progress=False) == out
    assert not tasks_folder(out).exists()
    return load_moments(out)


# ----------------------------------------------------------------------------- pieces
def test_tasks_follow_config_order_and_chunks():
    cfg = load_config(config(system={"realisations": [4, 1]}, kpm={"trace": 5, "vectors_per_task": 2}))
    assert make_tasks(cfg) == [Task(0, 4, (0, 1)), Task(1, 4, (2, 3)), Task(2, 4, (4,)),
                               Task(3, 1, (0, 1)), Task(4, 1, (2, 3)), Task(5, 1, (4,))]
    whole = load_config(config(kpm={"vectors_per_task": None}))
    assert make_tasks(whole) == [Task(r, r, (0, 1, 2, 3)) for r in range(3)]
    exact = load_config(config(kpm={"trace": "exact"}))
    assert make_tasks(exact) == [Task(r, r, None) for r in range(3)]
    assert Task(3, 1, (0, 1)).describe() == "task 3 (realisation 1, vectors 0-1)"


def test_assignment_is_a_balanced_contiguous_partition():
    for n in range(0, 9):
        for size in (1, 2, 3, 4):
            parts = assign_tasks(list(range(n)), size)
            assert len(parts) == size
            assert sum(parts, []) == list(range(n))  # contiguous, in order, each task once
            assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert assign_tasks(list(range(7)), 3) == [[0, 1], [2, 3], [4, 5, 6]]


def test_device_for_rank_round_robin_and_sharing(monkeypatch):
    assert [device_for_rank(r, 4, 4) for r in range(4)] == [(0, 1), (1, 1), (2, 1), (3, 1)]
    assert [device_for_rank(r, 4, 2) for r in range(4)] == [(0, 2), (1, 2), (0, 2), (1, 2)]
    assert [device_for_rank(r, 3, 2) for r in range(3)] == [(0, 2), (1, 1), (0, 2)]
    with pytest.raises(ValueError, match="num_devices"):
        device_for_rank(0, 1, 0)
    be, sharing = select_backend("cpu", 0, 1)
    assert (be.name, sharing) == ("cpu", 1)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with pytest.warns(RuntimeWarning, match="OMP_NUM_THREADS"):
        assert select_backend("cpu", 0, 2)[1] == 2


def test_select_backend_gpu_one_device_per_local_rank(monkeypatch):
    """The GPU branch with a stand-in backend of 2 devices, 4 ranks on the node: the device is chosen
    from the device count (no context) before the first backend call, which already names it."""
    calls = []

    def fake_get_backend(name=None, device_id=None):
        calls.append((name, device_id))
        return SimpleNamespace(is_gpu=True, device_id=device_id or 0)

    monkeypatch.setattr(parallel, "get_backend", fake_get_backend)
    monkeypatch.setattr(parallel, "device_count", lambda: 2)
    monkeypatch.delenv("GPUKPM_DEVICE", raising=False)
    with pytest.warns(RuntimeWarning, match="4 ranks on this node share 2 GPU"):
        be, sharing = select_backend("auto", 1, 4)  # lowest local rank on device 1 warns
    assert (be.device_id, sharing, os.environ["GPUKPM_DEVICE"]) == (1, 2, "1")
    assert calls == [("auto", 1)]
    be, sharing = select_backend("gpu", 2, 3)
    assert (be.device_id, sharing, os.environ["GPUKPM_DEVICE"]) == (0, 2, "0")


def test_run_scaling_contains_every_realisation():
    cfg = load_config(config(system={"disorder": 2.0}))
    scale = run_scaling(cfg)
    lo, hi = scale.b - scale.a * (1 - scale.epsilon), scale.b + scale.a * (1 - scale.epsilon)
    model = build_model(cfg["model"])
    for r in range(4):
        H = model.real_space(shape=(6, 6), disorder=2.0, seed=7, realisation=r).hamiltonian
        ev = np.linalg.eigvalsh(H.toarray())
        assert lo < ev[0] and ev[-1] < hi
        assert scale.emin - 1e-9 <= ev[0] and ev[-1] <= scale.emax + 1e-9
    # W = 0: exactly what kubo_moments picks for the (only) Hamiltonian
    clean = load_config(config(system={"disorder": 0.0}))
    H0 = model.real_space(shape=(6, 6)).hamiltonian
    eps = margin_for(cfg["kpm"]["num_moments"])  # the margin kubo_moments picks for this N
    assert run_scaling(clean) == rescaling(H0, backend="cpu", epsilon=eps)
    assert run_scaling(load_config(config(kpm={"bounds": [-10, 9]}))) == rescaling(None, bounds=[-10, 9],
                                                                                 epsilon=eps)
    # the disordered interval is the pristine one widened by W/2 = 1 eV on each side
    pristine_a = rescaling(H0, backend="cpu", epsilon=eps).a
    assert hi - lo == pytest.approx(2 * pristine_a * (1 - scale.epsilon) + 2.0, rel=1e-12)


def test_fingerprint_ignores_tuning_and_unrelated_sections():
    base = load_config(CONFIG)
    same = load_config(config(kpm={"block_size": 4, "vectors_per_batch": 1, "memory_budget_gb": 0.5}))
    same["response"]["temperature"] = 300.0
    same["backend"] = "auto"
    assert config_fingerprint(same) == config_fingerprint(base)
    explicit = config(model={"t": 2.7, "lattice_constant": 0.246})  # defaults written out
    assert config_fingerprint(load_config(explicit)) == config_fingerprint(base)
    for changed in (config(kpm={"num_moments": 24}), config(kpm={"seed": 8}), config(system={"disorder": 0.5}),
                    config(model={"rashba": 0.2}), config(kpm={"vectors_per_task": 1}),
                    config(kpm={"dtype": "complex64"})):
        assert config_fingerprint(load_config(changed)) != config_fingerprint(base)


def test_eta_chooses_num_moments_from_the_run_rescaling(tmp_path):
    cfg = config(kpm={"num_moments": None, "eta": 2.0})
    cfg["response"] = {"kernel": "lorentz", "lorentz_lambda": 3.0}
    got = load_moments(run_moments(cfg, tmp_path / "out.h5", comm=SerialComm(), progress=False))
    assert got.num_moments == num_moments_for("lorentz", 2.0, got.a, 3.0) == 14  # ceil(3 · 9.06 / 2)


# ----------------------------------------------------------------------------- MPI = serial
@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_mpi_equals_serial(tmp_path, reference, ranks):
    cfg = write_config(tmp_path / "cfg.yaml")
    out = tmp_path / "out.h5"
    proc = cli(cfg, out, ranks=ranks)
    assert proc.returncode == 0, proc.stderr
    got = load_moments(out)
    assert_same_samples(got, reference)
    assert np.array_equal(got.mu_samples, reference.mu_samples)  # in fact bit-identical on one machine
    prov = got.provenance
    assert prov["mpi"]["size"] == ranks and len(prov["ranks"]) == ranks
    assert sorted(i for r in prov["ranks"] for i in r["tasks"]) == list(range(NUM_TASKS))
    assert all(r["tasks"] for r in prov["ranks"])  # every rank worked
    assert prov["tasks_computed"] == NUM_TASKS and prov["tasks_skipped"] == 0
    assert {t["rank"] for t in prov["tasks"]} == set(range(ranks))
    assert prov["time_spmv"] == pytest.approx(sum(t["time_spmv"] for t in prov["tasks"]))
    assert f"{NUM_TASKS} computed, 0 skipped" in proc.stderr
    assert not tasks_folder(out).exists()


# ----------------------------------------------------------------------------- resume
def _task_files(out):
    """Finished task files (not the per-batch checkpoints ``task-i.part-j.h5`` of an unfinished task)."""
    return sorted(p.name for p in tasks_folder(out).glob("task-?????.h5"))


def test_killed_serial_run_resumes_without_recomputing(tmp_path, reference):
    """No mpiexec (mpi4py singleton): killed after 2 tasks, the rerun computes exactly the other 4."""
    cfg = write_config(tmp_path / "cfg.yaml")
    out = tmp_path / "out.h5"
    killed = cli(cfg, out, env={"FAULT_FAIL_AFTER_TASKS": "2"})
    assert killed.returncode == -9, killed.stderr  # SIGKILL
    assert not out.exists()
    assert _task_files(out) == ["task-00000.h5", "task-00001.h5"]
    before = {name: os.stat(tasks_folder(out) / name) for name in _task_files(out)}

    rerun = cli(cfg, out, env={"GPUKPM_KEEP_TASKS": "1"})
    assert rerun.returncode == 0, rerun.stderr
    assert "2 finished earlier (skipped), 4 to compute" in rerun.stderr
    got = load_moments(out)
    prov = got.provenance
    assert (prov["tasks_total"], prov["tasks_computed"], prov["tasks_skipped"]) == (6, 4, 2)
    assert prov["tasks_skipped_ids"] == [0, 1] and prov["tasks_computed_ids"] == [2, 3, 4, 5]
    assert [t["computed_now"] for t in prov["tasks"]] == [False, False, True, True, True, True]
    for name, st in before.items():  # finished task files were not rewritten
        now = os.stat(tasks_folder(out) / name)
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    assert_same_samples(got, reference)
    assert np.array_equal(got.mu_samples, reference.mu_samples)

    stamp = os.stat(out).st_mtime_ns
    again = cli(cfg, out)
    assert again.returncode == 0 and "already complete" in again.stderr
    assert os.stat(out).st_mtime_ns == stamp


@needs_mpi
def test_killed_mpi_run_resumes_on_other_rank_count(tmp_path, reference):
    """2 ranks, each SIGKILLs itself after its first task; rerun on 3 ranks computes only the rest."""
    cfg = write_config(tmp_path / "cfg.yaml")
    out = tmp_path / "out.h5"
    killed = cli(cfg, out, ranks=2, env={"FAULT_FAIL_AFTER_TASKS": "1"})
    assert killed.returncode != 0
    assert not out.exists()
    finished = [int(name[5:10]) for name in _task_files(out)]
    assert 1 <= len(finished) <= 2 and set(finished) <= {0, 3}  # the first task of rank 0 / rank 1

    rerun = cli(cfg, out, ranks=3)
    assert rerun.returncode == 0, rerun.stderr
    prov = load_moments(out).provenance
    assert prov["tasks_skipped_ids"] == finished
    assert prov["tasks_computed_ids"] == [i for i in range(NUM_TASKS) if i not in finished]
    assert prov["tasks_computed"] + prov["tasks_skipped"] == NUM_TASKS
    assert_same_samples(load_moments(out), reference)


def test_different_configuration_is_refused(tmp_path, reference):
    out = tmp_path / "out.h5"
    run_moments(CONFIG, out, comm=SerialComm(), progress=False, keep_tasks=True)
    out.unlink()  # emulate a run that finished tasks 0–3 only
    for name in ("task-00004.h5", "task-00005.h5"):
        (tasks_folder(out) / name).unlink()

    with pytest.raises(ResumeMismatch, match=r"kpm\.num_moments: 16 there, 24 now"):
        run_moments(config(kpm={"num_moments": 24}), out, comm=SerialComm(), progress=False)
    with pytest.raises(ResumeMismatch, match=r"system\.disorder: 1\.0 there, 0\.5 now"):
        run_moments(config(system={"disorder": 0.5}), out, comm=SerialComm(), progress=False)
    assert not out.exists() and len(_task_files(out)) == 4  # nothing mixed, nothing removed

    stale = tasks_folder(out) / ".task-00004.h5.x1y2.h5.tmp"  # a write cut short by a kill
    stale.write_bytes(b"partial")
    # tuning knobs are not part of the fingerprint: resume with another block size
    tuned = config(kpm={"block_size": 5, "vectors_per_batch": 1})
    run_moments(tuned, out, comm=SerialComm(), progress=False, keep_tasks=True)
    assert not stale.exists() and len(_task_files(out)) == NUM_TASKS
    got = load_moments(out)
    assert got.provenance["tasks_computed_ids"] == [4, 5] and got.provenance["tasks_skipped"] == 4
    assert [t["block_size"] for t in got.provenance["tasks"]] == [16, 16, 16, 16, 5, 5]
    assert_same_samples(got, reference, rtol=1e-12)

    with pytest.raises(ResumeMismatch, match=r"exists and was computed from a different configuration.*"
                                             r"kpm\.seed: 7 there, 8 now"):
        run_moments(config(kpm={"seed": 8}), out, comm=SerialComm(), progress=False)
    run_moments(config(kpm={"seed": 8}), out, comm=SerialComm(), progress=False, resume=False)
    fresh = load_moments(out)
    assert fresh.seed == 8 and fresh.provenance["tasks_computed"] == NUM_TASKS
    assert not np.allclose(fresh.mu_samples, reference.mu_samples)


@needs_mpi
def test_refusal_under_mpi_is_a_clean_error_on_every_rank(tmp_path):
    out = tmp_path / "out.h5"
    run_moments(CONFIG, out, comm=SerialComm(), progress=False)
    proc = cli(write_config(tmp_path / "cfg.yaml", config(kpm={"num_moments": 20})), out, ranks=2, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.count("kpm.num_moments: 16 there, 20 now") == 2  # rank 0 and rank 1
    assert "Traceback" not in proc.stderr
    assert load_moments(out).num_moments == 16


# ----------------------------------------------------------------------------- failures
@needs_mpi
def test_failing_rank_aborts_the_job(tmp_path):
    cfg = write_config(tmp_path / "cfg.yaml")
    out = tmp_path / "out.h5"
    proc = cli(cfg, out, ranks=2, env={"FAULT_RAISE_IN_TASK": "4"})  # tasks 3–5 are rank 1's
    assert proc.returncode != 0
    assert "rank 1/2" in proc.stderr
    assert "failed in task 4 (realisation 2, vectors 0-1)" in proc.stderr
    assert "injected failure" in proc.stderr
    assert not out.exists()
    assert "task-00004.h5" not in _task_files(out)


def test_failing_task_raises_in_one_process(tmp_path, monkeypatch):
    faults.raise_in_task(monkeypatch, 1)
    out = tmp_path / "out.h5"
    with pytest.raises(TaskFailed, match=r"rank 0/1 .* failed in task 1 \(realisation 0, vectors 2-3\)"):
        run_moments(CONFIG, out, comm=SerialComm(), progress=False)
    assert not out.exists()
    assert _task_files(out) == ["task-00000.h5"]


def test_config_without_shape_is_rejected(tmp_path):
    cfg = copy.deepcopy(CONFIG)
    cfg["system"] = {"disorder": 0.0, "realisations": 1}
    with pytest.raises(ValueError, match="system.shape"):
        run_moments(cfg, tmp_path / "out.h5", comm=SerialComm(), progress=False)


# ----------------------------------------------------------------------------- serial fallback
def test_mpi_world_serial_without_mpi4py(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import raises ImportError
    comm = mpi_world()
    assert isinstance(comm, SerialComm) and (comm.rank, comm.size) == (0, 1)
    assert comm.bcast({"x": 1}) == {"x": 1} and comm.gather(5) == [5] and comm.node_local() == (0, 1)
    monkeypatch.undo()
    monkeypatch.setenv("GPUKPM_MPI", "0")
    assert isinstance(mpi_world(), SerialComm)


def test_serial_fallback_when_mpi_library_missing(tmp_path, reference):
    """mpi4py present but no MPI library (its import raises RuntimeError): the command runs serially."""
    fake = tmp_path / "fake" / "mpi4py"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "MPI.py").write_text("raise RuntimeError('cannot load MPI library')\n")
    cfg = write_config(tmp_path / "cfg.yaml")
    out = tmp_path / "out.h5"
    proc = cli(cfg, out, env={"PYTHONPATH": os.pathsep.join([str(fake.parent), str(REPO)])})
    assert proc.returncode == 0, proc.stderr
    got = load_moments(out)
    assert got.provenance["mpi"] == {"size": 1, "library": SerialComm.library}
    assert_same_samples(got, reference)
    assert got.provenance["hosts"] == [SerialComm().host]
