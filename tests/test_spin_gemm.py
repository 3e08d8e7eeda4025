"""Spin-resolved GEMM route (left operators all on-site spins) equals the per-operator route."""
import numpy as np
import pytest

from gpukpm import kpm, models

SYSTEM = models.GrapheneRashba(t=2.7, rashba=0.3, exchange=0.4, mass=0.1,
                               magnetization=(0.6, 0.0, 0.8)).real_space((5, 4), disorder=0.7, seed=3)
KW = dict(right="jx", num_moments=36, seed=5, bounds=(-9.5, 9.5), progress=False, backend="cpu")


def _both(left, **kw):
    """(spin route, per-operator route): the same spin matrices passed as custom operators
    take the general path."""
    fast = kpm.kubo_moments(SYSTEM, left=left, **KW, **kw)
    slow = kpm.kubo_moments(SYSTEM, left=tuple(SYSTEM.operator(n).copy() for n in left), **KW, **kw)
    return fast, slow


@pytest.mark.parametrize("left", [("sx", "sy", "sz"), ("sz",), ("sy", "sx"), ("sx",)])
@pytest.mark.parametrize("trace, extra", [("exact", {}), (3, {}), (3, {"vectors_per_batch": 2}),
                                          ("exact", {"block_size": 7}), (2, {"block_size": 5})])
def test_spin_route_equals_per_operator_route(left, trace, extra):
    fast, slow = _both(left, trace=trace, **extra)
    assert fast.provenance["gemm_route"] == "spin-resolved"
    assert slow.provenance["gemm_route"] == "per-operator"
    scale = np.abs(slow.mu_samples).max()
    assert np.abs(fast.mu_samples - slow.mu_samples).max() < 1e-12 * scale


def test_spin_route_in_single_precision():
    fast, slow = _both(("sx", "sy", "sz"), trace=2, dtype=np.complex64)
    scale = np.abs(slow.mu_samples).max()
    assert np.abs(fast.mu_samples - slow.mu_samples).max() < 1e-5 * scale


def test_mixed_left_operators_keep_the_general_route():
    m = kpm.kubo_moments(SYSTEM, left=("sx", "jy"), trace=1, **KW)
    assert m.provenance["gemm_route"] == "per-operator"
