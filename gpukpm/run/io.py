"""Every file gpukpm writes or reads: the HDF5 kinds, the CSV tables, written atomically.

One owner per file kind.  Every HDF5 file has root attributes ``gpukpm_kind``
(:data:`KINDS`), ``gpukpm_version`` (the package version that wrote it) and
``gpukpm_format`` (the layout version, :data:`FORMAT_VERSION`; absent in files
of the first layout, read as 1).  A reader refuses, with :class:`FileFormatError`
naming the file, anything that is not HDF5, not a gpukpm file, of another kind,
or of a newer layout.  Structured metadata (model parameters, provenance:
backend, device, versions, seeds, wall times) is stored as JSON strings in
attributes so that it survives any nesting.

Moments file (``"moments"``)::

    /mu_samples            complex128 (S, n_left, N, N) or (S, n_left, N): raw moments per sample
    /sample_realisations   int64 (S,)  disorder realisation of each sample
    /sample_vectors        int64 (S,)  random-vector id of each sample (−1: exact trace / k space)
    [/mu_mean, /mu_stderr] ensemble files of ``gpukpm aggregate``: mean and standard error
    attrs: a, b, emin, emax, epsilon (eV), num_orbitals, area (nm²), left (names), right,
           trace, seed, hermitian, parameters (JSON), provenance (JSON)

Response file (``"response"``): /energies, /values, /stderr (n_left, E), /samples (S, n_left, E),
/per_sample_std (one random vector's standard deviation), /broadening (η(ε), eV), /relaxation_time
(τ(ε) = ħ/2η_eff of the kernel, s); attrs part, kernel, num_moments, eta (band centre), temperature,
units, operators, right, metadata (a, b, trace, sample_realisations, sample_vectors, magnetization).

DOS file (``"dos"``): /energies (eV), /dos (states per cell per eV), /stderr, /mu_samples (1D moments);
attrs kernel, num_moments, eta, units, orbitals_per_cell, a, b, config, parameters, provenance (JSON).

Torques file (``"torques"``): /energies, /magnetizations, per key of gpukpm.torque.KEYS the value,
``<key>_stderr`` and ``<key>_std`` (one sample), /residual, /relative_residual, /covariance (E, 6, 6);
attrs num_samples, metadata (part, kernel, num_moments, eta, trace, source files).

Configuration-responses file (``"configuration_responses"``, beside ``gpukpm torques-run``'s output):
/magnetizations (C, 3), /energies, and per Kubo part /<part>/values, /<part>/stderr (C, 3, E),
/<part>/samples (S, C, 3, E); /sample_realisations; attrs exact, metadata (JSON).

CSV tables (``response_csv``, ``dos_csv``, ``torques_csv``): one header line, then one row per
energy, values with 17 significant digits (exact round trip), NaN as ``nan``.

All writes go through :func:`gpukpm.atomic.atomic_path`: a reader never sees a half-written file
and a killed job leaves no corrupt output.
"""
from __future__ import annotations

import contextlib
import io as _stringio
import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from gpukpm import __version__
from gpukpm.atomic import atomic_path, atomic_text
from gpukpm.errors import InputFileError
from gpukpm.engine.moments import Moments

__all__ = ["FORMAT_VERSION", "KINDS", "FileFormatError", "atomic_h5", "atomic_text", "open_h5", "read_kind",
           "save_moments", "load_moments", "read_provenance", "save_response", "load_response", "response_csv",
           "save_dos", "load_dos", "dos_csv", "TorqueTable", "save_torques", "load_torques", "torques_csv",
           "save_torques_csv", "load_torques_csv", "save_configuration_responses",
           "load_configuration_responses", "to_json", "from_json"]

#: Layout version written into every HDF5 file; readers refuse newer ones.
FORMAT_VERSION = 1
#: The HDF5 file kinds (root attribute ``gpukpm_kind``).
KINDS = ("moments", "response", "dos", "torques", "configuration_responses")

_MOMENT_SCALARS = ("a", "b", "emin", "emax", "epsilon", "num_orbitals", "area", "trace", "seed", "hermitian")


class FileFormatError(InputFileError):
    """A file that is not a readable gpukpm file of the expected kind and layout (the message names it;
    the ``gpukpm`` command exits 2)."""


def to_json(obj) -> str:
    """JSON text of nested metadata (NumPy scalars and arrays become plain lists/numbers)."""
    def default(o):
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, (set, tuple)):
            return list(o)
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"cannot store {type(o).__name__} as JSON metadata")

    return json.dumps(obj, default=default, sort_keys=True)


def from_json(text) -> dict:
    if isinstance(text, bytes):
        text = text.decode()
    return json.loads(text) if text else {}


