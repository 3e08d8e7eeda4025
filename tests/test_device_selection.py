"""Each process opens a CUDA context on its own device only (issue 19), on the CUDA emulator.

The emulator records the devices a process touched (CuPy's rules: ``Device.use()`` and leaving
``with Device(d)`` set a device, which opens its context under CUDA ≥ 12; allocations and memory
queries open one on the current device) and, in ``exclusive_process`` compute mode, refuses a
device another process holds.  Rank ℓ of a node must touch device ``ℓ mod n`` and nothing else,
from its first CUDA call; a GPU that cannot be used names the missing CUDA library, and ``auto``
says so when it falls back to the CPU on a machine that has an NVIDIA GPU.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from gpukpm import kpm, models
from gpukpm.engine import backend
from gpukpm.run import io, parallel

from conftest import EMULATOR, _clear_gpukpm_device_caches

REPO = Path(__file__).resolve().parents[1]
MPIEXEC = os.path.join(os.path.dirname(sys.executable), "mpiexec")


@pytest.fixture(scope="module")
def cupy(cupy_emulator):
    return cupy_emulator


@pytest.fixture
def fresh(cupy, monkeypatch):
    """A 'new process': no contexts, no current device, no cached probe; 4 emulated GPUs."""
    from cupy import _emulator

    monkeypatch.setenv("CUPY_EMULATOR_DEVICES", "4")
    for name in ("GPUKPM_DEVICE", "CUDA_VISIBLE_DEVICES", *backend.LAUNCHER_LOCAL_RANK):
        monkeypatch.delenv(name, raising=False)
    _emulator.reset_process()
    _clear_gpukpm_device_caches()
    yield _emulator
    _emulator.reset_process()
    _clear_gpukpm_device_caches()
    monkeypatch.delenv("GPUKPM_DEVICE", raising=False)


def test_emulator_follows_cupy_device_rules(fresh, cupy):
    """Constructing a Device touches nothing; leaving ``with Device(1)`` in a process that never set a
    device switches to device 0 (CuPy's __exit__ calls setDevice), which opens a context there."""
    cupy.cuda.Device(2)
    assert cupy.cuda.runtime.getDeviceCount() == 4 and fresh.contexts() == set()
    with cupy.cuda.Device(1):
        cupy.zeros(1)
    assert fresh.contexts() == {0, 1}
    fresh.reset_process()
    cupy.cuda.Device(3).use()
    with cupy.cuda.Device(3):
        assert cupy.zeros(2).device.id == 3
    _ = cupy.cuda.Device(3).mem_info
    assert fresh.contexts() == {3}


def test_exclusive_process_mode_refuses_a_held_device(fresh, cupy, monkeypatch):
    monkeypatch.setenv("CUPY_EMULATOR_COMPUTE_MODE", "exclusive_process")
    monkeypatch.setenv("CUPY_EMULATOR_BUSY_DEVICES", "0")
    with pytest.raises(cupy.cuda.runtime.CUDARuntimeError, match="busy or unavailable"):
        cupy.zeros(1)  # the runtime's default device 0 is another process's
    cupy.cuda.Device(1).use()
    cupy.zeros(1)
    assert fresh.contexts() == {1}
    assert cupy.cuda.runtime.getDeviceProperties(1)["computeMode"] == 3


@pytest.mark.parametrize("local_rank", [0, 1, 3])
def test_rank_touches_only_its_own_device(fresh, monkeypatch, local_rank):
    """Every rank's first CUDA call is on its device, under exclusive_process with the other GPUs held
    by other ranks; the whole computation stays there."""
    monkeypatch.setenv("CUPY_EMULATOR_COMPUTE_MODE", "exclusive_process")
    monkeypatch.setenv("CUPY_EMULATOR_BUSY_DEVICES", ",".join(str(d) for d in range(4) if d != local_rank))
    be, sharing = parallel.select_backend("gpu", local_rank=local_rank, local_size=4)
    assert (be.is_gpu, be.device_id, sharing, os.environ["GPUKPM_DEVICE"]) == (True, local_rank, 1, str(local_rank))
    system = models.GrapheneRashba(t=2.7, rashba=0.3, exchange=0.4, mass=0.1).real_space(shape=(3, 3), seed=1)
    be.free_memory(), be.device_info(), be.synchronize()
    kpm.kubo_moments(system, left=("sx",), right="jx", num_moments=8, trace=1, seed=0, backend=be)
    kpm.dos_moments(system, num_moments=8, trace=1, seed=0, backend=be)
    assert fresh.contexts() == {local_rank}


def test_auto_selection_uses_the_launchers_local_rank(fresh, monkeypatch):
    """A single-process command under srun (no MPI in the process) takes SLURM_LOCALID's device."""
    monkeypatch.setenv("SLURM_LOCALID", "6")
    assert backend.default_device() == 2
    be = backend.get_backend("auto")
    assert (be.is_gpu, be.device_id) == (True, 2) and fresh.contexts() == {2}


def test_slurm_bound_gpus_are_not_counted_as_shared(fresh, monkeypatch):
    """SLURM binds one GPU per task: each rank sees one device (its own) as device 0."""
    monkeypatch.setenv("CUPY_EMULATOR_DEVICES", "1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        be, sharing = parallel.select_backend("gpu", 2, 4, local_visible=["0", "1", "2", "3"])
    assert (be.device_id, sharing) == (0, 1)
    assert parallel.physical_devices([None, None, None], 2) == [("ordinal", 0), ("ordinal", 1), ("ordinal", 0)]
    assert parallel.physical_devices(["0,1", "0,1"], 2) == [("visible", "0"), ("visible", "1")]


def test_missing_library_is_named(fresh, cupy, monkeypatch, capsys):
    """A CUDA library that does not load: ``gpu`` fails naming it, ``gpukpm info`` reports it,
    and ``auto`` warns (the machine has an NVIDIA GPU) before running on the CPU."""
    from gpukpm.run import cli

    def broken(*args, **kwargs):
        raise ImportError("libcusolver.so.11: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(cupy.linalg, "eigh", broken, raising=False)
    usable, reason = backend.gpu_status()
    assert not usable and "cuSOLVER" in reason and "gpukpm[gpu]" in reason
    assert backend.gpu_missing_library() == "cuSOLVER"
    with pytest.raises(backend.BackendUnavailable, match="cuSOLVER"):
        backend.get_backend("gpu")
    marker = Path(os.environ.get("TMPDIR", "/tmp")) / f"nvidia0-{os.getpid()}"
    marker.write_text("")
    monkeypatch.setattr(backend, "NVIDIA_DRIVER_PATHS", (str(marker),))
    backend._warned_fallback.clear()
    try:
        with pytest.warns(RuntimeWarning, match="runs on the CPU although this machine has an NVIDIA GPU.*cuSOLVER"):
            assert not backend.get_backend("auto").is_gpu
        assert cli._cmd_info(argparse.Namespace(backend="cpu")) == 0
    finally:
        marker.unlink()
    info = json.loads(capsys.readouterr().out)
    assert info["gpu_usable"] is False and info["gpu_missing_library"] == "cuSOLVER"
    assert info["nvidia_hardware"] == str(marker) and info["backend"] == "cpu"


def test_no_warning_without_nvidia_hardware(fresh, monkeypatch):
    monkeypatch.setenv("CUPY_EMULATOR_DEVICES", "0")
    monkeypatch.setattr(backend, "NVIDIA_DRIVER_PATHS", ())
    monkeypatch.setattr(backend, "nvidia_hardware", lambda: None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not backend.get_backend("auto").is_gpu
    assert backend.gpu_missing_library() is None


@pytest.mark.skipif(not os.path.exists(MPIEXEC), reason="needs the mpiexec of the MPI wheel")
def test_mpi_ranks_open_contexts_on_their_own_devices_only(tmp_path):
    """``mpiexec -n 2 gpukpm moments`` with 2 GPUs in exclusive_process mode: each rank's contexts are
    exactly its own device (before issue 19 both ranks probed device 0 and the second was refused)."""
    try:
        from mpi4py import MPI  # noqa: F401
    except Exception:
        pytest.skip("mpi4py without an MPI library")
    config = {"model": {"name": "GrapheneRashba", "t": 2.7, "rashba": 0.3, "exchange": 0.4, "mass": 0.1},
              "system": {"shape": [4, 4], "disorder": 0.5, "realisations": 2},
              "kpm": {"num_moments": 16, "trace": 1, "seed": 1, "bounds": [-10, 10]}, "backend": "gpu"}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(config))
    state = tmp_path / "state"
    state.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(EMULATOR), str(REPO)]), GPUKPM_QUIET="1",
               CUPY_EMULATOR_DEVICES="2", CUPY_EMULATOR_COMPUTE_MODE="exclusive_process",
               CUPY_EMULATOR_STATE_DIR=str(state), GPUKPM_GPU_STENCIL="0", OMP_NUM_THREADS="1")
    for name in ("GPUKPM_DEVICE", "CUDA_VISIBLE_DEVICES", *backend.LAUNCHER_LOCAL_RANK):
        env.pop(name, None)
    proc = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-m", "gpukpm", "moments", str(path), "-o",
                           str(tmp_path / "out.h5"), "-q"], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    touched = sorted(tuple(sorted(set(f.read_text().split()))) for f in state.glob("contexts-*.txt"))
    assert touched == [("0",), ("1",)]
    devices = {r["device_id"] for r in io.load_moments(tmp_path / "out.h5").provenance["ranks"]}
    assert devices == {0, 1}


def test_gpu_extras_bring_the_cuda_libraries():
    """`pip install gpukpm[gpu]` on a node with only the driver: CuPy's [ctk] extra (CuPy >= 14) brings
    cudart, NVRTC, cuBLAS, cuSPARSE, cuSOLVER; gpu-system leaves them to the site's CUDA module."""
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["gpu"] == ["cupy-cuda12x[ctk]>=14"] and extras["gpu-cuda13"] == ["cupy-cuda13x[ctk]>=14"]
    assert extras["gpu-system"] == ["cupy-cuda12x>=13"] and extras["gpu-system-cuda13"] == ["cupy-cuda13x>=13"]
