"""Memory cost model of a real-space job, checked before anything is allocated.

The least a real-space run holds at once (bytes), for D = L1·L2·(orbitals per cell) orbitals:

* H and the operators as CSR: ``(1 + operators) · nnz_per_orbital · D · (itemsize + 8)``
  (``nnz_per_orbital`` measured on a 4 × 4 supercell of the same model);
* the Chebyshev recursion: ``(4 + operators) · D · itemsize`` (two chain vectors, a random
  vector, a product per operator and a work vector, one random vector at a time);
* site data (positions, disorder energies): ``3 · 8 · D / orbitals_per_cell``;
* the moments: ``2 · operators · N² · 16`` (complex128 samples and their sum).

Blocks of Chebyshev vectors beyond that adapt to the memory left (``kpm.memory_budget_gb``), so
this is a lower bound: a job it refuses could not run here at any block size.
"""
from __future__ import annotations

import functools

import numpy as np

from gpukpm.engine.backend import host_available_memory
from gpukpm.errors import ConfigError

__all__ = ["available_memory", "real_space_bytes", "check_real_space"]


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation on this machine (None when unknown):
    :func:`gpukpm.engine.backend.host_available_memory`."""
    return host_available_memory()


@functools.lru_cache(maxsize=16)
def _nnz_per_orbital(model) -> float:
    """Stored entries of H per orbital, from a 4 × 4 supercell (pristine)."""
    system = model.real_space(shape=(4, 4))
    return system.hamiltonian.nnz / system.num_orbitals


def real_space_bytes(model, shape, num_moments: int, operators: int, dtype="complex128") -> int:
    """Least memory (bytes) of a real-space run of ``model`` on ``shape`` (module docstring)."""
    itemsize = np.dtype(dtype).itemsize
    orbitals = float(shape[0]) * float(shape[1]) * model.orbitals_per_cell
    matrices = (1 + operators) * _nnz_per_orbital(model) * orbitals * (itemsize + 8)
    vectors = (4 + operators) * orbitals * itemsize
    sites = 3 * 8 * orbitals / model.orbitals_per_cell
    moments = 2 * operators * float(num_moments) ** 2 * 16
    return int(matrices + vectors + sites + moments)


def _size(num_bytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if num_bytes < 1024 or unit == "PiB":
            return f"{num_bytes:.3g} {unit}"
        num_bytes /= 1024


def check_real_space(model, cfg: dict, num_moments: int, operators: int, available: int | None = None) -> int:
    """Raise :class:`ConfigError` when the run of ``cfg`` cannot fit in ``available`` bytes (default: this
    machine's free memory); returns the estimate (bytes)."""
    shape = cfg["system"]["shape"]
    need = real_space_bytes(model, shape, num_moments, operators, cfg["kpm"]["dtype"])
    available = available_memory() if available is None else available
    if available is not None and need > available:
        orbitals = float(shape[0]) * float(shape[1]) * model.orbitals_per_cell
        raise ConfigError(f"system.shape {list(shape)}: {orbitals:.3g} orbitals need at least {_size(need)} of memory "
                          f"(H, operators and Chebyshev vectors), {_size(available)} available on this machine; "
                          "use a smaller shape or a node with more memory")
    return need
