"""Test-only fault injection for ``gpukpm moments`` (kept out of the shipped package).

As a script it runs the ``gpukpm`` command with two faults read from the environment:

    FAULT_RAISE_IN_TASK=i       task i raises at its start (on whichever rank owns it)
    FAULT_FAIL_AFTER_TASKS=k    the process SIGKILLs itself right after writing its k-th task file
                                (emulates a killed job; under MPI the launcher takes down the rest)

    python tests/faults.py moments CFG.yaml -o OUT.h5      (also under mpiexec)

In-process tests call :func:`raise_in_task` with pytest's ``monkeypatch``.
"""
from __future__ import annotations

import os
import signal
import sys


def _failing(compute, index: int):
    """``compute`` (gpukpm.run.parallel._compute) made to raise for task ``index``."""
    def failing(task, *args, **kwargs):
        if task.index == index:
            raise RuntimeError(f"task {index}: injected failure")
        return compute(task, *args, **kwargs)

    return failing


def raise_in_task(monkeypatch, index: int) -> None:
    """Make task ``index`` of :func:`gpukpm.run.parallel.run_moments` raise at its start."""
    from gpukpm.run import parallel

    monkeypatch.setattr(parallel, "_compute", _failing(parallel._compute, index))


def _install_from_environment() -> None:
    from gpukpm.run import parallel

    if os.environ.get("FAULT_RAISE_IN_TASK") is not None:
        parallel._compute = _failing(parallel._compute, int(os.environ["FAULT_RAISE_IN_TASK"]))
    fail_after = int(os.environ.get("FAULT_FAIL_AFTER_TASKS", "0"))
    if fail_after:
        save, written = parallel.io.save_moments, []

        def save_then_maybe_die(path, moments, *args, **kwargs):
            save(path, moments, *args, **kwargs)
            if ".tasks" in str(path) and ".part-" not in str(path):  # a task file: not a batch, not the output
                written.append(path)
                if len(written) == fail_after:
                    os.kill(os.getpid(), signal.SIGKILL)

        parallel.io.save_moments = save_then_maybe_die


if __name__ == "__main__":
    _install_from_environment()
    from gpukpm.run.cli import main

    sys.exit(main(sys.argv[1:]))
