r"""``gpukpm plan``: memory, work and time of a real-space moments job, and the samples a target error needs.

For a ``gpukpm moments`` configuration the job (every task: realisation × vector chunk) is planned by
:func:`gpukpm.engine.plan.plan_kubo` — the engine's own decisions and cost model (SpMV count, GEMM
flops, bytes, memory) — and its time predicted on

* this CPU, from a measured calibration (:func:`calibrate_cpu`: one short ``kubo_moments`` run,
  one random vector, on a ``shape_cal`` honeycomb with ``N_cal`` moments, the configuration's
  operators and dtype; cached per CPU, thread count, routes and operators)::

      t_CPU = spmv_count · D · t_orb + gemm_flops / F_gemm,
      t_orb  = time_spmv / (spmv_count · D)   (s per orbital per product, the engine's SpMV phase:
                                               steps, operator products and copies in the ratio
                                               of the calibration run)
      F_gemm = gemm_flops / time_gemm          (flop/s of the engine's GEMM route);

* named GPUs from their nominal figures (:data:`DEVICES`: FP64 tensor-core peak P and memory
  bandwidth BW from the vendors' data sheets, not measured), by a roofline::

      t_GPU = (spmv_bytes + operator_bytes) / BW + max(gemm_flops / P, gemm_bytes / BW),

  planned as the engine would on that device: per-operator cuBLAS GEMMs, the cell-stencil kernel,
  half the device memory as the budget (block size and tiles from it).  A lower bound: it assumes
  the SpMV at full bandwidth and the GEMM at peak.

With a pilot (a moments or response file of the same model, estimator and N), the statistics of the
peak χ's — for s_x and s_y (χ_DL, χ_FL at m̂ = ẑ) the energy of largest |mean| — give the
samples needed for a relative standard error ε::

      σ₁(D) = σ₁_pilot · √(D_pilot / D)        (one random vector's std ∝ 1/√D: the noise
                                                 Σ_{i≠j}|X_ij|²/D² of a local X falls as 1/D)
      n     = ⌈(σ₁(D) / (ε · |χ_peak|))²⌉     (vectors × realisations, the largest over s_x, s_y)
      device-hours = n · t_job / (vectors in the job) / 3600.

Samples are counted as independent (the disorder scatter between realisations falls as 1/D too and
is part of σ₁ when the pilot has several realisations).
"""
from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path

import numpy as np

from gpukpm import envflags
from gpukpm.errors import InputFileError, UsageError

__all__ = ["DEVICES", "calibrate_cpu", "calibration_key", "samples_needed", "cpu_time", "gpu_time", "pilot_statistics", "predict_per_sample_std",
           "plan_job", "format_plan", "default_calibration_path", "production_trace", "job_resources",
           "full_size_plans", "kspace_job_resources"]

#: Nominal figures (vendor data sheets, SXM parts): FP64 tensor-core peak (TFLOP/s), FP64 vector
#: peak, HBM bandwidth (TB/s), memory (GB).  Nominal, not measured: the predictions are lower bounds.
DEVICES = {
    "H100": dict(name="NVIDIA H100 SXM5 80 GB", fp64_tflops=67.0, fp64_vector_tflops=34.0, bandwidth_tb_s=3.35,
                 memory_gb=80.0),
    "H200": dict(name="NVIDIA H200 SXM 141 GB", fp64_tflops=67.0, fp64_vector_tflops=34.0, bandwidth_tb_s=4.8,
                 memory_gb=141.0),
    "A100": dict(name="NVIDIA A100 SXM4 80 GB", fp64_tflops=19.5, fp64_vector_tflops=9.7, bandwidth_tb_s=2.039,
                 memory_gb=80.0),
}

PEAK_OPERATORS = ("sx", "sy")


# ----------------------------------------------------------------------------- calibration (this CPU)
def default_calibration_path() -> Path:
    """``$GPUKPM_CACHE`` or ``$XDG_CACHE_HOME/gpukpm`` (``~/.cache/gpukpm``) / ``calibration.json``."""
    root = envflags.get("GPUKPM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gpukpm")
    return Path(root) / "calibration.json"


