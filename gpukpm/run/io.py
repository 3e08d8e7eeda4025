"""The HDF5 schema of gpukpm files, written atomically.

Every file has a root attribute ``gpukpm_kind`` (``"moments"``,
``"response"``, ``"torques"``, ``"dos"``) and ``gpukpm_version``; the
structured metadata (model parameters, provenance: backend, device,
versions, seeds, wall times) is stored as JSON strings in attributes
``parameters`` and ``provenance`` so that it survives any nesting.

Moments file (``gpukpm_kind = "moments"``)::

    /mu_samples            complex128 (S, n_left, N, N) or (S, n_left, N): raw moments per sample
    /sample_realisations   int64 (S,)  disorder realisation of each sample
    /sample_vectors        int64 (S,)  random-vector id of each sample (−1: exact trace / k space)

Response file (``"response"``): /energies, /values, /stderr (n_left, E), /samples (S, n_left, E),
/per_sample_std (one random vector's standard deviation), /broadening (η(ε), eV), /relaxation_time
(τ(ε) = ħ/2η_eff of the kernel, s); attrs part, kernel, num_moments, eta (band centre), temperature,
units, operators, right, metadata (a, b, trace, sample_realisations, sample_vectors, magnetization).

Torques file (``"torques"``): /energies, /magnetizations, per key of gpukpm.torque.KEYS the value,
``<key>_stderr`` and ``<key>_std`` (one sample), /residual, /relative_residual, /covariance (E, 6, 6);
attrs num_samples, metadata (part, kernel, num_moments, eta, trace, source files).
    attrs: a, b, emin, emax, epsilon (eV), num_orbitals, area (nm²), left (names), right,
           trace, seed, hermitian, parameters (JSON), provenance (JSON)

Writes go to a temporary file in the destination folder, are flushed and
fsynced, then renamed into place (``os.replace``), so a reader never sees a
half-written file and a killed job leaves no corrupt output.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np

from gpukpm import __version__
from gpukpm.engine.moments import Moments

__all__ = ["atomic_h5", "atomic_text", "save_moments", "load_moments", "save_response", "load_response",
           "response_csv", "read_kind", "to_json", "from_json"]

_MOMENT_SCALARS = ("a", "b", "emin", "emax", "epsilon", "num_orbitals", "area", "trace", "seed", "hermitian")


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
def _atomic_path(path, suffix: str):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_h5(path, kind: str):
    """Open a new HDF5 file for writing that appears at ``path`` only when complete."""
    with _atomic_path(path, ".h5.tmp") as tmp:
        with h5py.File(tmp, "w") as fh:
            fh.attrs["gpukpm_kind"] = kind
            fh.attrs["gpukpm_version"] = __version__
            yield fh


def atomic_text(path, text: str) -> None:
    """Write a text file atomically."""
    with _atomic_path(path, ".tmp") as tmp:
        with open(tmp, "w") as fh:
            fh.write(text)


def read_kind(path) -> str:
    with h5py.File(path, "r") as fh:
        return str(fh.attrs.get("gpukpm_kind", ""))


def save_moments(path, moments: Moments) -> None:
    """Write a :class:`~gpukpm.engine.moments.Moments` to ``path`` (atomic)."""
    with atomic_h5(path, "moments") as fh:
        fh.create_dataset("mu_samples", data=moments.mu_samples)
        fh.create_dataset("sample_realisations", data=np.asarray(moments.sample_realisations, dtype=np.int64))
        fh.create_dataset("sample_vectors", data=np.asarray(moments.sample_vectors, dtype=np.int64))
        for key in _MOMENT_SCALARS:
            fh.attrs[key] = getattr(moments, key)
        fh.attrs["left"] = to_json(list(moments.left))
        fh.attrs["right"] = to_json(moments.right)
        fh.attrs["parameters"] = to_json(moments.parameters)
        fh.attrs["provenance"] = to_json(moments.provenance)


def load_moments(path) -> Moments:
    """Read a moments file written by :func:`save_moments`."""
    with h5py.File(path, "r") as fh:
        kind = fh.attrs.get("gpukpm_kind")
        if kind != "moments":
            raise ValueError(f"{path} is not a gpukpm moments file (gpukpm_kind = {kind!r})")
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

    with h5py.File(path, "r") as fh:
        kind = fh.attrs.get("gpukpm_kind")
        if kind != "response":
            raise ValueError(f"{path} is not a gpukpm response file (gpukpm_kind = {kind!r})")
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
    lines = [",".join(cols)]
    lines += [",".join(f"{v:.17g}" for v in row) for row in np.column_stack(rows)]
    return "\n".join(lines) + "\n"
