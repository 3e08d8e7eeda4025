r"""Responses of one system for every magnetisation configuration (input of the torque fit).

What does not depend on m̂ is shared by all configurations, which is what
makes differences between configurations meaningful:

* the disorder realisation (keyed by (seed, realisation), independent of m̂);
* the random trace vectors (keyed by (seed, realisation, vector));
* the rescaling (a, b): the exchange term −(J/2) m̂·s has norm |J|/2, so
  rotating m̂ moves every eigenvalue by at most |J| (Weyl); bounds of the first
  configuration padded by |J| hold for all of them.

The result is S_A(m̂; ε_F) for A = s_x, s_y, s_z, shaped
(configurations, 3, energies), with standard errors, per Kubo part.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from gpukpm.response import kernels
from gpukpm.engine.backend import get_backend
from gpukpm.run.config import build_model, energy_grid
from gpukpm.response.kubo import kubo_response
from gpukpm.engine.moments import concatenate
from gpukpm.engine.realspace import kubo_moments
from gpukpm.engine.progress import Progress
from gpukpm.engine.spectrum import Rescaling, margin_for, rescaling
from gpukpm.engine.stats import EXACT_TRACES
from gpukpm.torque.decomposition import magnetizations

__all__ = ["ConfigurationResponses", "run_configurations", "SPIN_COMPONENTS"]

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


def _moments_for(cfg: dict, model, scaling: Rescaling | None, backend):
    """Moments of one magnetisation: real space (all realisations) or k space."""
    kpm = cfg["kpm"]
    common = dict(left=SPIN_COMPONENTS, right="jx", num_moments=_num_moments(cfg, scaling), backend=backend)
    if cfg["system"]["shape"] is not None:
        parts = []
        for r in cfg["system"]["realisations"]:
            system = model.real_space(shape=tuple(cfg["system"]["shape"]), disorder=cfg["system"]["disorder"],
                                      seed=kpm["seed"], realisation=r)
            parts.append(kubo_moments(system, trace=kpm["trace"], seed=kpm["seed"], realisation=r,
                                      block_size=kpm["block_size"], scaling=scaling, dtype=kpm["dtype"],
                                      vectors_per_batch=kpm["vectors_per_batch"], progress=False,
                                      estimator=kpm.get("estimator", "plain"), **common))
        return concatenate(parts)
    from gpukpm.engine.kspace import kspace_moments

    ks = cfg["kspace"]
    return kspace_moments(model, grid=ks["grid"], window=ks.get("window"), chunk_size=ks.get("chunk_size"),
                          bounds=None if scaling is None else (scaling.emin, scaling.emax),
                          progress=False, **common)


def _shared_scaling(cfg: dict, model, backend) -> Rescaling | None:
    """Rescaling valid for every m̂ (real space): first configuration's bounds padded by |J|."""
    if cfg["system"]["shape"] is None:
        return None
    system = model.real_space(shape=tuple(cfg["system"]["shape"]), disorder=cfg["system"]["disorder"],
                              seed=cfg["kpm"]["seed"], realisation=cfg["system"]["realisations"][0])
    epsilon = margin_for(cfg["kpm"]["num_moments"])
    if cfg["kpm"]["bounds"] is not None:
        lo, hi = cfg["kpm"]["bounds"]
    else:
        first = rescaling(system.hamiltonian, backend=backend, epsilon=epsilon)
        pad = abs(getattr(model, "exchange", 0.0)) + 0.5 * cfg["system"]["disorder"]
        lo, hi = first.emin - pad, first.emax + pad
    return rescaling(system.hamiltonian, bounds=(lo, hi), epsilon=epsilon)


def run_configurations(cfg: dict, *, backend=None, progress: bool = True) -> ConfigurationResponses:
    """S(m̂; ε_F) for the magnetisations of ``torque.order`` of a validated configuration."""
    be = get_backend(backend or cfg["backend"])
    base = build_model(cfg["model"])
    if cfg["response"]["energies"] is None:
        raise ValueError("response.energies is required to compute the responses of the configurations")
    energies = energy_grid(cfg["response"]["energies"])
    mags = magnetizations(cfg["torque"]["order"])
    parts = cfg["response"]["parts"]
    scaling = _shared_scaling(cfg, base, be)
    values = {p: np.empty((len(mags), 3, len(energies))) for p in parts}
    errors = {p: np.empty_like(values[p]) for p in parts}
    samples = {p: [] for p in parts}
    bar = Progress(len(mags), "magnetisation configurations", "configs", enabled=progress)
    t0 = time.perf_counter()
    for c, m in enumerate(mags):
        moments = _moments_for(cfg, base.with_magnetization(tuple(m)), scaling, be)
        for p in parts:
            resp = kubo_response(moments, energies, kernel=cfg["response"]["kernel"], part=p,
                                 temperature=cfg["response"]["temperature"],
                                 lorentz_lambda=cfg["response"]["lorentz_lambda"])
            values[p][c], errors[p][c] = resp.values, resp.stderr
            samples[p].append(resp.samples)
        bar.advance()
    meta = dict(model=cfg["model"], order=cfg["torque"]["order"], wall_time=time.perf_counter() - t0,
                backend=be.name, kernel=cfg["response"]["kernel"], num_moments=_num_moments(cfg, scaling))
    return ConfigurationResponses(mags, energies, values, errors,
                                  samples={p: np.stack(v, axis=1) for p, v in samples.items()},
                                  sample_realisations=moments.sample_realisations,
                                  exact=moments.trace in EXACT_TRACES, metadata=meta)