def _threads() -> int:
    try:
        import numba

        return int(numba.get_num_threads())
    except Exception:  # noqa: BLE001 - numba missing or not initialised
        return int(os.cpu_count() or 1)


def calibration_key(left, right, dtype) -> str:
    """Cache key of a calibration: CPU model, threads, operators, dtype (the size is in the record)."""
    from gpukpm.engine.backend import cpu_name

    return f"{cpu_name()}|threads={_threads()}|{','.join(left)}|{right}|{np.dtype(dtype).name}"


def calibrate_cpu(left=("sx", "sy", "sz"), right="jx", dtype="complex128", *, shape=(128, 128),
                  num_moments: int = 128, cache: str | Path | None = None, refresh: bool = False) -> dict:
    """Measured SpMV time per orbital·product and GEMM rate of the engine on this CPU (module doc).

    One ``kubo_moments`` run (one random vector) of a ``shape`` Rashba-exchange honeycomb; the result
    is cached in ``cache`` (default :func:`default_calibration_path`) under a key of the CPU, the
    thread count, the operators and the dtype, and reused unless ``refresh``.
    """
    from gpukpm.engine.backend import cpu_name
    from gpukpm.engine.plan import plan_kubo
    from gpukpm.models.hamiltonians import GrapheneRashba

    key = calibration_key(left, right, dtype)
    path = Path(cache) if cache is not None else default_calibration_path()
    stored = {}
    if path.exists():
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError):
            stored = {}
    if key in stored and not refresh:
        return dict(stored[key], cached=True, cache=str(path))
    model = GrapheneRashba(t=2.7, rashba=0.1, exchange=0.1, mass=0.05, magnetization=(0.6, 0.0, 0.8))
    system = model.real_space(shape=tuple(shape), disorder=1.0, seed=0, realisation=0)
    kw = dict(left=tuple(left), right=right, num_moments=num_moments, trace=1, seed=0, backend="cpu",
              dtype=np.dtype(dtype))
    plan_kubo(system, **dict(kw, num_moments=8)).run(progress=False)  # warm-up: Numba caches, first touch
    plan = plan_kubo(system, **kw)
    moments = plan.run(progress=False)
    prov = moments.provenance
    D = plan.dim
    record = dict(
        key=key, host=socket.gethostname(), cpu=cpu_name(), threads=_threads(), date=time.strftime("%Y-%m-%d %H:%M"),
        load_average=list(os.getloadavg()),  # a loaded machine calibrates slower: refresh when it is quiet
        shape=list(shape), num_moments=num_moments, dim=D, gemm_route=plan.gemm_route,
        operator_route=plan.operator_route, block_size=plan.block_size, spmv_count=prov["spmv_count"],
        gemm_flops=plan.cost.gemm_flops, time_spmv=prov["time_spmv"], time_gemm=prov["time_gemm"],
        time_total=prov["time_total"],
        t_orb=prov["time_spmv"] / (prov["spmv_count"] * D),
        gemm_flops_per_s=plan.cost.gemm_flops / max(prov["time_gemm"], 1e-9),
    )
    stored[key] = record
    try:
        from gpukpm.run import io

        path.parent.mkdir(parents=True, exist_ok=True)
        io.atomic_text(path, json.dumps(stored, indent=1, sort_keys=True))
    except OSError:
        pass  # a read-only cache: the measurement still serves this call
    return dict(record, cached=False, cache=str(path))


def cpu_time(plan, calibration: dict) -> dict:
    """Predicted seconds of ``plan`` on the calibrated CPU: ``spmv_count·D·t_orb + gemm_flops/F_gemm``."""
    spmv = plan.cost.spmv_count * plan.dim * calibration["t_orb"]
    gemm = plan.cost.gemm_flops / calibration["gemm_flops_per_s"]
    return dict(seconds=spmv + gemm, spmv_s=spmv, gemm_s=gemm)


