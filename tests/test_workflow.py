"""Snakemake pipeline (workflow/): paper dry run with the SLURM profile, schema errors, a tiny real run.

CPU only; the whole module takes about 1.5 minutes on 2 cores.
"""
from __future__ import annotations

import copy
import csv
import functools
import math
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import json
import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEFILE = ROOT / "workflow" / "Snakefile"
N_MAGNETISATIONS = 14  # gpukpm.torque.magnetizations(2)

pytest.importorskip("snakemake")


@functools.lru_cache(maxsize=1)
def gpukpm_shim() -> Path:
    """A `gpukpm` executable running this Python's gpukpm (whatever console script the venv holds)."""
    folder = Path(tempfile.mkdtemp(prefix="gpukpm-bin-"))
    (folder / "gpukpm").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gpukpm "$@"\n')
    (folder / "gpukpm").chmod(0o755)
    return folder / "gpukpm"


def snakemake(*args, cwd, timeout=600):
    """Run the pipeline with the `gpukpm` of the Python running the tests (config key `gpukpm`)."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(cwd),
           "--config", f"gpukpm={gpukpm_shim()}", *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def job_stats(output: str) -> dict[str, int]:
    """The first 'Job stats' table of a Snakemake log as {rule: count}."""
    block = output.split("Job stats:", 1)[1]
    counts = {}
    for line in block.splitlines()[3:]:
        m = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


def executed_rules(output: str) -> set[str]:
    return set(re.findall(r"^(?:local)?rule (\w+):", output, flags=re.M))


TINY = {
    "title": "tiny test",
    "results": "results",
    "backend": "cpu",
    "realspace": {
        "model": {"name": "GrapheneRashba", "t": 2.7, "rashba": 0.3, "exchange": 0.4, "mass": 0.1},
        "shape": [6, 6], "disorder": [0.0, 1.0], "realisations": 2, "realisations_per_job": 1, "trace": 1,
        "num_moments": 24, "seed": 3, "energies": {"start": -1.0, "stop": 1.0, "num": 11},
    },
    "kspace": {"cases": {"tiny": {
        "model": {"name": "GrapheneRashba", "t": 2.7, "rashba": 0.3, "exchange": 0.4, "mass": 0.1},
        "grid": [12, 12], "num_moments": 24, "energies": {"start": -1.0, "stop": 1.0, "num": 11}},
        "mirror": {"model": {"name": "GrapheneRashba", "t": 2.7, "rashba": 0.3, "exchange": 0.4, "mass": 0.1},
                   "match_realspace": True, "semiclassical": "none"}}},
    "response": {"kernel": "jackson"},
    "torque": {"order": 2, "subset": [0, 1, 2, 5, 6, 13]},  # 6 magnetisations that fix the 6 parameters
}


def write(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


# --------------------------------------------------------------------------- dry run of the paper config
def test_paper_dry_run_with_slurm_profile(tmp_path):
    paper = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    res = snakemake("-n", "--configfile", ROOT / "config" / "paper.yaml", "--profile", ROOT / "cluster" / "slurm",
                    cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:] + res.stdout[-3000:]
    counts = job_stats(res.stdout + res.stderr)
    rs, cases = paper["realspace"], paper["kspace"]["cases"]
    n_w = len(rs["disorder"])
    n_chunks = math.ceil(rs["realisations"] / rs.get("realisations_per_job", 1))
    n_parts = len(paper["response"]["parts"])
    expected = {
        "moments": n_w * N_MAGNETISATIONS * n_chunks,
        "aggregate": n_w * N_MAGNETISATIONS,
        "kspace_moments": len(cases) * N_MAGNETISATIONS,
        "response": (n_w + len(cases)) * N_MAGNETISATIONS,
        "torque_fit": (n_w + len(cases)) * n_parts,
        "figures_kspace": len(cases),
        "figures_disorder": 1,
        "report": 1,
        "all": 1,
    }
    expected["total"] = sum(expected.values())
    assert counts == expected
    assert expected["moments"] == 10 * 14 * 11
    out = res.stdout + res.stderr
    # MPI through srun; GPUs = ranks = the job's gpukpm tasks (one here), runtime and memory derived from
    # the job (gpukpm.run.planning.job_resources), not the 4 GPUs, 720 min and 240 GB once fixed in the profile
    assert re.search(r"tasks=1, gpu=1, .*mpi=srun, nodes=1, tasks_per_gpu=1, cpus_per_gpu=4", out)
    assert re.search(r"srun -n 1 gpukpm moments ", out)
    moments_resources = [dict(re.findall(r"(\w+)=([^,\s]+)", line)) for line in out.splitlines()
                         if "resources:" in line and "mpi=srun" in line]
    assert len(moments_resources) == expected["moments"]
    assert all(int(r["runtime"]) < 720 and int(r["mem_mb"]) < 240000 for r in moments_resources)
    # no absolute path of the checkout or the venv in any command (moving the checkout reruns nothing)
    commands = re.findall(r"^.*\bgpukpm (?:moments|kspace|response|aggregate|torques)\b.*$", out, flags=re.M)
    assert commands and not [c for c in commands if str(ROOT) in c or str(Path(sys.executable).parent) in c]
    assert "Group job reconstruct" in out


def test_paper_workstation_dry_run(tmp_path):
    """config/paper-workstation.yaml: the k-space figures only (Fig. 2 at 14691², Fig. 4), on 2 cores."""
    cfg = yaml.safe_load((ROOT / "config" / "paper-workstation.yaml").read_text())
    res = snakemake("-n", "--configfile", ROOT / "config" / "paper-workstation.yaml", "--cores", "2", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:] + res.stdout[-3000:]
    cases = cfg["kspace"]["cases"]
    assert cases["fig2_massive"]["grid"] == [14691, 14691] and cases["fig2_massless"]["model"]["mass"] == 0.0
    n_parts = len(cfg["response"]["parts"])
    expected = {"kspace_moments": len(cases) * N_MAGNETISATIONS, "response": len(cases) * N_MAGNETISATIONS,
                "torque_fit": len(cases) * n_parts, "figures_kspace": len(cases), "report": 1, "all": 1}
    expected["total"] = sum(expected.values())
    assert job_stats(res.stdout + res.stderr) == expected


# --------------------------------------------------------------------------- schema (gpukpm.run.schema, gpukpm.run.pipeline)
def test_schema_accepts_shipped_configs():
    from gpukpm.run.pipeline import Pipeline

    for name in ("config.yaml", "paper.yaml", "paper-workstation.yaml"):
        Pipeline(yaml.safe_load((ROOT / "config" / name).read_text()), name).check_jobs()
    assert Pipeline(copy.deepcopy(TINY)).check_jobs() == 2 * 6 * 2 + 2 * 6  # W × m × chunk + case × m


def test_no_hand_written_schema_remains():
    assert not (ROOT / "workflow" / "schemas").exists()
    assert not (ROOT / "workflow" / "scripts" / "response_parts.py").exists()


def test_pipeline_maps_onto_run_configurations():
    """The one function between the two vocabularies: every job's configuration is a valid RunConfig with the
    sweep's N and rescaling, the magnetisation of its label and the realisations of its chunk."""
    from gpukpm.run.config import validate_config
    from gpukpm.run.pipeline import Pipeline
    from gpukpm.torque import magnetizations

    pipe = Pipeline(copy.deepcopy(TINY))
    job = validate_config(pipe.moments_job("1", "05", "1"))
    assert job["system"] == {"shape": [6, 6], "disorder": 1.0, "realisations": [1]}
    assert job["model"]["magnetization"] == [float(x) for x in magnetizations(2)[5]]
    assert job["kpm"]["num_moments"] == pipe.sweep_num_moments == 24 and job["kpm"]["bounds"] == pipe.sweep_bounds
    mirror = validate_config(pipe.kspace_job("mirror", "00"))
    assert mirror["kspace"]["grid"] == [6, 6] and mirror["kpm"]["bounds"] == pipe.sweep_bounds
    assert validate_config(pipe.kspace_job("tiny", "13"))["kspace"]["grid"] == [12, 12]
    assert pipe.energies("kspace/mirror") == pipe.energies("realspace/W0") == TINY["realspace"]["energies"]


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["realspace"].__setitem__("eta", -0.1), "realspace.eta: must be > 0, got -0.1"),
    (lambda c: c["realspace"].__setitem__("shape", "24x24"), "realspace.shape: must be a list"),
    (lambda c: c["realspace"].__setitem__("num_moments", "many"), "realspace.num_moments: must be an integer"),
    (lambda c: c["realspace"].__setitem__("disorder", [0.0, -1.0]), "realspace.disorder[1]: must be >= 0"),
    (lambda c: c["kspace"]["cases"]["tiny"].__setitem__("match_realspace", "yes"),
     "kspace.cases.tiny.match_realspace: must be a valid boolean"),
    (lambda c: c["realspace"]["model"].__setitem__("rashab", 0.3), "realspace.model.rashab: unknown key"),
    (lambda c: c["kspace"]["cases"]["tiny"]["model"].__setitem__("magnetization", [0, 0, 1]),
     "kspace.cases.tiny.model.magnetization: unknown key"),
    (lambda c: c["torque"].__setitem__("order", 1), "torque.order: must be >= 2"),
])
def test_schema_rejects_bad_config_naming_the_key(mutate, message):
    from gpukpm.run.config import ConfigError
    from gpukpm.run.pipeline import Pipeline

    cfg = copy.deepcopy(TINY)
    mutate(cfg)
    with pytest.raises(ConfigError) as err:
        Pipeline(cfg, "bad.yaml")
    assert str(err.value).startswith(f"bad.yaml: {message}"), str(err.value)


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["realspace"].__setitem__("disorder", [0.0, -2.7]), "realspace.disorder[1]: must be >= 0"),
    (lambda c: c["realspace"]["model"].__setitem__("rashab", 0.3), "realspace.model.rashab: unknown key"),
    # only a job meets this one: a lattice grid for a continuum model
    (lambda c: c["kspace"]["cases"]["tiny"].__setitem__("model", {"name": "Rashba2DEG", "rashba": 0.02}),
     "job kspace tiny m00"),
])
def test_bad_config_fails_dry_run_at_once(tmp_path, mutate, message):
    cfg = copy.deepcopy(TINY)
    mutate(cfg)
    res = snakemake("-n", "--configfile", write(tmp_path / "bad.yaml", cfg), cwd=tmp_path, timeout=60)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert message in out, out[-3000:]
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["realspace"].__setitem__("eta", 0.2), "give num_moments or eta"),
    (lambda c: c["kspace"]["cases"]["tiny"].pop("grid"), "missing key(s) ['grid']"),
    (lambda c: c["kspace"]["cases"].__setitem__("mirror", {"model": {"name": "GrapheneRashba", "t": 2.6},
                                                           "match_realspace": True}),
     "must equal realspace.model with match_realspace"),
])
def test_dry_run_refuses_inconsistent_sweep_settings(tmp_path, mutate, message):
    cfg = copy.deepcopy(TINY)
    mutate(cfg)
    res = snakemake("-n", "--configfile", write(tmp_path / "bad.yaml", cfg), cwd=tmp_path, timeout=120)
    assert res.returncode != 0 and message in res.stdout + res.stderr


