"""
5. Your own model and operators
===================================

The engine needs little from a system: a sparse Hamiltonian, its size and area, and the
operators as sparse matrices. This tutorial builds a model that gpukpm does not ship — graphene
with a *Néel* (staggered) exchange field, the honeycomb antiferromagnet — checks it against a
built-in model in the limit where they coincide, and computes a response of a user operator,
the staggered spin density ``s_y^A − s_y^B`` that drives the Néel order.
"""

# %%
# What ``kubo_moments`` accepts
# -----------------------------
# :func:`gpukpm.kpm.kubo_moments` takes any object with
#
# * ``hamiltonian`` — a SciPy sparse matrix (D × D, eV);
# * ``num_orbitals`` — D; ``area`` — the supercell area Ω (nm²), which turns traces per orbital
#   into densities per nm²;
# * optionally ``operator(name)`` (for operators given by name, ``"sx"`` … ``"jy"``) and
#   ``parameters`` (a JSON-able dict, recorded in the moments' metadata);
#
# and left/right operators either by name or as sparse matrices of shape (D, D). Conventions
# (:doc:`/conventions`): spins are Pauli matrices; the current is the ħ-free ``ĵ_x = −i[H, X]``
# in eV·nm, i.e. ``(ĵ_x)_ij = −i H_ij (x_j − x_i)`` with the minimum-image bond vector — a term
# that is diagonal in position (on-site energies, exchange, mass) does not change it.
import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse as sp

from gpukpm import kpm, models

T, RASHBA, EXCHANGE, SHAPE = 2.7, 0.3, 0.4, (40, 40)
PAULI = {"x": np.array([[0, 1], [1, 0]]), "y": np.array([[0, -1j], [1j, 0]]), "z": np.diag([1.0, -1.0])}

# %%
# Building the model
# ------------------
# Start from the non-magnetic part (hopping and Rashba) of the built-in honeycomb, then add the
# exchange ourselves, site by site. Orbitals are ordered by site, spin ↑↓ interleaved; sites by
# unit cell, sublattice A then B (so ``sublattice = site % 2``).
base = models.GrapheneRashba(t=T, rashba=RASHBA, exchange=0.0, mass=0.0, magnetization=(0, 0, 1))
base_system = base.real_space(shape=SHAPE)
num_sites = base_system.num_orbitals // 2
sublattice_sign = np.where(np.arange(num_sites) % 2 == 0, 1.0, -1.0)  # +1 on A, −1 on B


def exchange_term(m_hat, staggered: bool):
    """−(J/2) m̂·s on every site, with the sign of the sublattice when ``staggered`` (Néel order)."""
    m_dot_s = sum(m * PAULI[k] for m, k in zip(m_hat, "xyz"))
    signs = sublattice_sign if staggered else np.ones(num_sites)
    return sp.kron(sp.diags(signs), -0.5 * EXCHANGE * m_dot_s, format="csr")


@dataclasses.dataclass
class CustomSystem:
    """The minimal system: a Hamiltonian, D and Ω (plus parameters for the record)."""

    hamiltonian: sp.csr_matrix
    area: float
    parameters: dict

    @property
    def num_orbitals(self) -> int:
        return self.hamiltonian.shape[0]


def make_system(m_hat, staggered: bool) -> CustomSystem:
    H = (base_system.hamiltonian + exchange_term(m_hat, staggered)).tocsr()
    return CustomSystem(H, base_system.area, {"model": "NeelGraphene" if staggered else "ferro", "shape": SHAPE})


# %%
# A check before any physics: with a uniform exchange the hand-built H is the built-in
# ferromagnetic ``GrapheneRashba``, to rounding.
ferro = make_system((0, 0, 1), staggered=False)
builtin = models.GrapheneRashba(t=T, rashba=RASHBA, exchange=EXCHANGE, mass=0.0,
                                magnetization=(0, 0, 1)).real_space(shape=SHAPE)
print("max |H_custom − H_builtin| =", abs(ferro.hamiltonian - builtin.hamiltonian).max())

# %%
# User operators
# --------------
# The uniform spin density ``s_y`` and the staggered one ``s_y^A − s_y^B`` as sparse matrices;
# the current is the built-in one (the exchange is on-site, so ``−i[H, X]`` is unchanged).
s_y = sp.kron(sp.identity(num_sites), PAULI["y"], format="csr")
s_y_staggered = sp.kron(sp.diags(sublattice_sign), PAULI["y"], format="csr")
j_x = base_system.operator("jx")

neel = make_system((0, 0, 1), staggered=True)
energies = np.linspace(-2.0, 2.0, 161)
mom = {}
for name, system in (("ferromagnet", ferro), ("Néel antiferromagnet", neel)):
    mom[name] = kpm.kubo_moments(system, left=(s_y, s_y_staggered), right=j_x, num_moments=128, trace=4,
                                 seed=0, progress=False)
    print(name, "left operators recorded as", mom[name].left)

# %%
# Responses: custom operators are reported in order, named ``"custom"``, so index them by
# position. The uniform and staggered field-like responses (Fermi-surface part at m̂ = ẑ):
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=False)
for ax, index, title in ((axes[0], 0, "uniform S_y / E"), (axes[1], 1, "staggered (S_y^A − S_y^B) / E")):
    for name, m in mom.items():
        r = kpm.kubo_response(m, energies, part="surface")
        line, = ax.plot(energies, r.values[index], label=name)
        ax.fill_between(energies, r.values[index] - 2 * r.stderr[index], r.values[index] + 2 * r.stderr[index],
                        color=line.get_color(), alpha=0.25, lw=0)
    ax.set_title(title + "  ((V·nm)⁻¹), ±2σ")
    ax.set_xlabel("ε_F (eV)")
    ax.axhline(0, color="0.6", lw=0.5)
axes[0].legend()
fig.tight_layout()

# %%
# Beyond on-site terms
# --------------------
# A model with new hoppings needs its own current: for every bond ``i → j`` with vector ``d_ij``
# (minimum image) and hopping block ``H_ij``, ``(ĵ_x)_ij = −i H_ij d_ij,x``. For k space, a
# model class needs ``bloch(k, xp)``, ``bloch_derivative(k, xp)`` (``∂H/∂k``, for the currents),
# ``bloch_operator(name, k, xp)``, ``orbitals_per_cell`` and ``to_dict()``, plus
# ``spectral_bound(k)`` for ``select="bound"`` — the built-in classes in :mod:`gpukpm.models` are
# the templates. Custom matrices always take the general (CSR) route of the engine; the built-in
# lattices also run as cell stencils, which is faster (:doc:`/guide/performance`).