def gpu_time(plan, device: dict) -> dict:
    """Roofline seconds of a GPU-retargeted ``plan`` on ``device`` (an entry of :data:`DEVICES`)."""
    bw = device["bandwidth_tb_s"] * 1e12
    stream = plan.cost.stream_bytes / bw
    gemm = max(plan.cost.gemm_flops / (device["fp64_tflops"] * 1e12), plan.cost.gemm_bytes / bw)
    return dict(seconds=stream + gemm, spmv_s=stream, gemm_s=gemm)


# ----------------------------------------------------------------------------- pilot statistics
def _pilot_dim(provenance: dict) -> float | None:
    cfg = provenance.get("config") or {}
    shape = (cfg.get("system") or {}).get("shape")
    if not shape or "model" not in cfg:
        return None
    from gpukpm.run.config import build_model

    return float(build_model(cfg["model"]).orbitals_per_cell * shape[0] * shape[1])


def pilot_statistics(path, *, energies=None, kernel: str = "jackson", part: str = "total",
                     num_moments: int | None = None, operators=PEAK_OPERATORS, window=None) -> dict:
    """Per operator (s_x, s_y) the peak of |mean χ| of a pilot and one random vector's std there.

    ``path``: a moments file (reconstructed here: ``energies`` (default 201 points inside its
    spectrum), ``kernel``, ``part``, ``num_moments`` ≤ the pilot's N) or a response file (as written).
    ``window`` (lo, hi) restricts the peak search.  Returns ``dim`` (D of the pilot), ``num_samples``,
    ``num_moments``, ``estimator`` and ``peaks`` {op: {energy, mean, per_sample_std, stderr}}.
    """
    import h5py

    from gpukpm.run import io

    kind = io.read_kind(path)
    if kind == "moments":
        from gpukpm.response.kubo import kubo_response

        mom = io.load_moments(path)
        if mom.trace != "stochastic":
            raise InputFileError(f"{path}: a pilot must be a stochastic run (trace = {mom.trace!r})")
        if energies is None:
            energies = np.linspace(mom.emin, mom.emax, 203)[1:-1]
        N = mom.num_moments if num_moments is None else min(int(num_moments), mom.num_moments)
        resp = kubo_response(mom, np.asarray(energies, dtype=float), kernel=kernel, part=part, num_moments=N)
        dim, prov = mom.num_orbitals, mom.provenance
    elif kind == "response":
        resp = io.load_response(path)
        with h5py.File(path, "r") as fh:
            prov = io.from_json(fh.attrs.get("provenance", "{}"))
        dim = _pilot_dim(prov)
        if dim is None:
            raise InputFileError(f"{path}: the response does not record its system (config); give the moments file")
    else:
        raise InputFileError(f"{path} is neither a gpukpm moments nor a response file (gpukpm_kind = {kind!r})")
    estimator = prov.get("estimator") or ((prov.get("config") or {}).get("kpm") or {}).get("estimator", "plain")
    std = resp.per_sample_std
    e = np.asarray(resp.energies)
    mask = np.ones(e.shape, bool) if window is None else (e >= window[0]) & (e <= window[1])
    if not mask.any():
        raise UsageError(f"--peak-window: no pilot energy inside the peak window {window}")
    peaks = {}
    for op in operators:
        if op not in resp.operators:
            continue
        k = list(resp.operators).index(op)
        values = np.where(mask, np.abs(resp.values[k]), -np.inf)
        i = int(np.argmax(values))
        peaks[op] = dict(energy=float(e[i]), mean=float(resp.values[k][i]), per_sample_std=float(std[k][i]),
                         stderr=float(resp.stderr[k][i]))
    if not peaks:
        raise InputFileError(f"{path}: the pilot has none of the operators {operators} (it has {resp.operators})")
    if not all(np.isfinite(p["per_sample_std"]) for p in peaks.values()):
        raise InputFileError(f"{path}: a pilot needs at least two random vectors to measure the per-vector std")
    return dict(path=str(path), dim=float(dim), num_samples=int(resp.samples.shape[0]),
                num_moments=int(resp.num_moments), estimator=estimator, part=resp.part, kernel=resp.kernel,
                peaks=peaks)


