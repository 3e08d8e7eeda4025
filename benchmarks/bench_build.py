"""Build time and peak memory of the real-space honeycomb: H plus the five operators.

Each size runs in a fresh subprocess so that ``ru_maxrss`` (peak resident
memory) belongs to that size alone; the baseline after the imports is reported
too.  The model has every term switched on (Rashba, tilted m̂ so the exchange
has spin-flip entries, staggered mass, Anderson disorder), i.e. the largest
pattern.  Results go to ``benchmarks/results/build_cpu.json``.

    python benchmarks/bench_build.py [--sizes 256 512 1024] [--output PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

OPERATORS = ("sx", "sy", "sz", "jx", "jy")
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "build_cpu.json"


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def measure(L: int) -> dict:
    """Build one ``L × L`` system in this process and return timings (s) and memory (bytes)."""
    import numpy as np

    from gpukpm.models import GrapheneRashba

    baseline = _maxrss_bytes()
    model = GrapheneRashba(rashba=0.01, exchange=0.04, mass=0.005, magnetization=(0.6, 0.0, 0.8))
    start = time.perf_counter()
    system = model.real_space((L, L), disorder=2.7, seed=1, realisation=0, dtype=np.complex128)
    timings = {"hamiltonian": time.perf_counter() - start}
    memory = {"after_hamiltonian": _maxrss_bytes()}
    for name in OPERATORS:
        tick = time.perf_counter()
        system.operator(name)
        timings[name] = time.perf_counter() - tick
    timings["total"] = time.perf_counter() - start
    matrices = {"hamiltonian": system.hamiltonian, **{n: system.operator(n) for n in OPERATORS}}
    return {
        "L": L,
        "num_orbitals": system.num_orbitals,
        "nnz": {n: int(m.nnz) for n, m in matrices.items()},
        "index_dtype": str(system.hamiltonian.indices.dtype),
        "seconds": timings,
        "matrix_bytes": int(sum(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes for m in matrices.values())),
        "peak_rss_bytes": _maxrss_bytes(),
        "peak_rss_after_hamiltonian_bytes": memory["after_hamiltonian"],
        "baseline_rss_bytes": baseline,
    }


def machine_info() -> dict:
    from gpukpm.engine.backend import get_backend

    info = get_backend("cpu").device_info()
    with open("/proc/meminfo") as fh:
        total_kb = next(int(line.split()[1]) for line in fh if line.startswith("MemTotal:"))
    info.update(
        python=platform.python_version(),
        platform=platform.platform(),
        total_memory_bytes=total_kb * 1024,
        omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
    )
    return info


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--single", type=int, help=argparse.SUPPRESS)  # child process: one size, JSON to stdout
    args = parser.parse_args(argv)
    if args.single is not None:
        print(json.dumps(measure(args.single)))
        return
    runs = []
    for L in args.sizes:
        child = subprocess.run(
            [sys.executable, __file__, "--single", str(L)], check=True, capture_output=True, text=True
        )
        run = json.loads(child.stdout)
        runs.append(run)
        print(
            f"L = {L:5d}: {run['num_orbitals']:>9d} orbitals, H {run['seconds']['hamiltonian']:.2f} s, "
            f"H + operators {run['seconds']['total']:.2f} s, peak RSS {run['peak_rss_bytes'] / 2**30:.2f} GiB "
            f"(baseline {run['baseline_rss_bytes'] / 2**30:.2f} GiB, matrices {run['matrix_bytes'] / 2**30:.2f} GiB)"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": "real-space build, GrapheneRashba, complex128, H + sx sy sz jx jy",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "runs": runs,
    }
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
