"""gpukpm.run.io owns every file kind: round trips, refusal of foreign, wrong-kind and newer files,
and the one atomic writer (unique temporary names, nothing left behind on failure)."""
from __future__ import annotations

import os
import threading

import h5py
import numpy as np
import pytest

from gpukpm import atomic, kpm, models, torque
from gpukpm.response.dos import dos
from gpukpm.run import io
from gpukpm.run.configurations import ConfigurationResponses


@pytest.fixture(scope="module")
def small_moments():
    system = models.GrapheneRashba(rashba=0.3, exchange=0.4).real_space(shape=(3, 3))
    return kpm.kubo_moments(system, num_moments=12, trace=2, seed=3)


@pytest.fixture(scope="module")
def small_dos():
    system = models.GrapheneRashba().real_space(shape=(3, 3))
    moments = kpm.dos_moments(system, num_moments=16, trace="exact")
    return moments, dos(moments, np.linspace(-5, 5, 7), orbitals_per_cell=4)


def _synthetic_fit(energies, samples=4, seed=0):
    mags = torque.magnetizations(2)
    chi = {"chi_FL": 1.0 + energies, "xi_FL": 0.1 * energies, "chi_DL": 0.5 - energies,
           "chi_par": 0.2 * energies, "chi_perp": -0.3 * energies, "chi_torqueless": 0.05 + 0 * energies}
    clean = torque.spin_density(mags, chi)  # (C, 3, E)
    noise = np.random.default_rng(seed).normal(scale=0.01, size=(samples,) + clean.shape)
    return mags, torque.fit_samples(mags, clean[None] + noise)


def test_moments_round_trip_with_extra_datasets(tmp_path, small_moments):
    path = tmp_path / "m.h5"
    io.save_moments(path, small_moments, extra={"mu_mean": small_moments.mu})
    back = io.load_moments(path)
    np.testing.assert_array_equal(back.mu_samples, small_moments.mu_samples)
    np.testing.assert_array_equal(back.sample_vectors, small_moments.sample_vectors)
    for key in ("a", "b", "emin", "emax", "epsilon", "num_orbitals", "area", "left", "right", "trace", "seed",
                "hermitian"):
        assert getattr(back, key) == getattr(small_moments, key), key
    assert back.provenance == io.from_json(io.to_json(small_moments.provenance))
    with h5py.File(path, "r") as fh:
        np.testing.assert_array_equal(fh["mu_mean"][...], small_moments.mu)
        assert fh.attrs["gpukpm_format"] == io.FORMAT_VERSION


def test_response_round_trip(tmp_path, small_moments):
    resp = kpm.kubo_response(small_moments, [-0.5, 0.0, 0.5], part="sea")
    io.save_response(tmp_path / "r.h5", resp)
    back = io.load_response(tmp_path / "r.h5")
    for key in ("energies", "values", "stderr", "samples"):
        np.testing.assert_array_equal(getattr(back, key), getattr(resp, key))
    assert (back.part, back.kernel, back.num_moments, back.operators) == (resp.part, resp.kernel, resp.num_moments,
                                                                         resp.operators)
    np.testing.assert_array_equal(back.per_sample_std, resp.per_sample_std)


def test_dos_round_trip_and_csv(tmp_path, small_dos):
    moments, result = small_dos
    io.save_dos(tmp_path / "d.h5", result, moments, config={"model": {"kind": "GrapheneRashba"}})
    back = io.load_dos(tmp_path / "d.h5")
    np.testing.assert_array_equal(back.values, result.values)
    np.testing.assert_array_equal(back.energies, result.energies)
    assert (back.kernel, back.num_moments, back.eta, back.orbitals_per_cell) == (
        result.kernel, result.num_moments, result.eta, result.orbitals_per_cell)
    io.atomic_text(tmp_path / "d.csv", io.dos_csv(result))
    table = np.genfromtxt(tmp_path / "d.csv", delimiter=",", names=True)
    np.testing.assert_array_equal(table["dos_per_cell_eV"], result.values)


def test_torques_round_trip_h5_and_csv(tmp_path):
    energies = np.linspace(-0.2, 0.2, 5)
    mags, fit = _synthetic_fit(energies)
    io.save_torques(tmp_path / "t.h5", energies, fit, mags, {"part": "total"})
    table = io.load_torques(tmp_path / "t.h5")
    np.testing.assert_array_equal(table.energies, energies)
    np.testing.assert_array_equal(table.magnetizations, mags)
    np.testing.assert_array_equal(table.covariance, fit.covariance)
    assert table.num_samples == fit.num_samples and table.metadata == {"part": "total"}
    for name, column in fit.as_arrays().items():
        np.testing.assert_array_equal(table.columns[name], column)
    io.save_torques_csv(tmp_path / "t.csv", energies, fit)
    csv = io.load_torques_csv(tmp_path / "t.csv")
    np.testing.assert_array_equal(csv["energy"], energies)
    for name, column in fit.as_arrays().items():  # 17 significant digits: exact
        np.testing.assert_array_equal(csv[name], column)


