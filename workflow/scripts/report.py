"""results/report.md: peak torques per W with their noise, the sweep's broadening, the pristine
real-space vs k-space agreement, k-space peaks, run metadata and the figures."""
import datetime
import json
import math
import os
import platform
import sys

sys.path.insert(0, snakemake.scriptdir)  # noqa: F821  (wflib)
import gpukpm  # noqa: E402
import numpy as np  # noqa: E402
import scipy.stats  # noqa: E402
import snakemake as _snakemake_pkg  # noqa: E402
from gpukpm import comparison, io, semiclassical  # noqa: E402
from gpukpm.run.config import build_model  # noqa: E402

from wflib import at_energy, dump, log_to_file, peak, read_fit, samples_needed  # noqa: E402

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
cfg = sm.params.config
out_dir = os.path.dirname(sm.output.md)
rs = cfg["realspace"]
# independent samples of a real-space set: realisations (each with its vectors), or the vectors of one
n_real = rs["realisations"] or 1  # the validated configuration (gpukpm.run.schema.PipelineConfig): every key present
n_ind = n_real if n_real >= 2 else (rs["trace"] or 1)


def rel(path):
    return os.path.relpath(path, out_dir)


def pm(x, e, digits=4):
    return f"{x:.{digits}g} ± {e:.2g}"


lines = [f"# {cfg['title']}", "",
         f"Generated {datetime.datetime.now().isoformat(timespec='seconds')} by the gpukpm Snakemake pipeline.", ""]
summary = {"realspace": None, "kspace": {}, "broadening": {}, "pristine_agreement": None}

# ------------------------------------------------------------------ broadening per set
responses = {s: io.load_response(f) for s, f in zip(sm.params.sets, sm.input.responses)}
for s, r in responses.items():
    summary["broadening"][s] = {"kernel": r.kernel, "num_moments": r.num_moments, "eta_centre": r.eta,
                                "a": r.metadata["a"], "b": r.metadata["b"]}
rs_sets = [s for s in responses if s.startswith("realspace/")]
if rs_sets:
    first = responses[rs_sets[0]]
    same = all(np.array_equal(responses[s].broadening(), first.broadening()) for s in rs_sets)
    lines += ["## Broadening", "",
              f"Real space: {first.kernel} kernel, N = {first.num_moments}, rescaling a = {first.metadata['a']:.6g} eV, "
              f"b = {first.metadata['b']:.6g} eV for every W, so η = {first.eta * 1e3:.4g} meV at the band centre "
              f"and η(ε) = η √(1 − ((ε − b)/a)²) "
              + ("**identical at every W** (one rescaling for the sweep)." if same else
                 "**NOT identical across W: the peak ratios compare different broadenings.**"), ""]
    summary["broadening"]["realspace_identical"] = same

