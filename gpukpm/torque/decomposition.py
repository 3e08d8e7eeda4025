"""Decomposition of the current-induced spin density into spin-orbit torques.

Pure NumPy on host arrays; no engine dependency.  Conventions follow
``CONVENTIONS.md`` ("Torque decomposition"), i.e. the paper's Eqs. (1)–(2)
plus the torque-less term of its Eq. (14d).

The model
---------
With the field along x̂ (``Ê = x̂``) the spin-orbit field is
``H_SOC = ẑ × Ê = ŷ`` and, for a magnetisation ``m̂`` of polar angle θ and
azimuth φ (measured from ``Ê``),

    S(m̂) = χ_FL (1 − ξ_FL sin²θ) ŷ − χ_DL m̂ × ŷ
           − (χ_∥ cos φ + χ_⊥ cos θ sin φ) sin θ ẑ − χ_tl (m̂·ŷ) m̂ .

``S`` is the response per unit field (spin density per area for ``E = 1``
V/nm), so every χ is in (V·nm)⁻¹ and ξ_FL is dimensionless.  The model is
linear in ``p = (χ_FL, χ_FL ξ_FL, χ_DL, χ_∥, χ_⊥, χ_tl)``
(:data:`PARAMETERS`).  With ``cos θ = m_z``, ``sin θ cos φ = m_x``,
``sin θ sin φ = m_y`` (exact at the poles, no angles are computed) and
``m̂ × ŷ = (−m_z, 0, m_x)`` the three components are

    S_x =  χ_DL m_z                                   − χ_tl m_x m_y
    S_y =  χ_FL − (χ_FL ξ_FL)(m_x² + m_y²)            − χ_tl m_y²
    S_z = −χ_DL m_x − χ_∥ m_x − χ_⊥ m_y m_z           − χ_tl m_y m_z

which is the design matrix of :func:`design_matrix`, rows (x, y, z) and
columns in the order of :data:`PARAMETERS`.  Under ``m̂ → −m̂`` the χ_DL and
χ_∥ columns are odd and all others even.

Sampling
--------
:func:`magnetizations` gives the paper's sampling of order M: ``2^M + 1``
polar angles evenly spaced in [0, π] and ``2M`` azimuths evenly spaced in
[0, 2π); the poles count once, leaving ``2 + (2^M − 1)·2M`` vectors (14 for
M = 2).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from gpukpm.engine.stats import independent_samples

__all__ = [
    "PARAMETERS",
    "KEYS",
    "UNIT_TOLERANCE",
    "TorqueFit",
    "magnetization_angles",
    "magnetizations",
    "design_matrix",
    "spin_density",
    "fit",
    "fit_samples",
    "save_csv",
]

#: Linear parameters of the fit, the columns of :func:`design_matrix`.
PARAMETERS = ("chi_FL", "chi_FL_xi_FL", "chi_DL", "chi_par", "chi_perp", "chi_torqueless")
#: Physical parameters reported by :func:`fit` and taken by :func:`spin_density`.
KEYS = ("chi_FL", "xi_FL", "chi_DL", "chi_par", "chi_perp", "chi_torqueless")
#: Largest allowed ``| ‖m̂‖ − 1 |``.
UNIT_TOLERANCE = 1e-8

_N_PARAMS = len(PARAMETERS)


def _check_order(order) -> int:
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"order must be an integer >= 1, got {order!r}")
    return int(order)


def magnetization_angles(order: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Polar angles θ and azimuths φ (radians) of the sampling of order M.

    θ takes the ``2^M + 1`` values ``kπ/2^M`` (k = 0 … 2^M) and φ the ``2M``
    values ``jπ/M`` (j = 0 … 2M − 1), φ measured from the field ``E ∥ x̂``.
    The poles count once.  Order: north pole (θ = 0, φ = 0) first, then θ
    ascending and, within each θ, φ ascending, south pole (θ = π, φ = 0) last;
    ``2 + (2^M − 1)·2M`` entries.  Returns ``(theta, phi)``, two 1-D arrays.
    """
    order = _check_order(order)
    n_theta = 2**order + 1
    interior = np.pi * np.arange(1, n_theta - 1) / (n_theta - 1)
    azimuths = np.pi * np.arange(2 * order) / order
    theta = np.concatenate(([0.0], np.repeat(interior, azimuths.size), [np.pi]))
    phi = np.concatenate(([0.0], np.tile(azimuths, interior.size), [0.0]))
    return theta, phi


