r"""Kubo-Bastin reconstruction from 2D Chebyshev moments (CONVENTIONS units and signs).

With ``μ_nm = Tr[A T_n(H̃) B T_m(H̃)]/D``, ``B = ĵ' = −e i[H, X]`` (eV·nm),
``x = (ε − b)/a``, ``θ = arccos x`` and kernel factors ``g_n``, the
rescaled δ function and the derivative of the retarded Green function are

    δ(x − H̃)   = Σ_m w_m(x) T_m(H̃),    w_m  = 2 g_m cos(mθ) / ((1+δ_m0) π sin θ)
    ∂_x G̃⁺(x)  = Σ_n c_n(x) T_n(H̃),    c_n  = −2i g_n e^{−inθ}(cos θ + i n sin θ) / ((1+δ_n0) sin³θ)

and the spin density of the field-driven system (per unit area, per unit
field, in (V·nm)⁻¹ with e = 1) is, at T = 0,

    total:    S(ε_F) = −(2D/Ωa²) ∫_{x_low}^{x_F} dx Im Σ_nm c_n μ_nm w_m
    sea:      same with c_n → Re c_n  (Ḡ = (G⁺ + G⁻)/2)
    surface:  S(ε_F) = (πD/Ωa²) Re Σ_nm w_n(x_F) μ_nm w_m(x_F)

(Bonbien–Manchon split; total = sea + surface).  Every product of the
series is a trigonometric polynomial in θ whose coefficients are sums of
``u_n μ'_nm`` (``u_n`` = 1 or n, ``μ' = g_n g_m μ/((1+δ_n0)(1+δ_m0))``)
along the diagonals n − m = k and anti-diagonals n + m = k.  These 4(2N−1)
sums are taken once per sample by one sparse product; the integrand on a
fine θ grid is then a small dense product, so N = 1867 with thousands of
energies takes seconds.  The Fermi-sea integral runs from
``x_low = x(E_min) − 5η̃`` (never from x = −1, where the 1/sin³θ factors
turn truncation error into garbage) on a uniform θ grid with spacing
π/(oversample·N) and the requested Fermi energies inserted, by cumulative
Simpson.

At T > 0 every part is the thermal average of its T = 0 value,
``S_T(μ) = ∫ dε (−∂f/∂ε) S_0(ε)`` (an integration by parts of f), by the
trapezoid rule on the fine grid; a k_B T below the grid spacing a·π/(oversample·N)
(≈ η/oversample) is treated as T = 0.

σ_xx (A = B = ĵ'_x): ``σ = S_surface/ħ = 2π S_surface · e²/h`` (the sea part
vanishes).  Standard errors come from the per-sample responses (the map is
linear).  With Hermitian A and B the moments are first projected on their
Hermitian part ``(μ + μᴴ)/2``, whose expectation is the same, which makes the
sea part of A = B vanish sample by sample.
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.integrate
import scipy.sparse

from gpukpm.response import kernels as _kernels
from gpukpm.engine.moments import Moments
from gpukpm.engine.stats import EXACT_TRACES, mean_and_stderr, per_sample_std

__all__ = ["Response", "kubo_response", "conductivity", "window_usable_range", "PARTS", "BOLTZMANN_EV"]

PARTS = ("total", "sea", "surface")
BOLTZMANN_EV = 8.617333262e-5  # eV/K
DEFAULT_OVERSAMPLE = 32


@dataclass
class Response:
    """Responses of the left operators on an energy grid.

    ``values`` and ``stderr`` are shaped (n_left, n_energies); ``samples`` keeps
    the per-sample values (n_samples, n_left, n_energies).  Indexing by an
    operator name returns its row (``resp["sx"]``); NumPy sees ``values``.
    """

    energies: np.ndarray
    values: np.ndarray
    stderr: np.ndarray
    samples: np.ndarray
    operators: tuple
    right: str | None
    part: str
    kernel: str
    num_moments: int
    eta: float  # broadening at the band centre (eV)
    temperature: float
    units: str = "1/(V nm)"
    metadata: dict = field(default_factory=dict)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.values, dtype=dtype)

    @property
    def shape(self):
        return self.values.shape

    def __len__(self):
        return len(self.values)

    def __getitem__(self, item):
        if isinstance(item, str):
            return self.values[self.operators.index(item)]
        return self.values[item]

    def error(self, name: str) -> np.ndarray:
        return self.stderr[self.operators.index(name)]

    def broadening(self) -> np.ndarray:
        """η(ε) (eV) at each energy (energy dependent for both kernels, see kernels)."""
        return _kernels.broadening_at(self.kernel, self.energies, self.metadata["a"], self.metadata["b"],
                                      self.num_moments, self.metadata.get("lorentz_lambda", 4.0))

    def relaxation_time(self) -> np.ndarray:
        """τ(ε) = ħ/(2η_eff(ε)) (s) of this response's kernel (:func:`gpukpm.response.kernels.relaxation_time`).

        The τ to give a Boltzmann formula compared with this Fermi-surface part.
        """
        return _kernels.relaxation_time(self.kernel, self.energies, self.metadata["a"], self.metadata["b"],
                                        self.num_moments, self.metadata.get("lorentz_lambda", 4.0))

    @property
    def per_sample_std(self) -> np.ndarray:
        """Standard deviation of one sample (one random vector), (n_left, n_energies).

        ``std(samples, ddof=1)``: the noise of a single vector, from which the
        number of vectors for a target error follows (``(std/target)²``); NaN
        with fewer than two samples, 0 for the exact trace (one exact sample).
        """
        return per_sample_std(self.samples, exact=self.metadata.get("trace") in EXACT_TRACES)

    @property
    def sample_realisations(self) -> np.ndarray:
        """Disorder realisation of each sample (n_samples,)."""
        ids = self.metadata.get("sample_realisations")
        return np.zeros(len(self.samples), dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)


# ----------------------------------------------------------------------------- coefficient sums
@functools.lru_cache(maxsize=4)
def _diagonal_sum_matrix(N: int) -> scipy.sparse.csr_matrix:
    """Sparse (4(2N−1), N²) map from flattened μ'_nm to the four coefficient sets.

    Rows [0, 2N−1): d_k[1] = Σ_{n−m=k} μ', k = −(N−1)…N−1;  rows [2N−1, 4N−2): d_k[n];
    rows [4N−2, 6N−3): s_k[1] = Σ_{n+m=k} μ', k = 0…2N−2;   rows [6N−3, 8N−4): s_k[n].
    """
    n, m = np.divmod(np.arange(N * N), N)
    K = 2 * N - 1
    rows = np.concatenate([n - m + N - 1, n - m + N - 1 + K, n + m + 2 * K, n + m + 3 * K])
    cols = np.tile(np.arange(N * N), 4)
    vals = np.concatenate([np.ones(N * N), n, np.ones(N * N), n]).astype(float)
    return scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(4 * K, N * N))


def _trig_sums(coeffs: np.ndarray, theta: np.ndarray, N: int, chunk: int = 2048):
    """E_{±∓}[u](θ) = Σ_k d_k[u] e^{±ikθ},  E_{±±}[u](θ) = Σ_k s_k[u] e^{±ikθ}.

    ``coeffs`` (8N−4, M) from :func:`_diagonal_sum_matrix`; returns a dict of
    (len(theta), M) arrays keyed ("+-", u), ("-+", u), ("++", u), ("--", u), u ∈ {1, "n"}.
    """
    K = 2 * N - 1
    d = coeffs[: 2 * K].reshape(2, K, -1)
    s = coeffs[2 * K:].reshape(2, K, -1)
    kd = np.arange(-(N - 1), N)
    ks = np.arange(0, 2 * N - 1)
    out = {key: np.empty((len(theta), coeffs.shape[1]), dtype=complex)
           for key in [(p, u) for p in ("+-", "-+", "++", "--") for u in (1, "n")]}
    for i0 in range(0, len(theta), chunk):
        th = theta[i0:i0 + chunk, None]
        phase_d = np.exp(1j * kd * th)
        phase_s = np.exp(1j * ks * th)
        for iu, u in enumerate((1, "n")):
            out[("+-", u)][i0:i0 + chunk] = phase_d @ d[iu]
            out[("-+", u)][i0:i0 + chunk] = phase_d.conj() @ d[iu]
            out[("++", u)][i0:i0 + chunk] = phase_s @ s[iu]
            out[("--", u)][i0:i0 + chunk] = phase_s.conj() @ s[iu]
    return out


def _integrands(E: dict, theta: np.ndarray):
    """Σ c_n μ w_m (total), Σ Re(c_n) μ w_m (sea) and Re Σ w_n μ w_m (surface) on the θ grid."""
    c, s = np.cos(theta)[:, None], np.sin(theta)[:, None]
    minus = 0.5 * (E[("-+", 1)] + E[("--", 1)]), 0.5 * (E[("-+", "n")] + E[("--", "n")])
    plus = 0.5 * (E[("++", 1)] + E[("+-", 1)]), 0.5 * (E[("++", "n")] + E[("+-", "n")])
    total = (-4j / np.pi) / s**4 * (c * minus[0] + 1j * s * minus[1])
    conj_part = (4j / np.pi) / s**4 * (c * plus[0] - 1j * s * plus[1])
    sea = 0.5 * (total + conj_part)
    surf = (4.0 / np.pi**2) / s**2 * 0.25 * (E[("++", 1)] + E[("+-", 1)] + E[("-+", 1)] + E[("--", 1)])
    return total.imag, sea.imag, surf.real


# ----------------------------------------------------------------------------- public API
def _check_energies(energies, moments: Moments) -> np.ndarray:
    energies = np.atleast_1d(np.asarray(energies, dtype=float))
    if energies.ndim != 1 or energies.size == 0 or not np.all(np.isfinite(energies)):
        raise ValueError("energies must be a non-empty 1D array of finite values (eV)")
    x = (energies - moments.b) / moments.a
    limit = 1.0 - moments.epsilon / 2
    bad = np.abs(x) > limit
    if bad.any():
        lo, hi = moments.b - limit * moments.a, moments.b + limit * moments.a
        raise ValueError(
            f"energies {energies[bad][:5].tolist()} eV lie outside the expansion interval "
            f"[{lo:.6g}, {hi:.6g}] eV of these moments (spectrum estimate "
            f"[{moments.emin:.6g}, {moments.emax:.6g}] eV)"
        )
    return energies


def window_usable_range(moments: Moments, eta: float) -> tuple[float, float, float] | None:
    """Fermi energies a k-space window can serve: ``(lo + margin, hi − margin, margin)`` (eV), or None.

    A window keeps the states inside it and drops their spin partners outside,
    which removes the interband terms of the states within one band splitting
    of an edge (and the kernel spreads each state over a few η).  The margin is
    the largest splitting of spin partners at one k of the kept states
    (``provenance["max_band_splitting"]``, :func:`gpukpm.engine.kspace.band_splitting`)
    plus 3η, at each edge that drops a state of a kept k point
    (``provenance["window_cuts"]``; an edge beyond the whole spectrum cuts
    nothing).  None for moments without a window (real space, full k space).
    """
    window = moments.parameters.get("window") if moments.trace == "kspace" else None
    if window is None:
        return None
    splitting = moments.provenance.get("max_band_splitting")
    cuts = moments.provenance.get("window_cuts")
    if splitting is None or cuts is None:
        raise ValueError("these k-space moments have a window but no recorded max_band_splitting/window_cuts "
                         "(written by an older gpukpm): recompute them so that the window's usable energy range "
                         "is known")
    margin = float(splitting) + 3.0 * eta
    return (float(window[0]) + (margin if cuts[0] else 0.0), float(window[1]) - (margin if cuts[1] else 0.0),
            margin)


def _check_usable_energies(energies: np.ndarray, moments: Moments, eta: float) -> None:
    """Refuse Fermi energies a k-space window or a continuum grid's edge cannot serve (±3η inside)."""
    window = window_usable_range(moments, eta)
    if window is not None:
        lo, hi, margin = window
        _refuse_outside(energies, lo, hi,
                        f"within {margin:.4g} eV of the k-space window {list(moments.parameters['window'])} eV "
                        f"(margin = largest spin splitting {margin - 3 * eta:.4g} eV + 3η, η = {eta:.3g} eV): "
                        "states there lose their spin partners outside the window", "widen the window")
    edge = moments.provenance.get("grid_edge_range") if moments.trace == "kspace" else None
    if edge is not None:  # gpukpm.engine.kspace.grid_edge_range
        lo = -np.inf if edge[0] is None else edge[0] + 3.0 * eta
        hi = np.inf if edge[1] is None else edge[1] - 3.0 * eta
        _refuse_outside(energies, lo, hi,
                        f"outside the range whose Fermi contours stay on the grid: the bands on the k grid's edge "
                        f"(k_max) span to {edge} eV, less 3η (η = {eta:.3g} eV)", "enlarge k_max")