def predict_per_sample_std(pilot: dict, dim: float) -> dict:
    """σ₁ of one random vector at D orbitals per peak operator: ``σ₁_pilot·√(D_pilot/D)``."""
    return {op: p["per_sample_std"] * math.sqrt(pilot["dim"] / float(dim)) for op, p in pilot["peaks"].items()}


def samples_needed(pilot: dict, dim: float, target_rel_error: float) -> dict:
    """Per peak operator and overall: the independent samples for ``stderr ≤ ε·|χ_peak|`` at D orbitals."""
    sigma = predict_per_sample_std(pilot, dim)
    need = {op: int(math.ceil((sigma[op] / (target_rel_error * abs(p["mean"]))) ** 2)) if p["mean"] else None
            for op, p in pilot["peaks"].items()}
    valid = [n for n in need.values() if n is not None]
    return dict(per_operator=need, per_sample_std=sigma, samples=max(valid) if valid else None)


# ----------------------------------------------------------------------------- the job
def _task_kinds(cfg: dict):
    """The tasks of ``cfg`` and ``{vectors per task (or "exact"): how many tasks}``."""
    from gpukpm.run.parallel import make_tasks

    tasks = make_tasks(cfg)
    counts: dict = {}
    for task in tasks:
        key = "exact" if task.vectors is None else len(task.vectors)
        counts[key] = counts.get(key, 0) + 1
    return tasks, counts


def _job_plans(cfg: dict, scaling, num_moments: int, backend: str = "cpu"):
    """[(plan of one task, how many tasks like it)] for the tasks of ``cfg`` (realisation 0 stands for all)."""
    from gpukpm.engine.plan import plan_kubo
    from gpukpm.run.config import build_model

    kpm, system_cfg = cfg["kpm"], cfg["system"]
    tasks, counts = _task_kinds(cfg)
    realisation = int(system_cfg["realisations"][0])
    system = build_model(cfg["model"]).real_space(shape=tuple(system_cfg["shape"]), disorder=system_cfg["disorder"],
                                                  seed=kpm["seed"], realisation=realisation)
    budget = None if kpm["memory_budget_gb"] is None else int(kpm["memory_budget_gb"] * 2**30)
    first_key = next(iter(counts))
    base = plan_kubo(system, left=tuple(kpm["left"]), right=kpm["right"], num_moments=num_moments,
                     trace=first_key, seed=kpm["seed"], block_size=kpm["block_size"], realisation=realisation,
                     vectors_per_batch=kpm["vectors_per_batch"], backend=backend, dtype=kpm["dtype"],
                     scaling=scaling, memory_budget=budget, estimator=kpm.get("estimator", "plain"))
    plans = [(base if key == first_key else base.retarget(num_vectors=key), n) for key, n in counts.items()]
    return plans, system


def _sum_costs(plans, what) -> dict:
    """Σ over task kinds of ``what(plan)`` (a dict of seconds) × count."""
    out: dict = {}
    for plan, n in plans:
        for k, v in what(plan).items():
            out[k] = out.get(k, 0.0) + n * v
    return out


