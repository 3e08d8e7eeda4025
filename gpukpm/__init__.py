"""gpukpm: kernel polynomial method for spin-orbit torques in 2D Dirac materials."""
__version__ = "0.1.0"
