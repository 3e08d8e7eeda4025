"""Run configuration (YAML): schema, defaults and validation.

A configuration is checked completely before any work; an error names the
key (``kpm.num_moments``) and the allowed range.  Sections::

    model:    name (GrapheneRashba | Rashba2DEGLattice | Rashba2DEG | Dirac) and its parameters
    system:   shape [L1, L2], disorder W (eV, ≥ 0), realisations (count or list of ids)   (real space)
    kspace:   grid [L1, L2] (lattice models) or {kind: polar|square, k_max, num_k, num_phi}, window [lo, hi]
    kpm:      num_moments N (or eta with kernel), trace ("exact" or vectors per realisation),
              vectors_per_task, seed, left, right, dtype, block_size, bounds, memory_budget_gb,
              estimator (plain | spin_diluted | spin_m_diluted | sublattice_diluted | spin_sublattice_diluted)
    response: energies ({start, stop, num} or a list, eV), kernel, parts, temperature (K)
    torque:   order M (2^M + 1 polar × 2M azimuthal magnetisations)
    dos:      energies, num_moments, trace
    backend:  auto | cpu | gpu
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import yaml

from gpukpm.response import kernels
from gpukpm.engine.estimators import ESTIMATORS
from gpukpm.models.hamiltonians import model_from_dict

__all__ = ["ConfigError", "load_config", "validate_config", "energy_grid", "realisation_ids", "build_model",
           "DEFAULTS"]


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


DEFAULTS = {
    "backend": "auto",
    "system": {"shape": None, "disorder": 0.0, "realisations": 1},
    "kspace": None,
    "kpm": {
        "num_moments": None, "eta": None, "trace": 4, "vectors_per_task": None, "seed": 0,
        "left": ["sx", "sy", "sz"], "right": "jx", "dtype": "complex128", "block_size": None,
        "bounds": None, "memory_budget_gb": None, "vectors_per_batch": None, "estimator": "plain",
    },
    "response": {"energies": None, "kernel": "jackson", "parts": ["total", "sea", "surface"],
                 "temperature": 0.0, "lorentz_lambda": kernels.DEFAULT_LORENTZ_LAMBDA},
    "torque": {"order": 2},
    "dos": {"energies": None, "num_moments": 512, "trace": 8, "kernel": "jackson"},
}

_OPERATORS = ("sx", "sy", "sz", "jx", "jy")


def _merge(defaults, given, path=""):
    if given is None:
        return copy.deepcopy(defaults)
    if not isinstance(given, dict):
        raise ConfigError(f"{path or 'config'} must be a mapping, got {type(given).__name__}")
    if defaults is None:
        return copy.deepcopy(given)
    unknown = set(given) - set(defaults)
    if unknown:
        raise ConfigError(f"unknown key(s) {sorted(unknown)} in {path or 'config'}; allowed: {sorted(defaults)}")
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        sub = f"{path}.{key}" if path else key
        out[key] = _merge(defaults[key], value, sub) if isinstance(defaults[key], dict) else value
    return out


def _int(value, key, lo=None, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or (lo is not None and value < lo):
        raise ConfigError(f"{key} must be an integer{'' if lo is None else f' >= {lo}'}, got {value!r}")
    return int(value)


def _float(value, key, lo=None, strict=False, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not math.isfinite(value):
        raise ConfigError(f"{key} must be a finite number, got {value!r}")
    if lo is not None and (value <= lo if strict else value < lo):
        raise ConfigError(f"{key} must be {'>' if strict else '>='} {lo}, got {value!r}")
    return float(value)


def _energy_pair(value, key: str, form: str) -> list[float]:
    """An ordered pair of finite energies (eV), e.g. bounds or a window."""
    if not (isinstance(value, (list, tuple)) and len(value) == 2):
        raise ConfigError(f"{key} must be {form} (eV), got {value!r}")
    lo, hi = _float(value[0], f"{key}[0]"), _float(value[1], f"{key}[1]")
    if hi <= lo:
        raise ConfigError(f"{key} must be {form} with the second value larger, got {value!r}")
    return [lo, hi]


def energy_grid(spec, key="response.energies") -> np.ndarray:
    """Energies (eV) from ``{start, stop, num}`` or an explicit list."""
    if isinstance(spec, dict):
        extra = set(spec) - {"start", "stop", "num"}
        if extra or not {"start", "stop", "num"} <= set(spec):
            raise ConfigError(f"{key} must have exactly the keys start, stop, num (eV), got {sorted(spec)}")
        start, stop = _float(spec["start"], f"{key}.start"), _float(spec["stop"], f"{key}.stop")
        num = _int(spec["num"], f"{key}.num", lo=1)
        if stop < start:
            raise ConfigError(f"{key}.stop must be >= start, got start={start}, stop={stop}")
        return np.linspace(start, stop, num)
    if isinstance(spec, (list, tuple)) and spec:
        return np.array([_float(v, f"{key}[{i}]") for i, v in enumerate(spec)])
    raise ConfigError(f"{key} must be {{start, stop, num}} or a non-empty list of energies (eV), got {spec!r}")


def realisation_ids(spec, key="system.realisations") -> list[int]:
    """Realisation ids from a count (0..n−1) or an explicit list."""
    if isinstance(spec, (list, tuple)):
        ids = [_int(v, f"{key}[{i}]", lo=0) for i, v in enumerate(spec)]
        if not ids or len(set(ids)) != len(ids):
            raise ConfigError(f"{key} must be a non-empty list of distinct ids, got {spec!r}")
        return ids
    return list(range(_int(spec, key, lo=1)))


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


def validate_config(raw: dict) -> dict:
    """Defaults merged in and every value checked; returns the validated mapping."""
    if not isinstance(raw, dict):
        raise ConfigError("the configuration must be a mapping")
    if "model" not in raw:
        raise ConfigError("missing key 'model'")
    model_cfg = raw["model"]
    schema = dict(DEFAULTS, model=None)
    cfg = _merge(schema, raw)
    cfg["model"] = model_cfg
    model = build_model(model_cfg)
    if cfg["backend"] not in ("auto", "cpu", "gpu"):
        raise ConfigError(f"backend must be auto, cpu or gpu, got {cfg['backend']!r}")

    system = cfg["system"]
    if system["shape"] is not None:
        shape = system["shape"]
        if not (isinstance(shape, (list, tuple)) and len(shape) == 2):
            raise ConfigError(f"system.shape must be [L1, L2], got {shape!r}")
        system["shape"] = [_int(v, f"system.shape[{i}]", lo=1) for i, v in enumerate(shape)]
        if not hasattr(model, "real_space"):
            raise ConfigError(f"system.shape given but model {model_cfg['name']} has no real-space form")
    system["disorder"] = _float(system["disorder"], "system.disorder", lo=0.0)
    system["realisations"] = realisation_ids(system["realisations"])

    kpm = cfg["kpm"]
    if kpm["num_moments"] is not None:
        kpm["num_moments"] = _int(kpm["num_moments"], "kpm.num_moments", lo=2)
    kpm["eta"] = _float(kpm["eta"], "kpm.eta", lo=0.0, strict=True, allow_none=True)
    if kpm["num_moments"] is None and kpm["eta"] is None:
        kpm["num_moments"] = 256
    if kpm["num_moments"] is not None and kpm["eta"] is not None:
        raise ConfigError("give kpm.num_moments or kpm.eta, not both")
    if kpm["trace"] != "exact":
        kpm["trace"] = _int(kpm["trace"], "kpm.trace (random vectors per realisation, or 'exact')", lo=1)
    kpm["vectors_per_task"] = _int(kpm["vectors_per_task"], "kpm.vectors_per_task", lo=1, allow_none=True)
    kpm["vectors_per_batch"] = _int(kpm["vectors_per_batch"], "kpm.vectors_per_batch", lo=1, allow_none=True)
    kpm["seed"] = _int(kpm["seed"], "kpm.seed", lo=0)
    kpm["block_size"] = _int(kpm["block_size"], "kpm.block_size", lo=1, allow_none=True)
    kpm["memory_budget_gb"] = _float(kpm["memory_budget_gb"], "kpm.memory_budget_gb", lo=0.0, strict=True,
                                     allow_none=True)
    left = [kpm["left"]] if isinstance(kpm["left"], str) else kpm["left"]
    if not isinstance(left, (list, tuple)) or not left or any(op not in _OPERATORS for op in left):
        raise ConfigError(f"kpm.left must be a non-empty list of {_OPERATORS}, got {kpm['left']!r}")
    kpm["left"] = list(left)
    if kpm["right"] not in _OPERATORS:
        raise ConfigError(f"kpm.right must be one of {_OPERATORS}, got {kpm['right']!r}")
    if kpm["dtype"] not in ("complex128", "complex64"):
        raise ConfigError(f"kpm.dtype must be complex128 or complex64, got {kpm['dtype']!r}")
    if kpm["bounds"] is not None:
        kpm["bounds"] = _energy_pair(kpm["bounds"], "kpm.bounds", "[E_min, E_max]")
    if kpm["estimator"] not in ESTIMATORS:
        raise ConfigError(f"kpm.estimator must be one of {ESTIMATORS}, got {kpm['estimator']!r}")

    resp = cfg["response"]
    if resp["energies"] is not None:
        energy_grid(resp["energies"])
    if resp["kernel"] not in kernels.KERNELS:
        raise ConfigError(f"response.kernel must be one of {kernels.KERNELS}, got {resp['kernel']!r}")
    parts = [resp["parts"]] if isinstance(resp["parts"], str) else resp["parts"]
    if not parts or any(p not in ("total", "sea", "surface") for p in parts):
        raise ConfigError(f"response.parts must be a list of total/sea/surface, got {resp['parts']!r}")
    resp["parts"] = list(parts)
    resp["temperature"] = _float(resp["temperature"], "response.temperature (K)", lo=0.0)
    resp["lorentz_lambda"] = _float(resp["lorentz_lambda"], "response.lorentz_lambda", lo=0.0, strict=True)

    cfg["torque"]["order"] = _int(cfg["torque"]["order"], "torque.order", lo=1)
    dos = cfg["dos"]
    if dos["energies"] is not None:
        energy_grid(dos["energies"], "dos.energies")
    dos["num_moments"] = _int(dos["num_moments"], "dos.num_moments", lo=2)
    if dos["trace"] != "exact":
        dos["trace"] = _int(dos["trace"], "dos.trace", lo=1)
    if dos["kernel"] not in kernels.KERNELS:
        raise ConfigError(f"dos.kernel must be one of {kernels.KERNELS}, got {dos['kernel']!r}")

    if cfg["kspace"] is not None:
        ks = cfg["kspace"]
        if not isinstance(ks, dict) or "grid" not in ks:
            raise ConfigError("kspace must be a mapping with a 'grid' (and optional 'window')")
        extra = set(ks) - {"grid", "window", "chunk_size"}
        if extra:
            raise ConfigError(f"unknown key(s) {sorted(extra)} in kspace; allowed: grid, window, chunk_size")
        if ks.get("window") is not None:
            ks["window"] = _energy_pair(ks["window"], "kspace.window", "[E_lo, E_hi]")
    return cfg


def load_config(source) -> dict:
    """Read and validate a YAML file (path) or an already-parsed mapping."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise ConfigError(f"configuration file {path} does not exist")
        with open(path) as fh:
            raw = yaml.safe_load(fh)
    else:
        raw = source
    return validate_config(raw)
