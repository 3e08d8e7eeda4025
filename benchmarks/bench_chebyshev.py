"""Chebyshev-step throughput ``y ← 2H̃x − y`` of the honeycomb, against the copy bandwidth.

For every size L (the L × L Rashba + exchange + mass honeycomb with Anderson
W = 1 eV, D = 4L² orbitals) and every batch width R (vectors per step; R > 1
is SpMM) it times ``RescaledOperator.step`` — the exact call the Kubo engine
makes — and reports

* ``orbital_moments_per_s`` = R·D / t_step;
* ``effective_gb_per_s`` from a minimum-traffic model: CSR values (16 B) and
  column indices (4 B) per non-zero, row pointers ((D+1)·4 B), read once per
  step whatever R is, plus 3 × 16 B per row per vector (read x, read y, write y);
* ``ratio_to_copy`` = effective GB/s / copy GB/s measured in the same run;
* ``bare_product``: the same for the plain product ``H2 @ X`` (no subtraction,
  pre-laid-out operand, output written once: 2 × 16 B per row per vector),
  to show how much of a step is the backend's glue rather than the kernel;
* ``stencil``: the same step with H as a cell stencil (``System.stencil("H")``,
  the route the Kubo engine takes for the built-in lattices when the backend
  runs stencils): its traffic is the vectors plus the real diagonal (8 B per
  row), no matrix.

    python benchmarks/bench_chebyshev.py [--backend cpu|gpu|auto] [--sizes 256 512 1024]
        [--widths 1 4 16] [--min-time 2.0] [--copy-bytes 1073741824] [--output PATH]

Results: ``benchmarks/results/chebyshev_<backend>.json``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def traffic_bytes(op, R: int, vector_touches: int = 3) -> dict:
    from gpukpm.models.stencil import CellStencil

    H2 = op.H2
    D = op.dim
    itemsize = np.dtype(op.dtype).itemsize
    if isinstance(H2, CellStencil):  # no matrix: only the diagonal (and a few cached entry values)
        matrix = 0 if H2.diagonal is None else H2.diagonal.nbytes
    else:
        matrix = int(op.nnz) * (itemsize + H2.indices.dtype.itemsize) + (D + 1) * H2.indptr.dtype.itemsize
    vectors = vector_touches * itemsize * R * D
    return {"matrix_bytes": matrix, "vector_bytes": vectors, "total_bytes": matrix + vectors}


def _random_rows(backend, R: int, D: int, seed: int):
    rng = np.random.default_rng(seed)
    phases = np.exp(2j * np.pi * rng.random((R, D)))
    return backend.asarray(phases.astype(np.complex128))


def time_steps(backend, op, R: int, min_time: float, min_steps: int = 3) -> dict:
    """Seconds per Chebyshev step of an (R, D) batch (after one warm-up step)."""
    D = op.dim
    cur = _random_rows(backend, R, D, 1)
    prev = _random_rows(backend, R, D, 2)
    op.step(cur, prev)  # warm-up
    prev, cur = cur, prev
    times = []
    t_start = time.perf_counter()
    while len(times) < min_steps or time.perf_counter() - t_start < min_time:
        t0 = backend.timer()
        op.step(cur, prev)
        times.append(backend.timer() - t0)
        prev, cur = cur, prev
    del cur, prev
    return {"steps": len(times), "best_s": min(times), "median_s": float(np.median(times)),
            "mean_s": float(np.mean(times))}


def time_bare_product(backend, op, R: int, min_time: float, min_steps: int = 3) -> dict:
    """Seconds of ``H2 @ X`` alone with X already laid out as the library wants it."""
    xp = backend.xp
    D = op.dim
    rows = _random_rows(backend, R, D, 3)
    if R == 1:
        X = rows[0]
    elif backend.is_gpu:
        X = xp.asfortranarray(rows.T)  # cuSPARSE SpMM wants column-major blocks
    else:
        X = np.ascontiguousarray(rows.T)  # SciPy csr_matvecs wants a C-ordered (D, R)
    del rows
    _ = op.H2 @ X
    times = []
    t_start = time.perf_counter()
    while len(times) < min_steps or time.perf_counter() - t_start < min_time:
        t0 = backend.timer()
        out = op.H2 @ X
        times.append(backend.timer() - t0)
        del out
    del X
    return {"steps": len(times), "best_s": min(times), "median_s": float(np.median(times))}


def bench_size(backend, L: int, widths, min_time: float, copy_gbs: float, bare: bool) -> dict:
    from gpukpm.engine.chebyshev import RescaledOperator
    from gpukpm.engine.spectrum import rescaling

    system, t_build = common.model_system(L)
    H = system.hamiltonian
    D = H.shape[0]
    tick = time.perf_counter()
    scale = rescaling(H, method="gershgorin")  # throughput does not depend on the exact bounds
    t_scale = time.perf_counter() - tick
    tick = time.perf_counter()
    op = RescaledOperator(H, scale, backend)
    t_op = time.perf_counter() - tick
    stencil_op = (RescaledOperator(H, scale, backend, stencil=system.stencil("H"))
                  if backend.uses_stencils() else None)
    del system, H
    out = {"L": L, "num_orbitals": D, "nnz": op.nnz, "nnz_per_row": op.nnz / D,
           "index_dtype": str(op.H2.indices.dtype), "indptr_dtype": str(op.H2.indptr.dtype),
           "build_s": t_build, "rescaling_s": t_scale, "rescaling_method": "gershgorin",
           "operator_setup_s": t_op, "widths": []}
    for R in widths:
        need = 6 * R * D * 16 + op.nnz * 20
        if need > 0.8 * backend.free_memory():
            out["widths"].append({"R": R, "skipped": f"needs ≈ {need / 2**30:.1f} GiB"})
            continue
        rec = _step_record(backend, op, R, min_time, copy_gbs)
        t = rec["step"]["best_s"]
        if bare:
            bp = time_bare_product(backend, op, R, min_time / 2)
            tb2 = traffic_bytes(op, R, vector_touches=2)
            rec["bare_product"] = {**bp, "traffic": tb2,
                                   "effective_gb_per_s": tb2["total_bytes"] / bp["best_s"] / 1e9,
                                   "ratio_to_copy": tb2["total_bytes"] / bp["best_s"] / 1e9 / copy_gbs,
                                   "step_over_bare_time": t / bp["best_s"]}
        out["widths"].append(rec)
        print(f"  L={L:5d} R={R:3d}: {t * 1e3:9.2f} ms/step  {rec['orbital_moments_per_s'] / 1e6:8.1f} M orb·mom/s  "
              f"{rec['effective_gb_per_s']:6.2f} GB/s  ratio to copy {rec['ratio_to_copy']:.3f}"
              + (f"  (bare product {rec['bare_product']['effective_gb_per_s']:.2f} GB/s, "
                 f"step/bare time {rec['bare_product']['step_over_bare_time']:.2f})" if bare else ""),
              flush=True)
        if stencil_op is not None:
            srec = _step_record(backend, stencil_op, R, min_time, copy_gbs)
            srec["csr_over_stencil_time"] = t / srec["step"]["best_s"]
            out.setdefault("stencil", []).append(srec)
            print(f"  L={L:5d} R={R:3d}: {srec['step']['best_s'] * 1e3:9.2f} ms/step with the cell stencil  "
                  f"{srec['effective_gb_per_s']:6.2f} GB/s  ratio to copy {srec['ratio_to_copy']:.3f}  "
                  f"CSR/stencil time {srec['csr_over_stencil_time']:.2f}", flush=True)
    for records in (out["widths"], out.get("stencil", [])):
        base = next((w for w in records if w.get("R") == 1 and "step" in w), None)
        for w in records if base else []:
            if "step" in w:
                w["speedup_per_vector_vs_R1"] = base["step"]["best_s"] / (w["step"]["best_s"] / w["R"])
    del op, stencil_op
    return out


def _step_record(backend, op, R: int, min_time: float, copy_gbs: float) -> dict:
    """Timed steps of ``op`` for R vectors with the traffic model's rates."""
    step = time_steps(backend, op, R, min_time)
    tb = traffic_bytes(op, R)
    t = step["best_s"]
    return {"R": R, "step": step, "load_after": common.load(), "traffic": tb,
            "orbital_moments_per_s": R * op.dim / t,
            "effective_gb_per_s": tb["total_bytes"] / t / 1e9,
            "ratio_to_copy": tb["total_bytes"] / t / 1e9 / copy_gbs,
            "seconds_per_vector_step": t / R}