def test_configuration_responses_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    res = ConfigurationResponses(
        magnetizations=torque.magnetizations(2), energies=np.linspace(0, 1, 3),
        values={p: rng.normal(size=(14, 3, 3)) for p in ("sea", "surface")},
        stderr={p: rng.random(size=(14, 3, 3)) for p in ("sea", "surface")},
        samples={p: rng.normal(size=(2, 14, 3, 3)) for p in ("sea", "surface")},
        sample_realisations=np.array([0, 0]), exact=False, metadata={"trace": 2})
    io.save_configuration_responses(tmp_path / "c.h5", res)
    back = io.load_configuration_responses(tmp_path / "c.h5")
    assert set(back.values) == {"sea", "surface"} and back.metadata == {"trace": 2} and not back.exact
    for p in ("sea", "surface"):
        for key in ("values", "stderr", "samples"):
            np.testing.assert_array_equal(getattr(back, key)[p], getattr(res, key)[p])
    np.testing.assert_array_equal(back.sample_realisations, res.sample_realisations)


READERS = {"moments": io.load_moments, "response": io.load_response, "dos": io.load_dos,
           "torques": io.load_torques, "configuration_responses": io.load_configuration_responses}


@pytest.mark.parametrize("kind", sorted(READERS))
def test_every_reader_refuses_other_kinds_foreign_and_broken_files(tmp_path, kind):
    reader = READERS[kind]
    other = "response" if kind == "moments" else "moments"
    with io.atomic_h5(tmp_path / "other.h5", other):
        pass
    with pytest.raises(io.FileFormatError, match=f"not a gpukpm {kind} file: it is a gpukpm '{other}' file"):
        reader(tmp_path / "other.h5")
    with h5py.File(tmp_path / "foreign.h5", "w") as fh:
        fh["x"] = 1
    with pytest.raises(io.FileFormatError, match="without gpukpm_kind"):
        reader(tmp_path / "foreign.h5")
    (tmp_path / "text.h5").write_text("not hdf5\n")
    with pytest.raises(io.FileFormatError, match="text.h5: not a readable HDF5 file"):
        reader(tmp_path / "text.h5")
    with pytest.raises(io.FileFormatError, match="missing.h5: no such file"):
        reader(tmp_path / "missing.h5")
    with io.atomic_h5(tmp_path / "incomplete.h5", kind):
        pass
    with pytest.raises(io.FileFormatError, match="incomplete gpukpm"):
        reader(tmp_path / "incomplete.h5")


def test_a_newer_layout_is_refused_naming_both_versions(tmp_path, small_moments):
    io.save_moments(tmp_path / "m.h5", small_moments)
    with h5py.File(tmp_path / "m.h5", "a") as fh:
        fh.attrs["gpukpm_format"] = io.FORMAT_VERSION + 1
    with pytest.raises(io.FileFormatError, match=f"gpukpm_format = {io.FORMAT_VERSION + 1}.*up to "
                                                 f"{io.FORMAT_VERSION}"):
        io.load_moments(tmp_path / "m.h5")


def test_a_file_of_the_first_layout_without_format_attribute_is_read(tmp_path, small_moments):
    io.save_moments(tmp_path / "m.h5", small_moments)
    with h5py.File(tmp_path / "m.h5", "a") as fh:
        del fh.attrs["gpukpm_format"]
    np.testing.assert_array_equal(io.load_moments(tmp_path / "m.h5").mu_samples, small_moments.mu_samples)


def test_torques_csv_reader_refuses_a_table_without_energy(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(io.FileFormatError, match="no 'energy' column"):
        io.load_torques_csv(tmp_path / "x.csv")


def test_atomic_writer_names_are_unique_and_a_failure_leaves_nothing(tmp_path):
    names, barrier = [], threading.Barrier(2)

    def write(text):
        with atomic.atomic_path(tmp_path / "same.txt") as tmp:
            names.append(tmp)
            barrier.wait(timeout=10)  # both temporaries exist at once
            with open(tmp, "w") as fh:
                fh.write(text)

    threads = [threading.Thread(target=write, args=(t,)) for t in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(names)) == 2
    assert (tmp_path / "same.txt").read_text() in {"one", "two"}
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(tmp_path / "never.txt"):
            raise RuntimeError("killed mid-write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.txt"]


def test_atomic_files_get_the_permissions_of_a_new_file(tmp_path):
    old = os.umask(0o027)
    try:
        atomic.atomic_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o640


def test_no_module_but_io_and_atomic_writes_files():
    """One owner: only gpukpm/run/io.py opens HDF5 files for writing; only gpukpm/atomic.py renames into place."""
    import pathlib
    import re

    import gpukpm

    root = pathlib.Path(gpukpm.__file__).parent
    for path in root.rglob("*.py"):
        text, rel = path.read_text(), path.relative_to(root).as_posix()
        if rel != "run/io.py":
            assert not re.search(r"h5py\.File\([^)]*[\"'][wa+x][\"']", text), rel
        if rel != "atomic.py":
            assert not re.search(r"os\.replace\(|os\.rename\(|mkstemp\(", text), rel
