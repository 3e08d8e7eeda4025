"""Stochastic trace estimators (gpukpm.engine.estimators): unbiased, honest standard errors, variance structure.

Statistical checks use fixed seeds (deterministic) and thresholds from the
sampling distributions at a false-alarm level of 1e-4 each, not from measured
values:

* unbiasedness: the pooled mean of all seeds' samples lies within
  ``z = Φ⁻¹(1 − 1e-4/2)`` pooled standard errors of the exact-trace value;
* coverage: per run of R vectors (S = 16 runs: 4 seeds × 4 disjoint groups of
  vector ids), ``|mean − exact| ≤ t_{0.975, R−1} · stderr`` holds with
  probability 0.95, so the number of covering runs is Binomial(S, 0.95) and
  must reach its 1e-4 quantile;
* scale: the scatter of the run means against the mean reported stderr²,
  ``var(means)/mean(stderr²)``, follows F(S − 1, S(R − 1)) and must lie
  between its 1e-4 and 1 − 1e-4 quantiles.
"""
from dataclasses import replace

import numpy as np
import pytest
import scipy.stats

from gpukpm import kpm, models
from gpukpm.run.config import ConfigError, validate_config
from gpukpm.engine.estimators import ESTIMATORS, colours, control_variate, dilute, spin_basis
from gpukpm.engine.moments import concatenate

ALPHA = 1e-4
SEEDS = 4  # run seeds, each with GROUPS independent groups of VECTORS vectors (one call per seed)
GROUPS = 4
VECTORS = 6
RUNS = SEEDS * GROUPS  # the S independent estimates of the coverage checks
N = 32
ENERGY = np.array([0.4])
LEFT = ("sx", "sy")
PARTS = ("total", "sea", "surface")


MODEL = models.GrapheneRashba(t=2.7, rashba=0.3, exchange=0.4, mass=0.1, magnetization=(0.6, 0.0, 0.8))
CONTROLLED = ("spin_diluted+control_variate",)


@pytest.fixture(scope="module")
def system():
    return MODEL.real_space(shape=(6, 6), disorder=1.5, seed=5, realisation=1)


@pytest.fixture(scope="module")
def pristine():
    return MODEL.real_space(shape=(6, 6), disorder=0.0, seed=5, realisation=1)


@pytest.fixture(scope="module")
def pristine_exact(pristine, exact):
    return kpm.kubo_moments(pristine, left=LEFT, right="jx", num_moments=N, trace="exact", vectors_per_batch=64,
                            scaling=exact.scaling, progress=False)


@pytest.fixture(scope="module")
def exact(system):
    return kpm.kubo_moments(system, left=LEFT, right="jx", num_moments=N, trace="exact", vectors_per_batch=64,
                            progress=False)


def _responses(moments):
    """{part: per-sample responses (S, 2)} at ENERGY."""
    return {part: kpm.kubo_response(moments, ENERGY, part=part).samples[:, :, 0] for part in PARTS}


def _run_stats(samples):
    """Per group of VECTORS samples the mean and standard error (what Response.values/.stderr
    report for a run of VECTORS vectors, checked below)."""
    groups = samples.reshape(RUNS, VECTORS, -1)
    return groups.mean(axis=1), groups.std(axis=1, ddof=1) / np.sqrt(VECTORS)


def _stochastic(system, estimator, seed, scaling, trace=GROUPS * VECTORS):
    return kpm.kubo_moments(system, left=LEFT, right="jx", num_moments=N, trace=trace, seed=seed, realisation=1,
                            scaling=scaling, estimator=estimator, vectors_per_batch=trace, progress=False)


@pytest.fixture(scope="module", params=ESTIMATORS + CONTROLLED)
def runs(request, system, exact, pristine, pristine_exact):
    """One estimator: ``(name, {part: samples (S·R, 2)}, exact {part: (1, 2)}, per-seed Moments)``;
    group g holds samples g·R … (g + 1)·R − 1 (seed-major).  ``X+control_variate``: estimator X
    on the disordered and on the pristine system with the same vectors, exact pristine added."""
    base = request.param.split("+")[0]
    seeds = [_stochastic(system, base, s, exact.scaling) for s in range(SEEDS)]
    if request.param in CONTROLLED:
        seeds = [control_variate(m, _stochastic(pristine, base, s, exact.scaling), pristine_exact)
                 for s, m in enumerate(seeds)]
    pooled = replace(seeds[0], mu_samples=np.concatenate([m.mu_samples for m in seeds]),
                     sample_realisations=np.zeros(RUNS * VECTORS, dtype=int))
    return request.param, _responses(pooled), _responses(exact), seeds


