"""k-space engine throughput on the paper's Fig. 2 graphene run, measured on sub-grids, projected to 14691².

The paper (supplement) samples graphene's zone with the 14691 × 14691
Monkhorst-Pack grid (2.16·10⁸ k points), keeps the states within ±300 meV of
charge neutrality and expands with N = 581 moments (η = 2 meV).  Model:
``GrapheneRashba(t = 2.7 eV, λ_R = 8 meV, J_ex = 60 meV, Δ = 8 meV, m̂ = ẑ)``,
left operators s_x, s_y, s_z, right operator j_x.  Every run below is a
patch of that very grid (``MonkhorstPack(..., patch=...)``, the same k
points the full run visits) with ``bounds`` = the window, as the patches of
one split grid must have (they then share a and b and can be summed):

* ``far``     — a patch around M (no state within ±300 meV): the cost of
  building H(k), diagonalising and filtering, per k point;
* ``kept``    — a patch centred on K (every k point kept), N = 581: the
  whole path (diagonalise, filter, operators, moments) per kept k point;
* ``count_K``, ``count_K'`` — patches covering the whole kept region around K
  and K' (their border rows and columns hold no kept state, checked), run
  with N = 2, to count exactly how many k points of the 14691² grid are kept.

The projection for the full grid on this machine is
``T = N_k t_far + N_kept (t_kept − t_far)``, ``t_far`` and ``t_kept`` the
measured wall times per k point (and the same with process CPU times).
Other jobs on the machine only add wall time; the load average is recorded.

``--full-grid S`` then runs the whole 14691² grid once when the projection is
below S seconds (the GPU target is < 30 s for one magnetisation) and records
its wall time and k points per second next to the projection.

    python benchmarks/bench_kspace.py [--kept-patch 64] [--far-patch 384] [--full-grid S] [--output PATH]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from gpukpm.backend import get_backend  # noqa: E402
from gpukpm.kspace import MonkhorstPack, kspace_moments  # noqa: E402
from gpukpm.models import GrapheneRashba  # noqa: E402

L = 14691
WINDOW = (-0.3, 0.3)
NUM_MOMENTS = 581
MODEL = dict(t=2.7, rashba=0.008, exchange=0.06, mass=0.008, magnetization=(0.0, 0.0, 1.0))
# grid coordinates (n1, n2) of K = (2/3) b1 + (1/3) b2, K' = −K and M = b1/2 on the 14691² grid (14691 = 3·4897)
VALLEYS = {"K": (2 * L // 3, L // 3), "K'": (L // 3, 2 * L // 3)}
M_POINT = (L // 2, 0)
FULL_GRID_TARGET_S = 30.0  # issue 8: one magnetisation on one H200
COUNT_PATCH = 800  # covers |q| ≲ 0.7 nm⁻¹ around a valley (kept states reach ≈ 0.6 nm⁻¹)


def _patch(model, centre, size):
    return MonkhorstPack(model.lattice, (L, L), patch=((centre[0] - size // 2, size), (centre[1] - size // 2, size)))


def _run(model, grid, num_moments, backend):
    t0, c0 = time.perf_counter(), time.process_time()
    mom = kspace_moments(model, grid, num_moments=num_moments, window=WINDOW, bounds=WINDOW, backend=backend,
                         progress=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    p = mom.provenance
    keys = ("num_k", "num_kept_k", "kept_fraction_k", "num_kept_states", "kept_fraction_states", "num_pairs",
            "chunk_size", "max_pairs_per_gemm", "gemm_calls", "bounds_source", "time_diagonalise",
            "time_moments", "time_total")
    out = {k: p[k] for k in keys}
    out.update(num_moments=num_moments, wall_s=wall, process_cpu_s=cpu, k_points_per_s=p["num_k"] / wall,
               patch=grid.to_dict()["patch"])
    return out, mom


def _border_kept(model, grid, backend) -> int:
    """Kept states on the outermost rows/columns of a patch (0: the patch holds the whole kept region)."""
    (s1, c1), (s2, c2) = grid.patch
    edges = [((s1, 1), (s2, c2)), ((s1 + c1 - 1, 1), (s2, c2)), ((s1, c1), (s2, 1)), ((s1, c1), (s2 + c2 - 1, 1))]
    total = 0
    for patch in edges:
        edge = MonkhorstPack(model.lattice, (L, L), patch=patch)
        total += kspace_moments(model, edge, num_moments=2, window=WINDOW, bounds=WINDOW, backend=backend,
                                progress=False).provenance["num_kept_states"]
    return total


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kept-patch", type=int, default=64, help="side of the patch centred on K")
    parser.add_argument("--far-patch", type=int, default=384, help="side of the patch centred on M")
    parser.add_argument("--full-grid", type=float, default=None, metavar="S",
                        help="also run the whole 14691² grid when the projection is below S seconds")
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    be = get_backend(args.backend)
    model = GrapheneRashba(**MODEL)
    machine = common.machine_info(be)

    far_grid = _patch(model, M_POINT, args.far_patch)
    far, _ = _run(model, far_grid, NUM_MOMENTS, be)
    if far["num_kept_k"]:
        raise RuntimeError("the patch around M was expected to keep nothing")
    print(f"far  (M) : {far['num_k']:>8d} k points, {far['wall_s']:.2f} s, {far['k_points_per_s']:.3g} k/s "
          "(diagonalise + filter, nothing kept)")

    kept, mom_kept = _run(model, _patch(model, VALLEYS["K"], args.kept_patch), NUM_MOMENTS, be)
    print(f"kept (K) : {kept['num_k']:>8d} k points ({100 * kept['kept_fraction_k']:.0f} % kept), "
          f"{kept['wall_s']:.2f} s, {kept['k_points_per_s']:.3g} k/s; diagonalise {kept['time_diagonalise']:.2f} s, "
          f"moments {kept['time_moments']:.2f} s ({kept['num_pairs']} pairs, {kept['gemm_calls']} GEMMs)")
    flops = 2.0 * NUM_MOMENTS * (2 * 3 * NUM_MOMENTS) * kept["num_pairs"]  # U (N×P) · Wᵀ (P × 6N)
    kept["gemm_gflop_per_s"] = flops / kept["time_moments"] / 1e9

    counts = {}
    for name, centre in VALLEYS.items():
        grid = _patch(model, centre, COUNT_PATCH)
        run, _ = _run(model, grid, 2, be)
        run["kept_states_on_patch_border"] = _border_kept(model, grid, be)
        counts[name] = run
        print(f"count {name:2s}: {run['num_kept_k']} kept k points of {run['num_k']} "
              f"(border: {run['kept_states_on_patch_border']} kept states), {run['wall_s']:.1f} s")
    num_kept = sum(c["num_kept_k"] for c in counts.values())
    num_k = L * L
    t_far = far["wall_s"] / far["num_k"]
    t_kept = kept["wall_s"] / kept["num_k"]
    projected = num_k * t_far + num_kept * (t_kept - t_far)
    c_far, c_kept = far["process_cpu_s"] / far["num_k"], kept["process_cpu_s"] / kept["num_k"]
    projection = {
        "grid": [L, L], "num_k": num_k, "num_kept_k": num_kept, "kept_fraction_k": num_kept / num_k,
        "seconds_per_k_diagonalise_filter": t_far, "seconds_per_kept_k_whole_path": t_kept,
        "projected_seconds": projected, "projected_hours": projected / 3600,
        "projected_seconds_diagonalise_filter": num_k * t_far,
        "projected_seconds_kept": num_kept * (t_kept - t_far),
        "formula": "T = N_k t_far + N_kept (t_kept − t_far)",
        "projected_process_cpu_seconds": num_k * c_far + num_kept * (c_kept - c_far),
        "cpu_note": "process CPU time (all threads) of the same formula: the work, free of other jobs' "
                    "time slices; wall ≈ this for the single-threaded eigh part, ≈ half for the 2-thread GEMMs",
    }
    print(f"14691²: {num_kept} kept of {num_k} k points ({100 * num_kept / num_k:.3f} %), projected "
          f"{projected:.0f} s = {projected / 3600:.2f} h on this machine "
          f"({num_k * t_far:.0f} s diagonalise + filter, {num_kept * (t_kept - t_far):.0f} s moments of kept)")
    full = None
    if args.full_grid is not None:
        if projected > args.full_grid:
            full = {"status": "skipped", "reason": f"projected {projected:.0f} s > --full-grid {args.full_grid:g} s"}
            print(f"full grid: skipped ({full['reason']})")
        else:
            full, _ = _run(model, MonkhorstPack(model.lattice, (L, L)), NUM_MOMENTS, be)
            full.update(status="measured", target_seconds=FULL_GRID_TARGET_S,
                        meets_target=full["wall_s"] < FULL_GRID_TARGET_S)
            print(f"full grid: {full['wall_s']:.1f} s ({full['k_points_per_s']:.3g} k/s, {full['num_kept_k']} kept); "
                  f"target < {FULL_GRID_TARGET_S:g} s: {'met' if full['meets_target'] else 'NOT met'}")
    payload = {
        "benchmark": "k-space moments, GrapheneRashba Fig. 2 (λ_R = 8 meV, J = 60 meV, Δ = 8 meV, m̂ = ẑ), "
                     "window ±300 meV, N = 581, left sx sy sz, right jx, patches of the 14691² grid",
        "date": common.now(),
        "machine": machine,
        "model": model.to_dict(),
        "window": list(WINDOW),
        "far": far,
        "kept": kept,
        "counts": counts,
        "projection": projection,
        "full_grid": full,
        "load_at_end": common.load(),
        "moments_check": {"a": mom_kept.a, "b": mom_kept.b, "emin": mom_kept.emin, "emax": mom_kept.emax,
                          "eta_lorentz_centre": 4.0 * mom_kept.a / NUM_MOMENTS},
    }
    path = common.write_json("kspace", be.name, payload, args.output)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