def magnetizations(order: int = 2) -> np.ndarray:
    """Unit vectors ``m̂ = (sin θ cos φ, sin θ sin φ, cos θ)`` of the sampling.

    Shape ``(2 + (2^M − 1)·2M, 3)``, in the order of
    :func:`magnetization_angles`.  Components that vanish analytically
    (round-off below 1e-15, e.g. ``cos(π/2)``) are exactly 0, so the poles are
    ``(0, 0, ±1)`` and θ = φ = π/2 gives ``(0, 1, 0)``.  M = 1 gives 4 vectors,
    too few for :func:`fit` (6 parameters); M = 2 gives the paper's 14.
    """
    theta, phi = magnetization_angles(order)
    m = np.stack((np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)), axis=-1)
    m[np.abs(m) < 1e-15] = 0.0
    return m


def _check_magnetizations(magnetizations, min_count: int = 1) -> np.ndarray:
    m = np.asarray(magnetizations)
    if m.ndim != 2 or m.shape[1] != 3 or m.shape[0] < min_count:
        raise ValueError(
            f"magnetizations must have shape (n_configurations, 3) with n_configurations >= {min_count}, "
            f"got shape {m.shape}"
        )
    if not (np.issubdtype(m.dtype, np.floating) or np.issubdtype(m.dtype, np.integer)):
        raise ValueError(f"magnetizations must be real numbers, got dtype {m.dtype}")
    m = m.astype(np.float64)
    if not np.all(np.isfinite(m)):
        raise ValueError("magnetizations must be finite (no NaN or inf)")
    deviation = np.abs(np.linalg.norm(m, axis=1) - 1.0)
    if np.any(deviation > UNIT_TOLERANCE):
        worst = int(np.argmax(deviation))
        raise ValueError(
            f"magnetizations must be unit vectors (| |m| - 1 | <= {UNIT_TOLERANCE:g}); "
            f"row {worst} has |m| - 1 = {np.linalg.norm(m[worst]) - 1.0:.3g}"
        )
    return m


def design_matrix(magnetizations) -> np.ndarray:
    """Design matrix ``A`` of the decomposition, shape ``(n_configurations, 3, 6)``.

    ``S[i, c] = Σ_k A[i, c, k] p[k]`` with ``c`` the Cartesian component
    (x, y, z) and ``p`` ordered as :data:`PARAMETERS`; see the module
    docstring for the entries.  ``magnetizations``: unit vectors, shape
    ``(n, 3)``.
    """
    m = _check_magnetizations(magnetizations)
    mx, my, mz = m.T
    zero = np.zeros_like(mx)
    one = np.ones_like(mx)
    #                  chi_FL  chi_FL*xi_FL     chi_DL  chi_par  chi_perp   chi_tl
    row_x = np.stack((zero, zero, mz, zero, zero, -mx * my), axis=-1)
    row_y = np.stack((one, -(mx**2 + my**2), zero, zero, zero, -(my**2)), axis=-1)
    row_z = np.stack((zero, zero, -mx, -mx, -my * mz, -my * mz), axis=-1)
    return np.stack((row_x, row_y, row_z), axis=1)


def spin_density(magnetizations, chi: Mapping) -> np.ndarray:
    """Forward model: ``S(m̂; ε)`` for given χ's, shape ``(n_configurations, 3, n_energies)``.

    ``chi`` maps each of :data:`KEYS` (``chi_FL``, ``xi_FL``, ``chi_DL``,
    ``chi_par``, ``chi_perp``, ``chi_torqueless``) to a scalar or a 1-D array
    over energies (broadcast together; scalars give one energy).  χ's in
    (V·nm)⁻¹ give ``S`` per unit field (nm⁻² per V/nm); ξ_FL is dimensionless.
    A :class:`TorqueFit` is evaluated from its linear parameters
    :attr:`TorqueFit.params` (defined also where χ_FL = 0 and ξ_FL is NaN).
    """
    m = _check_magnetizations(magnetizations)
    if isinstance(chi, TorqueFit):
        return np.einsum("ick,ek->ice", design_matrix(m), chi.params)
    if not isinstance(chi, Mapping):
        raise ValueError(f"chi must be a mapping with keys {KEYS}, got {type(chi).__name__}")
    missing = [k for k in KEYS if k not in chi]
    unknown = [k for k in chi if k not in KEYS]
    if missing or unknown:
        raise ValueError(f"chi must have exactly the keys {KEYS}; missing {missing}, unknown {unknown}")
    try:
        values = np.broadcast_arrays(*(np.atleast_1d(np.asarray(chi[k], dtype=np.float64)) for k in KEYS))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"chi values must be real scalars or 1-D arrays of one common length ({exc})") from None
    if values[0].ndim != 1:
        raise ValueError(f"chi values must be scalars or 1-D arrays over energies, got shape {values[0].shape}")
    chi_fl, xi_fl, chi_dl, chi_par, chi_perp, chi_tl = values
    p = np.stack((chi_fl, chi_fl * xi_fl, chi_dl, chi_par, chi_perp, chi_tl), axis=-1)
    if not np.all(np.isfinite(p)):
        raise ValueError("chi values must be finite (no NaN or inf)")
    return np.einsum("ick,ek->ice", design_matrix(m), p)


