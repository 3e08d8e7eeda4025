# Names shared by the rules (from gpukpm.run.pipeline.Pipeline, which maps the pipeline's configuration onto
# one gpukpm run configuration per job) and the rules' input functions.
import json
import shlex

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
