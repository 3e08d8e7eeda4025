"""χ_FL and χ_DL vs ε_F in k space: torque fits, the conventional torques at m̂ = ẑ, and Boltzmann theory.

The Boltzmann curves use the relaxation time of the kernel actually used, τ(ε) = ħ/(2η_eff(ε))
(gpukpm.response.kernels.relaxation_time), for the Fermi-surface χ_FL; χ_DL (Fermi sea) does not depend on τ.
The comparison is made at m̂ = ẑ (gpukpm.torque.comparison): the fits over all m̂ also carry the angular
harmonics the first-order theory leaves out.
"""
import sys

sys.path.insert(0, snakemake.scriptdir)  # noqa: F821  (wflib)
from gpukpm import comparison, io  # noqa: E402
from gpukpm.run.config import build_model  # noqa: E402

from wflib import log_to_file, read_fit, setup_matplotlib  # noqa: E402

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
case = sm.params.case
model_cfg = case["model"]
parts = list(sm.params.parts)
fits = {p: read_fit(f) for p, f in zip(parts, sm.input.torques)}
main = "total" if "total" in fits else parts[0]

conventional = reference = None
label = "semiclassical: not compared (semiclassical: none)"
if sm.input.get("sea") and sm.input.get("surface"):
    sea, surface = io.load_response(sm.input.sea), io.load_response(sm.input.surface)
    conventional = comparison.conventional_torques(sea, surface)
    energies = sea.energies
    if case.get("semiclassical", "auto") != "none":
        model = build_model(dict(model_cfg, magnetization=[0.0, 0.0, 1.0]))
        reference, label = comparison.boltzmann_reference(model, energies, conventional["tau"],
                                                          valleys=case.get("valleys"))
    eta, kernel = surface.eta, surface.kernel
else:
    label = "semiclassical: not compared (m = z is not among the configurations)"
    eta = kernel = None

plt = setup_matplotlib()
fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.4), sharex=True)
for ax, key, name, part in zip(axes, ("chi_FL", "chi_DL"), (r"$\chi_{\rm FL}$", r"$\chi_{\rm DL}$"),
                               ("surface", "sea")):
    for p, style in zip(parts, ("-", "--", "-.")):
        f = fits[p]
        ax.plot(f["energy"], f[key], style, lw=1.4 if p == main else 0.9, label=f"Kubo-Bastin fit, {p}")
    if conventional is not None:
        ax.plot(energies, conventional[key], "o", ms=2.5, mfc="none", label=f"Kubo-Bastin {part}, m = z")
    if reference is not None:
        ax.plot(energies, reference[key], ":", color="k", lw=1.4, label=label)
    ax.axhline(0, color="0.7", lw=0.5)
    ax.set_xlabel(r"$\varepsilon_F$ (eV)")
    ax.set_ylabel(name + r" ((V nm)$^{-1}$)")
axes[0].legend(fontsize=6, frameon=False)
title = case.get("label") or sm.wildcards.case
broadening = "" if eta is None else (
    f"; {kernel}, η = {eta * 1e3:.3g} meV at the band centre; χ_FL compared at τ(ε) = ħ/2η_eff(ε) of the "
    f"{kernel} kernel, χ_DL (sea) τ-free")
mass = (f"m = {model_cfg.get('mass', 1.0)} m_e" if model_cfg["name"].startswith("Rashba2DEG")
        else f"Δ = {model_cfg.get('mass', 0)}")
fig.suptitle(f"{title}  [{model_cfg['name']}: λ_R = {model_cfg.get('rashba', 0)}, J = {model_cfg.get('exchange', 0)}, "
             f"{mass}{broadening}]\n{label}", fontsize=7)
fig.tight_layout()
fig.savefig(sm.output.png)
fig.savefig(sm.output.pdf)
