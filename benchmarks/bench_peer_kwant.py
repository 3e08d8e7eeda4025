"""gpukpm against the peer code kwant (``kwant.kpm``), side by side, on the CPU.

Job (same in both codes): σ_xx(ε_F) of the spinful Rashba-exchange honeycomb of
``bench_peer_pybinding.py`` (t = 2.7, λ_R = 0.1, J = 0.1 with m̂ = ẑ, Δ = 0.05,
Anderson W = 1 eV), L × L cells (4 orbitals per cell), hand-set spectral bounds
±(3t + W/2 + 0.5) eV with the same rescaling half-width in both codes (gpukpm
margin ε = 0.01, a = ΔE/(2 − 2ε); kwant's ``eps`` enters as a = ΔE/(2 − eps),
so kwant runs with eps = 2ε), Jackson kernel, N = 256 moments, one random
vector, T = 0.

Identical operators: kwant is handed gpukpm's own periodic H (CSR) and its
current operator ĵ_x = −i[H, X] (CSR, minimum-image Δx, eV·nm) as matrices
(``kwant.kpm.conductivity(H, alpha=jx, beta=jx, positions=<zeros>, ...)``;
kwant insists on ``positions`` for a matrix H but does not use them when
alpha/beta are matrices), so both codes work on
the same matrices.  Passing ``positions`` instead is not used: kwant builds
v = i[H, X] from raw position differences, which is wrong for the hops that
wrap round a periodic supercell.  kwant's sign (v = +i[H, X]) is opposite to
gpukpm's, which does not matter for σ_xx (ĵ_x appears twice).  By default
kwant is also given gpukpm's random-phase vector 0 (``vector_factory``), so
the 1-vector results of the two codes estimate the trace with the same vector
and should agree to the reconstruction's accuracy; ``--kwant-own-vector``
lets kwant draw its own (unit-modulus phases, as gpukpm's).

kwant is not a gpukpm dependency: it runs in its own venv (``--peer-venv``)
through a subprocess (this file with ``--peer``), which times itself and prints
JSON.  kwant 1.5.0 has no wheel for Python 3.11 / NumPy 2; it builds from the
sdist with::

    python3 -m venv /tmp/kwenv
    /tmp/kwenv/bin/pip install "numpy<2" "scipy<1.14" "cython<3.1" tinyarray setuptools wheel
    /tmp/kwenv/bin/pip install --no-build-isolation kwant      # 1.5.0, no MUMPS (kwant.kpm needs none)

Units: kwant's ``Correlator.__call__`` returns ``2·4²/(2a)² ∫ …`` with the
comment "linear response in units of volume · e²/h"; its random vectors are
unit-modulus phases (not normalised), so its moments are Tr-estimates, not
Tr/D.  The factor is measured here (``identical_hamiltonian_check``,
untimed): on gpukpm's periodic H and ĵ_x of a 16 × 16 supercell (1024
orbitals, W = 1 eV, N = 64), kwant's exact trace (vectors √D·e_k, so that its
mean over vectors is the trace, as with random phases) divided by the area
(nm²) over gpukpm's exact-trace σ_xx in e²/h gave 1.003–1.017 over
ε_F = ±0.5…±2 eV with a dense energy grid (``kwant.kpm.SAMPLING = 16``) and
0.87–1.02 with kwant's default 2N nodes (its T = 0 Fermi step is integrated
by Simpson on those nodes), so σ(e²/h) = raw / area, factor 1
(``KWANT_RAW_OVER_AREA_TO_E2_OVER_H``): the docstring's "volume · e²/h" holds,
spin included, no 2 or 2π.  (At 12 × 12 the same check scatters more: 0.95–1.07
dense, 0.54–1.36 default.)

Size: kwant keeps every T_n(H)|r⟩ and T_m(H) ĵ|r⟩ (and copies) in memory;
its peak RSS was 3.4 GB at 128² and 7.6 GB at 192² cells (N = 256, one
vector), i.e. about 13 × N × D × 16 B, so 256² (≈ 13.5 GB by that scaling,
not run) exceeds the 12 GB allowed on the 23 GB test machine; the default is
L = 192.  The exact-trace check at 16 × 16 peaks at ≈ 9.7 GB in the kwant process.

Timings: kwant's moments stage is the ``Correlator`` construction (Chebyshev
recursions of T_n(H)|r⟩ and T_m(H) ĵ|r⟩, stored in full, ĵ applied to every
T_n|r⟩, the moment matrix Ω†Ψ) minus its ``_build_integral_factor`` (the Γ_nm(E)
sums on kwant's 2N Chebyshev nodes, timed by wrapping the method), which is
counted, with the ``cond(mu)`` calls, as the σ(E) stage.  kwant's whole job is
loading H, ĵ_x (and the vector) from .npz + the Correlator + σ at all
energies (``import kwant`` is timed separately, not included); gpukpm's is
build + moments + σ(E) as in ``bench_peer_pybinding``.  kwant's own
``Builder`` construction of the same L × L model (open flake, ``norbs=2``) is
timed separately in another subprocess (``--no-native-build`` to skip) and a
second whole-job ratio includes it.  Threads: the kwant process gets
OMP/OPENBLAS/MKL_NUM_THREADS = the affinity CPU count (its SpMVs are SciPy's,
single-threaded; only the Ω†Ψ GEMM uses BLAS threads).

The stochastic error of one vector is estimated (untimed) as 2 × the stderr of
a 4-vector gpukpm run.

    python benchmarks/bench_peer_kwant.py [--L 192] [--N 256] [--peer-venv /tmp/kwenv]

Result: ``benchmarks/results/peer_kwant_cpu.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_peer_pybinding import (A_NM, ENERGIES, EXCHANGE, FERMI, MASS, PB_MARGIN, RASHBA, T_HOP, W,  # noqa: E402
                                  agreement_table, bounds_for, gpukpm_job)

MARGIN = PB_MARGIN  # gpukpm's ε; kwant gets eps = 2 ε (same half-width a)
KWANT_RAW_OVER_AREA_TO_E2_OVER_H = 1.0  # measured by identical_hamiltonian_check (see the module docstring)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


# ---------------------------------------------------------------- peer side (runs in the kwant venv)
def peer_main(cfg: dict) -> dict:
    if cfg["mode"] == "build":
        return peer_native_build(cfg)
    tick = time.perf_counter()
    import scipy.sparse

    import kwant
    import kwant.kpm
    t_import = time.perf_counter() - tick

    timers = {"integral_factor_s": 0.0}
    orig = kwant.kpm.Correlator._build_integral_factor

    def timed_integral_factor(self):
        t1 = time.perf_counter()
        orig(self)
        timers["integral_factor_s"] += time.perf_counter() - t1

    kwant.kpm.Correlator._build_integral_factor = timed_integral_factor

    t00 = time.perf_counter()
    H = scipy.sparse.load_npz(cfg["dump"] + ".H.npz").tocsr()
    jx = scipy.sparse.load_npz(cfg["dump"] + ".jx.npz").tocsr()
    D = H.shape[0]
    if cfg["mode"] == "exact":  # √D e_k: the mean over the D vectors is then Tr, as for random phases
        vectors = [np.sqrt(D) * np.eye(1, D, k, dtype=complex).ravel() for k in range(D)]
        kw = dict(vector_factory=vectors, num_vectors=D)
    elif cfg.get("own_vector"):
        kw = dict(num_vectors=1, rng=cfg["seed"])
    else:
        kw = dict(vector_factory=[np.load(cfg["dump"] + ".vec.npy")], num_vectors=1)
    t_load = time.perf_counter() - t00

    def correlator():
        # positions are required by kwant whenever H is a matrix, but unused when alpha/beta are matrices
        return kwant.kpm.conductivity(H, alpha=jx, beta=jx, positions=np.zeros((D, 2)), num_moments=cfg["N"],
                                      bounds=tuple(cfg["bounds"]), eps=2 * cfg["margin"],
                                      kernel=kwant.kpm.jackson_kernel, **kw)

    if cfg["mode"] == "exact":  # kwant's default 2N energy nodes, and a denser grid (its module constant)
        out = {}
        for s in cfg["samplings"]:
            kwant.kpm.SAMPLING = s
            cond = correlator()
            out[f"raw_sampling_{s}"] = [float(np.real(cond(mu=e, temperature=0.0))) for e in cfg["energies"]]
        return dict(out, num_orbitals=int(D), num_moments=int(cond.num_moments), num_vectors=int(cond.num_vectors),
                    rescaling_a_b=[float(cond._a), float(cond._b)], peak_rss_MB=_peak_rss_mb(),
                    kwant_version=kwant.__version__)
    tick = time.perf_counter()
    cond = correlator()
    t_corr = time.perf_counter() - tick
    tick = time.perf_counter()
    raw = np.array([cond(mu=e, temperature=0.0) for e in cfg["energies"]])
    t_eval = time.perf_counter() - tick
    total = time.perf_counter() - t00
    return {"kwant_version": kwant.__version__, "mode": cfg["mode"], "num_orbitals": int(D), "nnz": int(H.nnz),
            "num_moments": int(cond.num_moments), "num_vectors": int(cond.num_vectors),
            "vector": "kwant's own RandomVectors(rng=seed)" if cfg.get("own_vector") else "gpukpm's vector 0",
            "rescaling_a_b": [float(cond._a), float(cond._b)], "import_s": t_import, "load_s": t_load,
            "correlator_s": t_corr, "integral_factor_s": timers["integral_factor_s"],
            "moments_s": t_corr - timers["integral_factor_s"], "cond_calls_s": t_eval,
            "conductivity_s": timers["integral_factor_s"] + t_eval, "whole_job_s": total,
            "energies": list(cfg["energies"]), "raw": np.real(raw).tolist(),
            "raw_imag_max": float(np.max(np.abs(np.imag(raw)))), "peak_rss_MB": _peak_rss_mb(),
            "numpy_version": np.__version__, "threads_env": {k: os.environ.get(k) for k in
                                                             ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}


def peer_native_build(cfg: dict) -> dict:
    """kwant's own Builder construction of the same L × L model (open flake), timed; not used for σ."""
    import kwant

    L, a = cfg["L"], A_NM
    t, lr, J, dm, w = T_HOP, RASHBA, EXCHANGE, MASS, W
    s0, sz = np.eye(2), np.diag([1.0, -1.0])
    sx = np.array([[0, 1], [1, 0]], complex)
    sy = np.array([[0, -1j], [1j, 0]])
    t00 = time.perf_counter()
    lat = kwant.lattice.honeycomb(a, norbs=2)
    A, B = lat.sublattices
    rng = np.random.default_rng(cfg["seed"])
    syst = kwant.Builder()
    for i in range(L):
        for j in range(L):
            syst[A(i, j)] = (dm + rng.uniform(-w / 2, w / 2)) * s0 - (J / 2) * sz
            syst[B(i, j)] = (-dm + rng.uniform(-w / 2, w / 2)) * s0 - (J / 2) * sz

    def t_ab(d):  # c_A† T c_B, d̂ = r_B − r_A
        d = np.asarray(d, float) / np.linalg.norm(d)
        return -t * s0 + 1j * (lr / 3) * (sx * d[1] - sy * d[0])

    def hop(s1, s2):  # H_{s1 s2}
        if s1.family == A:
            return t_ab(s2.pos - s1.pos)
        return t_ab(s1.pos - s2.pos).conj().T

    syst[lat.neighbors()] = hop
    t_builder = time.perf_counter() - t00
    fsyst = syst.finalized()
    t_fin = time.perf_counter() - t00
    H = fsyst.hamiltonian_submatrix(sparse=True)
    total = time.perf_counter() - t00
    return {"mode": "build", "boundaries": "open flake", "num_orbitals": int(H.shape[0]), "nnz": int(H.nnz),
            "builder_s": t_builder, "builder_plus_finalize_s": t_fin, "build_s": total,
            "hermitian_err": float(abs(H - H.getH()).max()), "peak_rss_MB": _peak_rss_mb()}


