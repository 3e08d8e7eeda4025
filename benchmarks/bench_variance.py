"""Variance of the stochastic trace per random vector, per estimator, at equal compute.

The paper's Fig. 3 job at small sizes: graphene ``GrapheneRashba(t=2.7,
rashba=0.010, exchange=0.040, mass=0.005)``, m̂ = ẑ (S_y gives χ_FL, S_x gives
χ_DL), Anderson W = 2.7 eV, Jackson kernel, N = ``--num-moments``.  For each
L × L supercell and each estimator, ``kubo_moments(left=("sx", "sy"),
right="jx", estimator=...)`` runs R random vectors, one call per vector,
interleaved over the estimators so that the load of other users falls on all
alike (the cost per vector, every Chebyshev chain of a sample included, is the
fastest of the R calls; the median is kept too), and the per-sample
responses S_x, S_y (total, sea, surface) on ``--energies`` points of the peak
window give the variance per vector (ddof = 1), averaged over the window.

Estimators (``gpukpm.engine.estimators``): ``plain``, ``spin_diluted``,
``sublattice_diluted``, ``spin_sublattice_diluted``; and control variates,
``control_variate`` (the plain sample minus the same vector's sample on the
pristine W = 0 lattice, whose exact value is known from k space; cost = both
runs) and ``spin_diluted+control_variate``.  The exact pristine value is a
constant: it does not enter a variance, so it is not computed here.

    variance_reduction_per_cost = (var_plain · cost_plain) / (var_est · cost_est)

per operator and part, all from the same run; ``variance_reduction_per_spmv``
is the same with the count of sparse products per vector as the cost (k times
the plain count for k colours: free of the machine's load).  ``--cv-disorders`` measures the
correlation of the disordered and pristine samples at other W on the smallest
size; ``--moments-scan`` repeats plain and spin_diluted there at larger N
(the residual noise of the diluted estimator grows as η shrinks towards the
exchange and Rashba energies).

    python benchmarks/bench_variance.py [--sizes 64 128 256] [--num-moments 256]
        [--vectors 8 4 3] [--disorder 2.7] [--cv-disorders 0.3 1.5 2.7] [--cv-vectors 12]
        [--moments-scan 512 1024] [--scan-vectors 4] [--output PATH]

Results: ``benchmarks/results/variance_cpu.json``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from gpukpm import kpm  # noqa: E402
from gpukpm.engine.backend import get_backend  # noqa: E402
from gpukpm.models import GrapheneRashba  # noqa: E402
from gpukpm.engine.moments import concatenate  # noqa: E402
from gpukpm.engine.spectrum import rescaling  # noqa: E402

MODEL = dict(t=2.7, rashba=0.010, exchange=0.040, mass=0.005, magnetization=(0.0, 0.0, 1.0))
LEFT = ("sx", "sy")
PARTS = ("total", "sea", "surface")
DILUTIONS = ("plain", "spin_diluted", "sublattice_diluted", "spin_sublattice_diluted")
CONTROLLED = {"control_variate": "plain", "spin_diluted+control_variate": "spin_diluted"}
SEED = 2024


def run_round_robin(jobs: dict, N: int, R: int, scaling, energies) -> tuple[dict, dict]:
    """Per-sample responses ``{job: {part: (R, 2, n_E)}}`` and costs ``{job: {...}}``.

    ``jobs`` maps a name to ``(system, estimator)``.  The vectors run one at a
    time, interleaved over the jobs (vector 0 of every job, then vector 1, ...),
    so that the load of other users of the CPUs falls on all of them alike; the
    cost per vector is the fastest of the R timed calls (and the median is kept).
    """
    parts, times, spmv = {j: [] for j in jobs}, {j: [] for j in jobs}, {}
    for v in range(R):
        for name, (system, estimator) in jobs.items():
            tick = time.perf_counter()
            mom = kpm.kubo_moments(system, left=LEFT, right="jx", num_moments=N, trace=1, vectors=[v],
                                   seed=SEED, scaling=scaling, estimator=estimator, progress=False)
            times[name].append(time.perf_counter() - tick)
            spmv[name] = mom.provenance["spmv_count"]
            parts[name].append(mom)
    samples = {}
    for name, moms in parts.items():
        mom = concatenate(moms)
        samples[name] = {p: kpm.kubo_response(mom, energies, kernel="jackson", part=p).samples for p in PARTS}
    costs = {name: dict(cost_per_vector_s=float(np.min(t)), median_s_per_vector=float(np.median(t)),
                        spmv_per_vector=spmv[name]) for name, t in times.items()}
    return samples, costs


def variances(samples: dict) -> dict:
    """Variance per vector (ddof = 1) averaged over the energy window, per part and operator."""
    return {p: {op: float(samples[p][:, k].var(axis=0, ddof=1).mean()) for k, op in enumerate(LEFT)}
            for p in PARTS}


def correlations(a: dict, b: dict) -> dict:
    """Pearson correlation of two sample sets, averaged over the energy window."""
    def corr(x, y):
        return float(np.mean([np.corrcoef(x[:, e], y[:, e])[0, 1] for e in range(x.shape[1])]))
    return {p: {op: corr(a[p][:, k], b[p][:, k]) for k, op in enumerate(LEFT)} for p in PARTS}


def difference(a: dict, b: dict) -> dict:
    return {p: a[p] - b[p] for p in PARTS}


def reductions(entry: dict, plain: dict, cost: str = "cost_per_vector_s") -> dict:
    """``var_plain · cost_plain / (var_est · cost_est)`` of ``entry`` against ``plain`` (same run);
    ``cost`` names the cost field (wall seconds, or ``spmv_per_vector``: sparse products)."""
    return {p: {op: plain["variance"][p][op] * plain[cost] / (entry["variance"][p][op] * entry[cost])
                for op in LEFT} for p in PARTS}


def size_case(L: int, N: int, R: int, W: float, energies, estimators=DILUTIONS, controls=tuple(CONTROLLED)):
    """Every estimator on one L × L job (disordered W and pristine, same vectors and rescaling)."""
    model = GrapheneRashba(**MODEL)
    dirty = model.real_space((L, L), disorder=W, seed=SEED, realisation=0)
    clean = model.real_space((L, L), disorder=0.0, seed=SEED, realisation=0)
    scaling = rescaling(dirty.hamiltonian)  # shared: the control variate needs the same H̃ map
    for s in (dirty, clean):
        s.operator("jx")
    bases = [e for e in DILUTIONS if e in set(estimators) | {CONTROLLED[c] for c in controls}]
    jobs = {est: (dirty, est) for est in bases}
    jobs.update({f"pristine:{CONTROLLED[c]}": (clean, CONTROLLED[c]) for c in controls})
    samples, costs = run_round_robin(jobs, N, R, scaling, energies)
    out = {est: dict(costs[est], variance=variances(samples[est])) for est in bases}
    for cv in controls:
        base, pristine = CONTROLLED[cv], f"pristine:{CONTROLLED[cv]}"
        cost = {k: costs[base][k] + costs[pristine][k] for k in costs[base]}
        out[cv] = dict(cost, pristine_cost_per_vector_s=costs[pristine]["cost_per_vector_s"],
                       variance=variances(difference(samples[base], samples[pristine])),
                       correlation=correlations(samples[base], samples[pristine]))
    for est, entry in out.items():
        entry["variance_reduction_per_cost"] = reductions(entry, out["plain"])
        entry["variance_reduction_per_spmv"] = reductions(entry, out["plain"], "spmv_per_vector")
    print(f"  L={L} W={W} N={N} R={R}: " + ", ".join(
        f"{e} {v['cost_per_vector_s']:.2f} s, red(total sy) {v['variance_reduction_per_cost']['total']['sy']:.3g}"
        for e, v in out.items()), flush=True)
    return dict(L=L, num_orbitals=dirty.num_orbitals, num_moments=N, vectors=R, disorder_W_eV=W,
                rescaling=dict(a=scaling.a, b=scaling.b), estimators=out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--vectors", type=int, nargs="+", default=[8, 4, 3])
    parser.add_argument("--num-moments", type=int, default=256)
    parser.add_argument("--disorder", type=float, default=2.7)
    parser.add_argument("--cv-disorders", type=float, nargs="*", default=[0.3, 1.5, 2.7])
    parser.add_argument("--cv-vectors", type=int, default=12)
    parser.add_argument("--moments-scan", type=int, nargs="*", default=[512, 1024],
                        help="more N on the smallest size, plain and spin_diluted only")
    parser.add_argument("--scan-vectors", type=int, default=4)
    parser.add_argument("--energies", type=float, nargs=3, default=[-0.2, 0.2, 9], metavar=("START", "STOP", "NUM"))
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    if len(args.vectors) != len(args.sizes):
        parser.error("--vectors needs one count per size")
    energies = np.linspace(args.energies[0], args.energies[1], int(args.energies[2]))
    tick = time.perf_counter()
    result = dict(
        benchmark="variance", date=common.now(), model=MODEL, left=LEFT, right="jx", kernel="jackson",
        seed=SEED, energies_eV=energies.tolist(),
        variance_definition="per-vector variance (ddof=1) of S in (V nm)^-2, mean over the energies",
        cost_definition="wall seconds of kubo_moments per random vector (all chains of a sample): "
                        "fastest of the interleaved single-vector calls of the same run",
        machine=common.machine_info(get_backend("cpu")), load=common.load(), cases=[], control_variate_cases=[],
        moments_cases=[],
    )
    for L, R in zip(args.sizes, args.vectors):  # the file is rewritten after every case
        result["cases"].append(size_case(L, args.num_moments, R, args.disorder, energies))
        path = common.write_json("variance", "cpu", dict(result, wall_s=time.perf_counter() - tick), args.output)
    for N in args.moments_scan:
        result["moments_cases"].append(size_case(min(args.sizes), N, args.scan_vectors, args.disorder, energies,
                                                 estimators=("plain", "spin_diluted"), controls=()))
        path = common.write_json("variance", "cpu", dict(result, wall_s=time.perf_counter() - tick), args.output)
    for W in args.cv_disorders:
        result["control_variate_cases"].append(size_case(min(args.sizes), args.num_moments, args.cv_vectors, W,
                                                         energies, estimators=("plain", "spin_diluted")))
        path = common.write_json("variance", "cpu", dict(result, wall_s=time.perf_counter() - tick), args.output)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
