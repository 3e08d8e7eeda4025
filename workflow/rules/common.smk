# Helpers shared by the rules: labels, per-job gpukpm configurations, target lists, job resources.
import os

from gpukpm.run.config import build_model
from gpukpm.engine.spectrum import sweep_rescaling
from gpukpm.torque import design_matrix, magnetizations as _magnetizations

PARTS = list(config["response"]["parts"])
_ALL_MAGS = _magnetizations(config["torque"]["order"])
MAG_IDS = list(range(len(_ALL_MAGS))) if config["torque"]["subset"] is None else list(config["torque"]["subset"])
for _i in MAG_IDS:
    if _i >= len(_ALL_MAGS):
        raise ValueError(f"torque.subset: index {_i} out of range (order {config['torque']['order']} has "
                         f"{len(_ALL_MAGS)} magnetisations)")
if len(set(MAG_IDS)) != len(MAG_IDS):
    raise ValueError(f"torque.subset: repeated indices {MAG_IDS}")
if np.linalg.matrix_rank(design_matrix(_ALL_MAGS[MAG_IDS]).reshape(-1, 6)) < 6:
    raise ValueError(f"torque.subset: magnetisations {MAG_IDS} do not determine the 6 torque parameters")
MAG_LABELS = [f"{i:02d}" for i in MAG_IDS]


def magnetization(label):
    return [float(x) for x in _ALL_MAGS[int(label)]]


def w_label(w):
    return f"{float(w):g}"


RS = config["realspace"]
RS_ON = bool(RS["enabled"])
W_VALUES = {w_label(w): float(w) for w in RS["disorder"]} if RS_ON else {}
if len(W_VALUES) != len(RS.get("disorder", [])) and RS_ON:
    raise ValueError(f"realspace.disorder: repeated values {RS['disorder']}")
if RS_ON:
    _ids = list(range(RS["realisations"]))
    _k = RS["realisations_per_job"]
    CHUNKS = {str(c): _ids[c * _k : (c + 1) * _k] for c in range(math.ceil(len(_ids) / _k))}
else:
    CHUNKS = {}

KS = config["kspace"]
CASES = dict(KS["cases"]) if KS["enabled"] else {}
if RS_ON is False and not CASES:
    raise ValueError("nothing to do: realspace.enabled is false and kspace has no cases")

wildcard_constraints:
    W="[^/]+",
    m="[0-9]+",
    c="[0-9]+",
    case="[^/]+",
    part="total|sea|surface",
    set="realspace/W[^/]+|kspace/[^/]+",


if RS_ON:
    if (RS["num_moments"] is None) == (RS["eta"] is None):
        raise ValueError("realspace: give num_moments or eta (the band-centre broadening, eV), exactly one")
    # One rescaling and one N for every W of the sweep: identical η(ε) at every W (gpukpm.engine.spectrum.sweep_rescaling)
    SWEEP_SCALING, SWEEP_N = sweep_rescaling(
        build_model(RS["model"]), list(W_VALUES.values()), num_moments=RS["num_moments"], eta=RS["eta"],
        kernel=config["response"]["kernel"], bounds=RS["bounds"])
    SWEEP_BOUNDS = [SWEEP_SCALING.emin, SWEEP_SCALING.emax]


def moments_config(W, m, c):
    """gpukpm configuration of one real-space moments job (moments-relevant parameters only)."""
    kpm = {"num_moments": SWEEP_N, "trace": RS["trace"], "seed": RS["seed"],
           "left": ["sx", "sy", "sz"], "right": "jx", "bounds": SWEEP_BOUNDS}
    for key in ("vectors_per_task", "memory_budget_gb"):
        if RS[key] is not None:
            kpm[key] = RS[key]
    return {"model": dict(RS["model"], magnetization=magnetization(m)),
            "system": {"shape": list(RS["shape"]), "disorder": W_VALUES[W], "realisations": CHUNKS[c]},
            "kpm": kpm, "backend": config["backend"]}


def matched_case(cs):
    """A k-space case that mirrors the pristine real-space lattice (same model, grid = shape, sweep's a, b, N)."""
    return bool(cs.get("match_realspace"))


for _name, _cs in CASES.items():
    if matched_case(_cs):
        if not RS_ON:
            raise ValueError(f"kspace.cases.{_name}.match_realspace needs realspace.enabled")
        if _cs["model"] != RS["model"]:
            raise ValueError(f"kspace.cases.{_name}.match_realspace: model {_cs['model']} differs from "
                             f"realspace.model {RS['model']}")
        for _key in ("grid", "num_moments", "bounds", "window", "energies"):
            if _cs.get(_key) is not None:
                raise ValueError(f"kspace.cases.{_name}.{_key}: not allowed with match_realspace (taken from realspace)")
    elif _cs.get("grid") is None or _cs.get("num_moments") is None or _cs.get("energies") is None:
        raise ValueError(f"kspace.cases.{_name}: grid, num_moments and energies are required")


def kspace_config(case, m):
    cs = CASES[case]
    matched = matched_case(cs)
    ks = {"grid": list(RS["shape"]) if matched else cs["grid"], "window": cs["window"]}
    if cs["chunk_size"] is not None:
        ks["chunk_size"] = cs["chunk_size"]
    return {"model": dict(cs["model"], magnetization=magnetization(m)), "kspace": ks,
            "kpm": {"num_moments": SWEEP_N if matched else cs["num_moments"], "left": ["sx", "sy", "sz"],
                    "right": "jx", "bounds": SWEEP_BOUNDS if matched else cs["bounds"]},
            "backend": config["backend"]}


def quoted_json(obj):
    """A shell-quoted JSON text (JSON is YAML: gpukpm reads it as its configuration)."""
    return shlex.quote(json.dumps(obj, sort_keys=True))


def set_energies(s):
    case = None if s.startswith("realspace/") else CASES[s.split("/", 1)[1]]
    e = RS["energies"] if case is None or matched_case(case) else case["energies"]
    return f"{e['start']!r}:{e['stop']!r}:{e['num']}"


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
        num_orbitals=_ORBITALS, nnz=int(_NNZ_PER_ORBITAL * _ORBITALS), num_moments=SWEEP_N, num_left=3, num_ops=4,
        num_realisations=len(CHUNKS[str(c)]), trace=RS["trace"], vectors_per_task=RS["vectors_per_task"],
        gpu=GPU_JOBS, ranks_per_node=RANKS_PER_NODE, memory_budget_gb=RS["memory_budget_gb"])


def kspace_resources(case):
    """{tasks, gpu, runtime, mem_mb} of one k-space moments job of ``case`` (jobcost.py)."""
    cs = CASES[case]
    grid = list(RS["shape"]) if matched_case(cs) else cs["grid"]
    if isinstance(grid, dict):
        points = int(grid.get("num_k", 1)) * int(grid.get("num_phi", 1)) if grid.get("kind") == "polar" \
            else int(grid.get("num", 1)) ** 2
    else:
        points = int(np.prod(grid))
    bands = build_model(cs["model"]).orbitals_per_cell
    return jobcost.kspace_job_resources(num_points=points, bands=int(bands),
                                        num_moments=SWEEP_N if matched_case(cs) else cs["num_moments"],
                                        gpu=GPU_JOBS)
