"""results/report.md: peak torques per W, ratios to pristine, k-space peaks, run metadata, figures."""
import datetime
import json
import os
import platform
import sys

sys.path.insert(0, snakemake.params.scripts)  # noqa: F821
import gpukpm  # noqa: E402
import snakemake as _snakemake_pkg  # noqa: E402

from wflib import dump, peak, read_fit  # noqa: E402

sm = snakemake  # noqa: F821
cfg = sm.params.config
out_dir = os.path.dirname(sm.output.md)


def rel(path):
    return os.path.relpath(path, out_dir)


def pm(x, e, digits=4):
    return f"{x:.{digits}g} ± {e:.2g}"


lines = [f"# {cfg['title']}", "",
         f"Generated {datetime.datetime.now().isoformat(timespec='seconds')} by the gpukpm Snakemake pipeline.", ""]
summary = {"realspace": None, "kspace": {}}

if "peaks" in sm.input.keys():
    with open(sm.input.peaks) as fh:
        peaks = json.load(fh)
    rs = cfg["realspace"]
    window = peaks["window"]
    ref = next(iter(peaks["peaks"].values()))["reference_W"]
    lines += ["## Disorder (real space, total response)", "",
              f"Peak values: largest |χ| over ε_F ∈ {window or 'all energies'}; errors are one standard error "
              f"over {rs['realisations']} realisations (torque-fit propagated); ratios relative to W = {ref:g} eV"
              + (" (pristine)." if ref == 0 else " (no W = 0 in the run: the smallest W is the reference)."), "",
              "| W (eV) | peak χ_FL ((V nm)⁻¹) | ε_F (eV) | peak χ_DL ((V nm)⁻¹) | ε_F (eV) "
              "| χ_FL / χ_FL(ref) | χ_DL / χ_DL(ref) |",
              "|---|---|---|---|---|---|---|"]
    for lab, p in peaks["peaks"].items():
        lines.append(f"| {p['W']:g} | {pm(p['chi_FL']['value'], p['chi_FL']['stderr'])} | {p['chi_FL']['energy']:.4g} "
                     f"| {pm(p['chi_DL']['value'], p['chi_DL']['stderr'])} | {p['chi_DL']['energy']:.4g} "
                     f"| {pm(p['ratio_FL']['value'], p['ratio_FL']['stderr'], 3)} "
                     f"| {pm(p['ratio_DL']['value'], p['ratio_DL']['stderr'], 3)} |")
    lines += ["", f"![disorder]({rel(sm.input.disorder)})", "",
              f"![peak ratios]({rel(os.path.join(out_dir, 'figures', 'peak_ratios.png'))})", "",
              f"Figures: [disorder.pdf](figures/disorder.pdf), [peak_ratios.pdf](figures/peak_ratios.pdf)", ""]
    summary["realspace"] = peaks

if sm.params.cases:
    part = sm.params.part
    lines += ["## Pristine k space", "",f"Largest |χ| of the {part} response.", "", "| case | peak χ_FL ((V nm)⁻¹) | ε_F (eV) | peak χ_DL ((V nm)⁻¹) | ε_F (eV) |",
              "|---|---|---|---|---|"]
    part = sm.params.part
    for case, fit_csv in zip(sm.params.cases, sm.input.kfits):
        fit = read_fit(fit_csv)
        fl, dl = peak(fit, "chi_FL"), peak(fit, "chi_DL")
        summary["kspace"][case] = {"chi_FL": fl, "chi_DL": dl, "part": part}
        lines.append(f"| {case} | {fl['value']:.4g} | {fl['energy']:.4g} | {dl['value']:.4g} | {dl['energy']:.4g} |")
    lines.append("")
    for case, png in zip(sm.params.cases, sm.input.kspace):
        lines += [f"![{case}]({rel(png)}) ([pdf]({rel(png)[:-4]}.pdf))", ""]

rs = cfg["realspace"]
lines += ["## Run metadata", "",
          f"- gpukpm {gpukpm.__version__}, Snakemake {_snakemake_pkg.__version__}, Python {platform.python_version()}, "
          f"host {platform.node()}",
          f"- backend: {cfg['backend']}; kernel: {cfg['response']['kernel']}; temperature: "
          f"{cfg['response']['temperature']} K; parts: {', '.join(cfg['response']['parts'])}",
          f"- magnetisations: {len(sm.params.mags)} of order {cfg['torque']['order']} "
          f"(indices {', '.join(sm.params.mags)})"]
if rs.get("enabled", True) and "model" in rs:
    lines += [f"- real space: {rs['model']}, {rs['shape'][0]}×{rs['shape'][1]} cells, W = {rs['disorder']} eV, "
              f"{rs['realisations']} realisations in {len(sm.params.chunks)} chunk(s), {rs['trace']} random "
              f"vector(s) per realisation, N = {rs['num_moments']}, energies {rs['energies']}"]
for case in sm.params.cases:
    c = cfg["kspace"]["cases"][case]
    lines.append(f"- k space {case}: {c['model']}, grid {c['grid']}, window {c['window']}, N = {c['num_moments']}, "
                 f"energies {c['energies']}")
lines += ["", "Torque tables (CSV, per set and part): "
          + ", ".join(f"[{rel(f)}]({rel(f)})" for f in sm.input.fits), ""]

with open(sm.output.md, "w") as fh:
    fh.write("\n".join(lines))
dump(sm.output.summary, dict(summary, config=cfg))
