"""The one atomic writer: a file appears at its path complete or not at all.

:func:`atomic_path` yields a unique temporary name in the destination folder
(``.NAME.XXXXXXXX.SUFFIX``, from :func:`tempfile.mkstemp`, so two concurrent
writers never share one), and on success flushes it to disk (``fsync``), gives
it the permissions of a newly created file (``0o666`` less the umask) and
renames it into place (``os.replace``, atomic on POSIX); on failure the
temporary file is removed.  Every file gpukpm writes goes through it
(:mod:`gpukpm.run.io` for results, the CPU kernel cache for generated source).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_path", "atomic_text", "TEMPORARY_GLOB"]

#: glob of the temporary files of ``NAME`` left by a writer killed mid-write: ``TEMPORARY_GLOB.format(name=...)``
TEMPORARY_GLOB = ".{name}.*.tmp"


def _creation_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path, suffix: str = ".tmp"):
    """Yield a unique temporary path beside ``path``; rename it to ``path`` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _creation_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_text(path, text: str) -> None:
    """Write the text file ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            fh.write(text)
