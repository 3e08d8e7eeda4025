# Names shared by the rules (from gpukpm.run.pipeline.Pipeline, which maps the pipeline's configuration onto
# one gpukpm run configuration per job) and the rules' input functions.
import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np

from gpukpm.run.config import build_model
from gpukpm.run.planning import production_trace

PARTS = PIPE.parts
MAG_LABELS = PIPE.mag_labels
W_VALUES = PIPE.w_values
CHUNKS = PIPE.chunks
CASES = PIPE.cases
RS = config["realspace"]
RS_ON = PIPE.realspace_on
MATCHED = [c for c in CASES if PIPE.matched(c)]
MAIN_PART = "total" if "total" in PARTS else PARTS[0]


wildcard_constraints:
    W="[^/]+",
    m="[0-9]+",
    c="[0-9]+",
    case="[^/]+",
    part="total|sea|surface",
    set="realspace/W[^/]+|kspace/[^/]+",


def quoted_json(obj):
    """A shell-quoted JSON text (JSON is YAML: gpukpm reads it as its configuration)."""
    return shlex.quote(json.dumps(obj, sort_keys=True))


def set_energies(s):
    """START:STOP:NUM (eV) of a result set, for `gpukpm response --energies`."""
    e = PIPE.energies(s)
    return f"{e['start']!r}:{e['stop']!r}:{e['num']}"


def response_input(w):
    if w.set.startswith("kspace/"):
        return f"{RES}/{w.set}/moments/m{w.m}.h5"
    return f"{RES}/{w.set}/ensemble/m{w.m}.h5"


def kspace_figure_inputs(w):
    """Torque tables of the case and, when m̂ = ẑ (label 00) is computed, its sea and surface responses."""
    out = {"torques": expand(f"{RES}/kspace/{w.case}/torques/{{part}}.csv", part=PARTS)}
    if "00" in MAG_LABELS and {"sea", "surface"} <= set(PARTS):
        out["sea"] = f"{RES}/kspace/{w.case}/response/m00/sea.h5"
        out["surface"] = f"{RES}/kspace/{w.case}/response/m00/surface.h5"
    return out


def report_inputs(w):
    sets = PIPE.result_sets()
    out = {"kspace": expand(f"{RES}/figures/kspace_{{case}}.png", case=list(CASES)),
           "kfits": expand(f"{RES}/kspace/{{case}}/torques/{MAIN_PART}.csv", case=list(CASES)),
           "fits": expand(f"{RES}/{{s}}/torques/{{part}}.csv", s=sets, part=PARTS)}
    out["responses"] = expand(f"{RES}/{{s}}/response/m{MAG_LABELS[0]}/{MAIN_PART}.h5", s=sets)
    if "00" in MAG_LABELS and {"sea", "surface"} <= set(PARTS):  # m̂ = ẑ: Kubo vs Boltzmann per k-space case
        out["kz_sea"] = expand(f"{RES}/kspace/{{c}}/response/m00/sea.h5", c=list(CASES))
        out["kz_surface"] = expand(f"{RES}/kspace/{{c}}/response/m00/surface.h5", c=list(CASES))
    if RS_ON:
        out["disorder"] = f"{RES}/figures/disorder.png"
        out["peaks"] = f"{RES}/peaks.json"
    return out


def all_sets():
    return [f"realspace/W{W}" for W in W_VALUES] + [f"kspace/{c}" for c in CASES]


# ----------------------------------------------------------------------------- job resources
# Derived from each job's size by workflow/scripts/jobcost.py (a stand-in cost model, formula in its
# docstring; swap moments_resources/kspace_resources for gpukpm's plan module when it exists): GPUs =
# MPI ranks = the job's gpukpm tasks (at most GPUKPM_GPUS_PER_NODE, default 4), runtime and memory from
# D, nnz, N and the vectors.  GPU resources only when the configuration's backend is not "cpu".
sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))
import jobcost  # noqa: E402

GPU_JOBS = str(config["backend"]).lower() != "cpu"
RANKS_PER_NODE = int(os.environ.get("GPUKPM_GPUS_PER_NODE", jobcost.DEFAULT_RANKS_PER_NODE))
if RS_ON:
    _probe = build_model(RS["model"]).real_space(shape=(8, 8))  # nnz per orbital does not depend on the size
    _NNZ_PER_ORBITAL = _probe.hamiltonian.nnz / _probe.num_orbitals
    _ORBITALS = int(round(_probe.num_orbitals / 64)) * int(np.prod(RS["shape"]))


def moments_resources(c):
    """{tasks, gpu, runtime, mem_mb} of the moments job of realisation chunk ``c`` (jobcost.py)."""
    return jobcost.moments_job_resources(
        num_orbitals=_ORBITALS, nnz=int(_NNZ_PER_ORBITAL * _ORBITALS), num_moments=PIPE.sweep_num_moments, num_left=3, num_ops=4,
        num_realisations=len(CHUNKS[str(c)]), trace=RS["trace"], vectors_per_task=RS["vectors_per_task"],
        gpu=GPU_JOBS, ranks_per_node=RANKS_PER_NODE, memory_budget_gb=RS["memory_budget_gb"])


def kspace_resources(case):
    """{tasks, gpu, runtime, mem_mb} of one k-space moments job of ``case`` (jobcost.py)."""
    cs = CASES[case]
    grid = list(RS["shape"]) if PIPE.matched(case) else cs["grid"]
    if isinstance(grid, dict):
        points = int(grid.get("num_k", 1)) * int(grid.get("num_phi", 1)) if grid.get("kind") == "polar" \
            else int(grid.get("num", 1)) ** 2
    else:
        points = int(np.prod(grid))
    bands = build_model(cs["model"]).orbitals_per_cell
    return jobcost.kspace_job_resources(num_points=points, bands=int(bands),
                                        num_moments=PIPE.sweep_num_moments if PIPE.matched(case) else cs["num_moments"],
                                        gpu=GPU_JOBS)


# ----------------------------------------------------------------------------- pilot (rules/pilot.smk)
PILOT = RS.get("pilot") if RS_ON else None


def pilot_plan_input(w):
    return [checkpoints.pilot_plan.get(W=w.W).output.json] if PILOT else []


def production_job(w):
    """The run configuration of a moments job: the configured trace, or the pilot's sizing of it."""
    if not PILOT:
        return PIPE.moments_job(w.W, w.m, w.c)
    with open(checkpoints.pilot_plan.get(W=w.W).output.json) as fh:
        plan = json.load(fh)
    return PIPE.moments_job(w.W, w.m, w.c, trace=production_trace(plan, RS["realisations"], PILOT["min_trace"],
                                                                    PILOT["max_trace"]))