# ------------------------------------------------------------------ disorder table
if "peaks" in sm.input.keys():
    with open(sm.input.peaks) as fh:
        peaks = json.load(fh)
    window = peaks["window"]
    ref = next(iter(peaks["peaks"].values()))["reference_W"]
    kind = "realisations (each with its vectors)" if n_real >= 2 else "random vectors"
    target = rs["target_rel_error"]
    lines += ["## Disorder (real space, total response)", "",
              f"Peak values: largest |χ| over ε_F ∈ {window or 'all energies'}, ± one standard error from the "
              f"scatter of per-sample torque fits over {n_ind} independent {kind} (`torque.fit_samples`: "
              f"correlations between magnetisations included); σ₁ is the standard deviation of one sample "
              f"(one random vector{' and realisation' if n_real >= 2 else ''}). Ratios relative to W = {ref:g} eV"
              + (" (pristine)." if ref == 0 else " (no W = 0 in the run: the smallest W is the reference)."),
              f"The last two columns give the {kind} needed for a {100 * target:g} % standard error on the "
              "peak, from the measured variance.", "",
              "| W (eV) | peak χ_FL ((V nm)⁻¹) | σ₁ | ε_F (eV) | peak χ_DL ((V nm)⁻¹) | σ₁ | ε_F (eV) "
              "| χ_FL / χ_FL(ref) | χ_DL / χ_DL(ref) | n for χ_FL | n for χ_DL |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for lab, p in peaks["peaks"].items():
        need = {k: samples_needed(p[k], target, n_ind) for k in ("chi_FL", "chi_DL")}
        p["samples_needed"] = need
        lines.append(f"| {p['W']:g} | {pm(p['chi_FL']['value'], p['chi_FL']['stderr'])} | {p['chi_FL']['std']:.2g} "
                     f"| {p['chi_FL']['energy']:.4g} "
                     f"| {pm(p['chi_DL']['value'], p['chi_DL']['stderr'])} | {p['chi_DL']['std']:.2g} "
                     f"| {p['chi_DL']['energy']:.4g} "
                     f"| {pm(p['ratio_FL']['value'], p['ratio_FL']['stderr'], 3)} "
                     f"| {pm(p['ratio_DL']['value'], p['ratio_DL']['stderr'], 3)} "
                     f"| {need['chi_FL']:g} | {need['chi_DL']:g} |")
    lines += ["", f"![disorder]({rel(sm.input.disorder)})", "",
              f"![peak ratios]({rel(os.path.join(out_dir, 'figures', 'peak_ratios.png'))})", "",
              "Figures: [disorder.pdf](figures/disorder.pdf), [peak_ratios.pdf](figures/peak_ratios.pdf)", ""]
    summary["realspace"] = peaks

# ------------------------------------------------------------------ pristine real space vs k space
for case in sm.params.matched:
    real_csv = next((f for f in sm.input.fits if "/realspace/W0/torques/total.csv" in f), None)
    k_csv = next((f for f in sm.input.fits if f"/kspace/{case}/torques/total.csv" in f), None)
    if real_csv is None or k_csv is None:
        lines += [f"## Pristine real space vs k space ({case})", "",
                  "Not compared: the sweep has no W = 0 or the parts have no 'total'.", ""]
        continue
    real, kfit = read_fit(real_csv), read_fit(k_csv)
    dof = n_ind - 1
    rows, agreement = [], {}
    for key in ("chi_FL", "chi_DL"):
        kp = peak(kfit, key, rs["peak_window"])
        rp = at_energy(real, key, kp["energy"])
        t = (rp["value"] - kp["value"]) / rp["stderr"] if rp["stderr"] > 0 else math.inf
        p_value = float(2 * scipy.stats.t.sf(abs(t), dof)) if dof >= 1 else math.nan
        agreement[key] = {"kspace": kp["value"], "realspace": rp["value"], "stderr": rp["stderr"],
                          "energy": kp["energy"], "difference_in_stderr": t, "dof": dof, "p_value": p_value}
        rows.append(f"| {key} | {kp['energy']:.4g} | {kp['value']:.4g} | {pm(rp['value'], rp['stderr'])} "
                    f"| {t:+.2f} | {p_value:.2f} |")
    ok = all(a["p_value"] > 0.05 for a in agreement.values())
    lines += [f"## Pristine real space vs k space ({case})", "",
              f"The same model on the {rs['shape'][0]}×{rs['shape'][1]} lattice: k space on the matching grid (exact "
              "trace) against the stochastic real-space run at W = 0, same rescaling, N and η(ε), at the k-space "
              f"peak of each χ (total part). (real − k)/stderr follows Student's t with {dof} degrees of freedom "
              "when the two agree; p is its two-sided probability.", "",
              "| χ | ε_F (eV) | k space | real space | (real − k)/stderr | p |", "|---|---|---|---|---|---|", *rows,
              "", ("Agreement within the stochastic error (p > 0.05 for both)." if ok else
                   "**Disagreement beyond the stochastic error (p ≤ 0.05).**"), ""]
    summary["pristine_agreement"] = dict(case=case, agree=ok, **agreement)

if sm.params.cases:
    part = sm.params.part
    lines += ["## Pristine k space", "", f"Largest |χ| of the {part} response.", "",
              "| case | peak χ_FL ((V nm)⁻¹) | ε_F (eV) | peak χ_DL ((V nm)⁻¹) | ε_F (eV) | rms residual of the fit |",
              "|---|---|---|---|---|---|"]
    for case, fit_csv in zip(sm.params.cases, sm.input.kfits):
        fit = read_fit(fit_csv)
        fl, dl = peak(fit, "chi_FL"), peak(fit, "chi_DL")
        summary["kspace"][case] = {"chi_FL": fl, "chi_DL": dl, "part": part}
        resid = float(np.max(fit["residual"])) if "residual" in fit else math.nan
        lines.append(f"| {case} | {fl['value']:.4g} | {fl['energy']:.4g} | {dl['value']:.4g} | {dl['energy']:.4g} "
                     f"| {resid:.2g} |")
    lines += ["", "k space is exact (no stochastic error); the residual is the misfit of the angular expansion.", ""]
    if "kz_sea" in sm.input.keys():
        rows, semigap_rows = [], []
        for case, sea_h5, surf_h5 in zip(sm.params.cases, sm.input.kz_sea, sm.input.kz_surface):
            c = cfg["kspace"]["cases"][case]
            if c.get("semiclassical", "auto") == "none":
                continue
            sea, surface = io.load_response(sea_h5), io.load_response(surf_h5)
            kubo = comparison.conventional_torques(sea, surface)
            model = build_model(dict(c["model"], magnetization=[0.0, 0.0, 1.0]))
            ref, label = comparison.boltzmann_reference(model, sea.energies, kubo["tau"], valleys=c.get("valleys"))
            # away from charge neutrality (Dirac) or above the pseudogap (2DEG): beyond the splitting at k = 0 + 3η
            scale, dirac_like = comparison.boltzmann_threshold(model, surface.eta)
            away = (np.abs(sea.energies) if dirac_like else sea.energies) > scale
            ratio = {k: kubo[k][away] / ref[k][away] for k in ("chi_FL", "chi_DL")}
            cell = {k: (f"{np.median(v):.4f} [{v.min():.3f}, {v.max():.3f}]" if v.size else "—")
                    for k, v in ratio.items()}
            summary["kspace"].setdefault(case, {})["kubo_over_boltzmann"] = {
                k: (float(np.median(v)) if v.size else None) for k, v in ratio.items()}
            rows.append(f"| {case} | {label} | {surface.kernel}, η = {surface.eta * 1e3:.3g} meV | "
                        f"{'|ε_F|' if dirac_like else 'ε_F'} > {scale:.3g} eV | {cell['chi_FL']} | {cell['chi_DL']} |")
            gap = comparison.dirac_semigap(model, surface.eta)
            semi = np.zeros(sea.energies.shape, bool) if gap is None else (
                (np.abs(sea.energies) > gap[0]) & (np.abs(sea.energies) < gap[1]))
            if semi.any():  # Dirac semi-gap: τ = (ħ/J_ex)|χ_FL/χ_DL| (paper, Fig. 2 right inset)
                j = abs(model.exchange)
                tau_ratio = semiclassical.HBAR / j * np.abs(kubo["chi_FL"][semi] / kubo["chi_DL"][semi]) / kubo["tau"][semi]
                summary["kspace"][case]["semigap_tau_ratio"] = float(np.median(tau_ratio))
                semigap_rows.append(f"| {case} | {semi.sum()} energies in ±({gap[0] - 3 * surface.eta:.3g}, "
                                    f"{gap[1] + 3 * surface.eta:.3g}) eV | {np.median(tau_ratio):.4f} "
                                    f"[{tau_ratio.min():.3f}, {tau_ratio.max():.3f}] |")
        if rows:
            lines += ["### Kubo-Bastin vs Boltzmann at m̂ = ẑ", "",
                      "χ_FL = surface S_y against the closed form at τ(ε) = ħ/2η_eff(ε) of the kernel used; χ_DL = "
                      "sea S_x (τ-free). Median [range] of Kubo/Boltzmann over the energies away from charge "
                      "neutrality:", "",
                      "| case | closed form | kernel | energies | χ_FL | χ_DL |", "|---|---|---|---|---|---|", *rows, ""]
        if semigap_rows:
            lines += ["Inside the Dirac semi-gap (|J_ex/2 − Δ| < |ε_F| < J_ex/2 + Δ, 3η from its edges): "
                      "(ħ/J_ex)|χ_FL/χ_DL| over the kernel's τ(ε), median [range] (1 when the paper's relation "
                      "holds):", "", "| case | energies | τ_Kubo / τ |", "|---|---|---|", *semigap_rows, ""]
    for case, png in zip(sm.params.cases, sm.input.kspace):
        lines += [f"![{case}]({rel(png)}) ([pdf]({rel(png)[:-4]}.pdf))", ""]

lines += ["## Run metadata", "",
          f"- gpukpm {gpukpm.__version__}, Snakemake {_snakemake_pkg.__version__}, Python {platform.python_version()}, "
          f"host {platform.node()}",
          f"- backend: {cfg['backend']}; kernel: {cfg['response']['kernel']}; temperature: "
          f"{cfg['response']['temperature']} K; parts: {', '.join(cfg['response']['parts'])}",
          f"- magnetisations: {len(sm.params.mags)} of order {cfg['torque']['order']} "
          f"(indices {', '.join(sm.params.mags)})"]
if rs["enabled"]:
    lines += [f"- real space: {rs['model']}, {rs['shape'][0]}×{rs['shape'][1]} cells, W = {rs['disorder']} eV, "
              f"{rs['realisations']} realisations in {len(sm.params.chunks)} chunk(s), {rs['trace']} random "
              f"vector(s) per realisation, N = {sm.params.sweep_num_moments}"
              + (f" (from η = {rs['eta']} eV)" if rs["eta"] else "") + f", energies {rs['energies']}"]
for case in sm.params.cases:
    c = cfg["kspace"]["cases"][case]
    if c.get("match_realspace"):
        lines.append(f"- k space {case}: {c['model']}, mirrors the real-space lattice (grid {rs['shape']}, "
                     f"N = {sm.params.sweep_num_moments}, the sweep's rescaling)")
    else:
        lines.append(f"- k space {case}: {c['model']}, grid {c['grid']}, window {c['window']}, "
                     f"N = {c['num_moments']}, energies {c['energies']}")
lines += ["", "Torque tables (CSV, per set and part): "
          + ", ".join(f"[{rel(f)}]({rel(f)})" for f in sm.input.fits), ""]

with open(sm.output.md, "w") as fh:
    fh.write("\n".join(lines))
dump(sm.output.summary, dict(summary, config=cfg))
