"""Emulated ``cupy.cuda``: devices, their memory, and the runtime queries gpukpm makes."""
from __future__ import annotations

import os

from . import runtime

__all__ = ["Device", "is_available", "runtime", "get_device_id"]

_current = [0]


def is_available() -> bool:
    return runtime.getDeviceCount() > 0


def get_device_id() -> int:
    return _current[0]


def memory_total() -> int:
    """Bytes of memory of one emulated device (``CUPY_EMULATOR_MEMORY``, default 8 GiB)."""
    return int(float(os.environ.get("CUPY_EMULATOR_MEMORY", 8 * 1024**3)))


class Device:
    """One emulated CUDA device."""

    def __init__(self, device=None):
        self.id = _current[0] if device is None else int(device)
        if not 0 <= self.id < runtime.getDeviceCount():
            raise runtime.CUDARuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {self.id}")

    def use(self) -> None:
        _current[0] = self.id

    def synchronize(self) -> None:
        pass

    @property
    def mem_info(self) -> tuple[int, int]:
        """(free, total) bytes; 90 % of the device is free."""
        total = memory_total()
        return int(0.9 * total), total

    @property
    def compute_capability(self) -> str:
        return "90"

    def __enter__(self):
        self._previous = _current[0]
        _current[0] = self.id
        return self

    def __exit__(self, *exc):
        _current[0] = self._previous
        return False
