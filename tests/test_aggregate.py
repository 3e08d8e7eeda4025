"""Ensemble files (gpukpm.run.aggregate): statistics equal NumPy's, incompatible files are refused."""
import copy
import shutil

import h5py
import numpy as np
import pytest

from gpukpm.run.aggregate import IncompatibleMoments, aggregate
from gpukpm.run.io import load_moments
from gpukpm.run.parallel import SerialComm, run_moments

NUM_REALISATIONS = 11
CONFIG = {
    "model": {"name": "GrapheneRashba", "rashba": 0.3, "exchange": 0.4, "mass": 0.1},
    "system": {"shape": [6, 6], "disorder": 1.5, "realisations": [0]},
    "kpm": {"num_moments": 12, "trace": 3, "seed": 3, "left": ["sx", "sy"]},
    "backend": "cpu",
}


def config(**sections):
    cfg = copy.deepcopy(CONFIG)
    for name, values in sections.items():
        cfg[name].update(values)
    return cfg


def moments_file(path, **sections):
    run_moments(config(**sections), path, comm=SerialComm(), progress=False)
    return path


@pytest.fixture(scope="module")
def realisation_files(tmp_path_factory):
    """One file per realisation, as separate jobs (Snakemake realisation chunks) would write them."""
    folder = tmp_path_factory.mktemp("chunks")
    return [moments_file(folder / f"r{r:02d}.h5", system={"realisations": [r]}) for r in range(NUM_REALISATIONS)]


def test_ensemble_statistics_equal_numpy(tmp_path, realisation_files):
    shuffled = [realisation_files[i] for i in np.random.default_rng(1).permutation(NUM_REALISATIONS)]
    out = aggregate(shuffled, tmp_path / "ensemble.h5")
    ens = load_moments(out)
    assert ens.num_samples == 3 * NUM_REALISATIONS
    np.testing.assert_array_equal(ens.sample_realisations, np.repeat(np.arange(NUM_REALISATIONS), 3))
    np.testing.assert_array_equal(ens.sample_vectors, np.tile(np.arange(3), NUM_REALISATIONS))
    assert ens.parameters["realisations"] == list(range(NUM_REALISATIONS))
    assert "realisation" not in ens.parameters and ens.parameters["disorder"] == 1.5

    per_file = [load_moments(f) for f in realisation_files]
    for r, m in enumerate(per_file):  # per-realisation samples preserved exactly
        np.testing.assert_array_equal(ens.mu_samples[ens.sample_realisations == r], m.mu_samples)
    means = np.stack([m.mu_samples.mean(axis=0) for m in per_file])  # (11, n_left, N, N)
    mean = means.mean(axis=0)
    stderr = (means.real.std(axis=0, ddof=1) + 1j * means.imag.std(axis=0, ddof=1)) / np.sqrt(NUM_REALISATIONS)
    assert np.abs(stderr).min() > 0
    with h5py.File(out, "r") as fh:
        mu_mean, mu_stderr = fh["mu_mean"][...], fh["mu_stderr"][...]
    for got_mean, got_err in ((mu_mean, mu_stderr), (ens.mu, ens.stderr)):
        np.testing.assert_allclose(got_mean, mean, rtol=1e-12, atol=1e-14 * np.abs(mean).max())
        np.testing.assert_allclose(got_err.real, stderr.real, rtol=1e-10, atol=1e-14 * np.abs(stderr).max())
        np.testing.assert_allclose(got_err.imag, stderr.imag, rtol=1e-10, atol=1e-14 * np.abs(stderr).max())
    assert len(ens.provenance["inputs"]) == NUM_REALISATIONS


def test_chunked_jobs_equal_one_job(tmp_path, realisation_files):
    """Aggregating 11 one-realisation jobs gives the samples of one 11-realisation run, bit for bit."""
    ens = load_moments(aggregate(realisation_files, tmp_path / "ensemble.h5"))
    whole = load_moments(moments_file(tmp_path / "whole.h5", system={"realisations": NUM_REALISATIONS}))
    np.testing.assert_array_equal(ens.mu_samples, whole.mu_samples)
    np.testing.assert_array_equal(ens.sample_realisations, whole.sample_realisations)
    assert (ens.a, ens.b) == (whole.a, whole.b)


@pytest.mark.parametrize("sections, field", [
    ({"system": {"disorder": 1.0}}, r"parameters\.disorder differs: 1\.5 in .*r00\.h5, 1\.0 in .*bad\.h5"),
    ({"model": {"name": "GrapheneRashba", "rashba": 0.2, "exchange": 0.4, "mass": 0.1}},
     r"parameters\.rashba differs: 0\.3 in .*, 0\.2 in"),
    ({"kpm": {"num_moments": 16}}, r"num_moments differs: 12 in .*, 16 in"),
    ({"kpm": {"left": ["sx", "sz"]}}, r"left differs: \('sx', 'sy'\) in .*, \('sx', 'sz'\) in"),
    ({"kpm": {"seed": 4}}, r"seed differs: 3 in .*, 4 in"),
    ({"kpm": {"trace": "exact"}}, r"trace differs: 'stochastic' in .*, 'exact' in"),
    ({"kpm": {"bounds": [-12.0, 12.0]}}, r"^a differs: "),
], ids=["disorder", "model", "num_moments", "left", "seed", "trace", "bounds"])
def test_incompatible_files_are_refused_naming_the_field(tmp_path, realisation_files, sections, field):
    sections = copy.deepcopy(sections)
    sections.setdefault("system", {})["realisations"] = [50]
    if "model" in sections:  # the model section is replaced whole
        cfg = config(system=sections["system"])
        cfg["model"] = sections["model"]
        run_moments(cfg, tmp_path / "bad.h5", comm=SerialComm(), progress=False)
    else:
        moments_file(tmp_path / "bad.h5", **sections)
    with pytest.raises(IncompatibleMoments, match=field):
        aggregate([realisation_files[0], tmp_path / "bad.h5"], tmp_path / "ensemble.h5")
    assert not (tmp_path / "ensemble.h5").exists()


def test_duplicate_samples_are_refused(tmp_path, realisation_files):
    copy_ = tmp_path / "copy.h5"
    shutil.copy(realisation_files[2], copy_)
    with pytest.raises(IncompatibleMoments, match=r"duplicate sample \(realisation 2, vector 0\) in .*r02\.h5 and "
                                                  r".*copy\.h5"):
        aggregate([realisation_files[2], realisation_files[3], copy_], tmp_path / "ensemble.h5")
    with pytest.raises(ValueError, match="also an input"):
        aggregate(realisation_files[:2], realisation_files[0])
    assert not list(tmp_path.glob(".*tmp"))
