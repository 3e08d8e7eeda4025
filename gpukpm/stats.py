"""Means and standard errors over stochastic samples and disorder realisations.

Samples (one per random vector, or per k-space run) carry a realisation id.
With several realisations the standard error is taken between realisation
means (it then contains both the disorder and the random-vector scatter);
with one realisation it is the standard error over its samples; a single
sample (exact trace) has zero error.
"""
from __future__ import annotations

import numpy as np

__all__ = ["mean_and_stderr", "complex_stderr"]


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
    samples = np.asarray(samples)
    if realisations is None:
        return samples.mean(axis=0), complex_stderr(samples)
    realisations = np.asarray(realisations)
    groups = np.unique(realisations)
    if len(groups) < 2:
        return samples.mean(axis=0), complex_stderr(samples)
    means = np.stack([samples[realisations == g].mean(axis=0) for g in groups])
    return means.mean(axis=0), complex_stderr(means)
