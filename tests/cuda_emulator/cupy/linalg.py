"""Emulated ``cupy.linalg``: NumPy's linear algebra on device arrays (host arrays refused)."""
from __future__ import annotations

import numpy as _np

from . import _device_function


def __getattr__(name):
    from ._names import LINALG_NAMES

    if name not in LINALG_NAMES:
        raise AttributeError(f"module 'cupy.linalg' (emulated CuPy 14.2) has no attribute {name!r}")
    attribute = getattr(_np.linalg, name)
    if name.startswith("__") or not callable(attribute) or isinstance(attribute, type):
        return attribute
    return _device_function(attribute)
