"""Public KPM entry points (the names other people's code calls).

* :func:`kubo_moments` — 2D Chebyshev moments of a real-space system;
* :func:`plan_kubo` — its plan (block size, tiles, routes, memory, predicted cost); ``.run()`` computes it;
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
from gpukpm.engine.plan import KuboPlan, plan_kubo

__all__ = ["Moments", "Response", "KuboPlan", "kubo_moments", "plan_kubo", "kspace_moments", "kubo_response", "conductivity",
           "dos_moments", "dos"]
