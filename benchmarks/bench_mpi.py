"""Overhead of the MPI run layer: one moments job as one process and under ``mpiexec``.

The same configuration (same tasks, same total work) runs as

* ``serial``        — ``python -m gpukpm moments`` with ``GPUKPM_MPI=0`` (no MPI at all);
* ``mpiexec-1``     — ``mpiexec -n 1 python -m gpukpm moments`` (launcher + MPI, no split);
* ``mpiexec-2``     — ``mpiexec -n 2 …`` (tasks split over two ranks);
* ``serial-2threads`` — one process, two BLAS threads (the alternative use of two cores);

all with one BLAS thread per rank except the last.  Each run is a fresh
command (``--no-resume``), timed from outside (wall clock, CPU time of the
children) and from its provenance (per-task wall times, per rank).  The
*overhead* of a run is its wall time minus the busiest rank's task time:
interpreter start, imports, planning (bounds), merge, writing and, for MPI,
launcher start-up and the collectives.  Modes are interleaved over the
repeats and the minimum is reported, since other work on the machine only
ever adds time; the load average is recorded.  The moments of every run are
compared with the serial run (bit-identical expected).

    python benchmarks/bench_mpi.py [--repeats 3] [--output benchmarks/results/mpi_cpu.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO / "benchmarks" / "results" / "mpi_cpu.json"
MPIEXEC = os.path.join(os.path.dirname(sys.executable), "mpiexec")
MODEL = {"name": "GrapheneRashba", "rashba": 0.3, "exchange": 0.4, "mass": 0.1, "magnetization": [0.6, 0.0, 0.8]}
JOBS = {
    # overhead-dominated: the CI test job
    "tiny": {"model": MODEL, "system": {"shape": [6, 6], "disorder": 1.0, "realisations": 3},
             "kpm": {"num_moments": 16, "trace": 4, "vectors_per_task": 2, "seed": 7}, "backend": "cpu"},
    # compute-dominated: D = 9216 orbitals, N = 128, 2 realisations × 8 vectors in 4 tasks
    "small": {"model": MODEL, "system": {"shape": [48, 48], "disorder": 1.0, "realisations": 2},
              "kpm": {"num_moments": 128, "trace": 8, "vectors_per_task": 4, "seed": 1}, "backend": "cpu"},
}
MODES = {  # launcher, environment, cores used
    "serial": ([], {"GPUKPM_MPI": "0", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}, 1),
    "mpiexec-1": ([MPIEXEC, "-n", "1"], {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}, 1),
    "mpiexec-2": ([MPIEXEC, "-n", "2"], {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}, 2),
    "serial-2threads": ([], {"GPUKPM_MPI": "0", "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}, 2),
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(cfg_path: Path, out: Path, mode: str) -> dict:
    """One fresh command; returns timings and the moments (not stored in the JSON)."""
    from gpukpm.run.io import load_moments

    launcher, extra = MODES[mode][:2]
    env = dict(os.environ, GPUKPM_QUIET="1", PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               **extra)
    cmd = launcher + [sys.executable, "-m", "gpukpm", "moments", str(cfg_path), "-o", str(out), "--no-resume"]
    cpu0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    moments = load_moments(out)
    prov = moments.provenance
    busiest = max(r["time_tasks"] for r in prov["ranks"])
    return {
        "wall_s": wall, "cpu_s": cpu, "ranks": prov["mpi"]["size"],
        "busiest_rank_tasks_s": busiest, "sum_tasks_s": prov["time_tasks"],
        "time_spmv_s": prov["time_spmv"], "time_gemm_s": prov["time_gemm"],
        "run_moments_wall_s": prov["wall_time"], "overhead_s": wall - busiest,
        "_mu": moments.mu_samples,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    from gpukpm.engine.backend import get_backend

    results = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for job, cfg in JOBS.items():
            cfg_path = tmp / f"{job}.yaml"
            cfg_path.write_text(yaml.safe_dump(cfg))
            runs = {mode: [] for mode in MODES}
            for _ in range(args.repeats):
                for mode in MODES:
                    runs[mode].append(run_once(cfg_path, tmp / f"{job}-{mode}.h5", mode))
            reference = runs["serial"][0]["_mu"]
            summary = {}
            for mode, rs in runs.items():
                diffs = [float(np.abs(r.pop("_mu") - reference).max() / np.abs(reference).max()) for r in rs]
                best = min(rs, key=lambda r: r["wall_s"])
                summary[mode] = {
                    "ranks": best["ranks"], "cores": MODES[mode][2], "wall_s_min": best["wall_s"],
                    "wall_s_median": float(np.median([r["wall_s"] for r in rs])),
                    "overhead_s_min": min(r["overhead_s"] for r in rs),
                    "busiest_rank_tasks_s_min": min(r["busiest_rank_tasks_s"] for r in rs),
                    "sum_tasks_s_min": min(r["sum_tasks_s"] for r in rs),
                    "cpu_s_min": min(r["cpu_s"] for r in rs),
                    "max_relative_difference_to_serial": max(diffs),
                    "runs": rs,
                }
            serial = summary["serial"]
            for mode, s in summary.items():
                s["speedup_vs_serial"] = serial["wall_s_min"] / s["wall_s_min"]
                s["parallel_efficiency"] = s["speedup_vs_serial"] / s["cores"]
                s["extra_overhead_vs_serial_s"] = s["overhead_s_min"] - serial["overhead_s_min"]
            results[job] = {"config": cfg, "modes": summary}
            print(f"{job}: " + ", ".join(f"{m} {s['wall_s_min']:.2f} s (overhead {s['overhead_s_min']:.2f} s)"
                                         for m, s in summary.items()), file=sys.stderr)
    record = {
        "benchmark": "MPI overhead of gpukpm moments (same job, 1 process vs mpiexec -n 1/2)",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": dict(get_backend("cpu").device_info(), python=platform.python_version(),
                        platform=platform.platform(), mpiexec=MPIEXEC,
                        load_average_before=load_before, load_average_after=os.getloadavg()),
        "repeats": args.repeats,
        "definitions": {
            "overhead_s": "command wall time minus the busiest rank's summed task wall time",
            "extra_overhead_vs_serial_s": "overhead_s_min of the mode minus that of serial (GPUKPM_MPI=0)",
            "speedup_vs_serial": "wall_s_min(serial) / wall_s_min(mode)",
            "parallel_efficiency": "speedup_vs_serial / cores used (ranks × BLAS threads)",
        },
        "jobs": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
