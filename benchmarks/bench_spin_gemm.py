"""GEMM route of the 2D moments for s_x, s_y, s_z | ĵ_x, side by side in one run.

* ``spin-resolved``: the named spin operators; the engine computes the spin-resolved products
  G_ab = Σ_i conj(X[i,a]) Y[i,b] (four half-size GEMMs, issued as two stacked ones) and forms
  every s_k from them — the flops of two full GEMMs for the three operators;
* ``per-operator``: the same three matrices passed as custom operators, which take the general
  route (A†X for each operator, one full GEMM each).

Benchmark honeycomb (``common.MODEL``) 256², W = 1 eV, N = 256, one random vector, bounds ±9.1 eV;
the two routes alternate, three times each, after a warm-up; the moments must agree to rounding.

    python benchmarks/bench_spin_gemm.py

Result: ``benchmarks/results/spin_gemm_cpu.json`` (``gemm_ratio_per_operator_over_spin``,
``wall_ratio_per_operator_over_spin``, ``max_relative_difference_mu``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SPINS = ("sx", "sy", "sz")


def main() -> dict:
    from gpukpm import kpm
    from gpukpm.engine.backend import get_backend

    system, _ = common.model_system(256)
    kw = dict(right="jx", num_moments=256, trace=1, seed=1, bounds=(-9.1, 9.1), progress=False, backend="cpu")
    custom = tuple(system.operator(name).copy() for name in SPINS)  # same matrices, general route
    kpm.kubo_moments(common.model_system(16)[0], left=SPINS, **dict(kw, num_moments=32))  # warm-up
    runs, mu = {}, {}
    for rep in range(3):  # alternate the routes
        for label, left in (("spin-resolved", SPINS), ("per-operator", custom)):
            tick = time.perf_counter()
            m = kpm.kubo_moments(system, left=left, **kw)
            wall = time.perf_counter() - tick
            p = m.provenance
            runs.setdefault(label, []).append(dict(wall=wall, gemm=p["time_gemm"], spmv=p["time_spmv"],
                                                   route=p["gemm_route"]))
            print(f"{label:14s} run {rep}: wall {wall:.2f} s, GEMM {p['time_gemm']:.2f} s, "
                  f"steps + products {p['time_spmv']:.2f} s", flush=True)
            mu.setdefault(label, m.mu_samples)
    diff = np.abs(mu["spin-resolved"] - mu["per-operator"]).max() / np.abs(mu["per-operator"]).max()
    fast, slow = runs["spin-resolved"], runs["per-operator"]
    result = {"benchmark": "GEMM route for sx sy sz | jx, benchmark honeycomb 256², W = 1 eV, N = 256, 1 vector",
              "date": common.now(), "machine": common.machine_info(get_backend("cpu")), "runs": runs,
              "max_relative_difference_mu": float(diff),
              "gemm_ratio_per_operator_over_spin": [b["gemm"] / a["gemm"] for a, b in zip(fast, slow)],
              "wall_ratio_per_operator_over_spin": [b["wall"] / a["wall"] for a, b in zip(fast, slow)]}
    print(f"per-operator / spin-resolved: GEMM {result['gemm_ratio_per_operator_over_spin']}, "
          f"wall {result['wall_ratio_per_operator_over_spin']}; max relative difference of mu {diff:.2g}")
    print(f"wrote {common.write_json('spin_gemm', 'cpu', result, None)}")
    return result


if __name__ == "__main__":
    main()