@contextlib.contextmanager
def atomic_h5(path, kind: str):
    """Open a new HDF5 file of ``kind`` for writing that appears at ``path`` only when complete."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    with atomic_path(path, ".h5.tmp") as tmp:
        with h5py.File(tmp, "w") as fh:
            fh.attrs["gpukpm_kind"] = kind
            fh.attrs["gpukpm_version"] = __version__
            fh.attrs["gpukpm_format"] = FORMAT_VERSION
            yield fh


def _open(path):
    try:
        return h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        reason = "no such file" if not Path(path).exists() else f"not a readable HDF5 file ({exc})"
        raise FileFormatError(f"{path}: {reason}") from None


def _attr_text(fh, key) -> str | None:
    value = fh.attrs.get(key)
    return value.decode() if isinstance(value, bytes) else (None if value is None else str(value))


def read_kind(path) -> str:
    """The ``gpukpm_kind`` of an HDF5 file ("" for an HDF5 file that is not gpukpm's)."""
    with _open(path) as fh:
        return _attr_text(fh, "gpukpm_kind") or ""


@contextlib.contextmanager
def open_h5(path, kind: str):
    """Open the gpukpm file ``path`` of ``kind`` for reading; :class:`FileFormatError` for any other file."""
    with _open(path) as fh:
        found = _attr_text(fh, "gpukpm_kind")
        if found != kind:
            what = "an HDF5 file without gpukpm_kind" if found is None else f"a gpukpm {found!r} file"
            raise FileFormatError(f"{path} is not a gpukpm {kind} file: it is {what}")
        layout = int(fh.attrs.get("gpukpm_format", 1))
        if layout > FORMAT_VERSION:
            raise FileFormatError(f"{path}: layout gpukpm_format = {layout} (written by gpukpm "
                                  f"{_attr_text(fh, 'gpukpm_version')}); this gpukpm {__version__} reads "
                                  f"layouts up to {FORMAT_VERSION}")
        try:
            yield fh
        except KeyError as exc:
            raise FileFormatError(f"{path}: incomplete gpukpm {kind} file, missing {exc}") from None


def _csv(columns: dict) -> str:
    """CSV text of equal-length 1-D columns, 17 significant digits."""
    buffer = _stringio.StringIO()
    np.savetxt(buffer, np.column_stack(list(columns.values())), delimiter=",", header=",".join(columns),
               comments="", fmt="%.17g")
    return buffer.getvalue()


def _read_csv(path) -> dict[str, np.ndarray]:
    try:
        data = np.genfromtxt(path, delimiter=",", names=True, dtype=float)
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"{path}: not a readable CSV table ({exc})") from None
    data = np.atleast_1d(data)
    if data.dtype.names is None:
        raise FileFormatError(f"{path}: no header line")
    return {name: np.asarray(data[name], dtype=float) for name in data.dtype.names}


# ----------------------------------------------------------------------------- moments
def save_moments(path, moments: Moments, extra: dict | None = None) -> None:
    """Write a :class:`~gpukpm.engine.moments.Moments` to ``path`` (atomic), with optional ``extra``
    datasets (name → array; the ensemble mean and error of ``gpukpm aggregate``)."""
    with atomic_h5(path, "moments") as fh:
        for name, data in (extra or {}).items():
            fh.create_dataset(name, data=data)
        fh.create_dataset("mu_samples", data=moments.mu_samples)
        fh.create_dataset("sample_realisations", data=np.asarray(moments.sample_realisations, dtype=np.int64))
        fh.create_dataset("sample_vectors", data=np.asarray(moments.sample_vectors, dtype=np.int64))
        for key in _MOMENT_SCALARS:
            fh.attrs[key] = getattr(moments, key)
        fh.attrs["left"] = to_json(list(moments.left))
        fh.attrs["right"] = to_json(moments.right)
        fh.attrs["parameters"] = to_json(moments.parameters)
        fh.attrs["provenance"] = to_json(moments.provenance)


def read_provenance(path) -> dict:
    """The provenance of a moments file, without reading its moments."""
    with open_h5(path, "moments") as fh:
        return from_json(fh.attrs.get("provenance", ""))


def load_moments(path) -> Moments:
    """Read a moments file written by :func:`save_moments`."""
    with open_h5(path, "moments") as fh:
        scalars = {key: fh.attrs[key] for key in _MOMENT_SCALARS}
        return Moments(
            mu_samples=fh["mu_samples"][...],
            sample_realisations=fh["sample_realisations"][...],
            sample_vectors=fh["sample_vectors"][...],
            a=float(scalars["a"]), b=float(scalars["b"]), emin=float(scalars["emin"]),
            emax=float(scalars["emax"]), epsilon=float(scalars["epsilon"]),
            num_orbitals=float(scalars["num_orbitals"]), area=float(scalars["area"]),
            trace=str(scalars["trace"]), seed=int(scalars["seed"]), hermitian=bool(scalars["hermitian"]),
            left=tuple(from_json(fh.attrs["left"])), right=from_json(fh.attrs["right"]),
            parameters=from_json(fh.attrs["parameters"]), provenance=from_json(fh.attrs["provenance"]),
        )


