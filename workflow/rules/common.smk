# Names shared by the rules (from gpukpm.run.pipeline.Pipeline, which maps the pipeline's configuration onto
# one gpukpm run configuration per job) and the rules' input functions.
import functools
import json
import os
import shlex

import numpy as np

from gpukpm.run.config import build_model
from gpukpm.run.planning import job_resources, kspace_job_resources, production_trace

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
# From gpukpm plan's cost model (gpukpm.run.planning.job_resources: the job planned on a probe lattice and
# scaled to its size, the nominal roofline of an H100 per rank, safety factor 3): GPUs = MPI ranks = the
# job's gpukpm tasks (at most GPUKPM_GPUS_PER_NODE, default 4), runtime and memory from the plan.  GPU
# resources only when the configuration's backend is not "cpu".
GPU_JOBS = str(config["backend"]).lower() != "cpu"
RANKS_PER_NODE = int(os.environ.get("GPUKPM_GPUS_PER_NODE", 4))


@functools.lru_cache(maxsize=None)
def moments_resources(c):
    """{tasks, gpu, runtime, mem_mb} of the moments jobs of realisation chunk ``c`` (planned at the largest W)."""
    w_max = max(W_VALUES, key=W_VALUES.get)
    return job_resources(PIPE.moments_job(w_max, MAG_LABELS[0], str(c)), gpu=GPU_JOBS, ranks_per_node=RANKS_PER_NODE)


def kspace_resources(case):
    """{tasks, gpu, runtime, mem_mb} of one k-space moments job of ``case`` (planning.kspace_job_resources)."""
    cs = CASES[case]
    grid = list(RS["shape"]) if PIPE.matched(case) else cs["grid"]
    if isinstance(grid, dict):
        points = int(grid.get("num_k", 1)) * int(grid.get("num_phi", 1)) if grid.get("kind") == "polar" \
            else int(grid.get("num", 1)) ** 2
    else:
        points = int(np.prod(grid))
    bands = build_model(cs["model"]).orbitals_per_cell
    return kspace_job_resources(num_points=points, bands=int(bands),
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