def test_lint_leaves_only_the_documented_item(tmp_path):
    """`snakemake --lint`: every rule has a log, no globals in shell commands, no mixed rules and functions;
    the one remaining item (no conda environment or container per rule) is explained in the guide."""
    res = snakemake("--lint", cwd=tmp_path, timeout=120)
    items = set(re.findall(r"^\s+\* (.+?):?$", res.stdout + res.stderr, flags=re.M))
    assert items == {"Specify a conda environment or container for each rule."}, items
    assert "conda environment or container" in (ROOT / "docs" / "guide" / "workflow.md").read_text()


# --------------------------------------------------------------------------- tiny real run
def _report_rows(md: str) -> list[list[str]]:
    section = md.split("## Disorder", 1)[1].split("##", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| W")]
    return [[c.strip() for c in r.strip("|").split("|")] for r in rows]


@pytest.mark.slow
def test_tiny_run_end_to_end(tmp_path):
    from gpukpm.run import io

    cfg_path = write(tmp_path / "tiny.yaml", TINY)
    common = ("--configfile", cfg_path, "--cores", 2, "--scheduler", "greedy")
    res = snakemake(*common, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-5000:]
    r = tmp_path / "results"
    mags = [f"{i:02d}" for i in TINY["torque"]["subset"]]
    for W in ("0", "1"):
        for m in mags:
            for c in ("0", "1"):
                assert (r / f"realspace/W{W}/moments/m{m}/c{c}.h5").stat().st_size > 0
                assert yaml.safe_load((r / f"realspace/W{W}/moments/m{m}/c{c}.yaml").read_text())["system"][
                    "realisations"] == [int(c)]
            assert (r / f"realspace/W{W}/ensemble/m{m}.h5").exists()
    for s in ("realspace/W0", "realspace/W1", "kspace/tiny", "kspace/mirror"):
        for part in ("total", "sea", "surface"):
            for m in mags:
                assert (r / f"{s}/response/m{m}/{part}.h5").exists()
                assert (r / f"{s}/response/m{m}/{part}.csv").exists()
            with open(r / f"{s}/torques/{part}.csv") as fh:
                rows = list(csv.DictReader(fh))
            assert len(rows) == 11 and all(math.isfinite(float(row["chi_FL"])) for row in rows)
    for name in ("kspace_tiny", "disorder", "peak_ratios"):
        for ext in ("png", "pdf"):
            assert (r / f"figures/{name}.{ext}").stat().st_size > 1000
    md = (r / "report.md").read_text()
    rows = _report_rows(md)
    assert [row[0] for row in rows] == ["0", "1"]
    for row in rows:
        for cell in (row[1], row[4], row[7], row[8]):  # peak χ_FL, χ_DL and the ratios, "value ± error"
            value, err = (float(x) for x in cell.split("±"))
            assert math.isfinite(value) and math.isfinite(err) and err >= 0
        for cell in (row[2], row[5], row[9], row[10]):  # one-sample std and the samples needed
            assert math.isfinite(float(cell)) and float(cell) > 0
    assert rows[0][7].startswith("1 ±") and rows[0][8].startswith("1 ±")
    assert "figures/disorder.png" in md and "figures/kspace_tiny.png" in md and "gpukpm" in md

    # one broadening for the sweep: every W's responses carry the same η(ε)
    w0, w1 = (io.load_response(r / f"realspace/W{W}/response/m00/total.h5") for W in ("0", "1"))
    assert w0.eta == w1.eta and np.array_equal(w0.broadening(), w1.broadening())
    assert (w0.metadata["a"], w0.metadata["b"]) == (w1.metadata["a"], w1.metadata["b"])
    assert "identical at every W" in md
    with h5py.File(r / "realspace/W1/response/m00/total.h5") as fh:
        assert np.array_equal(fh["broadening"][...], w0.broadening())
    # the torque tables carry the one-sample std and the residual next to the standard error
    with open(r / "realspace/W1/torques/total.csv") as fh:
        header = fh.readline().strip().split(",")
    assert {"chi_FL_stderr", "chi_FL_std", "chi_DL_std", "residual"} <= set(header)
    # the pristine k-space mirror of the real-space lattice is compared in the report
    summary = json.loads((r / "summary.json").read_text())["pristine_agreement"]
    assert summary["case"] == "mirror"
    for key in ("chi_FL", "chi_DL"):
        assert math.isfinite(summary[key]["difference_in_stderr"]) and summary[key]["stderr"] > 0

    # a second run does nothing
    res = snakemake(*common, cwd=tmp_path)
    assert res.returncode == 0 and "Nothing to be done" in res.stdout + res.stderr

    # a reconstruction-only change reruns response and what follows, never the moments
    moments_mtime = {p: p.stat().st_mtime_ns for p in r.glob("**/moments/**/*.h5")}
    changed = copy.deepcopy(TINY)
    changed["response"]["kernel"] = "lorentz"
    changed["realspace"]["energies"] = {"start": -0.8, "stop": 0.8, "num": 9}
    res = snakemake("--configfile", write(tmp_path / "tiny2.yaml", changed), "--cores", 2, "--scheduler", "greedy",
                    cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-5000:]
    ran = executed_rules(res.stdout + res.stderr)
    assert ran == {"response", "torque_fit", "figures_kspace", "figures_disorder", "report", "all"}, ran
    counts = job_stats(res.stdout + res.stderr)
    assert counts["response"] == 4 * len(mags)  # the kernel changed for every set
    assert {p: p.stat().st_mtime_ns for p in r.glob("**/moments/**/*.h5")} == moments_mtime
    with open(r / "realspace/W0/torques/total.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 9


@pytest.mark.slow
def test_paper_workstation_reduced_grid_real_run(tmp_path):
    """config/paper-workstation.yaml on reduced grids (CI time): the whole k-space pipeline runs, and the
    report's Kubo/Boltzmann table holds Fig. 4a (resolved on 1000 radial points) within 2 %."""
    cfg = yaml.safe_load((ROOT / "config" / "paper-workstation.yaml").read_text())
    cases = cfg["kspace"]["cases"]
    for name in ("fig2_massive", "fig2_massless"):
        cases[name]["grid"] = [240, 240]
        cases[name]["num_moments"] = 64  # η ≈ 15 meV: what a 240² grid resolves (not the paper's figure)
        cases[name]["energies"] = {"start": -0.1, "stop": 0.1, "num": 21}
    cases["fig4a_exchange"]["grid"].update(num_k=1000, num_phi=8)
    cases["fig4a_exchange"]["energies"] = {"start": 0.15, "stop": 0.3, "num": 4}
    del cases["fig4b_rashba"]
    cfg["torque"]["subset"] = [0, 1, 2, 5, 6, 13]
    cfg["results"] = "results"
    res = snakemake("--configfile", write(tmp_path / "ws.yaml", cfg), "--cores", 2, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-5000:]
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())["kspace"]
    assert set(summary) == {"fig2_massive", "fig2_massless", "fig4a_exchange"}
    ratios = summary["fig4a_exchange"]["kubo_over_boltzmann"]
    assert abs(ratios["chi_FL"] - 1) < 0.02 and abs(ratios["chi_DL"] - 1) < 0.02
    for name in ("fig2_massive", "fig4a_exchange"):
        assert (tmp_path / "results" / "figures" / f"kspace_{name}.png").stat().st_size > 1000


@pytest.mark.slow
def test_demo_pristine_real_space_agrees_with_k_space(tmp_path):
    """The README's main job (config/config.yaml, ≈ 3.5 min on 2 cores): one η(ε) for the sweep, and the
    pristine real-space torques agree with k space on the matching grid within their stochastic error
    (two-sided Student-t p > 0.05 for χ_FL and χ_DL)."""
    res = snakemake("--configfile", ROOT / "config" / "config.yaml", "--profile", ROOT / "cluster" / "local",
                    "--cores", 2, cwd=tmp_path, timeout=1200)
    assert res.returncode == 0, res.stderr[-5000:]
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    agreement = summary["pristine_agreement"]
    assert agreement["case"] == "pristine" and agreement["agree"], agreement
    for key in ("chi_FL", "chi_DL"):
        assert agreement[key]["p_value"] > 0.05 and agreement[key]["dof"] == 3
    assert summary["broadening"]["realspace_identical"]


def test_report_comparison_ranges_come_from_the_package():
    """The report's Kubo/Boltzmann energies and the Dirac semi-gap (gpukpm.torque.comparison, not the scripts)."""
    from gpukpm import models
    from gpukpm.torque import comparison

    graphene = models.GrapheneRashba(rashba=0.008, exchange=0.060, mass=0.008)
    assert comparison.boltzmann_threshold(graphene, 0.002) == pytest.approx((0.030 + 0.008 + 0.006, True))
    assert comparison.dirac_semigap(graphene, 0.002) == pytest.approx((0.022 + 0.006, 0.038 - 0.006))
    gas = models.Rashba2DEG(rashba=0.02, exchange=0.2)
    assert comparison.boltzmann_threshold(gas, 0.001) == pytest.approx((0.1 + 0.003, False))
    assert comparison.dirac_semigap(gas, 0.001) is None
    assert comparison.dirac_semigap(models.Dirac(exchange=0.0), 0.001) is None
    scripts = "".join(p.read_text() for p in (ROOT / "workflow" / "scripts").glob("*.py"))
    assert "sqrt(3)" not in scripts and "j / 2 + delta" not in scripts