# ----------------------------------------------------------------------------- responses
def save_response(path, response, provenance: dict | None = None) -> None:
    """Write a :class:`~gpukpm.response.kubo.Response` (values, stderr, per-sample values, settings)."""
    with atomic_h5(path, "response") as fh:
        fh.create_dataset("energies", data=response.energies)
        fh.create_dataset("values", data=response.values)
        fh.create_dataset("stderr", data=response.stderr)
        fh.create_dataset("samples", data=response.samples)
        fh.create_dataset("per_sample_std", data=response.per_sample_std)
        fh.create_dataset("broadening", data=response.broadening())
        fh.create_dataset("relaxation_time", data=response.relaxation_time())
        for key in ("part", "kernel", "num_moments", "eta", "temperature", "units"):
            fh.attrs[key] = getattr(response, key)
        fh.attrs["operators"] = to_json(list(response.operators))
        fh.attrs["right"] = to_json(response.right)
        fh.attrs["metadata"] = to_json(response.metadata)
        fh.attrs["provenance"] = to_json(provenance or {})


def load_response(path):
    """Read a response file written by :func:`save_response`."""
    from gpukpm.response.kubo import Response

    with open_h5(path, "response") as fh:
        return Response(
            energies=fh["energies"][...], values=fh["values"][...], stderr=fh["stderr"][...],
            samples=fh["samples"][...], operators=tuple(from_json(fh.attrs["operators"])),
            right=from_json(fh.attrs["right"]), part=str(fh.attrs["part"]), kernel=str(fh.attrs["kernel"]),
            num_moments=int(fh.attrs["num_moments"]), eta=float(fh.attrs["eta"]),
            temperature=float(fh.attrs["temperature"]), units=str(fh.attrs["units"]),
            metadata=from_json(fh.attrs["metadata"]),
        )


def response_csv(response) -> str:
    """CSV text: energy, then the value, standard error and one-sample standard deviation of every operator,
    then η(ε) (eV) of the kernel."""
    suffixes = ("", "_stderr", "_std")
    cols = ["energy_eV"] + [f"{name}{suffix}" for name in response.operators for suffix in suffixes] + ["eta_eV"]
    rows = [response.energies] + [arr[k] for k in range(len(response.operators))
                                  for arr in (response.values, response.stderr, response.per_sample_std)]
    rows.append(response.broadening())
    return _csv(dict(zip(cols, rows)))


# ----------------------------------------------------------------------------- density of states
def save_dos(path, result, moments: Moments, config: dict | None = None) -> None:
    """Write a :class:`~gpukpm.response.dos.DensityOfStates` with the 1D moments it came from."""
    with atomic_h5(path, "dos") as fh:
        fh.create_dataset("energies", data=result.energies)
        fh.create_dataset("dos", data=result.values)
        fh.create_dataset("stderr", data=result.stderr)
        fh.create_dataset("mu_samples", data=moments.mu_samples)
        fh.attrs.update(kernel=result.kernel, num_moments=result.num_moments, eta=result.eta,
                        units=result.units, orbitals_per_cell=result.orbitals_per_cell, a=moments.a, b=moments.b,
                        config=to_json(config or {}), parameters=to_json(moments.parameters),
                        provenance=to_json(moments.provenance))


def load_dos(path):
    """Read a DOS file written by :func:`save_dos` as a :class:`~gpukpm.response.dos.DensityOfStates`."""
    from gpukpm.response.dos import DensityOfStates

    with open_h5(path, "dos") as fh:
        return DensityOfStates(
            energies=fh["energies"][...], values=fh["dos"][...], stderr=fh["stderr"][...],
            kernel=str(fh.attrs["kernel"]), num_moments=int(fh.attrs["num_moments"]), eta=float(fh.attrs["eta"]),
            orbitals_per_cell=float(fh.attrs.get("orbitals_per_cell", float("nan"))), units=str(fh.attrs["units"]),
        )


def dos_csv(result) -> str:
    """CSV text: ``energy_eV, dos_per_cell_eV, stderr``."""
    return _csv({"energy_eV": result.energies, "dos_per_cell_eV": result.values, "stderr": result.stderr})