def plan_job(config, *, target_rel_error: float = 0.05, pilot=None, devices=("H100", "H200", "A100"),
             calibration: dict | str | Path | None = None, recalibrate: bool = False, pilot_energies=None,
             peak_window=None) -> dict:
    """The plan of the moments job of ``config`` (module doc); the JSON record ``gpukpm plan --json`` writes.

    ``calibration``: a calibration record (:func:`calibrate_cpu`), a cache path, or None (default
    cache); ``pilot``: a moments/response file path or :func:`pilot_statistics` output; ``peak_window``
    (lo, hi) eV: where the pilot's peaks are searched.
    """
    from gpukpm.response.kernels import num_moments_for
    from gpukpm.run.config import ConfigError, energy_grid, load_config
    from gpukpm.run.parallel import run_scaling

    cfg = load_config(config)
    if cfg["system"]["shape"] is None:
        raise ConfigError("gpukpm plan: system.shape is required (a real-space moments configuration)")
    kpm = cfg["kpm"]
    scaling = run_scaling(cfg)
    N = kpm["num_moments"] or num_moments_for(cfg["response"]["kernel"], kpm["eta"], scaling.a,
                                              cfg["response"]["lorentz_lambda"])
    plans, _system = _job_plans(cfg, scaling, N)
    base = plans[0][0]
    job_vectors = sum(p.num_vectors * n for p, n in plans) if base.trace == "stochastic" else None
    cost_keys = ("spmv_count", "steps", "operator_products", "gemm_flops", "spmv_bytes", "operator_bytes",
                 "gemm_bytes")
    job_cost = _sum_costs(plans, lambda p: {k: getattr(p.cost, k) for k in cost_keys})

    if not isinstance(calibration, dict):
        calibration = calibrate_cpu(tuple(kpm["left"]), kpm["right"], kpm["dtype"], cache=calibration,
                                    refresh=recalibrate)
    cpu = _sum_costs(plans, lambda p: cpu_time(p, calibration))
    targets = {"cpu": dict(device=calibration["cpu"], nominal=False, calibration=calibration, **cpu,
                           memory_bytes=max(p.cost.memory_bytes for p, _ in plans), block_size=base.block_size,
                           gemm_route=base.gemm_route, operator_route=base.operator_route)}
    for name in devices:
        spec = DEVICES[name]
        budget = int(0.5 * spec["memory_gb"] * 1e9)
        retargeted = [(p.retarget(gpu=True, memory_budget=budget, operator_route="stencil"), n) for p, n in plans]
        times = _sum_costs(retargeted, lambda p: gpu_time(p, spec))
        job_gpu = _sum_costs(retargeted, lambda p: {k: getattr(p.cost, k) for k in cost_keys})
        targets[name] = dict(device=spec["name"], nominal=True, spec=spec, **times,
                             memory_bytes=max(p.cost.memory_bytes for p, _ in retargeted),
                             block_size=retargeted[0][0].block_size, gemm_route=retargeted[0][0].gemm_route,
                             operator_route="stencil", spmv_count=job_gpu["spmv_count"],
                             gemm_flops=job_gpu["gemm_flops"])

    record = dict(
        config=str(config) if isinstance(config, (str, Path)) else None,
        system=dict(shape=cfg["system"]["shape"], disorder=cfg["system"]["disorder"],
                    realisations=len(cfg["system"]["realisations"]), dim=base.dim, nnz=base.nnz),
        num_moments=N, a=scaling.a, b=scaling.b, trace=kpm["trace"], estimator=kpm.get("estimator", "plain"),
        tasks=[dict(vectors=p.num_vectors if p.trace == "stochastic" else "exact", count=n, plan=p.summary())
               for p, n in plans],
        job=dict(vectors=job_vectors, **job_cost), targets=targets,
        model="t_CPU = spmv_count*D*t_orb + gemm_flops/F_gemm (calibrated); "
              "t_GPU = (spmv_bytes + operator_bytes)/BW + max(gemm_flops/P_fp64, gemm_bytes/BW) (nominal BW, P)",
    )
    if pilot is not None:
        if not isinstance(pilot, dict):
            energies = pilot_energies
            if energies is None and cfg["response"]["energies"] is not None:
                energies = energy_grid(cfg["response"]["energies"])
            pilot = pilot_statistics(pilot, energies=energies, kernel=cfg["response"]["kernel"], num_moments=N,
                                     window=peak_window)
        need = samples_needed(pilot, base.dim, target_rel_error)
        notes = []
        if pilot["num_moments"] != N:
            notes.append(f"pilot reconstructed with N = {pilot['num_moments']}, the job has N = {N}: "
                         "the variance depends on N (η)")
        if pilot["estimator"] != record["estimator"]:
            notes.append(f"pilot estimator {pilot['estimator']} differs from the job's {record['estimator']}")
        realisations = len(cfg["system"]["realisations"])
        n = need["samples"]
        sizing = dict(target_rel_error=target_rel_error, pilot=pilot, **need, notes=notes)
        if n is not None:
            sizing["vectors_per_realisation"] = int(math.ceil(n / realisations))
            sizing["realisations"] = realisations
            if job_vectors:
                sizing["device_hours"] = {k: n * t["seconds"] / job_vectors / 3600.0 for k, t in targets.items()}
            sizing["predicted_stderr_of_job"] = (
                {op: s / math.sqrt(job_vectors) for op, s in need["per_sample_std"].items()} if job_vectors else None)
        record["sizing"] = sizing
    return record


