"""The ``GPUKPM_*`` environment variables: one reader and one truth rule.

A flag is true for ``1``, ``true``, ``yes``, ``on`` and false for ``0``, ``false``, ``no``,
``off`` or the empty string (case and surrounding blanks ignored); unset means its default.
Any other value is an :class:`EnvFlagError` naming the variable.  :data:`FLAGS` is the one
table of every variable (the README's table lists the same names; a test checks it).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from gpukpm.errors import UsageError

__all__ = ["EnvFlagError", "Flag", "FLAGS", "get"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class EnvFlagError(UsageError):
    """A ``GPUKPM_*`` variable holds a value its kind does not allow."""


@dataclass(frozen=True)
class Flag:
    """One environment variable: ``kind`` is ``"bool"``, ``"int"`` (≥ 0), ``"path"`` or a tuple of choices."""

    kind: object
    default: object
    doc: str


FLAGS = {
    "GPUKPM_BACKEND": Flag(("auto", "cpu", "gpu"), "auto", "backend when neither the config nor the API names one"),
    "GPUKPM_DEVICE": Flag("int", 0, "GPU index (modulo the device count); MPI runs set it per rank"),
    "GPUKPM_QUIET": Flag("bool", False, "no progress lines"),
    "GPUKPM_MPI": Flag("bool", True, "false: never import mpi4py (serial run)"),
    "GPUKPM_KEEP_TASKS": Flag("bool", False, "keep OUTPUT.tasks/ after the merge of a moments run"),
    "GPUKPM_NUMBA": Flag("bool", True, "false: SciPy CSR instead of the Numba CPU kernels"),
    "GPUKPM_GPU_STENCIL": Flag("bool", True, "false: cuSPARSE CSR instead of the CUDA stencil kernel"),
    "GPUKPM_GPU_CSR_KERNEL": Flag("bool", True, "false: cuSPARSE SpMM plus a copy instead of the fused CSR step kernel"),
    "GPUKPM_KERNEL_DIR": Flag("path", None, "cache of generated CPU kernels (default ~/.cache/gpukpm/kernels)"),
    "GPUKPM_CACHE": Flag("path", None, "folder of gpukpm plan's CPU calibration (default ~/.cache/gpukpm)"),
}


def is_set(name: str) -> bool:
    """Whether the registered variable ``name`` is set to a non-empty value."""
    FLAGS[name]  # noqa: B018 — only registered variables
    return bool(os.environ.get(name, "").strip())


def get(name: str):
    """The value of the registered variable ``name`` (its default when unset)."""
    flag = FLAGS[name]
    raw = os.environ.get(name)
    if raw is None:
        return flag.default
    text = raw.strip()
    if flag.kind == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        allowed = "1/true/yes/on or 0/false/no/off/empty"
    elif flag.kind == "int":
        if text.isdigit():
            return int(text)
        allowed = "an integer >= 0"
    elif flag.kind == "path":
        return text or flag.default
    else:
        if text.lower() in flag.kind:
            return text.lower()
        if not text:
            return flag.default
        allowed = " | ".join(flag.kind)
    raise EnvFlagError(f"environment variable {name}={raw!r}: must be {allowed}")
