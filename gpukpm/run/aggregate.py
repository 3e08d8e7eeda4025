"""Merge moment files (e.g. realisation chunks from separate jobs) into one ensemble file.

``gpukpm aggregate FILES… -o ensemble.h5`` calls :func:`aggregate`.  Every
sample of every file is kept, with its realisation and vector id, so the
output is an ordinary moments file: :attr:`~gpukpm.engine.moments.Moments.mu` and
:attr:`~gpukpm.engine.moments.Moments.stderr` give the ensemble mean and the standard
error between realisation means (:func:`gpukpm.engine.stats.mean_and_stderr`).  For
convenience the output also holds them as datasets ``mu_mean`` and
``mu_stderr`` (complex: the errors of the real and imaginary parts).

Samples are sorted by (realisation, vector id), so the result does not
depend on the order of the files on the command line.

Files must describe the same physical ensemble; otherwise
:class:`IncompatibleMoments` names the first field that differs and both
values, checked in this order: exactly the number of moments N, 1D/2D, the
operators ``left``/``right``, the trace kind, the seed, ``num_orbitals``,
``area`` and ``hermitian``; then every model/system parameter except the
per-file realisation ids (so a different disorder W is reported as
``parameters.disorder``, not through the rescaling it implies); then the
rescaling ``a``, ``b``, ``emin``, ``emax``, ``epsilon`` (relative tolerance
1e-10: the same configuration on another machine may differ in the last bits
of its Lanczos bounds).  Provenance is not compared (each input's is kept in
the output's provenance).  A (realisation, vector) sample present twice is
refused: it would count one random vector twice.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from gpukpm import __version__
from gpukpm.run import io
from gpukpm.errors import UsageError
from gpukpm.engine.moments import Moments
from gpukpm.engine.stats import mean_and_stderr

__all__ = ["IncompatibleMoments", "aggregate", "combine"]

_FLOAT_FIELDS = ("a", "b", "emin", "emax", "epsilon")
_EXACT_FIELDS = ("num_moments", "ndim", "left", "right", "trace", "seed", "num_orbitals", "area", "hermitian")
_PER_FILE_PARAMETERS = ("realisation", "realisations")
_RTOL = 1e-10


class IncompatibleMoments(UsageError):
    """Moment files that cannot be pooled into one ensemble."""


def _common_parameters(m: Moments) -> dict:
    return {k: v for k, v in m.parameters.items() if k not in _PER_FILE_PARAMETERS}


def _check_compatible(ref_name, ref: Moments, name, m: Moments) -> None:
    """Raise naming the first differing field: operators, N, trace, seed…, then model, then rescaling."""
    for key in _EXACT_FIELDS:
        x, y = getattr(ref, key), getattr(m, key)
        if x != y:
            raise IncompatibleMoments(f"{key} differs: {x!r} in {ref_name}, {y!r} in {name}")
    p, q = _common_parameters(ref), _common_parameters(m)
    for key in sorted(set(p) | set(q)):
        if p.get(key, "<unset>") != q.get(key, "<unset>"):
            raise IncompatibleMoments(f"parameters.{key} differs: {p.get(key, '<unset>')!r} in {ref_name}, "
                                      f"{q.get(key, '<unset>')!r} in {name}")
    for key in _FLOAT_FIELDS:
        x, y = getattr(ref, key), getattr(m, key)
        if not np.isclose(x, y, rtol=_RTOL, atol=0.0):
            raise IncompatibleMoments(f"{key} differs: {x!r} in {ref_name}, {y!r} in {name}")


def combine(moments: list, names: list | None = None) -> Moments:
    """One Moments holding every sample of compatible ``moments`` (sorted by realisation, vector)."""
    if not moments:
        raise ValueError("aggregate needs at least one moments file")
    names = [str(n) for n in names] if names is not None else [f"input {i}" for i in range(len(moments))]
    ref = moments[0]
    for name, m in zip(names[1:], moments[1:]):
        _check_compatible(names[0], ref, name, m)
    seen = {}
    for name, m in zip(names, moments):
        for r, v in zip(m.sample_realisations.tolist(), m.sample_vectors.tolist()):
            if (r, v) in seen:
                raise IncompatibleMoments(f"duplicate sample (realisation {r}, vector {v}) in {seen[(r, v)]} and "
                                          f"{name}")
            seen[(r, v)] = name
    realisations = np.concatenate([m.sample_realisations for m in moments]).astype(np.int64)
    vectors = np.concatenate([m.sample_vectors for m in moments]).astype(np.int64)
    order = np.lexsort((vectors, realisations))
    mu = np.concatenate([m.mu_samples for m in moments])[order]
    parameters = _common_parameters(ref)
    parameters["realisations"] = np.unique(realisations).tolist()
    provenance = {
        "gpukpm": __version__, "command": "aggregate", "files": names,
        "samples_per_file": [m.num_samples for m in moments], "inputs": [m.provenance for m in moments],
    }
    return Moments(
        mu_samples=mu, a=ref.a, b=ref.b, emin=ref.emin, emax=ref.emax, epsilon=ref.epsilon,
        num_orbitals=ref.num_orbitals, area=ref.area, left=ref.left, right=ref.right, trace=ref.trace,
        sample_realisations=realisations[order], sample_vectors=vectors[order], seed=ref.seed,
        hermitian=ref.hermitian, parameters=parameters, provenance=provenance,
    )


def aggregate(files, output) -> Path:
    """Merge the moments files ``files`` into ``output`` (atomic); returns ``output``.

    The output is a moments file (:func:`gpukpm.run.io.load_moments` reads it)
    with the extra datasets ``mu_mean`` and ``mu_stderr``.
    """
    files = [Path(f) for f in files]
    output = Path(output)
    if output.resolve() in {f.resolve() for f in files}:
        raise ValueError(f"the output {output} is also an input")
    merged = combine([io.load_moments(f) for f in files], names=files)
    mean, stderr = mean_and_stderr(merged.mu_samples, merged.sample_realisations)
    io.save_moments(output, merged, extra={"mu_mean": mean, "mu_stderr": stderr})
    return output