def _size(nbytes: float) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes:.0f} B"


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.3g} h"
    if seconds >= 60:
        return f"{seconds / 60:.3g} min"
    return f"{seconds:.3g} s"


def format_plan(record: dict) -> str:
    """The human-readable lines ``gpukpm plan`` prints."""
    s, job = record["system"], record["job"]
    lines = [f"system {s['shape'][0]}x{s['shape'][1]}, W = {s['disorder']:g} eV, D = {s['dim']}, "
             f"{s['realisations']} realisation(s); N = {record['num_moments']}, trace = {record['trace']}, "
             f"estimator {record['estimator']}",
             f"job: {job['spmv_count']:.4g} SpMV (vector products), {job['gemm_flops']:.4g} GEMM flop, "
             f"{_size(job['spmv_bytes'] + job['operator_bytes'])} streamed (CPU plan)"]
    for name, t in record["targets"].items():
        tag = "nominal" if t["nominal"] else (
            f"calibrated {t['calibration'].get('date', '?')}, load {t['calibration'].get('load_average', ['?'])[0]}")
        lines.append(f"  {name:5s} ({t['device']}, {tag}): {_duration(t['seconds'])} "
                     f"(SpMV {_duration(t['spmv_s'])}, GEMM {_duration(t['gemm_s'])}), memory "
                     f"{_size(t['memory_bytes'])}, block {t['block_size']}, {t['gemm_route']} GEMM")
    sizing = record.get("sizing")
    if sizing:
        pilot = sizing["pilot"]
        lines.append(f"pilot {pilot['path']}: D = {pilot['dim']:g}, {pilot['num_samples']} samples, "
                     f"N = {pilot['num_moments']}, {pilot['estimator']}")
        for op, peak in pilot["peaks"].items():
            lines.append(f"  {op}: peak {peak['mean']:.4g} (V·nm)⁻¹ at {peak['energy']:.4g} eV, one vector's std "
                         f"{peak['per_sample_std']:.3g} → {sizing['per_sample_std'][op]:.3g} at D = {s['dim']}: "
                         f"{sizing['per_operator'][op]} samples for {100 * sizing['target_rel_error']:g} %")
        if sizing.get("samples") is not None:
            lines.append(f"  needed: {sizing['samples']} samples = {sizing['vectors_per_realisation']} vectors × "
                         f"{sizing['realisations']} realisations")
            for name, hours in (sizing.get("device_hours") or {}).items():
                lines.append(f"  {name}: {hours:.3g} device-hours")
        lines += [f"  note: {n}" for n in sizing["notes"]]
    lines.append("GPU times are roofline lower bounds from nominal FP64 peak and memory bandwidth")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- batch-system resources of a job
#: What a CPU rank sustains when no calibration is at hand (nominal: the roofline of :func:`gpu_time`).
NOMINAL_CPU_RANK = dict(name="CPU rank (nominal)", fp64_tflops=0.05, fp64_vector_tflops=0.05, bandwidth_tb_s=0.02,
                        memory_gb=8.0)
RESOURCE_SAFETY = 3.0  # on the nominal roofline times (a lower bound) and on the SpMV/GEMM rates
RESOURCE_SAFETY_MEM = 1.5
STARTUP_MIN = 10  # imports, system build, HDF5 writes, queue-side start
MIN_RUNTIME_MIN = 15
BASE_MEM_MB = 2000
PROBE_SHAPE = (8, 8)


