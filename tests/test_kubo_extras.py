"""Temperature, single precision, and the one-command torque run."""
import numpy as np
import pytest
import yaml

from gpukpm import kpm, models
from gpukpm.run import io
from gpukpm.run.cli import main
from gpukpm.response.kubo import BOLTZMANN_EV


@pytest.fixture(scope="module")
def moments():
    model = models.GrapheneRashba(t=2.7, rashba=0.4, exchange=0.5, mass=0.1, magnetization=(0.0, 0.6, 0.8))
    system = model.real_space(shape=(8, 8), disorder=1.0, seed=6)
    return kpm.kubo_moments(system, left=("sx", "sy"), num_moments=96, trace="exact", progress=False)


@pytest.mark.parametrize("part", ["total", "sea", "surface"])
def test_temperature_is_the_thermal_average_of_zero_temperature(moments, part):
    """S_T(μ) = ∫ dε (−∂f/∂ε) S_0(ε), checked against a direct quadrature of T = 0 values."""
    T = 1500.0
    kT = BOLTZMANN_EV * T
    mu = np.array([-0.8, 0.0, 0.6])
    grid = np.linspace(mu.min() - 30 * kT, mu.max() + 30 * kT, 1201)
    s0 = kpm.kubo_response(moments, grid, part=part).values  # (2, G)
    weight = 1.0 / (4 * kT * np.cosh((grid[None, :] - mu[:, None]) / (2 * kT)) ** 2)
    expected = np.trapezoid(weight[None, :, :] * s0[:, None, :], grid, axis=2)
    got = kpm.kubo_response(moments, mu, part=part, temperature=T).values
    assert np.abs(got - expected).max() <= 2e-3 * np.abs(expected).max()
    # T → 0 recovers the zero-temperature values
    cold = kpm.kubo_response(moments, mu, part=part, temperature=1e-3).values
    np.testing.assert_allclose(cold, kpm.kubo_response(moments, mu, part=part).values,
                               atol=1e-6 * np.abs(expected).max())


def test_single_precision_recursion_error_is_small():
    """complex64 recursion and GEMM (μ accumulated in complex128).

    Each Chebyshev step adds a rounding error of order u = 2⁻²⁴ (complex64) relative to ‖T_n v‖ ≤ ‖v‖,
    and the recursion is stable on [−1, 1], so the error of μ after N orders is at most of order N·u
    relative to max|μ|.  A result more accurate than u/10 would mean it never ran in single precision."""
    model = models.GrapheneRashba(t=2.7, rashba=0.3, exchange=0.4, mass=0.1)
    system = model.real_space(shape=(16, 16), disorder=1.0, seed=2)
    kw = dict(left=("sx", "sy", "sz"), num_moments=128, trace=2, seed=1, bounds=(-10.0, 10.0), progress=False)
    double = kpm.kubo_moments(system, **kw)
    single = kpm.kubo_moments(system, dtype=np.complex64, **kw)
    assert single.provenance["dtype"] == "complex64"
    rel = np.abs(single.mu_samples - double.mu_samples).max() / np.abs(double.mu_samples).max()
    unit_roundoff = float(np.finfo(np.float32).eps) / 2
    assert unit_roundoff / 10 < rel <= kw["num_moments"] * unit_roundoff


def test_torques_run_command(tmp_path):
    cfg = {
        "model": {"name": "GrapheneRashba", "t": 2.7, "rashba": 0.3, "exchange": 0.4, "mass": 0.1},
        "system": {"shape": [3, 3], "disorder": 0.5, "realisations": 1},
        "kpm": {"num_moments": 24, "trace": "exact", "seed": 1},
        "response": {"energies": [-0.4, 0.4], "parts": ["total"]},
        "backend": "cpu",
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "torques.h5"
    assert main(["torques-run", str(path), "--part", "total", "-o", str(out), "--csv", str(tmp_path / "t.csv"),
                 "-q"]) == 0
    import h5py

    with h5py.File(out, "r") as fh:
        assert fh["magnetizations"].shape == (14, 3)
        assert np.all(np.isfinite(fh["chi_FL"][...])) and fh["chi_FL"].shape == (2,)
    assert io.read_kind(str(out) + ".responses.h5") == "configuration_responses"


def test_sweep_rescaling_gives_every_w_the_same_broadening():
    """One (a, b) and N for a sweep; the bound holds every spectrum of the sweep (any m̂, any W ≤ max)."""
    from gpukpm import models
    from gpukpm.response import kernels
    from gpukpm.engine.spectrum import gershgorin_bounds, sweep_bounds, sweep_rescaling

    model = models.GrapheneRashba(t=2.7, rashba=0.3, exchange=0.4, mass=0.1)
    lo, hi = sweep_bounds(model, [0.0, 1.5])
    for m in ((0.0, 0.0, 1.0), (1.0, 0.0, 0.0), (0.6, 0.0, 0.8)):
        for W in (0.0, 1.5):
            h = model.with_magnetization(m).real_space(shape=(8, 8), disorder=W, seed=1).hamiltonian
            e = np.linalg.eigvalsh(h.toarray())
            assert lo <= e.min() and e.max() <= hi
    assert (lo, hi) == pytest.approx((-9.45, 9.45))  # 3t + 3λ_R/3·... : Gershgorin rows + J/2 + W/2
    scaling, N = sweep_rescaling(model, [0.0, 1.5], eta=0.2)
    fewer, _ = sweep_rescaling(model, [0.0, 1.5], num_moments=N - 1)  # the smallest such N: N − 1 is too few
    assert kernels.broadening("jackson", scaling.a, N) <= 0.2 < kernels.broadening("jackson", fewer.a, N - 1)
    same, N2 = sweep_rescaling(model, [1.5, 0.0], num_moments=N)
    assert (same.a, same.b, N2) == (scaling.a, scaling.b, N)
    with pytest.raises(ValueError, match="give num_moments or eta"):
        sweep_rescaling(model, [0.0], num_moments=10, eta=0.1)
    with pytest.raises(ValueError, match="disorders must be a non-empty list"):
        sweep_bounds(model, [-1.0])
    assert gershgorin_bounds(model.real_space(shape=(6, 6)).hamiltonian)[1] <= hi