def test_group_statistics_are_the_reported_ones(runs):
    """Group 1 (vectors R … 2R − 1 of seed 0) as a run of its own: kubo_response reports the same."""
    _, samples, _, seeds = runs
    one = slice(VECTORS, 2 * VECTORS)
    run = replace(seeds[0], mu_samples=seeds[0].mu_samples[one], sample_realisations=seeds[0].sample_realisations[one],
                  sample_vectors=seeds[0].sample_vectors[one])
    reported = kpm.kubo_response(run, ENERGY, part="total")
    mean, err = _run_stats(samples["total"])
    np.testing.assert_allclose(reported.values[:, 0], mean[1], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(reported.stderr[:, 0], err[1], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("part", PARTS)
def test_estimator_is_unbiased(runs, part):
    _, samples, ref, _ = runs
    mean = samples[part].mean(axis=0)
    err = samples[part].std(axis=0, ddof=1) / np.sqrt(len(samples[part]))
    z = scipy.stats.norm.isf(ALPHA / 2)
    assert np.all(np.abs(mean - ref[part][0]) <= z * err + 1e-12), (mean, ref[part][0], err)


@pytest.mark.parametrize("part", PARTS)
def test_standard_error_covers_the_scatter(runs, part):
    _, samples, ref, _ = runs
    means, errs = _run_stats(samples[part])  # (S, 2) each
    t = scipy.stats.t.ppf(0.975, VECTORS - 1)
    covered = (np.abs(means - ref[part][0]) <= t * errs).sum(axis=0)
    assert np.all(covered >= scipy.stats.binom.ppf(ALPHA, RUNS, 0.95)), covered
    ratio = means.var(axis=0, ddof=1) / (errs ** 2).mean(axis=0)
    dfn, dfd = RUNS - 1, RUNS * (VECTORS - 1)
    lo, hi = scipy.stats.f.ppf(ALPHA, dfn, dfd), scipy.stats.f.ppf(1 - ALPHA, dfn, dfd)
    assert np.all((ratio >= lo) & (ratio <= hi)), (ratio, lo, hi)


def test_provenance_records_the_estimator_and_cost(runs, system, exact):
    """A diluted sample costs k chain pairs: k times the products of a plain one."""
    estimator, _, _, seeds = runs
    k = colours(system, estimator.split("+")[0], system.num_orbitals)[1]
    plain = kpm.kubo_moments(system, left=LEFT, num_moments=N, trace=GROUPS * VECTORS, scaling=exact.scaling,
                             vectors_per_batch=GROUPS * VECTORS, progress=False)
    assert seeds[0].provenance["estimator"] == estimator and seeds[0].provenance["colours"] == k
    assert seeds[0].provenance["spmv_count"] == k * plain.provenance["spmv_count"]
    assert seeds[0].num_samples == GROUPS * VECTORS and exact.provenance["estimator"] == "exact"


@pytest.mark.parametrize("estimator, magnetization, flipped", [
    ("spin_diluted", (0.0, 0.0, 1.0), ("sx", "sy")),
    ("spin_m_diluted", (1.0, 0.0, 0.0), ("sy", "sz")),
    ("spin_m_diluted", (0.0, 0.6, 0.8), ("sx",)),
])
def test_spin_dilution_removes_the_spin_flip_noise_exactly(estimator, magnetization, flipped):
    """Without Rashba, H commutes with s·m̂: for the spin components transverse to the dilution
    axis, ⟨P_± r|T_m s_k T_n ĵ_x|P_± r⟩ = 0 for every vector (s_k flips s·m̂, everything else
    keeps it), so the diluted samples are zero to round-off, which is the exact trace; the
    plain ones scatter."""
    model = models.GrapheneRashba(t=2.7, rashba=0.0, exchange=0.4, mass=0.1, magnetization=magnetization)
    system = model.real_space(shape=(6, 6), disorder=1.5, seed=2)
    plain, diluted = (kpm.kubo_moments(system, left=flipped, num_moments=16, trace=4, estimator=e,
                                       vectors_per_batch=4, progress=False)
                      for e in ("plain", estimator))
    assert np.abs(diluted.mu_samples).max() < 1e-12
    assert np.abs(plain.mu_samples).max() > 1e-3


@pytest.mark.parametrize("axis", [(0, 0, 1), (0, 0, -2), (1, 0, 0), (0.3, -0.5, 0.8)])
def test_spin_basis_holds_the_spinors_along_the_axis(axis):
    pauli = [np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.array([[1, 0], [0, -1]])]
    n = np.asarray(axis, float) / np.linalg.norm(axis)
    U = spin_basis(axis)
    np.testing.assert_allclose(U.conj().T @ U, np.eye(2), atol=1e-14)
    np.testing.assert_allclose(sum(c * p for c, p in zip(n, pauli)) @ U, U @ np.diag([1, -1]), atol=1e-14)


def test_dilute_partitions_every_vector():
    rng = np.random.default_rng(0)
    rows = np.exp(2j * np.pi * rng.random((3, 24)))
    system = models.GrapheneRashba().real_space(shape=(3, 2))  # 2 sublattices
    for est in ESTIMATORS:
        colour, k = colours(system, est, 24)
        out = dilute(rows, colour, k).reshape(3, k, 24)
        assert k == {"plain": 1, "spin_diluted": 2, "spin_m_diluted": 2, "sublattice_diluted": 2,
                     "spin_sublattice_diluted": 4}[est]
        np.testing.assert_array_equal(out.sum(axis=1), rows)
        assert np.all((out != 0).sum(axis=1) == 1)  # each orbital in exactly one colour


def test_spin_colours_follow_the_orbital_order():
    system = models.GrapheneRashba().real_space(shape=(2, 2))
    colour, _ = colours(system, "spin_sublattice_diluted", system.num_orbitals)
    # orbital 2·site + spin, site = 2·cell + α: A↑ A↓ B↑ B↓ per cell
    np.testing.assert_array_equal(colour[:8], [0, 1, 2, 3, 0, 1, 2, 3])


def test_bad_estimator_names_the_parameter(system):
    with pytest.raises(ValueError, match="estimator"):
        kpm.kubo_moments(system, left=LEFT, num_moments=4, trace=1, estimator="hutch", progress=False)
    with pytest.raises(ConfigError, match="kpm.estimator"):
        validate_config({"model": {"name": "GrapheneRashba"}, "system": {"shape": [4, 4]},
                         "kpm": {"estimator": "hutch"}})


def test_concatenate_refuses_mixed_estimators(system, exact):
    parts = [kpm.kubo_moments(system, left=LEFT, num_moments=4, trace=1, estimator=e, scaling=exact.scaling,
                              progress=False) for e in ("plain", "spin_diluted")]
    with pytest.raises(ValueError, match="estimator"):
        concatenate(parts)


def test_kspace_moments_serve_as_the_exact_control(system, pristine, exact, pristine_exact):
    """k space on the matching 6 × 6 grid with the run's bounds and margin is the exact pristine trace."""
    half = exact.a * (1 - exact.epsilon)  # the bounds that give back a and b
    kmom = kpm.kspace_moments(MODEL, grid=(6, 6), left=LEFT, right="jx", num_moments=N,
                              bounds=(exact.b - half, exact.b + half), epsilon=exact.epsilon, progress=False)
    np.testing.assert_allclose(kmom.mu, pristine_exact.mu, atol=1e-12)
    m = _stochastic(system, "plain", 0, exact.scaling, trace=2)
    c = _stochastic(pristine, "plain", 0, exact.scaling, trace=2)
    via_k, via_exact = control_variate(m, c, kmom), control_variate(m, c, pristine_exact)
    np.testing.assert_allclose(via_k.mu_samples, via_exact.mu_samples, atol=1e-12)
    assert via_k.provenance["estimator"] == "plain+control_variate"


def test_control_variate_refuses_mismatched_runs(system, pristine, exact, pristine_exact):
    m = _stochastic(system, "plain", 0, exact.scaling, trace=2)
    with pytest.raises(ValueError, match="same vectors"):
        control_variate(m, replace(m, sample_vectors=m.sample_vectors + 1), pristine_exact)
    with pytest.raises(ValueError, match="seed"):
        control_variate(m, _stochastic(pristine, "plain", 1, exact.scaling, trace=2), pristine_exact)
    with pytest.raises(ValueError, match="exact"):
        control_variate(m, m, m)
