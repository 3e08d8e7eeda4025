"""Configuration validation and the command line (dos, response, torques)."""
import subprocess
import sys

import numpy as np
import pytest
import yaml

from gpukpm import io
from gpukpm.cli import main
from gpukpm.config import ConfigError, validate_config

BASE = {
    "model": {"name": "GrapheneRashba", "t": 2.7, "rashba": 0.3, "exchange": 0.4, "mass": 0.1},
    "system": {"shape": [4, 4], "disorder": 0.5, "realisations": 1},
    "kpm": {"num_moments": 32, "trace": 2, "seed": 1},
    "response": {"energies": {"start": -0.5, "stop": 0.5, "num": 3}},
    "dos": {"num_moments": 64, "trace": 2, "energies": {"start": -6, "stop": 6, "num": 25}},
    "backend": "cpu",
}


def _with(path, value):
    cfg = yaml.safe_load(yaml.safe_dump(BASE))
    node = cfg
    *head, last = path.split(".")
    for key in head:
        node = node.setdefault(key, {})
    node[last] = value
    return cfg


@pytest.mark.parametrize("path, value, message", [
    ("system.disorder", -1.0, "system.disorder: must be >= 0, got -1.0"),
    ("system.shape", [4, 0], "system.shape\\[1\\]: must be >= 1, got 0"),
    ("kpm.num_moments", 1, "kpm.num_moments: must be >= 2, got 1"),
    ("kpm.trace", "many", "kpm.trace"),
    ("kpm.left", ["sq"], "kpm.left"),
    ("response.kernel", "gauss", "response.kernel"),
    ("response.temperature", -3, "response.temperature"),
    ("model.magnetization", [0, 0, 2], "magnetization"),
    ("model.rashba", "big", "rashba"),
    ("kpm.colour", 1, "kpm.colour: unknown key"),
    ("model.rashab", 0.3, "model.rashab: unknown key"),
    ("model.name", "Graphene", "model: name must be one of GrapheneRashba"),
    ("torque.order", 1, "torque.order: must be >= 2"),
    ("response.energies", {"start": 1, "stop": -1, "num": 5}, "response.energies: stop must be >= start"),
    ("kpm.bounds", [1.0, -1.0], "kpm.bounds: the second value must be larger"),
    ("system.shape", None, None),
])
def test_bad_configs_name_the_key(path, value, message):
    if message is None:  # accepted
        assert validate_config(_with(path, value))[path.split(".")[0]] is not None
        return
    with pytest.raises(ConfigError, match=message):
        validate_config(_with(path, value))


def test_missing_model_is_rejected():
    cfg = dict(BASE)
    cfg.pop("model")
    with pytest.raises(ConfigError, match="model: missing key"):
        validate_config(cfg)


def test_dos_response_and_torque_commands(tmp_path, capsys):
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(BASE))
    assert main(["dos", str(cfg_path), "-o", str(tmp_path / "dos.h5"), "--csv", str(tmp_path / "dos.csv"), "-q"]) == 0
    table = np.loadtxt(tmp_path / "dos.csv", delimiter=",", skiprows=1)
    assert table.shape == (25, 3) and np.all(np.isfinite(table))

    # moments files for three magnetisations through the Python API, response + torques through the CLI
    from gpukpm import kpm, models
    from gpukpm.torque import magnetizations

    responses = []
    for i, m in enumerate(magnetizations(2)):
        system = models.GrapheneRashba(t=2.7, rashba=0.3, exchange=0.4, mass=0.1,
                                       magnetization=tuple(m)).real_space(shape=(3, 3), disorder=0.5, seed=2)
        mom = kpm.kubo_moments(system, num_moments=24, trace="exact", bounds=(-10, 10), progress=False)
        io.save_moments(tmp_path / f"m{i}.h5", mom)
        out = tmp_path / f"r{i}.h5"
        assert main(["response", str(tmp_path / f"m{i}.h5"), "--energies=-0.5:0.5:3", "--part", "total",
                     "-o", str(out), "-q"]) == 0
        responses.append(str(out))
    back = io.load_response(responses[0])
    assert back.values.shape == (3, 3) and back.part == "total"
    assert main(["torques", *responses, "-o", str(tmp_path / "t.h5"), "--csv", str(tmp_path / "t.csv")]) == 0
    assert io.read_kind(tmp_path / "t.h5") == "torques"
    header = (tmp_path / "t.csv").read_text().splitlines()[0]
    assert "chi_FL" in header and "chi_DL" in header


def test_bad_energies_exit_with_message(tmp_path):
    from gpukpm import kpm, models

    system = models.GrapheneRashba(rashba=0.2).real_space(shape=(3, 3))
    io.save_moments(tmp_path / "m.h5", kpm.kubo_moments(system, num_moments=16, progress=False))
    proc = subprocess.run([sys.executable, "-m", "gpukpm", "response", str(tmp_path / "m.h5"),
                           "--energies", "50:60:3", "-o", str(tmp_path / "r.h5")], capture_output=True, text=True)
    assert proc.returncode == 2 and "outside the expansion interval" in proc.stderr
    assert not (tmp_path / "r.h5").exists()


def test_moments_file_round_trip(tmp_path):
    from gpukpm import kpm, models

    system = models.GrapheneRashba(rashba=0.2, exchange=0.1).real_space(shape=(3, 4), disorder=1.0, seed=4)
    mom = kpm.kubo_moments(system, num_moments=12, trace=2, seed=5, backend="cpu", progress=False)
    io.save_moments(tmp_path / "m.h5", mom)
    back = io.load_moments(tmp_path / "m.h5")
    np.testing.assert_array_equal(back.mu_samples, mom.mu_samples)
    assert (back.a, back.b, back.left, back.right, back.seed) == (mom.a, mom.b, mom.left, mom.right, 5)
    assert back.parameters["disorder"] == 1.0 and back.provenance["backend"] == "cpu"
    assert "time_spmv" in back.provenance and "time_gemm" in back.provenance


def test_unavailable_gpu_is_a_clear_error(tmp_path, monkeypatch, capsys):
    """``backend: gpu`` (or ``--backend gpu``) without a usable device: exit 2 with the reason, no traceback."""
    from gpukpm import backend

    monkeypatch.setattr(backend, "gpu_status", lambda: (False, "no CUDA device (test)"))
    assert main(["info", "--backend", "gpu"]) == 2
    assert "backend 'gpu' was requested but no CUDA device (test)" in capsys.readouterr().err
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(dict(BASE, backend="gpu")))
    assert main(["moments", str(cfg_path), "-o", str(tmp_path / "m.h5"), "-q"]) == 1  # reported per rank
    assert "backend 'gpu' was requested" in capsys.readouterr().err and not (tmp_path / "m.h5").exists()
