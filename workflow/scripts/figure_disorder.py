"""Pristine vs disordered χ_FL, χ_DL (Fig. 3a) and peak ratios vs W with error bars (Fig. 3b)."""
import sys

sys.path.insert(0, snakemake.scriptdir)  # noqa: F821  (wflib)
import numpy as np  # noqa: E402

from wflib import dump, log_to_file, peaks_by_w, read_fit, setup_matplotlib  # noqa: E402

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
labels = list(sm.params.W)
fits = {lab: (float(sm.params.W[lab]), read_fit(f)) for lab, f in zip(labels, sm.input.torques)}
window = sm.params.window
peaks = peaks_by_w(fits, window)
dump(sm.output.peaks, {"window": window, "part": "total", "peaks": peaks})

plt = setup_matplotlib()
fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), sharex=True)
order = sorted(fits, key=lambda k: fits[k][0])
cmap = plt.get_cmap("viridis")
for n, lab in enumerate(order):
    w, f = fits[lab]
    for ax, key in zip(axes, ("chi_FL", "chi_DL")):
        color = cmap(n / max(1, len(order) - 1))
        ls = "-" if n == 0 else "--"
        ax.plot(f["energy"], f[key], ls, color=color, lw=1.2, label=f"W = {w:g} eV")
        ax.fill_between(f["energy"], f[key] - f[f"{key}_stderr"], f[key] + f[f"{key}_stderr"],
                        color=color, alpha=0.2, lw=0)
for ax, name in zip(axes, (r"$\chi_{\rm FL}$", r"$\chi_{\rm DL}$")):
    ax.axhline(0, color="0.7", lw=0.5)
    ax.set_xlabel(r"$\varepsilon_F$ (eV)")
    ax.set_ylabel(name + r" ((V nm)$^{-1}$)")
    if window is not None:
        ax.axvspan(*window, color="0.9", zorder=0)
axes[0].legend(fontsize=7, frameon=False)
fig.suptitle("real space, total response (bands: ±1 standard error over realisations)", fontsize=8)
fig.tight_layout()
fig.savefig(sm.output.png)
fig.savefig(sm.output.pdf)

fig, ax = plt.subplots(figsize=(4, 3.2))
ws = np.array([peaks[lab]["W"] for lab in order])
for key, marker, name in (("ratio_FL", "o", r"$\chi_{\rm FL}$"), ("ratio_DL", "s", r"$\chi_{\rm DL}$")):
    ax.errorbar(ws, [peaks[lab][key]["value"] for lab in order], yerr=[peaks[lab][key]["stderr"] for lab in order],
                marker=marker, capsize=3, label=name)
ax.axhline(1, color="0.7", lw=0.5)
ax.set_xlabel("W (eV)")
ax.set_ylabel(f"peak / peak(W = {ws.min():g} eV)")
ax.legend(frameon=False)
fig.tight_layout()
fig.savefig(sm.output.ratios_png)
fig.savefig(sm.output.ratios_pdf)
