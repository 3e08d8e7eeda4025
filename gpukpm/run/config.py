"""Run configuration (YAML): reading and validation against :mod:`gpukpm.run.schema`.

A configuration is checked completely before any work; an error is one line naming the file,
the key (``kpm.num_moments``) and what is allowed (:class:`ConfigError`, exit code 2).  The
sections, their units, ranges and defaults are defined once, in :class:`gpukpm.run.schema.RunConfig`::

    model:    name (GrapheneRashba | Rashba2DEGLattice | Rashba2DEG | Dirac) and its parameters
    system:   shape [L1, L2], disorder W (eV, ≥ 0), realisations (count or list of ids)   (real space)
    kspace:   grid [L1, L2] (lattice models) or {kind: polar|square|monkhorst_pack, ...}, window [lo, hi]
    kpm:      num_moments N (or eta), trace, vectors_per_task, seed, left, right, dtype, block_size,
              bounds, memory_budget_gb, vectors_per_batch, estimator
    response: energies ({start, stop, num} or a list, eV), kernel, parts, temperature (K), lorentz_lambda
    torque:   order M (2^M + 1 polar × 2M azimuthal magnetisations)
    dos:      energies, num_moments, trace, kernel
    backend:  auto | cpu | gpu
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from gpukpm.run import schema
from gpukpm.errors import ConfigError
from gpukpm.models.hamiltonians import model_from_dict

__all__ = ["ConfigError", "load_config", "validate_config", "energy_grid", "realisation_ids", "build_model",
           "DEFAULTS"]

#: Every section's defaults (what an empty section becomes), the model excepted.
DEFAULTS = {key: value for key, value in schema.RunConfig.model_validate({"model": {"name": "Dirac"}}).model_dump()
            .items() if key != "model"}


def energy_grid(spec, key="response.energies") -> np.ndarray:
    """Energies (eV) from ``{start, stop, num}`` (stop ≥ start) or a non-empty explicit list."""
    value = schema.validate_value(schema.Energies, spec, key)
    if isinstance(value, schema.EnergyRange):
        return np.linspace(value.start, value.stop, value.num)
    return np.array(value, dtype=float)


def realisation_ids(spec, key="system.realisations") -> list[int]:
    """Realisation ids from a count (0..n−1) or an explicit list of distinct ids."""
    return schema.validate_value(schema.Realisations, spec, key)


def build_model(model_cfg: dict):
    """The model object of a ``model`` section (``name`` + parameters)."""
    if not isinstance(model_cfg, dict) or "name" not in model_cfg:
        raise ConfigError("model must be a mapping with a 'name' (GrapheneRashba, Rashba2DEGLattice, "
                          "Rashba2DEG or Dirac) and the model parameters")
    params = {k: v for k, v in model_cfg.items() if k != "name"}
    try:
        return model_from_dict({"model": model_cfg["name"], **params})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model: {exc}") from exc


def _check_against_model(cfg: dict, source: str) -> None:
    """What the schema alone cannot say: the model's own checks, real space and k grid vs the model kind."""
    from gpukpm.engine.kgrid import make_grid

    prefix = f"{source}: " if source else ""
    try:
        model = build_model(cfg["model"])
    except ConfigError as exc:
        raise ConfigError(prefix + str(exc)) from None
    if cfg["system"]["shape"] is not None and not hasattr(model, "real_space"):
        raise ConfigError(f"{prefix}system.shape: model {cfg['model']['name']} has no real-space form "
                          "(use a lattice model or leave system.shape out)")
    if cfg["kspace"] is not None:
        try:
            make_grid(model, cfg["kspace"]["grid"])
        except ValueError as exc:
            raise ConfigError(f"{prefix}kspace.grid: {exc}") from None


def validate_config(raw, source: str = "") -> dict:
    """Defaults merged in and every value checked; returns the validated mapping.

    ``source`` (a file name) prefixes the error message.
    """
    cfg = schema.validate_run(raw, source)
    _check_against_model(cfg, source)
    return cfg


def load_config(source) -> dict:
    """Read and validate a YAML file (path) or an already-parsed mapping."""
    if not isinstance(source, (str, Path)):
        return validate_config(source)
    path = Path(source)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"configuration file {path} cannot be read: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where} is not valid YAML ({problem})") from None
    return validate_config(raw, str(path))
