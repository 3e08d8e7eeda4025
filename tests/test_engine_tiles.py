"""The streamed-X / stored-Y engine: tiles smaller than N and Y blocks that cut tiles give the same μ."""
import numpy as np
import pytest

from gpukpm import kpm, models


@pytest.mark.parametrize("trace", ["exact", 2])
def test_small_tiles_and_blocks_give_the_same_moments(trace):
    system = models.GrapheneRashba(t=2.7, rashba=0.3, exchange=0.4, mass=0.1,
                                   magnetization=(0.0, 0.6, 0.8)).real_space((4, 5), disorder=0.5, seed=1)
    kw = dict(left=("sx", "jy", "jx"), right="jx", num_moments=37, trace=trace, seed=3, bounds=(-9.5, 9.5),
              progress=False)
    ref = kpm.kubo_moments(system, **kw)
    assert ref.provenance["block_size"] == 37
    D = system.num_orbitals
    vector = (32 if trace == "exact" else 1) * D * 16
    small = kpm.kubo_moments(system, memory_budget=(8 + 3 * 8) * vector + 5 * vector, **kw)
    assert small.provenance["tile_size"] == 8 and small.provenance["block_size"] == 5
    scale = np.abs(ref.mu_samples).max()
    assert np.abs(small.mu_samples - ref.mu_samples).max() < 1e-12 * scale
    if trace == "exact":  # Hermitian: only n ≥ tile start(m) computed, the rest filled
        mu = ref.mu_samples[0]
        assert np.abs(mu - np.conj(np.swapaxes(mu, 1, 2))).max() < 1e-12 * scale
