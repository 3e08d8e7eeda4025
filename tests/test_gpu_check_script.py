"""``benchmarks/gpu_check.sh`` — the prepared device check — runs end to end without a device:
``--dry-run`` (CPU, tiny sizes, device steps skipped) and ``--dry-run --emulate`` (the device steps on
the CUDA emulator), so the script that gets the scarce device time is known to work (issue 19)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"

STEPS = ["device", "install", "info", "gpu-tests", "bench-chebyshev", "bench-kubo", "bench-kspace"]


def _run(tmp_path, *flags, budget=None):
    env = dict(os.environ, GPU_CHECK_RESULTS=str(tmp_path), PYTHON=sys.executable, PYTHONPATH="")
    env.pop("OUT", None)
    if budget is not None:
        env["GPU_CHECK_BUDGET_S"] = str(budget)
    proc = subprocess.run(["bash", str(SCRIPT), *flags], capture_output=True, text=True, env=env, timeout=540)
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    return proc, summary


@pytest.mark.skipif(shutil.which("timeout") is None, reason="needs coreutils timeout")
def test_dry_run_runs_every_step_on_the_cpu(tmp_path):
    proc, summary = _run(tmp_path, "--dry-run")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    status = {s["name"]: s["status"] for s in summary["steps"]}
    assert list(status) == STEPS
    assert status["device"] == status["gpu-tests"] == "skipped" and summary["failed"] == []
    assert all(status[name] == "ok" for name in ("install", "info", "bench-chebyshev", "bench-kubo", "bench-kspace"))
    assert (tmp_path / "gpu_check.log").read_text().count("===") == len(STEPS)
    for name in ("chebyshev", "kubo", "kspace"):
        assert json.loads((tmp_path / f"{name}_cpu_check.json").read_text())["machine"]["device"]["backend"] == "cpu"


@pytest.mark.skipif(shutil.which("timeout") is None, reason="needs coreutils timeout")
def test_out_of_time_steps_are_skipped_and_failures_do_not_stop_the_run(tmp_path):
    """A budget too small for the later steps skips them (logged); the run still writes its summary."""
    proc, summary = _run(tmp_path, "--dry-run", budget=25)
    status = {s["name"]: (s["status"], s["note"]) for s in summary["steps"]}
    assert list(status) == STEPS and status["bench-kspace"] == ("skipped", "out of time")
    assert proc.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("timeout") is None, reason="needs coreutils timeout")
def test_emulated_dry_run_runs_the_device_steps(tmp_path):
    proc, summary = _run(tmp_path, "--dry-run", "--emulate")
    status = {s["name"]: s["status"] for s in summary["steps"]}
    assert status["gpu-tests"] == "ok" and status["bench-kubo"] == "ok", proc.stdout[-4000:]
    assert summary["failed"] == [] and proc.returncode == 0
    assert json.loads((tmp_path / "kubo_gpu_check.json").read_text())["machine"]["device"]["cupy"].endswith("+emulated")
