"""Configuration validation and the command line (dos, response, torques)."""
import subprocess
import sys

import numpy as np
import pytest
import yaml

from gpukpm.run import io
from gpukpm.run.cli import main
from gpukpm.run.config import ConfigError, validate_config

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
    """``backend: gpu`` (or ``--backend gpu``) without a usable device: exit 1 (a runtime failure) from every
    subcommand, with the reason, no traceback."""
    from gpukpm.engine import backend

    monkeypatch.setattr(backend, "gpu_status", lambda: (False, "no CUDA device (test)"))
    assert main(["info", "--backend", "gpu"]) == 1
    assert "backend 'gpu' was requested but no CUDA device (test)" in capsys.readouterr().err
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(dict(BASE, backend="gpu")))
    assert main(["moments", str(cfg_path), "-o", str(tmp_path / "m.h5"), "-q"]) == 1  # reported per rank
    assert "backend 'gpu' was requested" in capsys.readouterr().err and not (tmp_path / "m.h5").exists()


# --------------------------------------------------------------------------- issue 17: CLI steps and exit codes
def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture(scope="module")
def moments_file(tmp_path_factory):
    """An exact-trace moments file of a 3×3 honeycomb at m̂ = ẑ."""
    from gpukpm import kpm, models

    path = tmp_path_factory.mktemp("moments") / "m.h5"
    system = models.GrapheneRashba(rashba=0.3, exchange=0.4).real_space(shape=(3, 3), disorder=0.5, seed=2)
    io.save_moments(path, kpm.kubo_moments(system, num_moments=16, trace="exact", bounds=(-10, 10), progress=False))
    return path


def test_response_writes_several_parts_in_one_call(tmp_path, moments_file):
    out = str(tmp_path / "resp_{part}.h5")
    csv = str(tmp_path / "resp_{part}.csv")
    assert main(["response", str(moments_file), "--energies=-0.5:0.5:3", "--parts", "total,sea,surface",
                 "-o", out, "--csv", csv, "-q"]) == 0
    resp = {p: io.load_response(out.format(part=p)) for p in ("total", "sea", "surface")}
    assert all(resp[p].part == p for p in resp) and (tmp_path / "resp_sea.csv").exists()
    for part in resp:  # the same numbers as one call per part
        single = tmp_path / f"single_{part}.h5"
        assert main(["response", str(moments_file), "--energies=-0.5:0.5:3", "--part", part, "-o", str(single),
                     "-q"]) == 0
        np.testing.assert_array_equal(io.load_response(single).values, resp[part].values)


@pytest.mark.parametrize("argv, needles", [
    (["--parts", "total,sea", "-o", "r.h5"], ["must contain {part}"]),
    (["--energies=1:-1:5"], ["--energies must be START:STOP:NUM", "STOP >= START"]),
    (["--parts", "total,bulk", "-o", "r_{part}.h5"], ["--parts must be"]),
])
def test_response_usage_errors_exit_2(tmp_path, moments_file, capsys, argv, needles):
    base = ["response", str(moments_file), "--energies=-0.5:0.5:3", "-o", str(tmp_path / "r.h5")]
    assert main(base + argv) == 2
    err = capsys.readouterr().err
    assert all(n in err for n in needles) and "Traceback" not in err
    assert not list(tmp_path.glob("r*.h5"))


@pytest.mark.parametrize("content, needle", [
    (b"not an HDF5 file at all\n", "not a readable HDF5 file"),
    (None, "not a gpukpm moments file: it is an HDF5 file without gpukpm_kind"),
    ("response", "not a gpukpm moments file: it is a gpukpm 'response' file"),
])
def test_unreadable_or_foreign_input_files_exit_2(tmp_path, moments_file, capsys, content, needle):
    import h5py

    bad = tmp_path / "bad.h5"
    if content is None:
        with h5py.File(bad, "w") as fh:
            fh.create_dataset("x", data=[1.0])
    elif content == "response":
        assert main(["response", str(moments_file), "--energies=0:0.1:2", "-o", str(bad), "-q"]) == 0
        capsys.readouterr()
    else:
        bad.write_bytes(content)
    assert main(["response", str(bad), "--energies=0:0.1:2", "-o", str(tmp_path / "r.h5")]) == 2
    _one_line_error(capsys, str(bad), needle)
    assert main(["aggregate", str(bad), "-o", str(tmp_path / "e.h5")]) == 2
    _one_line_error(capsys, str(bad))
    assert main(["torques", str(bad), "-o", str(tmp_path / "t.h5")]) == 2
    _one_line_error(capsys, str(bad))