class TorqueFit(dict):
    """Result of :func:`fit`: a dict of the physical parameters over energies.

    Items (1-D arrays over energies): ``chi_FL``, ``xi_FL``, ``chi_DL``,
    ``chi_par``, ``chi_perp``, ``chi_torqueless`` (χ's in (V·nm)⁻¹ when S is
    per unit field; ξ_FL = (χ_FL ξ_FL)/χ_FL, dimensionless, NaN where
    χ_FL = 0).

    Attributes
    ----------
    stderr : dict
        Standard errors under the same keys, from :attr:`covariance`; that of
        ξ_FL propagated to first order,
        ``σ_ξ² = (C₁₁ − 2ξ C₀₁ + ξ² C₀₀)/χ_FL²`` (indices of
        :data:`PARAMETERS`), NaN where χ_FL = 0.
    params : ndarray, (n_energies, 6)
        The linear parameters ``p`` in the order of :data:`PARAMETERS`.
    covariance : ndarray, (n_energies, 6, 6)
        Covariance of ``p``.
    relative_residual : ndarray, (n_energies,)
        ``‖S − S_fit‖ / ‖S‖`` over all configurations and components
        (unweighted; 0 where S = 0).  Large where the second-order expansion
        does not hold or a symmetry assumed by the basis is broken.
    chi2_per_dof : ndarray (n_energies,) or None
        ``Σ ((S − S_fit)/stderr)² / dof`` when ``stderr`` was given, else None.
    dof : int
        Degrees of freedom, ``3·n_configurations − 6``.
    weighted : bool
        Whether ``stderr`` was given.
    residual : ndarray (n_energies,)
        Root-mean-square misfit ``‖S − S_fit‖/√(3n)`` of the angular expansion,
        in the units of S: what the six-term basis leaves out (a model error,
        not a statistical one; the only uncertainty of an exact k-space fit).
    per_sample_std : dict or None
        :func:`fit_samples`: standard deviation of the parameters fitted to
        one sample (one random vector), under the keys of ``stderr``.
    num_samples : int
        Samples behind the fit (:func:`fit_samples`: independent samples; 1 for :func:`fit`).
    """

    def __init__(self, values, stderr, params, covariance, relative_residual, chi2_per_dof, dof, weighted,
                 residual=None, per_sample_std=None, num_samples=1):
        super().__init__(values)
        self.stderr = stderr
        self.params = params
        self.covariance = covariance
        self.relative_residual = relative_residual
        self.chi2_per_dof = chi2_per_dof
        self.dof = dof
        self.weighted = weighted
        self.residual = residual
        self.per_sample_std = per_sample_std
        self.num_samples = num_samples

    def as_arrays(self) -> dict[str, np.ndarray]:
        """Plain 1-D arrays for saving, in column order.

        ``{key, key + "_stderr"}`` for each of :data:`KEYS` (and ``key + "_std"``,
        the one-sample standard deviation, for a :func:`fit_samples` fit), then
        ``residual``, ``relative_residual`` and, for a weighted fit, ``chi2_per_dof``.
        """
        out = {}
        for key in KEYS:
            out[key] = np.asarray(self[key])
            out[key + "_stderr"] = np.asarray(self.stderr[key])
            if self.per_sample_std is not None:
                out[key + "_std"] = np.asarray(self.per_sample_std[key])
        if self.residual is not None:
            out["residual"] = np.asarray(self.residual)
        out["relative_residual"] = np.asarray(self.relative_residual)
        if self.chi2_per_dof is not None:
            out["chi2_per_dof"] = np.asarray(self.chi2_per_dof)
        return out


