"""The user guide (docs/): the tutorials run, the site builds with warnings as errors, and every
public name the README documented before the guide existed is documented in the guide.

* With the docs extra installed (``pip install -e ".[docs]"``), :func:`test_docs_build` builds the
  whole site with ``-W`` (every tutorial executed, every internal link and reference resolved);
  otherwise :func:`test_tutorial_runs` runs each tutorial script on its own.
* CI (``.ci/run``) builds the guide after the tests and sets ``GPUKPM_DOCS_CI=1``, so that the
  tutorials run once, not twice.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TUTORIALS = sorted((DOCS / "tutorials").glob("plot_*.py"))
IN_CI_BUILD = bool(os.environ.get("GPUKPM_DOCS_CI"))
HAVE_SPHINX = all(importlib.util.find_spec(m) for m in ("sphinx", "myst_parser", "sphinx_gallery", "sphinxarg",
                                                        "furo"))
TUTORIAL_SECONDS = 120  # each tutorial takes ≤ 30 s on 2 cores; the margin is for a loaded machine
# one thread, as in docs/conf.py: the tutorials are small, and threads oversubscribe a shared machine
SINGLE_THREAD = {var: os.environ.get(var, "1")
                 for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}

# The public names of the README as it stood before the guide (commit 16e7043): each must stay
# documented somewhere in the guide's sources.
README_NAMES = (
    # Python API
    "GrapheneRashba", "Rashba2DEGLattice", "Rashba2DEG", "Dirac", "real_space", "with_magnetization",
    "hamiltonian", "operator", "num_orbitals", "area", "bloch", "bloch_derivative", "bloch_operator",
    "spectral_bound", "spectral_lipschitz", "kubo_moments", "kspace_moments", "kubo_response", "conductivity",
    "mu_samples", "stderr", "block_size", "estimator", "plain", "spin_diluted", "spin_m_diluted",
    "sublattice_diluted", "spin_sublattice_diluted", "select", "moments_route", "per_sample_std", "broadening",
    "relaxation_time", "rashba_2deg", "dirac", "magnetizations", "fit_samples", "torque.fit",
    "conventional_torques", "boltzmann_reference", "sweep_rescaling", "window_usable_range",
    "kspace.MonkhorstPack", "kspace.PolarGrid", "kspace.SquareGrid", "points_at", "max_band_splitting",
    "window_cuts", "grid_edge_range",
    # command line and configuration
    "gpukpm dos", "gpukpm moments", "gpukpm kspace", "gpukpm response", "gpukpm aggregate", "gpukpm torques",
    "gpukpm torques-run", "gpukpm info", "--no-resume", "--csv", "--energies", "realspace.num_moments",
    "realspace.eta", "realspace.bounds", "realspace.target_rel_error", "match_realspace", "spectrum.sweep_bounds",
    "kpm.vectors_per_task", "kpm.memory_budget_gb", "GPUKPM_BACKEND", "GPUKPM_NUMBA", "GPUKPM_KERNEL_DIR",
    "GPUKPM_GPU_STENCIL", "GPUKPM_MPI", "GPUKPM_KEEP_TASKS", "OMP_NUM_THREADS",
    # files, workflow, cluster
    "gpukpm_kind", "gpukpm_version", "sample_realisations", "sample_vectors", "gemm_route", "operator_route",
    "relative_residual", "covariance", "num_samples", "install-profiles.sh", "slurm_account", "slurm_partition",
    "gpu_model", "config/paper-workstation.yaml", "config/paper.yaml", "cluster/local", "cluster/slurm",
    "gpu_check.sh", "cuda_emulator",
)


def _guide_text() -> str:
    parts = []
    for path in DOCS.rglob("*"):
        if path.suffix in (".md", ".rst", ".py") and not {"_build", "auto_tutorials"} & set(path.parts):
            parts.append(path.read_text(encoding="utf-8"))
    return "\n".join(parts)


def test_readme_names_are_documented_in_the_guide():
    text = _guide_text()
    missing = [name for name in README_NAMES if name not in text]
    assert not missing, f"documented in the README before, absent from docs/: {missing}"


def test_readme_links_into_the_guide_and_keeps_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert 'pip install -e ".[workflow,mpi]"' in readme and 'pip install -e ".[test]"' in readme
    assert "sphinx -W" in readme and '".[docs]"' in readme
    for target in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / target).exists(), f"README links to {target}, which does not exist"


def test_every_tutorial_is_in_the_guide():
    names = {p.stem for p in TUTORIALS}
    assert len(names) >= 5
    gallery = (DOCS / "gallery.md").read_text(encoding="utf-8")
    assert all(name in gallery for name in names), "each tutorial's figure belongs in the gallery"


@pytest.mark.skipif(IN_CI_BUILD, reason="GPUKPM_DOCS_CI: .ci/run builds the guide (running every tutorial) "
                                        "after the tests")
@pytest.mark.skipif(HAVE_SPHINX, reason="the docs extra is installed: test_docs_build runs every tutorial")
@pytest.mark.parametrize("script", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(script, tmp_path):
    pytest.importorskip("matplotlib")
    env = dict(os.environ, **SINGLE_THREAD, MPLBACKEND="Agg", GPUKPM_QUIET="1",
               GPUKPM_BACKEND=os.environ.get("GPUKPM_BACKEND", "cpu"), PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=TUTORIAL_SECONDS)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]


@pytest.mark.skipif(IN_CI_BUILD, reason="GPUKPM_DOCS_CI: .ci/run builds the guide after the tests")
@pytest.mark.skipif(not HAVE_SPHINX, reason='the docs extra is not installed (pip install -e ".[docs]"); '
                                            "test_tutorial_runs runs the tutorials instead")
@pytest.mark.slow
def test_docs_build(tmp_path):
    """The whole site with warnings as errors: tutorials executed, internal links and references checked."""
    env = dict(os.environ, MPLBACKEND="Agg", GPUKPM_QUIET="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-E", "-b", "html",
                             str(DOCS), str(tmp_path / "html")], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=TUTORIAL_SECONDS * (len(TUTORIALS) + 1))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    for page in ("index", "install", "gallery", "reference/cli", "reference/configuration", "reference/api",
                 "conventions", "guide/workflow", "auto_tutorials/index"):
        assert (tmp_path / "html" / f"{page}.html").exists(), page


# ----------------------------------------------------------------------------- the schema page's renderer
def _renderer():
    spec = importlib.util.spec_from_file_location("gpukpm_docs", DOCS / "_ext" / "gpukpm_docs.py")
    if importlib.util.find_spec("docutils") is None:
        pytest.skip("docutils (docs extra) not installed")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_schema_page_renders_every_pipeline_key():
    docs = _renderer()
    schema = docs.SCHEMA_SOURCES["pipeline"]()
    text = "\n".join(docs.render_schema(schema))
    for section in ("realspace", "kspace", "response", "torque"):
        keys = docs._resolve(schema["properties"][section], schema).get("properties", {})
        assert keys, section
        for key in keys:
            assert f"``{key}``" in text, f"{section}.{key} missing from the schema page"


def test_schema_page_reads_pydantic_json_schema():
    """The renderer reads pydantic's JSON Schema constructs: $defs, $ref, anyOf with null, enum, title."""
    docs = _renderer()
    schema = {
        "title": "RunConfig", "type": "object", "description": "A run.",
        "$defs": {"Kpm": {"title": "Kpm", "type": "object", "properties": {
            "num_moments": {"anyOf": [{"type": "integer", "minimum": 2}, {"type": "null"}], "default": None,
                            "title": "Num Moments", "description": "Chebyshev moments N"},
            "estimator": {"enum": ["plain", "spin_diluted"], "type": "string", "default": "plain"}}}},
        "properties": {"kpm": {"$ref": "#/$defs/Kpm"}, "backend": {"type": "string", "default": "auto"}},
        "required": ["kpm"],
    }
    text = "\n".join(docs.render_schema(schema))
    assert "``kpm`` (object, required)" in text
    assert "``num_moments`` (integer or null)" in text and "Chebyshev moments N" in text
    assert '``"spin_diluted"``' in text and 'default ``"auto"``' in text


def test_run_schema_covers_the_defaults():
    docs = _renderer()
    text = "\n".join(docs.render_schema(docs.SCHEMA_SOURCES["run"]()))
    for key in ("num_moments", "estimator", "vectors_per_task", "memory_budget_gb", "kernel", "order"):
        assert f"``{key}``" in text
