"""Periodic progress lines with rate and ETA for long runs (to stderr)."""
from __future__ import annotations

import sys
import time

from gpukpm import envflags

__all__ = ["Progress"]


class Progress:
    """``Progress(total, label, unit)``; call :meth:`advance` as work completes.

    Prints at most one line every ``interval`` seconds (and a final line):
    ``label: 12/40 blocks (30.0 %), 3.2 blocks/s, ETA 8.7 s``.  Silent when
    ``enabled`` is False or ``GPUKPM_QUIET`` is set.
    """

    def __init__(self, total: float, label: str, unit: str = "steps", interval: float = 5.0,
                 enabled: bool = True, stream=None):
        self.total = float(total)
        self.label = label
        self.unit = unit
        self.interval = interval
        self.enabled = enabled and not envflags.get("GPUKPM_QUIET")
        self.stream = stream or sys.stderr
        self.done = 0.0
        self.t0 = time.perf_counter()
        self._last = self.t0

    def advance(self, amount: float = 1.0) -> None:
        self.done += amount
        now = time.perf_counter()
        if self.enabled and (now - self._last >= self.interval or self.done >= self.total):
            self._last = now
            self.stream.write(self.line(now) + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Final line (the total may have been an estimate)."""
        if self.enabled and self.done < self.total:
            self.total = self.done
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def line(self, now: float | None = None) -> str:
        now = time.perf_counter() if now is None else now
        elapsed = max(now - self.t0, 1e-9)
        rate = self.done / elapsed
        frac = self.done / self.total if self.total else 1.0
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        return (f"{self.label}: {self.done:g}/{self.total:g} {self.unit} ({100 * frac:.1f} %), "
                f"{rate:.3g} {self.unit}/s, elapsed {elapsed:.1f} s, ETA {eta:.1f} s")
