"""Shared helpers of the KPM benchmarks: machine description, ceilings, JSON output.

* :func:`machine_info` — CPU model, cores, memory, NumPy/SciPy/BLAS and thread
  pools (threadpoolctl when installed), and the backend's ``device_info()``.
* :func:`copy_bandwidth` — ``y[...] = x`` on arrays far beyond the last-level
  cache (default 1 GiB each; this CPU has a 105 MiB L3), best of several,
  counting read + write bytes (2 × size; write-allocate traffic is not counted).
* :func:`zgemm_rate` — complex128 ``(b × D)ᴴ·(D × b)`` through
  ``backend.conj_gemm``, the exact call and shape the Kubo engine makes.
* :func:`model_system` — the benchmark honeycomb (Rashba + exchange with tilted
  m̂ + mass + Anderson disorder).
* :func:`write_json` — ``benchmarks/results/<name>_<backend>.json``, atomically.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from gpukpm.engine.backend import cpu_name

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# the benchmark model: every term on, tilted m̂ so the exchange has spin-flip entries
MODEL = dict(t=2.7, rashba=0.1, exchange=0.1, mass=0.05, magnetization=(0.6, 0.0, 0.8))
DISORDER = 1.0  # Anderson W (eV)


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S%z")


def model_system(L: int, disorder: float = DISORDER, seed: int = 0, **overrides):
    """The benchmark honeycomb ``L × L`` as a gpukpm System (and its build time, s)."""
    from gpukpm.models import GrapheneRashba

    params = dict(MODEL, **overrides)
    tick = time.perf_counter()
    system = GrapheneRashba(**params).real_space((L, L), disorder=disorder, seed=seed, realisation=0)
    return system, time.perf_counter() - tick


def load() -> dict:
    """Load average and the busiest other processes: other users of the CPUs contaminate timings."""
    out = {"loadavg_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    return out


def _cpu_model() -> str:
    name = cpu_name()
    return platform.processor() or name if name == "unknown CPU" else name


def _cache_sizes() -> dict:
    out = {}
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for idx in sorted(base.glob("index*")) if base.exists() else []:
        try:
            level = (idx / "level").read_text().strip()
            kind = (idx / "type").read_text().strip()
            size = (idx / "size").read_text().strip()
            out[f"L{level}_{kind.lower()}"] = size
        except OSError:
            continue
    return out


def _mem_total() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def machine_info(backend) -> dict:
    """Everything that decides the numbers: CPU, memory, libraries, thread pools, device."""
    import scipy

    info = {
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "caches_cpu0": _cache_sizes(),
        "memory_total_bytes": _mem_total(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                               "GPUKPM_BACKEND")},
        "device": backend.device_info(),
        "load_at_start": load(),
    }
    try:
        from threadpoolctl import threadpool_info

        info["threadpools"] = [
            {k: p.get(k) for k in ("user_api", "internal_api", "version", "num_threads", "architecture",
                                   "threading_layer", "filepath")}
            for p in threadpool_info()
        ]
    except Exception as exc:  # threadpoolctl missing or broken
        info["threadpools"] = f"unavailable: {exc}"
    try:
        cfg = np.show_config(mode="dicts")
        info["numpy_blas"] = cfg.get("Build Dependencies", {}).get("blas")
    except Exception:
        pass
    return info


def copy_bandwidth(backend, nbytes: int = 2**30, repeats: int = 5) -> dict:
    """Best-of-``repeats`` ``y[...] = x`` bandwidth (GB/s, 10⁹ B/s) counting read + write bytes.

    On the CPU this is NumPy's single-threaded copy — the same kind of loop
    SciPy's single-threaded SpMV runs; on the GPU a device-to-device copy kernel.
    """
    xp = backend.xp
    n = int(nbytes) // 16
    x = xp.ones(n, dtype=np.complex128)
    y = xp.zeros(n, dtype=np.complex128)
    y[...] = x  # touch pages
    times = []
    for _ in range(repeats):
        t0 = backend.timer()
        y[...] = x
        times.append(backend.timer() - t0)
    best = min(times)
    moved = 2 * n * 16
    del x, y
    return {"array_bytes": n * 16, "bytes_moved_per_copy": moved, "repeats": repeats,
            "best_s": best, "median_s": float(np.median(times)), "gb_per_s": moved / best / 1e9,
            "threads": "numpy copy: 1 thread" if not backend.is_gpu else "device"}


def zgemm_flops(m: int, n: int, k: int) -> float:
    """Real flops of a complex (m × k)·(k × n) product: 8 m n k."""
    return 8.0 * m * n * k


def zgemm_rate(backend, b: int, D: int, repeats: int = 3, min_time: float = 0.0) -> dict:
    """GFLOP/s of ``backend.conj_gemm(P, Q)`` with P, Q of shape (b, D): (b × D)ᴴ·(D × b)."""
    xp = backend.xp
    rng = np.random.default_rng(1)
    P = backend.asarray((rng.standard_normal((b, D)) + 1j * rng.standard_normal((b, D))).astype(np.complex128))
    Q = backend.asarray((rng.standard_normal((b, D)) + 1j * rng.standard_normal((b, D))).astype(np.complex128))
    backend.conj_gemm(P, Q)  # warm-up (thread pool, cuBLAS handle)
    times = []
    start = time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - start) < min_time:
        t0 = backend.timer()
        backend.conj_gemm(P, Q)
        times.append(backend.timer() - t0)
    best = min(times)
    flops = zgemm_flops(b, b, D)
    del P, Q
    _ = xp
    return {"b": b, "D": D, "flops": flops, "repeats": len(times), "best_s": best,
            "gflop_per_s": flops / best / 1e9}


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(name: str, backend_name: str, payload: dict, path: Path | None = None) -> Path:
    """Write ``payload`` to ``results/<name>_<backend>.json`` (or ``path``) via temp file + os.replace."""
    path = Path(path) if path else RESULTS_DIR / f"{name}_{backend_name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(_jsonable(payload), fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
