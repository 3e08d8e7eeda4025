"""k-space moments of the paper's Fig. 2 graphene job: bound-selected k points + NUFFT vs every k point + GEMM.

The paper (supplement) samples graphene's zone with the 14691 × 14691
Monkhorst-Pack grid (2.16·10⁸ k points), keeps the states within ±300 meV of
charge neutrality and expands with N = 581 moments.  Model:
``GrapheneRashba(t = 2.7 eV, λ_R = 8 meV, J_ex = 60 meV, Δ = 8 meV)``, left
operators s_x, s_y, s_z, right operator j_x, default ``kspace_moments`` settings
(rescaling from the kept eigenvalues).

* ``reference`` — a reduced full-zone grid ``--reference-grid`` (default 1469²,
  1 % of the k points) with ``select="all"`` (every k point diagonalised) and
  ``moments_route="gemm"``: the code path before issue 15;
* ``bound_gemm`` — the same grid, ``select="bound"``, GEMM: the selection alone;
* ``fast_reduced`` — the same grid with the defaults (``select="bound"``,
  ``moments_route="auto"``); μ of all three compared (relative to max|μ|);
* ``fast`` — the whole ``--grid`` (default 14691²) with the defaults, m̂ = ẑ;
* ``magnetisations`` — ``--magnetisations n`` runs the first n of the paper's 14
  directions (``torque.magnetizations(2)``) on the whole grid; the 14-direction time
  is measured when n = 14, else projected as 14 × their mean.

The reference is too slow on the full grid (≈ 17 min here), so it is projected
linearly: its per-k-point time (diagonalisation and the rest) times the k points
of the full grid, plus its GEMM time per pair times the pairs of the full run,
``T_ref = (t_ref − t_gemm) L²/L_r² + t_gemm P/P_r``.  ``today_measured_s`` is the
issue's measurement of the full job through the API before this change (17 min,
this machine).  Other jobs on the machine only add wall time; the load average is
recorded.

    python benchmarks/bench_kspace.py [--grid 14691] [--reference-grid 1469] [--num-moments 581]
                                      [--magnetisations 1] [--backend cpu] [--output PATH]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from gpukpm.engine.backend import get_backend  # noqa: E402
from gpukpm.engine.kspace import kspace_moments  # noqa: E402
from gpukpm.models import GrapheneRashba  # noqa: E402
from gpukpm.torque import magnetizations  # noqa: E402

L = 14691
WINDOW = (-0.3, 0.3)
NUM_MOMENTS = 581
MODEL = dict(t=2.7, rashba=0.008, exchange=0.06, mass=0.008, magnetization=(0.0, 0.0, 1.0))
TODAY_MEASURED_S = 17 * 60  # issue 15: the Fig. 2 job (14691², N = 581, one m̂) through the API before it
TARGET_SPEEDUP = 30.0
TARGET_14_S = 300.0
KEYS = ("num_grid_k", "num_diagonalised_k", "num_kept_k", "num_kept_states", "num_pairs", "select",
        "moments_route", "gemm_calls", "nufft_calls", "nufft_eps", "bounds_source", "max_band_splitting",
        "time_select", "time_diagonalise", "time_moments", "time_total")


def _run(model, shape, num_moments, backend, **kw):
    """One ``kspace_moments`` call: wall and process CPU seconds, provenance counts, the moments."""
    t0, c0 = time.perf_counter(), time.process_time()
    mom = kspace_moments(model, shape, num_moments=num_moments, window=WINDOW, backend=backend, progress=False,
                         **kw)
    out = {k: mom.provenance[k] for k in KEYS}
    out.update(grid=list(shape), num_moments=num_moments, wall_s=time.perf_counter() - t0,
               process_cpu_s=time.process_time() - c0)
    return out, mom


def _relative(a, b) -> float:
    return float(np.abs(a.mu - b.mu).max() / np.abs(b.mu).max())


def _line(name, run):
    print(f"{name:13s}: {run['wall_s']:8.2f} s wall ({run['num_diagonalised_k']} of {run['num_grid_k']} k points "
          f"diagonalised, {run['num_kept_k']} kept, {run['num_pairs']} pairs, route {run['moments_route']}; "
          f"select {run['time_select']:.2f} s, diagonalise {run['time_diagonalise']:.2f} s, "
          f"moments {run['time_moments']:.2f} s)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", type=int, default=L, help="side of the full Monkhorst-Pack grid")
    parser.add_argument("--reference-grid", type=int, default=1469, help="side of the reduced reference grid")
    parser.add_argument("--num-moments", type=int, default=NUM_MOMENTS)
    parser.add_argument("--magnetisations", type=int, default=1, choices=range(1, 15), metavar="1..14",
                        help="how many of the 14 Fig. 2 directions to run on the full grid")
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    be = get_backend(args.backend)
    model = GrapheneRashba(**MODEL)
    N, Lf, Lr = args.num_moments, args.grid, args.reference_grid
    machine = common.machine_info(be)

    reduced = (Lr, Lr)
    ref, mu_ref = _run(model, reduced, N, be, select="all", moments_route="gemm")
    _line("reference", ref)
    bound_gemm, mu_bg = _run(model, reduced, N, be, moments_route="gemm")
    _line("bound_gemm", bound_gemm)
    fast_reduced, mu_fr = _run(model, reduced, N, be)
    _line("fast_reduced", fast_reduced)
    agreement = {"bound_gemm_vs_reference": _relative(mu_bg, mu_ref),
                 "fast_reduced_vs_reference": _relative(mu_fr, mu_ref),
                 "note": "max |Δμ| / max |μ| over the three left operators"}
    print(f"agreement    : bound+GEMM {agreement['bound_gemm_vs_reference']:.2e}, "
          f"bound+{fast_reduced['moments_route']} {agreement['fast_reduced_vs_reference']:.2e} (relative to max|μ|)")

    runs = []
    for m in magnetizations(2)[:args.magnetisations]:
        run, _ = _run(model.with_magnetization(tuple(float(x) for x in m)), (Lf, Lf), N, be)
        run["magnetization"] = [float(x) for x in m]
        runs.append(run)
        _line("fast", run)
    fast = runs[0]

    k_ratio = (Lf / Lr) ** 2
    ref_gemm = ref["time_moments"]
    projected_ref = (ref["wall_s"] - ref_gemm) * k_ratio + ref_gemm * fast["num_pairs"] / ref["num_pairs"]
    walls = [r["wall_s"] for r in runs]
    fourteen = sum(walls) if len(runs) == 14 else 14 * float(np.mean(walls))
    paper_job = (Lf, N) == (L, NUM_MOMENTS)
    ratios = {
        "selection_reduced": ref["time_diagonalise"] / (bound_gemm["time_select"] + bound_gemm["time_diagonalise"]),
        "selection_note": "reference diagonalisation time / (selection + diagonalisation) of bound_gemm, reduced grid",
        "moments_reduced": bound_gemm["time_moments"] / fast_reduced["time_moments"],
        "moments_note": f"GEMM / {fast_reduced['moments_route']} moment time on the same pairs, reduced grid",
        "whole_reduced": ref["wall_s"] / fast_reduced["wall_s"],
        "moments_full_projected": ref_gemm * fast["num_pairs"] / ref["num_pairs"] / fast["time_moments"],
        "moments_full_note": "the reference's GEMM time per pair × the full run's pairs / the full run's moment time",
        "full_vs_projected_reference": projected_ref / fast["wall_s"],
        "full_vs_today_measured": TODAY_MEASURED_S / fast["wall_s"] if paper_job else None,
    }
    targets = {
        "speedup_target": TARGET_SPEEDUP,
        "speedup_met": paper_job and TODAY_MEASURED_S / fast["wall_s"] >= TARGET_SPEEDUP,
        "fourteen_magnetisations_s": fourteen,
        "fourteen_measured": len(runs) == 14,
        "fourteen_target_s": TARGET_14_S,
        "fourteen_met": paper_job and fourteen < TARGET_14_S,
    }
    print(f"ratios       : selection {ratios['selection_reduced']:.1f}×, moments {ratios['moments_reduced']:.1f}× "
          f"(full grid, GEMM projected: {ratios['moments_full_projected']:.0f}×), "
          f"reduced grid whole {ratios['whole_reduced']:.1f}×; full grid {fast['wall_s']:.1f} s vs projected "
          f"reference {projected_ref:.0f} s ({ratios['full_vs_projected_reference']:.0f}×)"
          + (f", vs today's {TODAY_MEASURED_S} s ({ratios['full_vs_today_measured']:.0f}×)" if paper_job else ""))
    print(f"14 directions: {fourteen:.0f} s ({'measured' if len(runs) == 14 else 'projected'}; "
          f"target < {TARGET_14_S:g} s)")
    payload = {
        "benchmark": "k-space moments, GrapheneRashba Fig. 2 (λ_R = 8 meV, J = 60 meV, Δ = 8 meV), window ±300 meV, "
                     f"N = {N}, left sx sy sz, right jx: select='bound' + moments_route='auto' (defaults) vs "
                     "select='all' + GEMM",
        "date": common.now(),
        "machine": machine,
        "machine_note": "shared 2-core VM: two other developers' jobs ran at the same time; wall times include "
                        "their load (load averages recorded)",
        "model": model.to_dict(),
        "window": list(WINDOW),
        "reference": ref,
        "bound_gemm": bound_gemm,
        "fast_reduced": fast_reduced,
        "agreement": agreement,
        "fast": fast,
        "magnetisations": runs,
        "projection": {
            "reference_full_grid_s": projected_ref,
            "formula": "T_ref = (t_ref − t_gemm) L²/L_r² + t_gemm P/P_r (the reference's non-GEMM time per "
                       "k point, its GEMM time per pair; P from the full-grid run)",
            "today_measured_s": TODAY_MEASURED_S if paper_job else None,
            "today_note": "issue 15: the same job through the API before the change, on this machine",
        },
        "ratios": ratios,
        "targets": targets,
        "load_at_end": common.load(),
    }
    path = common.write_json("kspace", be.name, payload, args.output)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
