"""Means and standard errors over stochastic samples and disorder realisations.

Samples (one per random vector, or per k-space run) carry a realisation id.
With several realisations the standard error is taken between realisation
means (it then contains both the disorder and the random-vector scatter);
with one realisation it is the standard error over its samples; a single
sample (exact trace) has zero error.
"""
from __future__ import annotations

import numpy as np

__all__ = ["mean_and_stderr", "complex_stderr", "per_sample_std", "independent_samples", "EXACT_TRACES"]

#: ``Moments.trace`` values whose single sample is exact (no stochastic error).
EXACT_TRACES = ("exact", "kspace")


def complex_stderr(values, axis: int = 0) -> np.ndarray:
    """Standard error of the mean along ``axis``, real and imaginary parts separately."""
    values = np.asarray(values)
    count = values.shape[axis]
    if count < 2:
        return np.zeros(np.delete(values.shape, axis), dtype=values.dtype)
    scale = 1.0 / np.sqrt(count)
    if np.iscomplexobj(values):
        return (np.std(values.real, axis=axis, ddof=1) + 1j * np.std(values.imag, axis=axis, ddof=1)) * scale
    return np.std(values, axis=axis, ddof=1) * scale


def mean_and_stderr(samples, realisations=None):
    """Mean over axis 0 of ``samples`` and its standard error (see module doc).

    Returns ``(mean, stderr)``; a complex input gives a complex stderr whose
    real/imaginary parts are the errors of the real/imaginary parts.
    """
    independent = independent_samples(samples, realisations)
    return independent.mean(axis=0), complex_stderr(independent)


def per_sample_std(samples, exact: bool = False) -> np.ndarray:
    """Standard deviation of one sample along axis 0 (``ddof = 1``).

    One sample: 0 when it is exact (exact trace, k space), NaN otherwise
    (the noise of a single random vector cannot be measured from itself).
    """
    samples = np.asarray(samples)
    if samples.shape[0] < 2:
        return np.full(samples.shape[1:], 0.0 if exact else np.nan)
    return np.std(samples, axis=0, ddof=1)


def independent_samples(samples, realisations=None) -> np.ndarray:
    """The statistically independent samples: realisation means, or the samples of one realisation.

    Samples that share a disorder realisation are correlated through it, so
    with two or more realisations the independent samples are the
    per-realisation means (shape (n_realisations, ...), realisations in
    ascending id); with one realisation (or none given) the random vectors
    are independent and ``samples`` is returned as is.
    """
    samples = np.asarray(samples)
    if realisations is None:
        return samples
    realisations = np.asarray(realisations)
    if realisations.shape != samples.shape[:1]:
        raise ValueError(f"realisations must have one id per sample ({samples.shape[0]}), got shape {realisations.shape}")
    groups = np.unique(realisations)
    if len(groups) < 2:
        return samples
    return np.stack([samples[realisations == g].mean(axis=0) for g in groups])
