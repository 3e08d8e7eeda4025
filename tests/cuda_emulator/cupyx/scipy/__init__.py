"""Emulated ``cupyx.scipy``: only ``sparse``."""
from . import sparse  # noqa: F401
