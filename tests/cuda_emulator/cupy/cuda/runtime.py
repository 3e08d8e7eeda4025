"""Emulated ``cupy.cuda.runtime``: device count and properties (``CUPY_EMULATOR_DEVICES``)."""
from __future__ import annotations

import os


class CUDARuntimeError(RuntimeError):
    pass


is_hip = False


def getDeviceCount() -> int:
    return int(os.environ.get("CUPY_EMULATOR_DEVICES", "1"))


def getDevice() -> int:
    from . import get_device_id

    return get_device_id()


def setDevice(device: int) -> None:
    """``cudaSetDevice`` (creates the device's primary context, CUDA ≥ 12)."""
    from .. import _emulator

    if not 0 <= int(device) < getDeviceCount():
        raise CUDARuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {device}")
    _emulator.set_current(int(device))


def getDeviceProperties(device: int) -> dict:
    from . import memory_total
    from .. import _emulator

    if not 0 <= int(device) < getDeviceCount():
        raise CUDARuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {device}")
    return {"name": b"Emulated CUDA device (NumPy on the host)", "totalGlobalMem": memory_total(),
            "major": 9, "minor": 0, "multiProcessorCount": 1,
            "computeMode": _emulator.compute_mode()}


def runtimeGetVersion() -> int:
    return 12090


def driverGetVersion() -> int:
    return 12090
