"""The pipeline's vocabulary mapped onto the command line's: one job configuration per job.

:class:`Pipeline` validates a pipeline configuration (:class:`gpukpm.run.schema.PipelineConfig`),
derives what the Snakemake rules need (magnetisation labels, W labels, realisation chunks, the
sweep's one rescaling and N) and writes the :class:`gpukpm.run.schema.RunConfig` of every job
(:meth:`Pipeline.moments_job`, :meth:`Pipeline.kspace_job`).  :meth:`Pipeline.check_jobs`
validates all of them, so that a dry run already fails on a value only a job would meet.
"""
from __future__ import annotations

import math

import numpy as np

from gpukpm.run.config import build_model, validate_config
from gpukpm.errors import ConfigError
from gpukpm.run.schema import validate_pipeline
from gpukpm.engine.spectrum import sweep_rescaling
from gpukpm.torque.decomposition import design_matrix, magnetizations

__all__ = ["Pipeline", "w_label"]

#: operators of every pipeline job: the spin densities S_x, S_y, S_z driven by the current ĵ_x
LEFT, RIGHT = ["sx", "sy", "sz"], "jx"


def w_label(w: float) -> str:
    """The label of a disorder strength W (eV) in file names: ``1.5``, ``0``."""
    return f"{float(w):g}"


