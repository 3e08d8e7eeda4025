r"""Distributed, resumable 2D-moment runs: MPI task split, one GPU per node-local rank.

:func:`run_moments` is what ``gpukpm moments CONFIG.yaml -o out.h5`` calls, as
one process or under ``mpiexec -n K`` / ``srun``.  The design:

Tasks
    One run is a fixed, ordered list of tasks (:func:`make_tasks`): for every
    realisation of ``system.realisations`` (in config order), the random
    vectors ``0 … R−1`` in chunks of ``kpm.vectors_per_task`` (default: all R
    in one task); with ``kpm.trace: exact`` one task per realisation.  The
    list depends on the configuration only, never on the number of ranks.
    Vector ``v`` of realisation ``r`` is keyed by ``(seed, r, v)``
    (:mod:`gpukpm.models.random`) and the disorder by ``(seed, r)``, so a task gives
    the same numbers wherever it runs.

Assignment
    The tasks still to do are cut into ``size`` contiguous slices, slice k for
    rank k (:func:`assign_tasks`): deterministic, balanced to one task, and a
    rank's tasks share realisations, so each rank builds only the realisations
    it needs, each once.  On resume only the unfinished tasks are dealt out,
    so a rerun with any number of ranks balances the remaining work.

One rescaling for the whole run
    Samples can only be averaged if they share (a, b).  :func:`run_scaling`
    takes ``kpm.bounds`` when given; otherwise it computes the padded Lanczos
    bounds of the *pristine* supercell (clamped to its rigorous Gershgorin
    discs, :func:`gpukpm.engine.spectrum.rescaling`, on the CPU so every machine gets
    the same numbers) and widens them by ``W/2`` on each side.  This is rigorous
    for every realisation: Anderson disorder adds a diagonal V with
    ‖V‖ ≤ W/2, and by Weyl's inequality every eigenvalue of H₀ + V lies within
    W/2 of the spectrum of H₀.  It is computed once, by rank 0, stored in the
    task folder's manifest and reused on resume; with W = 0 it equals the
    rescaling :func:`~gpukpm.engine.realspace.kubo_moments` chooses by itself.
    ``emin``/``emax`` are the pristine Ritz edges widened by W/2.

Checkpoints and resume
    Each finished task is written atomically (:func:`gpukpm.run.io.save_moments`)
    to ``OUTPUT.tasks/task-00012.h5``; its provenance carries the run
    fingerprint and the task's identity.  The fingerprint
    (:func:`config_fingerprint`) is a SHA-256 of the canonical JSON of every
    setting that changes the moments: the model (normalised through
    :func:`~gpukpm.run.config.build_model`, so defaults written out or left
    implicit hash alike), ``system``, and ``kpm`` without the tuning knobs
    ``block_size``, ``vectors_per_batch`` and ``memory_budget_gb`` (moments do
    not depend on them beyond round-off); ``backend``, ``response``,
    ``torque``, ``dos`` and ``kspace`` are left out, except the kernel when
    ``kpm.eta`` chooses N.  Rerunning the same command skips every task whose
    file is present and matches, computes the rest, and says how many of each
    (log line and provenance); an output already complete for the same
    configuration is left as it is.  A task folder or a finished output from a
    different configuration is refused (:class:`ResumeMismatch`, naming the
    settings that differ); ``resume=False`` (``--no-resume``) discards them.
    One job per output path at a time.
    A task of several vector batches (more random vectors than ``kpm.vectors_per_batch``,
    default 1) also checkpoints every batch, ``OUTPUT.tasks/task-00012.part-0003.h5``: a job
    killed inside a task recomputes only its unfinished batches (the batch's moments do not
    depend on the others, so the result is the same bit for bit); the parts are removed once
    the task file is written.

Merge
    Rank 0 reads the task files in task order into ONE moments file at
    ``output`` (samples concatenated in that order), so 1, 2 or 3 ranks, and a
    resumed run, give the same samples bit for bit on one machine (only the
    timing provenance differs) as long as the Chebyshev block size is the same
    (``kpm.block_size`` set, or a memory budget that does not bind; else they
    agree to round-off).  Rank 0 holds all samples in memory while merging.
    Provenance: the configuration, fingerprint,
    rescaling policy, ranks (host, node-local rank, backend, device), every
    task's rank, host, device and times, SpMV/GEMM times summed, and the
    computed/skipped task counts.  The task folder is then removed, unless
    ``keep_tasks=True`` or ``GPUKPM_KEEP_TASKS=1``.

Devices
    The node-local rank comes from ``Split_type(COMM_TYPE_SHARED)``; with a GPU
    backend rank ℓ uses device ``ℓ mod n_devices`` of the devices it sees
    (:func:`device_for_rank`; under SLURM's per-task GPU binding each rank sees
    its own GPU as device 0), chosen before any CUDA call so no rank opens a
    context on another rank's GPU (:func:`select_backend`); more ranks than
    devices is allowed and warned about.  The default memory
    budget (half the free memory) is divided among the ranks that share a
    device or, on the CPU, a node; ``kpm.memory_budget_gb`` is per rank.

Waiting
    Ranks waiting for rank 0 (planning, merge) or for slower ranks (the final
    gather) sleep-poll a non-blocking barrier every 5 ms instead of sitting in
    MPI's busy-waiting collectives, so they do not steal the cores of working
    ranks when a node is oversubscribed (more ranks than cores, or CPU threads
    of GPU ranks).

Failures
    A rank whose task raises prints ``rank k/K (host) failed in task i
    (realisation r, vectors …)`` and the traceback to stderr and calls
    ``MPI_Abort``: the whole job stops with a non-zero exit and no output file
    (finished task files stay for a resume).  Errors found while planning
    (configuration, resume mismatch) are broadcast by rank 0 and raised on
    every rank.  In a single process the failure is raised as
    :class:`TaskFailed`.

Environment
    ``GPUKPM_MPI=0``               never import mpi4py (serial stand-in);
    ``GPUKPM_KEEP_TASKS=1``        keep ``OUTPUT.tasks/`` after the merge
    (read by :mod:`gpukpm.envflags`; fault injection lives in ``tests/faults.py``).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from gpukpm import __version__
from gpukpm.atomic import TEMPORARY_GLOB
from gpukpm.engine import cpu_kernels
from gpukpm import envflags
from gpukpm.run import io
from gpukpm.engine.backend import device_count, get_backend, resolve_name
from gpukpm.run.config import ConfigError, build_model, load_config
from gpukpm.errors import RunFailure, UsageError
from gpukpm.response.kernels import num_moments_for
from gpukpm.engine.plan import DEFAULT_STOCHASTIC_BATCH
from gpukpm.engine.realspace import DEFAULT_MEMORY_FRACTION, kubo_moments
from gpukpm.engine.moments import Moments
from gpukpm.engine.progress import Progress
from gpukpm.engine.spectrum import Rescaling, rescaling, margin_for

__all__ = ["SerialComm", "MPIComm", "mpi_world", "Task", "make_tasks", "assign_tasks", "device_for_rank",
           "select_backend", "physical_devices", "run_scaling", "fingerprinted_config", "config_fingerprint", "tasks_folder",
           "run_moments", "compute_tasks", "ResumeMismatch", "TaskFailed"]

_KPM_TUNING = ("block_size", "vectors_per_batch", "memory_budget_gb")
_MANIFEST = "manifest.json"
_POLL_S = 0.005  # idle ranks poll every 5 ms


class ResumeMismatch(UsageError):
    """Existing task files or output belong to a different configuration."""


class TaskFailed(RunFailure):
    """A task raised (single-process runs; under MPI the job is aborted instead)."""


# ----------------------------------------------------------------------------- communicators
class SerialComm:
    """Stand-in for ``MPI.COMM_WORLD`` in one process: rank 0 of 1."""

    rank = 0
    size = 1
    library = "none (serial)"

    def bcast(self, obj, root: int = 0):
        return obj

    def gather(self, obj, root: int = 0):
        return [obj]

    def node_local(self) -> tuple[int, int]:
        """(node-local rank, ranks on this node)."""
        return 0, 1

    def node_local_values(self, value) -> list:
        """``value`` of every rank on this node, in node-local rank order."""
        return [value]

    @property
    def host(self) -> str:
        return socket.gethostname()


class MPIComm:
    """The few operations gpukpm needs, on an mpi4py communicator."""

    def __init__(self, comm, mpi):
        self._comm = comm
        self._mpi = mpi
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.library = mpi.Get_library_version().strip().splitlines()[0].strip()

    def _idle_wait(self) -> None:
        """Sleep-poll a barrier: MPI's blocking collectives busy-wait, stealing shared cores."""
        request = self._comm.Ibarrier()
        while not request.Test():
            time.sleep(_POLL_S)

    def bcast(self, obj, root: int = 0):
        self._idle_wait()
        return self._comm.bcast(obj, root=root)

    def gather(self, obj, root: int = 0):
        self._idle_wait()
        return self._comm.gather(obj, root=root)

    def node_local(self) -> tuple[int, int]:
        """(node-local rank, ranks on this node), from ``Split_type(COMM_TYPE_SHARED)`` (collective)."""
        local = self._comm.Split_type(self._mpi.COMM_TYPE_SHARED, key=self.rank)
        out = local.Get_rank(), local.Get_size()
        local.Free()
        return out

    def node_local_values(self, value) -> list:
        """``value`` of every rank on this node, in node-local rank order (collective, no CUDA)."""
        local = self._comm.Split_type(self._mpi.COMM_TYPE_SHARED, key=self.rank)
        values = local.allgather(value)
        local.Free()
        return values

    def abort(self, code: int = 1) -> None:
        """``MPI_Abort`` on the whole job; it may return before the launcher kills us, so then exit."""
        self._comm.Abort(code)
        os._exit(code)

    @property
    def host(self) -> str:
        return self._mpi.Get_processor_name()


