"""Aliases from the flat layout's module paths to the subpackages (``gpukpm.kubo`` →
``gpukpm.response.kubo``): ``import gpukpm.kubo`` gives the very module object of the new
path, so attributes, monkeypatching and pickles agree.  Imported lazily, on first use."""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

#: old module path → its home in the subpackage layout
LEGACY_MODULES = {
    "gpukpm.lattice": "gpukpm.models.lattice", "gpukpm.operators": "gpukpm.models.operators",
    "gpukpm.stencil": "gpukpm.models.stencil", "gpukpm.random": "gpukpm.models.random",
    "gpukpm.backend": "gpukpm.engine.backend", "gpukpm.cpu_kernels": "gpukpm.engine.cpu_kernels",
    "gpukpm.gpu_kernels": "gpukpm.engine.gpu_kernels", "gpukpm.chebyshev": "gpukpm.engine.chebyshev",
    "gpukpm.spectrum": "gpukpm.engine.spectrum", "gpukpm.estimators": "gpukpm.engine.estimators",
    "gpukpm.stats": "gpukpm.engine.stats", "gpukpm.progress": "gpukpm.engine.progress",
    "gpukpm.moments": "gpukpm.engine.realspace", "gpukpm.kspace": "gpukpm.engine.kspace",
    "gpukpm.kernels": "gpukpm.response.kernels", "gpukpm.kubo": "gpukpm.response.kubo",
    "gpukpm.dos": "gpukpm.response.dos",
    "gpukpm.semiclassical": "gpukpm.torque.semiclassical", "gpukpm.comparison": "gpukpm.torque.comparison",
    "gpukpm.config": "gpukpm.run.config", "gpukpm.io": "gpukpm.run.io", "gpukpm.parallel": "gpukpm.run.parallel",
    "gpukpm.aggregate": "gpukpm.run.aggregate", "gpukpm.cli": "gpukpm.run.cli",
    "gpukpm.configurations": "gpukpm.run.configurations",
}


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self.own_spec = module.__spec__
        return module

    def exec_module(self, module):
        module.__spec__ = self.own_spec  # the import system stamped the alias spec on it: restore


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname not in LEGACY_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(LEGACY_MODULES[fullname]))


def install() -> None:
    """Put the alias finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder())