def run_peer(python: str, cfg: dict, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    proc = subprocess.run([python, str(Path(__file__).resolve()), "--peer", json.dumps(cfg)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"kwant subprocess failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- gpukpm side
def _system(L: int, disorder: float = W, seed: int = 0):
    from gpukpm import models

    return models.GrapheneRashba(t=T_HOP, rashba=RASHBA, exchange=EXCHANGE, mass=MASS,
                                 magnetization=(0, 0, 1)).real_space(shape=(L, L), disorder=disorder, seed=seed)


def dump_system(system, path: str, seed: int = 0) -> None:
    """gpukpm's H, ĵ_x and random vector 0 for the kwant subprocess (untimed)."""
    import scipy.sparse

    from gpukpm.models.random import random_phase_vectors

    scipy.sparse.save_npz(path + ".H.npz", scipy.sparse.csr_matrix(system.hamiltonian))
    scipy.sparse.save_npz(path + ".jx.npz", scipy.sparse.csr_matrix(system.operator("jx")))
    np.save(path + ".vec.npy", random_phase_vectors(system.num_orbitals, seed, 0, [0])[:, 0].copy())


def identical_hamiltonian_check(python: str, threads: int, L: int = 16, N: int = 64, samplings=(2, 16)) -> dict:
    """kwant's exact-trace raw output / area over gpukpm's exact-trace σ_xx (e²/h), same H and ĵ_x (untimed)."""
    from gpukpm import kpm
    from gpukpm.engine.spectrum import rescaling

    system = _system(L)
    with tempfile.TemporaryDirectory() as tmp:
        dump = str(Path(tmp) / "kw")
        dump_system(system, dump)
        kw = run_peer(python, dict(mode="exact", dump=dump, N=N, bounds=bounds_for(), margin=MARGIN,
                                   energies=FERMI, seed=0, samplings=list(samplings)), threads)
    mom = kpm.kubo_moments(system, left=("jx",), right="jx", num_moments=N, trace="exact",
                           scaling=rescaling(system.hamiltonian, bounds=bounds_for(), epsilon=MARGIN), progress=False)
    sigma = np.real(np.asarray(kpm.conductivity(mom, np.array(FERMI)).values[0]))
    ratios = {f"sampling_{s}": (np.array(kw[f"raw_sampling_{s}"]) / system.area / sigma).tolist() for s in samplings}
    return {"L": L, "boundaries": "periodic (gpukpm's H and ĵ_x handed to kwant as matrices)",
            "num_orbitals": system.num_orbitals, "num_moments": N, "area_nm2": system.area,
            "trace": "exact in both (kwant: vectors sqrt(D) e_k)", "energies_eV": FERMI,
            "gpukpm_exact_e2_over_h": sigma.tolist(),
            "kwant_exact_raw": {f"sampling_{s}": kw[f"raw_sampling_{s}"] for s in samplings},
            "raw_over_area_over_gpukpm": ratios,
            "mean_ratio": {k: float(np.mean(v)) for k, v in ratios.items()},
            "sampling_note": "kwant.kpm.SAMPLING = energy nodes per moment of its σ(μ) quadrature (default 2)",
            "kwant_rescaling_a_b": kw["rescaling_a_b"], "gpukpm_rescaling_a_b": [mom.scaling.a, mom.scaling.b],
            "kwant_peak_rss_MB": kw["peak_rss_MB"], "factor_used": KWANT_RAW_OVER_AREA_TO_E2_OVER_H}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--peer", help=argparse.SUPPRESS)
    p.add_argument("--L", type=int, default=192, help="cells per side (256 needs ≈ 13.5 GB in kwant)")
    p.add_argument("--N", type=int, default=256)
    p.add_argument("--peer-venv", default=os.environ.get("KWANT_VENV", "/tmp/kwenv"))
    p.add_argument("--kwant-own-vector", action="store_true", help="kwant draws its own random vector")
    p.add_argument("--check-L", type=int, default=16, help="supercell of the exact-trace units check")
    p.add_argument("--check-N", type=int, default=64, help="moments of the exact-trace units check")
    p.add_argument("--no-native-build", action="store_true")
    p.add_argument("--output", default=None)
    args = p.parse_args()
    if args.peer:
        print(json.dumps(peer_main(json.loads(args.peer))))
        return

    import common
    from gpukpm.engine.backend import get_backend

    be = get_backend("cpu")
    py = str(Path(args.peer_venv) / "bin" / "python")
    if not Path(py).exists():
        raise SystemExit(f"no kwant venv at {args.peer_venv}: build it as in the module docstring")
    threads = len(os.sched_getaffinity(0))
    L, N = args.L, args.N

    # --- timed, side by side: kwant on gpukpm's matrices (dumped untimed), then gpukpm
    print(f"kwant spinful L={L} N={N} ...", flush=True)
    system = _system(L)
    area = system.area
    with tempfile.TemporaryDirectory() as tmp:
        dump = str(Path(tmp) / "kw")
        dump_system(system, dump)
        del system
        kw = run_peer(py, dict(mode="timed", dump=dump, N=N, bounds=bounds_for(), margin=MARGIN,
                               energies=ENERGIES, seed=0, own_vector=args.kwant_own_vector), threads)
    kw["sigma_e2_over_h"] = (KWANT_RAW_OVER_AREA_TO_E2_OVER_H * np.array(kw["raw"]) / area).tolist()
    print(f"  kwant: load {kw['load_s']:.2f} s, moments {kw['moments_s']:.2f} s, σ(E) {kw['conductivity_s']:.2f} s, "
          f"whole {kw['whole_job_s']:.2f} s, peak RSS {kw['peak_rss_MB']:.0f} MB", flush=True)
    gk = gpukpm_job(L, N, {})
    print(f"  gpukpm: build {gk['build_s']:.2f} s, moments {gk['moments_s']:.2f} s, σ(E) {gk['conductivity_s']:.3f} s, "
          f"whole {gk['whole_job_s']:.2f} s", flush=True)
    native = None
    if not args.no_native_build:
        print("kwant native Builder build (timing only) ...", flush=True)
        native = run_peer(py, dict(mode="build", L=L, seed=0), threads)
        print(f"  kwant build {native['build_s']:.2f} s ({native['num_orbitals']} orbitals)", flush=True)
    # --- untimed: stochastic error estimate, units check
    print("gpukpm 4 vectors (error estimate) ...", flush=True)
    gk4 = gpukpm_job(L, N, {}, vectors=4)
    print("identical-Hamiltonian exact-trace units check ...", flush=True)
    same_h = identical_hamiltonian_check(py, threads, args.check_L, args.check_N)
    for k, v in same_h["raw_over_area_over_gpukpm"].items():
        print(f"  kwant raw/area / gpukpm exact ({k}):", np.round(v, 4), flush=True)

    table = agreement_table(gk, gk4, kw["sigma_e2_over_h"], "kwant_1vec", "ratio_kwant_over_gpukpm")
    for row in table:
        row["same_random_vector"] = not args.kwant_own_vector
    ratios = {"moments_stage_kwant_over_gpukpm": kw["moments_s"] / gk["moments_s"],
              "sigma_stage_kwant_over_gpukpm": kw["conductivity_s"] / gk["conductivity_s"],
              "whole_job_kwant_over_gpukpm": kw["whole_job_s"] / gk["whole_job_s"],
              "whole_job_incl_kwant_native_build_over_gpukpm":
                  (kw["whole_job_s"] + native["build_s"]) / gk["whole_job_s"] if native else None,
              "note": "kwant moments = Correlator construction − _build_integral_factor; kwant σ(E) = "
                      "_build_integral_factor + cond(mu) calls; kwant whole = load .npz + Correlator + σ(E) "
                      "(gpukpm's H handed over; import excluded); the last ratio adds kwant's own Builder build"}
    payload = {"benchmark": "peer_kwant", "date": common.now(), "machine": common.machine_info(be),
               "peer_install": ("python3 -m venv /tmp/kwenv && /tmp/kwenv/bin/pip install 'numpy<2' 'scipy<1.14' "
                                "'cython<3.1' tinyarray setuptools wheel && /tmp/kwenv/bin/pip install "
                                "--no-build-isolation kwant  (kwant 1.5.0 from sdist, no MUMPS)"),
               "threads": {"kwant_env_threads": threads, "kwant_note": "SciPy SpMV single-threaded; BLAS GEMM threaded",
                           "gpukpm": "Numba step threads (NUMBA_NUM_THREADS / affinity) + OpenBLAS GEMM, see machine.threadpools",
                           "affinity_cpus": threads},
               "matched": {"L": L, "num_orbitals": gk["num_orbitals"], "kernel": "jackson (both)", "num_moments": N,
                           "bounds_eV": bounds_for(), "rescaling_margin_gpukpm": MARGIN, "kwant_eps": 2 * MARGIN,
                           "kwant_rescaling_a_b": kw["rescaling_a_b"], "random_vectors": 1,
                           "random_vector": kw["vector"], "temperature": 0.0, "energies_eV": ENERGIES,
                           "kwant_energy_nodes": 2 * N,
                           "units": "kwant raw / area (nm²) × KWANT_RAW_OVER_AREA_TO_E2_OVER_H → e²/h, the factor "
                                    "measured by identical_hamiltonian_check; gpukpm e²/h",
                           "boundaries": "periodic in both: kwant gets gpukpm's H and ĵ_x as matrices",
                           "disorder": "Anderson W = 1 eV, the same realisation (identical H)"},
               "timings": {"kwant": {k: kw[k] for k in ("import_s", "load_s", "moments_s", "integral_factor_s",
                                                        "cond_calls_s", "conductivity_s", "whole_job_s")},
                           "kwant_native_build": native,
                           "gpukpm": {k: gk[k] for k in ("build_s", "moments_s", "conductivity_s", "whole_job_s")},
                           "ratios": ratios},
               "memory": {"kwant_timed_peak_rss_MB": kw["peak_rss_MB"],
                          "kwant_native_build_peak_rss_MB": native["peak_rss_MB"] if native else None,
                          "driver_gpukpm_peak_rss_MB": _peak_rss_mb()},
               "agreement_table": table, "identical_hamiltonian_check": same_h,
               "raw": {"kwant": kw, "gpukpm_1vec": gk, "gpukpm_4vec": gk4},
               "load_at_end": common.load()}
    path = common.write_json("peer_kwant", "cpu", payload, Path(args.output) if args.output else None)
    for row in table:
        print(f"  E={row['E_F_eV']:+.2f}: gpukpm {row['gpukpm_1vec']:.4f} ± {row['single_vector_error_est']:.4f}, "
              f"kwant {row['kwant_1vec']:.4f}, ratio {row['ratio_kwant_over_gpukpm']:.5f}")
    print("ratios", ratios)
    print("wrote", path)


if __name__ == "__main__":
    main()