def main(argv=None) -> dict:
    from gpukpm.engine.backend import get_backend

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", default="auto")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    p.add_argument("--widths", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--min-time", type=float, default=2.0, help="seconds of timed steps per (L, R)")
    p.add_argument("--copy-bytes", type=int, default=2**30, help="bytes per array of the copy test")
    p.add_argument("--no-bare", action="store_true", help="skip the bare H2 @ X reference")
    p.add_argument("--output", type=Path, default=None)
    args = p.parse_args(argv)

    be = get_backend(args.backend)
    t0 = time.perf_counter()
    machine = common.machine_info(be)
    copy = common.copy_bandwidth(be, args.copy_bytes)
    print(f"backend {be.name}: copy bandwidth {copy['gb_per_s']:.2f} GB/s "
          f"({copy['array_bytes'] / 2**30:.2f} GiB arrays, read + write)", flush=True)
    result = {"benchmark": "chebyshev step y <- 2H~x - y, GrapheneRashba honeycomb, complex128",
              "date": common.now(), "model": common.MODEL, "disorder_W_eV": common.DISORDER,
              "machine": machine, "copy_bandwidth": copy, "sizes": []}
    path = None
    for L in args.sizes:
        result["sizes"].append(bench_size(be, L, args.widths, args.min_time, copy["gb_per_s"], not args.no_bare))
        result["copy_bandwidth_end"] = common.copy_bandwidth(be, args.copy_bytes, repeats=3)
        result["wall_s"] = time.perf_counter() - t0
        path = common.write_json("chebyshev", be.name, result, args.output)  # after every size
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
