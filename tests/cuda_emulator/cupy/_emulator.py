"""Emulator-only bookkeeping (no CuPy counterpart): CUDA contexts per process and traffic counters.

**Contexts.**  A real process holds a CUDA context on every device it has touched: CUDA ≥ 12
creates the primary context at ``cudaSetDevice`` (``Device.use()``, ``with Device(d)``), and any
allocation, memory query or launch creates one on the current device (device 0 if none was set).
Device counts and properties (``getDeviceCount``, ``getDeviceProperties``) create none.  The
emulator records the devices this process touched (:func:`contexts`), and with
``CUPY_EMULATOR_COMPUTE_MODE=exclusive_process`` refuses a context on a device another process
holds, as CUDA does (``cudaErrorDevicesUnavailable``).  Other processes are the devices listed in
``CUPY_EMULATOR_BUSY_DEVICES`` (comma-separated: held elsewhere) and, when
``CUPY_EMULATOR_STATE_DIR`` names a folder shared by several processes (MPI ranks), the owners
recorded there: ``device-<d>.owner`` (exclusive mode) and ``contexts-<pid>.txt`` (every context a
process opened, one device per line, in any mode).

**Counters** (:func:`counts`): ``allocations`` and ``allocated_bytes`` (new device buffers: every
array that owns fresh memory, temporaries included), ``copies`` and ``copied_bytes``
(device-to-device copies into an existing array: ``a[...] = b`` with a device array ``b`` of more
than one element), and
``operand_copies`` (the copies CuPy makes of cuBLAS operands, :data:`cupy.cublas.operand_copies`).
Tests take a snapshot, run one Chebyshev step, and assert the difference, so a regression that
adds a temporary or a copy fails without timing anything.
"""
from __future__ import annotations

import os
import weakref

_counts = {"allocations": 0, "allocated_bytes": 0, "copies": 0, "copied_bytes": 0}
_owners: dict[int, weakref.ref] = {}
_contexts: set[int] = set()
_current = [None]  # device set by cudaSetDevice; None: the runtime's default (0) on first use

COMPUTE_MODES = {"default": 0, "exclusive_thread": 1, "prohibited": 2, "exclusive_process": 3}


def compute_mode() -> int:
    """``cudaComputeMode`` of every emulated device (``CUPY_EMULATOR_COMPUTE_MODE``)."""
    name = os.environ.get("CUPY_EMULATOR_COMPUTE_MODE", "default").strip().lower()
    if name not in COMPUTE_MODES:
        raise ValueError(f"CUPY_EMULATOR_COMPUTE_MODE must be one of {sorted(COMPUTE_MODES)}, got {name!r}")
    return COMPUTE_MODES[name]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _claim(device: int) -> None:
    """A context on ``device`` for this process: refused where the compute mode forbids it."""
    from .cuda.runtime import CUDARuntimeError

    mode = compute_mode()
    if mode == COMPUTE_MODES["prohibited"]:
        raise CUDARuntimeError("cudaErrorDevicesUnavailable: CUDA-capable device(s) is/are busy or unavailable "
                               f"(device {device} is in compute mode Prohibited)")
    busy = {int(d) for d in os.environ.get("CUPY_EMULATOR_BUSY_DEVICES", "").split(",") if d.strip()}
    state = os.environ.get("CUPY_EMULATOR_STATE_DIR")
    if mode == COMPUTE_MODES["exclusive_process"]:
        if device in busy:
            raise CUDARuntimeError("cudaErrorDevicesUnavailable: CUDA-capable device(s) is/are busy or unavailable "
                                   f"(device {device} is Exclusive_Process and held by another process)")
        if state:
            path = os.path.join(state, f"device-{device}.owner")
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
            except FileExistsError:
                with open(path) as fh:
                    owner = int(fh.read().strip() or 0)
                if owner != os.getpid() and _alive(owner):
                    raise CUDARuntimeError(
                        "cudaErrorDevicesUnavailable: CUDA-capable device(s) is/are busy or unavailable "
                        f"(device {device} is Exclusive_Process and held by process {owner})") from None
    if state:
        with open(os.path.join(state, f"contexts-{os.getpid()}.txt"), "a") as fh:
            fh.write(f"{device}\n")


def touch(device: int | None = None) -> int:
    """Make sure this process has a context on ``device`` (default: the current one); return it."""
    device = current() if device is None else int(device)
    if device not in _contexts:
        _claim(device)
        _contexts.add(device)
    return device


def current() -> int:
    return 0 if _current[0] is None else _current[0]


def set_current(device: int) -> None:
    """``cudaSetDevice``: CUDA ≥ 12 creates the device's primary context here."""
    touch(device)
    _current[0] = int(device)


def contexts() -> frozenset:
    """Devices this process holds a CUDA context on."""
    return frozenset(_contexts)


def allocated(host) -> None:
    """Count ``host`` (the NumPy buffer under a new device array) once if it owns fresh memory."""
    touch()
    if not host.flags.owndata:
        return
    key = id(host)
    ref = _owners.get(key)
    if ref is not None and ref() is host:
        return
    _counts["allocations"] += 1
    _counts["allocated_bytes"] += host.nbytes
    _owners[key] = weakref.ref(host, lambda _r, key=key: _owners.pop(key, None))


def check_device_range(ptr: int, nbytes: int, what: str) -> None:
    """Refuse ``[ptr, ptr + nbytes)`` unless it lies inside one live device buffer (an array that owns
    its memory): a raw-pointer library call would read or write another array's memory there."""
    for ref in list(_owners.values()):
        host = ref()
        if host is None:
            continue
        start = host.ctypes.data
        if start <= ptr and ptr + nbytes <= start + host.nbytes:
            return
    raise ValueError(f"emulated CUDA library: {what} [{ptr:#x}, +{nbytes} B) is not inside one device buffer")


def copied(nbytes: int = 0) -> None:
    _counts["copies"] += 1
    _counts["copied_bytes"] += int(nbytes)


def counts() -> dict:
    """Allocations, device copies and cuBLAS operand copies so far (take differences)."""
    from . import cublas

    return dict(_counts, operand_copies=cublas.operand_copies)


def reset_process() -> None:
    """Forget contexts and the current device (a fresh process; for tests in one interpreter)."""
    _contexts.clear()
    _current[0] = None
