"""χ_FL and χ_DL vs ε_F: k-space Kubo-Bastin (solid) against the semiclassical theory (dotted)."""
import math
import sys

sys.path.insert(0, snakemake.params.scripts)  # noqa: F821
import h5py  # noqa: E402
import numpy as np  # noqa: E402
from gpukpm import semiclassical  # noqa: E402

from wflib import read_fit, setup_matplotlib  # noqa: E402

sm = snakemake  # noqa: F821
case = sm.params.case
model = case["model"]
parts = list(sm.params.parts)
fits = {p: read_fit(f) for p, f in zip(parts, sm.input.torques)}
with h5py.File(sm.input.response) as fh:
    eta = float(fh.attrs["eta"])
main = "total" if "total" in fits else parts[0]
energies = fits[main]["energy"]

kind = case.get("semiclassical", "auto")
if kind == "auto":
    kind = "dirac" if model["name"] in ("GrapheneRashba", "Dirac") else "rashba_2deg"
sc, sc_label = None, None
try:
    tau = semiclassical.tau_from_broadening(eta)
    if kind == "dirac":
        if model["name"] == "GrapheneRashba":
            hbar_v = math.sqrt(3) / 2 * model.get("t", 2.7) * model.get("lattice_constant", 0.246)
            valleys = case.get("valleys", 2)
        else:
            hbar_v = model.get("hbar_v", math.sqrt(3) / 2 * 2.7 * 0.246)
            valleys = 1
        sc = semiclassical.dirac(energies, hbar_v, model.get("rashba", 0.0), model.get("exchange", 0.0),
                                 model.get("mass", 0.0), tau, valleys=valleys)
        sc_label = f"semiclassical (Dirac, {valleys} valley{'s' if valleys > 1 else ''})"
    elif kind == "rashba_2deg":
        sc = semiclassical.rashba_2deg(energies, model.get("mass", 1.0), model.get("rashba", 0.0),
                                       model.get("exchange", 0.0), tau)
        sc_label = "semiclassical (Rashba 2DEG)"
except Exception as exc:  # the comparison curve is optional; the figure says why it is missing
    sc_label = f"semiclassical unavailable: {exc}"
    sc = None

plt = setup_matplotlib()
fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), sharex=True)
for ax, key, name in zip(axes, ("chi_FL", "chi_DL"), (r"$\chi_{\rm FL}$", r"$\chi_{\rm DL}$")):
    for p, style in zip(parts, ("-", "--", "-.")):
        f = fits[p]
        ax.plot(f["energy"], f[key], style, lw=1.4 if p == main else 0.9, label=f"Kubo-Bastin {p}")
    if sc is not None:
        ax.plot(energies, sc[key], ":", color="k", lw=1.4, label=sc_label)
    ax.axhline(0, color="0.7", lw=0.5)
    ax.set_xlabel(r"$\varepsilon_F$ (eV)")
    ax.set_ylabel(name + r" ((V nm)$^{-1}$)")
axes[0].legend(fontsize=7, frameon=False)
title = case.get("label") or sm.wildcards.case
fig.suptitle(f"{title}  [{model['name']}: λ_R = {model.get('rashba', 0)}, J = {model.get('exchange', 0)}, "
             f"Δ = {model.get('mass', 0)}; η = {eta * 1e3:.3g} meV]" + ("" if sc is not None or sc_label is None
                                                                        else f"\n{sc_label}"), fontsize=8)
fig.tight_layout()
fig.savefig(sm.output.png)
fig.savefig(sm.output.pdf)
