"""Emulated ``cupy.cuda``: devices, their memory, and the runtime queries gpukpm makes.

As in CuPy, ``Device(d)`` itself makes no CUDA call; ``Device.use()`` and ``with Device(d)`` set
the device (and, CUDA ≥ 12, create its context), ``mem_info`` and ``synchronize`` run on it.
Which devices this process touched: :func:`cupy._emulator.contexts`.
"""
from __future__ import annotations

import os

from . import runtime
from .. import _emulator

__all__ = ["Device", "is_available", "runtime", "get_device_id"]


def is_available() -> bool:
    return runtime.getDeviceCount() > 0


def get_device_id() -> int:
    return _emulator.current()


def memory_total() -> int:
    """Bytes of memory of one emulated device (``CUPY_EMULATOR_MEMORY``, default 8 GiB)."""
    return int(float(os.environ.get("CUPY_EMULATOR_MEMORY", 8 * 1024**3)))


class Device:
    """One emulated CUDA device (the constructor touches nothing, as CuPy's)."""

    def __init__(self, device=None):
        self.id = _emulator.current() if device is None else int(device)
        if not 0 <= self.id < runtime.getDeviceCount():
            raise runtime.CUDARuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {self.id}")

    def use(self) -> None:
        _emulator.set_current(self.id)

    def _on(self) -> None:
        """CuPy's pattern for ``synchronize`` and ``mem_info``: switch to the device only if it is not
        current, run (needs a context), switch back."""
        previous = _emulator.current()
        if previous != self.id:
            _emulator.set_current(self.id)
        _emulator.touch()
        if previous != self.id:
            _emulator.set_current(previous)

    def synchronize(self) -> None:
        self._on()

    @property
    def mem_info(self) -> tuple[int, int]:
        """(free, total) bytes; 90 % of the device is free (``cudaMemGetInfo``: needs a context)."""
        self._on()
        total = memory_total()
        return int(0.9 * total), total

    @property
    def compute_capability(self) -> str:
        return "90"

    def __enter__(self):
        """As CuPy: push ``getDevice()`` (0 when never set), set this device if it differs."""
        self._previous = _emulator.current()
        if self._previous != self.id:
            _emulator.set_current(self.id)
        return self

    def __exit__(self, *exc):
        """As CuPy: ``setDevice(previous)`` unconditionally, so leaving ``with Device(1)`` in a process
        that never chose a device opens a context on device 0 (CUDA ≥ 12)."""
        _emulator.set_current(self._previous)
        return False