def test_missing_input_file_exits_2(tmp_path, capsys):
    assert main(["response", str(tmp_path / "none.h5"), "--energies=0:1:2", "-o", str(tmp_path / "r.h5")]) == 2
    _one_line_error(capsys, "none.h5: no such file")
    assert main(["dos", str(tmp_path / "none.yaml"), "-o", str(tmp_path / "d.h5")]) == 2
    _one_line_error(capsys, "none.yaml does not exist")


def test_yaml_syntax_error_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  name: GrapheneRashba\n  t: [2.7\nsystem: {shape: [4, 4]}\n")
    assert main(["moments", str(bad), "-o", str(tmp_path / "m.h5")]) == 2
    _one_line_error(capsys, f"{bad}: line", "is not valid YAML")


def test_configuration_errors_exit_2_naming_file_and_key(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(dict(BASE, model=dict(BASE["model"], rashab=0.3))))
    for command in ("moments", "dos", "kspace"):
        assert main([command, str(cfg), "-o", str(tmp_path / "x.h5")]) == 2
        _one_line_error(capsys, f"{cfg}: model.rashab: unknown key")
    no_shape = yaml.safe_load(yaml.safe_dump(BASE))
    no_shape["system"].pop("shape")
    cfg.write_text(yaml.safe_dump(no_shape))
    assert main(["moments", str(cfg), "-o", str(tmp_path / "x.h5")]) == 2
    _one_line_error(capsys, "system.shape is required")


def test_memory_beyond_the_machine_is_refused_before_allocation(tmp_path, capsys):
    """shape [100000, 100000]: 4·10¹⁰ orbitals; refused from the cost model in well under a second."""
    import time

    cfg = tmp_path / "big.yaml"
    cfg.write_text(yaml.safe_dump(_with("system.shape", [100000, 100000])))
    t0 = time.perf_counter()
    for command in ("moments", "dos"):
        assert main([command, str(cfg), "-o", str(tmp_path / "x.h5")]) == 2
        _one_line_error(capsys, f"{cfg}: system.shape [100000, 100000]", "need at least", "available on this machine")
    assert time.perf_counter() - t0 < 5
    assert not (tmp_path / "x.h5").exists()


def test_memory_cost_model_scales_with_the_system():
    from gpukpm import models
    from gpukpm.run.resources import check_real_space, real_space_bytes

    model = models.GrapheneRashba(rashba=0.3)
    small, large = (real_space_bytes(model, (64, 64), 256, 4), real_space_bytes(model, (128, 128), 256, 4))
    moments_part = 2 * 4 * 256**2 * 16
    assert (large - moments_part) == pytest.approx(4 * (small - moments_part), rel=1e-9)
    cfg = validate_config(_with("system.shape", [64, 64]))
    assert check_real_space(model, cfg, 256, 4, available=small) == small
    with pytest.raises(ConfigError, match="need at least"):
        check_real_space(model, cfg, 256, 4, available=small - 1)


def test_torques_and_torques_run_are_separate_commands(tmp_path, moments_file, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(dict(BASE, response=dict(BASE["response"], parts=["sea"]))))
    assert main(["torques-run", str(cfg), "-o", str(tmp_path / "t.h5")]) == 2  # --part is required
    assert "--part" in capsys.readouterr().err
    assert main(["torques-run", str(cfg), "--part", "total", "-o", str(tmp_path / "t.h5")]) == 2
    _one_line_error(capsys, "--part total: not among response.parts ['sea']")
    assert main(["torques", "--run", str(cfg), "-o", str(tmp_path / "t.h5")]) == 2  # the old mode is gone
    capsys.readouterr()
    out = str(tmp_path / "r_{part}.h5")
    assert main(["response", str(moments_file), "--energies=0:0.1:2", "--parts", "sea,surface", "-o", out, "-q"]) == 0
    capsys.readouterr()
    files = [out.format(part="sea"), out.format(part="surface")]
    assert main(["torques", *files, "-o", str(tmp_path / "t.h5")]) == 2
    _one_line_error(capsys, "part 'surface' differs from 'sea'")


def test_info_has_no_quiet_flag(capsys):
    assert main(["info", "--quiet"]) == 2
    assert "unrecognized arguments: --quiet" in capsys.readouterr().err


def test_internal_errors_keep_their_traceback(monkeypatch, tmp_path):
    """An unexpected exception (here a KeyError inside a command) is not turned into an exit code."""
    from gpukpm.run import cli

    def broken(args):
        raise KeyError("internal")

    monkeypatch.setattr(cli, "_cmd_info", broken)
    with pytest.raises(KeyError, match="internal"):
        main(["info"])


def test_bad_environment_flag_exits_2(monkeypatch, capsys):
    monkeypatch.setenv("GPUKPM_QUIET", "maybe")
    assert main(["info", "--backend", "cpu"]) == 2
    _one_line_error(capsys, "GPUKPM_QUIET='maybe'", "1/true/yes/on or 0/false/no/off/empty")
