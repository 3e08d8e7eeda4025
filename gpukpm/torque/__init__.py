"""Torque: magnetisation sampling and the least-squares spin-orbit-torque fit
(:mod:`gpukpm.torque.decomposition`, re-exported here), the Boltzmann closed forms
(:mod:`gpukpm.torque.semiclassical`) and Kubo-vs-Boltzmann comparisons
(:mod:`gpukpm.torque.comparison`)."""
from gpukpm.torque.decomposition import *  # noqa: F401,F403
from gpukpm.torque.decomposition import __all__  # noqa: F401
