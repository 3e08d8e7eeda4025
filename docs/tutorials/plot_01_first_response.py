"""
1. A first spin density: Rashba-exchange graphene
=====================================================

The current-induced spin density of a small Rashba-exchange graphene sample, from the model to
a curve with error bars: Chebyshev moments with random vectors, the Kubo-Bastin reconstruction,
its Fermi-sea and Fermi-surface parts, and the statistics that tell how many vectors a target
error needs. Runs in seconds on a laptop.

Physics: electrons on the honeycomb lattice with nearest-neighbour hopping ``t``, Rashba
spin-orbit coupling ``λ_R``, an exchange field ``J`` along the magnetisation ``m̂`` and a
staggered mass ``Δ`` (:doc:`/conventions`). An electric field ``E ∥ x̂`` drives a current, and
the spin density ``S = χ E`` it induces is what exerts the spin-orbit torque on ``m̂``.
"""

# %%
# The model and a real-space system
# ---------------------------------
# Every model is a validated dataclass (units: eV, nm). ``real_space`` builds the Hamiltonian of
# an ``L1 × L2`` supercell with periodic boundaries (a "flake" without edges), optionally with
# Anderson disorder of strength ``W`` (uniform on-site energies in ``[−W/2, W/2]``). The couplings
# here are exaggerated (λ_R = 0.3 eV, J = 0.4 eV, as in the demo pipeline) so that a 64 × 64
# lattice resolves the torques at the broadening η ≈ 0.25 eV that N = 128 moments give; the paper's
# regime is λ_R ≪ J ≪ t. The lattice must resolve η: the k spacing at the Dirac point,
# ``ħv·2π/(La)`` = 0.23 eV for L = 64, stays below it (a 16 × 16 lattice would show finite-size
# oscillations instead of torques; the demo pipeline takes 96 × 96 and η = 0.2 eV).
import matplotlib.pyplot as plt
import numpy as np

from gpukpm import kpm, models

model = models.GrapheneRashba(t=2.7, rashba=0.3, exchange=0.4, mass=0.0, magnetization=(0, 0, 1))
system = model.real_space(shape=(64, 64), disorder=0.0, seed=1, realisation=0)
print(model)
print(f"D = {system.num_orbitals} orbitals, area Ω = {system.area:.2f} nm², H is {type(system.hamiltonian).__name__}")

# %%
# The system carries its operators as sparse matrices: on-site spins ``sx, sy, sz`` (Pauli
# matrices, eigenvalues ±1) and currents ``jx, jy`` (``−i[H, X]`` from bond vectors, eV·nm).
jx = system.operator("jx")
print("jx:", jx.shape, f"{jx.nnz} non-zeros")

# %%
# Chebyshev moments
# -----------------
# :func:`gpukpm.kpm.kubo_moments` computes the 2D moments
# ``μ_nm = Tr[A T_n(H̃) B T_m(H̃)]/D`` of each left operator A against the right operator B (here
# the three spins against ``jx``), with ``H̃ = (H − b)/a`` rescaled into (−1, 1). ``trace=8``
# estimates the trace with 8 random-phase vectors (``trace="exact"`` uses all D basis vectors: fine
# for a few thousand orbitals). The moments are stored raw, one sample per vector, so every
# quantity linear in them comes with an error bar.
mom = kpm.kubo_moments(system, left=("sx", "sy", "sz"), right="jx", num_moments=128, trace=8, seed=0,
                       progress=False)
print("mu:", mom.mu.shape, " samples:", mom.mu_samples.shape, f" a = {mom.a:.3f} eV, b = {mom.b:.3f} eV")

# %%
# Kubo-Bastin: total, Fermi sea, Fermi surface
# --------------------------------------------
# :func:`gpukpm.kpm.kubo_response` turns the moments into ``S_A(ε_F)/E`` in (V·nm)⁻¹ with a kernel
# (Jackson by default) at temperature T (0 K by default). ``part`` picks the whole Kubo-Bastin
# formula, or its Bonbien–Manchon split into the Fermi-sea part (all occupied states; at ``m̂ = ẑ``
# the damping-like response) and the Fermi-surface part (states at ε_F; the field-like response,
# proportional to the relaxation time). ``total = sea + surface`` holds sample by sample, to the accuracy of the quadrature.
energies = np.linspace(-2.0, 2.0, 161)
resp = {part: kpm.kubo_response(mom, energies, kernel="jackson", part=part)
        for part in ("total", "sea", "surface")}
gap = np.max(np.abs(resp["total"].values - resp["sea"].values - resp["surface"].values))
print(f"η at the band centre: {resp['total'].eta * 1e3:.0f} meV;  max |total − sea − surface| = {gap:.1e}")

# %%
# Each :class:`~gpukpm.kpm.Response` holds ``values`` and ``stderr`` shaped (operators, energies),
# indexed by operator name. The standard error comes from the scatter of the 8 vectors.
fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharex=True)
for ax, name in zip(axes, ("sx", "sy")):
    for part, colour in (("total", "k"), ("sea", "C0"), ("surface", "C3")):
        r = resp[part]
        ax.plot(energies, r[name], color=colour, label=part)
        ax.fill_between(energies, r[name] - 2 * r.error(name), r[name] + 2 * r.error(name),
                        color=colour, alpha=0.25, lw=0)
    ax.axhline(0, color="0.6", lw=0.5)
    ax.set_xlabel("ε_F (eV)")
    ax.set_title(f"{name[0].upper()}_{name[1]} / E  ((V·nm)⁻¹)")
axes[0].legend()
fig.suptitle("64 × 64 Rashba-exchange graphene, m̂ = ẑ, N = 128, 8 vectors (bands: ±2σ)")
fig.tight_layout()

# %%
# At ``m̂ = ẑ`` the damping-like response sits in ``S_x``'s Fermi-sea part and the field-like one
# in ``S_y``'s Fermi-surface part (:doc:`/conventions`, "Sign facts").
#
# How many vectors for a target error?
# ------------------------------------
# ``per_sample_std`` is the standard deviation of one random vector; the standard error of R
# vectors is ``σ₁/√R`` (divided by √D for a self-averaging quantity as the lattice grows). The
# number of vectors for a relative error ``ε`` on the peak follows:
r = resp["surface"]
i = np.argmax(np.abs(r["sy"]))
sigma_1 = r.per_sample_std[r.operators.index("sy")][i]
target = 0.05
print(f"peak surface S_y at ε_F = {energies[i]:.2f} eV: {r['sy'][i]:.4f} ± {r.error('sy')[i]:.4f} (V·nm)⁻¹")
print(f"one vector: σ₁ = {sigma_1:.4f};  vectors for {target:.0%}: {int(np.ceil((sigma_1 / (target * abs(r['sy'][i])))**2))}")

# %%
# Next: the same pipeline in k space for a pristine system, compared with Boltzmann theory
# (:doc:`plot_02_fig4_2deg`), and disorder (:doc:`plot_04_disorder_noise`).
