"""The ``gpukpm`` command: one subcommand per pipeline step.

    gpukpm dos CONFIG.yaml -o dos.h5 [--csv dos.csv]
    gpukpm moments CONFIG.yaml -o moments.h5            (MPI-aware: mpiexec -n K / srun)
    gpukpm kspace CONFIG.yaml -o moments.h5
    gpukpm response MOMENTS.h5 --energies=-1:1:201 --part total --kernel jackson -o response.h5 [--csv F]
    gpukpm aggregate FILES... -o ensemble.h5
    gpukpm torques RESPONSES... -o torques.h5 [--csv F]     (one response file per configuration)
    gpukpm torques --run CONFIG.yaml -o torques.h5 [--csv F] (all configurations of one system)
    gpukpm plan CONFIG.yaml [--target-rel-error 0.05] [--pilot F.h5] [--json F]  (memory, work, time, samples)
    gpukpm info                                          (backend and device)

Every configuration is validated before any work; errors name the key.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from gpukpm import __version__

__all__ = ["main", "parse_energies"]


def parse_energies(text: str) -> np.ndarray:
    """``start:stop:num`` or a comma-separated list of energies (eV)."""
    try:
        if ":" in text:
            start, stop, num = text.split(":")
            num = int(num)
            if num < 1:
                raise ValueError
            return np.linspace(float(start), float(stop), num)
        return np.array([float(v) for v in text.split(",") if v.strip()])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--energies must be START:STOP:NUM or a comma-separated list of eV values, got {text!r}"
        ) from None


def _cmd_info(args) -> int:
    from gpukpm.engine.backend import get_backend, gpu_status

    usable, reason = gpu_status()
    info = dict(get_backend(args.backend).device_info(), gpu_usable=usable, gpu_status=reason,
                gpukpm=__version__)
    print(json.dumps(info, indent=2))
    return 0


def _cmd_dos(args) -> int:
    from gpukpm.run import io
    from gpukpm.run.config import build_model, energy_grid, load_config
    from gpukpm.response.dos import dos
    from gpukpm.engine.realspace import dos_moments

    cfg = load_config(args.config)
    if cfg["system"]["shape"] is None:
        raise SystemExit("gpukpm dos: system.shape is required (real-space DOS)")
    if cfg["dos"]["energies"] is None:
        raise SystemExit("gpukpm dos: dos.energies is required")
    energies = energy_grid(cfg["dos"]["energies"], "dos.energies")
    model = build_model(cfg["model"])
    system = model.real_space(shape=tuple(cfg["system"]["shape"]), disorder=cfg["system"]["disorder"],
                              seed=cfg["kpm"]["seed"], realisation=cfg["system"]["realisations"][0])
    moments = dos_moments(system, num_moments=cfg["dos"]["num_moments"], trace=cfg["dos"]["trace"],
                          seed=cfg["kpm"]["seed"], backend=cfg["backend"], bounds=cfg["kpm"]["bounds"],
                          progress=not args.quiet)
    result = dos(moments, energies, kernel=cfg["dos"]["kernel"],
                 orbitals_per_cell=model.orbitals_per_cell)
    with io.atomic_h5(args.output, "dos") as fh:
        fh.create_dataset("energies", data=result.energies)
        fh.create_dataset("dos", data=result.values)
        fh.create_dataset("stderr", data=result.stderr)
        fh.create_dataset("mu_samples", data=moments.mu_samples)
        fh.attrs.update(kernel=result.kernel, num_moments=result.num_moments, eta=result.eta,
                        units=result.units, a=moments.a, b=moments.b,
                        config=io.to_json(cfg), parameters=io.to_json(moments.parameters),
                        provenance=io.to_json(moments.provenance))
    if args.csv:
        rows = np.column_stack([result.energies, result.values, result.stderr])
        io.atomic_text(args.csv, "energy_eV,dos_per_cell_eV,stderr\n"
                       + "\n".join(",".join(f"{v:.17g}" for v in r) for r in rows) + "\n")
    print(f"wrote {args.output}: DOS on {len(energies)} energies, N = {result.num_moments}, "
          f"eta = {result.eta:.4g} eV", file=sys.stderr)
    return 0


def _cmd_moments(args) -> int:
    from gpukpm.run.config import load_config
    from gpukpm.run.parallel import TaskFailed, run_moments

    cfg = load_config(args.config)
    if cfg["system"]["shape"] is None:
        raise SystemExit("gpukpm moments: system.shape is required (use 'gpukpm kspace' for k space)")
    try:
        run_moments(cfg, Path(args.output), resume=not args.no_resume, progress=not args.quiet)
    except TaskFailed as exc:
        print(f"gpukpm moments: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_kspace(args) -> int:
    from gpukpm.run import io
    from gpukpm.run.config import build_model, load_config
    from gpukpm.engine.kspace import kspace_moments

    cfg = load_config(args.config)
    if cfg["kspace"] is None:
        raise SystemExit("gpukpm kspace: the configuration needs a 'kspace' section (grid, window)")
    kpm = cfg["kpm"]
    ks = cfg["kspace"]
    moments = kspace_moments(build_model(cfg["model"]), grid=ks["grid"], left=tuple(kpm["left"]),
                             right=kpm["right"], num_moments=kpm["num_moments"], window=ks.get("window"),
                             chunk_size=ks.get("chunk_size"),
                             backend=cfg["backend"], bounds=kpm["bounds"], progress=not args.quiet)
    moments.provenance["config"] = cfg
    io.save_moments(args.output, moments)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _cmd_response(args) -> int:
    from gpukpm.run import io
    from gpukpm.response.kubo import kubo_response

    moments = io.load_moments(args.moments)
    resp = kubo_response(moments, args.energies, kernel=args.kernel, part=args.part,
                         temperature=args.temperature, num_moments=args.num_moments, eta=args.eta)
    io.save_response(args.output, resp, provenance=dict(moments=str(args.moments), **moments.provenance))
    if args.csv:
        io.atomic_text(args.csv, io.response_csv(resp))
    print(f"wrote {args.output}: {resp.part} response of {', '.join(resp.operators)} on "
          f"{len(resp.energies)} energies (N = {resp.num_moments}, eta = {resp.eta:.4g} eV)", file=sys.stderr)
    return 0


def _cmd_aggregate(args) -> int:
    from gpukpm.run.aggregate import aggregate

    aggregate([Path(f) for f in args.files], Path(args.output))
    return 0


def _save_torques(path, csv, energies, fit, mags, meta) -> None:
    from gpukpm.run import io
    from gpukpm.torque.decomposition import save_csv

    with io.atomic_h5(path, "torques") as fh:
        fh.create_dataset("energies", data=energies)
        fh.create_dataset("magnetizations", data=mags)
        for name, column in fit.as_arrays().items():
            fh.create_dataset(name, data=column)
        fh.create_dataset("covariance", data=fit.covariance)
        fh.attrs["num_samples"] = fit.num_samples
        fh.attrs["metadata"] = io.to_json(meta)
    if csv:
        save_csv(csv, energies, fit)


def _torque_samples(paths):
    """Per-sample S of the response files (one per magnetisation): (S, C, 3, E), realisations, exact, energies."""
    from gpukpm.run import io
    from gpukpm.engine.stats import EXACT_TRACES

    mags, samples, keys, energies, meta = [], [], None, None, {}
    for path in paths:
        resp = io.load_response(path)
        if tuple(resp.operators[:3]) != ("sx", "sy", "sz"):
            raise ValueError(f"{path}: response must have operators sx, sy, sz, got {resp.operators}")
        if energies is not None and not np.allclose(resp.energies, energies):
            raise ValueError(f"{path}: energies differ from the first response file")
        sample_keys = (resp.metadata.get("sample_realisations"), resp.metadata.get("sample_vectors"))
        if keys is not None and sample_keys != keys:
            raise ValueError(f"{path}: its samples (realisation, vector) differ from the first file's: the "
                             "configurations of one fit must share disorder and random vectors")
        m = resp.metadata.get("magnetization")
        if m is None:
            raise ValueError(f"{path}: no magnetisation recorded in the response or its moments")
        energies, keys = resp.energies, sample_keys
        meta = dict(part=resp.part, kernel=resp.kernel, num_moments=resp.num_moments, eta=resp.eta,
                    temperature=resp.temperature, trace=resp.metadata.get("trace"))
        mags.append(m)
        samples.append(resp.samples[:, :3])
    exact = meta["trace"] in EXACT_TRACES
    return (np.array(mags, dtype=float), np.stack(samples, axis=1), np.asarray(resp.sample_realisations), exact,
            energies, meta)


def _cmd_torques(args) -> int:
    from gpukpm.run import io
    from gpukpm.torque.decomposition import fit_samples

    if args.run:
        from gpukpm.run.config import load_config
        from gpukpm.run.configurations import run_configurations

        cfg = load_config(args.run)
        if args.part not in cfg["response"]["parts"]:
            raise ValueError(f"--part {args.part}: not among response.parts {cfg['response']['parts']} of {args.run}")
        res = run_configurations(cfg, progress=not args.quiet)
        part = args.part
        result = fit_samples(res.magnetizations, res.samples[part], res.sample_realisations, exact=res.exact)
        with io.atomic_h5(str(args.output) + ".responses.h5", "configuration_responses") as fh:
            fh.create_dataset("magnetizations", data=res.magnetizations)
            fh.create_dataset("energies", data=res.energies)
            for p in res.values:
                fh.create_dataset(f"{p}/values", data=res.values[p])
                fh.create_dataset(f"{p}/stderr", data=res.stderr[p])
                fh.create_dataset(f"{p}/samples", data=res.samples[p])
            fh.attrs["metadata"] = io.to_json(res.metadata)
        _save_torques(args.output, args.csv, res.energies, result, res.magnetizations,
                      dict(res.metadata, part=part, config=cfg))
        return 0
    if not args.responses:
        raise SystemExit("gpukpm torques: give response files (one per magnetisation) or --run CONFIG")
    mags, samples, realisations, exact, energies, meta = _torque_samples(args.responses)
    result = fit_samples(mags, samples, realisations, exact=exact)
    _save_torques(args.output, args.csv, energies, result, mags,
                  dict(meta, files=list(map(str, args.responses)), estimator="fit_samples"))
    return 0


def _cmd_plan(args) -> int:
    from gpukpm.run import planning

    return planning.command(args)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpukpm", description="KPM Kubo-Bastin spin densities and torques")
    p.add_argument("--version", action="version", version=f"gpukpm {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp, output=True):
        if output:
            sp.add_argument("-o", "--output", required=True, help="output HDF5 file")
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
        return sp

    sp = common(sub.add_parser("info", help="backend and device"), output=False)
    sp.add_argument("--backend", default=None, choices=("auto", "cpu", "gpu"))
    sp.set_defaults(func=_cmd_info)

    sp = common(sub.add_parser("dos", help="density of states (1D moments)"))
    sp.add_argument("config")
    sp.add_argument("--csv", help="also write a CSV table")
    sp.set_defaults(func=_cmd_dos)

    sp = common(sub.add_parser("moments", help="2D Kubo moments in real space (MPI-aware, resumable)"))
    sp.add_argument("config")
    sp.add_argument("--no-resume", action="store_true", help="ignore finished tasks and recompute")
    sp.set_defaults(func=_cmd_moments)

    sp = common(sub.add_parser("kspace", help="2D Kubo moments of a pristine model in k space"))
    sp.add_argument("config")
    sp.set_defaults(func=_cmd_kspace)

    sp = common(sub.add_parser("response", help="Kubo-Bastin reconstruction from a moments file"))
    sp.add_argument("moments")
    sp.add_argument("--energies", type=parse_energies, required=True, help="START:STOP:NUM or e1,e2,... (eV)")
    sp.add_argument("--part", default="total", choices=("total", "sea", "surface"))
    sp.add_argument("--kernel", default="jackson", choices=("jackson", "lorentz"))
    sp.add_argument("--temperature", type=float, default=0.0, help="K")
    sp.add_argument("--num-moments", type=int, default=None)
    sp.add_argument("--eta", type=float, default=None, help="broadening (eV): chooses N")
    sp.add_argument("--csv", help="also write a CSV table")
    sp.set_defaults(func=_cmd_response)

    sp = common(sub.add_parser("aggregate", help="merge moment files of several realisations/jobs"))
    sp.add_argument("files", nargs="+")
    sp.set_defaults(func=_cmd_aggregate)

    sp = common(sub.add_parser("torques", help="fit the torque components over magnetisations"))
    sp.add_argument("responses", nargs="*")
    sp.add_argument("--run", metavar="CONFIG", help="compute all configurations of one system first")
    sp.add_argument("--part", default="total", choices=("total", "sea", "surface"))
    sp.add_argument("--csv", help="also write a CSV table")
    sp.set_defaults(func=_cmd_torques)

    sp = sub.add_parser("plan", help="memory, SpMV count, GEMM flops and time of a moments job; samples for a target")
    sp.add_argument("config")
    sp.add_argument("--target-rel-error", type=float, default=0.05, help="relative stderr on the peak χ's")
    sp.add_argument("--pilot", help="moments or response file of a pilot run (per-vector variance)")
    sp.add_argument("--peak-window", type=parse_energies, default=None,
                    help="LO,HI (eV): where the pilot's peaks are searched (default: all energies)")
    sp.add_argument("--json", help="also write the plan as JSON")
    sp.add_argument("--devices", default="H100,H200,A100", help="nominal GPUs to predict (comma list, '' for none)")
    sp.add_argument("--calibration", help="CPU calibration cache (default ~/.cache/gpukpm/calibration.json)")
    sp.add_argument("--recalibrate", action="store_true", help="measure the CPU again")
    sp.set_defaults(func=_cmd_plan)
    return p


def main(argv=None) -> int:
    from gpukpm.engine.backend import BackendUnavailable

    args = _parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, BackendUnavailable) as exc:
        print(f"gpukpm {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
