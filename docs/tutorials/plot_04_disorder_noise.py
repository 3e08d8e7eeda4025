"""
4. Disorder and noise: a W sweep, the per-vector variance, variance-reduced estimators
==========================================================================================

Anderson disorder of strength W, a small sweep at a common broadening, how noisy one random
vector is, and how a diluted estimator cuts that noise — the numbers from which a production run
(many realisations of a 1024² lattice) is sized.
"""

# %%
# One rescaling for the whole sweep
# ---------------------------------
# The broadening η(ε) of a KPM kernel depends on N and on the rescaling ``H̃ = (H − b)/a``. To
# compare disorder strengths at one η(ε), every W must use the same ``(a, b)`` and N: give
# ``kubo_moments`` the same ``bounds`` (spectral bounds in eV) for every W. Here the graphene band
# (±3t), widened by the couplings and the largest W/2, fits in ±10 eV. (The pipeline derives a
# rigorous bound for the sweep by itself: ``realspace.bounds: null``.)
import matplotlib.pyplot as plt
import numpy as np

from gpukpm import kpm, models

model = models.GrapheneRashba(t=2.7, rashba=0.3, exchange=0.4, mass=0.0, magnetization=(0, 0, 1))
SHAPE, N, VECTORS, BOUNDS = (64, 64), 128, 6, (-10.0, 10.0)
W_VALUES = (0.0, 1.0, 2.0)  # eV
energies = np.linspace(-2.0, 2.0, 161)

surface, plain = {}, {}
for W in W_VALUES:
    system = model.real_space(shape=SHAPE, disorder=W, seed=1, realisation=0)
    mom = kpm.kubo_moments(system, left=("sx", "sy"), right="jx", num_moments=N, trace=VECTORS, seed=0,
                           bounds=BOUNDS, progress=False)
    surface[W] = kpm.kubo_response(mom, energies, part="surface")
    plain[W] = mom
    print(f"W = {W} eV: a = {mom.a:.3f} eV, η(band centre) = {surface[W].eta * 1e3:.0f} meV")

# %%
# The field-like response (Fermi-surface S_y at m̂ = ẑ) with its standard error, and the noise of a
# single random vector, ``Response.per_sample_std`` — the σ₁ from which the number of vectors
# for a target error follows, ``R = (σ₁/target)²``. The standard error of R vectors on a lattice
# of D orbitals falls as ``σ₁/√R`` and, for these self-averaging traces, σ₁ itself as ``1/√D``.
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
for W, r in surface.items():
    line, = axes[0].plot(energies, r["sy"], label=f"W = {W:g} eV")
    axes[0].fill_between(energies, r["sy"] - 2 * r.error("sy"), r["sy"] + 2 * r.error("sy"),
                         color=line.get_color(), alpha=0.25, lw=0)
    axes[1].plot(energies, r.per_sample_std[r.operators.index("sy")], color=line.get_color())
axes[0].set_title("surface S_y / E  ((V·nm)⁻¹), ±2σ")
axes[1].set_title("σ₁: one vector's standard deviation")
for ax in axes:
    ax.set_xlabel("ε_F (eV)")
axes[0].legend()
fig.tight_layout()

# %%
# Variance-reduced estimators
# ---------------------------
# A random-phase vector estimates ``Tr[X]`` with a variance set by the off-diagonal elements of
# X. The spin operators couple the two spin components of one site; diluting each vector by
# spin (``estimator="spin_diluted"``: the vector is split into its spin-up and spin-down parts,
# each propagated, the sample being the sum — unbiased) removes most of that variance for S_x
# and S_y, at twice the cost per vector. Other dilutions: ``"spin_m_diluted"`` (spin along m̂),
# ``"sublattice_diluted"``, ``"spin_sublattice_diluted"``; the estimator is recorded in
# ``Moments.provenance["estimator"]`` (config key ``kpm.estimator``). Compare with the plain run
# at W = 1 eV above (same system, seed and rescaling):
system = model.real_space(shape=SHAPE, disorder=1.0, seed=1, realisation=0)
diluted = kpm.kubo_moments(system, left=("sx", "sy"), right="jx", num_moments=N, trace=VECTORS, seed=0,
                           bounds=BOUNDS, estimator="spin_diluted", progress=False)
print("estimators:", plain[1.0].provenance["estimator"], "and", diluted.provenance["estimator"])
std = {name: kpm.kubo_response(m, energies, part="total").per_sample_std
       for name, m in (("plain", plain[1.0]), ("spin_diluted", diluted))}
inside = np.abs(energies) < 1.5
for k, name in enumerate(("sx", "sy")):
    ratio = np.median((std["plain"][k] / std["spin_diluted"][k])[inside] ** 2)
    print(f"{name}: variance per vector, plain / spin_diluted = {ratio:.0f} (at 2× the cost per vector)")

# %%
# On this small lattice with exaggerated couplings the gain is modest; on the paper's lattices
# the variance ratio for S_x, S_y is 10²–10³ (``benchmarks/README.md``,
# "Variance"), i.e. the same error bar with 50–500 times fewer vectors of twice the cost.
#
# Planning a production run: ``gpukpm plan``
# ------------------------------------------
# ``gpukpm plan`` (not run by this guide: its CPU calibration takes a few seconds) reads a
# ``gpukpm moments`` configuration and prints, before anything runs, the memory, SpMV count, GEMM
# flops and predicted time of every job on this CPU (from a measured calibration) and on nominal
# H100, H200 and A100 figures (a roofline, stated as nominal). With ``--pilot`` (the moments file of
# a short run like the one above) it scales the one-vector σ₁ at the largest χ by ``√(D_pilot/D)``
# and gives the samples ``R = (σ₁/(target·|χ|))²`` (realisations × vectors) for the target
# relative error, and the device-hours:
#
# .. code-block:: bash
#
#    gpukpm moments pilot.yaml -o pilot.h5                   # a small lattice, a few vectors
#    gpukpm plan production.yaml --pilot pilot.h5 --target-rel-error 0.05 --json plan.json
#
# The pipeline does the same per W with ``realspace.pilot: {trace: 8}`` and sizes every moments
# job's ``kpm.trace`` from it.
