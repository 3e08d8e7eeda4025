r"""Responses of one system for every magnetisation configuration (input of the torque fit).

What does not depend on m̂ is shared by all configurations, which is what
makes differences between configurations meaningful:

* the disorder realisation (keyed by (seed, realisation), independent of m̂);
* the random trace vectors (keyed by (seed, realisation, vector));
* the rescaling (a, b) and N: :func:`shared_rescaling`, the workflow's
  (:func:`gpukpm.engine.spectrum.sweep_rescaling`: ``kpm.bounds``, or Gershgorin of the
  exchange-free model widened by |J|/2 + W/2, which holds for every m̂ by Weyl).

Each magnetisation is the ``gpukpm moments`` configuration :func:`magnetisation_config`,
computed by :func:`gpukpm.run.parallel.compute_tasks` (the tasks of ``run_moments``, in memory):
``gpukpm torques-run`` and the workflow's per-magnetisation moments jobs share one path and
give the same samples.

The result is S_A(m̂; ε_F) for A = s_x, s_y, s_z, shaped
(configurations, 3, energies), with standard errors, per Kubo part.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np

from gpukpm.response import kernels
from gpukpm.engine.backend import get_backend
from gpukpm.run.config import build_model, energy_grid
from gpukpm.response.kubo import kubo_response
from gpukpm.engine.progress import Progress
from gpukpm.engine.spectrum import Rescaling, sweep_rescaling
from gpukpm.run.parallel import compute_tasks
from gpukpm.engine.stats import EXACT_TRACES
from gpukpm.torque.decomposition import magnetizations

__all__ = ["ConfigurationResponses", "run_configurations", "shared_rescaling", "magnetisation_config",
           "SPIN_COMPONENTS"]

SPIN_COMPONENTS = ("sx", "sy", "sz")


@dataclass
class ConfigurationResponses:
    magnetizations: np.ndarray  # (C, 3)
    energies: np.ndarray  # (E,)
    values: dict  # part -> (C, 3, E)
    stderr: dict  # part -> (C, 3, E)
    samples: dict = field(default_factory=dict)  # part -> (S, C, 3, E): per random vector (or exact sample)
    sample_realisations: np.ndarray | None = None  # (S,)
    exact: bool = False  # exact trace or k space: one exact sample
    metadata: dict = field(default_factory=dict)


def _num_moments(cfg: dict, scaling: Rescaling | None) -> int:
    """N from ``kpm.num_moments``, or from ``kpm.eta`` and the rescaling (real space)."""
    kpm = cfg["kpm"]
    if kpm["num_moments"] is not None:
        return kpm["num_moments"]
    if scaling is None:
        raise ValueError("kpm.eta needs a real-space system (or give kpm.num_moments for k space)")
    return kernels.num_moments_for(cfg["response"]["kernel"], kpm["eta"], scaling.a,
                                   cfg["response"]["lorentz_lambda"])


def shared_rescaling(cfg: dict, model) -> tuple[Rescaling | None, int]:
    """One rescaling and N for every magnetisation (real space), as the workflow's moments jobs get them:
    :func:`gpukpm.engine.spectrum.sweep_rescaling` for this W (``kpm.bounds``, or Gershgorin of the
    exchange-free model widened by |J|/2 + W/2, which holds for every m̂), N from ``kpm.num_moments`` or
    ``kpm.eta``.  k space: ``(None, kpm.num_moments)``."""
    kpm = cfg["kpm"]
    if cfg["system"]["shape"] is None:
        return None, _num_moments(cfg, None)
    return sweep_rescaling(model, [cfg["system"]["disorder"]], num_moments=kpm["num_moments"], eta=kpm["eta"],
                           kernel=cfg["response"]["kernel"], lorentz_lambda=cfg["response"]["lorentz_lambda"],
                           bounds=kpm["bounds"])


def magnetisation_config(cfg: dict, magnetization, scaling: Rescaling, num_moments: int) -> dict:
    """The ``gpukpm moments`` configuration of one magnetisation of ``cfg`` (real space): the model at m̂,
    s_x, s_y, s_z | ĵ_x, the shared rescaling as ``kpm.bounds`` and N — the shape of the workflow's jobs."""
    out = copy.deepcopy(cfg)
    out["model"] = dict(cfg["model"], magnetization=[float(v) for v in magnetization])
    out["kpm"].update(left=list(SPIN_COMPONENTS), right="jx", num_moments=int(num_moments), eta=None,
                      bounds=[float(scaling.emin), float(scaling.emax)])  # sweep_rescaling's bounds, a and b from them
    return out


def _moments_for(cfg: dict, model, magnetization, scaling: Rescaling | None, num_moments: int, backend):
    """Moments of one magnetisation: real space (every task, as ``gpukpm moments`` runs them) or k space."""
    if cfg["system"]["shape"] is not None:
        return compute_tasks(magnetisation_config(cfg, magnetization, scaling, num_moments), scaling, num_moments,
                             backend=backend)
    from gpukpm.engine.kspace import kspace_moments

    ks = cfg["kspace"]
    return kspace_moments(model.with_magnetization(tuple(magnetization)), grid=ks["grid"], window=ks.get("window"),
                          chunk_size=ks.get("chunk_size"), left=SPIN_COMPONENTS, right="jx",
                          num_moments=num_moments, backend=backend, progress=False)


def run_configurations(cfg: dict, *, backend=None, progress: bool = True) -> ConfigurationResponses:
    """S(m̂; ε_F) for the magnetisations of ``torque.order`` of a validated configuration."""
    be = get_backend(backend or cfg["backend"])
    base = build_model(cfg["model"])
    if cfg["response"]["energies"] is None:
        raise ValueError("response.energies is required to compute the responses of the configurations")
    energies = energy_grid(cfg["response"]["energies"])
    mags = magnetizations(cfg["torque"]["order"])
    parts = cfg["response"]["parts"]
    scaling, N = shared_rescaling(cfg, base)
    values = {p: np.empty((len(mags), 3, len(energies))) for p in parts}
    errors = {p: np.empty_like(values[p]) for p in parts}
    samples = {p: [] for p in parts}
    bar = Progress(len(mags), "magnetisation configurations", "configs", enabled=progress)
    t0 = time.perf_counter()
    for c, m in enumerate(mags):
        moments = _moments_for(cfg, base, m, scaling, N, be)
        for p in parts:
            resp = kubo_response(moments, energies, kernel=cfg["response"]["kernel"], part=p,
                                 temperature=cfg["response"]["temperature"],
                                 lorentz_lambda=cfg["response"]["lorentz_lambda"])
            values[p][c], errors[p][c] = resp.values, resp.stderr
            samples[p].append(resp.samples)
        bar.advance()
    meta = dict(model=cfg["model"], order=cfg["torque"]["order"], wall_time=time.perf_counter() - t0,
                backend=be.name, kernel=cfg["response"]["kernel"], num_moments=N,
                rescaling=None if scaling is None else dict(a=scaling.a, b=scaling.b))
    return ConfigurationResponses(mags, energies, values, errors,
                                  samples={p: np.stack(v, axis=1) for p, v in samples.items()},
                                  sample_realisations=moments.sample_realisations,
                                  exact=moments.trace in EXACT_TRACES, metadata=meta)