def _real_finite(a: np.ndarray, name: str) -> np.ndarray:
    """``a`` as float64, refusing complex, non-numeric, NaN and inf entries."""
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{name} must be real, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return a


def _check_data(S, stderr, n_configurations: int):
    expected = f"(n_configurations, 3, n_energies) = ({n_configurations}, 3, n_energies >= 1)"
    s = np.asarray(S)
    if s.ndim != 3 or s.shape[:2] != (n_configurations, 3) or s.shape[2] < 1:
        raise ValueError(f"S must have shape {expected}, got {s.shape}")
    s = _real_finite(s, "S")
    if stderr is None:
        return s, None
    e = np.asarray(stderr)
    if e.shape != s.shape:
        raise ValueError(f"stderr must have the shape of S, {s.shape}, got {e.shape}")
    e = _real_finite(e, "stderr")
    if np.any(e <= 0):
        raise ValueError(
            f"stderr must be > 0 everywhere (weights are 1/stderr^2); {int(np.sum(e <= 0))} entries are <= 0 "
            "(fit exact data with stderr=None)"
        )
    return s, e


def _canonical_order(m, s, e) -> np.ndarray:
    """Permutation sorting the configurations by (m_x, m_y, m_z), ties by their data.

    Applying it makes :func:`fit` bitwise independent of the caller's order.
    """
    n = m.shape[0]
    keys = [s.reshape(n, -1).T]
    if e is not None:
        keys.insert(0, e.reshape(n, -1).T)
    keys.append(m[:, ::-1].T)  # np.lexsort: last key is primary -> m_x, then m_y, then m_z
    return np.lexsort(np.concatenate(keys, axis=0))


def fit(magnetizations, S, stderr=None) -> TorqueFit:
    """Least-squares decomposition of ``S(m̂; ε_F)`` onto the torque basis.

    Parameters
    ----------
    magnetizations : array (n, 3)
        Unit vectors m̂ (``| ‖m̂‖ − 1 | ≤ 1e-8``), n ≥ 6, spanning the basis
        (e.g. :func:`magnetizations` with order ≥ 2).  Any order; the result is
        bitwise the same for every permutation of the configurations (they are
        sorted internally).
    S : array (n, 3, n_energies)
        Spin density per unit field along x̂ (nm⁻² per V/nm), components
        (x, y, z).
    stderr : array like S, optional
        Standard errors of S (> 0).  Then each energy is an independent
        weighted fit with weights ``1/stderr²`` and the covariance is
        ``(Aᵀ W A)⁻¹`` (absolute errors, not rescaled by χ²).  Without it the
        fit is unweighted and the covariance is ``σ̂² (AᵀA)⁻¹`` with the
        residual variance ``σ̂² = ‖S − S_fit‖² / dof``, ``dof = 3n − 6``
        (equal, unknown errors on every entry).

    Returns
    -------
    TorqueFit
        Dict of ``chi_FL``, ``xi_FL``, ``chi_DL``, ``chi_par``, ``chi_perp``,
        ``chi_torqueless`` over energies, with ``stderr``, ``covariance``,
        ``relative_residual``, ``chi2_per_dof`` … attributes.

    Each energy is solved by a (batched) SVD of the weighted design matrix
    ``W^{1/2} A``, so energies with different weights are fitted exactly as
    separate fits would be.
    """
    m = _check_magnetizations(magnetizations, min_count=_N_PARAMS)
    s, e = _check_data(S, stderr, m.shape[0])
    a = design_matrix(m)
    singular = np.linalg.svd(a.reshape(-1, _N_PARAMS), compute_uv=False)
    if singular[-1] <= singular[0] * a.size * np.finfo(float).eps:
        raise ValueError(
            "magnetizations do not determine all six parameters (design matrix of rank < 6); "
            "use e.g. magnetizations(order >= 2)"
        )

    perm = _canonical_order(m, s, e)
    a, s = a[perm], s[perm]
    n_rows = 3 * m.shape[0]
    dof = n_rows - _N_PARAMS
    b = s.reshape(n_rows, -1).T  # (n_energies, 3n)
    a_rows = a.reshape(n_rows, _N_PARAMS)
    if e is None:
        sqrt_w = np.ones((1, n_rows))
    else:
        sqrt_w = 1.0 / e[perm].reshape(n_rows, -1).T  # (n_energies, 3n)
    aw = sqrt_w[:, :, None] * a_rows  # (1 or n_energies, 3n, 6)
    u, sv, vt = np.linalg.svd(aw, full_matrices=False)
    v = np.swapaxes(vt, -1, -2)
    coeff = (np.swapaxes(u, -1, -2) @ (sqrt_w * b)[:, :, None])[..., 0] / sv
    p = (v @ coeff[:, :, None])[..., 0]  # (n_energies, 6)
    cov_unit = (v / sv[:, None, :] ** 2) @ vt  # (A^T W A)^{-1}

    residual = b - p @ a_rows.T
    weighted_rss = np.sum((sqrt_w * residual) ** 2, axis=1)
    if e is None:
        covariance = cov_unit * (weighted_rss / dof)[:, None, None]
        chi2_per_dof = None
    else:
        covariance = cov_unit
        chi2_per_dof = weighted_rss / dof
    covariance = np.ascontiguousarray(np.broadcast_to(covariance, (p.shape[0], _N_PARAMS, _N_PARAMS)))

    norm_s = np.linalg.norm(b, axis=1)
    norm_r = np.linalg.norm(residual, axis=1)
    relative_residual = np.divide(norm_r, norm_s, out=np.zeros_like(norm_r), where=norm_s > 0)

    values, errors = _physical(p, covariance)
    return TorqueFit(
        values,
        errors,
        params=p,
        covariance=covariance,
        relative_residual=relative_residual,
        chi2_per_dof=chi2_per_dof,
        dof=dof,
        weighted=e is not None,
        residual=norm_r / np.sqrt(n_rows),
    )


