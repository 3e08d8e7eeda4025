# Helpers shared by the rules: labels, per-job gpukpm configurations, target lists.
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


def gershgorin_bounds(model, disorder, margin):
    """A rigorous spectral bound |E| <= sum of row norms of the lattice model, plus W/2."""
    name = model["name"]
    if name == "GrapheneRashba":
        t, lam = model.get("t", 2.7), model.get("rashba", 0.0)
        half = 3 * math.hypot(t, lam / 3) + abs(model.get("mass", 0.0)) + 0.5 * abs(model.get("exchange", 0.0))
        half = (half + 0.5 * disorder) * (1 + margin)
        return [-half, half]
    return None  # let gpukpm compute the run's rescaling (pristine bounds +- W/2)


def moments_config(W, m, c):
    """gpukpm configuration of one real-space moments job (moments-relevant parameters only)."""
    w = W_VALUES[W]
    bounds = RS["bounds"] or gershgorin_bounds(RS["model"], w, RS["bounds_margin"])
    kpm = {"num_moments": RS["num_moments"], "trace": RS["trace"], "seed": RS["seed"],
           "left": ["sx", "sy", "sz"], "right": "jx", "bounds": bounds}
    for key in ("vectors_per_task", "memory_budget_gb"):
        if RS[key] is not None:
            kpm[key] = RS[key]
    return {"model": dict(RS["model"], magnetization=magnetization(m)),
            "system": {"shape": list(RS["shape"]), "disorder": w, "realisations": CHUNKS[c]},
            "kpm": kpm, "backend": config["backend"]}


def kspace_config(case, m):
    cs = CASES[case]
    ks = {"grid": cs["grid"], "window": cs["window"]}
    if cs["chunk_size"] is not None:
        ks["chunk_size"] = cs["chunk_size"]
    return {"model": dict(cs["model"], magnetization=magnetization(m)), "kspace": ks,
            "kpm": {"num_moments": cs["num_moments"], "left": ["sx", "sy", "sz"], "right": "jx",
                    "bounds": cs["bounds"]},
            "backend": config["backend"]}


def quoted_json(obj):
    """A shell-quoted JSON text (JSON is YAML: gpukpm reads it as its configuration)."""
    return shlex.quote(json.dumps(obj, sort_keys=True))


def set_energies(s):
    e = RS["energies"] if s.startswith("realspace/") else CASES[s.split("/", 1)[1]]["energies"]
    return f"{e['start']!r}:{e['stop']!r}:{e['num']}"


def all_sets():
    return [f"realspace/W{W}" for W in W_VALUES] + [f"kspace/{c}" for c in CASES]