def _refuse_outside(energies: np.ndarray, lo: float, hi: float, reason: str, remedy: str) -> None:
    bad = (energies < lo) | (energies > hi)
    if bad.any():
        allowed = f"[{lo:.6g}, {hi:.6g}] eV" if lo < hi else "none"
        raise ValueError(f"energies {energies[bad][:5].tolist()} eV lie {reason}. Usable Fermi energies: {allowed}; "
                         f"{remedy} or choose energies inside that range")


def _resolve_num_moments(moments: Moments, kernel: str, num_moments, eta, lam) -> int:
    if num_moments is not None and eta is not None:
        raise ValueError("give num_moments or eta, not both")
    if eta is not None:
        N = _kernels.num_moments_for(kernel, eta, moments.a, lam)
        if N > moments.num_moments:
            best = _kernels.broadening(kernel, moments.a, moments.num_moments, lam)
            raise ValueError(
                f"eta = {eta:.6g} eV needs N = {N} moments with the {kernel} kernel, the file has "
                f"{moments.num_moments} (finest eta {best:.6g} eV)"
            )
        return N
    if num_moments is None:
        return moments.num_moments
    if not 2 <= int(num_moments) <= moments.num_moments:
        raise ValueError(f"num_moments must be in [2, {moments.num_moments}], got {num_moments!r}")
    return int(num_moments)


