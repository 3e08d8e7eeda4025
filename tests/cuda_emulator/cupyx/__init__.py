"""Emulated ``cupyx`` (see ``cupy.__doc__`` of the emulator): ``cupyx.scipy.sparse`` and ``cupyx.cusparse``."""
from . import cusparse, scipy  # noqa: F401
