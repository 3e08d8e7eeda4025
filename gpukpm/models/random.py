"""Reproducible random streams keyed by ``(seed, realisation, vector)``.

Every random number gpukpm draws comes from a NumPy ``Generator`` whose
``SeedSequence`` is keyed by the run seed plus a spawn key naming what it is
for.  The numbers therefore depend only on the key, never on how tasks are
spread over MPI ranks, on the order they run in, or on the device: vectors and
disorder are drawn on the host and copied to the device, so CPU and GPU runs
see the same numbers bit for bit.

Streams (spawn keys):

* Anderson disorder of realisation ``r``: ``(r, 0)``;
* random-phase trace vector ``v`` of realisation ``r``: ``(r, 1, v)``.

The disorder of a realisation is shared by H and every operator and by all
magnetisation configurations of that realisation (it does not depend on m̂).
"""
from __future__ import annotations

import numpy as np

__all__ = ["disorder_generator", "vector_generator", "random_phase_vectors", "check_seed"]

_DISORDER_STREAM = 0
_VECTOR_STREAM = 1


def check_seed(seed, name: str = "seed") -> int:
    """Validate a non-negative integer seed (clock seeding is not allowed)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_index(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def disorder_generator(seed: int, realisation: int) -> np.random.Generator:
    """Generator for the Anderson disorder of one realisation."""
    seq = np.random.SeedSequence(
        check_seed(seed), spawn_key=(_check_index(realisation, "realisation"), _DISORDER_STREAM)
    )
    return np.random.Generator(np.random.PCG64(seq))


def vector_generator(seed: int, realisation: int, vector: int) -> np.random.Generator:
    """Generator for random trace vector ``vector`` of realisation ``realisation``."""
    seq = np.random.SeedSequence(
        check_seed(seed),
        spawn_key=(_check_index(realisation, "realisation"), _VECTOR_STREAM, _check_index(vector, "vector")),
    )
    return np.random.Generator(np.random.PCG64(seq))


def random_phase_vectors(dim: int, seed: int, realisation: int, vectors, dtype=np.complex128) -> np.ndarray:
    """Random-phase vectors ``|r⟩ = exp(2πiφ)``, φ uniform in [0, 1), as columns.

    They satisfy E[|r⟩⟨r|] = 1, so ``Tr X ≈ (1/R) Σ_r ⟨r|X|r⟩`` with variance
    ``Σ_{i≠j} |X_ij|²`` per vector (no diagonal noise).

    Returns a host array of shape ``(dim, len(vectors))`` in Fortran order (the
    layout cuSPARSE SpMM wants).
    """
    vectors = [_check_index(v, "vector") for v in np.atleast_1d(vectors).tolist()]
    out = np.empty((int(dim), len(vectors)), dtype=dtype, order="F")
    for col, v in enumerate(vectors):
        phase = vector_generator(seed, realisation, v).random(int(dim))
        out[:, col] = np.exp(2j * np.pi * phase)
    return out
