"""Public KPM entry points (the names other people's code calls).

* :func:`kubo_moments` — 2D Chebyshev moments of a real-space system;
* :func:`kspace_moments` — the same moments of a pristine model in k space;
* :func:`kubo_response` — Kubo-Bastin reconstruction (total / sea / surface);
* :func:`conductivity` — σ_xx in e²/h;
* :func:`dos_moments`, :func:`dos` — density of states.
"""
from gpukpm.response.kubo import Response, conductivity, kubo_response
from gpukpm.engine.moments import Moments
from gpukpm.engine.realspace import dos_moments, kubo_moments
from gpukpm.response.dos import dos
from gpukpm.engine.kspace import kspace_moments  # noqa: F401

__all__ = ["Moments", "Response", "kubo_moments", "kspace_moments", "kubo_response", "conductivity",
           "dos_moments", "dos"]
