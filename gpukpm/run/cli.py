"""The ``gpukpm`` command: one subcommand per pipeline step.

    gpukpm dos CONFIG.yaml -o dos.h5 [--csv dos.csv]
    gpukpm moments CONFIG.yaml -o moments.h5            (MPI-aware: mpiexec -n K / srun)
    gpukpm kspace CONFIG.yaml -o moments.h5
    gpukpm response MOMENTS.h5 --energies=-1:1:201 --parts total,sea,surface -o 'resp_{part}.h5' [--csv F]
    gpukpm aggregate FILES... -o ensemble.h5
    gpukpm torques RESPONSES... -o torques.h5 [--csv F]       (one response file per magnetisation)
    gpukpm torques-run CONFIG.yaml --part P -o torques.h5 [--csv F]   (all magnetisations of one system)
    gpukpm plan CONFIG.yaml [--target-rel-error 0.05] [--pilot F.h5] [--json F]  (memory, work, time, samples)
    gpukpm info [--backend B]                                 (backend and device)

Exit codes (:mod:`gpukpm.errors`): 0 success; 1 runtime failure (backend unavailable, a task
failed); 2 usage, configuration or input-file error, reported in one line naming the file, key
or value and what is allowed.  Any other exception is an internal error and keeps its traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import numpy as np

from gpukpm import __version__
from gpukpm import envflags
from gpukpm.errors import InputFileError, RunFailure, UsageError

__all__ = ["main", "parse_energies", "parse_parts"]

_PARTS = ("total", "sea", "surface")


def parse_energies(text: str) -> np.ndarray:
    """``START:STOP:NUM`` (STOP ≥ START, NUM ≥ 1) or a comma-separated list of energies (eV)."""
    try:
        if ":" in text:
            start, stop, num = text.split(":")
            start, stop, num = float(start), float(stop), int(num)
            if num < 1 or not (np.isfinite(start) and np.isfinite(stop)) or stop < start:
                raise ValueError
            return np.linspace(start, stop, num)
        values = np.array([float(v) for v in text.split(",") if v.strip()])
        if values.size == 0 or not np.all(np.isfinite(values)):
            raise ValueError
        return values
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--energies must be START:STOP:NUM (finite eV, STOP >= START, NUM >= 1) or a comma-separated list "
            f"of eV values, got {text!r}") from None


def parse_parts(text: str) -> list[str]:
    """A comma-separated list of distinct Kubo-Bastin parts: ``total``, ``sea``, ``surface``."""
    parts = [p.strip() for p in text.split(",")]
    if not parts or any(p not in _PARTS for p in parts) or len(set(parts)) != len(parts):
        raise argparse.ArgumentTypeError(f"--parts must be distinct values among {', '.join(_PARTS)} separated by "
                                         f"commas, got {text!r}")
    return parts


@contextlib.contextmanager
def _refusals(what: str):
    """ValueErrors of the library call inside are refusals of the user's input (``what``): exit 2."""
    try:
        yield
    except UsageError:
        raise
    except ValueError as exc:
        raise UsageError(f"{what}: {exc}") from exc


def _read(path, kind: str):
    """A gpukpm HDF5 file of ``kind`` (``moments`` or ``response``); io.FileFormatError (an InputFileError,
    exit 2) names the file when it is missing, not HDF5, of another kind or damaged."""
    from gpukpm.run import io

    loader = {"moments": io.load_moments, "response": io.load_response}[kind]
    try:
        return loader(path)
    except (OSError, KeyError, TypeError) as exc:
        raise InputFileError(f"{path}: damaged gpukpm {kind} file ({type(exc).__name__}: {exc})") from None


def _config(path, require: str) -> dict:
    """The validated configuration of ``path``; ``require`` (``system.shape``, ``kspace``, ...) must be set."""
    from gpukpm.run.config import ConfigError, load_config

    cfg = load_config(path)
    section, _, key = require.partition(".")
    value = cfg[section][key] if key else cfg[section]
    if value is None:
        raise ConfigError(f"{path}: {require} is required by this command")
    return cfg


