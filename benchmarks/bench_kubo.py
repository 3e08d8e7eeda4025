"""Kubo-Bastin spin-density moments: where the time goes, against the machine's ZGEMM.

Case "spin": the L × L honeycomb (Rashba + exchange with tilted m̂ + mass,
Anderson W = 1 eV), ``kubo_moments(left=("sx","sy","sz"), right="jx",
num_moments=N, trace=1)`` — one random vector.  For each (L, N) it records the
provenance (SpMV count, time in SpMV / GEMM / the rest, block size), the GEMM
rate ``8·N²·D·n_left / time_gemm`` next to a ZGEMM ``(b × D)ᴴ·(D × b)`` timed
in the same run through ``backend.conj_gemm``, the SpMV-side effective GB/s,
and the wall time per random vector.  Cases predicted to run longer than
``--max-case-seconds`` are *extrapolated* from the measured ones (marked
``"status": "extrapolated"``; never mix them up with ``"measured"``).

Case "sigma": σ_xx (A = B = ĵ_x) of 256² graphene with W = 1 eV, N = 256, one
vector: wall time of the moments and of the whole job (build + moments +
σ(E) on ``--sigma-energies`` energies), for the spin-degenerate
"spinless-equivalent" model (rashba = exchange = mass = 0; still 4 orbitals
per cell, spin-degenerate) and for the spinful Rashba-exchange model of the
peer-code timings in NOTES-ecosystem.md (noted there, not compared here).

    python benchmarks/bench_kubo.py [--backend cpu|gpu|auto] [--sizes 128 256 512]
        [--moments 256 512 1867] [--max-case-seconds 150] [--no-sigma] [--gpu-target]
        [--output PATH]

``--gpu-target`` runs only the GPU goal: L = 1024, N = 1867, sx sy sz, one
vector, and records ``meets_target`` (< 15 s wall for the moments).
Results: ``benchmarks/results/kubo_<backend>.json``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

LEFT = ("sx", "sy", "sz")
GPU_TARGET = {"L": 1024, "N": 1867, "seconds": 15.0}
SPMV_EST_ROW_BYTES = 8 * 20 + 4 + 3 * 16  # per-row bytes of one step of the honeycomb (8 nnz/row)


def _zgemm_shape(b: int, D: int, max_flops: float) -> int:
    bm = min(b, 512)
    while common.zgemm_flops(bm, bm, D) > max_flops and bm > 64:
        bm //= 2
    return bm


class Ceilings:
    """ZGEMM rates measured in this run, cached by shape."""

    def __init__(self, backend, max_flops: float):
        self.be = backend
        self.max_flops = max_flops
        self.cache: dict = {}

    def zgemm(self, b: int, D: int) -> dict:
        bm = _zgemm_shape(b, D, self.max_flops)
        if (bm, D) not in self.cache:
            self.cache[(bm, D)] = dict(common.zgemm_rate(self.be, bm, D, repeats=2), engine_b=b)
        return self.cache[(bm, D)]


def run_spin_case(backend, L: int, N: int, ceil: Ceilings, block_size=None) -> dict:
    from gpukpm.kpm import kubo_moments

    system, t_build = common.model_system(L)
    D = system.num_orbitals
    for name in LEFT + ("jx",):  # build the operators outside the timed call
        system.operator(name)
    load_before = common.load()
    tick = time.perf_counter()
    m = kubo_moments(system, left=LEFT, right="jx", num_moments=N, trace=1, seed=0,
                     block_size=block_size, backend=backend, progress=False)
    wall = time.perf_counter() - tick
    prov = m.provenance
    nA = len(LEFT)
    flops = 8.0 * N * N * D * nA
    t_spmv, t_gemm, t_total = prov["time_spmv"], prov["time_gemm"], prov["time_total"]
    b = int(prov["block_size"])
    nb = -(-N // b)
    zg = ceil.zgemm(b, D)
    gemm_rate = flops / t_gemm / 1e9 if t_gemm > 0 else None
    step_bytes = SPMV_EST_ROW_BYTES * D
    out = {
        "case": "spin", "status": "measured", "L": L, "N": N, "num_orbitals": D, "left": list(LEFT),
        "right": "jx", "random_vectors": 1, "build_s": t_build,
        "wall_s": wall, "wall_per_vector_s": wall,
        "load_before": load_before, "load_after": common.load(),
        "provenance": {k: prov.get(k) for k in ("time_total", "time_spmv", "time_gemm", "spmv_count",
                                                "block_size", "vectors_per_batch", "nnz", "dtype")},
        "num_blocks": nb,
        "spmv_count_ideal": 2 * N,
        "spmv_over_ideal": prov["spmv_count"] / (2 * N),
        "time_other_s": t_total - t_spmv - t_gemm,
        "fraction": {"spmv": t_spmv / t_total, "gemm": t_gemm / t_total,
                     "other": (t_total - t_spmv - t_gemm) / t_total},
        "gemm_flops": flops,
        "gemm_gflop_per_s": gemm_rate,
        "zgemm_reference": zg,
        "gemm_ratio_to_zgemm": gemm_rate / zg["gflop_per_s"] if gemm_rate else None,
        "spmv_s_per_product": t_spmv / prov["spmv_count"],
        "spmv_effective_gb_per_s": prov["spmv_count"] * step_bytes / t_spmv / 1e9,
        "spmv_bytes_model": "per product: 8 nnz/row × (16 B value + 4 B index) + 4 B row pointer "
                            "+ 3 × 16 B vectors, per row; time_spmv also holds the A† products and block copies",
    }
    print(f"  spin L={L:4d} N={N:5d}: wall {wall:8.2f} s  spmv {t_spmv:7.2f} s ({prov['spmv_count']} products, "
          f"{out['spmv_over_ideal']:.2f}× ideal, b={b})  gemm {t_gemm:7.2f} s = {gemm_rate:6.1f} GFLOP/s "
          f"vs ZGEMM {zg['gflop_per_s']:6.1f} (ratio {out['gemm_ratio_to_zgemm']:.2f})  other {out['time_other_s']:.2f} s",
          flush=True)
    return out


def predict(backend, L: int, N: int, measured: list, ceil: Ceilings, nA: int = len(LEFT), zg=None) -> dict:
    """Time of a spin case from the measured ones (same L preferred; else scaled by D)."""
    from gpukpm.engine.realspace import DEFAULT_MEMORY_FRACTION, choose_block_size

    D = 4 * L * L
    budget = int(DEFAULT_MEMORY_FRACTION * backend.free_memory())
    b = choose_block_size(N, D, 1, nA, 16, budget)
    nb = -(-N // b)
    spmv_count = N + nb * N  # X chain once, Y chain once per X block (checkpointed)
    same = [r for r in measured if r["L"] == L]
    ref = max(same or measured, key=lambda r: (r["num_orbitals"], r["N"]))
    scale_D = D / ref["num_orbitals"]
    t_spmv = ref["spmv_s_per_product"] * scale_D * spmv_count
    if zg is None:
        zg = ceil.zgemm(b, D)
    eff = np.mean([r["gemm_ratio_to_zgemm"] for r in (same or measured)])
    t_gemm = 8.0 * N * N * D * nA / (eff * zg["gflop_per_s"] * 1e9)
    t_other = ref["time_other_s"] * scale_D
    return {"case": "spin", "status": "extrapolated", "L": L, "N": N, "num_orbitals": D, "block_size": b,
            "num_blocks": nb, "spmv_count_predicted": spmv_count, "time_spmv_s": t_spmv, "time_gemm_s": t_gemm,
            "time_other_s": t_other, "wall_per_vector_s": t_spmv + t_gemm + t_other,
            "model": (f"SpMV: {ref['spmv_s_per_product']:.4g} s/product at L={ref['L']} × D ratio × "
                      f"(N + n_blocks·N) products; GEMM: 8N²D·3 flops at {eff:.2f} × ZGEMM "
                      f"{zg['gflop_per_s']:.1f} GFLOP/s (b={zg['b']}, D={zg['D']}); other: scaled by D "
                      f"from L={ref['L']}, N={ref['N']}"),
            "zgemm_reference": zg}


def run_sigma(backend, L: int, N: int, num_energies: int) -> list:
    from gpukpm.kpm import conductivity, kubo_moments

    out = []
    variants = [("spinless_equivalent", dict(rashba=0.0, exchange=0.0, mass=0.0),
                 "GrapheneRashba with rashba = exchange = mass = 0: spin-degenerate, but still 2 spins "
                 "per site (D = 4L²), so it costs what a spinful run costs"),
                ("spinful_rashba_exchange", {}, "the benchmark model (Rashba + exchange + mass), the "
                 "job of the peer-code timings in NOTES-ecosystem.md (KITE ≈ 77 s, pybinding-dev ≈ 28 s, "
                 "other machine: noted, not compared)")]
    for name, overrides, note in variants:
        t0 = time.perf_counter()
        system, t_build = common.model_system(L, **overrides)
        tick = time.perf_counter()
        m = kubo_moments(system, left=("jx",), right="jx", num_moments=N, trace=1, seed=0,
                         backend=backend, progress=False)
        t_mom = time.perf_counter() - tick
        energies = np.linspace(0.9 * m.emin, 0.9 * m.emax, num_energies)
        tick = time.perf_counter()
        sigma = conductivity(m, energies)
        t_sigma = time.perf_counter() - tick
        total = time.perf_counter() - t0
        loads = common.load()
        mid = int(np.argmin(np.abs(energies - 0.5)))
        rec = {"case": "sigma", "status": "measured", "variant": name, "note": note, "L": L, "N": N,
               "num_orbitals": system.num_orbitals, "random_vectors": 1, "num_energies": num_energies,
               "build_s": t_build, "moments_s": t_mom, "conductivity_s": t_sigma, "whole_job_s": total, "load_after": loads,
               "provenance": {k: m.provenance.get(k) for k in ("time_total", "time_spmv", "time_gemm",
                                                               "spmv_count", "block_size")},
               "sigma_xx_at_0.5eV_e2_over_h": float(np.real(sigma.values[0][mid]))}
        print(f"  sigma {name}: build {t_build:.2f} s, moments {t_mom:.2f} s, σ(E) {t_sigma:.2f} s, "
              f"whole job {total:.2f} s", flush=True)
        out.append(rec)
    return out


def main(argv=None) -> dict:
    from gpukpm.engine.backend import get_backend

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", default="auto")
    p.add_argument("--sizes", type=int, nargs="+", default=None,
                   help="L values (default 128 256 512 on CPU, plus 1024 on GPU)")
    p.add_argument("--moments", type=int, nargs="+", default=[256, 512, 1867])
    p.add_argument("--max-case-seconds", type=float, default=None,
                   help="extrapolate cases predicted longer than this (default 150 on CPU, 600 on GPU)")
    p.add_argument("--extrapolate-only", action="store_true", help="never run a case over the limit")
    p.add_argument("--block-size", type=int, default=None)
    p.add_argument("--no-sigma", action="store_true")
    p.add_argument("--sigma-L", type=int, default=256)
    p.add_argument("--sigma-N", type=int, default=256)
    p.add_argument("--sigma-energies", type=int, default=1001)
    p.add_argument("--gpu-target", action="store_true",
                   help=f"run only L={GPU_TARGET['L']}, N={GPU_TARGET['N']}, sx sy sz, one vector")
    p.add_argument("--zgemm-max-flops", type=float, default=3e11,
                   help="cap on one reference ZGEMM (smaller b when above)")
    p.add_argument("--output", type=Path, default=None)
    args = p.parse_args(argv)

    be = get_backend(args.backend)
    t_run = time.perf_counter()
    ceil = Ceilings(be, args.zgemm_max_flops if not be.is_gpu else 1e14)
    result = {"benchmark": "kubo_moments sx sy sz | jx, one random vector, GrapheneRashba honeycomb, complex128",
              "date": common.now(), "model": common.MODEL, "disorder_W_eV": common.DISORDER,
              "machine": common.machine_info(be), "cases": []}
    name = "kubo_gpu_target" if args.gpu_target else "kubo"

    def save():
        result["wall_s"] = time.perf_counter() - t_run
        result["zgemm_measured"] = list(ceil.cache.values())
        return common.write_json(name, be.name, result, args.output)

    if args.gpu_target:
        rec = run_spin_case(be, GPU_TARGET["L"], GPU_TARGET["N"], ceil, args.block_size)
        rec["target_seconds"] = GPU_TARGET["seconds"]
        rec["meets_target"] = rec["wall_s"] < GPU_TARGET["seconds"]
        result["cases"].append(rec)
        print(f"GPU target: {rec['wall_s']:.2f} s (goal < {GPU_TARGET['seconds']} s): "
              f"{'met' if rec['meets_target'] else 'NOT met'}")
        print(f"wrote {save()}")
        return result

    sizes = args.sizes or ([128, 256, 512, 1024] if be.is_gpu else [128, 256, 512])
    limit = args.max_case_seconds or (600.0 if be.is_gpu else 150.0)
    combos = sorted(((L, N) for L in sizes for N in args.moments), key=lambda c: 4 * c[0] ** 2 * c[1] ** 2)
    measured: list = []
    for L, N in combos:
        if measured:
            est = predict(be, L, N, measured, ceil)
            if est["wall_per_vector_s"] > limit:
                est["reason"] = f"predicted {est['wall_per_vector_s']:.0f} s > --max-case-seconds {limit:.0f}"
                print(f"  spin L={L:4d} N={N:5d}: EXTRAPOLATED {est['wall_per_vector_s']:8.1f} s per vector "
                      f"(spmv {est['time_spmv_s']:.1f}, gemm {est['time_gemm_s']:.1f}, other "
                      f"{est['time_other_s']:.1f}; b={est['block_size']}, {est['num_blocks']} blocks)", flush=True)
                result["cases"].append(est)
                save()
                continue
        rec = run_spin_case(be, L, N, ceil, args.block_size)
        measured.append(rec)
        result["cases"].append(rec)
        save()
    if not args.no_sigma:
        result["cases"].extend(run_sigma(be, args.sigma_L, args.sigma_N, args.sigma_energies))
    print(f"wrote {save()}")
    return result


if __name__ == "__main__":
    main()