class Pipeline:
    """A validated pipeline configuration and the job configurations it implies.

    ``Pipeline(raw, source="config.yaml")`` raises :class:`~gpukpm.errors.ConfigError` (one line,
    naming the key path) for anything wrong in ``raw`` or in a job built from it.
    """

    def __init__(self, raw: dict, source: str = ""):
        self.source = source
        self.config = cfg = validate_pipeline(raw, source)
        self.parts = list(cfg["response"]["parts"])
        order, subset = cfg["torque"]["order"], cfg["torque"]["subset"]
        self.all_magnetizations = magnetizations(order)
        self.mag_ids = list(range(len(self.all_magnetizations))) if subset is None else list(subset)
        self._check_subset(order)
        self.mag_labels = [f"{i:02d}" for i in self.mag_ids]

        rs = cfg["realspace"]
        self.realspace_on = bool(rs["enabled"])
        self.w_values = {w_label(w): float(w) for w in rs["disorder"]} if self.realspace_on else {}
        self.chunks = {}
        if self.realspace_on:
            ids, per_job = list(range(rs["realisations"])), rs["realisations_per_job"]
            self.chunks = {str(c): ids[c * per_job:(c + 1) * per_job] for c in range(math.ceil(len(ids) / per_job))}
        self.cases = dict(cfg["kspace"]["cases"]) if cfg["kspace"]["enabled"] else {}
        if not self.realspace_on and not self.cases:
            self._fail("realspace.enabled is false and kspace has no cases: nothing to do")
        for name, case in self.cases.items():
            if case["match_realspace"]:
                if not self.realspace_on:
                    self._fail(f"kspace.cases.{name}.match_realspace: needs realspace.enabled")
                if case["model"] != rs["model"]:
                    self._fail(f"kspace.cases.{name}.model: must equal realspace.model with match_realspace, "
                               f"got {case['model']} vs {rs['model']}")

        self.sweep_bounds = self.sweep_num_moments = None
        if self.realspace_on:
            # one rescaling and one N for every W of the sweep: identical η(ε) at every W
            scaling, self.sweep_num_moments = sweep_rescaling(
                build_model(rs["model"]), list(self.w_values.values()), num_moments=rs["num_moments"],
                eta=rs["eta"], kernel=cfg["response"]["kernel"], bounds=rs["bounds"])
            self.sweep_bounds = [scaling.emin, scaling.emax]

    def _fail(self, message: str):
        raise ConfigError(f"{self.source}: {message}" if self.source else message)

    def _check_subset(self, order: int) -> None:
        count = len(self.all_magnetizations)
        bad = [i for i in self.mag_ids if i >= count]
        if bad:
            self._fail(f"torque.subset: indices {bad} out of range (order {order} has {count} magnetisations)")
        if len(set(self.mag_ids)) != len(self.mag_ids):
            self._fail(f"torque.subset: repeated indices {self.mag_ids}")
        if np.linalg.matrix_rank(design_matrix(self.all_magnetizations[self.mag_ids]).reshape(-1, 6)) < 6:
            self._fail(f"torque.subset: magnetisations {self.mag_ids} do not determine the 6 torque parameters")

    def magnetization(self, label: str) -> list[float]:
        """m̂ of a magnetisation label (``"05"``: index 5 of :func:`gpukpm.torque.decomposition.magnetizations`)."""
        return [float(x) for x in self.all_magnetizations[int(label)]]

    def matched(self, case: str) -> bool:
        """Whether k-space ``case`` mirrors the pristine real-space lattice."""
        return bool(self.cases[case]["match_realspace"])

    def moments_job(self, w: str, m: str, c: str, trace: int | None = None) -> dict:
        """The run configuration of one real-space moments job (moments-relevant parameters only); ``trace``
        overrides ``realspace.trace`` (the pilot's sizing)."""
        rs = self.config["realspace"]
        kpm = {"num_moments": self.sweep_num_moments, "trace": rs["trace"] if trace is None else int(trace),
               "seed": rs["seed"],
               "left": LEFT, "right": RIGHT, "bounds": self.sweep_bounds}
        for key in ("vectors_per_task", "memory_budget_gb"):
            if rs[key] is not None:
                kpm[key] = rs[key]
        return {"model": dict(rs["model"], magnetization=self.magnetization(m)),
                "system": {"shape": list(rs["shape"]), "disorder": self.w_values[w], "realisations": self.chunks[c]},
                "kpm": kpm, "backend": self.config["backend"]}

    def pilot_job(self, w: str) -> dict:
        """The pilot of disorder ``w`` (``realspace.pilot``): realisation 0, the first magnetisation,
        ``pilot.trace`` vectors, on ``pilot.shape`` (default ``realspace.shape``), the sweep's N and bounds."""
        pilot = self.config["realspace"]["pilot"]
        cfg = self.moments_job(w, self.mag_labels[0], next(iter(self.chunks)), trace=pilot["trace"])
        cfg["kpm"].pop("vectors_per_task", None)
        cfg["system"]["realisations"] = [0]
        if pilot["shape"] is not None:
            cfg["system"]["shape"] = list(pilot["shape"])
        return cfg

    def plan_job(self, w: str) -> dict:
        """The production job of disorder ``w`` that ``gpukpm plan --pilot`` sizes (with the energies)."""
        cfg = self.moments_job(w, self.mag_labels[0], next(iter(self.chunks)))
        cfg["response"] = {"energies": dict(self.config["realspace"]["energies"]),
                           "kernel": self.config["response"]["kernel"]}
        return cfg

    def kspace_job(self, case: str, m: str) -> dict:
        """The run configuration of one k-space moments job."""
        cs, matched = self.cases[case], self.matched(case)
        ks = {"grid": list(self.config["realspace"]["shape"]) if matched else cs["grid"], "window": cs["window"]}
        if cs["chunk_size"] is not None:
            ks["chunk_size"] = cs["chunk_size"]
        return {"model": dict(cs["model"], magnetization=self.magnetization(m)), "kspace": ks,
                "kpm": {"num_moments": self.sweep_num_moments if matched else cs["num_moments"], "left": LEFT,
                        "right": RIGHT, "bounds": self.sweep_bounds if matched else cs["bounds"]},
                "backend": self.config["backend"]}

    def energies(self, result_set: str) -> dict:
        """``{start, stop, num}`` (eV) of a result set (``realspace/W1.5`` or ``kspace/<case>``)."""
        case = None if result_set.startswith("realspace/") else result_set.split("/", 1)[1]
        if case is None or self.matched(case):
            return self.config["realspace"]["energies"]
        return self.cases[case]["energies"]

    def result_sets(self) -> list[str]:
        """Every result set: ``realspace/W<W>`` per disorder strength, ``kspace/<case>`` per case."""
        return [f"realspace/W{w}" for w in self.w_values] + [f"kspace/{c}" for c in self.cases]

    def jobs(self):
        """``(name, run configuration)`` of every moments job the pipeline would run."""
        for w in self.w_values:
            for m in self.mag_labels:
                for c in self.chunks:
                    yield f"realspace W{w} m{m} c{c}", self.moments_job(w, m, c)
        for case in self.cases:
            for m in self.mag_labels:
                yield f"kspace {case} m{m}", self.kspace_job(case, m)

    def check_jobs(self) -> int:
        """Validate every job configuration (errors name the job and the key); returns the number of jobs."""
        count = 0
        for name, job in self.jobs():
            try:
                validate_config(job)
            except ConfigError as exc:
                self._fail(f"job {name}: {exc}")
            count += 1
        return count