def _cmd_info(args) -> int:
    import os

    from gpukpm.engine.backend import get_backend, gpu_missing_library, gpu_status, nvidia_hardware

    usable, reason = gpu_status()
    gpu = dict(gpu_usable=usable, gpu_status=reason, gpu_missing_library=gpu_missing_library(),
               nvidia_hardware=nvidia_hardware(), cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"))
    try:
        backend = get_backend(args.backend)
    except Exception:  # 'gpu' forced on a machine without a usable GPU: say why, then fail
        print(json.dumps(dict(gpu, gpukpm=__version__), indent=2))
        raise
    info = dict(backend.device_info(), **gpu, gpukpm=__version__)
    print(json.dumps(info, indent=2))
    return 0


def _cmd_dos(args) -> int:
    from gpukpm.run import io
    from gpukpm.run.config import build_model, energy_grid
    from gpukpm.response.dos import dos
    from gpukpm.engine.realspace import dos_moments

    cfg = _config(args.config, "system.shape")
    if cfg["dos"]["energies"] is None:
        raise UsageError(f"{args.config}: dos.energies is required by this command")
    energies = energy_grid(cfg["dos"]["energies"], "dos.energies")
    model = build_model(cfg["model"])
    _check_memory(cfg, args.config, cfg["dos"]["num_moments"], operators=0)
    system = model.real_space(shape=tuple(cfg["system"]["shape"]), disorder=cfg["system"]["disorder"],
                              seed=cfg["kpm"]["seed"], realisation=cfg["system"]["realisations"][0])
    moments = dos_moments(system, num_moments=cfg["dos"]["num_moments"], trace=cfg["dos"]["trace"],
                          seed=cfg["kpm"]["seed"], backend=cfg["backend"], bounds=cfg["kpm"]["bounds"],
                          progress=not args.quiet)
    with _refusals("dos.energies"):
        result = dos(moments, energies, kernel=cfg["dos"]["kernel"], orbitals_per_cell=model.orbitals_per_cell)
    io.save_dos(args.output, result, moments, config=cfg)
    if args.csv:
        io.atomic_text(args.csv, io.dos_csv(result))
    print(f"wrote {args.output}: DOS on {len(energies)} energies, N = {result.num_moments}, "
          f"eta = {result.eta:.4g} eV", file=sys.stderr)
    return 0


def _check_memory(cfg: dict, source: str, num_moments: int | None, operators: int) -> None:
    """Refuse a real-space run of ``source`` whose least memory exceeds this machine's (gpukpm.run.resources).

    With ``kpm.eta``, N follows from the spectrum at run time; the moments being a small term, N = 2 is taken.
    """
    from gpukpm.run.config import ConfigError, build_model
    from gpukpm.run.resources import check_real_space

    try:
        check_real_space(build_model(cfg["model"]), cfg, num_moments or 2, operators=operators)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _cmd_moments(args) -> int:
    from gpukpm.run.parallel import run_moments

    cfg = _config(args.config, "system.shape")
    _check_memory(cfg, args.config, cfg["kpm"]["num_moments"], operators=len(cfg["kpm"]["left"]) + 1)
    run_moments(cfg, Path(args.output), resume=not args.no_resume, progress=not args.quiet)
    return 0


def _cmd_kspace(args) -> int:
    from gpukpm.run import io
    from gpukpm.run.config import build_model
    from gpukpm.engine.kspace import kspace_moments

    cfg = _config(args.config, "kspace")
    kpm, ks = cfg["kpm"], cfg["kspace"]
    with _refusals(f"{args.config}: kspace"):
        moments = kspace_moments(build_model(cfg["model"]), grid=ks["grid"], left=tuple(kpm["left"]),
                                 right=kpm["right"], num_moments=kpm["num_moments"], window=ks["window"],
                                 chunk_size=ks["chunk_size"], backend=cfg["backend"], bounds=kpm["bounds"],
                                 progress=not args.quiet)
    moments.provenance["config"] = cfg
    io.save_moments(args.output, moments)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _part_path(template: str | None, part: str, several: bool, option: str) -> str | None:
    """The file of one part: ``template`` with ``{part}`` replaced (required when several parts are written)."""
    if template is None:
        return None
    if "{part}" not in template:
        if several:
            raise UsageError(f"{option} {template!r}: must contain {{part}} when several parts are written, "
                             f"e.g. 'resp_{{part}}.h5'")
        return template
    return template.replace("{part}", part)


def _cmd_response(args) -> int:
    from gpukpm.run import io
    from gpukpm.response.kubo import kubo_response

    parts = args.parts or [args.part or "total"]
    several = len(parts) > 1
    outputs = {p: (_part_path(args.output, p, several, "-o"), _part_path(args.csv, p, several, "--csv"))
               for p in parts}
    moments = _read(args.moments, "moments")
    for part, (output, csv) in outputs.items():
        with _refusals(f"{args.moments}"):
            resp = kubo_response(moments, args.energies, kernel=args.kernel, part=part,
                                 temperature=args.temperature, num_moments=args.num_moments, eta=args.eta)
        io.save_response(output, resp, provenance=dict(moments=str(args.moments), **moments.provenance))
        if csv:
            io.atomic_text(csv, io.response_csv(resp))
        print(f"wrote {output}: {resp.part} response of {', '.join(resp.operators)} on "
              f"{len(resp.energies)} energies (N = {resp.num_moments}, eta = {resp.eta:.4g} eV)", file=sys.stderr)
    return 0


def _cmd_aggregate(args) -> int:
    from gpukpm.run.aggregate import aggregate

    for f in args.files:
        _read(f, "moments")
    aggregate([Path(f) for f in args.files], Path(args.output))
    return 0


def _save_torques(path, csv, energies, fit, mags, meta) -> None:
    from gpukpm.run import io

    io.save_torques(path, energies, fit, mags, meta)
    if csv:
        io.save_torques_csv(csv, energies, fit)


def _torque_samples(paths):
    """Per-sample S of the response files (one per magnetisation): (S, C, 3, E), realisations, exact, energies."""
    from gpukpm.engine.stats import EXACT_TRACES

    mags, samples, keys, energies, meta, first = [], [], None, None, {}, paths[0]
    for path in paths:
        resp = _read(path, "response")
        if tuple(resp.operators[:3]) != ("sx", "sy", "sz"):
            raise InputFileError(f"{path}: response must have operators sx, sy, sz, got {resp.operators}")
        if energies is not None and not (resp.energies.shape == energies.shape
                                         and np.allclose(resp.energies, energies)):
            raise InputFileError(f"{path}: energies differ from those of {first}")
        if meta and resp.part != meta["part"]:
            raise InputFileError(f"{path}: part {resp.part!r} differs from {meta['part']!r} of {first}: one fit "
                                 "takes one part")
        sample_keys = (resp.metadata.get("sample_realisations"), resp.metadata.get("sample_vectors"))
        if keys is not None and sample_keys != keys:
            raise InputFileError(f"{path}: its samples (realisation, vector) differ from those of {first}: the "
                                 "configurations of one fit must share disorder and random vectors")
        m = resp.metadata.get("magnetization")
        if m is None:
            raise InputFileError(f"{path}: no magnetisation recorded in the response or its moments")
        energies, keys = resp.energies, sample_keys
        meta = dict(part=resp.part, kernel=resp.kernel, num_moments=resp.num_moments, eta=resp.eta,
                    temperature=resp.temperature, trace=resp.metadata.get("trace"))
        mags.append(m)
        samples.append(resp.samples[:, :3])
    exact = meta["trace"] in EXACT_TRACES
    return (np.array(mags, dtype=float), np.stack(samples, axis=1), np.asarray(resp.sample_realisations), exact,
            energies, meta)


def _cmd_torques(args) -> int:
    from gpukpm.torque.decomposition import fit_samples

    mags, samples, realisations, exact, energies, meta = _torque_samples(args.responses)
    with _refusals("torque fit of " + ", ".join(args.responses)):
        result = fit_samples(mags, samples, realisations, exact=exact)
    _save_torques(args.output, args.csv, energies, result, mags,
                  dict(meta, files=list(map(str, args.responses)), estimator="fit_samples"))
    return 0


def _cmd_plan(args) -> int:
    from gpukpm.run import planning

    return planning.command(args)


def _cmd_torques_run(args) -> int:
    from gpukpm.run import io
    from gpukpm.run.configurations import run_configurations
    from gpukpm.torque.decomposition import fit_samples

    cfg = _config(args.config, "response.energies")
    if args.part not in cfg["response"]["parts"]:
        raise UsageError(f"--part {args.part}: not among response.parts {cfg['response']['parts']} of {args.config}")
    if cfg["system"]["shape"] is not None:
        _check_memory(cfg, args.config, cfg["kpm"]["num_moments"], operators=len(cfg["kpm"]["left"]) + 1)
    res = run_configurations(cfg, progress=not args.quiet)
    result = fit_samples(res.magnetizations, res.samples[args.part], res.sample_realisations, exact=res.exact)
    io.save_configuration_responses(str(args.output) + ".responses.h5", res)
    _save_torques(args.output, args.csv, res.energies, result, res.magnetizations,
                  dict(res.metadata, part=args.part, config=cfg))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2), like every other error of the command."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gpukpm", description="KPM Kubo-Bastin spin densities and torques")
    p.add_argument("--version", action="version", version=f"gpukpm {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(sp):
        sp.add_argument("-o", "--output", required=True, help="output HDF5 file")
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
        return sp

    sp = sub.add_parser("info", help="backend and device")
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
    which = sp.add_mutually_exclusive_group()
    which.add_argument("--part", default=None, choices=_PARTS, help="one part (default total)")
    which.add_argument("--parts", type=parse_parts, default=None,
                       help="several parts, e.g. total,sea,surface: -o (and --csv) must contain {part}")
    sp.add_argument("--kernel", default="jackson", choices=("jackson", "lorentz"))
    sp.add_argument("--temperature", type=float, default=0.0, help="K")
    sp.add_argument("--num-moments", type=int, default=None)
    sp.add_argument("--eta", type=float, default=None, help="broadening (eV): chooses N")
    sp.add_argument("--csv", help="also write a CSV table ({part} replaced as in -o)")
    sp.set_defaults(func=_cmd_response)

    sp = common(sub.add_parser("aggregate", help="merge moment files of several realisations/jobs"))
    sp.add_argument("files", nargs="+")
    sp.set_defaults(func=_cmd_aggregate)

    sp = common(sub.add_parser("torques", help="fit the torque components over the magnetisations of "
                                               "response files (one part)"))
    sp.add_argument("responses", nargs="+", help="one response file per magnetisation, all of the same part")
    sp.add_argument("--csv", help="also write a CSV table")
    sp.set_defaults(func=_cmd_torques)

    sp = common(sub.add_parser("torques-run", help="compute every magnetisation of one system, then fit"))
    sp.add_argument("config")
    sp.add_argument("--part", required=True, choices=_PARTS, help="the part fitted (one of response.parts)")
    sp.add_argument("--csv", help="also write a CSV table")
    sp.set_defaults(func=_cmd_torques_run)

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


def _report(command: str, exc: BaseException) -> None:
    message = " ".join(str(exc).split())  # one line
    print(f"gpukpm {command}: error: {message}", file=sys.stderr)


def main(argv=None) -> int:
    """Run one subcommand; returns the exit code (0, 1 runtime failure, 2 usage/configuration/input error)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse: 2 after a usage message, 0 after --help / --version
        return exc.code if isinstance(exc.code, int) else 2
    try:
        for name in envflags.FLAGS:  # a bad GPUKPM_* value is a usage error before any work
            envflags.get(name)
        return int(args.func(args) or 0)
    except UsageError as exc:
        _report(args.command, exc)
        return 2
    except RunFailure as exc:
        _report(args.command, exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