def full_size_plans(cfg: dict, *, gpu: bool, device: str = "H100", probe_shape=PROBE_SHAPE):
    """``([(KuboPlan, tasks like it)], tasks)`` of the moments job ``cfg`` (validated) at its full size, for
    costing only: each kind of task planned on a ``probe_shape`` lattice, D and nnz scaled by the ratio of
    cells, retargeted to the device (half its memory, or the job's ``memory_budget_gb`` within it)."""
    from dataclasses import replace

    from gpukpm.engine.plan import plan_kubo
    from gpukpm.engine.spectrum import margin_for, rescaling
    from gpukpm.response.kernels import num_moments_for
    from gpukpm.run.config import build_model

    kpm, system_cfg = cfg["kpm"], cfg["system"]
    tasks, counts = _task_kinds(cfg)
    probe = build_model(cfg["model"]).real_space(shape=tuple(probe_shape), disorder=system_cfg["disorder"],
                                                 seed=kpm["seed"], realisation=int(system_cfg["realisations"][0]))
    # the job's bounds, or the probe's (a and b do not enter the cost; only N from eta needs a)
    scaling = rescaling(probe.hamiltonian if kpm["bounds"] is None else None, bounds=kpm["bounds"],
                        epsilon=margin_for(kpm["num_moments"]), backend="cpu")
    N = kpm["num_moments"] or num_moments_for(cfg["response"]["kernel"], kpm["eta"], scaling.a,
                                              cfg["response"]["lorentz_lambda"])
    ratio = int(np.prod(system_cfg["shape"])) / int(np.prod(probe_shape))
    spec = DEVICES[device] if gpu else NOMINAL_CPU_RANK
    budget = int(0.5 * spec["memory_gb"] * 1e9)
    if kpm["memory_budget_gb"] is not None:  # the job's own budget, within the device
        budget = min(int(kpm["memory_budget_gb"] * 2**30), int(spec["memory_gb"] * 1e9))
    plans = []
    for key, n in counts.items():
        plan = plan_kubo(probe, left=tuple(kpm["left"]), right=kpm["right"], num_moments=N, trace=key,
                         seed=kpm["seed"], vectors_per_batch=kpm["vectors_per_batch"], backend="cpu",
                         dtype=kpm["dtype"], scaling=scaling, estimator=kpm.get("estimator", "plain"))
        full = replace(plan, dim=int(round(plan.dim * ratio)), nnz=int(round(plan.nnz * ratio)),
                       operator_matrix_bytes=plan.operator_matrix_bytes * ratio)
        plans.append((full.retarget(gpu=gpu, memory_budget=budget, operator_route="stencil" if gpu else None), n))
    return plans, tasks


def job_resources(config, *, gpu: bool = True, device: str = "H100", ranks_per_node: int = 4,
                  probe_shape=PROBE_SHAPE) -> dict:
    """``{tasks, gpu, runtime, mem_mb}`` of the ``gpukpm moments`` job ``config`` for a batch system, from the
    plan's cost model (:func:`gpukpm.engine.plan.plan_kubo`), before anything is built at full size.

    The job is planned on a ``probe_shape`` lattice of the same model, operators, N, trace, estimator and
    batch, and the plan is scaled to the job's lattice (D and nnz are proportional to the cells of a
    periodic lattice) and retargeted to the device (half its memory as the block budget), so its SpMV
    count, GEMM flops and bytes are the job's.  With T tasks on K = min(T, ranks_per_node) ranks
    (one GPU each):

        runtime (min) = ⌈S · ⌈T/K⌉ · t_task / 60⌉ + STARTUP_MIN,  at least MIN_RUNTIME_MIN,
        t_task        = roofline seconds of one task (:func:`gpu_time`: nominal ``device``, or
                        :data:`NOMINAL_CPU_RANK` on the CPU), S = :data:`RESOURCE_SAFETY`,
        mem_mb        = ⌈1.5 · (K · (4 · (1 + n_ops) · M_csr + held_cpu) + samples) / 2²⁰⌉ + BASE_MEM_MB,

    with M_csr the CSR bytes of H (the host builds H and the operators, SciPy temporaries ×4), held_cpu
    the plan's arrays on a CPU rank (0 on a GPU), and samples = 2 · V · n_left · N² · 16 (the job's μ
    samples, merged on rank 0).
    """
    from gpukpm.run.config import load_config

    cfg = load_config(config)
    kpm = cfg["kpm"]
    spec = DEVICES[device] if gpu else NOMINAL_CPU_RANK
    plans, tasks = full_size_plans(cfg, gpu=gpu, device=device, probe_shape=probe_shape)
    seconds = max(gpu_time(plan, spec)["seconds"] for plan, _ in plans)
    held = 0 if gpu else max(plan.cost.memory_bytes for plan, _ in plans)
    vectors = sum(n * (plan.dim if plan.trace == "exact" else plan.num_vectors) for plan, n in plans)
    plan = plans[0][0]
    csr_bytes = plan.nnz * (np.dtype(kpm["dtype"]).itemsize + 4) + 4 * (plan.dim + 1)
    N = plan.num_moments
    ranks = max(1, min(len(tasks), int(ranks_per_node)))
    runtime = max(MIN_RUNTIME_MIN, math.ceil(RESOURCE_SAFETY * math.ceil(len(tasks) / ranks) * seconds / 60.0)
                  + STARTUP_MIN)
    num_left = len(kpm["left"])
    build = 4.0 * (1 + num_left + 1) * csr_bytes + held
    samples = 2.0 * vectors * num_left * N**2 * 16
    mem_mb = math.ceil(RESOURCE_SAFETY_MEM * (ranks * build + samples) / 2**20) + BASE_MEM_MB
    return {"tasks": ranks, "gpu": ranks if gpu else 0, "runtime": int(runtime), "mem_mb": int(mem_mb)}