def _physical(p: np.ndarray, covariance: np.ndarray) -> tuple[dict, dict]:
    """Values and standard errors of :data:`KEYS` from the linear parameters ``p`` (E, 6) and their covariance.

    ``ξ_FL = (χ_FL ξ_FL)/χ_FL`` with the first-order error
    ``σ_ξ² = (C₁₁ − 2ξ C₀₁ + ξ² C₀₀)/χ_FL²``; NaN where χ_FL = 0.
    """
    err = np.sqrt(np.clip(np.diagonal(covariance, axis1=1, axis2=2), 0.0, None))
    chi_fl, chi_fl_xi = p[:, 0], p[:, 1]
    nonzero = chi_fl != 0
    xi = np.divide(chi_fl_xi, chi_fl, out=np.full_like(chi_fl, np.nan), where=nonzero)
    var_xi_num = covariance[:, 1, 1] - 2 * xi * covariance[:, 0, 1] + xi**2 * covariance[:, 0, 0]
    xi_err = np.full_like(chi_fl, np.nan)
    np.divide(np.sqrt(np.clip(var_xi_num, 0.0, None)), np.abs(chi_fl), out=xi_err, where=nonzero)

    values = {"chi_FL": chi_fl, "xi_FL": xi}
    errors = {"chi_FL": err[:, 0], "xi_FL": xi_err}
    for k, key in enumerate(PARAMETERS[2:], start=2):
        values[key] = p[:, k]
        errors[key] = err[:, k]
    return {k: values[k] for k in KEYS}, {k: errors[k] for k in KEYS}


def _sample_covariance(params: np.ndarray) -> np.ndarray:
    """Covariance (E, 6, 6) of one sample of ``params`` (n, E, 6), ``ddof = 1``."""
    centred = params - params.mean(axis=0)
    return np.einsum("sei,sej->eij", centred, centred) / (params.shape[0] - 1)


