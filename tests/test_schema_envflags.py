"""The configuration schema's JSON Schema export and the GPUKPM_* environment flags (issue 17)."""
import json
import re
from pathlib import Path

import pytest

from gpukpm import envflags
from gpukpm.run import schema
from gpukpm.run.config import DEFAULTS, ConfigError, validate_config

ROOT = Path(__file__).resolve().parents[1]


def _resolve(doc, node):
    while "$ref" in node:
        node = doc["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


@pytest.mark.parametrize("kind", ["run", "pipeline"])
def test_json_schema_is_closed_and_documented(kind):
    doc = schema.json_schema(kind)
    json.dumps(doc)  # serialisable
    objects = [d for d in doc["$defs"].values() if d.get("type") == "object"] + [doc]
    assert objects and all(d.get("additionalProperties") is False for d in objects)
    # every model kind is a closed object with the discriminator `name`
    names = {d["properties"]["name"].get("const") for d in doc["$defs"].values()
             if "name" in d.get("properties", {})}
    assert {"GrapheneRashba", "Rashba2DEGLattice", "Rashba2DEG", "Dirac"} <= names


def test_json_schema_fields_carry_units_and_ranges():
    doc = schema.json_schema("run")
    system = _resolve(doc, doc["properties"]["system"])
    assert "(eV)" in system["properties"]["disorder"]["description"]
    assert system["properties"]["disorder"]["minimum"] == 0
    graphene = doc["$defs"]["GrapheneRashbaSpec"]["properties"]
    assert graphene["t"]["exclusiveMinimum"] == 0 and "(eV)" in graphene["t"]["description"]
    assert graphene["t"]["default"] == 2.7 and "(nm)" in graphene["lattice_constant"]["description"]
    mass_2deg = doc["$defs"]["Rashba2DEGSpec"]["properties"]["mass"]["description"]
    assert "electron mass" in mass_2deg
    torque = _resolve(doc, doc["$defs"]["TorqueSection"]["properties"]["order"])
    assert torque["minimum"] == 2


def test_defaults_come_from_the_schema():
    cfg = validate_config({"model": {"name": "Dirac"}})
    assert {k: v for k, v in cfg.items() if k != "model"} == DEFAULTS
    assert cfg["kpm"]["num_moments"] == 256 and cfg["system"]["realisations"] == [0]
    assert cfg["model"]["magnetization"] == [0.0, 0.0, 1.0]


def test_model_checks_beyond_the_schema_name_the_key():
    with pytest.raises(ConfigError, match="f.yaml: system.shape: model Dirac has no real-space form"):
        validate_config({"model": {"name": "Dirac"}, "system": {"shape": [4, 4]}}, "f.yaml")
    with pytest.raises(ConfigError, match="model: .*unit vector"):
        validate_config({"model": {"name": "Dirac", "magnetization": [0, 0, 2]}})
    with pytest.raises(ConfigError, match="kspace.grid: .*continuum model"):
        validate_config({"model": {"name": "Rashba2DEG"}, "kspace": {"grid": [8, 8]}})


# --------------------------------------------------------------------------- environment flags
@pytest.mark.parametrize("raw, value", [("1", True), ("true", True), (" Yes ", True), ("ON", True),
                                        ("0", False), ("false", False), ("no", False), ("off", False),
                                        ("", False)])
def test_flag_truth_rule(monkeypatch, raw, value):
    monkeypatch.setenv("GPUKPM_QUIET", raw)
    assert envflags.get("GPUKPM_QUIET") is value


def test_unset_flags_take_their_defaults(monkeypatch):
    for name in envflags.FLAGS:
        monkeypatch.delenv(name, raising=False)
    assert envflags.get("GPUKPM_MPI") is True and envflags.get("GPUKPM_QUIET") is False
    assert envflags.get("GPUKPM_BACKEND") == "auto" and envflags.get("GPUKPM_DEVICE") == 0


@pytest.mark.parametrize("name, raw", [("GPUKPM_QUIET", "maybe"), ("GPUKPM_DEVICE", "-1"),
                                       ("GPUKPM_BACKEND", "tpu"), ("GPUKPM_MPI", "2")])
def test_bad_values_name_the_variable(monkeypatch, name, raw):
    monkeypatch.setenv(name, raw)
    with pytest.raises(envflags.EnvFlagError, match=f"{name}='{re.escape(raw)}'"):
        envflags.get(name)


def test_quiet_zero_no_longer_silences(monkeypatch):
    from gpukpm.engine.progress import Progress

    monkeypatch.setenv("GPUKPM_QUIET", "0")
    assert Progress(1, "x").enabled
    monkeypatch.setenv("GPUKPM_QUIET", "1")
    assert not Progress(1, "x").enabled


def test_guide_table_lists_every_flag_and_no_fault_injection_in_the_package():
    guide = (ROOT / "docs" / "install.md").read_text()
    table = guide.split("## Environment variables", 1)[1].split("##", 1)[0]
    assert set(re.findall(r"^\| `(GPUKPM_\w+)`", table, flags=re.M)) == set(envflags.FLAGS)
    package = "".join(p.read_text() for p in (ROOT / "gpukpm").rglob("*.py"))
    assert "RAISE_IN_TASK" not in package and "FAIL_AFTER_TASKS" not in package
    assert "os.environ.get(\"GPUKPM" not in package