def kubo_response(moments: Moments, energies, kernel: str = "jackson", part: str = "total",
                  temperature: float = 0.0, *, num_moments: int | None = None, eta: float | None = None,
                  lorentz_lambda: float = _kernels.DEFAULT_LORENTZ_LAMBDA,
                  oversample: int = DEFAULT_OVERSAMPLE) -> Response:
    """Kubo-Bastin response S_A(ε_F) of every left operator of ``moments``.

    Parameters
    ----------
    moments : 2D moments (real space or k space).
    energies : Fermi energies (eV) inside the expansion interval.
    kernel : "jackson" or "lorentz" (``lorentz_lambda`` λ).
    part : "total" (Eq. 3), "sea" or "surface" (Bonbien–Manchon).
    temperature : T ≥ 0 in kelvin (Fermi-Dirac).
    num_moments / eta : use the first N moments, or the N whose band-centre
        broadening is η (eV); default all moments.  The broadening used is
        reported in ``Response.eta``.
    oversample : θ-grid points per π/N for the Fermi-sea quadrature.
    """
    if not isinstance(moments, Moments) or moments.ndim != 2:
        raise ValueError("moments must be 2D Kubo moments (from kubo_moments or kspace_moments)")
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    if kernel not in _kernels.KERNELS:
        raise ValueError(f"kernel must be one of {_kernels.KERNELS}, got {kernel!r}")
    if not (np.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature must be >= 0 K, got {temperature!r}")
    if int(oversample) != oversample or oversample < 2:
        raise ValueError(f"oversample must be an integer >= 2, got {oversample!r}")
    energies = _check_energies(energies, moments)
    N = _resolve_num_moments(moments, kernel, num_moments, eta, lorentz_lambda)
    a, b = moments.a, moments.b
    eta_centre = _kernels.broadening(kernel, a, N, lorentz_lambda)
    _check_usable_energies(energies, moments, eta_centre)
    states = moments.provenance.get("num_kept_states", moments.num_orbitals)  # k space: window states
    spacing = (moments.emax - moments.emin) / max(float(states), 1.0)
    if eta_centre < spacing:
        warnings.warn(
            f"broadening eta = {eta_centre:.3g} eV (N = {N}, {kernel}) is below the mean level spacing "
            f"{spacing:.3g} eV of this system ({float(states):g} states over "
            f"{moments.emax - moments.emin:.3g} eV): the response resolves single levels",
            stacklevel=2,
        )

    if kernel == "lorentz" and part != "surface":
        _warn_edge_tails(moments, N, lorentz_lambda)
    mu = moments.mu_samples[:, :, :N, :N]
    if moments.hermitian:
        mu = 0.5 * (mu + np.conj(np.swapaxes(mu, 2, 3)))
    g = _kernels.kernel_factors(kernel, N, lorentz_lambda) / np.where(np.arange(N) == 0, 2.0, 1.0)
    S, nA = mu.shape[:2]
    flat = (mu * g[None, None, :, None] * g[None, None, None, :]).reshape(S * nA, N * N)
    coeffs = np.asarray(_diagonal_sum_matrix(N) @ flat.T)  # (8N−4, S·nA)

    density = moments.orbital_density
    pref_int = -2.0 * density / a**2
    pref_surf = np.pi * density / a**2
    x_f = (energies - b) / a

    kT = BOLTZMANN_EV * temperature
    if kT < a * np.pi / (oversample * N):
        # kT below the quadrature spacing (≈ η/oversample): the Sommerfeld correction
        # (π²/6)(kT)² S'' is then below ≈ 2e-3 of S, and T is treated as 0
        kT = 0.0
    if part == "surface" and kT == 0:
        E = _trig_sums(coeffs, np.arccos(x_f), N)
        values = pref_surf * _integrands(E, np.arccos(x_f))[2]  # (NE, S·nA)
    else:
        values = _integrated(coeffs, moments, N, x_f, kT, part, pref_int, pref_surf, eta_centre / a,
                             int(oversample))
    values = values.T.reshape(S, nA, len(energies))
    mean, err = mean_and_stderr(values, moments.sample_realisations)
    return Response(
        energies=energies, values=mean, stderr=err, samples=values, operators=tuple(moments.left),
        right=moments.right, part=part, kernel=kernel, num_moments=N, eta=eta_centre,
        temperature=float(temperature),
        metadata=dict(a=a, b=b, lorentz_lambda=lorentz_lambda, oversample=int(oversample),
                      trace=moments.trace, num_samples=moments.num_samples,
                      sample_realisations=np.asarray(moments.sample_realisations).tolist(),
                      sample_vectors=np.asarray(moments.sample_vectors).tolist(),
                      magnetization=moments.parameters.get("magnetization")),
    )


def _warn_edge_tails(moments: Moments, N: int, lam: float) -> None:
    """Warn when the Lorentzian tails of the lowest states reach below the Fermi-sea start.

    The integral starts at most at x = −1 + ε/4 (θ = π − √(ε/2)); the lowest
    state sits at θ_edge.  A Lorentzian of width λ/N in θ loses ≈ w/(πΔθ) of
    its weight beyond a distance Δθ.
    """
    theta_edge = np.arccos(np.clip((moments.emin - moments.b) / moments.a, -1.0, 1.0))
    theta_start = np.pi - np.sqrt(moments.epsilon / 2.0)
    gap = theta_start - theta_edge
    lost = (lam / N) / (np.pi * gap) if gap > 0 else 1.0
    if lost > 0.01:
        warnings.warn(
            f"Lorentz kernel: the lowest states lie {gap:.3g} rad in θ above the start of the Fermi-sea "
            f"integral, ≈ {gap / (lam / N):.1f} kernel widths; ≈ {100 * lost:.1f} % of their Lorentzian "
            "tail weight is cut off. Use the Jackson kernel, more moments, or a larger rescaling margin "
            "(epsilon) for Fermi-sea parts near a band edge",
            stacklevel=3,
        )


def _integrated(coeffs, moments: Moments, N: int, x_f, kT: float, part: str, pref_int, pref_surf,
                eta_scaled: float, oversample: int):
    """T = 0 values on a fine θ grid (cumulative from x_low), thermally averaged if kT > 0."""
    a, b = moments.a, moments.b
    x_edge_lo = max((moments.emin - b) / a - 5 * eta_scaled, -1.0 + moments.epsilon / 4)
    theta_low = np.arccos(x_edge_lo)
    if kT > 0:
        x_top = min((moments.emax - b) / a + 5 * eta_scaled, 1.0 - moments.epsilon / 4)
        x_top = max(x_top, x_f.max())
    else:
        x_top = x_f.max()
    theta_top = np.arccos(x_top)
    h = np.pi / (oversample * N)
    uniform = np.linspace(theta_top, theta_low, max(3, int(np.ceil((theta_low - theta_top) / h)) + 1))
    targets = np.arccos(np.clip(x_f, x_edge_lo, None))
    keep = np.min(np.abs(uniform[:, None] - targets[None, :]), axis=1) > h / 4
    theta = np.unique(np.concatenate([uniform[keep], targets, [theta_low]]))  # ascending θ
    E = _trig_sums(coeffs, theta, N)
    f_total, f_sea, f_surf = _integrands(E, theta)
    integrand = {"total": f_total, "sea": f_sea}.get(part)
    if integrand is not None:
        # ∫_{x_low}^{x} F dx = ∫_θ^{θ_low} F(cos θ') sin θ' dθ'
        cum = scipy.integrate.cumulative_simpson(integrand * np.sin(theta)[:, None], x=theta, axis=0,
                                                 initial=0.0)
        zero_values = pref_int * (cum[-1] - cum)
    else:
        zero_values = pref_surf * f_surf
    energies_grid = a * np.cos(theta) + b
    below = x_f < x_edge_lo  # below the lower edge nothing is occupied
    if kT == 0:
        idx = np.searchsorted(theta, targets)
        out = zero_values[idx]
        out[below] = 0.0
        return out
    # S_T(μ) = ∫ dε (−∂f/∂ε)(ε − μ) S_0(ε) on the (non-uniform) energy grid
    order = np.argsort(energies_grid)
    eg, s0 = energies_grid[order], zero_values[order]
    mu_f = a * x_f + b
    z = (eg[None, :] - mu_f[:, None]) / kT
    weight = 1.0 / (4.0 * kT * np.cosh(np.clip(z, -350, 350) / 2.0) ** 2)
    quad = np.zeros_like(eg)
    dx = np.diff(eg)
    quad[:-1] += dx / 2
    quad[1:] += dx / 2
    return (weight * quad[None, :]) @ s0


def conductivity(moments: Moments, energies, kernel: str = "jackson", temperature: float = 0.0,
                 **kwargs) -> Response:
    """σ_xx in e²/h from moments with A = B = ĵ'_x: ``σ = 2π S_surface`` (Kubo-Greenwood)."""
    if "jx" not in moments.left or moments.right != "jx":
        raise ValueError("conductivity needs moments with left containing 'jx' and right='jx'")
    resp = kubo_response(moments, energies, kernel=kernel, part="surface", temperature=temperature, **kwargs)
    k = resp.operators.index("jx")
    scale = 2.0 * np.pi
    return Response(
        energies=resp.energies, values=scale * resp.values[k:k + 1], stderr=scale * resp.stderr[k:k + 1],
        samples=scale * resp.samples[:, k:k + 1], operators=("sigma_xx",), right="jx", part="surface",
        kernel=kernel, num_moments=resp.num_moments, eta=resp.eta, temperature=resp.temperature,
        units="e^2/h", metadata=resp.metadata,
    )