# ----------------------------------------------------------------------------- torques
@dataclass
class TorqueTable:
    """A torques file as read back: the fit's columns (:meth:`~gpukpm.torque.TorqueFit.as_arrays`) per energy."""

    energies: np.ndarray  # (E,) eV
    magnetizations: np.ndarray  # (C, 3)
    columns: dict  # name → (E,): chi's ((V·nm)⁻¹), xi_FL, _stderr, _std, residual, relative_residual
    covariance: np.ndarray  # (E, 6, 6), order of gpukpm.torque.PARAMETERS
    num_samples: int
    metadata: dict = field(default_factory=dict)


def save_torques(path, energies, fit, magnetizations, metadata: dict | None = None) -> None:
    """Write a :class:`~gpukpm.torque.TorqueFit` over ``energies`` (eV) and the configurations it fitted."""
    with atomic_h5(path, "torques") as fh:
        fh.create_dataset("energies", data=np.asarray(energies, dtype=float))
        fh.create_dataset("magnetizations", data=np.asarray(magnetizations, dtype=float))
        for name, column in fit.as_arrays().items():
            fh.create_dataset(name, data=column)
        fh.create_dataset("covariance", data=fit.covariance)
        fh.attrs["num_samples"] = fit.num_samples
        fh.attrs["metadata"] = to_json(metadata or {})


def load_torques(path) -> TorqueTable:
    """Read a torques file written by :func:`save_torques`."""
    fixed = ("energies", "magnetizations", "covariance")
    with open_h5(path, "torques") as fh:
        return TorqueTable(
            energies=fh["energies"][...], magnetizations=fh["magnetizations"][...],
            columns={name: fh[name][...] for name in fh if name not in fixed},
            covariance=fh["covariance"][...], num_samples=int(fh.attrs["num_samples"]),
            metadata=from_json(fh.attrs.get("metadata", "")),
        )


def torques_csv(energies, fit) -> str:
    """CSV text of a fit: ``energy`` (eV), then the columns of :meth:`~gpukpm.torque.TorqueFit.as_arrays`
    (for each χ the value, ``_stderr`` and, from ``fit_samples``, ``_std``; ``residual``,
    ``relative_residual``, and ``chi2_per_dof`` for a weighted fit)."""
    columns = fit.as_arrays()
    n_energies = fit.params.shape[0]
    energies = np.asarray(energies, dtype=np.float64)
    if energies.shape != (n_energies,):
        raise ValueError(f"energies must be a 1-D array of length {n_energies} (one per fitted energy), "
                         f"got shape {energies.shape}")
    if not np.all(np.isfinite(energies)):
        raise ValueError("energies must be finite (no NaN or inf)")
    return _csv({"energy": energies, **columns})


def save_torques_csv(path, energies, fit) -> None:
    """Write :func:`torques_csv` to ``path`` atomically."""
    atomic_text(path, torques_csv(energies, fit))


def load_torques_csv(path) -> dict[str, np.ndarray]:
    """A torques CSV (:func:`torques_csv`) as ``{column: array}``; it must have the ``energy`` column."""
    table = _read_csv(path)
    if "energy" not in table:
        raise FileFormatError(f"{path} is not a gpukpm torques CSV: no 'energy' column (columns {list(table)})")
    return table


# ----------------------------------------------------------------------------- all configurations of one system
def save_configuration_responses(path, responses) -> None:
    """Write a :class:`~gpukpm.run.configurations.ConfigurationResponses` (every part, every sample)."""
    with atomic_h5(path, "configuration_responses") as fh:
        fh.create_dataset("magnetizations", data=responses.magnetizations)
        fh.create_dataset("energies", data=responses.energies)
        if responses.sample_realisations is not None:
            fh.create_dataset("sample_realisations", data=np.asarray(responses.sample_realisations))
        for part in responses.values:
            fh.create_dataset(f"{part}/values", data=responses.values[part])
            fh.create_dataset(f"{part}/stderr", data=responses.stderr[part])
            if part in responses.samples:
                fh.create_dataset(f"{part}/samples", data=responses.samples[part])
        fh.attrs["exact"] = bool(responses.exact)
        fh.attrs["metadata"] = to_json(responses.metadata)


def load_configuration_responses(path):
    """Read a file written by :func:`save_configuration_responses`."""
    from gpukpm.run.configurations import ConfigurationResponses

    with open_h5(path, "configuration_responses") as fh:
        parts = [name for name in fh if isinstance(fh[name], h5py.Group)]
        return ConfigurationResponses(
            magnetizations=fh["magnetizations"][...], energies=fh["energies"][...],
            values={p: fh[f"{p}/values"][...] for p in parts}, stderr={p: fh[f"{p}/stderr"][...] for p in parts},
            samples={p: fh[f"{p}/samples"][...] for p in parts if "samples" in fh[p]},
            sample_realisations=fh["sample_realisations"][...] if "sample_realisations" in fh else None,
            exact=bool(fh.attrs.get("exact", False)), metadata=from_json(fh.attrs.get("metadata", "")),
        )
