"""One pipeline job end to end — moments of one (realisation, magnetisation) and its reconstruction —
with the time split into build, Chebyshev products, GEMM, reconstruction and I/O.

The job is what the Snakemake pipeline runs per W × magnetisation × realisation chunk: the
``gpukpm moments`` path (:func:`gpukpm.run.parallel.run_moments`: per-task checkpoint file, merge,
atomic HDF5 write), then ``gpukpm response`` for the parts total, sea and surface (load, Kubo-Bastin
reconstruction on ``--energies`` Fermi energies, HDF5 + CSV write).  Benchmark honeycomb of
``common.MODEL`` (Rashba + exchange with tilted m̂ + mass), L × L cells, Anderson W = 1 eV, left
operators s_x s_y s_z, right ĵ_x, one random vector, spectral bounds by hand (so no Lanczos run
hides in the I/O share), Jackson kernel.

Stages (seconds; shares of the whole job):

* ``build`` — the disordered lattice, from the task's provenance (``time_build``);
* ``spmv`` — Chebyshev steps and operator products (engine's ``time_spmv``);
* ``gemm`` — the moment GEMMs (``time_gemm``);
* ``moments_other`` — task wall − build − spmv − gemm (rescaled operator, random vector, copies);
* ``moments_io`` — ``run_moments`` wall − task wall: planning, the task file, merge, final write;
* ``reconstruction`` — ``kubo_response`` of the three parts;
* ``response_io`` — loading the moments file and writing the responses (HDF5 + CSV).

    python benchmarks/bench_job.py [--backend cpu|gpu|auto] [--L 256] [--N 256] [--energies 1001]
        [--output PATH]

Result: ``benchmarks/results/job_<backend>.json``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

PARTS = ("total", "sea", "surface")


def job_config(L: int, N: int, backend: str) -> dict:
    half_width = 3 * common.MODEL["t"] + common.DISORDER / 2 + 0.5
    return {
        "backend": backend,
        "model": dict(common.MODEL, name="GrapheneRashba", magnetization=list(common.MODEL["magnetization"])),
        "system": {"shape": [L, L], "disorder": common.DISORDER, "realisations": 1},
        "kpm": {"num_moments": N, "trace": 1, "seed": 1, "left": ["sx", "sy", "sz"], "right": "jx",
                "bounds": [-half_width, half_width]},
    }


def run_job(cfg: dict, energies: np.ndarray, workdir: Path) -> dict:
    from gpukpm.run import io
    from gpukpm.response.kubo import kubo_response
    from gpukpm.run.parallel import run_moments

    moments_path = workdir / "moments.h5"
    t0 = time.perf_counter()
    run_moments(cfg, moments_path, resume=False, progress=False)
    t_moments = time.perf_counter() - t0

    t1 = time.perf_counter()
    moments = io.load_moments(moments_path)
    t_load = time.perf_counter() - t1
    t_reconstruction = t_write = 0.0
    for part in PARTS:
        t2 = time.perf_counter()
        response = kubo_response(moments, energies, kernel="jackson", part=part)
        t3 = time.perf_counter()
        io.save_response(workdir / f"{part}.h5", response, provenance=dict(moments.provenance))
        io.atomic_text(workdir / f"{part}.csv", io.response_csv(response))
        t_reconstruction += t3 - t2
        t_write += time.perf_counter() - t3
    wall = time.perf_counter() - t0

    task = moments.provenance["tasks"][0]
    stages = {
        "build": task["time_build"],
        "spmv": task["time_spmv"],
        "gemm": task["time_gemm"],
        "moments_other": task["wall"] - task["time_build"] - task["time_spmv"] - task["time_gemm"],
        "moments_io": t_moments - task["wall"],
        "reconstruction": t_reconstruction,
        "response_io": t_load + t_write,
    }
    return {"wall_s": wall, "moments_wall_s": t_moments, "stages_s": stages,
            "shares": {k: v / wall for k, v in stages.items()},
            "unaccounted_s": wall - sum(stages.values()),
            "moments_file_bytes": moments_path.stat().st_size, "spmv_count": task["spmv_count"],
            "block_size": task["block_size"], "backend": task["backend"], "device_name": task["device_name"]}


def main(argv=None) -> dict:
    from gpukpm.engine.backend import get_backend

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", default="auto")
    p.add_argument("--L", type=int, default=256, help="cells per side (>= 4)")
    p.add_argument("--N", type=int, default=256, help="Chebyshev moments (>= 16)")
    p.add_argument("--energies", type=int, default=1001, help="Fermi energies of the reconstruction (>= 2)")
    p.add_argument("--output", type=Path, default=None)
    args = p.parse_args(argv)
    for name, value, low in (("--L", args.L, 4), ("--N", args.N, 16), ("--energies", args.energies, 2)):
        if value < low:
            p.error(f"{name} must be >= {low}, got {value}")

    be = get_backend(args.backend)
    cfg = job_config(args.L, args.N, be.name)
    energies = np.linspace(-2.0, 2.0, args.energies)
    with tempfile.TemporaryDirectory(prefix="gpukpm-job-") as tmp:
        run_job(job_config(8, 32, be.name), energies[:11], Path(tmp))  # warm-up: imports, Numba caches
    with tempfile.TemporaryDirectory(prefix="gpukpm-job-") as tmp:
        job = run_job(cfg, energies, Path(tmp))
    result = {"benchmark": "one pipeline job: moments (sx sy sz | jx, 1 vector) + response (total, sea, surface)",
              "date": common.now(), "machine": common.machine_info(be), "config": cfg,
              "num_energies": args.energies, "num_orbitals": 4 * args.L**2, **job, "load_after": common.load()}
    stages = "  ".join(f"{k} {v:.2f} s ({job['shares'][k]:.0%})" for k, v in job["stages_s"].items())
    print(f"L={args.L} N={args.N}: whole job {job['wall_s']:.2f} s  {stages}", flush=True)
    print(f"wrote {common.write_json('job', be.name, result, args.output)}")
    return result


if __name__ == "__main__":
    main()
