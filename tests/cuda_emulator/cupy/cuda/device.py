"""Emulated ``cupy.cuda.device``: the per-device library handles gpukpm asks for."""
from __future__ import annotations

from .. import _emulator


def get_cublas_handle() -> int:
    """A cuBLAS handle of the current device (creating it needs a context there)."""
    return 1000 + _emulator.touch()
