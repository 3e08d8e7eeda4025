"""One orchestration path for every magnetisation of one system (issue 18).

``gpukpm torques-run`` (:func:`gpukpm.run.configurations.run_configurations`) computes each
magnetisation as the configuration :func:`~gpukpm.run.configurations.magnetisation_config` through
:func:`gpukpm.run.parallel.compute_tasks` — the tasks ``gpukpm moments`` (the workflow's jobs) runs —
with the rescaling the workflow uses (:func:`gpukpm.engine.spectrum.sweep_rescaling`): its per-sample
responses equal those of ``run_moments`` on that configuration bit for bit.
"""
import numpy as np

from gpukpm.engine.spectrum import sweep_rescaling
from gpukpm.kpm import kubo_response
from gpukpm.run import io
from gpukpm.run.config import build_model, energy_grid, load_config
from gpukpm.run.configurations import magnetisation_config, run_configurations, shared_rescaling
from gpukpm.run.parallel import SerialComm, run_moments
from gpukpm.torque import magnetizations

CONFIG = {
    "model": {"name": "GrapheneRashba", "rashba": 0.3, "exchange": 0.4, "mass": 0.1, "magnetization": [0, 0, 1]},
    "system": {"shape": [6, 6], "disorder": 1.0, "realisations": 2},
    "kpm": {"num_moments": 16, "trace": 3, "vectors_per_task": 2, "seed": 4},
    "response": {"energies": {"start": -1.0, "stop": 1.0, "num": 7}, "parts": ["total", "surface"]},
    "torque": {"order": 2},
    "backend": "cpu",
}


def test_torques_run_computes_each_magnetisation_as_gpukpm_moments(tmp_path):
    cfg = load_config(CONFIG)
    res = run_configurations(cfg, progress=False)
    model = build_model(cfg["model"])
    scaling, N = shared_rescaling(cfg, model)
    reference, _ = sweep_rescaling(model, [1.0], num_moments=16)  # the workflow's rescaling for this W
    assert (scaling.a, scaling.b, N) == (reference.a, reference.b, 16)
    assert res.metadata["rescaling"] == {"a": scaling.a, "b": scaling.b}
    energies = energy_grid(cfg["response"]["energies"])
    mags = magnetizations(2)
    assert np.array_equal(res.magnetizations, mags)
    for c in (0, len(mags) - 1):
        job = magnetisation_config(cfg, mags[c], scaling, N)
        out = run_moments(job, tmp_path / f"m{c}.h5", progress=False, comm=SerialComm())
        moments = io.load_moments(out)
        assert (moments.a, moments.b) == (scaling.a, scaling.b)
        for part in ("total", "surface"):
            resp = kubo_response(moments, energies, part=part)
            assert np.array_equal(res.samples[part][:, c], resp.samples)
    assert np.array_equal(res.sample_realisations, [0, 0, 0, 1, 1, 1])
