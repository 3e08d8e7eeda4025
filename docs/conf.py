"""Sphinx configuration of the gpukpm user guide.

Build (offline, warnings as errors, tutorials executed):

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Sphinx + MyST (Markdown pages) + sphinx-gallery (the tutorials are Python scripts, run at every
build, their figures captured) + autodoc/napoleon (API from the numpydoc docstrings) +
sphinx-argparse (the CLI page from ``gpukpm.cli``'s parser) + ``_ext/gpukpm_docs.py`` (the
configuration schemas rendered from the code).
"""
import os
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))  # the gpukpm of this checkout, installed or not

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("GPUKPM_QUIET", "1")
# the guide runs on any machine: CPU unless the builder asks otherwise
os.environ.setdefault("GPUKPM_BACKEND", "cpu")
# One thread for the tutorials' small matrices: on a shared 2-core machine, threaded BLAS and Numba
# oversubscribed by other jobs took the tutorials 10× longer (measured: 139 s against 15 s for the
# disorder tutorial at load 10). Set these variables before the build to use more threads.
for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import gpukpm  # noqa: E402

project = "gpukpm"
author = "gpukpm developers"
copyright = "2026, gpukpm developers"
release = version = gpukpm.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx_gallery.gen_gallery",
    "sphinxarg.ext",
    "gpukpm_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "tutorials/README.rst",
                    "auto_tutorials/*.ipynb", "auto_tutorials/*.py", "auto_tutorials/*.zip",
                    "auto_tutorials/*.md5", "auto_tutorials/*.json"]

# ----------------------------------------------------------------------------- cross-references
# Every internal reference must resolve (-W turns a broken one into an error).  Docstrings write
# types as prose ("a System", "array (n, 3)"): those are not references, so the Python domain's
# classes are not checked; functions, methods, modules and attributes are.
nitpicky = True
# "more than one target" (ref.python): dataclass fields of the same name in two public classes
# (System.seed, Moments.seed) seen from a signature; the reference still renders
suppress_warnings = ["ref.python"]
nitpick_ignore_regex = [
    ("py:class", r".*"),
    ("py:obj", r".*"),
    # docstrings of the public modules point into internal modules the guide does not document
    # (their layout is being reorganised): they render as code, unresolved on purpose
    (r"py:(func|meth|mod|attr|data)", r"(~?gpukpm\.)?(chebyshev|random|estimators|stats|spectrum|kspace|kubo|"
                                      r"moments|lattice|operators|stencil|backend|io|config|parallel|"
                                      r"configurations|dos|aggregate|engine|response|run)(\..*)?"),
    # the subpackages' own modules (gpukpm.torque.semiclassical, gpukpm.models.hamiltonians, ...):
    # the guide documents them under their public names (gpukpm.semiclassical, gpukpm.models)
    (r"py:mod", r"gpukpm\.(models|engine|response|torque|run)\.\w+"),
    (r"py:(func|meth|attr|data|obj)", r"gpukpm\.(models|engine|response|torque|run)\.\w+\.\w+.*"),
    (r"py:(func|meth|attr|data)", r"[A-Za-z_][A-Za-z_0-9]*"),  # bare names inside a docstring's own module
]

# ----------------------------------------------------------------------------- MyST
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# ----------------------------------------------------------------------------- autodoc
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_mock_imports = ["cupy", "cupyx", "mpi4py"]
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False

# ----------------------------------------------------------------------------- sphinx-gallery
# The tutorials (docs/tutorials/plot_*.py) run at every build on small sizes (each well under 30 s
# on 2 cores) so that they cannot rot; the generated pages go to docs/auto_tutorials/.
sphinx_gallery_conf = {
    "examples_dirs": ["tutorials"],
    "gallery_dirs": ["auto_tutorials"],
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    # every build runs every tutorial, changed or not (the code they call may have changed);
    # GPUKPM_DOCS_REUSE=1 reuses the outputs of unchanged tutorials while editing prose
    "run_stale_examples": not os.environ.get("GPUKPM_DOCS_REUSE"),
    "only_warn_on_example_error": False,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "show_memory": False,
    "plot_gallery": "True",
    "write_computation_times": False,  # its page loads scripts from the web
}
warnings.filterwarnings("ignore", category=UserWarning, message="Matplotlib is currently using agg")

# ----------------------------------------------------------------------------- HTML
html_theme = "furo"
html_title = f"gpukpm {release}"
html_static_path = []
html_show_sourcelink = False
