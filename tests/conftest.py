"""Shared fixtures: the exact-diagonalisation reference and the CUDA emulator (``tests/cuda_emulator``)
imported as ``cupy``."""
from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

EMULATOR = Path(__file__).parent / "cuda_emulator"
needs_compiler = pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                                    reason="the emulated RawKernel needs a host C++ compiler")


@pytest.fixture(scope="session")
def eigenbasis():
    """Exact diagonalisation of a real-space System: ``eigenbasis(system, *names)`` → ``(E, [A_1, ...])``
    with E the eigenvalues (eV) and ``A_ij = ⟨i|A|j⟩`` the named operators in the eigenbasis; one dense
    ``eigh`` per system for the whole session."""
    solved = {}

    def solve(system, *names):
        if id(system) not in solved:
            E, V = np.linalg.eigh(system.hamiltonian.toarray())
            solved[id(system)] = (system, E, V, {})  # the system is kept so that its id stays unique
        _, E, V, operators = solved[id(system)]
        for name in names:
            if name not in operators:
                operators[name] = V.conj().T @ system.operator(name).toarray() @ V
        return E, [operators[name] for name in names]

    return solve


def _clear_gpukpm_device_caches():
    from gpukpm.engine import backend
    from gpukpm.engine import gpu_kernels

    backend.gpu_status.cache_clear()
    backend._make.cache_clear()
    gpu_kernels._raw_kernel.cache_clear()
    gpu_kernels.usable.cache_clear()
    gpu_kernels._csr_kernel.cache_clear()
    gpu_kernels.csr_usable.cache_clear()


def _cupy_modules():
    return [name for name in sys.modules if name.split(".")[0] in ("cupy", "cupyx")]


@pytest.fixture(scope="module")
def cupy_emulator():
    """The emulator as ``cupy`` for one test module; a real CuPy of this machine is put back after."""
    saved = {name: sys.modules.pop(name) for name in _cupy_modules()}
    sys.path.insert(0, str(EMULATOR))
    _clear_gpukpm_device_caches()
    try:
        module = importlib.import_module("cupy")
        importlib.import_module("cupyx.scipy.sparse")
        assert module.__version__.endswith("+emulated"), module.__file__
        yield module
    finally:
        sys.path.remove(str(EMULATOR))
        for name in _cupy_modules():
            del sys.modules[name]
        sys.modules.update(saved)
        _clear_gpukpm_device_caches()