def mpi_world():
    """``COMM_WORLD`` wrapped in :class:`MPIComm`, or :class:`SerialComm` without MPI.

    Serial when ``GPUKPM_MPI=0``, when mpi4py is missing (ImportError) or when
    it cannot load an MPI library (mpi4py raises RuntimeError then).  Outside
    a launcher a loaded MPI runs as a singleton (size 1).
    """
    if not envflags.get("GPUKPM_MPI"):
        return SerialComm()
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError):
        return SerialComm()
    return MPIComm(MPI.COMM_WORLD, MPI)


# ----------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class Task:
    """Realisation ``realisation``, random vectors ``vectors`` (``None``: exact trace)."""

    index: int
    realisation: int
    vectors: tuple[int, ...] | None

    @property
    def filename(self) -> str:
        return f"task-{self.index:05d}.h5"

    @property
    def num_samples(self) -> int:
        return 1 if self.vectors is None else len(self.vectors)

    def describe(self) -> str:
        if self.vectors is None:
            what = "exact trace"
        elif len(self.vectors) == 1:
            what = f"vector {self.vectors[0]}"
        else:
            what = f"vectors {self.vectors[0]}-{self.vectors[-1]}"
        return f"task {self.index} (realisation {self.realisation}, {what})"


def make_tasks(cfg: dict) -> list[Task]:
    """The ordered task list of a validated configuration (module doc)."""
    kpm = cfg["kpm"]
    tasks = []
    for r in cfg["system"]["realisations"]:
        if kpm["trace"] == "exact":
            tasks.append(Task(len(tasks), int(r), None))
            continue
        R = int(kpm["trace"])
        chunk = kpm["vectors_per_task"] or R
        for v0 in range(0, R, chunk):
            tasks.append(Task(len(tasks), int(r), tuple(range(v0, min(v0 + chunk, R)))))
    return tasks