def kspace_job_resources(*, num_points: int, bands: int, num_moments: int, gpu: bool = True) -> dict:
    """``{tasks, gpu, runtime, mem_mb}`` of one k-space moments job (one process, one GPU): an upper bound
    that assumes every k point is kept — every point's bound and ``eigh`` (≈ 200·n³ flops) plus the
    pairs' Chebyshev tables (≈ 8·N·n² flops), at a tenth of :data:`NOMINAL_CPU_RANK`'s or the H100's
    nominal FP64 rate (small batched kernels), times :data:`RESOURCE_SAFETY`; memory: the engine's own
    plan takes half the free device memory, the host holds a grid chunk and the records (≈ 4 GB)."""
    rate = (DEVICES["H100"] if gpu else NOMINAL_CPU_RANK)["fp64_tflops"] * 1e12 / 10
    flops = num_points * (200.0 * bands**3 + 8.0 * num_moments * bands**2)
    runtime = max(MIN_RUNTIME_MIN, math.ceil(RESOURCE_SAFETY * flops / rate / 60.0) + STARTUP_MIN)
    return {"tasks": 1, "gpu": 1 if gpu else 0, "runtime": int(runtime), "mem_mb": 4000 + BASE_MEM_MB}


def production_trace(plan: dict, realisations: int, min_trace: int = 1, max_trace: int | None = None) -> int | None:
    """Vectors per realisation of the production jobs from a ``gpukpm plan --pilot`` record:
    ``clip(⌈samples / realisations⌉, min_trace, max_trace)`` (the target error is on the ensemble mean of
    ``realisations``); None when the pilot could not size it (its peaks are zero)."""
    samples = (plan.get("sizing") or {}).get("samples")
    if samples is None:
        return None
    trace = max(int(min_trace), math.ceil(samples / max(int(realisations), 1)))
    return trace if max_trace is None else min(trace, int(max_trace))


def command(args) -> int:
    """``gpukpm plan`` (called by :mod:`gpukpm.run.cli`)."""
    from gpukpm.run import io

    devices = [d.strip() for d in args.devices.split(",") if d.strip()] if args.devices else []
    unknown = [d for d in devices if d not in DEVICES]
    if unknown:
        raise UsageError(f"--devices: unknown {unknown}; known: {sorted(DEVICES)}")
    record = plan_job(args.config, target_rel_error=args.target_rel_error, pilot=args.pilot, devices=devices,
                      calibration=args.calibration, recalibrate=args.recalibrate,
                      peak_window=None if args.peak_window is None else (min(args.peak_window), max(args.peak_window)))
    print(format_plan(record))
    if args.json:
        io.atomic_text(args.json, io.to_json(record) + "\n")
    return 0
