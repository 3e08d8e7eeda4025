"""Models: lattices, Hamiltonians (real space and Bloch), operators, stencils, random streams.

The public names of :mod:`gpukpm.models.hamiltonians` (the model classes,
``System``, ``model_from_dict``) are re-exported here, so
``from gpukpm.models import GrapheneRashba`` is the API.
"""
from gpukpm.models.hamiltonians import *  # noqa: F401,F403
from gpukpm.models.hamiltonians import __all__  # noqa: F401