def assign_tasks(tasks: list, size: int) -> list[list]:
    """Contiguous, balanced slices of ``tasks``, one per rank (rank k gets entry k)."""
    n = len(tasks)
    return [list(tasks[k * n // size:(k + 1) * n // size]) for k in range(size)]


def device_for_rank(local_rank: int, local_size: int, num_devices: int) -> tuple[int, int]:
    """``(device id, ranks sharing it)`` for node-local rank ``local_rank`` of ``local_size``."""
    if num_devices < 1:
        raise ValueError(f"num_devices must be >= 1, got {num_devices}")
    device = local_rank % num_devices
    sharing = len(range(device, local_size, num_devices))
    return device, sharing


def _visible(value: str | None) -> list[str] | None:
    """The entries of a ``CUDA_VISIBLE_DEVICES`` value (None when unset)."""
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def physical_devices(local_visible: list, num_devices: int) -> list:
    """Per node-local rank ℓ, a key of the physical GPU it picks (``ℓ mod`` its visible count).

    ``local_visible[ℓ]`` is rank ℓ's ``CUDA_VISIBLE_DEVICES`` (None: unset, all ``num_devices``
    GPUs of the node).  SLURM often binds one GPU per task, so every rank sees "device 0" but a
    different GPU; ranks share a GPU only when their keys are equal.
    """
    keys = []
    for rank, value in enumerate(local_visible):
        entries = _visible(value)
        count = num_devices if entries is None else len(entries)
        index = rank % max(count, 1)
        keys.append(("ordinal", index) if entries is None else ("visible", entries[index] if entries else None))
    return keys


def select_backend(name, local_rank: int, local_size: int, local_visible: list | None = None):
    """The backend of this rank and how many ranks share its memory.

    GPU: the device is chosen *before any CUDA call* — node-local rank ``mod`` the number of devices
    this process sees (``cudaGetDeviceCount`` opens no context) — exported as ``GPUKPM_DEVICE`` for
    code that asks :func:`get_backend` later, and only then probed and made current, so no rank
    opens a context on a device it does not own (a context costs ≈ 0.3–0.5 GB and is refused under
    the ``EXCLUSIVE_PROCESS`` compute mode).  ``local_visible`` (every node-local rank's
    ``CUDA_VISIBLE_DEVICES``, from :meth:`MPIComm.node_local_values`) tells ranks bound to
    different GPUs by SLURM apart from ranks that really share one; a warning when several ranks
    share a device.  CPU: all ``local_size`` ranks of the node share its memory; a warning when they
    would all start a full set of BLAS threads (``OMP_NUM_THREADS`` unset).
    """
    requested = resolve_name(name)
    be = None
    if requested != "cpu":
        num_devices = device_count()
        if num_devices > 0:
            device, sharing = device_for_rank(local_rank, local_size, num_devices)
            if local_visible is not None and len(local_visible) == local_size:
                keys = physical_devices(local_visible, num_devices)
                sharing = keys.count(keys[local_rank])
            os.environ["GPUKPM_DEVICE"] = str(device)
            be = get_backend(requested, device_id=device)
        else:
            be = get_backend(requested)  # raises for 'gpu' (saying why); 'auto' falls back to the CPU
            device, sharing, num_devices = getattr(be, "device_id", 0), 1, 1
    if be is None or not be.is_gpu:
        be = get_backend("cpu")
        if local_size > 1 and local_rank == 0 and not os.environ.get("OMP_NUM_THREADS"):
            warnings.warn(f"{local_size} ranks share this node's CPUs and OMP_NUM_THREADS is unset: BLAS threads "
                          f"oversubscribe the cores; set OMP_NUM_THREADS to (cores per node)/{local_size}",
                          RuntimeWarning, stacklevel=2)
        if local_size > 1 and not os.environ.get("NUMBA_NUM_THREADS"):
            # Numba's parallel loops spin-wait: two ranks with a full set of threads each on the same
            # cores ran the demo's steps 6× slower than one rank (measured); give each rank its share
            cpu_kernels.limit_threads(max(1, (os.cpu_count() or 1) // local_size))
        return be, local_size
    if sharing > 1 and local_rank == device:
        warnings.warn(f"{local_size} ranks on this node share {num_devices} GPU(s): {sharing} ranks on device "
                      f"{device}; prefer one rank per GPU", RuntimeWarning, stacklevel=2)
    return be, sharing


# ----------------------------------------------------------------------------- bounds and fingerprint
def run_scaling(cfg: dict) -> Rescaling:
    """One rescaling valid for every realisation of the run (module doc: pristine bounds ± W/2)."""
    kpm, system = cfg["kpm"], cfg["system"]
    epsilon = margin_for(kpm["num_moments"])
    if kpm["bounds"] is not None:
        return rescaling(None, bounds=kpm["bounds"], epsilon=epsilon)
    pristine = build_model(cfg["model"]).real_space(shape=tuple(system["shape"]), disorder=0.0, seed=kpm["seed"])
    base = rescaling(pristine.hamiltonian, backend="cpu", epsilon=epsilon)
    half_w = 0.5 * system["disorder"]
    return Rescaling(a=base.a + half_w / (1.0 - base.epsilon), b=base.b, emin=base.emin - half_w,
                     emax=base.emax + half_w, epsilon=base.epsilon)


def fingerprinted_config(cfg: dict) -> dict:
    """The part of a validated configuration that determines the moments (module doc)."""
    kpm = {k: v for k, v in cfg["kpm"].items() if k not in _KPM_TUNING}
    out = {"model": build_model(cfg["model"]).to_dict(), "system": cfg["system"], "kpm": kpm}
    if kpm["eta"] is not None:
        out["eta_kernel"] = {"kernel": cfg["response"]["kernel"], "lorentz_lambda": cfg["response"]["lorentz_lambda"]}
    return json.loads(io.to_json(out))


def config_fingerprint(cfg: dict) -> str:
    """SHA-256 (hex) of the canonical JSON of :func:`fingerprinted_config`."""
    return hashlib.sha256(io.to_json(fingerprinted_config(cfg)).encode()).hexdigest()


def _flatten(d, prefix="") -> dict:
    out = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _differences(old: dict, new: dict) -> str:
    a, b = _flatten(old), _flatten(new)
    diffs = [f"{k}: {a.get(k, '<unset>')!r} there, {b.get(k, '<unset>')!r} now"
             for k in sorted(set(a) | set(b)) if a.get(k, "<unset>") != b.get(k, "<unset>")]
    return "; ".join(diffs) or "fingerprint differs"


def tasks_folder(output) -> Path:
    """``OUTPUT.tasks``: where the task files of ``output`` live."""
    output = Path(output)
    return output.with_name(output.name + ".tasks")


# ----------------------------------------------------------------------------- planning (rank 0)
@dataclass(frozen=True)
class _Plan:
    fingerprint: str
    scaling: Rescaling | None  # None when the output is already complete
    num_moments: int | None
    tasks: tuple
    finished: frozenset
    complete: bool


def _log(comm, message: str, enabled: bool) -> None:
    if enabled and not envflags.get("GPUKPM_QUIET"):
        print(f"gpukpm[{comm.rank}/{comm.size}] {message}", file=sys.stderr, flush=True)


def _plan(cfg: dict, output: Path, resume: bool, comm, progress: bool) -> _Plan:
    """Rank 0: fingerprint, rescaling, task list and finished tasks; refuse mixing configurations."""
    fp_cfg = fingerprinted_config(cfg)
    fp = config_fingerprint(cfg)
    folder = tasks_folder(output)
    tasks = tuple(make_tasks(cfg))
    if resume and output.exists():
        try:
            prov = io.read_provenance(output)
        except OSError as exc:
            raise ResumeMismatch(f"{output} exists and is not a readable gpukpm file ({exc}); remove it or "
                                 "rerun with --no-resume to overwrite it") from None
        if prov.get("fingerprint") != fp:
            raise ResumeMismatch(f"{output} exists and was computed from a different configuration "
                                 f"({_differences(prov.get('fingerprinted', {}), fp_cfg)}); choose another "
                                 "output path, remove it, or rerun with --no-resume to overwrite it")
        _log(comm, f"{output} is already complete for this configuration: nothing to do", progress)
        return _Plan(fp, None, None, tasks, frozenset(t.index for t in tasks), True)
    if not resume and folder.exists():
        shutil.rmtree(folder)
    manifest = folder / _MANIFEST
    if manifest.exists():
        meta = json.loads(manifest.read_text())
        if meta["fingerprint"] != fp:
            raise ResumeMismatch(f"{folder} holds tasks of a different configuration "
                                 f"({_differences(meta['fingerprinted'], fp_cfg)}); choose another output path, "
                                 f"remove {folder}, or rerun with --no-resume to discard it")
        scaling = Rescaling(**meta["scaling"])
    else:
        if folder.exists() and any(folder.glob("task-*.h5")):
            raise ResumeMismatch(f"{folder} holds task files but no {_MANIFEST}; remove it or rerun with --no-resume")
        scaling = run_scaling(cfg)
        folder.mkdir(parents=True, exist_ok=True)
        io.atomic_text(manifest, json.dumps({
            "fingerprint": fp, "fingerprinted": fp_cfg, "num_tasks": len(tasks), "gpukpm": __version__,
            "scaling": {k: getattr(scaling, k) for k in ("a", "b", "emin", "emax", "epsilon")},
        }, indent=1, sort_keys=True))
    for stale in folder.glob(TEMPORARY_GLOB.format(name="task-*")):  # left by a job killed mid-write
        stale.unlink()
    kpm = cfg["kpm"]
    N = kpm["num_moments"] or num_moments_for(cfg["response"]["kernel"], kpm["eta"], scaling.a,
                                              cfg["response"]["lorentz_lambda"])
    finished = set()
    for task in tasks:
        path = folder / task.filename
        if not path.exists():
            continue
        try:
            record = io.read_provenance(path).get("task", {})
        except OSError as exc:
            _log(comm, f"{path} is unreadable ({exc}): {task.describe()} is recomputed", True)
            continue
        vectors = None if task.vectors is None else list(task.vectors)
        if (record.get("fingerprint"), record.get("index"), record.get("realisation"), record.get("vectors")) != \
                (fp, task.index, task.realisation, vectors):
            raise ResumeMismatch(f"{path} does not belong to {task.describe()} of this configuration "
                                 "(fingerprint or task identity differs); remove it or rerun with --no-resume")
        finished.add(task.index)
    return _Plan(fp, scaling, int(N), tasks, frozenset(finished), False)


# ----------------------------------------------------------------------------- per-rank work
def _memory_budget(cfg: dict, backend, sharing: int) -> int:
    gb = cfg["kpm"]["memory_budget_gb"]
    if gb is not None:
        return int(gb * 2**30)
    return int(DEFAULT_MEMORY_FRACTION * backend.free_memory() / sharing)


def _compute(task: Task, cfg: dict, plan: _Plan, system, backend, budget: int, folder: Path | None = None) -> Moments:
    """The moments of one task; a task of several vector batches checkpoints each batch (module doc)."""
    kpm = cfg["kpm"]
    common = dict(
        left=tuple(kpm["left"]), right=kpm["right"], num_moments=plan.num_moments, seed=kpm["seed"],
        block_size=kpm["block_size"], realisation=task.realisation, vectors_per_batch=kpm["vectors_per_batch"],
        backend=backend, dtype=kpm["dtype"], scaling=plan.scaling, memory_budget=budget, progress=False,
        estimator=kpm.get("estimator", "plain"),
    )
    if task.vectors is None:
        return kubo_moments(system, trace="exact", vectors=None, **common)
    batch = kpm["vectors_per_batch"] or DEFAULT_STOCHASTIC_BATCH
    chunks = [task.vectors[i:i + batch] for i in range(0, len(task.vectors), batch)]
    if folder is None or len(chunks) == 1:
        return kubo_moments(system, trace=len(task.vectors), vectors=list(task.vectors), **common)
    parts, resumed = [], 0
    for j, chunk in enumerate(chunks):
        path = folder / _part_filename(task, j)
        part = _load_part(path, task, plan, chunk)
        if part is None:
            part = kubo_moments(system, trace=len(chunk), vectors=list(chunk), **common)
            part.provenance["part"] = {"task": task.index, "index": j, "vectors": list(chunk),
                                       "fingerprint": plan.fingerprint}
            io.save_moments(path, part)
        else:
            resumed += 1
        parts.append(part)
    return _join_parts(parts, resumed)


def _part_filename(task: Task, j: int) -> str:
    return f"task-{task.index:05d}.part-{j:04d}.h5"


def _load_part(path: Path, task: Task, plan: _Plan, chunk) -> Moments | None:
    """A finished batch of ``task`` from an earlier (killed) run, or None."""
    if not path.exists():
        return None
    try:
        part = io.load_moments(path)
    except OSError:
        return None  # unreadable: recomputed
    record = part.provenance.get("part", {})
    if (record.get("fingerprint"), record.get("task"), record.get("vectors")) != \
            (plan.fingerprint, task.index, list(chunk)):
        raise ResumeMismatch(f"{path} does not belong to {task.describe()} of this configuration; remove it or "
                             "rerun with --no-resume")
    return part


def _join_parts(parts: list, resumed: int) -> Moments:
    """One task's Moments from its batches (samples in vector order; counts and times summed)."""
    first = parts[0]
    provenance = dict(first.provenance)
    provenance.pop("part", None)
    for key in ("spmv_count", "time_spmv", "time_gemm", "time_total"):
        provenance[key] = sum(p.provenance[key] for p in parts)
    provenance.update(batches=len(parts), batches_resumed=resumed)
    return replace(first, mu_samples=np.concatenate([p.mu_samples for p in parts]),
                   sample_realisations=np.concatenate([p.sample_realisations for p in parts]),
                   sample_vectors=np.concatenate([p.sample_vectors for p in parts]),
                   emin=min(p.emin for p in parts), emax=max(p.emax for p in parts), provenance=provenance)


def compute_tasks(cfg: dict, scaling: Rescaling, num_moments: int, *, backend=None) -> Moments:
    """Every task of a validated configuration, in one process and in memory: the samples (and moments)
    :func:`run_moments` merges into its output, in the same order, without task files.

    ``torque --run`` (:func:`gpukpm.run.configurations.run_configurations`) computes each magnetisation so;
    the workflow's moments jobs run :func:`run_moments` on the same configuration.
    """
    from gpukpm.engine.moments import concatenate

    be = get_backend(backend if backend is not None else cfg["backend"])
    plan = _Plan(None, scaling, int(num_moments), tuple(make_tasks(cfg)), frozenset(), False)
    budget = _memory_budget(cfg, be, 1)
    model = build_model(cfg["model"])
    parts, system, system_id = [], None, None
    for task in plan.tasks:
        if system_id != task.realisation:
            system = model.real_space(shape=tuple(cfg["system"]["shape"]), disorder=cfg["system"]["disorder"],
                                      seed=cfg["kpm"]["seed"], realisation=task.realisation)
            system_id = task.realisation
        parts.append(_compute(task, cfg, plan, system, be, budget))
    return parts[0] if len(parts) == 1 else concatenate(parts)


def _fail(comm, where: str, exc: BaseException):
    """Report a failure naming the rank and stop the job (MPI_Abort with several ranks)."""
    message = (f"gpukpm: rank {comm.rank}/{comm.size} ({comm.host}) failed in {where}: "
               f"{type(exc).__name__}: {exc}")
    if comm.size > 1:
        print(message + "\n" + "".join(traceback.format_exception(exc)), file=sys.stderr, flush=True)
        comm.abort(1)
    raise TaskFailed(message) from exc


def _run_tasks(cfg: dict, plan: _Plan, mine: list, folder: Path, comm, local: tuple, progress: bool) -> dict:
    """Compute this rank's tasks, writing each atomically; returns the rank's record."""
    record = {"rank": comm.rank, "host": comm.host, "local_rank": local[0], "local_size": local[1],
              "tasks": [t.index for t in mine], "time_tasks": 0.0}
    try:
        visible = comm.node_local_values(os.environ.get("CUDA_VISIBLE_DEVICES"))
        backend, sharing = select_backend(cfg["backend"], *local, local_visible=visible)
        budget = _memory_budget(cfg, backend, sharing)
    except Exception as exc:
        _fail(comm, "backend selection", exc)
    info = backend.device_info()
    record.update(backend=backend.name, device_id=backend.device_id if backend.is_gpu else None,
                  device_name=info.get("device_name"))
    model = build_model(cfg["model"])
    system, system_id = None, None
    bar = Progress(len(mine), f"gpukpm[{comm.rank}/{comm.size}] tasks", "tasks", interval=0.0, enabled=progress)
    for done, task in enumerate(mine, start=1):
        try:
            t0 = time.perf_counter()
            if system_id != task.realisation:
                system = model.real_space(shape=tuple(cfg["system"]["shape"]), disorder=cfg["system"]["disorder"],
                                          seed=cfg["kpm"]["seed"], realisation=task.realisation)
                system_id = task.realisation
            t_build = time.perf_counter() - t0
            moments = _compute(task, cfg, plan, system, backend, budget, folder)
            wall = time.perf_counter() - t0
            moments.provenance["task"] = {
                "index": task.index, "realisation": task.realisation,
                "vectors": None if task.vectors is None else list(task.vectors), "fingerprint": plan.fingerprint,
                "rank": comm.rank, "size": comm.size, "host": comm.host, "local_rank": local[0],
                "wall": wall, "time_build": t_build,
            }
            io.save_moments(folder / task.filename, moments)
            for part in folder.glob(f"task-{task.index:05d}.part-*.h5"):
                part.unlink()
        except Exception as exc:
            _fail(comm, task.describe(), exc)
        record["time_tasks"] += wall
        bar.advance()
    return record


# ----------------------------------------------------------------------------- merge (rank 0)
def _merge(cfg: dict, plan: _Plan, folder: Path, records: list, comm, wall: float) -> Moments:
    """One Moments from the task files, samples in task order, with the run's provenance."""
    total = sum(t.num_samples for t in plan.tasks)
    mu = None
    realisations = np.empty(total, dtype=np.int64)
    vectors = np.empty(total, dtype=np.int64)
    computed = sorted(i for r in records for i in r["tasks"])
    task_rows, first = [], None
    s = 0
    for task in plan.tasks:
        part = io.load_moments(folder / task.filename)
        if mu is None:
            first = part
            mu = np.empty((total,) + part.mu_samples.shape[1:], dtype=part.mu_samples.dtype)
        n = part.num_samples
        mu[s:s + n] = part.mu_samples
        realisations[s:s + n] = part.sample_realisations
        vectors[s:s + n] = part.sample_vectors
        s += n
        p, t = part.provenance, part.provenance["task"]
        task_rows.append({
            "index": task.index, "realisation": task.realisation, "vectors": t["vectors"], "rank": t["rank"],
            "size": t["size"], "host": t["host"], "backend": p.get("backend"), "device_id": p.get("device_id"),
            "device_name": p.get("device_name"), "wall": t["wall"], "time_build": t["time_build"],
            "time_spmv": p["time_spmv"], "time_gemm": p["time_gemm"], "spmv_count": p["spmv_count"],
            "block_size": p["block_size"], "computed_now": task.index not in plan.finished,
        })
    parameters = {k: v for k, v in first.parameters.items() if k != "realisation"}
    parameters["realisations"] = list(cfg["system"]["realisations"])
    skipped = sorted(plan.finished)
    provenance = {
        "gpukpm": __version__, "command": "moments", "argv": list(sys.argv),
        "config": cfg, "fingerprint": plan.fingerprint, "fingerprinted": fingerprinted_config(cfg),
        "scaling": {"a": plan.scaling.a, "b": plan.scaling.b, "emin": plan.scaling.emin,
                    "emax": plan.scaling.emax, "epsilon": plan.scaling.epsilon,
                    "policy": "kpm.bounds" if cfg["kpm"]["bounds"] is not None else
                    "pristine Lanczos (Gershgorin-clamped) bounds widened by W/2"},
        "dtype": cfg["kpm"]["dtype"], "num_moments": plan.num_moments,
        "mpi": {"size": comm.size, "library": comm.library},
        "hosts": sorted({r["host"] for r in records}), "ranks": records,
        "backend": records[0]["backend"], "device_name": records[0]["device_name"],
        "tasks": task_rows, "tasks_total": len(plan.tasks), "tasks_computed": len(computed),
        "tasks_skipped": len(skipped), "tasks_computed_ids": computed, "tasks_skipped_ids": skipped,
        "time_spmv": float(sum(r["time_spmv"] for r in task_rows)),
        "time_gemm": float(sum(r["time_gemm"] for r in task_rows)),
        "time_tasks": float(sum(r["wall"] for r in task_rows)), "wall_time": wall,
    }
    return Moments(
        mu_samples=mu, a=first.a, b=first.b, emin=first.emin, emax=first.emax, epsilon=first.epsilon,
        num_orbitals=first.num_orbitals, area=first.area, left=first.left, right=first.right, trace=first.trace,
        sample_realisations=realisations, sample_vectors=vectors, seed=first.seed, hermitian=first.hermitian,
        parameters=parameters, provenance=provenance,
    )


# ----------------------------------------------------------------------------- entry point
def _raise_everywhere(comm, error: Exception | None) -> None:
    """Collective: rank 0 raises ``error``, the other ranks an exception of the same kind and message.

    Only the class family and text travel (an arbitrary exception may not pickle):
    ResumeMismatch, ConfigError and other ValueErrors keep their class, the rest become RuntimeError.
    """
    info = None if error is None else (type(error).__name__, isinstance(error, ValueError), str(error))
    info = comm.bcast(info)
    if info is None:
        return
    if error is not None:
        raise error
    name, is_value_error, message = info
    kind = {"ResumeMismatch": ResumeMismatch, "ConfigError": ConfigError}.get(
        name, ValueError if is_value_error else RuntimeError)
    raise kind(f"{message} (raised on rank 0)")


def run_moments(config, output, *, resume: bool = True, progress: bool = True, comm=None,
                keep_tasks: bool | None = None) -> Path | None:
    """Compute the 2D Kubo moments of a configuration over all ranks into ``output`` (module doc).

    Parameters
    ----------
    config : validated configuration (or a raw mapping / YAML path; validated here) with ``system.shape``.
    output : the moments file to write (HDF5); task files go to ``OUTPUT.tasks/``.
    resume : reuse finished tasks of the same configuration (default); False discards them and any output.
    progress : log lines (per rank) to stderr.
    comm : a communicator from :func:`mpi_world` (default: that).
    keep_tasks : keep the task folder after the merge (default: ``GPUKPM_KEEP_TASKS``).

    Returns ``output`` on rank 0, ``None`` on the other ranks.
    """
    t_start = time.perf_counter()
    cfg = load_config(config)
    if cfg["system"]["shape"] is None:
        raise ConfigError("system.shape is required for real-space moments")
    output = Path(output)
    comm = comm or mpi_world()
    if keep_tasks is None:
        keep_tasks = envflags.get("GPUKPM_KEEP_TASKS")
    folder = tasks_folder(output)

    plan = error = None
    if comm.rank == 0:
        try:
            plan = _plan(cfg, output, resume, comm, progress)
        except Exception as exc:
            error = exc
    _raise_everywhere(comm, error)
    plan = comm.bcast(plan)
    if plan.complete:
        if comm.rank == 0 and folder.exists() and not keep_tasks:  # left by a job killed after its merge
            shutil.rmtree(folder)
        return output if comm.rank == 0 else None

    pending = [t for t in plan.tasks if t.index not in plan.finished]
    mine = assign_tasks(pending, comm.size)[comm.rank]
    if comm.rank == 0:
        _log(comm, f"{len(plan.tasks)} tasks: {len(plan.finished)} finished earlier (skipped), {len(pending)} to "
                   f"compute on {comm.size} rank(s); N = {plan.num_moments}, a = {plan.scaling.a:.6g} eV, "
                   f"b = {plan.scaling.b:.6g} eV", progress)
    local = comm.node_local()
    record = _run_tasks(cfg, plan, mine, folder, comm, local, progress)
    records = comm.gather(record)

    error = None
    if comm.rank == 0:
        try:
            moments = _merge(cfg, plan, folder, records, comm, time.perf_counter() - t_start)
            io.save_moments(output, moments)
            if not keep_tasks:
                shutil.rmtree(folder)
            _log(comm, f"wrote {output}: {len(plan.tasks)} tasks, {len(pending)} computed, {len(plan.finished)} "
                       f"skipped, {moments.num_samples} samples, {comm.size} rank(s)", progress)
        except Exception as exc:
            error = exc
    _raise_everywhere(comm, error)
    return output if comm.rank == 0 else None
