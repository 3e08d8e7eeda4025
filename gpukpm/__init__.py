"""gpukpm: kernel polynomial method for spin-orbit torques in 2D Dirac materials.

The package is laid out as the data flow: :mod:`gpukpm.models` → :mod:`gpukpm.engine` →
:mod:`gpukpm.response` → :mod:`gpukpm.torque` → :mod:`gpukpm.run`; :mod:`gpukpm.kpm` is the
public KPM facade.  The module paths of the first, flat layout (``gpukpm.kubo``,
``gpukpm.spectrum``, ...) stay importable as aliases of their new homes
(:data:`gpukpm._legacy.LEGACY_MODULES`).
"""
__version__ = "0.1.0"

from gpukpm import _legacy

_legacy.install()