def fit_samples(magnetizations, samples, realisations=None, *, exact: bool = False) -> TorqueFit:
    """Torque fit of stochastic samples with errors from their scatter (correlations included).

    Every configuration of one system shares its disorder and random vectors,
    so the errors of ``S(m̂)`` are correlated across configurations and a
    weighted fit that treats them as independent misstates its errors.  The
    fit is linear, ``p = A⁺ S`` (unweighted least squares), so each sample is
    fitted on its own and the parameters are averaged:

        p̄ = (1/n) Σ_s p_s,    Cov(p̄) = (1/n) · 1/(n − 1) Σ_s (p_s − p̄)(p_s − p̄)ᵀ

    over the n independent samples (:func:`gpukpm.engine.stats.independent_samples`:
    realisation means when ``realisations`` has two or more ids, the samples
    themselves otherwise), whatever the correlations between configurations.

    Parameters
    ----------
    magnetizations : array (n_configs, 3)
        Unit vectors m̂, spanning the basis (n_configs ≥ 6).
    samples : array (n_samples, n_configs, 3, n_energies)
        ``S`` per sample (random vector, or realisation) and configuration,
        sample s of every configuration made with the same disorder and vector.
    realisations : array (n_samples,), optional
        Disorder realisation of each sample.
    exact : bool
        The single sample is exact (exact trace, k space): standard errors 0.
        A single stochastic sample has unknown errors (NaN).

    Returns
    -------
    TorqueFit
        Values, ``stderr`` and ``covariance`` (of the mean), ``per_sample_std``
        (one sample, i.e. one random vector), ``residual`` and
        ``relative_residual`` of the mean fit (the misfit of the angular
        expansion, never folded into ``stderr``), ``num_samples``
        (independent samples), ``chi2_per_dof = None``.
    """
    m = _check_magnetizations(magnetizations, min_count=_N_PARAMS)
    s = np.asarray(samples)
    n = m.shape[0]
    if s.ndim != 4 or s.shape[1:3] != (n, 3) or s.shape[0] < 1 or s.shape[3] < 1:
        raise ValueError(f"samples must have shape (n_samples >= 1, n_configurations, 3, n_energies) = "
                         f"(n_samples, {n}, 3, n_energies), got {s.shape}")
    s = _real_finite(s, "samples")
    order = np.lexsort(m[:, ::-1].T)  # configurations sorted by (m_x, m_y, m_z): order-independent result
    a_rows = design_matrix(m[order]).reshape(3 * n, _N_PARAMS)
    if np.linalg.matrix_rank(a_rows) < _N_PARAMS:
        raise ValueError("magnetizations do not determine all six parameters (design matrix of rank < 6); "
                         "use e.g. magnetizations(order >= 2)")
    rows = s[:, order].reshape(s.shape[0], 3 * n, -1)  # (n_samples, 3n, E)
    pinv = np.linalg.pinv(a_rows)
    params = np.einsum("kr,sre->sek", pinv, rows)  # (n_samples, E, 6)
    independent = independent_samples(params, realisations)
    count = independent.shape[0]
    p = independent.mean(axis=0)
    if count >= 2:
        covariance = _sample_covariance(independent) / count
    else:
        covariance = np.full((p.shape[0], _N_PARAMS, _N_PARAMS), 0.0 if exact else np.nan)
    values, errors = _physical(p, covariance)
    if params.shape[0] >= 2:
        per_sample_std = _physical(p, _sample_covariance(params))[1]
    else:
        per_sample_std = {k: np.full(p.shape[0], 0.0 if exact else np.nan) for k in KEYS}

    mean_rows = independent_samples(rows, realisations).mean(axis=0).T  # (E, 3n)
    misfit = mean_rows - p @ a_rows.T
    norm_s = np.linalg.norm(mean_rows, axis=1)
    norm_r = np.linalg.norm(misfit, axis=1)
    relative_residual = np.divide(norm_r, norm_s, out=np.zeros_like(norm_r), where=norm_s > 0)
    return TorqueFit(values, errors, params=p, covariance=covariance, relative_residual=relative_residual,
                     chi2_per_dof=None, dof=3 * n - _N_PARAMS, weighted=False,
                     residual=norm_r / np.sqrt(3 * n), per_sample_std=per_sample_std, num_samples=count)


def save_csv(path, energies, fit: TorqueFit) -> None:
    """Write a fit as a CSV table, atomically: :func:`gpukpm.run.io.save_torques_csv` (the owner of the
    format: ``energy`` (eV), then for each of :data:`KEYS` the value, ``_stderr`` and ``_std``, then
    ``residual`` and ``relative_residual``; 17 significant digits)."""
    if not isinstance(fit, TorqueFit):
        raise ValueError(f"fit must be a TorqueFit returned by gpukpm.torque.fit, got {type(fit).__name__}")
    from gpukpm.run import io

    io.save_torques_csv(path, energies, fit)
