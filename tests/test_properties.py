"""Property-based tests (hypothesis): random mutations of the shipped configurations and random command
lines end in acceptance or in the one-line error of their kind, never in another exception."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from gpukpm import io  # noqa: E402
from gpukpm.run.cli import main  # noqa: E402
from gpukpm.run.config import ConfigError, validate_config  # noqa: E402
from gpukpm.run.pipeline import Pipeline  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PIPELINE_CONFIGS = {p.name: yaml.safe_load(p.read_text()) for p in sorted((ROOT / "config").glob("*.yaml"))}
RUN_CONFIGS = {p.name: yaml.safe_load(p.read_text()) for p in sorted((ROOT / "examples").glob("*.yaml"))}
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# values a user (or a typo) may put anywhere
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 40), st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from(["", "x", "exact", "GrapheneRashba", "polar", "jackson", "total", "1:-1:5", "auto"]),
    st.lists(st.integers(-2, 30), max_size=3), st.lists(st.floats(-5, 5), max_size=3),
    st.fixed_dictionaries({"start": st.floats(-2, 2), "stop": st.floats(-2, 2), "num": st.integers(-1, 5)}),
    st.dictionaries(st.sampled_from(["name", "kind", "rashab", "start"]), st.integers(0, 3), max_size=2),
)


def _paths(node, prefix=()):
    """Every key path of a nested mapping/list."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, prefix + (i,))


@st.composite
def mutated(draw, configs):
    """A shipped configuration with 1–3 mutations: a value replaced, a key deleted or an unknown key added."""
    name = draw(st.sampled_from(sorted(configs)))
    cfg = copy.deepcopy(configs[name])
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(cfg) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = cfg
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(VALUES)
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["typo", "rashab", "kmax", "num_moment"]))] = draw(VALUES)
    return name, cfg


def _few_jobs(pipe: Pipeline) -> bool:
    return len(pipe.w_values) * len(pipe.chunks) * len(pipe.mag_labels) + len(pipe.cases) * len(pipe.mag_labels) < 4000


@FAST
@given(mutated(PIPELINE_CONFIGS))
def test_pipeline_validator_accepts_or_raises_config_error(case):
    name, cfg = case
    try:
        pipe = Pipeline(cfg, name)
        if _few_jobs(pipe):
            pipe.check_jobs()
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(f"{name}: ")


@FAST
@given(mutated(RUN_CONFIGS))
def test_run_validator_accepts_or_raises_config_error(case):
    name, cfg = case
    try:
        validate_config(cfg, name)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(f"{name}: ")


# --------------------------------------------------------------------------- command lines
TINY_RUN = {
    "model": {"name": "GrapheneRashba", "rashba": 0.3, "exchange": 0.4, "mass": 0.1},
    "system": {"shape": [3, 3], "disorder": 0.5, "realisations": 1},
    "kpm": {"num_moments": 8, "trace": 1, "seed": 1},
    "response": {"energies": {"start": -0.5, "stop": 0.5, "num": 3}},
    "dos": {"num_moments": 8, "trace": 1, "energies": {"start": -6, "stop": 6, "num": 5}},
    "backend": "cpu",
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Inputs of every kind the commands read: configurations, moments, responses, foreign files."""
    from gpukpm import kpm, models

    d = tmp_path_factory.mktemp("cli")
    (d / "run.yaml").write_text(yaml.safe_dump(TINY_RUN))
    (d / "bad.yaml").write_text("model: {name: [\n")
    (d / "text.h5").write_text("plain text\n")
    system = models.GrapheneRashba(rashba=0.3).real_space(shape=(3, 3))
    io.save_moments(d / "m.h5", kpm.kubo_moments(system, num_moments=8, trace="exact", bounds=(-10, 10),
                                                 progress=False))
    assert main(["response", str(d / "m.h5"), "--energies=-0.5:0.5:3", "-o", str(d / "r.h5"), "-q"]) == 0
    return d


COMMANDS = ["info", "dos", "moments", "kspace", "response", "aggregate", "torques", "torques-run", "nonsense"]
INPUTS = ["run.yaml", "bad.yaml", "text.h5", "m.h5", "r.h5", "missing.h5", "examples/dos.yaml"]
OPTIONS = [["--energies=-0.5:0.5:3"], ["--energies=1:-1:5"], ["--energies", "a,b"], ["--part", "sea"],
           ["--parts", "total,sea"], ["--parts", "sea,sea"], ["--kernel", "lorentz"], ["--temperature", "-1"],
           ["--num-moments", "4"], ["--eta", "0.5"], ["--backend", "cpu"], ["--quiet"], ["-q"], ["--no-resume"],
           ["--csv", "OUT.csv"], ["-o", "OUT.h5"], ["-o", "OUT_{part}.h5"], ["--run", "run.yaml"]]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(COMMANDS), inputs=st.lists(st.sampled_from(INPUTS), max_size=2),
       options=st.lists(st.sampled_from(OPTIONS), max_size=4))
def test_command_line_exits_0_1_or_2_with_one_line(files, tmp_path_factory, capsys, command, inputs, options):
    out = tmp_path_factory.mktemp("out")
    argv = [command]
    for name in inputs:
        argv.append(str(ROOT / name) if name.startswith("examples/") else str(files / name))
    for option in options:
        argv += [a.replace("OUT", str(out / "out")).replace("run.yaml", str(files / "run.yaml")) for a in option]
    if command in ("dos", "moments"):
        argv.append("-q")
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code in (0, 1, 2), argv
    assert "Traceback" not in err
    if code:
        assert len([line for line in err.splitlines() if "error:" in line]) == 1, (argv, err)
