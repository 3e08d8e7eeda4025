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


def raise_in_task(monkeypatch, index: int) -> None:
    """Make task ``index`` of :func:`gpukpm.parallel.run_moments` raise at its start."""
    from gpukpm import parallel

    compute = parallel._compute

    def failing(task, *args, **kwargs):
        if task.index == index:
            raise RuntimeError(f"task {index}: injected failure")
        return compute(task, *args, **kwargs)

    monkeypatch.setattr(parallel, "_compute", failing)


def _install_from_environment() -> None:
    from gpukpm import parallel

    raise_index = os.environ.get("FAULT_RAISE_IN_TASK")
    if raise_index is not None:
        compute = parallel._compute

        def failing(task, *args, **kwargs):
            if task.index == int(raise_index):
                raise RuntimeError(f"task {task.index}: injected failure")
            return compute(task, *args, **kwargs)

        parallel._compute = failing
    fail_after = int(os.environ.get("FAULT_FAIL_AFTER_TASKS", "0"))
    if fail_after:
        save, written = parallel.io.save_moments, []

        def save_then_maybe_die(path, moments):
            save(path, moments)
            if str(path).endswith(".h5") and ".tasks" in str(path):
                written.append(path)
                if len(written) == fail_after:
                    os.kill(os.getpid(), signal.SIGKILL)

        parallel.io.save_moments = save_then_maybe_die


if __name__ == "__main__":
    _install_from_environment()
    from gpukpm.cli import main

    sys.exit(main(sys.argv[1:]))
